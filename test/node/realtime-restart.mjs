// A reply in progress when the server restarts, with the official socket.io-client.
//
// Environment: GLOW_URL; GLOW_ADMIN_TOKEN; GLOW_TOKEN, a learner of department
// GLOW_DEPARTMENT_ID; GLOW_MODE, "resume" or "fail"; for "fail", GLOW_OPENAI_URL, the base
// URL of an OpenAI-compatible server that streams slowly, which becomes the default model.
//
// The learner's socket (which reconnects by itself) follows the attempt's topic and sends a
// chat message. After a few deltas the script prints {"await": "restart"}; the test restarts
// the server on the same database and address and answers on stdin. The socket is back on
// the same URL; it subscribes again with the last number it saw, and gets what it missed,
// replay_done, then the rest: every number of the topic once, in order.
//   resume: the embedded model is deterministic, so the run goes on after the last delta
//     sent (attempt.generate.started with resumed: true) and completes; the deltas make the
//     completed text and the stored reply.
//   fail: an OpenAI-compatible stream cannot be taken up again, so the run ends with
//     attempt.generate.failed and an error saying the server restarted; nothing is stored.

import { call, check, connect, env, equal, post, run, withTimeout } from "./lib.mjs";
import {
  awaitTest,
  checkSubscription,
  consecutive,
  deltas,
  makePersona,
  mustCall,
  onTopic,
  startAttempt,
  text,
  waitFor,
} from "./realtime-lib.mjs";

const url = env("GLOW_URL");
const admin = env("GLOW_ADMIN_TOKEN");
const token = env("GLOW_TOKEN");
const department = env("GLOW_DEPARTMENT_ID");
const mode = env("GLOW_MODE");

async function asAdmin(path, body) {
  const res = await post(url, admin, path, body);
  if (res.status !== 200) {
    throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

run(async () => {
  if (mode === "fail") {
    const provider = await asAdmin("/provider/create", {
      providers: [{ name: "slow fake", kind: "openai", base_url: env("GLOW_OPENAI_URL") }],
    });
    const providerId = provider.results[0].provider_id;
    const model = await asAdmin("/model/create", {
      models: [{ name: "fake-model", provider_ids: [providerId], is_default: true }],
    });
    const made = await asAdmin("/model/get", { model_id: model.results[0].model_id });
    equal("fail/model-is-default", made.model.is_default, true);
  }
  const personaId = await makePersona(url, admin, "Restarted Rosa", [department]);
  const sock = await connect(url, token, {
    transports: ["websocket"],
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
  });
  // Shown with the output of a failed run: why each connection ended.
  sock.io.on("close", (reason, d) =>
    process.stderr.write(
      `${new Date().toISOString()} connection closed: ${reason} (${d?.description ?? d?.message ?? ""}, code ${d?.context?.code ?? "-"})\n`,
    ),
  );
  const disconnects = [];
  let back;
  const gone = new Promise((resolve) => {
    sock.on("disconnect", (reason) => {
      disconnects.push({ reason, at: sock.received.length });
      back ??= new Promise((connected) => sock.once("connect", connected));
      resolve();
    });
  });

  const attempt = await startAttempt(sock, personaId);
  const topic = attempt.topic;
  const since0 = (await mustCall(sock, "attempt.chat_get", { chat_id: attempt.chatId })).last_seq;
  await mustCall(sock, "system.subscribe", { topics: [{ topic, since: since0 }] });
  const sent = await mustCall(sock, "attempt.chat_message", { chat_id: attempt.chatId, text: "How fast can you deliver?" });
  const runId = sent.reply_run_id;
  const ended = (e) => (e.name === "attempt.generate.completed" || e.name === "attempt.generate.failed") && e.data?.run_id === runId;

  await waitFor(sock, () => deltas(sock.received, runId).length >= 5, 10000, "five deltas");
  await awaitTest("restart");
  await withTimeout(gone, 5000, "the disconnect of the restart");
  check(`${mode}/disconnected-by-the-restart`, disconnects.length === 1, { disconnects });
  await withTimeout(back, 10000, "the reconnection");
  check(`${mode}/reconnected-to-the-same-url`, sock.connected && sock.io.uri === url, { uri: sock.io.uri });

  // What it saw before the server went away, and the last number of it.
  const cut = disconnects[0]?.at ?? sock.received.length;
  const before = onTopic({ received: sock.received.slice(0, cut) }, topic).filter((e) => e.name !== "replay_done");
  check(`${mode}/restarted-mid-reply`, deltas(before, runId).length >= 5 && !before.some(ended), {
    deltas: deltas(before, runId).length,
  });
  consecutive(`${mode}/before-restart-in-order`, before, since0 + 1);
  const lastSeen = before.at(-1).data.seq;

  const from = sock.received.length;
  const sub = await call(sock, "system.subscribe", { topics: [{ topic, since: lastSeen }] });
  equal(`${mode}/subscribe-again.status`, sub?.status, 200);
  const end = await waitFor(sock, (e) => sock.received.indexOf(e) >= cut && ended(e), 15000, "the run's end");
  if (mode === "resume") {
    await waitFor(sock, (e) => e.name === "attempt.chat.message" && e.data?.message?.role === "assistant", 5000, "the stored reply");
  }
  const afterwards = checkSubscription(`${mode}/subscription`, sock, topic, lastSeen, from);
  const all = [...before, ...afterwards];
  consecutive(`${mode}/every-seq-once`, all, since0 + 1);
  const pieces = deltas(all, runId);
  const chat = await mustCall(sock, "attempt.chat_get", { chat_id: attempt.chatId });
  const runNow = (await mustCall(sock, "system.run_get", { run_id: runId })).run;
  const starts = all.filter((e) => e.name === "attempt.generate.started" && e.data.run_id === runId);

  if (mode === "resume") {
    equal("resume/completed", end.name, "attempt.generate.completed");
    equal("resume/started-then-resumed", starts.map((e) => e.data.resumed === true), [false, true]);
    check("resume/resumed-after-the-last-delta-sent", starts[1]?.data?.seq > deltas(before, runId).at(-1)?.data?.seq, {
      resumed_at: starts[1]?.data?.seq,
    });
    check("resume/deltas-after-resuming", deltas(all, runId).some((e) => e.data.seq > starts[1]?.data?.seq), {});
    equal("resume/deltas-make-completed-text", text(pieces), end.data.text);
    equal("resume/stored-reply", chat.messages.map((m) => m.role), ["user", "assistant"]);
    equal("resume/deltas-make-stored-reply", text(pieces), chat.messages.at(-1)?.text);
    equal("resume/run_get", [runNow.status, runNow.output], ["completed", end.data.text]);
    const stored = all.find((e) => e.name === "attempt.chat.message" && e.data.message.role === "assistant");
    equal("resume/chat.message-event-is-stored-reply", stored?.data?.message, chat.messages.at(-1));
  } else {
    equal("fail/failed", end.name, "attempt.generate.failed");
    const why = end.data.error ?? "";
    check("fail/error-says-the-server-restarted", /restart/i.test(why), { error: why });
    equal("fail/run_get", [runNow.status, runNow.error], ["failed", why]);
    equal("fail/no-completed", all.filter((e) => e.name === "attempt.generate.completed").length, 0);
    equal("fail/started-once", starts.length, 1);
    equal("fail/failed-is-the-last-run-event", all.filter((e) => e.data.run_id === runId).at(-1)?.name, "attempt.generate.failed");
    equal("fail/nothing-stored", chat.messages.map((m) => m.role), ["user"]);
    check("fail/no-reply-streaming", chat.reply === undefined, { reply: chat.reply });
    check("fail/deltas-before-failing", pieces.length >= 5 && text(pieces).startsWith("word0 "), { text: text(pieces) });
  }
  sock.close();
});
