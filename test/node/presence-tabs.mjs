// Browser tabs of one or more profiles, opened and closed one step at a time, for
// presence_test.go. The Go test writes one JSON step per line on stdin and checks the server
// between steps; this process only opens and closes the sockets.
//
// Environment: GLOW_URL.
//
// Steps (stdin, one JSON object a line):
//
//	{"op": "open", "tab": "A", "token": "...", "transports": ["websocket"]}
//	    a new connection (forceNew, no reconnection) with the token; transports is the
//	    client's option (absent: the client's default, polling upgraded to websocket)
//	{"op": "close", "tab": "A"}
//	    the tab closes its socket (socket.close(), as a tab that unloads)
//
// Each step is answered with one check line (lib.mjs): "<n>/<op> <tab>", ok when the step
// happened (open: connected; close: the client saw its own disconnect), with the socket id
// and the transport in detail. The end of stdin closes what is still open and prints the
// summary.

import { createInterface } from "node:readline";
import { abort, check, connect, env, run, withTimeout } from "./lib.mjs";

const url = env("GLOW_URL");
const tabs = new Map();

async function step(n, s) {
  const name = `${n}/${s.op} ${s.tab}`;
  switch (s.op) {
    case "open": {
      if (tabs.has(s.tab)) {
        return check(name, false, "the tab is already open");
      }
      const opts = {};
      if (s.transports) {
        opts.transports = s.transports;
      }
      try {
        const socket = await connect(url, s.token, opts);
        tabs.set(s.tab, socket);
        return check(name, socket.connected, { id: socket.id, transport: socket.io.engine.transport.name });
      } catch (err) {
        return check(name, false, String(err?.message ?? err));
      }
    }
    case "close": {
      const socket = tabs.get(s.tab);
      if (!socket) {
        return check(name, false, "the tab is not open");
      }
      tabs.delete(s.tab);
      const gone = new Promise((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
      socket.close();
      try {
        const reason = await withTimeout(gone, 5000, "disconnect");
        return check(name, reason === "io client disconnect", { id: socket.id, reason });
      } catch (err) {
        return check(name, false, String(err?.message ?? err));
      }
    }
    default:
      abort(`unknown step ${JSON.stringify(s)}`);
  }
}

run(async () => {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    if (line.trim() === "") {
      continue;
    }
    let s;
    try {
      s = JSON.parse(line);
    } catch {
      abort(`step is not JSON: ${line}`);
    }
    n++;
    await step(n, s);
  }
  for (const socket of tabs.values()) {
    socket.close();
  }
}, 28000);
