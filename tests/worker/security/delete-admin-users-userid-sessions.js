// @ts-check
// Bad inputs and storage faults tried against `DELETE /admin/users/:userId/sessions`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid, sha256 } from "../../app.js";
import { adminAuthRows } from "./common.js";

export const route = "DELETE /admin/users/:userId/sessions";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid, user with two sessions",
    setup: async (app) => {
      const a = await app.mintSession();
      const b = await app.mintSession({ userId: a.userId });
      const other = await app.mintSession();
      return { ...a, ids: [a.id, b.id], other: other.id };
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body).toEqual({ revoked: 2 });
        for (const id of ctx.ids) expect(await app.sessionStatus(id)).toBe(401);
        expect(await app.sessionStatus(ctx.other)).toBe(200);
      },
    },
  },
  {
    situation: "userId with forbidden characters",
    request: { method: "DELETE", path: "/admin/users/a%20b%27/sessions", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "userId of 129 characters",
    request: { method: "DELETE", path: `/admin/users/${"u".repeat(129)}/sessions`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows({
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions` }),
    check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200),
  }),
  {
    situation: "the user's own session id instead of the admin token",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, session: ctx.id }),
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "GET instead of DELETE",
    request: { method: "GET", path: "/admin/users/u1/sessions", admin: true },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "DELETE" } },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => expect(await app.kv.get(`session:${sha256(ctx.id)}`)).not.toBeNull(),
    },
  },
  {
    situation: "KV binding absent, user without sessions",
    worker: "noKV",
    request: () => ({ method: "DELETE", path: `/admin/users/${uid("none")}/sessions`, admin: true }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ revoked: 0 }) },
  },
  {
    situation: "KV binding absent, user with a session (D1 revokes, the KV delete fails)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(401),
    },
  },
];
