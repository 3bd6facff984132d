// Users: profiles in D1 read through the stale-while-revalidate KV cache `user:<id>`
// (GET /users/:id, POST /users/batch, PUT /admin/users/:id). Contract: API.md, section Users.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, boot, eventually, expectError, sleep, timing } from "./helpers.js";

const TTL = 1; // cacheTtlSeconds for the cache-state tests

let w;
beforeAll(async () => {
  w = await boot({
    // A day-long rate-limit window: the approximate counter key does not roll over mid-test.
    seedConfig: { cacheTtlSeconds: TTL, rateLimits: { default: 1000000 }, rateLimitWindowSeconds: 86400 },
  });
});
afterAll(() => w?.dispose());

let seq = 0;
/** A fresh, valid profile id per call. */
const uid = (tag = "u") => `${tag}_${Date.now().toString(36)}_${++seq}`;

const row = (id) => w.db.prepare("SELECT id, name, updated_at FROM users WHERE id = ?").bind(id).first();
const rowCount = async (id) =>
  (await w.db.prepare("SELECT COUNT(*) AS n FROM users WHERE id = ?").bind(id).first()).n;
const envelope = async (id) => {
  const text = await w.kv.get(`user:${id}`);
  return text === null ? null : JSON.parse(text);
};
const xcache = (r) => r.res.headers.get("X-Cache");

/** Sets cacheTtlSeconds through the admin route; this also makes the isolate's config copy fresh. */
async function setTtl(ttl) {
  const r = await w.json("/admin/config", { method: "PATCH", admin: true, body: { cacheTtlSeconds: ttl } });
  expect(r.status, r.text).toBe(200);
  expect(r.body.cacheTtlSeconds).toBe(ttl);
}

async function putUser(id, name) {
  const r = await w.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name } });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

const getUser = (id, client) => w.json(`/users/${id}`, { client });

const batch = (ids, client) => w.json("/users/batch", { method: "POST", body: { ids }, client });

const NONE = { reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 };

describe("PUT /admin/users/:id", () => {
  it("creates a profile: 200 {id,name,updatedAt} and the D1 row", async () => {
    const id = uid();
    const before = Date.now();
    const r = await w.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name: "Ada Lovelace" } });
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
    await sleep(5);
    const second = await putUser(id, "Second");
    expect(second).toEqual({ id, name: "Second", updatedAt: second.updatedAt });
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
    expectError(expect, await w.json(`/admin/users/${id}`, { method: "PUT", body: { name: "X" } }), 401, "unauthorized");
    expectError(
      expect,
      await w.json(`/admin/users/${id}`, { method: "PUT", admin: "wrong-token", body: { name: "X" } }),
      401,
      "unauthorized",
    );
    expectError(
      expect,
      await w.json(`/admin/users/${id}`, { method: "PUT", admin: ADMIN_TOKEN + "x", body: { name: "X" } }),
      401,
      "unauthorized",
    );
    expectError(
      expect,
      await w.json(`/admin/users/${id}`, {
        method: "PUT",
        headers: { Authorization: ADMIN_TOKEN }, // no "Bearer "
        body: { name: "X" },
      }),
      401,
      "unauthorized",
    );
    expect(await rowCount(id)).toBe(0);

    // An existing profile is not touched either.
    const existing = uid();
    const u = await putUser(existing, "Keep");
    expectError(
      expect,
      await w.json(`/admin/users/${existing}`, { method: "PUT", admin: "nope", body: { name: "Changed" } }),
      401,
      "unauthorized",
    );
    expect(await row(existing)).toEqual({ id: existing, name: "Keep", updated_at: u.updatedAt });
  });

  it("bad bodies: 400 invalid_request / invalid_json / 413, and nothing written to D1", async () => {
    const fresh = uid();
    const existing = uid();
    const u = await putUser(existing, "Original");
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
        const r = await w.json(`/admin/users/${id}`, {
          method: "PUT",
          admin: true,
          body,
          headers: { "Content-Type": "application/json" },
        });
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
      const r = await w.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name: "N" } });
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
      const r = await w.json(`/admin/users/${uid()}`, { method, admin: true });
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

    // KV expiry: max(60, 2*ttl) = 60 s.
    const { keys } = await w.kv.list({ prefix: `user:${id}` });
    expect(keys.map((k) => k.name)).toEqual([`user:${id}`]);
    const ahead = keys[0].expiration - Date.now() / 1000;
    expect(ahead).toBeGreaterThanOrEqual(58);
    expect(ahead).toBeLessThanOrEqual(62);
  });

  it("KV expiry follows 2*ttl when that is over 60 s", async () => {
    const id = uid();
    await putUser(id, "Long");
    await setTtl(45);
    try {
      const r = await getUser(id);
      expect(xcache(r)).toBe("MISS");
      expect((await envelope(id)).ttl).toBe(45);
      const { keys } = await w.kv.list({ prefix: `user:${id}` });
      const ahead = keys[0].expiration - Date.now() / 1000;
      expect(ahead).toBeGreaterThanOrEqual(88);
      expect(ahead).toBeLessThanOrEqual(92);
    } finally {
      await setTtl(TTL);
    }
  });

  it("after ttl: STALE with the old data (no D1 query), then a HIT carrying what D1 now holds", async () => {
    const id = uid();
    await putUser(id, "Old Name");
    await setTtl(TTL);
    const miss = await getUser(id);
    expect(xcache(miss)).toBe("MISS");
    const { cachedAt } = await envelope(id);

    await sleep(cachedAt + TTL * 1000 + 100 - Date.now());
    await w.db.prepare("UPDATE users SET name = ?, updated_at = ? WHERE id = ?").bind("New Name", cachedAt + 1, id).run();

    const stale = await getUser(id);
    expect(stale.status, stale.text).toBe(200);
    expect(xcache(stale)).toBe("STALE");
    expect(stale.body.name).toBe("Old Name");
    expect(stale.body).toEqual(miss.body);
    expect(timing(stale.res).queries).toBe(0); // the refresh is deferred (waitUntil)

    const seen = [];
    const hit = await eventually(async () => {
      const r = await getUser(id);
      seen.push(`${r.status} ${xcache(r)} ${r.body?.name}`);
      return xcache(r) === "HIT" && r.body.name === "New Name" ? r : null;
    }, 5000);
    expect(hit, seen.join(", ")).toBeTruthy();
    expect(hit.body).toEqual({ id, name: "New Name", updatedAt: cachedAt + 1 });
    // The new data came from the background refresh, not from a later MISS.
    expect(seen.every((s) => / (HIT|STALE) /.test(s)), seen.join(", ")).toBe(true);
    const env = await envelope(id);
    expect(env.data).toEqual(hit.body);
    expect(env.cachedAt).toBeGreaterThan(cachedAt);
  });

  it("after 2*ttl without a refresh: MISS, read from D1 again", async () => {
    const id = uid();
    await putUser(id, "Before");
    await setTtl(TTL);
    const miss = await getUser(id);
    expect(xcache(miss)).toBe("MISS");
    const { cachedAt } = await envelope(id);
    await w.db.prepare("UPDATE users SET name = ? WHERE id = ?").bind("After", id).run();

    await sleep(cachedAt + 2 * TTL * 1000 + 100 - Date.now());
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
      const r = await w.json(`/users/${uid()}`, { method, body: method === "DELETE" ? undefined : { name: "x" } });
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
      const r = await w.json("/users/batch", {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json" },
      });
      const e = expectError(expect, r, 400, code);
      if (code === "invalid_request" && typeof body === "object" && Object.keys(body).length > 0) {
        expect(e.error).toMatch(/ids|extra/);
      }
    }
  });

  it("a body over 64 KiB: 413 payload_too_large", async () => {
    // Valid JSON with valid content, only too large (whitespace padding).
    const big = `{"ids":["a"]${" ".repeat(65 * 1024)}}`;
    const r = await w.json("/users/batch", {
      method: "POST",
      body: big,
      headers: { "Content-Type": "application/json" },
    });
    expectError(expect, r, 413, "payload_too_large");

    // The same without Content-Length (a streamed body).
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream({
      start(ctl) {
        for (let i = 0; i < bytes.length; i += 8192) ctl.enqueue(bytes.slice(i, i + 8192));
        ctl.close();
      },
    });
    const res = await w.mf.dispatchFetch("http://127.0.0.1/users/batch", {
      method: "POST",
      body: stream,
      duplex: "half",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": w.newClient() },
    });
    const text = await res.text();
    expectError(expect, { res, status: res.status, text, body: JSON.parse(text) }, 413, "payload_too_large");
  });

  it("another method: 405 with Allow: POST", async () => {
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const r = await w.json("/users/batch", { method });
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("POST");
    }
  });
});
