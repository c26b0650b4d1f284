// Connect/close cycles against a live glow server, for the leak tests of ws/contain_test.go
// (faults A1, A2 and D1) and of connection state recovery (ws/recovery_test.go). The Go test
// hosts the server and measures it; this process only makes the connections, so that
// client-side goroutines do not count.
//
// Environment:
//
//	GLOW_URL           http://host:port of the server
//	GLOW_TOKEN         a valid token (sent as "Bearer <token>"; the refused mode sends a bad one),
//	                   or several, comma-separated: cycle i uses the (i mod n)-th
//	CYCLES_MODE        what one cycle is (below)
//	CYCLES_COUNT       how many cycles in all
//	CYCLES_WORKERS     how many cycles run at once (default 20)
//	CYCLES_TIMEOUT_MS  how long one cycle may take (default 5000)
//	CYCLES_CALL        an event that cycles call once connected, with {} as its body, waiting
//	                   for its ack (status 200) before they go on (websocket, polling, drop and
//	                   recover modes; default: none; recover needs it)
//	CYCLES_CALL_EVERY  which cycles call it: every n-th (default 1, every cycle; recover: all)
//
// Modes — each cycle opens a new connection (forceNew, no reconnection) and ends it:
//
//	websocket     websocket only; connect (and call), then the client disconnects
//	polling       long-polling only, no upgrade; connect (and call), then the client
//	              disconnects
//	drop          websocket; connect (and call), then the connection drops: the client closes
//	              it without disconnecting first, as a failing network would, and the server
//	              keeps the socket's session for connection state recovery
//	recover       websocket; connect and call (whose events tell the client where it is), the
//	              connection drops, the client connects again and must recover its session
//	              (socket.recovered), then it disconnects
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
const tokens = need("GLOW_TOKEN").split(",");
const mode = need("CYCLES_MODE");
const count = Number(need("CYCLES_COUNT"));
const workers = Number(process.env.CYCLES_WORKERS || 20);
const timeoutMs = Number(process.env.CYCLES_TIMEOUT_MS || 5000);
const callEvent = process.env.CYCLES_CALL || "";
const callEvery = Number(process.env.CYCLES_CALL_EVERY || 1);

const transportsOf = {
  websocket: ["websocket"],
  polling: ["polling"],
  drop: ["websocket"],
  recover: ["websocket"],
  upgrade: ["polling", "websocket"],
  kick: ["websocket"],
  "kick-polling": ["polling"],
  refused: ["websocket"],
};
if (!transportsOf[mode] || !(count >= 0) || !(workers > 0) || !(callEvery > 0) || (mode === "recover" && callEvent === "")) {
  process.stderr.write(`bad CYCLES_MODE/CYCLES_COUNT/CYCLES_WORKERS/CYCLES_CALL_EVERY: ${mode} ${count} ${workers} ${callEvery}\n`);
  process.exit(2);
}

const kick = mode === "kick" || mode === "kick-polling";
const callers = new Set(["websocket", "polling", "drop", "recover"]);
const serverEnds = new Set(["io server disconnect", "transport close", "transport error"]);

// cycle runs the i-th connection through its mode and resolves with null, or a failure
// reason.
function cycle(i) {
  const token = tokens[i % tokens.length];
  const calls = callEvent !== "" && callers.has(mode) && (i % callEvery === 0 || mode === "recover");
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
    let dropped = false; // drop and recover: the client closed the connection on purpose
    let events = 0; // events pushed to the socket
    let onEvent = null; // recover: set while it waits for its call's events
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
      } else if (onEvent !== null) {
        finish(`no event of its call within ${timeoutMs} ms`);
      } else {
        finish(`timeout (connected=${socket.connected}, dropped=${dropped})`);
      }
    }, timeoutMs);

    socket.onAny(() => {
      events++;
      onEvent?.();
    });
    // drop closes the connection under the socket, without the DISCONNECT a client sends.
    const drop = () => {
      dropped = true;
      socket.io.engine.close();
    };
    // connected goes on once the socket is connected and its call (if any) acked.
    const connected = () => {
      if (mode === "websocket" || mode === "polling") {
        finish(null);
      } else if (mode === "drop") {
        drop();
      } else if (events > 0) {
        drop();
      } else {
        // recover: the client needs an event's offset to recover; its call's events come
        // before the ack, but wait for one if need be.
        onEvent = () => {
          onEvent = null;
          drop();
        };
      }
    };

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
      if (dropped) {
        // recover: connected again; the session must have been recovered.
        finish(socket.recovered ? null : "connected again without recovering the session");
      } else if (mode === "refused") {
        finish("connected with a bad token");
      } else if (calls) {
        socket.timeout(timeoutMs).emit(callEvent, {}, (err, res) => {
          if (err) {
            finish(`${callEvent}: no ack`);
          } else if (res?.status !== 200) {
            finish(`${callEvent}: status ${res?.status}`);
          } else {
            connected();
          }
        });
      } else if (mode === "upgrade") {
        const engine = socket.io.engine;
        if (engine.transport.name === "websocket") {
          finish(null);
        } else {
          engine.once("upgrade", () => finish(null));
          engine.once("upgradeError", (err) => finish(`upgradeError: ${err.message}`));
        }
      } else if (!kick) {
        connected();
      }
      // kick modes: wait for the server.
    });
    socket.on("disconnect", (reason) => {
      if (kick) {
        // A revoked session gets a namespace disconnect; a connection the server closes
        // reads as a transport close (websocket) or error (polling: its next request fails).
        finish(serverEnds.has(reason) ? null : `disconnect: ${reason}`);
      } else if (dropped && reason === "forced close") {
        if (mode === "drop") {
          finish(null);
        } else {
          // Connect again with the session's id and the last event's offset, once the server
          // has had a moment to notice the drop (a session is kept when it does).
          setTimeout(() => done || socket.connect(), 20);
        }
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
    const reason = await cycle(next++);
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
