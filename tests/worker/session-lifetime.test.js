// @ts-check
// Session lifetime: an absolute deadline (sessionAbsoluteSeconds, 7 days by default) and an
// idle one (sessionIdleSeconds, 24 h) that use moves at most once per renewAfterSeconds (1 h),
// with one D1 write per interval however many requests and isolates; the cookie's Max-Age
// and the KV copy's expiry never outlive the absolute deadline. Sessions are seeded with the
// deadlines a test needs, and aged by rewriting them, never waited for.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, sum, timing } from "../helpers.js";
import { HIGH, TestApp, sha256, spawnApp, uid } from "../app.js";
import { bootLocations } from "./locations.js";

/** @typedef {import("../app.js").SeededSession} SeededSession */

const H = 3600_000;

/**
 * A session seeded in D1 (and, unless `withCopy` is false, its KV copy, whose view may claim
 * other deadlines than D1's), as one minted an hour ago whose deadlines are those given.
 * @param {TestApp} app
 * @param {{ expiresAt: number, idleExpiresAt: number, copy?: object, withCopy?: boolean }} deadlines
 */
function seedSession(app, { expiresAt, idleExpiresAt, copy = {}, withCopy = true }) {
  return app.seedSession({ userId: uid("life"), createdAt: Date.now() - H, expiresAt, idleExpiresAt, copy: withCopy && copy });
}

/**
 * Counts every change of a session's idle deadline in D1 from now on (a trigger, set up by
 * the test); returns the counter.
 * @param {any} db
 * @returns {Promise<(hash: string) => Promise<number>>}
 */
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

describe("deadlines: absolute and idle, shown, and never outlived by the cookie or the KV copy", () => {
  /** @type {TestApp} */
  let w;
  beforeAll(async () => {
    w = await spawnApp({ seedConfig: { ...HIGH, sessionAbsoluteSeconds: 7200, sessionIdleSeconds: 1800, renewAfterSeconds: 600 } });
  });
  afterAll(() => w?.dispose());

  it("POST /sessions and GET /sessions/current show both deadlines; Max-Age and the KV expiry stop at them", async () => {
    const r = await w.createSession({ userId: uid("d"), email: "d@example.com" });
    expect(r.status, r.text).toBe(201);
    const { createdAt, expiresAt, idleExpiresAt, sessionId } = r.body;
    expect(expiresAt - createdAt).toBe(7200_000);
    expect(idleExpiresAt - createdAt).toBe(1800_000);
    expect(r.res.headers.get("Set-Cookie")).toMatch(/; Max-Age=7200$/);
    const entry = await w.kvEntry(`session:${sha256(sessionId)}`);
    expect(Math.abs(entry.expiration - idleExpiresAt / 1000)).toBeLessThanOrEqual(1);
    expect(entry.expiration).toBeLessThanOrEqual(expiresAt / 1000);
    const cur = await w.getCurrentSession(sessionId);
    expect(cur.body).toEqual({ userId: r.body.userId, email: "d@example.com", createdAt, expiresAt, idleExpiresAt });
  });

  it("a session unused past its idle deadline is refused, though its KV copy still exists", async () => {
    // The copy carries the idle deadline D1 had when it was written; the Worker only ever
    // writes copies from D1, so a copy's deadlines are never later than D1's (a renewal
    // moves both, D1 first). Past the copy's deadline, D1 decides.
    const now = Date.now();
    const honest = await seedSession(w, { expiresAt: now + 5 * H, idleExpiresAt: now - 1 });
    const renewedElsewhere = await seedSession(w, { expiresAt: now + 5 * H, idleExpiresAt: now + H, copy: { idleExpiresAt: now - 1 } });
    expect((await w.getCurrentSession(renewedElsewhere.id)).status, "D1 says it was renewed").toBe(200);
    for (const s of [honest]) {
      expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
      expectError(expect, await w.getPrefs(null, { headers: { Cookie: `__Host-session=${s.id}` } }), 401, "unauthorized");
      expect(await w.kv.get(`session:${s.hash}`), "the copy is still in KV").not.toBeNull();
    }
  });

  it("renewal stops at the absolute deadline, and a session under 60 s from it gets no KV copy", async () => {
    const now = Date.now();
    // Renewal due (its idle deadline was set 20 min ago), 15 min of absolute lifetime left.
    const near = await seedSession(w, { expiresAt: now + 900_000, idleExpiresAt: now + 600_000 });
    const r = await w.getCurrentSession(near.id);
    expect(r.status, r.text).toBe(200);
    expect(r.body.idleExpiresAt).toBe(near.view.expiresAt);
    expect((await w.sessionRow(near.hash)).idle_expires_at).toBe(near.view.expiresAt);
    const entry = await w.kvEntry(`session:${near.hash}`);
    expect(entry.expiration).toBeLessThanOrEqual(near.view.expiresAt / 1000);
    // 30 s left: read from D1, accepted, and not copied to KV (KV keeps a copy at least 60 s).
    const last = await seedSession(w, { expiresAt: now + 30_000, idleExpiresAt: now + 30_000, withCopy: false });
    expect((await w.getCurrentSession(last.id)).status).toBe(200);
    expect(await w.kv.get(`session:${last.hash}`)).toBeNull();
  });
});

describe("renewal: at most one D1 write per renewAfterSeconds under a burst of 50", () => {
  // Renewal falls due once the idle deadline was set renewAfterSeconds ago. Instead of waiting
  // for that, a test ages the stored session to that point (below); the next renewal is then
  // due RENEW_S later, longer than any of these tests runs.
  const RENEW_S = 600;
  const IDLE_S = 3600;
  const CONFIG = { ...HIGH, sessionIdleSeconds: IDLE_S, renewAfterSeconds: RENEW_S };

  /**
   * Makes the renewal of `s` due: its idle deadline as if set RENEW_S + 1 s ago, in its D1 row
   * and in its KV copy (through `app`, whose `kv` is where the copy lives).
   * @param {TestApp} app
   * @param {SeededSession} s
   */
  async function age(app, s) {
    const idleExpiresAt = Date.now() - (RENEW_S + 1) * 1000 + IDLE_S * 1000;
    await app.db.prepare("UPDATE sessions SET idle_expires_at = ? WHERE id_hash = ?").bind(idleExpiresAt, s.hash).run();
    await app.putSessionCopy(s.hash, { ...s.view, idleExpiresAt });
    return idleExpiresAt;
  }

  /** @param {TestApp} app */
  const freshSession = (app) => {
    const now = Date.now();
    return seedSession(app, { expiresAt: now + 5 * H, idleExpiresAt: now + IDLE_S * 1000 });
  };

  it("one isolate: a burst of 50 moves the idle deadline once, with one update and one re-read", async () => {
    const w = await spawnApp({ seedConfig: CONFIG });
    try {
      const s = await freshSession(w);
      // The isolate checks the session against D1 now (once per 10 s); no renewal is due yet.
      const first = await w.getCurrentSession(s.id);
      expect(first.status).toBe(200);
      expect(first.body.idleExpiresAt).toBe(s.view.idleExpiresAt);
      const aged = await age(w, s);
      const renewals = await countRenewals(w.db);
      const burst = await Promise.all(Array.from({ length: 50 }, () => w.getCurrentSession(s.id)));
      expect(burst.every((r) => r.status === 200)).toBe(true);
      expect(await renewals(s.hash), "D1 writes of the idle deadline").toBe(1);
      expect(sum(burst.map((r) => timing(r.res))).queries, "the update and the re-read after the KV write").toBe(2);
      const row = await w.sessionRow(s.hash);
      expect(row.idle_expires_at).toBeGreaterThan(aged);
      expect((await w.kvJson(`session:${s.hash}`)).idleExpiresAt).toBe(row.idle_expires_at);
      // Right after: no renewal due, no D1 work.
      const again = await Promise.all(Array.from({ length: 50 }, () => w.getCurrentSession(s.id)));
      expect(sum(again.map((r) => timing(r.res))).queries).toBe(0);
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
      seedConfig: CONFIG,
    });
    try {
      const { a, b } = env.at;
      const s = await freshSession(a);
      for (const at of [a, b]) expect((await at.getCurrentSession(s.id)).status).toBe(200);
      await age(a, s);
      const renewals = await countRenewals(env.db);
      const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).getCurrentSession(s.id)));
      expect(burst.every((r) => r.status === 200)).toBe(true);
      expect(await renewals(s.hash)).toBe(1);
      // Each isolate tried at most once: an update (and, where it won, a re-read) each.
      expect(sum(burst.map((r) => timing(r.res))).queries).toBeLessThanOrEqual(3);
    } finally {
      await env.dispose();
    }
  });
});
