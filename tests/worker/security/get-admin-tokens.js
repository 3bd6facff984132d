// @ts-check
// Bad inputs and storage faults tried against `GET /admin/tokens`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { adminAuthRows, scopedToken, tokenRow } from "./common.js";

export const route = "GET /admin/tokens";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (names and scopes, never a token or its hash)",
    setup: (app) => scopedToken(app, "read"),
    request: { path: "/admin/tokens", admin: true },
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        const mine = r.body.tokens.find((/** @type {{ name: string }} */ t) => t.name === ctx.name);
        expect(mine).toEqual({ name: ctx.name, scope: "read", createdAt: ctx.createdAt, createdBy: "admin" });
        expect(r.text).not.toContain(ctx.token.slice(4));
        expect(r.text).not.toContain((await tokenRow(app, ctx.name)).hash);
      },
    },
  },
  ...adminAuthRows({ request: () => ({ path: "/admin/tokens" }) }),
  {
    situation: "an unknown `est_` token",
    request: { path: "/admin/tokens", admin: `est_${"A".repeat(43)}` },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "a malformed `est_` token (42 characters after the prefix)",
    request: { path: "/admin/tokens", admin: `est_${"A".repeat(42)}` },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "a read token (scoped tokens cannot see tokens)",
    setup: (app) => scopedToken(app, "read"),
    request: (ctx) => ({ path: "/admin/tokens", admin: ctx.token }),
    expect: { status: 403, code: "forbidden" },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/tokens", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    request: { path: "/admin/tokens", admin: true },
    expect: { status: 200, check: (r) => expect(Array.isArray(r.body.tokens)).toBe(true) },
  },
];
