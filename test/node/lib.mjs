// Shared helpers of the Node scripts that node_test.go runs against a live glow server.
//
// Every script prints one JSON object per line on stdout:
//
//	{"check": "<name>", "ok": true|false, "detail": ...}   one per check
//	{"summary": {"checks": N, "failed": M}}                  last
//
// and exits 0 when every check passed, 1 when one failed, 2 when the script itself broke
// (an exception or the global deadline). It always ends with process.exit: the socket.io
// client keeps a closed connection open for ~30 s otherwise.

import { isDeepStrictEqual } from "node:util";
import { io } from "socket.io-client";

const results = [];

/** env returns a required environment variable or stops the script. */
export function env(name) {
  const v = process.env[name];
  if (!v) {
    abort(`environment variable ${name} is required`);
  }
  return v;
}

/** check records one result; detail should explain a failure. It returns ok. */
export function check(name, ok, detail) {
  ok = Boolean(ok);
  results.push({ name, ok });
  const line = { check: name, ok };
  if (detail !== undefined) {
    line.detail = detail;
  }
  process.stdout.write(JSON.stringify(line) + "\n");
  return ok;
}

/** equal checks that got deep-equals want. */
export function equal(name, got, want) {
  return check(name, isDeepStrictEqual(got, want), { got, want });
}

/** finish prints the summary and exits. */
export function finish() {
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(JSON.stringify({ summary: { checks: results.length, failed } }) + "\n");
  process.exit(failed === 0 ? 0 : 1);
}

/** abort reports a broken script and exits 2. */
export function abort(message) {
  process.stdout.write(JSON.stringify({ check: "script", ok: false, detail: String(message) }) + "\n");
  process.stderr.write(`abort: ${message}\n`);
  process.exit(2);
}

/**
 * run calls main under a global deadline, then finish. Anything thrown, and the deadline,
 * end the script with abort.
 */
export function run(main, deadlineMs = 20000) {
  const timer = setTimeout(() => abort(`deadline of ${deadlineMs} ms exceeded`), deadlineMs);
  process.on("unhandledRejection", (err) => abort(`unhandled rejection: ${err?.stack ?? err}`));
  main().then(
    () => {
      clearTimeout(timer);
      finish();
    },
    (err) => abort(err?.stack ?? err),
  );
}

/** withTimeout rejects when promise does not settle within ms. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** sleep waits ms. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * dial opens a socket.io connection that never reconnects, with the token (none when
 * empty) in the handshake, and resolves with {socket, error}: error is the connect_error,
 * socket is connected when error is null. Events pushed by the server are recorded in
 * socket.received (see waitEvent). opts are the client's options, plus onEngine: a function
 * called with the socket as soon as its engine exists, before the connection opens.
 */
export function dial(url, token, opts = {}) {
  const { onEngine, ...rest } = opts;
  const options = { reconnection: false, forceNew: true, timeout: 10000, ...rest };
  if (token) {
    options.auth = { token: `Bearer ${token}` };
  }
  const socket = io(url, options);
  recordEvents(socket);
  onEngine?.(socket);
  const outcome = new Promise((resolve) => {
    socket.once("connect", () => resolve({ socket, error: null }));
    socket.once("connect_error", (error) => resolve({ socket, error }));
  });
  return withTimeout(outcome, 12000, "connect or connect_error");
}

/** connect is dial for a handshake that must succeed. */
export async function connect(url, token, opts = {}) {
  const { socket, error } = await dial(url, token, opts);
  if (error) {
    socket.close();
    throw new Error(`connect refused: ${error.message} ${JSON.stringify(error.data)}`);
  }
  return socket;
}

function recordEvents(socket) {
  socket.received = [];
  socket.waiters = [];
  socket.onAny((name, ...args) => {
    socket.received.push({ name, data: args[0], at: socket.received.length });
    for (const w of [...socket.waiters]) {
      w();
    }
  });
}

/**
 * waitEvent resolves with the first recorded event named name whose data matches (events
 * received before the call count), or rejects after ms.
 */
export function waitEvent(socket, name, match = () => true, ms = 5000) {
  const find = () => socket.received.find((e) => e.name === name && match(e.data));
  const found = find();
  if (found) {
    return Promise.resolve(found);
  }
  let waiter;
  const p = new Promise((resolve) => {
    waiter = () => {
      const e = find();
      if (e) {
        resolve(e);
      }
    };
    socket.waiters.push(waiter);
  });
  return withTimeout(p, ms, `event ${name}`).finally(() => {
    socket.waiters = socket.waiters.filter((w) => w !== waiter);
  });
}

/** call emits an operation's event with its body and resolves with the ack's first argument. */
export function call(socket, event, body, ms = 10000) {
  return socket.timeout(ms).emitWithAck(event, body);
}

/** post calls POST url+path over HTTP with a JSON body and resolves with {status, type, body}. */
export async function post(url, token, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const res = await fetch(url + path, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, type: res.headers.get("content-type"), body: parsed };
}

/** isUUID reports whether v is a UUID string. */
export const isUUID = (v) =>
  typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);

/** isProblem reports whether v looks like a problem document of status. */
export const isProblem = (v, status) =>
  v !== null &&
  typeof v === "object" &&
  v.status === status &&
  typeof v.title === "string" &&
  v.title.length > 0;
