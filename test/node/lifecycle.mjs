// Lifecycle events: every call emits <event>.started, then <event>.completed (status < 400)
// or <event>.failed, to every socket of the caller's profile, whichever transport the call
// came on; sockets of other profiles get none of them.
//
// Environment: GLOW_URL; GLOW_TOKEN and GLOW_TOKEN_OBSERVER, two tokens (sessions) of one
// profile allowed persona.search; GLOW_TOKEN_OTHER, a token of another profile allowed it too.
//
// The caller's socket makes the calls (and HTTP makes some with the caller's token); the
// observer, a second socket of the same profile on another session, must see each call's
// events with one call_id, the transport it came on, the request as sent and the answer
// the caller got. Each call is told apart by a unique search text.

import { randomBytes } from "node:crypto";
import { call, check, connect, env, equal, isProblem, isUUID, post, run, sleep, waitEvent } from "./lib.mjs";

const url = env("GLOW_URL");
const token = env("GLOW_TOKEN");
const observerToken = env("GLOW_TOKEN_OBSERVER");
const otherToken = env("GLOW_TOKEN_OTHER");

const tag = randomBytes(6).toString("hex");
const op = "persona.search";

/**
 * expectEvents checks the events of one call as one socket saw them: started (found by the
 * request's search text), then completed or failed with the same call_id. It returns the
 * call_id.
 */
async function expectEvents(prefix, socket, { request, transport, status, body }) {
  const started = await waitEvent(socket, `${op}.started`, (d) => d?.request?.search === request.search);
  const s = started.data;
  check(`${prefix}/started.call_id`, isUUID(s.call_id), { call_id: s.call_id });
  equal(`${prefix}/started.operation`, s.operation, op);
  equal(`${prefix}/started.transport`, s.transport, transport);
  equal(`${prefix}/started.request`, s.request, request);

  const outcome = status < 400 ? "completed" : "failed";
  const other = status < 400 ? "failed" : "completed";
  const finished = await waitEvent(socket, `${op}.${outcome}`, (d) => d?.call_id === s.call_id);
  const f = finished.data;
  check(`${prefix}/${outcome}.after-started`, finished.at > started.at, { started: started.at, finished: finished.at });
  equal(`${prefix}/${outcome}.call_id`, f.call_id, s.call_id);
  equal(`${prefix}/${outcome}.operation`, f.operation, op);
  equal(`${prefix}/${outcome}.transport`, f.transport, transport);
  equal(`${prefix}/${outcome}.status`, f.status, status);
  equal(`${prefix}/${outcome}.body-is-answer`, f.body, body);
  if (status >= 400) {
    check(`${prefix}/${outcome}.body-is-problem`, isProblem(f.body, status), { body: f.body });
  }
  const wrong = socket.received.filter((e) => e.name === `${op}.${other}` && e.data?.call_id === s.call_id);
  equal(`${prefix}/no-${other}`, wrong.length, 0);
  const startedTwice = socket.received.filter((e) => e.name === `${op}.started` && e.data?.call_id === s.call_id);
  equal(`${prefix}/started-once`, startedTwice.length, 1);
  return s.call_id;
}

run(async () => {
  const caller = await connect(url, token, { transports: ["websocket"] });
  const observer = await connect(url, observerToken, { transports: ["websocket"] });
  const bystander = await connect(url, otherToken, { transports: ["websocket"] });
  const ids = [];

  // Over socket.io: a call that completes, then one that fails validation.
  for (const [name, request, status] of [
    ["socketio-completed", { search: `sio-ok-${tag}` }, 200],
    ["socketio-failed", { search: `sio-bad-${tag}`, page_size: 0 }, 422],
  ]) {
    const ack = await call(caller, op, request);
    equal(`${name}/ack.status`, ack?.status, status);
    const want = { request, transport: "socketio", status, body: ack?.body };
    const id = await expectEvents(`${name}/observer`, observer, want);
    equal(`${name}/caller-same-call_id`, await expectEvents(`${name}/caller`, caller, want), id);
    ids.push(id);
  }

  // Over HTTP with the caller's token: the sockets of the profile hear of it all the same.
  for (const [name, request, status] of [
    ["http-completed", { search: `http-ok-${tag}` }, 200],
    ["http-failed", { search: `http-bad-${tag}`, page_size: 0 }, 422],
  ]) {
    const res = await post(url, token, "/persona/search", request);
    equal(`${name}/http.status`, res.status, status);
    const want = { request, transport: "http", status, body: res.body };
    const id = await expectEvents(`${name}/observer`, observer, want);
    equal(`${name}/caller-same-call_id`, await expectEvents(`${name}/caller`, caller, want), id);
    ids.push(id);
  }

  equal("call_ids-distinct", new Set(ids).size, ids.length);

  // Another profile: it hears of its own calls, and of no one else's.
  const own = { search: `other-${tag}` };
  const ack = await call(bystander, op, own);
  const ownId = await expectEvents("other-profile/own-call", bystander, {
    request: own,
    transport: "socketio",
    status: 200,
    body: ack?.body,
  });
  await sleep(300); // let anything misrouted arrive
  const foreign = bystander.received.filter((e) => e.data?.call_id !== ownId);
  check("other-profile/hears-nothing-else", foreign.length === 0, {
    foreign: foreign.map((e) => `${e.name} ${e.data?.call_id}`),
  });
  const leaked = observer.received.filter((e) => e.data?.call_id === ownId || e.data?.request?.search === own.search);
  check("observer/hears-nothing-of-other-profile", leaked.length === 0, { leaked: leaked.map((e) => e.name) });

  // Only lifecycle events of the calls above arrived: no stray or malformed pushes.
  for (const [name, sock] of [["caller", caller], ["observer", observer], ["other-profile", bystander]]) {
    const odd = sock.received.filter(
      (e) => !/^persona\.search\.(started|completed|failed)$/.test(e.name) || !isUUID(e.data?.call_id),
    );
    check(`${name}/only-lifecycle-events`, odd.length === 0, { odd: odd.map((e) => e.name) });
  }

  caller.close();
  observer.close();
  bystander.close();
});
