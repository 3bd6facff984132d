// @ts-check
// Across isolates and locations: every cross-isolate and cross-location bound that
// docs/consistency.md states, asserted in workerd with the built Worker running as separate
// isolates (each its own module state), behind KV stand-ins that lag between locations, keep
// the last writer, carry TTLs and metadata, and refuse a second write to a key within a
// second (locations.js, kv-network.js), and over one D1 whose primary sits in the first
// location with a lagging replica elsewhere (d1-network.js, d1-location.js). Where KV's delay must really pass, the assertion is that
// every request after the documented bound behaves, never how long something took.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, expectError, primaryQueries, roomInWindow, sleep, timing, until } from "../helpers.js";
import { HIGH } from "../app.js";
import { DELAY_MS, bootLocations, writesUnderASecondApart } from "./locations.js";

/** @typedef {Awaited<ReturnType<typeof bootLocations>>} Env */
/** @typedef {import("./locations.js").Isolate} Isolate */
/** @typedef {import("./locations.js").Write} Write */

/** Sessions: an isolate trusts what it knows of revocations for 10 s. */
const RECHECK_MS = 10_000;
/** Config: an isolate trusts its copy for 5 s. */
const CONFIG_CACHE_MS = 5_000;
/** KV's real propagation between locations, for the tests whose point is a bound below it. */
const KV_DELAY_MS = Math.max(DELAY_MS, 60_000);
/** Set-up margin past a bound, for the clocks of node and workerd. */
const SLACK_MS = 300;
/** A test that waits for KV's delay (once or twice) gets that much more time. */
const WAITS_FOR_DELAY = { timeout: 60_000 + 2 * DELAY_MS };
/** The limiter tests' window: a day, so that no window ends while one runs. */
const DAY_S = 86400;

/**
 * Copies location `from`'s KV entry for `key` into location `to`, as if it had propagated.
 * @param {Env} env @param {string} key @param {string} from @param {string} to
 */
async function propagated(env, key, from, to) {
  const { value, metadata } = await env.kvAt[from].getWithMetadata(key);
  expect(value, `${key} at ${from}`).not.toBeNull();
  await env.kvAt[to].put(key, value, { metadata, expirationTtl: 3600 });
}

describe("the KV stand-in: KV's behaviour across locations", () => {
  /** @type {Env} */
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: 1500 });
  });
  afterAll(() => env?.dispose());

  it("a write is seen at once where it was made, 1.5 s later elsewhere, with its expiry and metadata", async () => {
    const [a, b] = [env.kv("a"), env.kv("b")];
    // Not elsewhere before the delay: at KV's real delay (60 s), a write made now has not
    // reached b when b is asked right after, however slow the machine.
    await env.setDelay(KV_DELAY_MS);
    await a.put("t:early", "v0");
    expect(await a.get("t:early", { type: "text" })).toBe("v0");
    expect(await b.get("t:early", { type: "text" })).toBeNull();
    expect((await b.list({ prefix: "t:" })).keys).toEqual([]);
    await env.setDelay(1500);
    const expiration = Math.floor(Date.now() / 1000) + 61; // under 60 s left when it arrives
    await a.put("t:one", "v1", { expiration, metadata: { m: 1 } });
    const written = Date.now();
    expect(await a.get("t:one", { type: "text" })).toBe("v1");
    // Set-up: the delay passes.
    await until(written + 1500 + 100);
    expect(await b.get("t:one", { type: "text" })).toBe("v1");
    const bulk = await b.get(["t:one", "t:none"], { type: "text" });
    expect([...bulk.entries()]).toEqual([["t:one", "v1"], ["t:none", null]]);
    expect((await b.list({ prefix: "t:" })).keys).toEqual([{ name: "t:one", expiration, metadata: { m: 1 } }]);
  });

  it("the last writer wins: an older write arriving late does not replace a newer one", async () => {
    const [a, b] = [env.kv("a"), env.kv("b")];
    await a.put("t:lww", "from a");
    await sleep(1050); // KV's write rule: the next write of the key a second later
    await b.put("t:lww", "from b");
    const last = Date.now();
    await until(last + 1500 + 100);
    expect(await b.get("t:lww", { type: "text" })).toBe("from b");
    expect(await a.get("t:lww", { type: "text" })).toBe("from b");
  });

  it("a second write to a key within a second is refused, from any location, and changes nothing", async () => {
    const [a, b] = [env.kv("a"), env.kv("b")];
    await a.put("t:rule", "first");
    await expect(b.put("t:rule", "second")).rejects.toThrow();
    await expect(a.delete("t:rule")).rejects.toThrow();
    expect(await a.get("t:rule", { type: "text" })).toBe("first");
    const log = await env.writes("t:rule");
    expect(log.map((x) => [x.location, x.op, x.accepted])).toEqual([
      ["a", "put", true],
      ["b", "put", false],
      ["a", "delete", false],
    ]);
  });
});

describe("sessions: revocation reaches every location within 10 s, even while KV there holds the session for 60 s", () => {
  /** @type {Env} */
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: HIGH });
  });
  afterAll(() => env?.dispose());

  it("after a logout and a revoke-all through location a, location b refuses both sessions once 10 s have passed, every time", async () => {
    const { a, b } = env.at;
    const own = await a.mintSession();
    const other = await a.mintSession();
    for (const s of [own, other]) {
      await propagated(env, `session:${s.hash}`, "a", "b");
      const r = await b.getCurrentSession(s.id);
      expect(r.status, r.text).toBe(200);
    }
    expect((await a.logout(own.id)).status).toBe(204);
    const all = await a.revokeUserSessions(other.userId);
    expect(all.status, all.text).toBe(200);
    expect(all.body).toEqual({ revoked: 1 });
    const revoked = Date.now();
    for (const s of [own, other]) {
      expectError(expect, await a.getCurrentSession(s.id), 401, "unauthorized");
    }
    // Whatever b answers before the bound, once it has passed, b refuses both, every time:
    // wait it out (set-up), then ask again and again.
    await until(revoked + RECHECK_MS + SLACK_MS);
    for (let round = 0; round < 6; round++) {
      const [r1, r2] = await Promise.all([b.getCurrentSession(own.id), b.getPrefs(other.id)]);
      expect([r1.status, r2.status], `round ${round} after the bound`).toEqual([401, 401]);
      await sleep(250);
    }
    // b refused them with their KV copies still there: the bound is the Worker's, not KV's.
    for (const s of [own, other]) expect(await env.kvAt.b.get(`session:${s.hash}`)).not.toBeNull();
  });

  it("read-repair cannot bring back a session revoked while its KV write-back was in flight", WAITS_FOR_DELAY, async () => {
    const { a, b } = env.at;
    await env.setDelay(DELAY_MS);
    // A session that exists only in D1 (as one minted elsewhere whose KV copy never came).
    const s = await a.seedSession({ copy: false });
    const key = `session:${s.hash}`;
    // b misses KV, reads D1 (valid), and writes the session back; KV holds that write in
    // flight until the test lets it go...
    await env.setSlowPuts([{ location: "b", prefix: key, ms: null }]);
    const reading = b.getCurrentSession(s.id);
    const underWay = await eventually(async () => (await env.inFlight(key)).length > 0, 10_000);
    expect(underWay, "b's write-back is in flight").toBe(true);
    // ...while a revokes the session (D1, then its KV delete).
    expect((await a.logout(s.id)).status).toBe(204);
    /** @param {Write[]} log @param {string} location @param {string} op @param {number} [after] */
    const find = (log, location, op, after = 0) => log.find((x) => x.location === location && x.op === op && x.accepted && x.at > after);
    const deleted = find(await env.writes(key), "a", "delete");
    expect(deleted, "a's KV delete").toBeTruthy();
    // Set-up: KV takes another write of the key a second after the last (its write rule).
    await until(/** @type {Write} */ (deleted).at + 1000);
    await env.setSlowPuts([]);
    const read = await reading;
    const repaired = find(await env.writes(key), "b", "put");
    expect(repaired, "b's write-back, accepted").toBeTruthy();
    expect(/** @type {Write} */ (repaired).at).toBeGreaterThan(/** @type {Write} */ (deleted).at);
    expectError(expect, read, 401, "unauthorized");
    // b removes the copy it wrote back; once that removal has had KV's delay to spread, no
    // location holds the session (read through the simulation, as each Worker sees its KV).
    const removed = await eventually(async () => find(await env.writes(key), "b", "delete", /** @type {Write} */ (repaired).at), 10_000);
    expect(removed, "b's removal of its copy").toBeTruthy();
    await until(/** @type {Write} */ (removed).at + env.delayMs + SLACK_MS);
    for (const loc of ["a", "b"]) {
      expect(await env.kv(loc).get(key), `KV at ${loc}`).toBeNull();
      expectError(expect, await env.at[loc].getCurrentSession(s.id), 401, "unauthorized");
    }
    await env.setDelay(KV_DELAY_MS);
  });
});

describe("preferences: read-your-writes across locations for a client that sends back Prefs-Version", () => {
  /** @type {Env} */
  let env;
  /** @type {string} */
  let session;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: HIGH });
    const s = await env.at.a.mintSession();
    await propagated(env, `session:${s.hash}`, "a", "b");
    session = s.id;
  });
  afterAll(() => env?.dispose());

  it("each PATCH through location a is read back through location b at once, every time", async () => {
    const { a, b } = env.at;
    const first = await b.getPrefs(session);
    expect(first.status, first.text).toBe(200);
    expect(first.res.headers.get("Prefs-Version")).toBe("0");
    for (let i = 0; i < 8; i++) {
      const change = { theme: i % 2 ? "light" : "dark", notifications: i % 3 === 0 };
      const wrote = await a.patchPrefs(session, change);
      expect(wrote.status, wrote.text).toBe(200);
      const version = String(wrote.res.headers.get("Prefs-Version"));
      expect(version).toMatch(/^\d+$/);
      if (i === 0) {
        // Without the version, b serves its own (older) KV copy: KV has not propagated.
        const plain = await b.getPrefs(session);
        expect(plain.body.theme).toBe("light");
      }
      const read = await b.getPrefs(session, { headers: { "Prefs-Version": version } });
      expect(read.status, read.text).toBe(200);
      expect(read.body).toEqual(wrote.body);
      expect(Number(read.res.headers.get("Prefs-Version"))).toBeGreaterThanOrEqual(Number(version));
    }
  });

  it("a malformed Prefs-Version is 400 invalid_request naming it", async () => {
    for (const bad of ["x", "-1", "1.5", "9".repeat(16)]) {
      const r = await env.at.b.getPrefs(session, { headers: { "Prefs-Version": bad } });
      expect(expectError(expect, r, 400, "invalid_request").error).toMatch(/^Prefs-Version/);
    }
  });
});

describe("users: another location serves a changed profile for at most 2 × cacheTtlSeconds after caching it", () => {
  // An hour: the seeded ages stay where they are (fresh, stale, old) for as long as a test runs.
  const TTL_S = 3600;
  /** @type {Env} */
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: { ...HIGH, cacheTtlSeconds: TTL_S } });
  });
  afterAll(() => env?.dispose());

  /** @param {string} id @param {string} name @param {number} cachedAt */
  const envelope = (id, name, cachedAt) =>
    JSON.stringify({ data: { id, name, updatedAt: cachedAt }, cachedAt, ttl: TTL_S });

  it("copies of the old name at b, cached 0, 1.5, 2 and 2.5 ttl ago: served fresh, refreshed when stale, refetched from 2 ttl on", async () => {
    const { a, b } = env.at;
    const ages = { fresh: 0, stale: 1.5, old: 2, older: 2.5 };
    const now = Date.now();
    for (const [tag, age] of Object.entries(ages)) {
      const id = `swr-${tag}`;
      expect((await a.putUser(id, { name: "New" })).status).toBe(200);
      // b still holds a copy of the old name: a's cache delete takes KV's full delay to get there.
      await env.kvAt.b.put(`user:${id}`, envelope(id, "Old", now - age * TTL_S * 1000), { expirationTtl: 3600 });
    }
    /** @param {string} tag */
    const get = async (tag) => {
      const r = await b.getUser(`swr-${tag}`);
      expect(r.status, r.text).toBe(200);
      return [r.res.headers.get("X-Cache"), r.body.name];
    };
    expect(await get("fresh")).toEqual(["HIT", "Old"]);
    expect(await get("old")).toEqual(["MISS", "New"]);
    expect(await get("older")).toEqual(["MISS", "New"]);
    expect(await get("stale")).toEqual(["STALE", "Old"]);
    expect(await eventually(async () => ((await get("stale"))[1] === "New" ? "refreshed" : null))).toBe("refreshed");
    expect(await get("stale")).toEqual(["HIT", "New"]);
  });
});

describe("one location, isolates a and b, and isolate c in another location", () => {
  /** @type {Env} */
  let env;
  beforeAll(async () => {
    env = await bootLocations({
      isolates: [
        ["a", "here"],
        ["b", "here"],
        ["c", "there"],
      ],
      seedConfig: HIGH,
    });
  });
  afterAll(() => env?.dispose());

  /** @param {Isolate} at @param {object} body */
  async function putConfig(at, body) {
    const r = await at.replaceConfig(body);
    expect(r.status, r.text).toBe(200);
    return r.body;
  }

  it("config: the writing isolate sees a write at once, another isolate within 5 s, another location within 5 s plus KV's delay", WAITS_FOR_DELAY, async () => {
    const { a, b, c } = env.at;
    for (const at of [a, b, c]) expect((await at.getFlag("across")).status).toBe(200);
    await putConfig(a, { ...HIGH, featureFlags: { across: true } });
    const written = Date.now();
    expect((await a.getFlag("across")).body.enabled).toBe(true);
    // Set-up: each bound passes before the isolates it speaks of are asked.
    await until(written + CONFIG_CACHE_MS + SLACK_MS);
    for (let i = 0; i < 10; i++) expect((await b.getFlag("across")).body.enabled).toBe(true);
    await until(written + CONFIG_CACHE_MS + env.delayMs + SLACK_MS);
    for (let i = 0; i < 10; i++) expect((await c.getFlag("across")).body.enabled).toBe(true);
  });

  it("config: two admin writes through two isolates within a second both succeed, a second apart in KV, and KV ends at the newer", async () => {
    const { a, b } = env.at;
    const before = (await env.writes("config:app")).length;
    const [ra, rb] = await Promise.all([a.patchConfig({ featureFlags: { fromA: true } }), b.patchConfig({ featureFlags: { fromB: true } })]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    const versions = [ra, rb].map((r) => Number(JSON.parse(String(r.res.headers.get("ETag")))));
    expect(Math.abs(versions[0] - versions[1]), "two versions, one after the other").toBe(1);
    // KV's write rule held: whichever write KV refused (how many, and whose, depends on how
    // the two interleave) was written again a second later.
    const log = (await env.writes("config:app")).slice(before);
    expect(log.some((x) => x.accepted)).toBe(true);
    expect(writesUnderASecondApart(log)).toEqual([]);
    // And KV ends at the newer version, which holds both changes.
    const newest = Math.max(...versions);
    const stored = await eventually(async () => {
      const r = await env.kvAt.here.getWithMetadata("config:app");
      return r.metadata?.version === newest ? r : null;
    }, 10_000);
    expect(stored?.metadata, `KV holds version ${newest}`).toEqual({ version: newest });
    expect(JSON.parse(stored?.value).featureFlags).toMatchObject({ fromA: true, fromB: true });
  });

  it("flags: a client that saw a version through one location never gets an older one from a location whose KV lags", async () => {
    const { a, c } = env.at;
    const context = { targetingKey: "u-monotonic" };
    // c serves the current version from its copy; then a writes a newer one.
    const old = await c.evaluateFlags({ context });
    expect(old.status, old.text).toBe(200);
    const put = await a.patchConfig({ featureFlags: { monotonic: true } });
    expect(put.status, put.text).toBe(200);
    const newer = Number(JSON.parse(String(put.res.headers.get("ETag"))));
    const seen = await a.evaluateFlags({ context });
    expect(seen.body.metadata.configVersion).toBe(newer);
    const tag = /** @type {string} */ (seen.res.headers.get("ETag"));
    // c's KV does not have it yet (it lags by env.delayMs): c asks the authority instead of
    // answering from the older version. The same context and version make the same answer: 304.
    const kvAtC = await env.kvAt.there.getWithMetadata("config:app");
    expect(kvAtC.metadata?.version ?? 0, "c's KV still lags").toBeLessThan(newer);
    const again = await c.evaluateFlags({ context }, { headers: { "If-None-Match": tag } });
    expect(again.status, again.text).toBe(304);
    expect(again.res.headers.get("ETag")).toBe(tag);
    const plain = await c.evaluateFlags({ context });
    expect(plain.body.metadata.configVersion, "c now serves it to everyone").toBe(newer);
    expect(plain.body.flags.find((/** @type {any} */ f) => f.key === "monotonic")).toMatchObject({ value: true });
  });

  it("preferences without Prefs-Version: another isolate reads a write within 2 s, another location within 2 s plus KV's delay", WAITS_FOR_DELAY, async () => {
    const { a, b, c } = env.at;
    const s = await a.mintSession();
    await propagated(env, `session:${s.hash}`, "here", "there");
    const session = s.id;
    // b caches the defaults in this location's KV, so a's refresh of that copy has to wait
    // out KV's write rule: the slow case.
    expect((await b.getPrefs(session)).body.theme).toBe("light");
    const wrote = await a.patchPrefs(session, { theme: "dark" });
    expect(wrote.status, wrote.text).toBe(200);
    const written = Date.now();
    // Set-up: each bound passes before the isolates it speaks of are asked.
    await until(written + 2000);
    for (let i = 0; i < 5; i++) expect((await b.getPrefs(session)).body.theme).toBe("dark");
    await until(written + 2000 + env.delayMs);
    for (let i = 0; i < 5; i++) expect((await c.getPrefs(session)).body.theme).toBe("dark");
  });

  it("approximate limiter: two isolates at 20 requests/s against a limit of 60 admit 60 to 100, and never write a counter key twice in a second", async () => {
    const { a, b } = env.at;
    // Through both isolates, so both copies hold it at once.
    const limits = { rateLimits: { default: 1000000, config: 60 }, rateLimitWindowSeconds: DAY_S };
    await putConfig(a, limits);
    await putConfig(b, limits);
    await roomInWindow(DAY_S, 60_000);
    const client = a.newClient();
    /**
     * 90 requests, one at a time, at most 20 per second (pacing: set-up).
     * @param {Isolate} at
     */
    async function steady(at) {
      const statuses = [];
      for (let i = 0; i < 90; i++) {
        const started = Date.now();
        statuses.push((await at.getConfig({ client })).status);
        await sleep(50 - (Date.now() - started));
      }
      return statuses;
    }
    const [sa, sb] = await Promise.all([steady(a), steady(b)]);
    const admitted = [sa, sb].map((s) => s.filter((x) => x === 200).length);
    for (const s of [sa, sb]) expect(s.every((x) => x === 200 || x === 429)).toBe(true);
    // The documented bound: the limit plus 2 s of the other isolate's traffic (20/s).
    expect(admitted[0] + admitted[1], `admitted ${admitted}`).toBeGreaterThanOrEqual(60);
    expect(admitted[0] + admitted[1], `admitted ${admitted}`).toBeLessThanOrEqual(60 + 2 * 20);
    for (const n of admitted) expect(n).toBeLessThanOrEqual(60);
    const writes = await env.writes(`rl:config:${client}:`);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.filter((x) => !x.accepted), "writes KV refused").toEqual([]);
    expect(new Set(writes.map((x) => x.key)).size, "one counter key per isolate").toBe(2);
  });

  it("approximate limiter: a counter write slow on its way holds the next one until a second after it finished, so KV refuses none", async () => {
    const { a } = env.at;
    await putConfig(a, { rateLimits: { default: 1000000, config: 60 }, rateLimitWindowSeconds: DAY_S });
    await roomInWindow(DAY_S, 60_000);
    const client = a.newClient();
    const prefix = `rl:config:${client}:`;
    async function get() {
      expect((await a.getConfig({ client })).status).toBe(200);
    }
    await get(); // lists the window's keys: the first write waits a second
    const listed = Date.now();
    await env.setSlowPuts([{ location: "here", prefix, ms: 600 }]);
    await until(listed + 1100);
    const sent = Date.now();
    await get(); // writes the count; KV takes it 600 ms later, and the request waits for it
    const finished = Date.now();
    await env.setSlowPuts([]);
    // A second after the write was sent, but not yet a second after KV took it: the isolate
    // must not write again (KV would refuse it).
    await until(sent + 1200);
    await get();
    // A second after the write finished (with room for the request in flight): a write.
    await until(finished + 1000 + SLACK_MS);
    await get();
    const writes = await env.writes(prefix);
    expect(writes.filter((x) => !x.accepted), "writes KV refused").toEqual([]);
    expect(writes.length, "the slow write and the one a second after it").toBeGreaterThanOrEqual(2);
    for (let i = 1; i < writes.length; i++) expect(writes[i].at - writes[i - 1].at).toBeGreaterThanOrEqual(1000);
  });

  it("strict limiter: a burst of 20 across two isolates against a limit of 5 admits exactly 5", async () => {
    const { a, b } = env.at;
    const limits = { rateLimits: { default: 1000000, flags: 5 }, strictRateLimits: ["flags"], rateLimitWindowSeconds: DAY_S };
    await putConfig(a, limits);
    await putConfig(b, limits);
    await roomInWindow(DAY_S, 60_000);
    const client = a.newClient();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).getFlag(`f${i}`, {}, { client })));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(5);
    expect(rs.filter((r) => r.status === 429)).toHaveLength(15);
  });
});

describe("D1 across locations: the primary in a, a lagging replica in b", () => {
  /** @type {Env} */
  let env;
  beforeAll(async () => {
    const isolates = /** @type {[string, string][]} */ (["a", "b", "c", "d"].map((l) => [l, l]));
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: HIGH, replicaLagMs: KV_DELAY_MS, primaryRttMs: 150, isolates });
  });
  afterAll(() => env?.dispose());

  it("the stand-in: a write reaches b's replica after the lag; a read with its bookmark before then goes to the primary", async () => {
    const { b } = env.at;
    const s = await b.mintSession();
    await propagated(env, `session:${s.hash}`, "b", "b");
    const wrote = await b.patchPrefs(s.id, { theme: "dark" });
    expect(wrote.status, wrote.text).toBe(200);
    expect(primaryQueries(wrote.res), "a write goes to the primary").toBeGreaterThanOrEqual(1);
    const bookmark = wrote.res.headers.get("Prefs-Bookmark");
    expect(bookmark, "the write's bookmark").toMatch(/^[A-Za-z0-9._:-]+$/);
    const replica = await env.d1Calls("b");
    expect(replica.filter((c) => c.write).every((c) => c.target === "primary")).toBe(true);
  });

  it("read-your-writes through the bookmark: another location reads a write at once, from the primary while its replica lags, from the replica once it has caught up", async () => {
    // Three isolates in three locations besides the primary's, each reading once: no
    // isolate's own copy (or KV's) stands in for the D1 read under test.
    const { a, b, c, d } = env.at;
    const s = await a.mintSession();
    for (const l of ["b", "c", "d"]) await propagated(env, `session:${s.hash}`, "a", l);
    // Each isolate reads the revocation feed on its first session check: done here, so the
    // reads below count only the preferences.
    for (const i of [b, c, d]) expect((await i.getCurrentSession(s.id)).status).toBe(200);
    const wrote = await a.patchPrefs(s.id, { theme: "dark", language: "nl-BE" });
    expect(wrote.status, wrote.text).toBe(200);
    const version = String(wrote.res.headers.get("Prefs-Version"));
    const bookmark = String(wrote.res.headers.get("Prefs-Bookmark"));
    // b's KV has no copy yet (KV's real delay), and its replica lags by as much: with the
    // bookmark, the read is served by the primary, and sees the write.
    const headers = { "Prefs-Version": version, "Prefs-Bookmark": bookmark };
    const early = await b.getPrefs(s.id, { headers });
    expect(early.status, early.text).toBe(200);
    expect(early.body).toEqual(wrote.body);
    expect(primaryQueries(early.res), "the replica is behind: the primary").toBe(1);
    // Without the bookmark but with the version: the replica first (too old), then the primary.
    const versionOnly = await c.getPrefs(s.id, { headers: { "Prefs-Version": version } });
    expect(versionOnly.body).toEqual(wrote.body);
    expect(timing(versionOnly.res).queries).toBe(2);
    expect(primaryQueries(versionOnly.res)).toBe(1);
    // The replica catches up: the same read is served there, with no call to the primary.
    await env.setReplica({ lagMs: 0 });
    const late = await d.getPrefs(s.id, { headers });
    expect(late.body).toEqual(wrote.body);
    expect(timing(late.res).queries).toBe(1);
    expect(primaryQueries(late.res), "the replica has applied the bookmark").toBe(0);
    await env.setReplica({ lagMs: KV_DELAY_MS });
  });

  it("the common path of GET /sessions/current, /prefs, /config and /users/:id at b makes no call to the distant primary", async () => {
    const { a, b } = env.at;
    const s = await a.mintSession();
    await propagated(env, `session:${s.hash}`, "a", "b");
    const user = await a.seedUser();
    // Warm-up: b reads the revocation feed, caches the profile, and copies the preferences.
    expect((await b.getCurrentSession(s.id)).status).toBe(200);
    expect((await b.getPrefs(s.id)).status).toBe(200);
    expect((await b.getConfig()).status).toBe(200);
    // The profile is cached at b once b's copy lands (KV refuses a second write of the key
    // within a second of a's invalidation: b's first copy may be refused; a later one lands).
    const cached = await eventually(async () => (await b.getUser(user.id)).res.headers.get("X-Cache") === "HIT", 10_000, 250);
    expect(cached, "b serves the profile from its KV copy").toBe(true);
    const before = (await env.d1Calls("b")).length;
    for (let round = 0; round < 5; round++) {
      const answers = {
        "GET /sessions/current": await b.getCurrentSession(s.id),
        "GET /prefs": await b.getPrefs(s.id),
        "GET /config": await b.getConfig(),
        "GET /users/:id": await b.getUser(user.id),
      };
      for (const [route, r] of Object.entries(answers)) {
        expect(r.status, r.text).toBe(200);
        expect(primaryQueries(r.res), `round ${round}: ${route} ${r.res.headers.get("Server-Timing")}`).toBe(0);
      }
    }
    // What b asked the primary meanwhile, if anything, is its background read of the
    // revocation feed: never a statement of a request's own.
    const after = (await env.d1Calls("b")).slice(before).filter((c) => c.target === "primary");
    for (const c of after) expect(c.sql).toMatch(/FROM revocations/);
  });
});
