// Across isolates and locations: every cross-isolate and cross-location bound the README
// states, asserted in workerd with the built Worker running as separate isolates (each its
// own module state) over one D1, behind KV stand-ins that lag between locations, keep the
// last writer, carry TTLs and metadata, and refuse a second write to a key within a second
// (locations.js, kv-network.js). Where KV's delay must really pass, the assertion is that
// every request after the documented bound behaves, never how long something took.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, eventually, roomInWindow, sleep } from "../helpers.js";
import { DELAY_MS, bootLocations, writesUnderASecondApart } from "./locations.js";

/** Sessions: an isolate trusts its last D1 check of a session for 10 s. */
const RECHECK_MS = 10_000;
/** Config: an isolate trusts its copy for 5 s. */
const CONFIG_CACHE_MS = 5_000;
/** KV's real propagation between locations, for the tests whose point is a bound below it. */
const KV_DELAY_MS = Math.max(DELAY_MS, 60_000);
/** Slack for the clocks of node and workerd and the request in flight at the bound. */
const SLACK_MS = 300;
/** A test that waits for KV's delay (once or twice) gets that much more time. */
const WAITS_FOR_DELAY = { timeout: 60_000 + 2 * DELAY_MS };

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const until = (t) => sleep(Math.max(0, t - Date.now()));
let seq = 0;
const uid = (tag) => `${tag}-${Date.now().toString(36)}-${++seq}`;

async function mint(at, userId = uid("loc")) {
  const r = await at.json("/sessions", { method: "POST", admin: true, body: { userId, email: `${userId}@example.com` } });
  expect(r.status, r.text).toBe(201);
  return { ...r.body, hash: sha256(r.body.sessionId) };
}

/** A session that exists only in D1 (as one minted elsewhere whose KV copy never came). */
async function sessionInD1(db, userId = uid("d1")) {
  const sessionId = randomBytes(32).toString("base64url");
  const now = Date.now();
  await db
    .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
    .bind(sha256(sessionId), userId, `${userId}@example.com`, now, now + 7 * 86_400_000)
    .run();
  return { sessionId, hash: sha256(sessionId), userId };
}

/** Copies location `from`'s KV entry for `key` into location `to`, as if it had propagated. */
async function propagated(env, key, from, to) {
  const { value, metadata } = await env.kvAt[from].getWithMetadata(key);
  expect(value, `${key} at ${from}`).not.toBeNull();
  await env.kvAt[to].put(key, value, { metadata, expirationTtl: 3600 });
}

describe("the KV stand-in: KV's behaviour across locations", () => {
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: 1500 });
  });
  afterAll(() => env?.dispose());

  it("a write is seen at once where it was made, 1.5 s later elsewhere, with its expiry and metadata", async () => {
    const [a, b] = [env.kv("a"), env.kv("b")];
    const expiration = Math.floor(Date.now() / 1000) + 61; // under 60 s left when it arrives
    await a.put("t:one", "v1", { expiration, metadata: { m: 1 } });
    const written = Date.now();
    expect(await a.get("t:one", { type: "text" })).toBe("v1");
    if (Date.now() - written < 1000) {
      expect(await b.get("t:one", { type: "text" })).toBeNull();
      expect((await b.list({ prefix: "t:" })).keys).toEqual([]);
    }
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
    expect(log.map((w) => [w.location, w.op, w.accepted])).toEqual([
      ["a", "put", true],
      ["b", "put", false],
      ["a", "delete", false],
    ]);
  });
});

describe("sessions: revocation reaches every location within 10 s, even while KV there holds the session for 60 s", () => {
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: { rateLimits: { default: 1000000 } } });
  });
  afterAll(() => env?.dispose());

  it("after a logout and a revoke-all through location a, location b refuses both sessions once 10 s have passed, every time", async () => {
    const { a, b } = env;
    const own = await mint(a);
    const other = await mint(a);
    for (const s of [own, other]) {
      await propagated(env, `session:${s.hash}`, "a", "b");
      const r = await b.json("/sessions/current", { session: s.sessionId });
      expect(r.status, r.text).toBe(200);
    }
    expect((await a.fetch("/sessions/current", { method: "DELETE", session: own.sessionId })).status).toBe(204);
    const all = await a.json(`/admin/users/${other.userId}/sessions`, { method: "DELETE", admin: true });
    expect(all.status, all.text).toBe(200);
    expect(all.body).toEqual({ revoked: 1 });
    const revoked = Date.now();
    for (const s of [own, other]) {
      expectError(expect, await a.json("/sessions/current", { session: s.sessionId }), 401, "unauthorized");
    }
    // Watch b until the bound has passed: whatever it answered before, after it: 401.
    const seen = [];
    while (Date.now() < revoked + RECHECK_MS + SLACK_MS + 1500) {
      const started = Date.now();
      const [r1, r2] = await Promise.all([
        b.fetch("/sessions/current", { session: own.sessionId }),
        b.fetch("/prefs", { session: other.sessionId }),
      ]);
      seen.push({ at: started - revoked, statuses: [r1.status, r2.status] });
      await sleep(250);
    }
    const late = seen.filter((s) => s.at >= RECHECK_MS + SLACK_MS);
    expect(late.length).toBeGreaterThan(0);
    for (const s of late) expect(s.statuses, `${s.at} ms after the revocation`).toEqual([401, 401]);
    // b refused them with their KV copies still there: the bound is the Worker's, not KV's.
    for (const s of [own, other]) expect(await env.kvAt.b.get(`session:${s.hash}`)).not.toBeNull();
  });

  it("read-repair cannot bring back a session revoked while its KV write-back was in flight", WAITS_FOR_DELAY, async () => {
    const { a, b } = env;
    await env.setDelay(DELAY_MS);
    let raced = false;
    for (let attempt = 0; attempt < 3 && !raced; attempt++) {
      const s = await sessionInD1(env.db);
      const key = `session:${s.hash}`;
      // b misses KV, reads D1 (valid), and its write-back is held in flight for 1.5 s...
      await env.setSlowPuts([{ location: "b", prefix: key, ms: 1500 }]);
      const reading = b.json("/sessions/current", { session: s.sessionId });
      await sleep(300);
      // ...while a revokes the session (D1, then its KV delete).
      expect((await a.fetch("/sessions/current", { method: "DELETE", session: s.sessionId })).status).toBe(204);
      const read = await reading;
      await env.setSlowPuts([]);
      const log = await env.writes(key);
      const deleted = log.find((w) => w.location === "a" && w.op === "delete" && w.accepted);
      const repaired = log.find((w) => w.location === "b" && w.op === "put" && w.accepted);
      raced = Boolean(deleted && repaired && repaired.at > deleted.at);
      if (!raced) continue; // b's D1 read came after the revocation: no race to test
      expectError(expect, read, 401, "unauthorized");
      await sleep(DELAY_MS + 1000 + SLACK_MS);
      for (const loc of ["a", "b"]) {
        expect(await env.kvAt[loc].get(key), `KV at ${loc}`).toBeNull();
        expectError(expect, await env[loc].json("/sessions/current", { session: s.sessionId }), 401, "unauthorized");
      }
    }
    expect(raced, "the write-back landed after the revocation's delete in one of three tries").toBe(true);
    await env.setDelay(KV_DELAY_MS);
  });
});

describe("preferences: read-your-writes across locations for a client that sends back Prefs-Version", () => {
  let env, session;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: { rateLimits: { default: 1000000 } } });
    const s = await mint(env.a);
    await propagated(env, `session:${s.hash}`, "a", "b");
    session = s.sessionId;
  });
  afterAll(() => env?.dispose());

  it("each PATCH through location a is read back through location b at once, every time", async () => {
    const { a, b } = env;
    const first = await b.json("/prefs", { session });
    expect(first.status, first.text).toBe(200);
    expect(first.res.headers.get("Prefs-Version")).toBe("0");
    for (let i = 0; i < 8; i++) {
      const change = { theme: i % 2 ? "light" : "dark", notifications: i % 3 === 0 };
      const wrote = await a.json("/prefs", { method: "PATCH", session, body: change });
      expect(wrote.status, wrote.text).toBe(200);
      const version = wrote.res.headers.get("Prefs-Version");
      expect(version).toMatch(/^\d+$/);
      if (i === 0) {
        // Without the version, b serves its own (older) KV copy: KV has not propagated.
        const plain = await b.json("/prefs", { session });
        expect(plain.body.theme).toBe("light");
      }
      const read = await b.json("/prefs", { session, headers: { "Prefs-Version": version } });
      expect(read.status, read.text).toBe(200);
      expect(read.body).toEqual(wrote.body);
      expect(Number(read.res.headers.get("Prefs-Version"))).toBeGreaterThanOrEqual(Number(version));
    }
  });

  it("a malformed Prefs-Version is 400 invalid_request naming it", async () => {
    for (const bad of ["x", "-1", "1.5", "9".repeat(16)]) {
      const r = await env.b.json("/prefs", { session, headers: { "Prefs-Version": bad } });
      expect(expectError(expect, r, 400, "invalid_request").error).toMatch(/^Prefs-Version/);
    }
  });
});

describe("users: another location serves a changed profile for at most 2 × cacheTtlSeconds after caching it", () => {
  const TTL_S = 10;
  let env;
  beforeAll(async () => {
    env = await bootLocations({ delayMs: KV_DELAY_MS, seedConfig: { cacheTtlSeconds: TTL_S, rateLimits: { default: 1000000 } } });
  });
  afterAll(() => env?.dispose());

  const envelope = (id, name, cachedAt) =>
    JSON.stringify({ data: { id, name, updatedAt: cachedAt }, cachedAt, ttl: TTL_S });

  it("copies of the old name at b, cached 0, 1.5, 2 and 2.5 ttl ago: served fresh, refreshed when stale, refetched from 2 ttl on", async () => {
    const { a, b } = env;
    const ages = { fresh: 0, stale: 1.5, old: 2, older: 2.5 };
    const now = Date.now();
    for (const [tag, age] of Object.entries(ages)) {
      const id = `swr-${tag}`;
      expect((await a.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name: "New" } })).status).toBe(200);
      // b still holds a copy of the old name: a's cache delete takes KV's full delay to get there.
      await env.kvAt.b.put(`user:${id}`, envelope(id, "Old", now - age * TTL_S * 1000), { expirationTtl: 3600 });
    }
    const get = async (tag) => {
      const r = await b.json(`/users/swr-${tag}`);
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
  let env;
  beforeAll(async () => {
    env = await bootLocations({
      isolates: [
        ["a", "here"],
        ["b", "here"],
        ["c", "there"],
      ],
      seedConfig: { rateLimits: { default: 1000000 } },
    });
  });
  afterAll(() => env?.dispose());


  async function putConfig(at, body) {
    const r = await at.json("/admin/config", { method: "PUT", admin: true, body });
    expect(r.status, r.text).toBe(200);
    return r.body;
  }

  it("config: the writing isolate sees a write at once, another isolate within 5 s, another location within 5 s plus KV's delay", WAITS_FOR_DELAY, async () => {
    const { a, b, c } = env;
    for (const at of [a, b, c]) expect((await at.json("/flags/across")).status).toBe(200);
    await putConfig(a, { featureFlags: { across: true }, rateLimits: { default: 1000000 } });
    const written = Date.now();
    expect((await a.json("/flags/across")).body.enabled).toBe(true);
    await until(written + CONFIG_CACHE_MS + SLACK_MS);
    for (let i = 0; i < 10; i++) expect((await b.json("/flags/across")).body.enabled).toBe(true);
    await until(written + CONFIG_CACHE_MS + env.delayMs + SLACK_MS);
    for (let i = 0; i < 10; i++) expect((await c.json("/flags/across")).body.enabled).toBe(true);
  });

  it("config: two admin writes through two isolates within a second both succeed, a second apart in KV, and KV ends at the newer", async () => {
    const { a, b } = env;
    const before = (await env.writes("config:app")).length;
    const [ra, rb] = await Promise.all([
      a.json("/admin/config", { method: "PATCH", admin: true, body: { featureFlags: { fromA: true } } }),
      b.json("/admin/config", { method: "PATCH", admin: true, body: { featureFlags: { fromB: true } } }),
    ]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    const versions = [ra, rb].map((r) => Number(JSON.parse(r.res.headers.get("ETag"))));
    expect(Math.abs(versions[0] - versions[1]), "two versions, one after the other").toBe(1);
    // KV's write rule held: whichever write KV refused (how many, and whose, depends on how
    // the two interleave) was written again a second later.
    const log = (await env.writes("config:app")).slice(before);
    expect(log.some((w) => w.accepted)).toBe(true);
    expect(writesUnderASecondApart(log)).toEqual([]);
    // And KV ends at the newer version, which holds both changes.
    const newest = Math.max(...versions);
    const stored = await eventually(async () => {
      const r = await env.kvAt.here.getWithMetadata("config:app");
      return r.metadata?.version === newest ? r : null;
    }, 10_000);
    expect(stored?.metadata, `KV holds version ${newest}`).toEqual({ version: newest });
    expect(JSON.parse(stored.value).featureFlags).toMatchObject({ fromA: true, fromB: true });
  });

  it("preferences without Prefs-Version: another isolate reads a write within 2 s, another location within 2 s plus KV's delay", WAITS_FOR_DELAY, async () => {
    const { a, b, c } = env;
    const s = await mint(a);
    await propagated(env, `session:${s.hash}`, "here", "there");
    const session = s.sessionId;
    // b caches the defaults in this location's KV, so a's refresh of that copy has to wait
    // out KV's write rule: the slow case.
    expect((await b.json("/prefs", { session })).body.theme).toBe("light");
    const wrote = await a.json("/prefs", { method: "PATCH", session, body: { theme: "dark" } });
    expect(wrote.status, wrote.text).toBe(200);
    const written = Date.now();
    await until(written + 2000);
    for (let i = 0; i < 5; i++) expect((await b.json("/prefs", { session })).body.theme).toBe("dark");
    await until(written + 2000 + env.delayMs);
    for (let i = 0; i < 5; i++) expect((await c.json("/prefs", { session })).body.theme).toBe("dark");
  });

  it("approximate limiter: two isolates at 20 requests/s against a limit of 60 admit 60 to 100, and never write a counter key twice in a second", async () => {
    const { a, b } = env;
    // Through both isolates, so both copies hold it at once.
    await putConfig(a, { rateLimits: { default: 1000000, config: 60 } });
    await putConfig(b, { rateLimits: { default: 1000000, config: 60 } });
    await roomInWindow(60, 10_000);
    const client = a.newClient();
    /** 90 requests, one at a time, at most 20 per second. */
    async function steady(at) {
      const statuses = [];
      for (let i = 0; i < 90; i++) {
        const started = Date.now();
        const r = await at.fetch("/config", { client });
        await r.arrayBuffer();
        statuses.push(r.status);
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
    expect(writes.filter((w) => !w.accepted), "writes KV refused").toEqual([]);
    expect(new Set(writes.map((w) => w.key)).size, "one counter key per isolate").toBe(2);
  });

  it("approximate limiter: a counter write slow on its way holds the next one until a second after it finished, so KV refuses none", async () => {
    const { a } = env;
    await putConfig(a, { rateLimits: { default: 1000000, config: 60 } });
    await roomInWindow(60, 10_000);
    const client = a.newClient();
    const prefix = `rl:config:${client}:`;
    async function get() {
      const r = await a.fetch("/config", { client });
      await r.arrayBuffer();
      expect(r.status).toBe(200);
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
    expect(writes.filter((w) => !w.accepted), "writes KV refused").toEqual([]);
    expect(writes.length, "the slow write and the one a second after it").toBeGreaterThanOrEqual(2);
    for (let i = 1; i < writes.length; i++) expect(writes[i].at - writes[i - 1].at).toBeGreaterThanOrEqual(1000);
  });

  it("strict limiter: a burst of 20 across two isolates against a limit of 5 admits exactly 5", async () => {
    const { a, b } = env;
    await putConfig(a, { rateLimits: { default: 1000000, flags: 5 }, strictRateLimits: ["flags"] });
    await putConfig(b, { rateLimits: { default: 1000000, flags: 5 }, strictRateLimits: ["flags"] });
    await roomInWindow(60, 5_000);
    const client = a.newClient();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).fetch(`/flags/f${i}`, { client })));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(5);
    expect(rs.filter((r) => r.status === 429)).toHaveLength(15);
  });
});
