// Pausing, resuming and stopping running generation runs: over socket.io (a chat reply,
// followed on the editor's socket) and over HTTP (a persona draft, followed over SSE).
//
// Environment: GLOW_URL; GLOW_ADMIN_TOKEN (creates the persona); GLOW_TOKEN, an editor of
// department GLOW_DEPARTMENT_ID (who may chat and draft personas). The server streams local
// text slowly (some 30 ms a word).
//
// Each pass: after a few deltas, run_pause answers the run paused and
// <artifact>.generate.paused follows; no delta comes while it is paused, and its text does
// not grow; run_resume answers it running, .resumed follows and deltas come again; run_stop
// answers it stopped, .stopped follows and nothing after it; the run keeps the text it had;
// a second stop answers 409, as do a pause and a resume of the stopped run.

import { call, check, connect, env, equal, isProblem, post, run, sleep } from "./lib.mjs";
import { makePersona, mustCall, openStream, startAttempt, text, waitFor } from "./realtime-lib.mjs";

const url = env("GLOW_URL");
const admin = env("GLOW_ADMIN_TOKEN");
const token = env("GLOW_TOKEN");
const department = env("GLOW_DEPARTMENT_ID");

const quiet = 450; // ms without a delta while paused: some 15 words' time

/**
 * checkEvents checks a run's events as one client saw them, in arrival order: deltas, then
 * paused, none until resumed, deltas again, stopped, and nothing after it. Each event is
 * {name, data}.
 */
function checkEvents(prefix, events, artifact) {
  const kind = (e) => e.name.slice(`${artifact}.generate.`.length);
  const names = events.map(kind);
  const paused = names.indexOf("paused");
  const resumed = names.indexOf("resumed");
  const stopped = names.indexOf("stopped");
  check(`${prefix}/paused-resumed-stopped-in-order`, 0 < paused && paused < resumed && resumed < stopped, {
    paused,
    resumed,
    stopped,
  });
  const between = events.slice(paused + 1, resumed);
  equal(`${prefix}/nothing-while-paused`, between.map((e) => e.name), []);
  check(`${prefix}/deltas-before-pause`, names.slice(0, paused).includes("text.progress"), { names: names.slice(0, paused) });
  check(`${prefix}/deltas-after-resume`, names.slice(resumed, stopped).includes("text.progress"), {
    names: names.slice(resumed, stopped),
  });
  equal(`${prefix}/nothing-after-stopped`, names.slice(stopped + 1), []);
  equal(`${prefix}/no-completed`, names.filter((n) => n === "completed" || n === "failed"), []);
  equal(`${prefix}/states`, [paused, resumed, stopped].map((i) => events[i]?.data?.status), ["paused", "running", "stopped"]);
  const numbers = events.map((e) => e.data.seq);
  check(`${prefix}/in-seq-order`, numbers.every((s, i) => i === 0 || s > numbers[i - 1]), { numbers });
  return text(events.filter((e) => kind(e) === "text.progress"));
}

run(async () => {
  // ---- over socket.io: a chat reply
  const sock = await connect(url, token, { transports: ["websocket"] });
  const personaId = await makePersona(url, admin, "Pausable Pia", [department]);
  const attempt = await startAttempt(sock, personaId);
  const sent = await mustCall(sock, "attempt.chat_message", { chat_id: attempt.chatId, text: "Can we talk about training?" });
  const runId = sent.reply_run_id;
  const ofRun = () => sock.received.filter((e) => e.data?.run_id === runId && e.name.startsWith("attempt.generate."));
  const deltaCount = () => ofRun().filter((e) => e.name === "attempt.generate.text.progress").length;
  const named = (suffix) => (e) => e.name === `attempt.generate.${suffix}` && e.data?.run_id === runId;

  await waitFor(sock, () => deltaCount() >= 3, 10000, "three deltas");
  const paused = await call(sock, "system.run_pause", { run_id: runId });
  equal("socketio/pause.status", paused?.status, 200);
  equal("socketio/pause.run.status", paused?.body?.run?.status, "paused");
  await waitFor(sock, named("paused"), 5000, "paused");
  const atPause = await mustCall(sock, "system.run_get", { run_id: runId });
  const countAtPause = deltaCount();
  await sleep(quiet);
  equal("socketio/no-deltas-while-paused", deltaCount(), countAtPause);
  const stillPaused = await mustCall(sock, "system.run_get", { run_id: runId });
  equal("socketio/run_get-while-paused.status", stillPaused.run.status, "paused");
  equal("socketio/run_get-while-paused.output-unchanged", stillPaused.run.output, atPause.run.output);

  const resumed = await call(sock, "system.run_resume", { run_id: runId });
  equal("socketio/resume.status", resumed?.status, 200);
  equal("socketio/resume.run.status", resumed?.body?.run?.status, "running");
  const resumedEvent = await waitFor(sock, named("resumed"), 5000, "resumed");
  await waitFor(sock, () => ofRun().filter((e) => e.name.endsWith(".text.progress") && sock.received.indexOf(e) > sock.received.indexOf(resumedEvent)).length >= 3,
    5000, "three deltas after resuming");
  const again = await call(sock, "system.run_resume", { run_id: runId });
  check("socketio/resume-running-is-409", again?.status === 409 && isProblem(again?.body, 409), { ack: again });

  const stopped = await call(sock, "system.run_stop", { run_id: runId });
  equal("socketio/stop.status", stopped?.status, 200);
  equal("socketio/stop.run.status", stopped?.body?.run?.status, "stopped");
  await waitFor(sock, named("stopped"), 5000, "stopped");
  await sleep(300); // anything after stopped would show now
  const seen = checkEvents("socketio", ofRun(), "attempt");
  const after = await mustCall(sock, "system.run_get", { run_id: runId });
  equal("socketio/run_get.status", after.run.status, "stopped");
  equal("socketio/run_get.output-is-the-deltas", after.run.output, seen);
  check("socketio/stopped-with-some-text", seen.length > 0, { text: seen });
  const stop2 = await call(sock, "system.run_stop", { run_id: runId });
  check("socketio/second-stop-is-409", stop2?.status === 409 && isProblem(stop2?.body, 409), { ack: stop2 });
  const pause2 = await call(sock, "system.run_pause", { run_id: runId });
  check("socketio/pause-stopped-is-409", pause2?.status === 409, { ack: pause2 });
  const chat = await mustCall(sock, "attempt.chat_get", { chat_id: attempt.chatId });
  equal("socketio/no-reply-stored", chat.messages.map((m) => m.role), ["user"]);
  check("socketio/no-reply-streaming", chat.reply === undefined, { reply: chat.reply });

  // ---- over HTTP: a persona draft, followed over SSE
  const started = await post(url, token, "/persona/generate", {
    instructions: ["A hospital purchasing manager who wants hard numbers on delivery and training"],
  });
  equal("http/generate.status", started.status, 200);
  const genRun = started.body.run;
  equal("http/generate.topic", genRun?.topic, `run/${genRun?.id}`);
  const sse = await openStream(url, token, "persona", genRun.topic, 0);
  equal("http/sse.status", sse.status, 200);
  const frameDeltas = () => sse.frames.filter((f) => f.event === "persona.generate.text.progress").length;
  const frame = (suffix) => (f) => f.event === `persona.generate.${suffix}`;

  await sse.waitFor(() => frameDeltas() >= 3, 10000, "three deltas over SSE");
  const p = await post(url, token, "/system/run/pause", { run_id: genRun.id });
  equal("http/pause.status", p.status, 200);
  equal("http/pause.run.status", p.body?.run?.status, "paused");
  await sse.waitFor(frame("paused"), 5000, "paused over SSE");
  const framesAtPause = frameDeltas();
  await sleep(quiet);
  equal("http/no-deltas-while-paused", frameDeltas(), framesAtPause);
  const g = await post(url, token, "/system/run/get", { run_id: genRun.id });
  equal("http/run_get-while-paused.status", g.body?.run?.status, "paused");

  const r = await post(url, token, "/system/run/resume", { run_id: genRun.id });
  equal("http/resume.status", r.status, 200);
  equal("http/resume.run.status", r.body?.run?.status, "running");
  const resumedFrame = await sse.waitFor(frame("resumed"), 5000, "resumed over SSE");
  await sse.waitFor(() => sse.frames.slice(sse.frames.indexOf(resumedFrame)).filter(frame("text.progress")).length >= 2,
    5000, "deltas after resuming over SSE");

  const s1 = await post(url, token, "/system/run/stop", { run_id: genRun.id });
  equal("http/stop.status", s1.status, 200);
  equal("http/stop.run.status", s1.body?.run?.status, "stopped");
  await sse.waitFor(frame("stopped"), 5000, "stopped over SSE");
  await sleep(300);
  sse.close();
  const frames = sse.frames.filter((f) => f.event !== "replay_done").map((f) => ({ name: f.event, data: f.data }));
  equal("http/frames-numbered-from-1", frames.map((f) => f.data.seq), frames.map((_, i) => i + 1));
  const streamed = checkEvents("http", frames, "persona");
  const s2 = await post(url, token, "/system/run/stop", { run_id: genRun.id });
  check("http/second-stop-is-409", s2.status === 409 && isProblem(s2.body, 409) && s2.type?.startsWith("application/problem+json"), s2);
  const final = await post(url, token, "/system/run/get", { run_id: genRun.id });
  equal("http/run_get.status", final.body?.run?.status, "stopped");
  equal("http/run_get.output-is-the-deltas", final.body?.run?.output, streamed);
  const drafts = await post(url, token, "/persona/drafts", {});
  equal("http/no-draft-saved", [drafts.status, drafts.body?.total_count], [200, 0]);

  // The editor's socket heard of the HTTP pass too: its states are pushed to the profile.
  const pushed = sock.received.filter((e) => e.data?.run_id === genRun.id).map((e) => e.name);
  for (const state of ["paused", "resumed", "stopped"]) {
    check(`mixed/socket-got-persona.generate.${state}`, pushed.includes(`persona.generate.${state}`), { pushed: [...new Set(pushed)] });
  }
  sock.close();
});
