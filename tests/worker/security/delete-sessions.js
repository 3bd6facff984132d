// @ts-check
// Bad inputs and storage faults tried against `DELETE /sessions` (ending all the caller's
// other sessions): one row per situation (see ../security.test.js for how a row runs and what
// every response is checked for).
import { expect } from "vitest";
import { sha256, uid, unknownSessionId } from "../../app.js";

export const route = "DELETE /sessions";

/** @param {import("../../app.js").TestApp} app */
const twoOfOneUser = async (app) => {
  const userId = uid("all");
  return { me: await app.mintSession({ userId }), other: await app.mintSession({ userId }) };
};

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (the other session ended, the current one kept)",
    setup: twoOfOneUser,
    request: (ctx) => ({ method: "DELETE", path: "/sessions", session: ctx.me.id }),
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body).toEqual({ revoked: 1 });
        expect(await app.kv.get(`session:${sha256(ctx.other.id)}`)).toBeNull();
        expect(await app.sessionStatus(ctx.other.id)).toBe(401);
        expect(await app.sessionStatus(ctx.me.id)).toBe(200);
      },
    },
  },
  {
    situation: "no credentials",
    request: { method: "DELETE", path: "/sessions" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ method: "DELETE", path: "/sessions", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "the admin token (not a session)",
    setup: twoOfOneUser,
    request: { method: "DELETE", path: "/sessions", admin: true },
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.other.id)).toBe(200) },
  },
  {
    situation: "session cookie from another site (`Sec-Fetch-Site: cross-site`)",
    setup: twoOfOneUser,
    request: (ctx) => ({
      method: "DELETE",
      path: "/sessions",
      headers: { Cookie: `__Host-session=${ctx.me.id}`, "Sec-Fetch-Site": "cross-site" },
    }),
    expect: { status: 403, code: "forbidden", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.other.id)).toBe(200) },
  },
  {
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ method: "DELETE", path: "/sessions", session: ctx.id }),
    expect: { status: 503, code: "unavailable" },
  },
];
