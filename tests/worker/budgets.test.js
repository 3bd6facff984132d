// @ts-check
// Storage budgets per request, from Server-Timing (counts, never time), amortised over 50
// sequential requests with rate limiting on (approximate tier, KV-backed): KV operations, D1
// statements, and of those the ones the primary database served (`d1-primary`). The budgets
// are bench/budgets.json, which `npm run bench` reports against too. The D1 budgets that one
// response's Server-Timing cannot show (every statement of a load, background work included:
// sessions at scale, floods, strict leases) are tests/worker/scale.test.js's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_WORK, ROOT, sum, timing } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @typedef {import("../helpers.js").Timing & { primary: number, cache: string | null }} Counted */
/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {import("../helpers.js").Answer} Answer */

const BUDGETS = JSON.parse(readFileSync(join(ROOT, "bench/budgets.json"), "utf8"));
const SYNCS = BUDGETS["approximate rate-limit syncs"];
const N = SYNCS.requests;
/** @type {TestApp} */
let w;
/** @type {string} */
let session;
/** @type {string[]} */
let unseen;

beforeAll(async () => {
  w = await spawnApp({
    seedConfig: { featureFlags: { newCheckout: true }, rateLimits: { default: 100000 }, cacheTtlSeconds: 3600 },
  });
  session = (await w.mintSession({ userId: "budget-user", email: "b@example.com" })).id;
  for (const id of ["b1", "b2", "b3"]) await w.seedUser(id, id.toUpperCase());
  expect((await w.patchPrefs(session, { theme: "dark" })).status).toBe(200);
  // Sessions this isolate has never seen (minted elsewhere: a D1 row and a KV copy). The
  // isolate checks them against the revocation feed it follows, not against D1 one by one:
  // no D1 query for any of them, beyond the feed read the isolate makes when its last read
  // is older than the bound (at most one in a measurement).
  unseen = [(await w.seedSession({ userId: "budget-user" })).id, (await w.seedSession({ userId: "budget-user" })).id];
});
afterAll(() => w?.dispose());

/**
 * The D1 statements of a response the primary served (Server-Timing's `d1-primary`).
 * @param {Response} res
 */
function primaryOf(res) {
  const h = res.headers.get("Server-Timing") ?? "";
  const m = /d1-primary;desc="queries=(\d+)"/.exec(h);
  if (!m) throw new Error(`no d1-primary in Server-Timing: ${JSON.stringify(h)}`);
  return Number(m[1]);
}

/**
 * Runs `n` sequential calls from one fresh client; returns totals and per-request counts.
 * @param {(opts: CallOptions) => Promise<Answer>} call
 * @param {number} [n]
 */
async function measure(call, n = N) {
  const client = w.newClient();
  /** @type {Counted[]} */
  const each = [];
  for (let i = 0; i < n; i++) {
    const r = await call({ client });
    expect(r.status, `${r.status} ${r.text}`).toBeLessThan(300);
    each.push({ ...timing(r.res), primary: primaryOf(r.res), cache: r.res.headers.get("X-Cache") });
  }
  return { total: sum(each), primary: each.reduce((a, t) => a + t.primary, 0), each };
}

/**
 * The budget, per request over N requests, plus the approximate limiter's counter syncs: a
 * fixed number of KV writes over the N requests (bench/budgets.json), never two in one request.
 * @param {string} name
 * @param {{ total: import("../helpers.js").Timing, primary: number, each: Counted[] }} measured
 */
function expectWithin(name, { total, primary, each }) {
  const budget = BUDGETS[name];
  expect(budget, `bench/budgets.json has no "${name}"`).toBeDefined();
  expect(total.reads / N, `${name}: KV reads per request`).toBeLessThanOrEqual(budget.kvReads);
  expect(total.queries / N, `${name}: D1 queries per request`).toBeLessThanOrEqual(budget.d1Queries);
  expect(budget.d1Primary, `bench/budgets.json: "${name}" has no d1Primary`).toBeDefined();
  expect(primary / N, `${name}: D1 queries the primary served, per request`).toBeLessThanOrEqual(budget.d1Primary);
  expect(primary, `${name}: D1 queries the primary served, of all`).toBeLessThanOrEqual(total.queries);
  expect(total.lists / N, `${name}: KV lists per request`).toBeLessThanOrEqual(budget.kvLists ?? 0);
  expect(Math.max(...each.map((t) => t.writes)), `${name}: KV writes in one request`).toBeLessThanOrEqual(1);
  expect(total.writes, `${name}: KV writes in all`).toBeLessThanOrEqual(budget.kvWrites * N + SYNCS.kvWrites);
}

describe("storage budgets per request (bench/budgets.json)", () => {
  it("GET /health touches no storage at all", async () => {
    const m = await measure((o) => w.getHealth({}, o));
    expect(m.total).toEqual(NO_WORK);
    expectWithin("GET /health", m);
  });

  it("GET /config and GET /flags/:name read the isolate's copy, not KV", async () => {
    expectWithin("GET /config", await measure((o) => w.getConfig(o)));
    expectWithin("GET /flags/:name", await measure((o) => w.getFlag("newCheckout", {}, o)));
  });

  it("GET /sessions/current: one KV read for the session, and no D1 query for it", async () => {
    // Warm-up with another session: a feed read that is due happens now (before answering if
    // the last is older than 10 s, else in the background). From then on each request finds
    // the feed fresh or renews it in the background, so none of the 50 counted reads it
    // before answering (that would take 5 s without a request between two of them).
    expect((await w.getCurrentSession(session)).status).toBe(200);
    const m = await measure((o) => w.getCurrentSession(unseen[0], o));
    expect(m.total.reads).toBeGreaterThanOrEqual(N); // the session itself is read from KV
    expect(m.total.queries, "at most the isolate's own feed read").toBeLessThanOrEqual(1);
    expectWithin("GET /sessions/current", m);
  });

  it("GET /users/:id cache hit: one KV read, no D1 query", async () => {
    expect((await w.getUser("b1")).res.headers.get("X-Cache")).toBe("MISS");
    const m = await measure((o) => w.getUser("b1", o));
    expect(m.each.every((t) => t.cache === "HIT")).toBe(true);
    expectWithin("GET /users/:id (hit)", m);
  });

  it("GET /prefs: the session, then the preferences, from KV (no D1 query for the session)", async () => {
    expect((await w.getCurrentSession(session)).status).toBe(200); // the warm-up, as above
    const m = await measure((o) => w.getPrefs(unseen[1], o));
    expect(m.total.queries, "at most the isolate's own feed read").toBeLessThanOrEqual(1);
    expectWithin("GET /prefs", m);
  });

  it("POST /users/batch: one KV bulk read, and at most one D1 query for the misses", async () => {
    const ids = ["b1", "b2", "b3", "nobody"];
    const first = await w.getUsers(ids);
    expect(timing(first.res).queries).toBeLessThanOrEqual(1);
    const m = await measure((o) => w.getUsers(ids, o));
    expect(m.total.reads).toBeGreaterThanOrEqual(N);
    expect(Math.max(...m.each.map((t) => t.queries))).toBeLessThanOrEqual(1);
    expectWithin("POST /users/batch (cached)", m);
  });
});
