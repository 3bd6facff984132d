// @ts-check
// Bad inputs and storage faults tried against `DELETE /admin/sessions/:handle`: one row per
// situation (see ../security.test.js for how a row runs and what every response is checked
// for).
import { expect } from "vitest";
import { sha256 } from "../../app.js";
import { adminAuthRows } from "./common.js";

export const route = "DELETE /admin/sessions/:handle";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (that session revoked, its KV copy gone)",
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.handle}`, admin: true }),
    expect: {
      status: 204,
      check: async (r, ctx, app) => {
        expect(await app.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect(await app.sessionStatus(ctx.id)).toBe(401);
      },
    },
  },
  {
    situation: "unknown handle",
    request: { method: "DELETE", path: `/admin/sessions/${"0".repeat(32)}`, admin: true },
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "the session id instead of a handle",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.id}`, admin: true }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "the id's hash instead of a handle",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${sha256(ctx.id)}`, admin: true }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  ...adminAuthRows({
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.handle}` }),
    check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200),
  }),
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { method: "DELETE", path: `/admin/sessions/${"a".repeat(32)}`, admin: true },
    expect: { status: 503, code: "unavailable" },
  },
];
