// @ts-check
// Bad inputs and storage faults tried against `DELETE /admin/users/:id` (account deletion):
// one row per situation (see ../security.test.js for how a row runs and what every response
// is checked for).
import { expect } from "vitest";
import { sha256 } from "../../app.js";
import { adminAuthRows } from "./common.js";

export const route = "DELETE /admin/users/:id";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (sessions, preferences and profile gone, in D1 and KV)",
    setup: async (app) => {
      const s = await app.mintSession();
      await app.patchPrefs(s.id, { theme: "dark" }, { client: app.newClient() });
      await app.seedUser(s.userId);
      await app.seedCachedUser(s.userId);
      return s;
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: {
      status: 204,
      check: async (r, ctx, app) => {
        expect(await app.sessionCount(ctx.userId)).toBe(0);
        expect(await app.prefsRow(ctx.userId)).toBeNull();
        expect(await app.userRow(ctx.userId)).toBeNull();
        expect(await app.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect(await app.kv.get(`prefs:${ctx.userId}`)).toBeNull();
        expect(await app.kv.get(`user:${ctx.userId}`)).toBeNull();
        expect(await app.sessionStatus(ctx.id)).toBe(401);
      },
    },
  },
  {
    situation: "id with forbidden characters (`a%20b`)",
    request: { method: "DELETE", path: "/admin/users/a%20b", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "id of 129 characters",
    request: { method: "DELETE", path: `/admin/users/${"i".repeat(129)}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows({
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}` }),
    check: async (r, ctx, app) => {
      expect(await app.sessionCount(ctx.userId)).toBe(1);
      expect(await app.sessionStatus(ctx.id)).toBe(200);
    },
  }),
  {
    situation: "D1 binding absent",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: { status: 503, code: "unavailable", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "KV binding absent (the D1 rows go, the copies cannot)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: { status: 503, code: "unavailable", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(401) },
  },
];
