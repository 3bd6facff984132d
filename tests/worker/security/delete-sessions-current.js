// @ts-check
// Bad inputs and storage faults tried against `DELETE /sessions/current`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { sha256, unknownSessionId } from "../../app.js";
import { KIB, revokedSession } from "./common.js";

export const route = "DELETE /sessions/current";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid session",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 204,
      check: async (r, ctx, app) => {
        expect(r.text).toBe("");
        expect(r.res.headers.get("Set-Cookie")).toMatch(/^__Host-session=; .*Max-Age=0/);
        expect(await app.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect((await app.sessionRow(sha256(ctx.id))).revoked_at).not.toBeNull();
        expect(await app.sessionStatus(ctx.id)).toBe(401);
      },
    },
  },
  {
    situation: "no credentials",
    request: { method: "DELETE", path: "/sessions/current" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "malformed token",
    request: { method: "DELETE", path: "/sessions/current", session: "x".repeat(42) + "!" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ method: "DELETE", path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "Bearer token of 16 KiB",
    request: { method: "DELETE", path: "/sessions/current", session: "A".repeat(16 * KIB) },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "already revoked",
    setup: revokedSession,
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "session cookie from another site (`Sec-Fetch-Site: cross-site`)",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({
      method: "DELETE",
      path: "/sessions/current",
      headers: { Cookie: `__Host-session=${ctx.id}`, "Sec-Fetch-Site": "cross-site" },
    }),
    expect: { status: 403, code: "forbidden", check: async (r, ctx, app) => expect(await app.sessionStatus(ctx.id)).toBe(200) },
  },
  {
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 503,
      code: "unavailable",
      // Nothing half done: the KV copy is still there.
      check: async (r, ctx, app) => expect(JSON.parse(await app.kv.get(`session:${sha256(ctx.id)}`))).toEqual(ctx.view),
    },
  },
  {
    situation: "KV binding absent (D1 revokes, the KV delete fails)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => {
        expect((await app.sessionRow(sha256(ctx.id))).revoked_at).not.toBeNull();
        expect(await app.sessionStatus(ctx.id)).toBe(401);
      },
    },
  },
];
