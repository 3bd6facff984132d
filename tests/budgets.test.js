// Storage budgets per request, from Server-Timing (counts, never time), amortised over 50
// sequential requests with rate limiting on (approximate tier, KV-backed).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, sum, timing } from "./helpers.js";

const N = 50;
let w, session;

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
});
afterAll(() => w?.dispose());

/** Runs `n` sequential requests from one fresh client; returns totals, per-request counts and elapsed seconds. */
async function measure(path, opts = {}, n = N) {
  const client = w.newClient();
  const started = Date.now();
  const each = [];
  for (let i = 0; i < n; i++) {
    const res = await w.fetch(path, { ...opts, client });
    expect(res.status, `${path} → ${res.status}`).toBeLessThan(300);
    each.push({ ...timing(res), cache: res.headers.get("X-Cache") });
    await res.arrayBuffer();
  }
  const elapsed = Math.ceil((Date.now() - started) / 1000);
  return { total: sum(each), each, elapsed };
}

/** Approximate rate limiting: no per-request KV write, at most one per counter key per second. */
function expectRateLimitWrites({ total, each, elapsed }) {
  expect(Math.max(...each.map((t) => t.writes))).toBeLessThanOrEqual(1);
  expect(total.writes).toBeLessThanOrEqual(elapsed + 1);
}

describe("storage budgets per request", () => {
  it("/health touches no storage at all", async () => {
    const m = await measure("/health");
    expect(m.total).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });
  });

  for (const path of ["/config", "/flags/newCheckout"]) {
    it(`${path} reads KV at most 0.1 times per request`, async () => {
      const m = await measure(path);
      expect(m.total.reads / N).toBeLessThanOrEqual(0.1);
      expect(m.total.queries).toBe(0);
      expectRateLimitWrites(m);
    });
  }

  it("/sessions/current: at most 1.1 KV reads and no D1 query per request", async () => {
    const m = await measure("/sessions/current", { session });
    expect(m.total.reads / N).toBeLessThanOrEqual(1.1);
    expect(m.total.reads).toBeGreaterThanOrEqual(N); // the session itself is read from KV
    expect(m.total.queries).toBe(0);
    expectRateLimitWrites(m);
  });

  it("/users/:id cache hit: at most 1.1 KV reads and no D1 query per request", async () => {
    expect((await w.json("/users/b1")).res.headers.get("X-Cache")).toBe("MISS");
    const m = await measure("/users/b1");
    expect(m.each.every((t) => t.cache === "HIT")).toBe(true);
    expect(m.total.reads / N).toBeLessThanOrEqual(1.1);
    expect(m.total.queries).toBe(0);
    expectRateLimitWrites(m);
  });

  it("/prefs: at most 2.1 KV reads (session, then preferences) and no D1 query per request", async () => {
    const m = await measure("/prefs", { session });
    expect(m.total.reads / N).toBeLessThanOrEqual(2.1);
    expect(m.total.queries).toBe(0);
    expectRateLimitWrites(m);
  });

  it("/users/batch: about one KV read and at most one D1 query per request", async () => {
    const body = { ids: ["b1", "b2", "b3", "nobody"] };
    const first = await w.json("/users/batch", { method: "POST", body });
    expect(timing(first.res).queries).toBeLessThanOrEqual(1);
    const m = await measure("/users/batch", { method: "POST", body });
    expect(m.total.reads / N).toBeLessThanOrEqual(1.1);
    expect(m.total.reads).toBeGreaterThanOrEqual(N);
    expect(Math.max(...m.each.map((t) => t.queries))).toBeLessThanOrEqual(1);
    expectRateLimitWrites(m);
  });
});
