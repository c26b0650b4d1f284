// A socket.io message over the server's size limit (GLOW_MAX_BODY_BYTES) closes the
// connection that sent it, and only that one. For each transport (websocket only, polling
// only, polling upgraded to websocket) a sender connects, sends a message under the limit
// (answered), then one over it; the script records how the client sees the end
// ("disconnect" reason and details), checks that a bystander socket of another profile still
// gets answers, that the server dropped the sender's socket (its profile turns inactive in
// system.activity_search once its presence grace period is over) and that the sender can
// connect again.
//
// Environment: GLOW_URL; GLOW_MAX_BODY_BYTES; GLOW_TOKEN_ADMIN; GLOW_TOKEN_BYSTANDER;
// GLOW_SENDERS, a JSON object {"<mode>": {"token": ..., "name": <profile name>}} for the
// modes websocket, polling and upgrade, one profile each.

import { call, check, connect, env, equal, post, run, sleep, waitEvent, withTimeout } from "./lib.mjs";

const url = env("GLOW_URL");
const max = Number(env("GLOW_MAX_BODY_BYTES"));
const admin = env("GLOW_TOKEN_ADMIN");
const bystanderToken = env("GLOW_TOKEN_BYSTANDER");
const senders = JSON.parse(env("GLOW_SENDERS"));

const transportsOf = {
  websocket: ["websocket"],
  polling: ["polling"],
  upgrade: ["polling", "websocket"],
};

/** presenceOf is the sender profile's latest presence change, as the admin sees it. */
async function presenceOf(name) {
  const res = await post(url, admin, "/system/activity/search", { search: name });
  return res.body?.profiles?.find((p) => p.profile_name === name);
}

/** waitPresence polls presenceOf until its state is want, or returns the last one seen. */
async function waitPresence(name, want, ms = 5000) {
  const deadline = Date.now() + ms;
  let p;
  while (Date.now() < deadline) {
    p = await presenceOf(name);
    if (p?.state === want) {
      return p;
    }
    await sleep(50);
  }
  return p;
}

/** upgraded resolves once the socket's engine runs on websocket. */
function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") {
    return Promise.resolve();
  }
  return withTimeout(new Promise((resolve) => engine.once("upgrade", resolve)), 5000, "upgrade");
}

run(async () => {
  const bystander = await connect(url, bystanderToken, { transports: ["websocket"] });
  for (const [mode, transports] of Object.entries(transportsOf)) {
    const { token, name } = senders[mode];
    const sender = await connect(url, token, { transports });
    if (mode === "upgrade") {
      await upgraded(sender);
    }
    equal(`${mode}/engine-transport`, sender.io.engine.transport.name, transports[transports.length - 1]);
    equal(`${mode}/sender-active`, (await waitPresence(name, "active"))?.state, "active");

    // Under the limit: answered (422: search is at most 200 characters), still connected.
    const small = await call(sender, "persona.search", { search: "x".repeat(Math.floor(max / 2)) });
    equal(`${mode}/under-limit/answered`, small?.status, 422);
    check(`${mode}/under-limit/still-connected`, sender.connected);

    // Over the limit: the connection ends; the client is told nothing more than how.
    const gone = new Promise((resolve) => sender.once("disconnect", (reason, details) => resolve({ reason, details })));
    let acked = false;
    sender.emit("persona.search", { search: "x".repeat(max * 2) }, () => {
      acked = true;
    });
    const { reason, details } = await withTimeout(gone, 5000, "disconnect after the oversized message");
    const seen = {
      reason,
      description: String(details?.description ?? ""),
      code: details?.context?.code, // the websocket close code
      status: details?.context?.status, // the polling request's HTTP status
    };
    check(`${mode}/over-limit/not-answered`, !acked, seen);
    if (transports[transports.length - 1] === "websocket") {
      // 1009: "Message Too Big" (RFC 6455), with no reason text.
      check(`${mode}/over-limit/closed`, reason === "transport close" && seen.code === 1009, seen);
    } else {
      // The engine answers the POST carrying the message with 413.
      check(`${mode}/over-limit/closed`, reason === "transport error" && seen.status === 413, seen);
    }
    check(`${mode}/over-limit/sender-disconnected`, !sender.connected, seen);

    // The server dropped the sender's socket: its profile, which had no other, turns inactive.
    const p = await waitPresence(name, "inactive");
    equal(`${mode}/server-dropped-sender`, p?.state, "inactive");

    // Everyone else is unaffected, and the sender may come back.
    const health = await call(bystander, "system.health", {});
    equal(`${mode}/bystander/system.health`, health?.status, 200);
    check(`${mode}/bystander/still-connected`, bystander.connected);
    const again = await connect(url, token, { transports });
    const ack = await call(again, "system.health", {});
    equal(`${mode}/sender-reconnects`, ack?.status, 200);
    again.close();
    sender.close();
  }
  // The bystander heard of its own calls only, on the same connection throughout.
  await waitEvent(bystander, "system.health.completed");
  equal("bystander/one-connection", bystander.io.engine.transport.name, "websocket");
  bystander.close();
  await sleep(300); // let long-polling goodbyes reach the server
});
