// glow used from a page of another origin, in headless Chromium (Debian's, driven by
// playwright-core): the page calls an operation over HTTP with its token, connects with the
// default socket.io-client (long-polling, then the upgrade to websocket), streams a chat
// reply, and follows the chat's topic over server-sent events with a stream ticket.
//
// Environment: GLOW_URL; GLOW_PAGE_URL, a page of another origin that loads the
// socket.io-client bundle (the Go test serves it, and lists its origin in
// GLOW_CORS_ORIGINS); GLOW_ADMIN_TOKEN (creates the persona); GLOW_TOKEN, a learner of
// department GLOW_DEPARTMENT_ID; GLOW_CHROMIUM, the browser's executable.

import { chromium } from "playwright-core";

import { check, env, equal, run } from "./lib.mjs";
import { makePersona } from "./realtime-lib.mjs";

const url = env("GLOW_URL");
const pageURL = env("GLOW_PAGE_URL");

/** inPage runs in the page: everything it does is a cross-origin request of the browser's. */
async function inPage({ glow, token, personaId }) {
  const within = (promise, ms, what) =>
    Promise.race([promise, new Promise((_, fail) => setTimeout(() => fail(new Error(`no ${what} within ${ms} ms`)), ms))]);
  const out = { origin: location.origin };

  const res = await fetch(`${glow}/profile/context`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: "{}",
  });
  out.http = { status: res.status, callIdReadable: /^[0-9a-f-]{36}$/.test(res.headers.get("Glow-Call-Id") ?? "") };

  const socket = io(glow, { auth: { token: `Bearer ${token}` } }); // the defaults: polling, then websocket
  const upgraded = new Promise((ok) => socket.io.on("open", () => {
    out.firstTransport = socket.io.engine.transport.name; // the upgrade may be done before "connect"
    socket.io.engine.once("upgrade", (t) => ok(t.name));
  }));
  await within(new Promise((ok, fail) => {
    socket.once("connect", ok);
    socket.once("connect_error", (e) => fail(new Error(`connect_error: ${e.message}`)));
  }), 10000, "connect");

  const pieces = [];
  socket.on("attempt.generate.text.progress", (e) => pieces.push(e));
  const start = await socket.emitWithAck("attempt.start", { persona_id: personaId });
  out.start = start.status;
  const attemptId = start.body.attempt_id;
  const chatId = start.body.chat_id;
  const completed = new Promise((ok) => socket.on("attempt.generate.completed", ok));
  const sent = await socket.emitWithAck("attempt.chat_message", { chat_id: chatId, text: "Hello from a browser" });
  out.message = sent.status;
  const runId = sent.body.reply_run_id;
  const done = await within(completed, 20000, "attempt.generate.completed");
  out.upgradedTo = await within(upgraded, 10000, "upgrade");
  out.streamed = pieces.filter((e) => e.run_id === runId).map((e) => e.delta).join("");
  out.deltas = pieces.length;
  out.completedText = done.text;
  const chat = await socket.emitWithAck("attempt.chat_get", { chat_id: chatId });
  out.stored = chat.body.messages.at(-1)?.text;

  const ticket = await socket.emitWithAck("system.stream_ticket", {});
  out.ticket = ticket.status;
  const source = new EventSource(`${glow}/attempt/stream?topic=attempt/${attemptId}&since=0&ticket=${ticket.body.ticket}`);
  const replayed = [];
  source.addEventListener("attempt.generate.text.progress", (e) => replayed.push(JSON.parse(e.data)));
  await within(new Promise((ok, fail) => {
    source.addEventListener("replay_done", ok);
    source.onerror = () => fail(new Error("the EventSource failed"));
  }), 10000, "replay_done over SSE");
  source.close();
  out.sse = replayed.filter((e) => e.run_id === runId).map((e) => e.delta).join("");
  socket.close();
  return out;
}

run(async () => {
  const personaId = await makePersona(url, env("GLOW_ADMIN_TOKEN"), "Browsing Bea", [env("GLOW_DEPARTMENT_ID")]);
  const browser = await chromium.launch({
    executablePath: env("GLOW_CHROMIUM"),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(pageURL);
    const out = await page.evaluate(inPage, { glow: url, token: env("GLOW_TOKEN"), personaId });
    check("page/is-another-origin", out.origin !== new URL(url).origin, { page: out.origin, glow: url });
    equal("http/status", out.http.status, 200);
    check("http/exposed-header", out.http.callIdReadable, out.http);
    equal("socketio/first-transport", out.firstTransport, "polling");
    equal("socketio/upgraded-to", out.upgradedTo, "websocket");
    equal("socketio/attempt.start", out.start, 200);
    equal("socketio/chat_message", out.message, 200);
    check("chat/many-deltas", out.deltas >= 10, { deltas: out.deltas });
    equal("chat/deltas-make-completed-text", out.streamed, out.completedText);
    equal("chat/deltas-make-stored-reply", out.streamed, out.stored);
    equal("sse/ticket", out.ticket, 200);
    equal("sse/replay-is-the-reply", out.sse, out.stored);
    equal("page/no-errors", errors, []);
  } finally {
    await browser.close();
  }
}, 60000);
