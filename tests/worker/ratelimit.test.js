// @ts-check
// Rate limiting: approximate groups on KV (one counter key per isolate, written at most once
// per second), strict groups exact on D1; RateLimit-* headers, 429 rate_limited with
// Retry-After, clients and groups counted apart, /health and /admin/* never limited. Bounds
// are fixed over fixed request counts; where a test needs a counter sync, it waits for a
// request that syncs (`eventually`) or paces its own traffic, and the once-a-second rule is
// checked between consecutive writes (see `expectWritesSpaced`), never against how long the
// test took.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, expectError, roomInWindow, sleep, sum, timing, windowStartSeconds } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @typedef {import("../helpers.js").Answer} Answer */
/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {import("../helpers.js").Timing & { res: Response, sent: number, answered: number }} Timed */

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp();
});
afterAll(() => w?.dispose());

const WINDOW = 60;

/**
 * Replaces the whole config (PUT /admin/config) and checks it was accepted.
 * @param {Record<string, number>} rateLimits @param {string[]} [strict] @param {number} [windowSeconds]
 */
async function setLimits(rateLimits, strict = [], windowSeconds = WINDOW) {
  const r = await w.replaceConfig({ rateLimits, strictRateLimits: strict, rateLimitWindowSeconds: windowSeconds });
  expect(r.status, r.text).toBe(200);
  expect(r.body.rateLimits).toMatchObject(rateLimits);
  expect(r.body.strictRateLimits).toEqual(strict);
  expect(r.body.rateLimitWindowSeconds).toBe(windowSeconds);
  return r.body;
}

/**
 * Set-up: waits until just after the next window of `seconds` starts.
 * @param {number} seconds
 */
const nextWindow = (seconds) => roomInWindow(seconds, seconds * 1000);

/**
 * Requests `{sent, answered, writes}` in the order sent: any two that wrote the counter key
 * did so at least a second apart, so the later one was answered at least a second after the
 * earlier one was sent. (Holds whatever the machine's speed; it cannot fail a correct Worker.)
 * @param {Timed[]} requests
 */
function expectWritesSpaced(requests) {
  const writers = requests.filter((r) => r.writes > 0);
  for (let i = 1; i < writers.length; i++) {
    const gap = writers[i].answered - writers[i - 1].sent;
    expect(gap, `writes ${i - 1} and ${i} of the counter key`).toBeGreaterThanOrEqual(990);
  }
}

/**
 * The most counter writes the once-a-second rule allows over `requests`: one, and one more per
 * full second from the first request sent to the last answered. A bound on the Worker's rate,
 * not on the test's speed: a slower run allows more writes, and a correct Worker stays within
 * it whatever the machine's speed.
 * @param {Timed[]} requests
 */
function syncsAllowed(requests) {
  const span = Math.max(...requests.map((r) => r.answered)) - Math.min(...requests.map((r) => r.sent));
  return 1 + Math.floor(span / 1000);
}

/**
 * A timed call: `{res, sent, answered, ...Server-Timing counts}`.
 * @param {() => Promise<Answer>} call
 * @returns {Promise<Timed>}
 */
async function timed(call) {
  const sent = Date.now();
  const { res } = await call();
  return { res, sent, answered: Date.now(), ...timing(res) };
}

/** @param {Response} res */
function limitHeaders(res) {
  return {
    limit: res.headers.get("RateLimit-Limit"),
    remaining: res.headers.get("RateLimit-Remaining"),
    reset: res.headers.get("RateLimit-Reset"),
  };
}

/**
 * Asserts the three RateLimit-* headers: limit, remaining, and reset in 1..window.
 * @param {Response} res @param {number} limit @param {number} remaining @param {number} [windowSeconds]
 */
function expectLimitHeaders(res, limit, remaining, windowSeconds = WINDOW) {
  const h = limitHeaders(res);
  expect(h.limit).toBe(String(limit));
  expect(h.remaining).toBe(String(remaining));
  expect(h.reset).toMatch(/^\d+$/);
  expect(Number(h.reset)).toBeGreaterThanOrEqual(1);
  expect(Number(h.reset)).toBeLessThanOrEqual(windowSeconds);
}

/** @param {Response} res */
function expectNoLimitHeaders(res) {
  expect(res.headers.get("RateLimit-Limit")).toBeNull();
  expect(res.headers.get("RateLimit-Remaining")).toBeNull();
  expect(res.headers.get("RateLimit-Reset")).toBeNull();
}

/**
 * Asserts a 429 rate_limited with a positive integer Retry-After and the headers at 0.
 * @param {Answer} r @param {number} limit @param {number} [windowSeconds]
 */
function expect429(r, limit, windowSeconds = WINDOW) {
  expectError(expect, r, 429, "rate_limited");
  const ra = r.res.headers.get("Retry-After");
  expect(ra).toMatch(/^\d+$/);
  expect(Number(ra)).toBeGreaterThanOrEqual(1);
  expect(Number(ra)).toBeLessThanOrEqual(windowSeconds);
  expectLimitHeaders(r.res, limit, 0, windowSeconds);
}

/**
 * The strict tier's D1 rows of `bucket`.
 * @param {string} bucket
 * @returns {Promise<{ bucket: string, window_start: number, count: number }[]>}
 */
async function strictRow(bucket) {
  const { results } = await w.db
    .prepare("SELECT bucket, window_start, count FROM rate_limits WHERE bucket = ?")
    .bind(bucket)
    .all();
  return results;
}

/** @type {{ name: string, group: string, call: (opts: CallOptions) => Promise<Answer>, strict: string[] }[]} */
const tiers = [
  { name: "approximate (KV)", group: "config", call: (o) => w.getConfig(o), strict: [] },
  { name: "strict (D1)", group: "flags", call: (o) => w.getFlag("newCheckout", {}, o), strict: ["flags"] },
];

describe("rate limiting: the boundary and the headers, both tiers", () => {
  for (const tier of tiers) {
    it(`${tier.name}: exactly limit allowed with decrementing headers, limit+1 is 429 rate_limited`, async () => {
      const limit = 5;
      await setLimits({ default: 100, [tier.group]: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const client = w.newClient();
      for (let i = 1; i <= limit; i++) {
        const r = await tier.call({ client });
        expect(r.status, r.text).toBe(200);
        expectLimitHeaders(r.res, limit, limit - i);
      }
      const over = await tier.call({ client });
      expect429(over, limit);
      // Stays refused within the window.
      expect429(await tier.call({ client }), limit);
      if (tier.strict.length) {
        // The strict counter lives in D1: one row, the window's tokens handed out in leases,
        // never past the limit (the refused requests took none).
        const rows = await strictRow(`${tier.group}:${client}`);
        expect(rows).toHaveLength(1);
        expect(rows[0].count).toBe(limit);
        expect(rows[0].window_start % (WINDOW * 1000)).toBe(0);
      }
    });

    it(`${tier.name}: distinct clients are counted apart`, async () => {
      const limit = 3;
      await setLimits({ default: 100, [tier.group]: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const a = w.newClient();
      const b = w.newClient();
      for (let i = 0; i < limit; i++) expect((await tier.call({ client: a })).status).toBe(200);
      expect429(await tier.call({ client: a }), limit);
      // b is untouched by a's traffic.
      for (let i = 1; i <= limit; i++) {
        const r = await tier.call({ client: b });
        expect(r.status, r.text).toBe(200);
        expectLimitHeaders(r.res, limit, limit - i);
      }
      expect429(await tier.call({ client: b }), limit);
      // An IPv6 client is another client again.
      const v6 = await tier.call({ client: `2001:db8::${a.split(".")[3]}` });
      expect(v6.status, v6.text).toBe(200);
      expectLimitHeaders(v6.res, limit, limit - 1);
    });

    it(`${tier.name}: distinct groups are counted apart`, async () => {
      const limit = 2;
      const other = tier.group === "config" ? "flags" : "config";
      await setLimits({ default: 7, config: limit, flags: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const client = w.newClient();
      for (let i = 0; i < limit; i++) expect((await tier.call({ client })).status).toBe(200);
      expect429(await tier.call({ client }), limit);
      // The other group, same client: a fresh counter.
      const otherCall = other === "config" ? () => w.getConfig({ client }) : () => w.getFlag("x", {}, { client });
      let r = await otherCall();
      expect(r.status, r.text).toBe(200);
      expectLimitHeaders(r.res, limit, limit - 1);
      // users falls back to rateLimits.default, a counter of its own.
      r = await w.getUser("nobody-here", { client });
      expectError(expect, r, 404, "not_found");
      expectLimitHeaders(r.res, 7, 6);
      r = await w.getUser("nobody-else", { client });
      expectLimitHeaders(r.res, 7, 5);
      // The exhausted group is still refused.
      expect429(await tier.call({ client }), limit);
    });
  }

  it("strict requests count in D1; approximate ones never touch D1", async () => {
    await setLimits({ default: 100 }, ["flags"]);
    await roomInWindow(WINDOW, 3000);
    const client = w.newClient();
    const s = await w.getFlag("a", {}, { client });
    expect(s.status).toBe(200);
    expect(timing(s.res).queries).toBeGreaterThanOrEqual(1);
    const rows = await strictRow(`flags:${client}`);
    expect(rows).toHaveLength(1);
    expect(rows[0].count, "a first lease of one token").toBe(1);
    const a = await w.getConfig({ client });
    expect(a.status).toBe(200);
    expect(timing(a.res).queries).toBe(0);
    expect(await strictRow(`config:${client}`)).toHaveLength(0);
  });

  it("a client address that is not an IP counts as the client anonymous", async () => {
    await setLimits({ default: 100, flags: 3, config: 3 }, ["flags"]);
    await roomInWindow(WINDOW, 5000);
    /** @param {string} v */
    const junk = (v) => ({ headers: { "CF-Connecting-IP": v } });
    // Strict: the D1 bucket is flags:anonymous, shared by every non-address.
    let r = await w.getFlag("x", {}, junk("junk"));
    expect(r.status, r.text).toBe(200);
    expectLimitHeaders(r.res, 3, 2);
    r = await w.getFlag("x", {}, junk("999.1.2.3"));
    expect(r.status, r.text).toBe(200);
    expectLimitHeaders(r.res, 3, 1);
    const rows = await strictRow("flags:anonymous");
    expect(rows).toHaveLength(1);
    // Leased: one token, then (a second lease within a second) two, one of them unused yet.
    expect(rows[0].count).toBeGreaterThanOrEqual(2);
    expect(rows[0].count).toBeLessThanOrEqual(3);
    expect(await strictRow("flags:junk")).toHaveLength(0);
    // Drive it over the limit with more junk values: all one client.
    for (const v of ["not an ip", "x".repeat(300), "<script>"]) await w.getFlag("x", {}, junk(v));
    expect429(await w.getFlag("x", {}, junk("junk")), 3);
    // A real address is unaffected.
    expect((await w.getFlag("x", {}, { client: w.newClient() })).status).toBe(200);
    // Approximate: the KV counter key names anonymous too.
    for (let i = 0; i < 4; i++) await w.getConfig(junk("junk-" + i));
    expect429(await w.getConfig(junk("still junk")), 3);
    // A request a second after the counter was loaded syncs it (writes the key): wait for the
    // request that does, not for a second.
    const sync = await eventually(async () => {
      const at = Date.now();
      return timing((await w.getConfig(junk("junk"))).res).writes > 0 ? { at } : null;
    }, 10_000, 100);
    expect(sync, "a request synced the anonymous counter").toBeTruthy();
    /** @type {string[]} */
    const keys = (await w.kv.list({ prefix: "rl:config:" })).keys.map((/** @type {{ name: string }} */ k) => k.name);
    const window = windowStartSeconds(WINDOW, sync?.at);
    expect(keys.some((k) => k.startsWith(`rl:config:anonymous:${window}:`)), keys.join()).toBe(true);
    expect(keys.some((k) => /junk|script/.test(k))).toBe(false);
  });
});

describe("rate limiting: routes that are never limited", () => {
  it("/health and /admin/* carry no RateLimit headers and are never refused", async () => {
    // Even with a limit of 1 for everything, and health/admin named as strict groups.
    await setLimits({ default: 1, admin: 1, health: 1 }, ["admin", "health"]);
    const client = w.newClient();
    for (let i = 0; i < 5; i++) {
      const h = await w.getHealth({}, { client });
      expect(h.status).toBe(200);
      expect(h.body).toMatchObject({ status: "ok" });
      expectNoLimitHeaders(h.res);
      const p = await w.patchConfig({ maintenanceMode: false }, { client });
      expect(p.status, p.text).toBe(200);
      expectNoLimitHeaders(p.res);
      const s = await w.listSessions({ limit: 1 }, { client });
      expect(s.status, s.text).toBe(200);
      expectNoLimitHeaders(s.res);
      const u = await w.putUser(`rl-user-${i}`, { name: "R" }, { client });
      expect(u.status, u.text).toBe(200);
      expectNoLimitHeaders(u.res);
      // An admin request refused for auth is not limited either.
      const bad = await w.listSessions({}, { admin: "wrong", client });
      expectError(expect, bad, 401, "unauthorized");
      expectNoLimitHeaders(bad.res);
    }
    // No counter was kept for them anywhere.
    expect(await strictRow(`admin:${client}`)).toHaveLength(0);
    expect(await strictRow(`health:${client}`)).toHaveLength(0);
    expect((await w.kv.list({ prefix: "rl:admin:" })).keys).toHaveLength(0);
    expect((await w.kv.list({ prefix: "rl:health:" })).keys).toHaveLength(0);
    // While an ordinary route is limited at 1 for the same client.
    expectLimitHeaders((await w.getConfig({ client })).res, 1, 0);
    expect429(await w.getConfig({ client }), 1);
  });

  it("a 404 (unknown path) carries no RateLimit headers", async () => {
    await setLimits({ default: 1 }, []);
    const client = w.newClient();
    for (let i = 0; i < 3; i++) {
      const r = await w.json("/nope", { client }); // no operation: the router's 404
      expectError(expect, r, 404, "not_found");
      expectNoLimitHeaders(r.res);
    }
  });
});

describe("rate limiting: strict tier is exact under concurrency", () => {
  it("a concurrent burst of 25 against a strict group with limit 10 admits exactly 10", async () => {
    const limit = 10;
    await setLimits({ default: 100, flags: limit }, ["flags"]);
    await roomInWindow(WINDOW, 10000);
    const client = w.newClient();
    const rs = await Promise.all(
      Array.from({ length: 25 }, (_, i) => w.getFlag(`f${i}`, {}, { client })),
    );
    const ok = rs.filter((r) => r.status === 200);
    const refused = rs.filter((r) => r.status === 429);
    expect(ok).toHaveLength(limit);
    expect(refused).toHaveLength(25 - limit);
    for (const r of refused) expect429(r, limit);
    // The admitted ones saw remaining limit-1 .. 0, each exactly once.
    const remaining = ok.map((r) => Number(r.res.headers.get("RateLimit-Remaining"))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: limit }, (_, i) => i));
    for (const r of ok) expect(r.body).toMatchObject({ enabled: false });
    // The tokens handed out never pass the limit, however many requests asked.
    const rows = await strictRow(`flags:${client}`);
    expect(rows).toHaveLength(1);
    expect(rows[0].count).toBe(limit);
  });
});

describe("rate limiting: approximate tier stays within KV's one write per key per second", () => {
  it("a concurrent burst of 60 writes the counter key at most once per second", async () => {
    await setLimits({ default: 1000000 }, []);
    await roomInWindow(WINDOW, 10000);
    const client = w.newClient();
    const t0 = Date.now();
    /** @type {Timed[]} */
    const rs = [];
    // Three concurrent waves of 20, paced 600 ms apart, so syncs really happen.
    for (let wave = 0; wave < 3; wave++) {
      rs.push(...(await Promise.all(Array.from({ length: 20 }, () => timed(() => w.getConfig({ client }))))));
      if (wave < 2) await sleep(600);
    }
    for (const r of rs) expect(r.res.status).toBe(200);
    const total = sum(rs);
    expect(total.writes).toBeGreaterThanOrEqual(1); // it did sync
    expect(total.writes).toBeLessThanOrEqual(syncsAllowed(rs)); // a second apart: about one per wave at most
    for (const r of rs) expect(r.writes).toBeLessThanOrEqual(1);
    expectWritesSpaced(rs.sort((a, b) => a.sent - b.sent));
    // One key per isolate (here one), its count in the metadata.
    const keys = (await w.kv.list({ prefix: `rl:config:${client}:${windowStartSeconds(WINDOW, t0)}:` })).keys;
    expect(keys).toHaveLength(1);
    const stored = keys[0].metadata;
    expect(Number(await w.kv.get(keys[0].name))).toBe(stored.count);
    expect(stored.count).toBeGreaterThanOrEqual(1);
    expect(stored.count).toBeLessThanOrEqual(60);
  });

  it("a sequential burst of 60 writes the counter key at most once per second", async () => {
    await setLimits({ default: 1000000 }, []);
    await roomInWindow(WINDOW, 10000);
    const client = w.newClient();
    const t0 = Date.now();
    /** @type {Timed[]} */
    const rs = [];
    for (let i = 0; i < 60; i++) {
      const r = await timed(() => w.getConfig({ client }));
      expect(r.res.status).toBe(200);
      expectLimitHeaders(r.res, 1000000, 1000000 - (i + 1));
      rs.push(r);
      await sleep(35); // pacing: the burst spans more than a second
    }
    const total = sum(rs);
    expect(total.writes).toBeGreaterThanOrEqual(1);
    expect(total.writes).toBeLessThanOrEqual(syncsAllowed(rs)); // never one per request: one per second of the burst
    // No single request wrote more than once, and writes are a second apart.
    for (const r of rs) expect(r.writes).toBeLessThanOrEqual(1);
    expectWritesSpaced(rs);
    const keys = (await w.kv.list({ prefix: `rl:config:${client}:${windowStartSeconds(WINDOW, t0)}:` })).keys;
    expect(keys).toHaveLength(1);
    expect(keys[0].metadata.count).toBeLessThanOrEqual(60);
  });

  it("approximate limiting adds no per-request KV write (40 sequential requests)", async () => {
    await setLimits({ default: 100, config: 50 }, []);
    await roomInWindow(WINDOW, 5000);
    const client = w.newClient();
    /** @type {Timed[]} */
    const rs = [];
    for (let i = 0; i < 40; i++) {
      const r = await timed(() => w.getConfig({ client }));
      expect(r.res.status).toBe(200);
      rs.push(r);
    }
    const total = sum(rs);
    // At most one write per second of the burst (40 requests take well under one: one
    // write), and writes a second apart.
    expect(total.writes).toBeLessThanOrEqual(syncsAllowed(rs));
    expectWritesSpaced(rs);
    // One read to load the counter, one per sync, maybe a config refresh or two.
    expect(total.reads).toBeLessThanOrEqual(1 + total.writes + 3);
    expect(total.queries).toBe(0);
    // Most requests did no KV work at all.
    const quiet = rs.filter((t) => t.reads === 0 && t.writes === 0).length;
    expect(quiet).toBeGreaterThanOrEqual(40 - (3 + 2 * total.writes));
    expect(quiet).toBeGreaterThanOrEqual(40 - (3 + 2 * syncsAllowed(rs)));
  });

  it("a concurrent burst against an approximate group admits at most the limit in one isolate", async () => {
    const limit = 10;
    await setLimits({ default: 100, config: limit }, []);
    await roomInWindow(WINDOW, 5000);
    const client = w.newClient();
    const rs = await Promise.all(Array.from({ length: 25 }, () => w.getConfig({ client })));
    const ok = rs.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(ok).toBeLessThanOrEqual(limit);
    for (const r of rs.filter((r) => r.status !== 200)) expect429(r, limit);
  });

  it("KV counter keys carry an expiration at least 60 s ahead", async () => {
    for (const windowSeconds of [60, 2]) {
      await setLimits({ default: 100 }, [], windowSeconds);
      // Set-up: start in one window (a 2 s window: right after it begins).
      if (windowSeconds === 2) await nextWindow(2);
      else await roomInWindow(windowSeconds, 3000);
      const client = w.newClient();
      // The first request loads the counter; a request a second or more later syncs it
      // (writes the key). Wait for the request that does (the event, not a second's sleep).
      expect((await w.getConfig({ client })).status).toBe(200);
      const sync = await eventually(async () => {
        const before = Date.now();
        const r = await w.getConfig({ client });
        expect(r.status).toBe(200);
        const writes = timing(r.res).writes;
        expect(writes).toBeLessThanOrEqual(1);
        return writes === 1 ? { before, after: Date.now() } : null;
      }, 10_000, 100);
      expect(sync, "a request synced the counter").toBeTruthy();
      const { before, after } = /** @type {{ before: number, after: number }} */ (sync);
      // A fresh client: only the sync wrote a key, the one of the window it fell in.
      const keys = (await w.kv.list({ prefix: `rl:config:${client}:` })).keys;
      expect(keys, JSON.stringify(keys)).toHaveLength(1);
      const [k] = keys;
      const window = Number(/** @type {RegExpExecArray} */ (new RegExp(`^rl:config:${client}:(\\d+):`).exec(k.name))[1]);
      expect(window).toBeGreaterThanOrEqual(windowStartSeconds(windowSeconds, before));
      expect(window).toBeLessThanOrEqual(windowStartSeconds(windowSeconds, after));
      expect(typeof k.expiration).toBe("number");
      expect(k.expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 60);
      // And it outlives the window it counts.
      expect(k.expiration).toBeGreaterThanOrEqual(window + windowSeconds);
    }
  });
});

describe("rate limiting: windows reset", () => {
  for (const tier of tiers) {
    it(`${tier.name}: a 2 s window with limit 2 resets when the next window starts`, async () => {
      await setLimits({ default: 100, [tier.group]: 2 }, tier.strict, 2);
      let done = false;
      for (let attempt = 0; attempt < 3 && !done; attempt++) {
        await nextWindow(2);
        const client = w.newClient();
        const start = windowStartSeconds(2);
        const a = await tier.call({ client });
        const b = await tier.call({ client });
        const c = await tier.call({ client });
        if (windowStartSeconds(2) !== start) continue; // the window ended mid-test: redo
        expect(a.status, a.text).toBe(200);
        expectLimitHeaders(a.res, 2, 1, 2);
        expect(b.status, b.text).toBe(200);
        expectLimitHeaders(b.res, 2, 0, 2);
        expect429(c, 2, 2);
        await nextWindow(2);
        const d = await tier.call({ client });
        expect(d.status, d.text).toBe(200);
        expectLimitHeaders(d.res, 2, 1, 2);
        done = true;
      }
      expect(done).toBe(true);
    });
  }
});

describe("rate limiting: the limits' config is validated", () => {
  it("bad rate-limit settings are 400 invalid_request and leave the limits unchanged", async () => {
    await setLimits({ default: 100, config: 9 }, []);
    /** @type {object[]} */
    const bad = [
      { rateLimits: { config: 0 } },
      { rateLimits: { config: 1000001 } },
      { rateLimits: { config: "5" } },
      { rateLimits: { config: 2.5 } },
      { rateLimits: { "bad group!": 5 } },
      { rateLimits: { ["g".repeat(65)]: 5 } },
      { rateLimits: [5] },
      { strictRateLimits: "config" },
      { strictRateLimits: [5] },
      { strictRateLimits: ["bad group!"] },
      { rateLimitWindowSeconds: 0 },
      { rateLimitWindowSeconds: 86401 },
      { rateLimitWindowSeconds: "60" },
      { rateLimitWindowSeconds: 1.5 },
      { rateLimitWindowSecs: 60 },
    ];
    for (const body of bad) {
      expectError(expect, await w.patchConfig(body), 400, "invalid_request");
    }
    expectError(expect, await w.patchConfig("{rateLimits:"), 400, "invalid_json");
    expectError(expect, await w.patchConfig({ rateLimits: { config: 1 } }, { admin: false }), 401, "unauthorized");
    const r = await w.getConfig({ client: w.newClient() });
    expect(r.status).toBe(200);
    expect(r.body.rateLimits).toEqual({ default: 100, config: 9 });
    expect(r.body.rateLimitWindowSeconds).toBe(60);
    expectLimitHeaders(r.res, 9, 8);
  });
});
