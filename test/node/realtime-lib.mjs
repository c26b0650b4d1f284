// Helpers of the realtime scripts (realtime-*.mjs): personas and attempts to chat with,
// the events of one topic as a socket received them, and server-sent event streams read
// with fetch. The scripts print their checks with lib.mjs.

import { call, check, equal, post, withTimeout } from "./lib.mjs";

/**
 * ABOUT describes a persona at length: the local model quotes it in its first reply, which
 * makes that reply long enough (some 70 words) to be interrupted in the middle.
 */
export const ABOUT =
  "a purchasing manager at a regional hospital group who has spent eleven years negotiating " +
  "supply contracts, distrusts glossy brochures, keeps a spreadsheet of every promise a vendor " +
  "ever broke, answers slowly and precisely, and wants evidence about delivery times, service " +
  "levels, training for the nursing staff, the total cost over five years and the exit terms " +
  "before agreeing to any further meeting with a new supplier";

/** makePersona creates a persona (described by ABOUT) as the admin over HTTP and returns its id. */
export async function makePersona(url, adminToken, name, departmentIds = [], description = ABOUT) {
  const res = await post(url, adminToken, "/persona/create", {
    personas: [{ name, description, instructions: "Stay guarded; ask for numbers.", department_ids: departmentIds }],
  });
  const id = res.body?.results?.[0]?.persona_id;
  if (res.status !== 200 || !id) {
    throw new Error(`persona.create: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return id;
}

/** startAttempt starts an attempt over socket.io and returns {attemptId, chatId, topic}. */
export async function startAttempt(socket, personaId) {
  const ack = await call(socket, "attempt.start", { persona_id: personaId });
  if (ack?.status !== 200) {
    throw new Error(`attempt.start: ${JSON.stringify(ack)}`);
  }
  return { attemptId: ack.body.attempt_id, chatId: ack.body.chat_id, topic: `attempt/${ack.body.attempt_id}` };
}

/** mustCall calls an operation over socket.io and throws unless it answers 200. */
export async function mustCall(socket, event, body) {
  const ack = await call(socket, event, body);
  if (ack?.status !== 200) {
    throw new Error(`${event}: ${JSON.stringify(ack)}`);
  }
  return ack.body;
}

/**
 * waitFor resolves with the first event the socket recorded (lib.mjs keeps them in
 * socket.received as {name, data}) that pred accepts, or rejects after ms.
 */
export function waitFor(socket, pred, ms = 10000, what = "a matching event") {
  const found = socket.received.find(pred);
  if (found) {
    return Promise.resolve(found);
  }
  let waiter;
  const p = new Promise((resolve) => {
    waiter = () => {
      const e = socket.received.find(pred);
      if (e) {
        resolve(e);
      }
    };
    socket.waiters.push(waiter);
  });
  return withTimeout(p, ms, what).finally(() => {
    socket.waiters = socket.waiters.filter((w) => w !== waiter);
  });
}

/** onTopic returns the events of one topic a socket received, in arrival order. */
export const onTopic = (socket, topic) => socket.received.filter((e) => e.data?.topic === topic);

/** ofRun keeps the events of one run. */
export const ofRun = (events, runId) => events.filter((e) => e.data?.run_id === runId);

/** deltas keeps the text pieces of a run, in the order given. */
export const deltas = (events, runId, artifact = "attempt") =>
  events.filter((e) => e.name === `${artifact}.generate.text.progress` && e.data?.run_id === runId);

/** text concatenates the pieces. */
export const text = (pieces) => pieces.map((e) => e.data.delta).join("");

/** seqs lists the numbers of events. */
export const seqs = (events) => events.map((e) => e.data?.seq);

/**
 * consecutive checks that events are numbered from, from + 1, … with nothing missing,
 * repeated or out of order.
 */
export function consecutive(name, events, from) {
  const got = seqs(events);
  const bad = got.findIndex((s, i) => s !== from + i);
  return check(name, got.length > 0 && bad === -1, {
    from,
    count: got.length,
    first_wrong_at: bad,
    around: bad === -1 ? undefined : got.slice(Math.max(0, bad - 3), bad + 4),
  });
}

/** increasing checks that the numbers of events only go up. */
export function increasing(name, events) {
  const got = seqs(events);
  const bad = got.findIndex((s, i) => i > 0 && !(s > got[i - 1]));
  return check(name, got.length > 0 && bad === -1, { count: got.length, first_wrong_at: bad, seqs: got.slice(0, 80) });
}

/** frame turns a recorded event into what an event stream frame carries. */
export const asFrame = (e) => ({ id: String(e.data.seq), event: e.name, data: e.data });

/**
 * openStream follows a topic with GET /<artifact>/stream (server-sent events) from since
 * (none when undefined; headers may add Last-Event-ID) and records its frames as
 * {id, event, data} (data parsed; id undefined when the frame has none). It resolves once
 * the response headers are in, with {status, type, frames, waitFor, close}; the stream is
 * read in the background.
 */
export async function openStream(url, token, artifact, topic, since, headers = {}) {
  const ctrl = new AbortController();
  const q = new URLSearchParams({ topic });
  if (since !== undefined) {
    q.set("since", String(since));
  }
  const res = await fetch(`${url}/${artifact}/stream?${q}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream", ...headers },
    signal: ctrl.signal,
  });
  const stream = { status: res.status, type: res.headers.get("content-type"), frames: [], waiters: [], ended: false };
  const notify = () => {
    for (const w of [...stream.waiters]) {
      w();
    }
  };
  stream.close = () => ctrl.abort();
  stream.waitFor = (pred, ms = 10000, what = "a matching frame") => {
    const found = stream.frames.find(pred);
    if (found) {
      return Promise.resolve(found);
    }
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = () => {
        const f = stream.frames.find(pred);
        if (f) {
          resolve(f);
        } else if (stream.ended) {
          reject(new Error(`${what}: the stream ended first`));
        }
      };
      stream.waiters.push(waiter);
    });
    return withTimeout(p, ms, what).finally(() => {
      stream.waiters = stream.waiters.filter((w) => w !== waiter);
    });
  };
  if (res.status !== 200) {
    stream.body = await res.text();
    return stream;
  }
  (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const f = {};
          let data = null;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) {
              continue; // a comment (keep-alive)
            }
            const colon = line.indexOf(":");
            const field = colon === -1 ? line : line.slice(0, colon);
            let value = colon === -1 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) {
              value = value.slice(1);
            }
            if (field === "data") {
              data = data === null ? value : `${data}\n${value}`;
            } else if (field === "id" || field === "event") {
              f[field] = value;
            }
          }
          if (data === null && f.event === undefined) {
            continue;
          }
          try {
            f.data = JSON.parse(data);
          } catch {
            f.data = data;
          }
          stream.frames.push(f);
          notify();
        }
      }
    } catch {
      // aborted by close(), or the server went away
    }
    stream.ended = true;
    notify();
  })();
  return stream;
}

/**
 * subscription reads what a socket received of a topic it subscribed to with since, in
 * arrival order, around replay_done: {pushed, replayed, done, live}. replayed is the run of
 * events right before replay_done that it counts; live is what followed; pushed is what
 * came before the replay — on a socket of the topic's owner, the events the profile's room
 * pushed before the subscription took over (copies of replayed events, which a client drops).
 * Only what the socket received from its from-th event on counts.
 */
export function subscription(socket, topic, from = 0) {
  const all = socket.received.slice(from).filter((e) => e.data?.topic === topic);
  const d = all.findIndex((e) => e.name === "replay_done");
  if (d === -1) {
    return { pushed: all, replayed: [], done: undefined, live: [] };
  }
  const done = all[d].data;
  const start = Math.max(0, d - (done.replayed ?? 0));
  return { pushed: all.slice(0, start), replayed: all.slice(start, d), done, live: all.slice(d + 1) };
}

/**
 * checkSubscription checks the contract of a subscription with since: the replay is
 * since + 1 … last_seq, then replay_done, then the live events from last_seq + 1, with no
 * gap, no repeat and nothing out of order; anything pushed before the replay is a copy of a
 * replayed event. It returns the replayed and live events. from is as for subscription.
 */
export function checkSubscription(prefix, socket, topic, since, from = 0) {
  const { pushed, replayed, done, live } = subscription(socket, topic, from);
  check(`${prefix}/replay_done`, done !== undefined && done.since === since && done.truncated === false, { done });
  if (done === undefined) {
    return [];
  }
  consecutive(`${prefix}/replay-then-live-in-order`, [...replayed, ...live], since + 1);
  equal(`${prefix}/replay_done.last_seq`, done.last_seq, replayed.at(-1)?.data?.seq ?? since);
  const strays = pushed.filter((e) => !(e.data.seq > since && e.data.seq <= done.last_seq));
  check(`${prefix}/pushed-before-are-replayed-copies`, strays.length === 0, {
    pushed: pushed.length,
    first: pushed[0]?.data?.seq,
    last: pushed.at(-1)?.data?.seq,
    strays: seqs(strays).slice(0, 20),
    last_seq: done.last_seq,
  });
  return [...replayed, ...live];
}

/**
 * awaitTest asks the Go test to act: it prints {"await": what} and resolves with the line
 * the test writes to stdin once it has.
 */
export function awaitTest(what) {
  process.stdout.write(JSON.stringify({ await: what }) + "\n");
  return new Promise((resolve) => {
    let buf = "";
    const onData = (chunk) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl !== -1) {
        process.stdin.off("data", onData);
        process.stdin.pause();
        resolve(buf.slice(0, nl));
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
    process.stdin.resume();
  });
}

/**
 * readLog reads what a topic stored after since, over GET /<artifact>/stream up to
 * replay_done, as events {name, data}.
 */
export async function readLog(url, token, artifact, topic, since) {
  const s = await openStream(url, token, artifact, topic, since);
  if (s.status !== 200) {
    throw new Error(`GET /${artifact}/stream: ${s.status} ${s.body}`);
  }
  const done = await s.waitFor((f) => f.event === "replay_done", 5000, `the replay of ${topic}`);
  s.close();
  return s.frames.slice(0, s.frames.indexOf(done)).map((f) => ({ name: f.event, data: f.data }));
}
