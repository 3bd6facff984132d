// Storage budgets per request, from Server-Timing (counts, never time), amortised over 50
// sequential requests with rate limiting on (approximate tier, KV-backed). The budgets are
// bench/budgets.json, which `npm run bench` reports against too.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, boot, sum, timing } from "./helpers.js";

const N = 50;
const BUDGETS = JSON.parse(readFileSync(join(ROOT, "bench/budgets.json"), "utf8"));
let w, session, unseen;

/**
 * A session this isolate has never checked against D1 (minted elsewhere: a D1 row and a KV
 * copy), so its first request pays the D1 re-check that every isolate makes once per
 * session and 10 s.
 */
async function sessionFromElsewhere(userId) {
  const id = randomBytes(32).toString("base64url");
  const hash = createHash("sha256").update(id).digest("hex");
  const now = Date.now();
  const view = { userId, email: "b@example.com", createdAt: now, expiresAt: now + 7 * 86_400_000 };
  await w.db
    .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
    .bind(hash, userId, view.email, view.createdAt, view.expiresAt)
    .run();
  await w.kv.put(`session:${hash}`, JSON.stringify(view), { metadata: view, expirationTtl: 3600 });
  return id;
}

beforeAll(async () => {
  w = await boot({
    seedConfig: { featureFlags: { newCheckout: true }, rateLimits: { default: 100000 }, cacheTtlSeconds: 3600 },
  });
  const s = await w.json("/sessions", { method: "POST", admin: true, body: { userId: "budget-user", email: "b@example.com" } });
  session = s.body.sessionId;
  for (const id of ["b1", "b2", "b3"]) {
    expect((await w.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name: id.toUpperCase() } })).status).toBe(200);
  }
  expect((await w.json("/prefs", { method: "PATCH", session, body: { theme: "dark" } })).status).toBe(200);
  unseen = [await sessionFromElsewhere("budget-user"), await sessionFromElsewhere("budget-user")];
});
afterAll(() => w?.dispose());

/** Runs `n` sequential requests from one fresh client; returns totals and per-request counts. */
async function measure(path, opts = {}, n = N) {
  const client = w.newClient();
  const each = [];
  for (let i = 0; i < n; i++) {
    const res = await w.fetch(path, { ...opts, client });
    expect(res.status, `${path} → ${res.status}`).toBeLessThan(300);
    each.push({ ...timing(res), cache: res.headers.get("X-Cache") });
    await res.arrayBuffer();
  }
  return { total: sum(each), each };
}

/**
 * The budget, per request over N requests. Approximate rate limiting may write its counter
 * key once a second; 50 local requests take well under the 10 s that would allow 10 writes,
 * and never more than one write in any single request.
 */
function expectWithin(name, { total, each }) {
  const budget = BUDGETS[name];
  expect(budget, `bench/budgets.json has no "${name}"`).toBeDefined();
  expect(total.reads / N, `${name}: KV reads per request`).toBeLessThanOrEqual(budget.kvReads);
  expect(total.queries / N, `${name}: D1 queries per request`).toBeLessThanOrEqual(budget.d1Queries);
  expect(total.lists / N, `${name}: KV lists per request`).toBeLessThanOrEqual(budget.kvLists ?? 0);
  expect(Math.max(...each.map((t) => t.writes)), `${name}: KV writes in one request`).toBeLessThanOrEqual(1);
  expect(total.writes, `${name}: KV writes in all`).toBeLessThanOrEqual(10);
}

describe("storage budgets per request (bench/budgets.json)", () => {
  it("GET /health touches no storage at all", async () => {
    const m = await measure("/health");
    expect(m.total).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });
    expectWithin("GET /health", m);
  });

  it("GET /config and GET /flags/:name read the isolate's copy, not KV", async () => {
    expectWithin("GET /config", await measure("/config"));
    expectWithin("GET /flags/:name", await measure("/flags/newCheckout"));
  });

  it("GET /sessions/current: one KV read for the session; one D1 re-check per session, isolate and 10 s", async () => {
    const m = await measure("/sessions/current", { session: unseen[0] });
    expect(m.total.reads).toBeGreaterThanOrEqual(N); // the session itself is read from KV
    expect(m.each[0].queries, "the first request checks D1").toBe(1);
    expectWithin("GET /sessions/current", m);
  });

  it("GET /users/:id cache hit: one KV read, no D1 query", async () => {
    expect((await w.json("/users/b1")).res.headers.get("X-Cache")).toBe("MISS");
    const m = await measure("/users/b1");
    expect(m.each.every((t) => t.cache === "HIT")).toBe(true);
    expectWithin("GET /users/:id (hit)", m);
  });

  it("GET /prefs: the session, then the preferences, from KV (and the session's D1 re-check)", async () => {
    const m = await measure("/prefs", { session: unseen[1] });
    expect(m.each[0].queries, "the first request checks D1").toBe(1);
    expectWithin("GET /prefs", m);
  });

  it("POST /users/batch: one KV bulk read, and at most one D1 query for the misses", async () => {
    const body = { ids: ["b1", "b2", "b3", "nobody"] };
    const first = await w.json("/users/batch", { method: "POST", body });
    expect(timing(first.res).queries).toBeLessThanOrEqual(1);
    const m = await measure("/users/batch", { method: "POST", body });
    expect(m.total.reads).toBeGreaterThanOrEqual(N);
    expect(Math.max(...m.each.map((t) => t.queries))).toBeLessThanOrEqual(1);
    expectWithin("POST /users/batch (cached)", m);
  });
});
