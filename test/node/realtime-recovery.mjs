// Connection state recovery with the official client, for realtime_test.go.
//
// 1. A socket whose connection drops (engine.close()) reconnects by itself within the
//    recovery window: socket.recovered is true, it keeps its id, and the events pushed to its
//    profile while it was away arrive, once each. (A client recovers from the last event it
//    got, so the socket gets one first.)
// 2. A socket whose connection drops in the middle of a subscription's replay (a long
//    profile topic, replayed from 0) recovers, and then gets its profile's live events: the
//    replay cut short must not go on keeping them away.
//
// Environment: GLOW_URL, GLOW_TOKEN (a learner).

import { call, check, connect, env, equal, post, run, sleep, withTimeout } from "./lib.mjs";

const url = env("GLOW_URL");
const token = env("GLOW_TOKEN");

// A client that reconnects at once, over websocket only.
const opts = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 50, transports: ["websocket"] };

/** reconnected drops the socket's connection and resolves once it is connected again. */
function dropAndReconnect(socket) {
  const back = new Promise((resolve) => socket.once("connect", resolve));
  socket.io.engine.close();
  return withTimeout(back, 5000, "reconnection");
}

/** calls makes n profile.context calls over HTTP: 2n events on the profile topic. */
async function calls(n) {
  for (let i = 0; i < n; i++) {
    const res = await post(url, token, "/profile/context", {});
    if (res.status !== 200) {
      throw new Error(`profile.context: ${res.status} ${JSON.stringify(res.body)}`);
    }
  }
}

/** completedSeqs are the seqs of the profile.context.completed events a socket got. */
const completedSeqs = (socket) =>
  socket.received.filter((e) => e.name === "profile.context.completed").map((e) => e.data.seq);

run(async () => {
  // 1. Missed packets. A client recovers from the last event it got (its offset): the socket
  // gets one first.
  const a = await connect(url, token, opts);
  const id = a.id;
  await calls(1);
  const first = Date.now() + 5000;
  while (completedSeqs(a).length === 0 && Date.now() < first) {
    await sleep(20);
  }
  const before = completedSeqs(a).length;
  const back = new Promise((resolve) => a.once("connect", resolve));
  a.io.engine.close();
  await calls(3); // while it is away (it reconnects after 50 ms; the calls take a few)
  await withTimeout(back, 5000, "reconnection");
  check("missed/recovered", a.recovered === true, { recovered: a.recovered });
  equal("missed/same-id", a.id, id);
  const deadline = Date.now() + 5000;
  while (completedSeqs(a).length < before + 3 && Date.now() < deadline) {
    await sleep(20);
  }
  const seqs = completedSeqs(a);
  check("missed/every-event-once", seqs.length === before + 3 && new Set(seqs).size === seqs.length, { seqs });

  // 2. A replay cut short.
  const me = await call(a, "profile.context", {});
  const topic = `profile/${me.body.profile.id}`;
  await calls(400); // a topic long enough that its replay is still going when the connection drops
  let recovered = 0;
  for (let round = 0; round < 3; round++) {
    a.emit("system.subscribe", { topics: [{ topic, since: 0 }] });
    await dropAndReconnect(a);
    recovered += a.recovered ? 1 : 0;
    const n = completedSeqs(a).length;
    const res = await post(url, token, "/profile/context", {});
    const deadline = Date.now() + 3000;
    while (completedSeqs(a).length === n && Date.now() < deadline) {
      await sleep(20);
    }
    check(`cut-replay/round-${round}/live-events-arrive`, res.status === 200 && completedSeqs(a).length > n, {
      before: n,
      after: completedSeqs(a).length,
    });
  }
  equal("cut-replay/recovered", recovered, 3);
  a.close();
}, 40000);
