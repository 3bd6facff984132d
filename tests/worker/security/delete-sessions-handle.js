// @ts-check
// Bad inputs and storage faults tried against `DELETE /sessions/:handle` (ending one of the
// caller's own sessions): one row per situation (see ../security.test.js for how a row runs
// and what every response is checked for).
import { expect } from "vitest";
import { sha256, unknownSessionId, uid } from "../../app.js";

export const route = "DELETE /sessions/:handle";

/** @param {import("../../app.js").TestApp} app */
const twoOfOneUser = async (app) => {
  const userId = uid("own");
  return { me: await app.mintSessionWithHandle({ userId }), other: await app.mintSessionWithHandle({ userId }) };
};

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (another of the caller's sessions ended, its KV copy gone)",
    setup: twoOfOneUser,
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${ctx.other.handle}`, session: ctx.me.id }),
    expect: {
      status: 204,
      check: async (r, ctx, app) => {
        expect(await app.kv.get(`session:${sha256(ctx.other.id)}`)).toBeNull();
        expect(await app.sessionStatus(ctx.other.id)).toBe(401);
        expect(await app.sessionStatus(ctx.me.id)).toBe(200);
      },
    },
  },
  {
    situation: "another user's session (404, still valid)",
    setup: async (app) => ({ me: await app.mintSession(), other: await app.mintSessionWithHandle() }),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${ctx.other.handle}`, session: ctx.me.id }),
    expect: { status: 404, code: "not_found", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.other.id)).toBe(200) },
  },
  {
    situation: "unknown handle",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${"0".repeat(32)}`, session: ctx.id }),
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "the id's hash instead of a handle",
    setup: twoOfOneUser,
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${sha256(ctx.other.id)}`, session: ctx.me.id }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.other.id)).toBe(200) },
  },
  {
    situation: "no credentials",
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${ctx.handle}` }),
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "well-formed id that was never issued",
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${ctx.handle}`, session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "the admin token (not a session)",
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${ctx.handle}`, admin: true }),
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "session cookie from another site (`Sec-Fetch-Site: cross-site`)",
    setup: twoOfOneUser,
    request: (ctx) => ({
      method: "DELETE",
      path: `/sessions/${ctx.other.handle}`,
      headers: { Cookie: `__Host-session=${ctx.me.id}`, "Sec-Fetch-Site": "cross-site" },
    }),
    expect: { status: 403, code: "forbidden", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.other.id)).toBe(200) },
  },
  {
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ method: "DELETE", path: `/sessions/${"a".repeat(32)}`, session: ctx.id }),
    expect: { status: 503, code: "unavailable" },
  },
];
