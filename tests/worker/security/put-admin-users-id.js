// @ts-check
// Bad inputs and storage faults tried against `PUT /admin/users/:id`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid } from "../../app.js";
import { bigBody, adminAuthRows } from "./common.js";

export const route = "PUT /admin/users/:id";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (the cached copy is invalidated)",
    setup: async (app) => {
      const id = uid("pu");
      await app.seedCachedUser(id);
      return { id };
    },
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "New Name" } }),
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body.name).toBe("New Name");
        expect(await app.kv.get(`user:${ctx.id}`)).toBeNull();
        expect((await app.userRow(ctx.id)).name).toBe("New Name");
      },
    },
  },
  {
    situation: "name of 100 characters (the maximum)",
    setup: () => ({ id: uid("n100") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "é".repeat(100) } }),
    expect: { status: 200, check: (r) => expect(r.body.name).toBe("é".repeat(100)) },
  },
  {
    situation: "malformed JSON",
    setup: () => ({ id: uid("pm") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: "{name: Ada}" }),
    expect: { status: 400, code: "invalid_json", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "a valid body sent as a form",
    setup: () => ({ id: uid("pf") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: '{"name": "Ada"}', headers: { "Content-Type": "application/x-www-form-urlencoded" } }),
    expect: { status: 415, code: "unsupported_media_type", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "wrong type (`name: 5`)",
    setup: () => ({ id: uid("pt") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: 5 } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "unknown field",
    setup: () => ({ id: uid("pf") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Ada", role: "admin" } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "name of 101 characters",
    setup: () => ({ id: uid("po") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "n".repeat(101) } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "name with control characters",
    setup: () => ({ id: uid("pc") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Ada\u0000\u001b[31m" } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull() },
  },
  {
    situation: "id with forbidden characters (`../x`)",
    request: { method: "PUT", path: "/admin/users/..%2Fx", admin: true, body: { name: "Ada" } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "id of 65 characters",
    request: { method: "PUT", path: `/admin/users/${"i".repeat(65)}`, admin: true, body: { name: "Ada" } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "body over 64 KiB",
    setup: () => ({ id: uid("pb") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: bigBody({ name: "Ada" }) }),
    expect: {
      status: 413,
      code: "payload_too_large",
      check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull(),
    },
  },
  ...adminAuthRows({
    setup: () => ({ id: uid("pa") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, body: { name: "Ada" } }),
    check: async (r, ctx, app) => expect(await app.userRow(ctx.id)).toBeNull(),
  }),
  {
    situation: "D1 binding absent",
    worker: "noD1",
    setup: async (app) => {
      const id = uid("pd");
      const data = await app.seedCachedUser(id);
      return { id, before: await app.kv.get(`user:${id}`), data };
    },
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Changed" } }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => expect(await app.kv.get(`user:${ctx.id}`)).toBe(ctx.before),
    },
  },
  {
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: () => ({ id: uid("pk") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Kv Less" } }),
    expect: { status: 200, check: async (r, ctx, app) => expect((await app.userRow(ctx.id)).name).toBe("Kv Less") },
  },
];
