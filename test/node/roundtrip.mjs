// Operations as socket.io events, acknowledged with {status, body}, over each way the
// official client connects:
//
//   websocket  transports ["websocket"]: websocket from the start.
//   upgrade    transports ["polling", "websocket"]: the client's own upgrade; calls made at
//              once on connect and after the engine's "upgrade" event.
//   held       polling with the websocket probe held back until calls have been answered
//              over polling, then released: calls before the upgrade are certainly on
//              polling, calls after it on websocket.
//
// Environment: GLOW_URL, GLOW_TOKEN (a token of profile GLOW_PROFILE with role GLOW_ROLE,
// allowed persona.search and profile.context), GLOW_DATABASE (sqlite or postgres).

import { NodeWebSocket, NodeXHR } from "engine.io-client";
import { call, check, connect, env, equal, isProblem, isUUID, post, run, withTimeout } from "./lib.mjs";

const url = env("GLOW_URL");
const token = env("GLOW_TOKEN");
const profile = env("GLOW_PROFILE");
const role = env("GLOW_ROLE");
const database = env("GLOW_DATABASE");

// HTTP's answers, which the acks must carry unchanged.
let httpContext;
let httpInvalid;

const invalidSearch = { page_size: 0 };

/** envelope checks an ack's shape and status and returns its body. */
function envelope(prefix, ack, status) {
  const shaped = ack !== null && typeof ack === "object" && !Array.isArray(ack);
  check(`${prefix}/ack-is-status-and-body`, shaped && isDeepEqualKeys(ack, ["body", "status"]), { ack });
  equal(`${prefix}/status`, shaped ? ack.status : undefined, status);
  return shaped ? ack.body : undefined;
}

const isDeepEqualKeys = (o, keys) => JSON.stringify(Object.keys(o).sort()) === JSON.stringify(keys);

/**
 * calls runs the operations every scenario checks, under prefix; onAck is called with each
 * call's prefix as soon as its ack has arrived.
 */
async function calls(prefix, socket, onAck = () => {}) {
  {
    const p = `${prefix}/system.health`;
    const ack = await call(socket, "system.health", {});
    onAck(p);
    const body = envelope(p, ack, 200) ?? {};
    equal(`${p}/body.status`, body.status, "ok");
    equal(`${p}/body.database`, body.database, database);
    check(`${p}/body.version`, typeof body.version === "string" && body.version.length > 0, { version: body.version });
    check(`${p}/body.uptime_seconds`, Number.isInteger(body.uptime_seconds) && body.uptime_seconds >= 0, {
      uptime_seconds: body.uptime_seconds,
    });
    const skew = Math.abs(Date.parse(body.time) - Date.now());
    check(`${p}/body.time`, Number.isFinite(skew) && skew < 60000, { time: body.time });
  }
  {
    const p = `${prefix}/profile.context`;
    const ack = await call(socket, "profile.context", {});
    onAck(p);
    const body = envelope(p, ack, 200) ?? {};
    equal(`${p}/body.profile.name`, body.profile?.name, profile);
    check(`${p}/body.profile.id`, isUUID(body.profile?.id), { id: body.profile?.id });
    equal(`${p}/body.role.name`, body.role?.name, role);
    check(`${p}/body.session_id`, isUUID(body.session_id), { session_id: body.session_id });
    check(
      `${p}/body.permissions`,
      Array.isArray(body.permissions) &&
        body.permissions.some((x) => x.artifact === "persona" && x.operation === "search"),
      { permissions: body.permissions },
    );
    equal(`${p}/body-equals-http`, body, httpContext.body);
  }
  {
    const p = `${prefix}/persona.search`;
    const ack = await call(socket, "persona.search", {});
    onAck(p);
    const body = envelope(p, ack, 200) ?? {};
    check(`${p}/body.personas`, Array.isArray(body.personas), { personas: body.personas });
    check(`${p}/body.total_count`, Number.isInteger(body.total_count) && body.total_count >= 0, {
      total_count: body.total_count,
    });
    equal(`${p}/body.page_size-default`, body.page_size, 12);
    equal(`${p}/body.page_offset-default`, body.page_offset, 0);
    check(`${p}/body.department_filter`, Array.isArray(body.department_filter?.options), {
      department_filter: body.department_filter,
    });
  }
  {
    const p = `${prefix}/persona.search-invalid`;
    const ack = await call(socket, "persona.search", invalidSearch);
    onAck(p);
    const body = envelope(p, ack, 422) ?? {};
    check(`${p}/body-is-422-problem`, isProblem(body, 422) && body.title === "Unprocessable Entity", { body });
    check(
      `${p}/body.errors-names-page_size`,
      Array.isArray(body.errors) && body.errors.some((e) => String(e.location).includes("page_size")),
      { errors: body.errors },
    );
    equal(`${p}/body-equals-http`, body, httpInvalid.body);
  }
}

/** upgraded waits for the engine's "upgrade" event, or rejects after ms. */
function upgraded(socket, ms = 5000) {
  const engine = socket.io.engine;
  if (socket.upgradedTo) {
    return Promise.resolve(socket.upgradedTo);
  }
  return withTimeout(new Promise((resolve) => engine.once("upgrade", (t) => resolve(t.name))), ms, "engine upgrade");
}

/** watchEngine records the engine's upgrade on the socket, from the moment it is created. */
function watchEngine(socket) {
  const engine = socket.io.engine;
  socket.upgradeErrors = [];
  engine.once("upgrade", (t) => (socket.upgradedTo = t.name));
  engine.on("upgradeError", (err) => socket.upgradeErrors.push(String(err?.message ?? err)));
}

async function websocketOnly() {
  const socket = await connect(url, token, { transports: ["websocket"] });
  equal("websocket/engine-transport", socket.io.engine.transport.name, "websocket");
  await calls("websocket", socket);
  equal("websocket/still-websocket", socket.io.engine.transport.name, "websocket");
  socket.close();
}

async function clientUpgrade() {
  const socket = await connect(url, token, {
    transports: ["polling", "websocket"],
    onEngine: watchEngine,
  });
  // A call made at once: whichever transport carries it, it must be answered.
  const first = `at connect on ${socket.io.engine.transport.name}`;
  const ack = await call(socket, "system.health", {});
  check("upgrade/at-connect/system.health", ack?.status === 200 && ack?.body?.status === "ok", { ack, first });

  const name = await upgraded(socket);
  equal("upgrade/upgrade-event-transport", name, "websocket");
  equal("upgrade/engine-transport", socket.io.engine.transport.name, "websocket");
  equal("upgrade/no-upgrade-error", socket.upgradeErrors, []);
  await calls("upgrade/after", socket);
  equal("upgrade/still-websocket", socket.io.engine.transport.name, "websocket");
  socket.close();
}

async function heldUpgrade() {
  // The websocket transport of engine.io-client, whose opening (the upgrade probe) waits
  // until release is called.
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  class HeldWebSocket extends NodeWebSocket {
    doOpen() {
      gate.then(() => {
        if (this.readyState === "opening") {
          super.doOpen();
        }
      });
    }
  }

  const socket = await connect(url, token, { transports: [NodeXHR, HeldWebSocket], onEngine: watchEngine });
  equal("held/engine-transport-before", socket.io.engine.transport.name, "polling");
  await calls("held/before", socket, (p) =>
    check(`${p}/answered-on-polling`, socket.io.engine.transport.name === "polling" && !socket.upgradedTo, {
      transport: socket.io.engine.transport.name,
      upgradedTo: socket.upgradedTo ?? null,
    }),
  );

  release();
  const name = await upgraded(socket);
  equal("held/upgrade-event-transport", name, "websocket");
  equal("held/engine-transport-after", socket.io.engine.transport.name, "websocket");
  equal("held/no-upgrade-error", socket.upgradeErrors, []);
  await calls("held/after", socket, (p) =>
    check(`${p}/answered-on-websocket`, socket.io.engine.transport.name === "websocket", {
      transport: socket.io.engine.transport.name,
    }),
  );
  socket.close();
}

run(async () => {
  httpContext = await post(url, token, "/profile/context", {});
  httpInvalid = await post(url, token, "/persona/search", invalidSearch);
  if (httpContext.status !== 200 || httpInvalid.status !== 422) {
    throw new Error(`unexpected HTTP answers: ${JSON.stringify({ httpContext, httpInvalid })}`);
  }
  await websocketOnly();
  await clientUpgrade();
  await heldUpgrade();
});
