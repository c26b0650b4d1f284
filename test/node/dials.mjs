// Many websocket dials against a live glow server, counting those whose CONNECT is never
// answered (fault B of ws/contain.go: the engine.io connection opens, then nothing). The Go
// test in ws/contain_test.go hosts the server and asserts on the counts.
//
// Environment:
//
//	GLOW_URL          http://host:port of the server
//	GLOW_TOKEN        a valid token
//	DIALS_COUNT       how many dials in all
//	DIALS_WORKERS     how many dials run at once (default 20)
//	DIALS_TIMEOUT_MS  how long one dial may take to connect (default 2000)
//
// Every dial is a new connection (forceNew), websocket only, without reconnection; it is
// closed once connected. A dial that does not connect in time is a failure, classified as
// "lost-connect" when the engine.io connection was open (the handshake's OPEN arrived, the
// namespace CONNECT was never answered) and "no-open" otherwise; a connect_error is an
// "error: <message>".
//
// Output: one JSON line {"dials", "ok", "failed", "failures": {kind: count}, "ms"}. Exit
// status 0 when every dial connected, 1 otherwise, 2 on a broken setup.

import { io } from "socket.io-client";

function need(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`environment variable ${name} is required\n`);
    process.exit(2);
  }
  return v;
}

const url = need("GLOW_URL");
const token = need("GLOW_TOKEN");
const count = Number(need("DIALS_COUNT"));
const workers = Number(process.env.DIALS_WORKERS || 20);
const timeoutMs = Number(process.env.DIALS_TIMEOUT_MS || 2000);
if (!(count >= 0) || !(workers > 0) || !(timeoutMs > 0)) {
  process.stderr.write(`bad DIALS_COUNT/DIALS_WORKERS/DIALS_TIMEOUT_MS\n`);
  process.exit(2);
}

function dial() {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      auth: { token: `Bearer ${token}` },
    });
    let opened = false;
    socket.io.on("open", () => {
      opened = true;
    });
    let done = false;
    const finish = (kind) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        socket.close();
        resolve(kind);
      }
    };
    const timer = setTimeout(() => finish(opened ? "lost-connect" : "no-open"), timeoutMs);
    socket.on("connect", () => finish(null));
    socket.on("connect_error", (err) => finish(`error: ${err.message}`));
  });
}

const started = Date.now();
const failures = {};
let next = 0;
let ok = 0;
let failed = 0;

async function worker() {
  while (next < count) {
    next++;
    const kind = await dial();
    if (kind === null) {
      ok++;
    } else {
      failed++;
      failures[kind] = (failures[kind] || 0) + 1;
    }
  }
}

await Promise.all(Array.from({ length: Math.min(workers, Math.max(count, 1)) }, worker));
process.stdout.write(JSON.stringify({ dials: count, ok, failed, failures, ms: Date.now() - started }) + "\n");
process.exit(failed === 0 ? 0 : 1);
