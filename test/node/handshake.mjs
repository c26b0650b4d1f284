// The socket.io handshake: refused without a usable token, accepted with one.
//
// Environment: GLOW_URL (http://host:port), GLOW_TOKEN (a valid token).
//
// For each transport (websocket, polling), a handshake with no auth, with a token that does
// not exist, with a valid token with a character changed, and with a valid token that is not
// a string must end in connect_error whose message is exactly "unauthorized" and whose data
// is the 401 problem document; the same handshake with the valid token must connect.

import { check, dial, env, equal, isProblem, run } from "./lib.mjs";

const url = env("GLOW_URL");
const token = env("GLOW_TOKEN");

// The last character replaced by another: a token of the right shape that is not stored.
const tampered = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");

const refused = {
  "no-token": {},
  "unknown-token": { auth: { token: "Bearer glow_not_a_token" } },
  "tampered-token": { auth: { token: `Bearer ${tampered}` } },
  "token-not-a-string": { auth: { token: 12345 } },
};

run(async () => {
  for (const transport of ["websocket", "polling"]) {
    for (const [name, extra] of Object.entries(refused)) {
      const prefix = `${transport}/${name}`;
      const { socket, error } = await dial(url, "", { transports: [transport], ...extra });
      socket.close();
      if (!check(`${prefix}/refused`, error !== null, error ? undefined : "the handshake was accepted")) {
        continue;
      }
      equal(`${prefix}/message`, error.message, "unauthorized");
      check(`${prefix}/data-is-401-problem`, isProblem(error.data, 401) && error.data.title === "Unauthorized", {
        data: error.data ?? null,
      });
      check(`${prefix}/not-connected`, !socket.connected && !socket.active, {
        connected: socket.connected,
        active: socket.active,
      });
    }

    const { socket, error } = await dial(url, token, { transports: [transport] });
    check(`${transport}/valid-token/connected`, error === null && socket.connected, {
      error: error ? { message: error.message, data: error.data ?? null } : null,
    });
    socket.close();
  }
});
