// Connect/close cycles against a live glow server, for the leak tests of ws/contain_test.go
// (faults A1, A2 and D1). The Go test hosts the server and measures it; this process only
// makes the connections, so that client-side goroutines do not count.
//
// Environment:
//
//	GLOW_URL           http://host:port of the server
//	GLOW_TOKEN         a valid token (sent as "Bearer <token>"; the refused mode sends a bad one)
//	CYCLES_MODE        what one cycle is (below)
//	CYCLES_COUNT       how many cycles in all
//	CYCLES_WORKERS     how many cycles run at once (default 20)
//	CYCLES_TIMEOUT_MS  how long one cycle may take (default 5000)
//
// Modes — each cycle opens a new connection (forceNew, no reconnection) and ends it:
//
//	websocket     websocket only; connect, then the client disconnects
//	polling       long-polling only, no upgrade; connect, then the client disconnects
//	upgrade       polling, upgraded to websocket; once upgraded, the client disconnects
//	kick          websocket; connect, then wait until the server ends the socket (the Go test
//	              revokes the session, or closes or disconnects the sockets, meanwhile); a
//	              connection closed before its CONNECT ack arrived counts as kicked too
//	kick-polling  kick over long-polling only
//	refused       websocket with a token the server refuses; wait for connect_error
//
// Output: one JSON line {"mode", "cycles", "ok", "failed", "failures": {reason: count},
// "ms"} on stdout. Exit status 0 when every cycle went as described, 1 otherwise, 2 on a
// broken setup. It always ends with process.exit: the client keeps closed websockets open
// for ~30 s otherwise.

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
const mode = need("CYCLES_MODE");
const count = Number(need("CYCLES_COUNT"));
const workers = Number(process.env.CYCLES_WORKERS || 20);
const timeoutMs = Number(process.env.CYCLES_TIMEOUT_MS || 5000);

const transportsOf = {
  websocket: ["websocket"],
  polling: ["polling"],
  upgrade: ["polling", "websocket"],
  kick: ["websocket"],
  "kick-polling": ["polling"],
  refused: ["websocket"],
};
if (!transportsOf[mode] || !(count >= 0) || !(workers > 0)) {
  process.stderr.write(`bad CYCLES_MODE/CYCLES_COUNT/CYCLES_WORKERS: ${mode} ${count} ${workers}\n`);
  process.exit(2);
}

const kick = mode === "kick" || mode === "kick-polling";
const serverEnds = new Set(["io server disconnect", "transport close", "transport error"]);

// cycle runs one connection through its mode and resolves with null, or a failure reason.
function cycle() {
  return new Promise((resolve) => {
    const socket = io(url, {
      transports: transportsOf[mode],
      upgrade: mode === "upgrade",
      rememberUpgrade: false,
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      auth: { token: mode === "refused" ? "Bearer glow_not_a_token" : `Bearer ${token}` },
    });
    let done = false;
    const finish = (reason) => {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(timer);
      socket.close(); // a no-op when the socket is already closed
      resolve(reason);
    };
    const timer = setTimeout(() => {
      if (mode === "upgrade" && socket.connected) {
        finish(`no upgrade within ${timeoutMs} ms`);
      } else {
        finish(`timeout (connected=${socket.connected})`);
      }
    }, timeoutMs);

    socket.on("connect_error", (err) => {
      if (mode === "refused") {
        finish(err.message === "unauthorized" ? null : `connect_error: ${err.message}`);
      } else if (kick && socket.io.engine?.id && /^(xhr poll|websocket) error$/.test(err.message)) {
        finish(null); // the server closed the connection before its CONNECT ack arrived
      } else {
        finish(`connect_error: ${err.message}`);
      }
    });
    socket.on("connect", () => {
      if (mode === "refused") {
        finish("connected with a bad token");
      } else if (mode === "websocket" || mode === "polling") {
        finish(null);
      } else if (mode === "upgrade") {
        const engine = socket.io.engine;
        if (engine.transport.name === "websocket") {
          finish(null);
        } else {
          engine.once("upgrade", () => finish(null));
          engine.once("upgradeError", (err) => finish(`upgradeError: ${err.message}`));
        }
      }
      // kick modes: wait for the server.
    });
    socket.on("disconnect", (reason) => {
      if (kick) {
        // A revoked session gets a namespace disconnect; a connection the server closes
        // reads as a transport close (websocket) or error (polling: its next request fails).
        finish(serverEnds.has(reason) ? null : `disconnect: ${reason}`);
      } else if (!done) {
        finish(`disconnect: ${reason}`);
      }
    });
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
    const reason = await cycle();
    if (reason === null) {
      ok++;
    } else {
      failed++;
      failures[reason] = (failures[reason] || 0) + 1;
    }
  }
}

await Promise.all(Array.from({ length: Math.min(workers, Math.max(count, 1)) }, worker));
// A long-polling client says goodbye with a last POST, sent after close() returns: give the
// last cycles' requests time to leave before exiting, or the server only notices those
// connections at their ping timeout.
await new Promise((resolve) => setTimeout(resolve, 300));
process.stdout.write(JSON.stringify({ mode, cycles: count, ok, failed, failures, ms: Date.now() - started }) + "\n");
process.exit(failed === 0 ? 0 : 1);
