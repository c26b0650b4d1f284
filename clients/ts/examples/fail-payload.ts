// Must not compile: persona.search's page_size is a number.
import { connect } from "../src/index.js";

export async function wrong(url: string, token: string) {
  await connect(url, token).emitWithAck("persona.search", { page_size: "twenty" });
}
