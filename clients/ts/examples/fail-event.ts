// Must not compile: there is no operation persona.nope.
import { connect } from "../src/index.js";

export async function wrong(url: string, token: string) {
  await connect(url, token).emitWithAck("persona.nope", {});
}
