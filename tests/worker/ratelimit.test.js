// Rate limiting: approximate groups on KV (one counter key per isolate, written at most once
// per second), strict groups exact on D1; RateLimit-* headers, 429 rate_limited with
// Retry-After, clients and groups counted apart, /health and /admin/* never limited. Bounds
// are fixed over fixed request counts; where a test needs a second to pass (a counter sync),
// it paces its own traffic, and the once-a-second rule is checked between consecutive
// writes (see `expectWritesSpaced`), never against how long the test took.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, roomInWindow, sleep, sum, timing } from "../helpers.js";
import { spawnApp } from "../app.js";

let w;
beforeAll(async () => {
  w = await spawnApp();
});
afterAll(() => w?.dispose());

const WINDOW = 60;

/** Replaces the whole config (PUT /admin/config) and checks it was accepted. */
async function setLimits(rateLimits, strict = [], windowSeconds = WINDOW) {
  const r = await w.replaceConfig({ rateLimits, strictRateLimits: strict, rateLimitWindowSeconds: windowSeconds });
  expect(r.status, r.text).toBe(200);
  expect(r.body.rateLimits).toMatchObject(rateLimits);
  expect(r.body.strictRateLimits).toEqual(strict);
  expect(r.body.rateLimitWindowSeconds).toBe(windowSeconds);
  return r.body;
}

/** Waits until just after the next window of `seconds` starts. */
async function nextWindow(seconds) {
  const len = seconds * 1000;
  await sleep(len - (Date.now() % len) + 50);
}

/**
 * Requests `{sent, answered, writes}` in the order sent: any two that wrote the counter key
 * did so at least a second apart, so the later one was answered at least a second after the
 * earlier one was sent. (Holds whatever the machine's speed; it cannot fail a correct Worker.)
 */
function expectWritesSpaced(requests) {
  const writers = requests.filter((r) => r.writes > 0);
  for (let i = 1; i < writers.length; i++) {
    const gap = writers[i].answered - writers[i - 1].sent;
    expect(gap, `writes ${i - 1} and ${i} of the counter key`).toBeGreaterThanOrEqual(990);
  }
}

/** A timed request: `{res, sent, answered, ...Server-Timing counts}`. */
async function timed(path, opts) {
  const sent = Date.now();
  const res = await w.fetch(path, opts);
  return { res, sent, answered: Date.now(), ...timing(res) };
}

const windowStartSeconds = (seconds, at = Date.now()) =>
  Math.floor(at / (seconds * 1000)) * seconds;

function limitHeaders(res) {
  return {
    limit: res.headers.get("RateLimit-Limit"),
    remaining: res.headers.get("RateLimit-Remaining"),
    reset: res.headers.get("RateLimit-Reset"),
  };
}

/** Asserts the three RateLimit-* headers: limit, remaining, and reset in 1..window. */
function expectLimitHeaders(res, limit, remaining, windowSeconds = WINDOW) {
  const h = limitHeaders(res);
  expect(h.limit).toBe(String(limit));
  expect(h.remaining).toBe(String(remaining));
  expect(h.reset).toMatch(/^\d+$/);
  expect(Number(h.reset)).toBeGreaterThanOrEqual(1);
  expect(Number(h.reset)).toBeLessThanOrEqual(windowSeconds);
}

function expectNoLimitHeaders(res) {
  expect(res.headers.get("RateLimit-Limit")).toBeNull();
  expect(res.headers.get("RateLimit-Remaining")).toBeNull();
  expect(res.headers.get("RateLimit-Reset")).toBeNull();
}

/** Asserts a 429 rate_limited with a positive integer Retry-After and the headers at 0. */
function expect429(r, limit, windowSeconds = WINDOW) {
  expectError(expect, r, 429, "rate_limited");
  const ra = r.res.headers.get("Retry-After");
  expect(ra).toMatch(/^\d+$/);
  expect(Number(ra)).toBeGreaterThanOrEqual(1);
  expect(Number(ra)).toBeLessThanOrEqual(windowSeconds);
  expectLimitHeaders(r.res, limit, 0, windowSeconds);
}

async function strictRow(bucket) {
  const { results } = await w.db
    .prepare("SELECT bucket, window_start, count FROM rate_limits WHERE bucket = ?")
    .bind(bucket)
    .all();
  return results;
}

const tiers = [
  { name: "approximate (KV)", group: "config", path: () => "/config", strict: [] },
  { name: "strict (D1)", group: "flags", path: () => "/flags/newCheckout", strict: ["flags"] },
];

describe("rate limiting: the boundary and the headers, both tiers", () => {
  for (const tier of tiers) {
    it(`${tier.name}: exactly limit allowed with decrementing headers, limit+1 is 429 rate_limited`, async () => {
      const limit = 5;
      await setLimits({ default: 100, [tier.group]: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const client = w.newClient();
      for (let i = 1; i <= limit; i++) {
        const r = await w.json(tier.path(), { client });
        expect(r.status, r.text).toBe(200);
        expectLimitHeaders(r.res, limit, limit - i);
      }
      const over = await w.json(tier.path(), { client });
      expect429(over, limit);
      // Stays refused within the window.
      expect429(await w.json(tier.path(), { client }), limit);
      if (tier.strict.length) {
        // The strict counter lives in D1: one row, counting every attempt.
        const rows = await strictRow(`${tier.group}:${client}`);
        expect(rows).toHaveLength(1);
        expect(rows[0].count).toBe(limit + 2);
        expect(rows[0].window_start % (WINDOW * 1000)).toBe(0);
      }
    });

    it(`${tier.name}: distinct clients are counted apart`, async () => {
      const limit = 3;
      await setLimits({ default: 100, [tier.group]: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const a = w.newClient();
      const b = w.newClient();
      for (let i = 0; i < limit; i++) expect((await w.fetch(tier.path(), { client: a })).status).toBe(200);
      expect429(await w.json(tier.path(), { client: a }), limit);
      // b is untouched by a's traffic.
      for (let i = 1; i <= limit; i++) {
        const r = await w.json(tier.path(), { client: b });
        expect(r.status, r.text).toBe(200);
        expectLimitHeaders(r.res, limit, limit - i);
      }
      expect429(await w.json(tier.path(), { client: b }), limit);
      // An IPv6 client is another client again.
      const v6 = await w.json(tier.path(), { client: `2001:db8::${a.split(".")[3]}` });
      expect(v6.status, v6.text).toBe(200);
      expectLimitHeaders(v6.res, limit, limit - 1);
    });

    it(`${tier.name}: distinct groups are counted apart`, async () => {
      const limit = 2;
      const other = tier.group === "config" ? "flags" : "config";
      await setLimits({ default: 7, config: limit, flags: limit }, tier.strict);
      await roomInWindow(WINDOW, 5000);
      const client = w.newClient();
      for (let i = 0; i < limit; i++) expect((await w.fetch(tier.path(), { client })).status).toBe(200);
      expect429(await w.json(tier.path(), { client }), limit);
      // The other group, same client: a fresh counter.
      const otherPath = other === "config" ? "/config" : "/flags/x";
      let r = await w.json(otherPath, { client });
      expect(r.status, r.text).toBe(200);
      expectLimitHeaders(r.res, limit, limit - 1);
      // users falls back to rateLimits.default, a counter of its own.
      r = await w.json("/users/nobody-here", { client });
      expectError(expect, r, 404, "not_found");
      expectLimitHeaders(r.res, 7, 6);
      r = await w.json("/users/nobody-else", { client });
      expectLimitHeaders(r.res, 7, 5);
      // The exhausted group is still refused.
      expect429(await w.json(tier.path(), { client }), limit);
    });
  }

  it("strict requests count in D1; approximate ones never touch D1", async () => {
    await setLimits({ default: 100 }, ["flags"]);
    await roomInWindow(WINDOW, 3000);
    const client = w.newClient();
    const s = await w.fetch("/flags/a", { client });
    expect(s.status).toBe(200);
    expect(timing(s).queries).toBeGreaterThanOrEqual(1);
    const rows = await strictRow(`flags:${client}`);
    expect(rows).toHaveLength(1);
    expect(rows[0].count).toBe(1);
    const a = await w.fetch("/config", { client });
    expect(a.status).toBe(200);
    expect(timing(a).queries).toBe(0);
    expect(await strictRow(`config:${client}`)).toHaveLength(0);
  });

  it("a client address that is not an IP counts as the client anonymous", async () => {
    await setLimits({ default: 100, flags: 3, config: 3 }, ["flags"]);
    await roomInWindow(WINDOW, 5000);
    const junk = (v) => ({ headers: { "CF-Connecting-IP": v } });
    // Strict: the D1 bucket is flags:anonymous, shared by every non-address.
    let r = await w.json("/flags/x", junk("junk"));
    expect(r.status, r.text).toBe(200);
    expectLimitHeaders(r.res, 3, 2);
    r = await w.json("/flags/x", junk("999.1.2.3"));
    expect(r.status, r.text).toBe(200);
    expectLimitHeaders(r.res, 3, 1);
    const rows = await strictRow("flags:anonymous");
    expect(rows).toHaveLength(1);
    expect(rows[0].count).toBe(2);
    expect(await strictRow("flags:junk")).toHaveLength(0);
    // Drive it over the limit with more junk values: all one client.
    for (const v of ["not an ip", "x".repeat(300), "<script>"]) await w.fetch("/flags/x", junk(v));
    expect429(await w.json("/flags/x", junk("junk")), 3);
    // A real address is unaffected.
    expect((await w.fetch("/flags/x", { client: w.newClient() })).status).toBe(200);
    // Approximate: the KV counter key names anonymous too.
    for (let i = 0; i < 4; i++) await w.fetch("/config", junk("junk-" + i));
    expect429(await w.json("/config", junk("still junk")), 3);
    await sleep(1100);
    await w.fetch("/config", junk("junk")); // triggers a sync after a second
    const keys = (await w.kv.list({ prefix: "rl:config:" })).keys.map((k) => k.name);
    expect(keys.some((k) => k.startsWith(`rl:config:anonymous:${windowStartSeconds(WINDOW)}:`))).toBe(true);
    expect(keys.some((k) => /junk|script/.test(k))).toBe(false);
  });
});

describe("rate limiting: routes that are never limited", () => {
  it("/health and /admin/* carry no RateLimit headers and are never refused", async () => {
    // Even with a limit of 1 for everything, and health/admin named as strict groups.
    await setLimits({ default: 1, admin: 1, health: 1 }, ["admin", "health"]);
    const client = w.newClient();
    for (let i = 0; i < 5; i++) {
      const h = await w.json("/health", { client });
      expect(h.status).toBe(200);
      expect(h.body).toMatchObject({ status: "ok" });
      expectNoLimitHeaders(h.res);
      const p = await w.json("/admin/config", { method: "PATCH", admin: true, client, body: { maintenanceMode: false } });
      expect(p.status, p.text).toBe(200);
      expectNoLimitHeaders(p.res);
      const s = await w.json("/admin/sessions?limit=1", { admin: true, client });
      expect(s.status, s.text).toBe(200);
      expectNoLimitHeaders(s.res);
      const u = await w.json(`/admin/users/rl-user-${i}`, { method: "PUT", admin: true, client, body: { name: "R" } });
      expect(u.status, u.text).toBe(200);
      expectNoLimitHeaders(u.res);
      // An admin request refused for auth is not limited either.
      const bad = await w.json("/admin/sessions", { admin: "wrong", client });
      expectError(expect, bad, 401, "unauthorized");
      expectNoLimitHeaders(bad.res);
    }
    // No counter was kept for them anywhere.
    expect(await strictRow(`admin:${client}`)).toHaveLength(0);
    expect(await strictRow(`health:${client}`)).toHaveLength(0);
    expect((await w.kv.list({ prefix: "rl:admin:" })).keys).toHaveLength(0);
    expect((await w.kv.list({ prefix: "rl:health:" })).keys).toHaveLength(0);
    // While an ordinary route is limited at 1 for the same client.
    expectLimitHeaders((await w.fetch("/config", { client })), 1, 0);
    expect429(await w.json("/config", { client }), 1);
  });

  it("a 404 (unknown path) carries no RateLimit headers", async () => {
    await setLimits({ default: 1 }, []);
    const client = w.newClient();
    for (let i = 0; i < 3; i++) {
      const r = await w.json("/nope", { client });
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
      Array.from({ length: 25 }, (_, i) => w.json(`/flags/f${i}`, { client })),
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
    const rows = await strictRow(`flags:${client}`);
    expect(rows).toHaveLength(1);
    expect(rows[0].count).toBe(25);
  });
});

describe("rate limiting: approximate tier stays within KV's one write per key per second", () => {
  it("a concurrent burst of 60 writes the counter key at most once per second", async () => {
    await setLimits({ default: 1000000 }, []);
    await roomInWindow(WINDOW, 10000);
    const client = w.newClient();
    const t0 = Date.now();
    const rs = [];
    // Three concurrent waves of 20, paced 600 ms apart, so syncs really happen.
    for (let wave = 0; wave < 3; wave++) {
      rs.push(...(await Promise.all(Array.from({ length: 20 }, () => timed("/config", { client })))));
      if (wave < 2) await sleep(600);
    }
    for (const r of rs) expect(r.res.status).toBe(200);
    const total = sum(rs);
    expect(total.writes).toBeGreaterThanOrEqual(1); // it did sync
    expect(total.writes).toBeLessThanOrEqual(6); // one per wave at most, a second apart
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
    const rs = [];
    for (let i = 0; i < 60; i++) {
      const r = await timed("/config", { client });
      expect(r.res.status).toBe(200);
      expectLimitHeaders(r.res, 1000000, 1000000 - (i + 1));
      rs.push(r);
      await sleep(35); // pacing: the burst spans more than a second
    }
    const total = sum(rs);
    expect(total.writes).toBeGreaterThanOrEqual(1);
    expect(total.writes).toBeLessThanOrEqual(30); // never one per request
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
    const rs = [];
    for (let i = 0; i < 40; i++) {
      const r = await timed("/config", { client });
      expect(r.res.status).toBe(200);
      rs.push(r);
    }
    const total = sum(rs);
    // Fixed bounds over 40 requests: at most one write in four requests, and writes a
    // second apart.
    expect(total.writes).toBeLessThanOrEqual(10);
    expectWritesSpaced(rs);
    // One read to load the counter, one per sync, maybe a config refresh or two.
    expect(total.reads).toBeLessThanOrEqual(1 + total.writes + 3);
    expect(total.queries).toBe(0);
    // Most requests did no KV work at all.
    expect(rs.filter((t) => t.reads === 0 && t.writes === 0).length).toBeGreaterThanOrEqual(40 - (3 + 2 * total.writes));
    expect(rs.filter((t) => t.reads === 0 && t.writes === 0).length).toBeGreaterThanOrEqual(20);
  });

  it("a concurrent burst against an approximate group admits at most the limit in one isolate", async () => {
    const limit = 10;
    await setLimits({ default: 100, config: limit }, []);
    await roomInWindow(WINDOW, 5000);
    const client = w.newClient();
    const rs = await Promise.all(Array.from({ length: 25 }, () => w.json("/config", { client })));
    const ok = rs.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(ok).toBeLessThanOrEqual(limit);
    for (const r of rs.filter((r) => r.status !== 200)) expect429(r, limit);
  });

  it("KV counter keys carry an expiration at least 60 s ahead", async () => {
    for (const windowSeconds of [60, 2]) {
      await setLimits({ default: 100 }, [], windowSeconds);
      // Start both requests in one window (a 2 s window: right after it begins).
      if (windowSeconds === 2) await nextWindow(2);
      else await roomInWindow(windowSeconds, 3000);
      const client = w.newClient();
      // First request loads; a request more than a second later syncs (writes) the key.
      expect((await w.fetch("/config", { client })).status).toBe(200);
      await sleep(1050);
      const before = Date.now();
      const r = await w.fetch("/config", { client });
      expect(r.status).toBe(200);
      expect(timing(r).writes).toBe(1);
      const keys = (await w.kv.list({ prefix: `rl:config:${client}:` })).keys;
      expect(keys.length).toBeGreaterThanOrEqual(1);
      const written = keys.filter((k) => k.name.includes(`:${windowStartSeconds(windowSeconds, before)}:`));
      expect(written, JSON.stringify(keys)).toHaveLength(1);
      for (const k of written) {
        expect(typeof k.expiration).toBe("number");
        expect(k.expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 60);
        // And it outlives the window it counts.
        expect(k.expiration).toBeGreaterThanOrEqual(windowStartSeconds(windowSeconds, before) + windowSeconds);
      }
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
        const a = await w.json(tier.path(), { client });
        const b = await w.json(tier.path(), { client });
        const c = await w.json(tier.path(), { client });
        if (windowStartSeconds(2) !== start) continue; // the window ended mid-test: redo
        expect(a.status, a.text).toBe(200);
        expectLimitHeaders(a.res, 2, 1, 2);
        expect(b.status, b.text).toBe(200);
        expectLimitHeaders(b.res, 2, 0, 2);
        expect429(c, 2, 2);
        await nextWindow(2);
        const d = await w.json(tier.path(), { client });
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
      expectError(expect, await w.json("/admin/config", { method: "PATCH", admin: true, body }), 400, "invalid_request");
    }
    expectError(expect, await w.json("/admin/config", { method: "PATCH", admin: true, body: "{rateLimits:" }), 400, "invalid_json");
    expectError(expect, await w.json("/admin/config", { method: "PATCH", body: { rateLimits: { config: 1 } } }), 401, "unauthorized");
    const r = await w.json("/config", { client: w.newClient() });
    expect(r.status).toBe(200);
    expect(r.body.rateLimits).toEqual({ default: 100, config: 9 });
    expect(r.body.strictRateLimits).toEqual([]);
    expect(r.body.rateLimitWindowSeconds).toBe(60);
    expectLimitHeaders(r.res, 9, 8);
  });
});
