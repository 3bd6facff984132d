// @ts-check
// Bad inputs and storage faults tried against `GET /sessions/current`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid, sha256, unknownSessionId } from "../../app.js";
import { KIB, revokedSession } from "./common.js";

export const route = "GET /sessions/current";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid session (Bearer)",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    situation: "valid session (cookie)",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/sessions/current", headers: { Cookie: `a=b; __Host-session=${ctx.id}` } }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    situation: "no credentials",
    request: { path: "/sessions/current" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "malformed token (not 43 base64url characters)",
    request: { path: "/sessions/current", session: "not-a-session!" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "Bearer token of 16 KiB",
    request: { path: "/sessions/current", session: "A".repeat(16 * KIB) },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "garbage cookie header",
    request: { path: "/sessions/current", headers: { Cookie: ";;==;session;__Host-session==\"x" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "the admin token as a session",
    request: { path: "/sessions/current", admin: true },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "revoked session",
    setup: async (app) => {
      const s = await revokedSession(app);
      if (s.loggedOut !== 204) throw new Error(`setup: logout → ${s.loggedOut}`);
      return s;
    },
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "expired session (D1 row and KV copy past expiresAt)",
    setup: async (app) => {
      const id = unknownSessionId();
      const userId = uid("exp");
      const now = Date.now();
      await app.db
        .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(sha256(id), userId, `${userId}@example.com`, now - 7200_000, now - 1000)
        .run();
      const view = { userId, email: `${userId}@example.com`, createdAt: now - 7200_000, expiresAt: now - 1000 };
      await app.kv.put(`session:${sha256(id)}`, JSON.stringify(view));
      return { id };
    },
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "PUT instead of GET/DELETE",
    request: { method: "PUT", path: "/sessions/current", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, DELETE" } },
  },
  {
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    // A copy written before idle deadlines existed: its idle deadline is its absolute one.
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual({ ...ctx.view, idleExpiresAt: ctx.view.expiresAt }) },
  },
  {
    situation: "D1 binding absent, id not in KV",
    worker: "noD1",
    request: () => ({ path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent, session created without KV (read from D1)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    situation: "KV binding absent, after a logout whose KV delete failed",
    worker: "noKV",
    setup: revokedSession,
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
];
