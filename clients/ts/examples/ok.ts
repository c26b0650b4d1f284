// How an app uses the client; `tsc -p examples` must accept it.
import { connect, createClient, type Ack, type components } from "../src/index.js";

export async function example(url: string, token: string): Promise<string> {
  const http = createClient(url, token);
  const created = await http.POST("/persona/create", {
    body: { personas: [{ name: "Sue", description: "a tough buyer" }] },
  });
  const id: string | undefined = created.data?.results[0]?.persona_id;

  const socket = connect(url, token);
  const found: Ack<components["schemas"]["PersonaSearchResponse"]> = await socket.emitWithAck("persona.search", { page_size: 20 });
  if (found.status === 200) {
    const total: number = found.body.total_count;
    void total;
  } else {
    const detail: string | undefined = found.body.detail;
    void detail;
  }
  let text = "";
  socket.on("attempt.generate.text.progress", (e) => {
    text += e.delta;
  });
  socket.on("persona.create.completed", (e) => void e.call_id);
  socket.on("replay_done", (e) => void e.last_seq);
  socket.close();
  return id ?? text;
}
