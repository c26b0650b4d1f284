// A chat reply streamed to every socket of the profile, and the same topic over server-sent
// events, with the official socket.io-client and fetch.
//
// Environment: GLOW_URL; GLOW_ADMIN_TOKEN (creates the persona); GLOW_TOKEN and
// GLOW_TOKEN_2, two sessions of one learner of department GLOW_DEPARTMENT_ID; GLOW_TOKEN_OTHER,
// another learner of that department.
//
// Three sockets of the learner (two on the first session, one on the second) and one of the
// other learner connect; the first socket starts an attempt and sends a chat message. Every
// socket of the learner gets the whole attempt topic — the learner's message, the reply's
// deltas in order, completed, the stored reply — and the deltas make completed's text and
// the reply chat_get reads back. The other learner's socket gets none of it. The topic read
// over GET /attempt/stream, live and replayed afterwards (from the start, from the middle,
// and with Last-Event-ID), is frame for frame what socket.io delivered.

import { check, connect, env, equal, isUUID, run, sleep } from "./lib.mjs";
import {
  asFrame,
  consecutive,
  deltas,
  makePersona,
  mustCall,
  onTopic,
  openStream,
  startAttempt,
  text,
  waitFor,
} from "./realtime-lib.mjs";

const url = env("GLOW_URL");
const admin = env("GLOW_ADMIN_TOKEN");
const token = env("GLOW_TOKEN");
const token2 = env("GLOW_TOKEN_2");
const otherToken = env("GLOW_TOKEN_OTHER");
const department = env("GLOW_DEPARTMENT_ID");

const ws = { transports: ["websocket"] };

/** stripped is a list of events as comparable values. */
const stripped = (events) => events.map(({ name, data }) => ({ name, data }));

/** readReplay reads a topic over SSE up to replay_done: {frames, done}. */
async function readReplay(name, topic, since, headers) {
  const s = await openStream(url, token2, "attempt", topic, since, headers);
  equal(`${name}/status`, s.status, 200);
  const done = await s.waitFor((f) => f.event === "replay_done", 5000, `${name} replay_done`);
  s.close();
  return { frames: s.frames.slice(0, s.frames.indexOf(done)), done: done.data };
}

run(async () => {
  const personaId = await makePersona(url, admin, "Streaming Stella", [department]);
  const sockets = [
    await connect(url, token, ws),
    await connect(url, token2, ws),
    await connect(url, token, { transports: ["polling", "websocket"] }),
  ];
  const other = await connect(url, otherToken, ws);

  const attempt = await startAttempt(sockets[0], personaId);
  const topic = attempt.topic;
  const before = await mustCall(sockets[0], "attempt.chat_get", { chat_id: attempt.chatId });
  equal("chat_get-before/topic", before.topic, topic);
  equal("chat_get-before/no-messages", before.messages, []);
  const since0 = before.last_seq;

  // Over SSE, live from the topic's current number.
  const live = await openStream(url, token2, "attempt", topic, since0);
  equal("sse-live/status", live.status, 200);
  check("sse-live/content-type", live.type?.startsWith("text/event-stream"), { type: live.type });
  const liveDone = await live.waitFor((f) => f.event === "replay_done", 5000, "replay_done of the live stream");
  equal("sse-live/replay_done", liveDone.data, { topic, since: since0, last_seq: since0, replayed: 0, truncated: false });

  const ack = await mustCall(sockets[0], "attempt.chat_message", {
    chat_id: attempt.chatId,
    text: "Why should we switch suppliers at all?",
  });
  const runId = ack.reply_run_id;
  check("ack/reply_run_id", isUUID(runId), { ack });

  const isCompleted = (e) => e.name === "attempt.generate.completed" && e.data?.run_id === runId;
  const isStoredReply = (e) => e.name === "attempt.chat.message" && e.data?.message?.role === "assistant";
  for (const s of sockets) {
    await waitFor(s, isCompleted, 15000, "completed");
    await waitFor(s, isStoredReply, 5000, "the stored reply");
  }

  const chat = await mustCall(sockets[0], "attempt.chat_get", { chat_id: attempt.chatId });
  const stored = chat.messages.at(-1);
  equal("chat_get-after/messages", chat.messages.map((m) => m.role), ["user", "assistant"]);
  equal("chat_get-after/user-message-is-ack", chat.messages[0], ack.message);
  check("chat_get-after/no-reply-streaming", chat.reply === undefined, { reply: chat.reply });

  const reference = onTopic(sockets[0], topic);
  sockets.forEach((s, i) => {
    const p = `socket${i + 1}`;
    const events = onTopic(s, topic);
    consecutive(`${p}/every-topic-event-in-order`, events, since0 + 1);
    const pieces = deltas(events, runId);
    check(`${p}/many-deltas`, pieces.length >= 20, { deltas: pieces.length });
    const completed = events.find(isCompleted);
    equal(`${p}/deltas-make-completed-text`, text(pieces), completed?.data?.text);
    equal(`${p}/deltas-make-stored-reply`, text(pieces), stored.text);
    equal(`${p}/completed.result.message-is-stored`, completed?.data?.result?.message, stored);
    const reply = events.find(isStoredReply);
    equal(`${p}/chat.message-event-is-stored-reply`, reply?.data?.message, stored);
    equal(`${p}/first-is-the-learner-message`, events[0]?.name === "attempt.chat.message" && events[0].data.message, ack.message);
    const started = events.find((e) => e.name === "attempt.generate.started");
    equal(`${p}/started`, started && { run_id: started.data.run_id, artifact: started.data.artifact, kind: started.data.kind, subject_id: started.data.subject_id }, {
      run_id: runId,
      artifact: "attempt",
      kind: "chat_reply",
      subject_id: attempt.chatId,
    });
    const order = events.map((e) => e.name);
    check(`${p}/started-deltas-completed-stored`,
      order.indexOf("attempt.generate.started") < order.indexOf("attempt.generate.text.progress") &&
        order.lastIndexOf("attempt.generate.text.progress") < order.indexOf("attempt.generate.completed") &&
        order.indexOf("attempt.generate.completed") < events.indexOf(reply),
      { order: [...new Set(order)] });
    if (i > 0) {
      equal(`${p}/same-events-as-socket1`, stripped(events), stripped(reference));
    }
  });

  const runGot = await mustCall(sockets[1], "system.run_get", { run_id: runId });
  equal("run_get/status", runGot.run.status, "completed");
  equal("run_get/output-is-stored-reply", runGot.run.output, stored.text);
  equal("run_get/topic", runGot.run.topic, topic);

  // The other learner: nothing of this attempt, by any route.
  await sleep(300);
  const leaked = other.received.filter((e) => {
    const json = JSON.stringify(e.data);
    return e.data?.topic === topic || json.includes(runId) || json.includes(attempt.chatId);
  });
  check("other-profile/gets-nothing-of-it", leaked.length === 0, { leaked: leaked.map((e) => e.name) });
  equal("other-profile/gets-nothing-at-all", other.received.map((e) => e.name), []);
  const foreign = await openStream(url, otherToken, "attempt", topic, 0);
  foreign.close();
  equal("other-profile/sse-forbidden", foreign.status, 403);

  // SSE: what socket.io delivered, frame for frame.
  const wanted = reference.map(asFrame);
  await live.waitFor((f) => f.event === "attempt.chat.message" && f.data?.message?.role === "assistant", 5000, "the stored reply over SSE");
  live.close();
  equal("sse-live/frames-are-socket-events", live.frames.slice(1), wanted);

  const full = await readReplay("sse-replay", topic, since0);
  equal("sse-replay/frames-are-socket-events", full.frames, wanted);
  equal("sse-replay/replay_done", full.done, {
    topic,
    since: since0,
    last_seq: wanted.at(-1).data.seq,
    replayed: wanted.length,
    truncated: false,
  });
  const middle = deltas(reference, runId)[5].data.seq;
  const tail = wanted.filter((f) => f.data.seq > middle);
  equal("sse-replay-from-middle/frames", (await readReplay("sse-replay-from-middle", topic, middle)).frames, tail);
  equal(
    "sse-last-event-id/frames",
    (await readReplay("sse-last-event-id", topic, undefined, { "Last-Event-ID": String(middle) })).frames,
    tail,
  );

  for (const s of [...sockets, other]) {
    s.close();
  }
});
