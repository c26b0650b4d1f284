// The generated TypeScript client (clients/ts, built to dist) against a live glow: a call
// over HTTP with openapi-fetch, calls over socket.io with the typed socket, and a chat reply
// streamed to it whose deltas make the stored message.
//
// Environment: GLOW_URL; GLOW_ADMIN_TOKEN (creates the persona); GLOW_TOKEN, a learner of
// department GLOW_DEPARTMENT_ID.

import { connect, createClient } from "../../clients/ts/dist/index.js";

import { check, env, equal, run, withTimeout } from "./lib.mjs";
import { makePersona } from "./realtime-lib.mjs";

run(async () => {
  const url = env("GLOW_URL");
  const token = env("GLOW_TOKEN");
  const personaId = await makePersona(url, env("GLOW_ADMIN_TOKEN"), "Typed Tia", [env("GLOW_DEPARTMENT_ID")]);

  const http = createClient(url, token);
  const context = await http.POST("/profile/context", { body: {} });
  equal("http/status", context.response.status, 200);
  check("http/profile", typeof context.data?.profile?.id === "string", { data: context.data });
  const refused = await createClient(url).POST("/profile/context", { body: {} });
  equal("http/no-token-problem", refused.error?.status, 401);

  const socket = connect(url, token, { transports: ["websocket"] });
  await withTimeout(new Promise((ok, fail) => {
    socket.once("connect", ok);
    socket.once("connect_error", fail);
  }), 10000, "connect");
  const start = await socket.emitWithAck("attempt.start", { persona_id: personaId });
  equal("socketio/attempt.start", start.status, 200);
  const pieces = [];
  socket.on("attempt.generate.text.progress", (e) => pieces.push(e));
  const completed = new Promise((ok) => socket.on("attempt.generate.completed", ok));
  const sent = await socket.emitWithAck("attempt.chat_message", { chat_id: start.body.chat_id, text: "Hello from the SDK" });
  equal("socketio/chat_message", sent.status, 200);
  const done = await withTimeout(completed, 20000, "attempt.generate.completed");
  const chat = await socket.emitWithAck("attempt.chat_get", { chat_id: start.body.chat_id });
  const text = pieces.filter((e) => e.run_id === sent.body.reply_run_id).map((e) => e.delta).join("");
  check("chat/many-deltas", pieces.length >= 10, { deltas: pieces.length });
  equal("chat/deltas-make-completed-text", text, done.text);
  equal("chat/deltas-make-stored-reply", text, chat.body.messages.at(-1).text);
  socket.close();
});
