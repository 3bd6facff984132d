// @ts-check
// Bad inputs and storage faults tried against `GET /admin/sessions`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { sha256 } from "../../app.js";
import { adminAuthRows } from "./common.js";

export const route = "GET /admin/sessions";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid, filtered by user",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: `/admin/sessions?userId=${ctx.userId}`, admin: true }),
    expect: {
      status: 200,
      check: (r, ctx) => {
        expect(r.body.sessions.map((/** @type {{ userId: string }} */ s) => s.userId)).toEqual([ctx.userId]);
        expect(Object.keys(r.body.sessions[0]).sort()).toEqual(["createdAt", "email", "expiresAt", "handle", "idleExpiresAt", "userId"]);
        expect(r.text).not.toContain(ctx.id);
        expect(r.text).not.toContain(sha256(ctx.id));
      },
    },
  },
  {
    situation: "limit=1000 (the maximum)",
    request: { path: "/admin/sessions?limit=1000", admin: true },
    expect: { status: 200, check: (r) => expect(Array.isArray(r.body.sessions)).toBe(true) },
  },
  {
    situation: "limit=0",
    request: { path: "/admin/sessions?limit=0", admin: true },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/limit/) },
  },
  {
    situation: "wrong type (`limit=abc`)",
    request: { path: "/admin/sessions?limit=abc", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "limit=1001",
    request: { path: "/admin/sessions?limit=1001", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "forged cursor (`' OR 1=1 --`)",
    request: { path: `/admin/sessions?cursor=${encodeURIComponent("1.' OR 1=1 --")}`, admin: true },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/cursor/) },
  },
  {
    situation: "userId of 129 characters",
    request: { path: `/admin/sessions?userId=${"u".repeat(129)}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "userId with forbidden characters",
    request: { path: `/admin/sessions?userId=${encodeURIComponent("a'; DROP TABLE sessions;--")}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "unknown query parameter (ignored)",
    request: { path: "/admin/sessions?limit=1&debug=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.sessions.length).toBeLessThanOrEqual(1) },
  },
  ...adminAuthRows({ request: () => ({ path: "/admin/sessions" }) }),
  {
    situation: "a valid session id instead of the admin token",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/admin/sessions", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/sessions", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: `/admin/sessions?userId=${ctx.userId}`, admin: true }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.sessions.map((/** @type {{ userId: string }} */ s) => s.userId)).toEqual([ctx.userId]) },
  },
];
