// @ts-check
// Users: profiles in D1 read through the stale-while-revalidate KV cache `user:<id>`
// (GET /users/:id, POST /users/batch, PUT /admin/users/:id); docs/API.md, "Users". Cache
// ages are seeded (a KV copy {data, cachedAt, ttl} written with the age a test needs), never
// waited for.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, NO_WORK, eventually, expectError, timing } from "../helpers.js";
import { TestApp, spawnApp, uid } from "../app.js";

/** @typedef {import("../helpers.js").Answer} Answer */

const TTL = 300; // cacheTtlSeconds: long enough that a copy written during a test stays fresh

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({
    // A day-long rate-limit window: the approximate counter key does not roll over mid-test.
    seedConfig: { cacheTtlSeconds: TTL, rateLimits: { default: 1000000 }, rateLimitWindowSeconds: 86400 },
  });
});
afterAll(() => w?.dispose());

/** @param {string} id */
const row = (id) => w.userRow(id);
/** @param {string} id @returns {Promise<number>} */
const rowCount = async (id) =>
  (await w.db.prepare("SELECT COUNT(*) AS n FROM users WHERE id = ?").bind(id).first()).n;
/** The SWR copy `user:<id>`, parsed, or null. @param {string} id */
const envelope = (id) => w.kvJson(`user:${id}`);
/** @param {Answer} r */
const xcache = (r) => r.res.headers.get("X-Cache");

/**
 * Sets cacheTtlSeconds through the admin route; this also makes the isolate's config copy fresh.
 * @param {number} ttl
 */
async function setTtl(ttl) {
  const r = await w.patchConfig({ cacheTtlSeconds: ttl });
  expect(r.status, r.text).toBe(200);
  expect(r.body.cacheTtlSeconds).toBe(ttl);
}

/** @param {string} id @param {string} name */
async function putUser(id, name) {
  const r = await w.putUser(id, { name });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** @param {string} id @param {string} [client] */
const getUser = (id, client) => w.getUser(id, { client });

/** @param {string[]} ids @param {string} [client] */
const batch = (ids, client) => w.getUsers(ids, { client });

const NONE = NO_WORK;

describe("PUT /admin/users/:id", () => {
  it("creates a profile: 200 {id,name,updatedAt} and the D1 row", async () => {
    const id = uid();
    const before = Date.now();
    const r = await w.putUser(id, { name: "Ada Lovelace" });
    const after = Date.now();
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(Object.keys(r.body).sort()).toEqual(["id", "name", "updatedAt"]);
    expect(r.body.id).toBe(id);
    expect(r.body.name).toBe("Ada Lovelace");
    expect(Number.isInteger(r.body.updatedAt)).toBe(true);
    expect(r.body.updatedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(r.body.updatedAt).toBeLessThanOrEqual(after + 1000);
    expect(await row(id)).toEqual({ id, name: "Ada Lovelace", updated_at: r.body.updatedAt });
    expect(() => timing(r.res)).not.toThrow();
  });

  it("updates an existing profile in place (one row, new name, newer updatedAt)", async () => {
    const id = uid();
    const first = await putUser(id, "First");
    // The first write, aged by a minute: the second must stamp a later time.
    await w.db.prepare("UPDATE users SET updated_at = ? WHERE id = ?").bind(first.updatedAt - 60_000, id).run();
    const second = await putUser(id, "Second");
    expect(second).toEqual({ id, name: "Second", updatedAt: second.updatedAt });
    expect(second.updatedAt).toBeGreaterThan(first.updatedAt - 60_000);
    expect(second.updatedAt).toBeGreaterThanOrEqual(first.updatedAt);
    expect(await rowCount(id)).toBe(1);
    expect(await row(id)).toEqual({ id, name: "Second", updated_at: second.updatedAt });
  });

  it("accepts the boundaries: a 64-char id and a 100-char (non-ASCII) name", async () => {
    const id = "i".repeat(64);
    const name = "é".repeat(100);
    const u = await putUser(id, name);
    expect(u.id).toBe(id);
    expect(u.name).toBe(name);
    expect((await row(id)).name).toBe(name);
    const g = await getUser(id);
    expect(g.status, g.text).toBe(200);
    expect(g.body).toEqual(u);
  });

  it("without auth or with a wrong token: 401 and nothing written", async () => {
    const id = uid();
    expectError(expect, await w.putUser(id, { name: "X" }, { admin: false }), 401, "unauthorized");
    expectError(expect, await w.putUser(id, { name: "X" }, { admin: "wrong-token" }), 401, "unauthorized");
    expectError(expect, await w.putUser(id, { name: "X" }, { admin: ADMIN_TOKEN + "x" }), 401, "unauthorized");
    const noScheme = { headers: { Authorization: ADMIN_TOKEN } }; // no "Bearer "
    expectError(expect, await w.putUser(id, { name: "X" }, noScheme), 401, "unauthorized");
    expect(await rowCount(id)).toBe(0);

    // An existing profile is not touched either.
    const existing = uid();
    const u = await putUser(existing, "Keep");
    expectError(expect, await w.putUser(existing, { name: "Changed" }, { admin: "nope" }), 401, "unauthorized");
    expect(await row(existing)).toEqual({ id: existing, name: "Keep", updated_at: u.updatedAt });
  });

  it("bad bodies: 400 invalid_request / invalid_json / 413, and nothing written to D1", async () => {
    const fresh = uid();
    const existing = uid();
    const u = await putUser(existing, "Original");
    /** @type {[object | string, number, string][]} */
    const bad = [
      [{ name: "" }, 400, "invalid_request"],
      [{ name: "x".repeat(101) }, 400, "invalid_request"],
      [{ name: 42 }, 400, "invalid_request"],
      [{ name: null }, 400, "invalid_request"],
      [{ name: ["a"] }, 400, "invalid_request"],
      [{}, 400, "invalid_request"],
      [{ name: "Ok", extra: 1 }, 400, "invalid_request"],
      [{ nam: "Ok" }, 400, "invalid_request"],
      ['["Ok"]', 400, "invalid_request"],
      ['"Ok"', 400, "invalid_request"],
      ['{"name":', 400, "invalid_json"],
      ["{'name':'Ok'}", 400, "invalid_json"],
      ["", 400, "invalid_json"],
      [`{"name":"Ok"${" ".repeat(70 * 1024)}}`, 413, "payload_too_large"],
    ];
    for (const id of [fresh, existing]) {
      for (const [body, status, code] of bad) {
        const r = await w.putUser(id, body, { headers: { "Content-Type": "application/json" } });
        const e = expectError(expect, r, status, code);
        if (code === "invalid_request" && typeof body === "object" && Object.keys(body).length > 0) {
          // The message names the field.
          expect(e.error).toMatch(/name|nam|extra|body/);
        }
      }
    }
    expect(await rowCount(fresh)).toBe(0);
    expect(await row(existing)).toEqual({ id: existing, name: "Original", updated_at: u.updatedAt });
  });

  it("a bad id: 400 invalid_request and nothing written", async () => {
    for (const id of ["x".repeat(65), "a.b", "a%20b", "a:b", "a@b"]) {
      const r = await w.putUser(id, { name: "N" });
      expectError(expect, r, 400, "invalid_request");
    }
    const { n } = await w.db
      .prepare("SELECT COUNT(*) AS n FROM users WHERE id IN (?, ?, ?, ?, ?, ?)")
      .bind("x".repeat(65), "a.b", "a%20b", "a b", "a:b", "a@b")
      .first();
    expect(n).toBe(0);
  });

  it("another method: 405 with Allow: PUT, DELETE", async () => {
    for (const method of ["GET", "POST", "PATCH"]) {
      const r = await w.json(`/admin/users/${uid()}`, { method, admin: true }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("PUT, DELETE");
    }
  });
});

describe("GET /users/:id through the SWR cache", () => {
  it("MISS then HIT; the KV envelope {data,cachedAt,ttl} expires >= 60 s ahead; a HIT is one KV read and no D1 query", async () => {
    const id = uid();
    const u = await putUser(id, "Grace Hopper");
    expect(await w.kv.get(`user:${id}`)).toBeNull();

    await setTtl(TTL); // the isolate's config copy is fresh for the next 5 s
    const client = w.newClient();
    const before = Date.now();
    const miss = await getUser(id, client); // also the client's first rate-limit counter read
    const after = Date.now();
    expect(miss.status, miss.text).toBe(200);
    expect(miss.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(xcache(miss)).toBe("MISS");
    expect(miss.body).toEqual(u);
    expect(timing(miss.res).queries).toBeGreaterThanOrEqual(1);

    const hit = await getUser(id, client);
    expect(hit.status, hit.text).toBe(200);
    expect(xcache(hit)).toBe("HIT");
    expect(hit.body).toEqual(u);
    expect(timing(hit.res)).toEqual({ ...NONE, reads: 1 });

    const env = await envelope(id);
    expect(Object.keys(env).sort()).toEqual(["cachedAt", "data", "ttl"]);
    expect(env.data).toEqual(u);
    expect(env.ttl).toBe(TTL);
    expect(Number.isInteger(env.cachedAt)).toBe(true);
    expect(env.cachedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(env.cachedAt).toBeLessThanOrEqual(after + 1000);

    // KV expiry: max(60, 2*ttl) seconds after the write, which happened between `before` and now.
    const { keys } = await w.kv.list({ prefix: `user:${id}` });
    expect(keys.map((/** @type {{ name: string }} */ k) => k.name)).toEqual([`user:${id}`]);
    expect(keys[0].expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 2 * TTL - 1);
    expect(keys[0].expiration).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2 * TTL + 1);
  });

  for (const [ttl, expiry] of [
    [1, 60],
    [45, 90],
  ]) {
    it(`KV expiry is max(60, 2*ttl): ${expiry} s for cacheTtlSeconds ${ttl}`, async () => {
      const id = uid();
      await putUser(id, "Expiry");
      await setTtl(ttl);
      try {
        const before = Date.now();
        const r = await getUser(id);
        expect(xcache(r)).toBe("MISS");
        expect((await envelope(id)).ttl).toBe(ttl);
        const { keys } = await w.kv.list({ prefix: `user:${id}` });
        expect(keys[0].expiration).toBeGreaterThanOrEqual(Math.floor(before / 1000) + expiry - 1);
        expect(keys[0].expiration).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + expiry + 1);
      } finally {
        await setTtl(TTL);
      }
    });
  }

  it("after ttl: STALE with the old data (no D1 query), then a HIT carrying what D1 now holds", async () => {
    const id = uid();
    const current = await putUser(id, "New Name");
    const old = { id, name: "Old Name", updatedAt: current.updatedAt - 3600_000 };
    // A copy aged between ttl and 2*ttl.
    const cachedAt = Date.now() - (TTL + 30) * 1000;
    await w.kv.put(`user:${id}`, JSON.stringify({ data: old, cachedAt, ttl: TTL }));

    const stale = await getUser(id);
    expect(stale.status, stale.text).toBe(200);
    expect(xcache(stale)).toBe("STALE");
    expect(stale.body).toEqual(old);
    expect(timing(stale.res).queries).toBe(0); // the refresh is deferred (waitUntil)

    // Waits for the deferred refresh to land (an event, not an age).
    /** @type {string[]} */
    const seen = [];
    const hit = await eventually(async () => {
      const r = await getUser(id);
      seen.push(`${r.status} ${xcache(r)} ${r.body?.name}`);
      return xcache(r) === "HIT" && r.body.name === "New Name" ? r : null;
    }, 5000);
    expect(hit, seen.join(", ")).toBeTruthy();
    expect(hit?.body).toEqual(current);
    // The new data came from the background refresh, not from a later MISS.
    expect(seen.every((s) => / (HIT|STALE) /.test(s)), seen.join(", ")).toBe(true);
    const env = await envelope(id);
    expect(env.data).toEqual(hit?.body);
    expect(env.cachedAt).toBeGreaterThan(cachedAt);
  });

  it("after 2*ttl without a refresh: MISS, read from D1 again", async () => {
    const id = uid();
    await putUser(id, "After");
    const cachedAt = Date.now() - (2 * TTL + 30) * 1000;
    await w.kv.put(`user:${id}`, JSON.stringify({ data: { id, name: "Before", updatedAt: 1 }, cachedAt, ttl: TTL }));

    const again = await getUser(id);
    expect(again.status, again.text).toBe(200);
    expect(xcache(again)).toBe("MISS");
    expect(again.body.name).toBe("After");
    expect(timing(again.res).queries).toBeGreaterThanOrEqual(1);
    const env = await envelope(id);
    expect(env.data.name).toBe("After");
    expect(env.cachedAt).toBeGreaterThanOrEqual(cachedAt + 2 * TTL * 1000);
  });

  it("PUT /admin/users/:id deletes user:<id>: the next GET is a MISS with the new name", async () => {
    const id = uid();
    await putUser(id, "Alpha");
    await setTtl(TTL);
    expect(xcache(await getUser(id))).toBe("MISS");
    const hit = await getUser(id);
    expect(xcache(hit)).toBe("HIT");
    expect(hit.body.name).toBe("Alpha");
    expect(await w.kv.get(`user:${id}`)).not.toBeNull();

    const updated = await putUser(id, "Beta");
    expect(await w.kv.get(`user:${id}`)).toBeNull();

    const miss = await getUser(id);
    expect(miss.status, miss.text).toBe(200);
    expect(xcache(miss)).toBe("MISS");
    expect(miss.body).toEqual(updated);
    expect(miss.body.name).toBe("Beta");
    const hit2 = await getUser(id);
    expect(xcache(hit2)).toBe("HIT");
    expect(hit2.body).toEqual(updated);
  });

  it("an unknown id: 404 not_found", async () => {
    const r = await getUser(uid("nobody"));
    expectError(expect, r, 404, "not_found");
    expect(() => timing(r.res)).not.toThrow();
    // Still 404 on a second request (nothing invented from a cache).
    expectError(expect, await getUser("never-created-id"), 404, "not_found");
    expectError(expect, await getUser("never-created-id"), 404, "not_found");
  });

  it("an invalid id: 400 invalid_request", async () => {
    for (const id of ["x".repeat(65), "a.b", "a%20b", "a:b", "a@b", "%C3%A9"]) {
      const r = await getUser(id);
      expectError(expect, r, 400, "invalid_request");
    }
  });

  it("another method: 405 with Allow: GET", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await w.json(`/users/${uid()}`, { method, body: method === "DELETE" ? undefined : { name: "x" } }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("GET");
    }
  });

  // Stale-if-error (D1 failing while a stale copy exists) needs a broken D1: it is covered by
  // the fault-injection tests, not here.
});

describe("POST /users/batch", () => {
  // A longer ttl here so that entries cached in one step are still fresh a few steps later.
  const BATCH_TTL = 30;
  beforeAll(() => setTtl(BATCH_TTL));
  afterAll(() => setTtl(TTL));

  it("known, unknown and cached ids: {users:{id: user|null}}, one KV read and one D1 query; then all cached: no D1 query", async () => {
    const [a, b, c] = [uid("a"), uid("b"), uid("c")];
    const ua = await putUser(a, "User A");
    const ub = await putUser(b, "User B");
    const nobody = uid("zz");

    await setTtl(BATCH_TTL);
    const client = w.newClient();
    const warm = await getUser(a, client); // caches a; the client's first rate-limit read
    expect(xcache(warm)).toBe("MISS");

    const r1 = await batch([a, b, nobody], client);
    expect(r1.status, r1.text).toBe(200);
    expect(r1.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r1.body).toEqual({ users: { [a]: ua, [b]: ub, [nobody]: null } });
    const t1 = timing(r1.res);
    expect(t1.reads).toBe(1);
    expect(t1.queries).toBe(1);

    // The miss found in D1 is stored in KV (in the background).
    const envB = await eventually(() => envelope(b), 3000);
    expect(envB).toBeTruthy();
    expect(envB.data).toEqual(ub);
    expect(envB.ttl).toBe(BATCH_TTL);

    await setTtl(BATCH_TTL);
    expect((await getUser(c, client)).status).toBe(404); // warm-up in the same group/client
    const r2 = await batch([b, a], client);
    expect(r2.status, r2.text).toBe(200);
    expect(r2.body).toEqual({ users: { [a]: ua, [b]: ub } });
    expect(timing(r2.res)).toEqual({ ...NONE, reads: 1 });
  });

  it("serves what D1 holds after a PUT (the invalidated entry is a miss)", async () => {
    const a = uid("a");
    await putUser(a, "One");
    expect((await batch([a])).body.users[a].name).toBe("One");
    await eventually(() => envelope(a), 3000);
    const u = await putUser(a, "Two");
    expect(await w.kv.get(`user:${a}`)).toBeNull();
    const r = await batch([a]);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ users: { [a]: u } });
  });

  it("100 ids (the maximum) are one KV read and one D1 query", async () => {
    const known = uid("k");
    const uk = await putUser(known, "Known");
    const ids = [known, ...Array.from({ length: 99 }, (_, i) => `${uid("m")}_${i}`)];
    await setTtl(BATCH_TTL);
    const client = w.newClient();
    expect((await getUser(uid("warm"), client)).status).toBe(404); // the client's first rate-limit read
    const r = await batch(ids, client);
    expect(r.status, r.text).toBe(200);
    expect(Object.keys(r.body.users).sort()).toEqual([...ids].sort());
    expect(r.body.users[known]).toEqual(uk);
    expect(ids.slice(1).every((id) => r.body.users[id] === null)).toBe(true);
    const t = timing(r.res);
    expect(t.reads).toBe(1);
    expect(t.queries).toBe(1);
  });

  it("bad input: 400 invalid_request / invalid_json", async () => {
    const many = Array.from({ length: 101 }, (_, i) => `id${i}`);
    /** @type {[object | string, string][]} */
    const cases = [
      [{ ids: many }, "invalid_request"],
      [{ ids: [] }, "invalid_request"],
      [{ ids: ["a", "b", "a"] }, "invalid_request"],
      [{ ids: ["a", "a.b"] }, "invalid_request"],
      [{ ids: ["x".repeat(65)] }, "invalid_request"],
      [{ ids: ["a b"] }, "invalid_request"],
      [{ ids: [""] }, "invalid_request"],
      [{ ids: ["a", 1] }, "invalid_request"],
      [{ ids: ["a", null] }, "invalid_request"],
      [{ ids: "a" }, "invalid_request"],
      [{ ids: { a: 1 } }, "invalid_request"],
      [{ ids: null }, "invalid_request"],
      [{}, "invalid_request"],
      [{ ids: ["a"], extra: true }, "invalid_request"],
      ['["a"]', "invalid_request"],
      ['{"ids": ["a"]', "invalid_json"],
      ["{ids: ['a']}", "invalid_json"],
      ["", "invalid_json"],
    ];
    for (const [body, code] of cases) {
      const r = await w.getUsers(body, { headers: { "Content-Type": "application/json" } });
      const e = expectError(expect, r, 400, code);
      if (code === "invalid_request" && typeof body === "object" && Object.keys(body).length > 0) {
        expect(e.error).toMatch(/ids|extra/);
      }
    }
  });

  it("a body over 64 KiB: 413 payload_too_large", async () => {
    // Valid JSON with valid content, only too large (whitespace padding).
    const big = `{"ids":["a"]${" ".repeat(65 * 1024)}}`;
    const r = await w.getUsers(big, { headers: { "Content-Type": "application/json" } });
    expectError(expect, r, 413, "payload_too_large");

    // The same without Content-Length (a streamed body).
    const bytes = new TextEncoder().encode(big);
    // A new stream for each attempt: the body is answered unread past 64 KiB, and the
    // transport may reset the connection while the client still writes (see `resending`).
    const stream = () =>
      new ReadableStream({
        start(ctl) {
          for (let i = 0; i < bytes.length; i += 8192) ctl.enqueue(bytes.slice(i, i + 8192));
          ctl.close();
        },
      });
    const streamed = await w.getUsers(stream, { client: w.newClient(), headers: { "Content-Type": "application/json" } });
    expectError(expect, streamed, 413, "payload_too_large");
  });

  it("another method: 405 with Allow: POST", async () => {
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const r = await w.json("/users/batch", { method }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("POST");
    }
  });
});
