// Parallel calls on one socket, for the fault C test of ws/contain_test.go: the Go test
// hosts a server whose slow event sleeps, and asserts on the timings and statuses this
// script reports.
//
// Environment:
//
//	GLOW_URL        http://host:port of the server
//	GLOW_TOKEN      a valid token
//	CALLS_SLOW      the slow event (its handler sleeps)
//	CALLS_FAST      a fast event
//	CALLS_PARALLEL  slow calls made at once in phase "parallel" (at most the server's limit)
//	CALLS_OVER      slow calls made at once in phase "over" (more than the server's limit)
//	CALLS_SEQUENCE  calls made one after the other, each once the previous one is acked
//	CALLS_PHASES    the phases to run, comma-separated (default: all, in the order below)
//
// Phases, on a socket A (and a second socket B), all over websocket:
//
//	parallel  CALLS_PARALLEL slow calls on A at once; 50 ms later a fast call on A
//	over      CALLS_OVER slow calls on A at once; 50 ms later a fast call on A and one on B
//	after     one slow call on A, once every call of "over" is acked
//	sequence  CALLS_SEQUENCE fast calls on A, each sent when the previous one is acked
//
// Output: one JSON line with, per phase, the acks' statuses counted ({"200": n, "429": m}),
// and the latencies (ms) the test asserts on. Exit status 0 when the script ran (whatever
// it measured), 2 when it broke.

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
const slow = need("CALLS_SLOW");
const fast = need("CALLS_FAST");
const parallel = Number(need("CALLS_PARALLEL"));
const over = Number(need("CALLS_OVER"));
const sequence = Number(need("CALLS_SEQUENCE"));
const phases = new Set((process.env.CALLS_PHASES || "parallel,over,after,sequence").split(","));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      auth: { token: `Bearer ${token}` },
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
  });
}

// call resolves with {status, ms}; status is "timeout" when no ack came within 10 s.
async function call(socket, event) {
  const start = performance.now();
  let status;
  try {
    const ack = await socket.timeout(10000).emitWithAck(event, {});
    status = ack && typeof ack === "object" ? ack.status : `bad ack ${JSON.stringify(ack)}`;
  } catch {
    status = "timeout";
  }
  return { status, ms: Math.round(performance.now() - start) };
}

function statuses(results) {
  const out = {};
  for (const r of results) {
    out[r.status] = (out[r.status] || 0) + 1;
  }
  return out;
}

const maxMs = (results) => Math.max(0, ...results.map((r) => r.ms));

async function main() {
  const a = await connect();
  const b = await connect();
  const report = {};

  if (phases.has("parallel")) {
    const start = performance.now();
    const slowCalls = Array.from({ length: parallel }, () => call(a, slow));
    await sleep(50);
    const fastCall = await call(a, fast);
    const slowResults = await Promise.all(slowCalls);
    report.parallel = {
      slow: statuses(slowResults),
      slowMaxMs: maxMs(slowResults),
      allMs: Math.round(performance.now() - start),
      fast: fastCall,
    };
  }
  await sleep(100);

  if (phases.has("over")) {
    const slowCalls = Array.from({ length: over }, () => call(a, slow));
    await sleep(50);
    const [fastA, fastB] = await Promise.all([call(a, fast), call(b, fast)]);
    const slowResults = await Promise.all(slowCalls);
    const refused = slowResults.filter((r) => r.status === 429);
    report.over = {
      slow: statuses(slowResults),
      refusedMaxMs: maxMs(refused),
      fastA,
      fastB,
    };
  }

  if (phases.has("after")) {
    await sleep(100);
    report.after = await call(a, slow);
  }

  if (phases.has("sequence")) {
    const results = [];
    for (let i = 0; i < sequence; i++) {
      results.push(await call(a, fast));
    }
    report.sequence = { calls: sequence, statuses: statuses(results) };
  }

  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(2);
});
