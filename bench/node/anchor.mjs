// The Node socket.io servers that make bench compares glow with. tools/loadgen starts this
// script as `node anchor.mjs <mode> [<body>]`; it listens on a free port of 127.0.0.1,
// prints {"url": "http://127.0.0.1:<port>"} as one line on stdout, and runs until its stdin
// closes or it gets SIGTERM.
//
//   echo       every event is acknowledged with its own arguments; no authentication.
//   contract   glow's wire contract with no storage and no validation: the handshake needs a
//              non-empty auth.token ("Bearer <token>"), the token names the profile (what
//              comes before its first dot, or the whole token), every socket joins the room
//              profile:<id>, every event is acknowledged with {status: 200, body} and pushes
//              <event>.started and <event>.completed to the profile's room, with the payloads
//              glow gives them. <body> is the JSON answered (glow's own answer to the call,
//              given by the load generator); its profile.id and session_id, where present,
//              become the socket's.
//   broadcast  the chat fan-out's counterpart: "broadcast" {topic, frames, run_id} makes the
//              server emit <frames> attempt.generate.text.progress events to every connected
//              socket, numbered per topic as glow numbers a topic's events, and then
//              acknowledges {status: 200, body: {last_seq}}; "published" {topic} is
//              acknowledged with {status: 200, body: {last_seq, times}}: when each event of
//              the topic was emitted (Unix microseconds; times[i] is event i + 1's).
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";

// takeAck removes the ack callback from an event's arguments, if the event has one.
function takeAck(args) {
  return typeof args.at(-1) === "function" ? args.pop() : null;
}

function echo() {
  io.on("connection", (socket) => {
    socket.onAny((_event, ...args) => {
      const ack = takeAck(args);
      if (ack) ack(...args);
    });
  });
}

// The last number given to each topic's events.
const seqs = new Map();
function nextSeq(topic) {
  const n = (seqs.get(topic) ?? 0) + 1;
  seqs.set(topic, n);
  return n;
}

function contract() {
  const base = JSON.parse(template);
  const answerFor = (profile) => {
    const body = { ...base };
    if (body.profile !== null && typeof body.profile === "object") body.profile = { ...body.profile, id: profile };
    if ("session_id" in body) body.session_id = randomUUID();
    return body;
  };
  io.use((socket, next) => {
    const raw = socket.handshake.auth?.token;
    const token = typeof raw === "string" && raw.startsWith("Bearer ") ? raw.slice("Bearer ".length) : "";
    if (token === "") {
      next(new Error("unauthorized"));
      return;
    }
    const dot = token.indexOf(".");
    socket.data.profile = dot > 0 ? token.slice(0, dot) : token;
    next();
  });
  io.on("connection", (socket) => {
    const profile = socket.data.profile;
    const room = `profile:${profile}`;
    const topic = `profile/${profile}`;
    const body = answerFor(profile);
    socket.join(room);
    socket.onAny((event, ...args) => {
      const ack = takeAck(args);
      const head = { call_id: randomUUID(), operation: event, transport: "socketio" };
      io.to(room).emit(`${event}.started`, { topic, seq: nextSeq(topic), ...head, request: args[0] ?? null });
      if (ack) ack({ status: 200, body });
      io.to(room).emit(`${event}.completed`, { topic, seq: nextSeq(topic), ...head, status: 200, body });
    });
  });
}

// Bounds of the broadcast mode: frames per message, and publish times kept per topic.
const maxFrames = 1000;
const maxTimes = 1 << 20;
const words = [" Sure", ",", " the", " onboarding", " plan", " starts", " with", " a", " short", " welcome",
  " session", " and", " a", " mentor", " for", " each", " new", " colleague", "."];

function broadcast() {
  const times = new Map(); // topic → publish times, in Unix microseconds
  const micros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
  io.on("connection", (socket) => {
    socket.on("broadcast", (req, ack) => {
      const topic = String(req?.topic ?? "");
      const frames = Math.min(Math.max(Number(req?.frames) | 0, 1), maxFrames);
      const runID = String(req?.run_id ?? "");
      if (!times.has(topic)) times.set(topic, []);
      const at = times.get(topic);
      let seq = 0;
      for (let i = 0; i < frames; i++) {
        seq = nextSeq(topic);
        if (at.length < maxTimes) at.push(micros());
        io.emit("attempt.generate.text.progress", { topic, seq, delta: words[seq % words.length], run_id: runID });
      }
      if (typeof ack === "function") ack({ status: 200, body: { last_seq: seq } });
    });
    socket.on("published", (req, ack) => {
      const topic = String(req?.topic ?? "");
      if (typeof ack === "function") ack({ status: 200, body: { last_seq: seqs.get(topic) ?? 0, times: times.get(topic) ?? [] } });
    });
  });
}

const [mode, template] = process.argv.slice(2);
const modes = { echo, contract, broadcast };
if (!Object.hasOwn(modes, mode) || (mode === "contract" && template === undefined)) {
  process.stderr.write("usage: node anchor.mjs echo|contract <body>|broadcast\n");
  process.exit(2);
}

const http = createServer();
const io = new Server(http, { serveClient: false });
modes[mode]();

http.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${http.address().port}` }) + "\n");
});
const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
