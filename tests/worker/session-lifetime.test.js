// Session lifetime: an absolute deadline (sessionAbsoluteSeconds, 7 days by default) and an
// idle one (sessionIdleSeconds, 24 h) that use moves at most once per renewAfterSeconds (1 h),
// with one D1 write per interval however many requests and isolates; the cookie's Max-Age
// and the KV copy's expiry never outlive the absolute deadline.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, expectError, sleep, sum, timing } from "../helpers.js";
import { bootLocations } from "./locations.js";

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
let seq = 0;
const uid = (tag) => `${tag}-${Date.now().toString(36)}-${++seq}`;
const H = 3600_000;

/**
 * A session seeded in D1 (and, with `copy`, its KV copy, whose view may claim other
 * deadlines than D1's), as one minted earlier whose deadlines are those given.
 */
async function seedSession(env, kv, { expiresAt, idleExpiresAt, copy = {}, withCopy = true }) {
  const sessionId = randomBytes(32).toString("base64url");
  const hash = sha256(sessionId);
  const userId = uid("life");
  const createdAt = Date.now() - H;
  await env.db
    .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at, idle_expires_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(hash, userId, `${userId}@example.com`, createdAt, expiresAt, idleExpiresAt)
    .run();
  const view = { userId, email: `${userId}@example.com`, createdAt, expiresAt, idleExpiresAt, ...copy };
  if (withCopy) await kv.put(`session:${hash}`, JSON.stringify(view), { metadata: view, expirationTtl: 3600 });
  return { sessionId, hash, userId, view };
}

/** Counts every change of a session's idle deadline in D1 (a trigger, set up by the test). */
async function countRenewals(db) {
  await db.prepare("CREATE TABLE IF NOT EXISTS renewals_seen (id_hash TEXT NOT NULL)").run();
  await db
    .prepare(
      "CREATE TRIGGER IF NOT EXISTS count_renewals AFTER UPDATE OF idle_expires_at ON sessions " +
        "BEGIN INSERT INTO renewals_seen (id_hash) VALUES (NEW.id_hash); END",
    )
    .run();
  return async (hash) => (await db.prepare("SELECT COUNT(*) AS n FROM renewals_seen WHERE id_hash = ?").bind(hash).first()).n;
}

const d1Row = (db, hash) => db.prepare("SELECT * FROM sessions WHERE id_hash = ?").bind(hash).first();

describe("deadlines: absolute and idle, shown, and never outlived by the cookie or the KV copy", () => {
  let w;
  beforeAll(async () => {
    w = await boot({ seedConfig: { rateLimits: { default: 1000000 }, sessionAbsoluteSeconds: 7200, sessionIdleSeconds: 1800, renewAfterSeconds: 600 } });
  });
  afterAll(() => w?.dispose());

  it("POST /sessions and GET /sessions/current show both deadlines; Max-Age and the KV expiry stop at them", async () => {
    const r = await w.json("/sessions", { method: "POST", admin: true, body: { userId: uid("d"), email: "d@example.com" } });
    expect(r.status, r.text).toBe(201);
    const { createdAt, expiresAt, idleExpiresAt, sessionId } = r.body;
    expect(expiresAt - createdAt).toBe(7200_000);
    expect(idleExpiresAt - createdAt).toBe(1800_000);
    expect(r.res.headers.get("Set-Cookie")).toMatch(/; Max-Age=7200$/);
    const entry = (await w.kv.list({ prefix: `session:${sha256(sessionId)}` })).keys[0];
    expect(Math.abs(entry.expiration - idleExpiresAt / 1000)).toBeLessThanOrEqual(1);
    expect(entry.expiration).toBeLessThanOrEqual(expiresAt / 1000);
    const cur = await w.json("/sessions/current", { session: sessionId });
    expect(cur.body).toEqual({ userId: r.body.userId, email: "d@example.com", createdAt, expiresAt, idleExpiresAt });
  });

  it("a session unused past its idle deadline is refused, though its KV copy still exists (and whatever that copy claims)", async () => {
    const now = Date.now();
    const honest = await seedSession(w, w.kv, { expiresAt: now + 5 * H, idleExpiresAt: now - 1 });
    const claims = await seedSession(w, w.kv, { expiresAt: now + 5 * H, idleExpiresAt: now - 1, copy: { idleExpiresAt: now + H } });
    for (const s of [honest, claims]) {
      expectError(expect, await w.json("/sessions/current", { session: s.sessionId }), 401, "unauthorized");
      expectError(expect, await w.json("/prefs", { headers: { Cookie: `session=${s.sessionId}` } }), 401, "unauthorized");
      expect(await w.kv.get(`session:${s.hash}`), "the copy is still in KV").not.toBeNull();
    }
  });

  it("renewal stops at the absolute deadline, and a session under 60 s from it gets no KV copy", async () => {
    const now = Date.now();
    // Renewal due (its idle deadline was set 20 min ago), 15 min of absolute lifetime left.
    const near = await seedSession(w, w.kv, { expiresAt: now + 900_000, idleExpiresAt: now + 600_000 });
    const r = await w.json("/sessions/current", { session: near.sessionId });
    expect(r.status, r.text).toBe(200);
    expect(r.body.idleExpiresAt).toBe(near.view.expiresAt);
    expect((await d1Row(w.db, near.hash)).idle_expires_at).toBe(near.view.expiresAt);
    const entry = (await w.kv.list({ prefix: `session:${near.hash}` })).keys[0];
    expect(entry.expiration).toBeLessThanOrEqual(near.view.expiresAt / 1000);
    // 30 s left: read from D1, accepted, and not copied to KV (KV keeps a copy at least 60 s).
    const last = await seedSession(w, w.kv, { expiresAt: now + 30_000, idleExpiresAt: now + 30_000, withCopy: false });
    expect((await w.json("/sessions/current", { session: last.sessionId })).status).toBe(200);
    expect(await w.kv.get(`session:${last.hash}`)).toBeNull();
  });
});

describe("renewal: at most one D1 write per renewAfterSeconds under a burst of 50", () => {
  const RENEW_S = 2;
  const IDLE_S = 3600;

  it("one isolate: a burst of 50 moves the idle deadline once, with one update and one re-read", async () => {
    const w = await boot({ seedConfig: { rateLimits: { default: 1000000 }, sessionIdleSeconds: IDLE_S, renewAfterSeconds: RENEW_S } });
    try {
      const renewals = await countRenewals(w.db);
      const setAt = Date.now() - 500;
      const s = await seedSession(w, w.kv, { expiresAt: setAt + 5 * H, idleExpiresAt: setAt + IDLE_S * 1000 });
      // The isolate checks the session against D1 now; renewal is due 1.5 s later.
      const first = await w.json("/sessions/current", { session: s.sessionId });
      expect(first.status).toBe(200);
      expect(first.body.idleExpiresAt).toBe(s.view.idleExpiresAt);
      await sleep(setAt + RENEW_S * 1000 + 50 - Date.now());
      const burst = await Promise.all(Array.from({ length: 50 }, () => w.fetch("/sessions/current", { session: s.sessionId })));
      expect(burst.every((r) => r.status === 200)).toBe(true);
      expect(await renewals(s.hash), "D1 writes of the idle deadline").toBe(1);
      expect(sum(burst.map(timing)).queries, "the update and the re-read after the KV write").toBe(2);
      const row = await d1Row(w.db, s.hash);
      expect(row.idle_expires_at).toBeGreaterThan(s.view.idleExpiresAt);
      const copy = JSON.parse(await w.kv.get(`session:${s.hash}`));
      expect(copy.idleExpiresAt).toBe(row.idle_expires_at);
      // Right after: no renewal due, no D1 work.
      const again = await Promise.all(Array.from({ length: 50 }, () => w.fetch("/sessions/current", { session: s.sessionId })));
      expect(sum(again.map(timing)).queries).toBe(0);
      expect(await renewals(s.hash)).toBe(1);
    } finally {
      await w.dispose();
    }
  });

  it("two isolates of one location: 25 requests each, still one D1 write", async () => {
    const env = await bootLocations({
      isolates: [
        ["a", "here"],
        ["b", "here"],
      ],
      seedConfig: { rateLimits: { default: 1000000 }, sessionIdleSeconds: IDLE_S, renewAfterSeconds: RENEW_S },
    });
    try {
      const renewals = await countRenewals(env.db);
      const setAt = Date.now() - 500;
      const s = await seedSession(env, env.kvAt.here, { expiresAt: setAt + 5 * H, idleExpiresAt: setAt + IDLE_S * 1000 });
      for (const at of [env.a, env.b]) expect((await at.json("/sessions/current", { session: s.sessionId })).status).toBe(200);
      await sleep(setAt + RENEW_S * 1000 + 50 - Date.now());
      const burst = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? env.a : env.b).fetch("/sessions/current", { session: s.sessionId })),
      );
      expect(burst.every((r) => r.status === 200)).toBe(true);
      expect(await renewals(s.hash)).toBe(1);
      // Each isolate tried at most once: an update (and, where it won, a re-read) each.
      expect(sum(burst.map(timing)).queries).toBeLessThanOrEqual(3);
    } finally {
      await env.dispose();
    }
  });
});
