// Following an attempt's topic across a lost connection, with the official socket.io-client.
//
// Environment: GLOW_URL; GLOW_ADMIN_TOKEN (creates the personas and a fast local model);
// GLOW_TOKEN, the learner who chats (over HTTP); GLOW_WATCHER_TOKEN, another session of the
// learner, whose sockets follow the attempt's topic with system.subscribe (and, being the
// learner's, also get the topic's events pushed to the profile); GLOW_DEPARTMENT_ID, the
// learner's department. The server streams local replies slowly (some 30 ms a word).
//
// 1. kill: a socket follows the topic, sees part of the reply, and its connection is
//    killed. A new socket subscribes with since = the last number the first one saw: it gets
//    the rest, the replay first, then replay_done, then the live events. Across both sockets
//    every number of the topic comes once, in order, and the pieces make the stored reply.
// 2. chat_get: in the middle of the next reply it returns the text so far up to
//    reply.last_seq; a socket that subscribes with since = last_seq completes it exactly.
// 3. busy: a socket of the learner replays a long topic from 0 while a fast reply streams
//    on it: the live events pushed meanwhile come after replay_done, not inside the replay.
// 4. own-profile: a socket of the learner replays its long profile topic while a fast reply
//    streams: the reply's events, pushed to the profile's room, keep coming, none lost.

import { check, connect, env, equal, post, run, sleep } from "./lib.mjs";
import {
  ABOUT,
  checkSubscription,
  consecutive,
  deltas,
  makePersona,
  mustCall,
  ofRun,
  onTopic,
  readLog,
  seqs,
  text,
  waitFor,
} from "./realtime-lib.mjs";

const url = env("GLOW_URL");
const admin = env("GLOW_ADMIN_TOKEN");
const token = env("GLOW_TOKEN");
const watcherToken = env("GLOW_WATCHER_TOKEN");
const department = env("GLOW_DEPARTMENT_ID");

const ws = { transports: ["websocket"] };
const localProvider = "00000000-0000-7000-8000-000000000001";

async function mustPost(path, body, as = token) {
  const res = await post(url, as, path, body);
  if (res.status !== 200) {
    throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

const isCompleted = (runId) => (e) => e.name === "attempt.generate.completed" && e.data?.run_id === runId;
const isStoredReply = (e) => e.name === "attempt.chat.message" && e.data?.message?.role === "assistant";

run(async () => {
  const personaId = await makePersona(url, admin, "Reconnecting Rhea", [department]);
  const started = await mustPost("/attempt/start", { persona_id: personaId });
  const chatId = started.chat_id;
  const topic = `attempt/${started.attempt_id}`;

  // ---- 1. the connection dies in the middle of a reply
  const since0 = (await mustPost("/attempt/chat/get", { chat_id: chatId })).last_seq;
  const first = await connect(url, watcherToken, ws);
  const sub1 = await mustCall(first, "system.subscribe", { topics: [{ topic, since: since0 }] });
  equal("kill/first-subscribe.last_seq", sub1.subscriptions?.[0]?.last_seq, since0);
  await waitFor(first, (e) => e.name === "replay_done", 5000, "replay_done of the first subscription");

  const sent = await mustPost("/attempt/chat/message", { chat_id: chatId, text: "Tell me about delivery times and the total cost." });
  const runId = sent.reply_run_id;
  await waitFor(first, () => deltas(first.received, runId).length >= 8, 10000, "eight deltas on the first socket");
  first.io.engine.close(); // the connection drops: no goodbye, no more events
  const seenByFirst = onTopic(first, topic).filter((e) => e.name !== "replay_done");
  const lastSeen = seenByFirst.at(-1).data.seq;
  check("kill/first-socket-stopped-mid-reply", !seenByFirst.some(isCompleted(runId)), { last_seen: lastSeen });
  consecutive("kill/first-socket-in-order", seenByFirst, since0 + 1);

  await sleep(250); // the reply goes on meanwhile
  const second = await connect(url, watcherToken, ws);
  // A socket of the learner gets the reply pushed to the profile as soon as it connects; it
  // subscribes a moment later, as an app that first reads its state does.
  await waitFor(second, () => deltas(second.received, runId).length >= 2, 5000, "pushes to the new socket");
  const sub2 = await mustCall(second, "system.subscribe", { topics: [{ topic, since: lastSeen }] });
  const r = sub2.subscriptions?.[0];
  check("kill/second-subscribe-ack", r?.topic === topic && r?.since === lastSeen && r?.truncated === false, { ack: r });
  await waitFor(second, isCompleted(runId), 15000, "completed on the second socket");
  const stored = await waitFor(second, isStoredReply, 5000, "the stored reply");
  const fromSecond = checkSubscription("kill/second", second, topic, lastSeen);
  const done = second.received.find((e) => e.name === "replay_done")?.data;
  equal("kill/replay_done.equals-ack", done, r);
  check("kill/second-replayed-the-missed-part", done?.replayed > 0, { replayed: done?.replayed });

  const all = [...seenByFirst, ...fromSecond];
  consecutive("kill/every-seq-once-across-both", all, since0 + 1);
  const completed = all.find(isCompleted(runId));
  const pieces = deltas(all, runId);
  equal("kill/deltas-make-completed-text", text(pieces), completed?.data?.text);
  const chat = await mustPost("/attempt/chat/get", { chat_id: chatId });
  const reply = chat.messages.at(-1);
  equal("kill/stored-reply-role", reply?.role, "assistant");
  equal("kill/deltas-make-stored-reply", text(pieces), reply?.text);
  equal("kill/chat.message-event-is-stored-reply", stored.data.message, reply);
  check("kill/no-reply-streaming-after", chat.reply === undefined, { reply: chat.reply });

  // ---- 2. chat_get in the middle of the next reply
  const sent2 = await mustPost("/attempt/chat/message", { chat_id: chatId, text: "What would the exit terms look like?" });
  const run2 = sent2.reply_run_id;
  let mid;
  for (let i = 0; i < 200; i++) {
    mid = await mustPost("/attempt/chat/get", { chat_id: chatId });
    if (mid.reply?.text?.split(" ").length > 4) {
      break;
    }
    await sleep(20);
  }
  check("chat_get/reply-streaming", mid.reply?.run_id === run2 && mid.reply?.status === "running", { reply: mid.reply });
  check("chat_get/reply.last_seq-at-most-last_seq", mid.reply?.last_seq <= mid.last_seq, {
    reply_last_seq: mid.reply?.last_seq,
    last_seq: mid.last_seq,
  });
  const third = await connect(url, watcherToken, ws);
  await mustCall(third, "system.subscribe", { topics: [{ topic, since: mid.last_seq }] });
  await waitFor(third, isCompleted(run2), 15000, "completed of the second reply");
  const rest = checkSubscription("chat_get/subscription", third, topic, mid.last_seq);
  const done2 = rest.find(isCompleted(run2));
  check("chat_get/text-was-partial", mid.reply.text.length > 0 && mid.reply.text.length < done2?.data?.text?.length, {
    partial: mid.reply.text.length,
    full: done2?.data?.text?.length,
  });
  equal("chat_get/reply.text+deltas-make-completed-text", mid.reply.text + text(deltas(rest, run2)), done2?.data?.text);
  const chat2 = await mustPost("/attempt/chat/get", { chat_id: chatId });
  equal("chat_get/reply.text+deltas-make-stored-reply", mid.reply.text + text(deltas(rest, run2)), chat2.messages.at(-1)?.text);

  // reply.text is the text of the deltas numbered up to reply.last_seq: the log says so.
  const logged = await readLog(url, token, "attempt", topic, 0);
  const upTo = deltas(logged, run2).filter((e) => e.data.seq <= mid.reply.last_seq);
  equal("chat_get/reply.text-is-deltas-up-to-reply.last_seq", text(upTo), mid.reply.text);
  equal("chat_get/reply.last_seq-is-a-delta", upTo.at(-1)?.data?.seq, mid.reply.last_seq);
  equal("log/seqs-are-1-to-n", seqs(logged), logged.map((_, i) => i + 1));
  equal("log/first-reply-as-the-sockets-saw-it", ofRun(logged, runId), ofRun(all, runId).map(({ name, data }) => ({ name, data })));

  // ---- 3. a long replay while the topic is busy
  const fast = await mustPost(
    "/model/create",
    { models: [{ name: "fast local", provider_model: "glow-local", provider_ids: [localProvider], token_delay_ms: 1 }] },
    admin,
  );
  const fastModel = fast.results[0].model_id;
  const talker = await makePersona(url, admin, "Long-winded Lou", [department], (ABOUT + ". ").repeat(4).slice(0, 1990));
  const busy = await mustPost("/attempt/start", { persona_id: talker });
  const busyTopic = `attempt/${busy.attempt_id}`;
  const generate = () => mustPost("/attempt/generate", { chat_id: busy.chat_id, model_id: fastModel });
  const fourth = await connect(url, watcherToken, ws);
  for (let i = 0; i < 3; i++) { // some 900 events to replay
    const earlier = await generate();
    await waitFor(fourth, isCompleted(earlier.run.id), 15000, "an earlier fast reply");
  }
  const streaming = (await generate()).run.id;
  await mustCall(fourth, "system.subscribe", { topics: [{ topic: busyTopic, since: 0 }] });
  await waitFor(fourth, isCompleted(streaming), 15000, "the reply streaming during the replay");
  const busyEvents = checkSubscription("busy/subscription", fourth, busyTopic, 0);
  const busyDone = fourth.received.find((e) => e.name === "replay_done" && e.data.topic === busyTopic)?.data;
  check("busy/replay-was-long", busyDone?.replayed > 800, { replayed: busyDone?.replayed });
  equal("busy/deltas-make-completed-text", text(deltas(busyEvents, streaming)), busyEvents.find(isCompleted(streaming))?.data?.text);

  // ---- 4. replaying the learner's own profile topic while a reply streams
  const fifth = await connect(url, watcherToken, ws);
  const me = (await mustCall(fifth, "profile.context", {})).profile.id;
  for (let i = 0; i < 20; i++) { // some 600 lifecycle events on the profile's topic
    await Promise.all(Array.from({ length: 15 }, () => mustCall(fifth, "system.health", {})));
  }
  await waitFor(fourth, (e) => isStoredReply(e) && e.data.topic === busyTopic && e.data.seq > busyDone.last_seq, 5000, "the stored reply");
  const before3 = (await mustPost("/attempt/chat/get", { chat_id: busy.chat_id })).last_seq;
  const during = (await generate()).run.id;
  const own = await mustCall(fifth, "system.subscribe", { topics: [{ topic: `profile/${me}`, since: 0 }] });
  check("own-profile/replay-was-long", own.subscriptions[0].replayed > 400, { replayed: own.subscriptions[0].replayed });
  await waitFor(fifth, isCompleted(during), 15000, "the reply streaming during the profile's replay");
  const received3 = ofRun(onTopic(fifth, busyTopic), during);
  const logged3 = ofRun(await readLog(url, token, "attempt", busyTopic, before3), during);
  check("own-profile/reply-events-kept-coming", logged3.length > 200 && received3.length === logged3.length, {
    received: received3.length,
    logged: logged3.length,
  });
  consecutive("own-profile/reply-events-in-order", received3, before3 + 1);

  second.close();
  third.close();
  fourth.close();
  fifth.close();
});
