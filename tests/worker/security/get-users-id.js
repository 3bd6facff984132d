// @ts-check
// Bad inputs and storage faults tried against `GET /users/:id`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid } from "../../app.js";

export const route = "GET /users/:id";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "existing profile, cacheTtlSeconds 1 (KV TTL stays ≥ 60 s)",
    setup: async (app) => ({ user: await app.seedUser(), before: Date.now() }),
    request: (ctx) => ({ path: `/users/${ctx.user.id}` }),
    expect: {
      status: 200,
      headers: { "X-Cache": "MISS" },
      check: async (r, ctx, app) => {
        expect(r.body).toEqual(ctx.user);
        const listed = (await app.kv.list({ prefix: `user:${ctx.user.id}` })).keys.find((/** @type {{ name: string }} */ k) => k.name === `user:${ctx.user.id}`);
        // Written after `before`, to expire 60 s (KV's minimum) after it was written.
        expect(listed.expiration).toBeGreaterThanOrEqual(Math.floor(ctx.before / 1000) + 60);
      },
    },
  },
  {
    situation: "unknown id",
    request: () => ({ path: `/users/${uid("ghost")}` }),
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "id at the 64-character limit (unknown)",
    request: { path: `/users/${"i".repeat(64)}` },
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "id of 65 characters",
    request: { path: `/users/${"i".repeat(65)}` },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/id/) },
  },
  {
    situation: "id with forbidden characters (`a.b`, `%00`)",
    request: { path: "/users/a.b%00" },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "POST instead of GET",
    request: { method: "POST", path: "/users/u1", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    situation: "D1 binding absent, fresh KV copy",
    worker: "noD1",
    setup: async (app) => {
      const id = uid("fresh");
      return { id, data: await app.seedCachedUser(id) };
    },
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "HIT" }, check: (r, ctx) => expect(r.body).toEqual(ctx.data) },
  },
  {
    situation: "D1 binding absent, KV copy an hour old (stale-if-error)",
    worker: "noD1",
    setup: async (app) => {
      const id = uid("old");
      return { id, data: await app.seedCachedUser(id, { ageMs: 3600_000, ttl: 1 }) };
    },
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "STALE" }, check: (r, ctx) => expect(r.body).toEqual(ctx.data) },
  },
  {
    situation: "D1 binding absent, no KV copy",
    worker: "noD1",
    request: () => ({ path: `/users/${uid("none")}` }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent, after PUT /admin/users/:id",
    worker: "noKV",
    setup: async (app) => app.seedUser(),
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "MISS" }, check: (r, ctx) => expect(r.body).toEqual(ctx) },
  },
];
