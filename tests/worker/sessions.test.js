// @ts-check
// Sessions: KV is the read path, D1 the authority, only hashes are stored, and
// revocation takes effect at once. Black-box against the built Worker in workerd.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, expectError, timing } from "../helpers.js";
import { HIGH, TestApp, sha256, spawnApp, uid, unknownSessionId } from "../app.js";

/** @typedef {import("../helpers.js").Answer} Answer */
/** @typedef {import("../app.js").CallOptions} CallOptions */

const WEEK_S = 7 * 24 * 60 * 60;
const WEEK_MS = WEEK_S * 1000;

/** @type {TestApp} */
let w;
beforeAll(async () => {
  // Not a rate-limit test: a limit high enough never to get in the way.
  w = await spawnApp({ seedConfig: HIGH });
});
afterAll(() => w?.dispose());

/**
 * The KV listing entry ({name, expiration, metadata}) of a session hash, or undefined.
 * @param {string} hash
 */
const kvEntry = (hash) => w.kvEntry(`session:${hash}`);

/**
 * How many session rows match `where`.
 * @param {string} [where] @param {...unknown} args
 * @returns {Promise<number>}
 */
async function d1Count(where = "1=1", ...args) {
  const r = await w.db.prepare(`SELECT COUNT(*) AS n FROM sessions WHERE ${where}`).bind(...args).first();
  return r.n;
}

/**
 * Every KV key under `prefix`, page by page.
 * @param {string} [prefix]
 * @returns {Promise<{ name: string }[]>}
 */
async function kvKeys(prefix) {
  const keys = [];
  let cursor;
  do {
    /** @type {{ keys: { name: string }[], list_complete: boolean, cursor?: string }} */
    const l = await w.kv.list({ prefix, cursor });
    keys.push(...l.keys);
    cursor = l.list_complete ? undefined : l.cursor;
  } while (cursor);
  return keys;
}

/** Every KV key, metadata and value, as one string. */
async function kvDump() {
  const parts = [];
  for (const k of await kvKeys()) parts.push(JSON.stringify(k), (await w.kv.get(k.name)) ?? "");
  return parts.join("\n");
}

/** Every D1 row of every table, as one string. */
async function d1Dump() {
  const tables = await w.db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
    .all();
  const parts = [];
  for (const { name } of tables.results) {
    const rows = await w.db.prepare(`SELECT * FROM "${name}"`).all();
    parts.push(JSON.stringify(rows.results));
  }
  return parts.join("\n");
}

/**
 * `Set-Cookie` split into its name=value pair and its attributes (lower-cased names).
 * @param {string | null} header
 */
function parseCookie(header) {
  expect(header).toBeTruthy();
  const [pair, ...attrs] = String(header).split(";").map((s) => s.trim());
  const eq = pair.indexOf("=");
  /** @type {Record<string, string | true>} */
  const map = {};
  for (const a of attrs) {
    const i = a.indexOf("=");
    if (i < 0) map[a.toLowerCase()] = true;
    else map[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs: map };
}

/**
 * All headers of a response, as one string.
 * @param {Response} res
 */
const headerDump = (res) => [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");

/**
 * GET /sessions/current with whatever credentials `opts` carries, or none.
 * @param {CallOptions} [opts]
 */
const current = (opts) => w.getCurrentSession(null, opts);
/**
 * The session cookie, as a browser sends it.
 * @param {string} id
 */
const cookie = (id) => ({ headers: { Cookie: `__Host-session=${id}` } });

/**
 * Walks GET /admin/sessions page by page; returns the pages.
 * @param {{ userId?: string, limit?: string }} query
 */
async function allPages(query) {
  /** @type {Answer[]} */
  const pages = [];
  let cursor = null;
  for (let i = 0; i < 500; i++) {
    const r = await w.listSessions(cursor ? { ...query, cursor } : query);
    expect(r.status, r.text).toBe(200);
    pages.push(r);
    if (r.body.listComplete) return pages;
    cursor = r.body.cursor;
    expect(typeof cursor).toBe("string");
    expect(cursor.length).toBeGreaterThan(0);
  }
  throw new Error("listing never completed");
}

describe("POST /sessions", () => {
  it("mints a session: 201 with id, user, times, a session cookie and no-store", async () => {
    const userId = uid("mint");
    const before = Date.now();
    const r = await w.createSession({ userId, email: "mint@example.com" });
    const after = Date.now();
    expect(r.status, r.text).toBe(201);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(Object.keys(r.body).sort()).toEqual(["createdAt", "email", "expiresAt", "idleExpiresAt", "sessionId", "userId"]);
    const { sessionId, createdAt, expiresAt } = r.body;
    expect(r.body.userId).toBe(userId);
    expect(r.body.email).toBe("mint@example.com");
    expect(typeof sessionId).toBe("string");
    expect(sessionId.length).toBeGreaterThanOrEqual(43); // ≥ 256 bits in base64url; ≥ 128 required
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Number.isInteger(createdAt)).toBe(true);
    // Milliseconds, not seconds: stamped while the request was under way (a second of slack
    // for the clocks of node and workerd).
    expect(createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(createdAt).toBeLessThanOrEqual(after + 1000);
    expect(expiresAt).toBe(createdAt + WEEK_MS);

    const c = parseCookie(r.res.headers.get("Set-Cookie"));
    expect(c.name).toBe("__Host-session");
    expect(c.value).toBe(sessionId);
    expect(c.attrs.path).toBe("/");
    expect(c.attrs.domain, "a __Host- cookie has no Domain").toBeUndefined();
    expect(c.attrs.httponly).toBe(true);
    expect(c.attrs.secure).toBe(true);
    expect(String(c.attrs.samesite).toLowerCase()).toBe("lax");
    expect(c.attrs["max-age"]).toBe(String(WEEK_S));
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);
  });

  it("two sessions never share an id", async () => {
    const userId = uid("twice");
    const a = await w.mintSession({ userId });
    const b = await w.mintSession({ userId });
    expect(a.id).not.toBe(b.id);
  });

  it("stores only the SHA-256 of the id: KV key, TTL, metadata and D1 row", async () => {
    const userId = uid("store");
    const s = await w.mintSession({ userId, email: "store@example.com" });
    const view = { userId, email: "store@example.com", createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt };

    const entry = await kvEntry(s.hash);
    expect(entry, "KV key session:<sha256 hex of id>").toBeTruthy();
    expect(entry.metadata).toEqual(view);
    // expirationTtl = the time to the idle deadline (24 h by default), never past the
    // absolute deadline (7 days).
    expect(typeof entry.expiration).toBe("number");
    expect(Math.abs(entry.expiration - s.idleExpiresAt / 1000)).toBeLessThan(60);
    expect(Math.abs(entry.expiration - (s.createdAt / 1000 + 86400))).toBeLessThan(120);
    expect(entry.expiration).toBeLessThanOrEqual(s.expiresAt / 1000);
    const value = /** @type {string} */ (await w.kv.get(`session:${s.hash}`));
    expect(value).not.toContain(s.id);
    expect(JSON.parse(value)).toMatchObject(view);
    // No KV key is named after the id itself.
    expect((await w.kv.list({ prefix: `session:${s.id}` })).keys).toEqual([]);

    const row = await w.sessionRow(s.hash);
    expect(row).toMatchObject({
      id_hash: s.hash,
      user_id: userId,
      email: "store@example.com",
      created_at: s.createdAt,
      expires_at: s.expiresAt,
      revoked_at: null,
    });
    expect(JSON.stringify(row)).not.toContain(s.id);
  });

  it("rejects bad input with 400/413 and stores nothing", async () => {
    const rows = await d1Count();
    const keys = (await kvKeys("session:")).length;
    /** @param {unknown} body @param {Record<string, string>} [headers] */
    const post = (body, headers) => w.createSession(body, { headers });
    const ok = "ok@example.com";

    expectError(expect, await post("{not json"), 400, "invalid_json");
    expectError(expect, await post("", { "Content-Type": "application/json" }), 400, "invalid_json");
    expectError(expect, await post('{"userId":"u1","email":"a@b.co"'), 400, "invalid_json");
    expectError(expect, await post([]), 400, "invalid_request");
    expectError(expect, await post("null"), 400, "invalid_request");
    expectError(expect, await post('"u1"'), 400, "invalid_request");

    const cases = [
      [{ email: ok }, "userId"], // missing userId
      [{ userId: uid("noemail") }, "email"], // missing email
      [{ userId: 42, email: ok }, "userId"],
      [{ userId: null, email: ok }, "userId"],
      [{ userId: ["u"], email: ok }, "userId"],
      [{ userId: "", email: ok }, "userId"],
      [{ userId: "u".repeat(129), email: ok }, "userId"],
      [{ userId: "bad id", email: ok }, "userId"],
      [{ userId: "bad/id", email: ok }, "userId"],
      [{ userId: "bäd", email: ok }, "userId"],
      [{ userId: uid("e"), email: 7 }, "email"],
      [{ userId: uid("e"), email: "not-an-email" }, "email"],
      [{ userId: uid("e"), email: "a@b" }, "email"],
      [{ userId: uid("e"), email: "@example.com" }, "email"],
      [{ userId: uid("e"), email: "a b@example.com" }, "email"],
      [{ userId: uid("e"), email: `${"a".repeat(64)}@${"b".repeat(186)}.com` }, "email"], // 255 bytes
      [{ userId: uid("unk"), email: ok, admin: true }, "admin"], // unknown field
    ];
    for (const [body, field] of /** @type {[object, string][]} */ (cases)) {
      const r = await post(body);
      const e = expectError(expect, r, 400, "invalid_request");
      expect(e.error, `${JSON.stringify(body).slice(0, 80)} → ${e.error}`).toContain(field);
    }

    // Over 64 KiB: 413, with and without a usable JSON shape.
    const big = JSON.stringify({ userId: "big", email: ok, pad: "x".repeat(70 * 1024) });
    expectError(expect, await post(big), 413, "payload_too_large");
    expectError(expect, await post("x".repeat(65 * 1024 + 1)), 413, "payload_too_large");
    // The same, streamed without Content-Length.
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    // A new stream for each attempt (see `resending` in helpers.js).
    const stream = () => {
      let sent = 0;
      return new ReadableStream({
        pull(ctrl) {
          if (sent++ < 6) ctrl.enqueue(chunk);
          else ctrl.close();
        },
      });
    };
    expectError(expect, await post(stream, { "Content-Type": "application/json" }), 413, "payload_too_large");

    expect(await d1Count()).toBe(rows);
    expect((await kvKeys("session:")).length).toBe(keys);
  });

  it("accepts the limits: a 128-char userId of every allowed character and a 254-byte email", async () => {
    const userId = ("aZ09_.:@-" + "x".repeat(128)).slice(0, 128);
    const email = `${"a".repeat(64)}@${"b".repeat(185)}.com`;
    expect(new TextEncoder().encode(email).length).toBe(254);
    const s = await w.mintSession({ userId, email });
    expect(s.userId).toBe(userId);
    expect(s.email).toBe(email);
    expect((await kvEntry(s.hash)).metadata).toMatchObject({ userId, email });
  });

  it("needs the admin token: none, wrong or a session id → 401 and nothing stored", async () => {
    const userId = uid("noadmin");
    const other = await w.mintSession({ userId: uid("holder") });
    const rows = await d1Count();
    const body = { userId, email: "x@example.com" };
    for (const opts of [{}, { admin: "wrong-token" }, { admin: ADMIN_TOKEN + "x" }, { session: other.id }]) {
      const r = await w.createSession(body, { admin: false, ...opts });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("Set-Cookie")).toBeNull();
    }
    const r = await w.createSession(body, { headers: { Authorization: `Basic ${ADMIN_TOKEN}` } });
    expectError(expect, r, 401, "unauthorized");
    expect(await d1Count("user_id = ?", userId)).toBe(0);
    expect(await d1Count()).toBe(rows);
  });

  it("other methods on /sessions are 405 with Allow", async () => {
    const r = await w.json("/sessions", { method: "PUT", admin: true, body: {} }); // not declared: the router's 405
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("POST, GET, DELETE");
  });
});

describe("GET /sessions/current", () => {
  it("answers with Bearer and with the cookie", async () => {
    const userId = uid("cur");
    const s = await w.mintSession({ userId, email: "cur@example.com" });
    const want = { userId, email: "cur@example.com", createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt };

    let r = await w.getCurrentSession(s.id);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);

    r = await current(cookie(s.id));
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);

    r = await current({ headers: { Cookie: `theme=dark; __Host-session=${s.id}; other=1` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);
  });

  it("Bearer wins over the cookie", async () => {
    const a = await w.mintSession({ userId: uid("bearerA") });
    const b = await w.mintSession({ userId: uid("cookieB") });
    let r = await current({ session: a.id, headers: { Cookie: `__Host-session=${b.id}` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.userId).toBe(a.userId);
    const unknown = unknownSessionId();
    r = await current({ session: unknown, headers: { Cookie: `__Host-session=${b.id}` } });
    expectError(expect, r, 401, "unauthorized");
  });

  it("a KV hit needs no D1 query", async () => {
    const s = await w.mintSession({ userId: uid("fast") });
    const r = await w.getCurrentSession(s.id);
    expect(r.status, r.text).toBe(200);
    const t = timing(r.res);
    expect(t.queries).toBe(0);
    expect(t.reads).toBeGreaterThanOrEqual(1);
  });

  it("missing, garbage, unknown and forged tokens → 401", async () => {
    const s = await w.mintSession({ userId: uid("forge") });
    const unknown = unknownSessionId();
    expect(unknown).toHaveLength(43);
    /** @type {CallOptions[]} */
    const attempts = [
      {},
      { headers: { Authorization: "Bearer" } },
      { headers: { Authorization: "Bearer " } },
      { headers: { Authorization: `Basic ${s.id}` } },
      { session: "garbage" },
      { session: "x".repeat(2000) },
      { session: s.id.slice(1) },
      { session: s.id + "A" },
      { session: s.id.slice(0, 42) + "=" },
      { session: "../../../../etc/passwd" },
      { session: unknown },
      { session: s.hash }, // the stored hash is not a usable session
      { session: ADMIN_TOKEN }, // the admin token is not a session
      { headers: { Cookie: `__Host-session=${unknown}` } },
      { headers: { Cookie: "__Host-session=" } },
      { headers: { Cookie: `mysession=${s.id}` } },
      { headers: { Cookie: `__Host-session=${s.hash}` } },
      { headers: { Cookie: `session=${s.id}` } }, // the cookie name of earlier versions
      { headers: { Cookie: `__host-session=${s.id}` } }, // cookie names are case-sensitive
    ];
    for (const opts of attempts) {
      const r = await current(opts);
      expectError(expect, r, 401, "unauthorized");
    }
  });

  it("a session missing from KV is found in D1 and written back to KV", async () => {
    const userId = uid("miss");
    const s = await w.mintSession({ userId, email: "miss@example.com" });
    const key = `session:${s.hash}`;
    await w.kv.delete(key);
    expect(await kvEntry(s.hash)).toBeUndefined();

    const r = await w.getCurrentSession(s.id);
    expect(r.status, r.text).toBe(200);
    const view = { userId, email: "miss@example.com", createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt };
    expect(r.body).toEqual(view);
    expect(timing(r.res).queries).toBeGreaterThanOrEqual(1);

    const entry = await kvEntry(s.hash);
    expect(entry, "written back to KV").toBeTruthy();
    expect(entry.metadata).toEqual(view);
    expect(Math.abs(entry.expiration - s.idleExpiresAt / 1000)).toBeLessThan(60);
    expect(JSON.parse(await w.kv.get(key))).toMatchObject(view);

    // And it keeps working (now from KV) through the cookie too.
    const again = await current(cookie(s.id));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(view);
  });

  it("an expired session is refused: past expires_at in D1 with no KV entry", async () => {
    const s = await w.mintSession({ userId: uid("expd1") });
    await w.db.prepare("UPDATE sessions SET expires_at = ? WHERE id_hash = ?").bind(Date.now() - 1000, s.hash).run();
    await w.kv.delete(`session:${s.hash}`);
    expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
    expectError(expect, await current(cookie(s.id)), 401, "unauthorized");
    expect(await kvEntry(s.hash), "an expired session is not written back").toBeUndefined();
  });

  it("an expired session is refused even while KV still holds it", async () => {
    const userId = uid("expkv");
    const s = await w.mintSession({ userId });
    const past = Date.now() - 1000;
    const stale = { userId, email: s.email, createdAt: past - WEEK_MS, expiresAt: past };
    await w.kv.put(`session:${s.hash}`, JSON.stringify(stale), { metadata: stale, expirationTtl: 3600 });
    expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
  });

  it("a session revoked in D1 (elsewhere) and absent from KV is refused", async () => {
    const s = await w.mintSession({ userId: uid("revd1") });
    await w.db.prepare("UPDATE sessions SET revoked_at = ? WHERE id_hash = ?").bind(Date.now(), s.hash).run();
    await w.kv.delete(`session:${s.hash}`);
    expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
    expect(await kvEntry(s.hash)).toBeUndefined();
  });

  it("other methods on /sessions/current are 405 with Allow", async () => {
    const r = await w.json("/sessions/current", { method: "PUT" }); // not declared: the router's 405
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET, DELETE");
  });
});

describe("DELETE /sessions/current", () => {
  it("logout: 204, a clearing cookie, no body; reuse → 401; D1 revoked, KV gone", async () => {
    const other = await w.mintSession({ userId: uid("bystander") });
    const s = await w.mintSession({ userId: uid("logout") });
    expect((await w.getCurrentSession(s.id)).status).toBe(200);

    const out = await w.logout(s.id);
    expect(out.status).toBe(204);
    expect(out.text).toBe("");
    const c = parseCookie(out.res.headers.get("Set-Cookie"));
    expect(c.name).toBe("__Host-session");
    expect(c.value).not.toBe(s.id);
    expect(c.attrs["max-age"]).toBe("0");
    expect(c.attrs.path).toBe("/");

    expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
    expectError(expect, await current(cookie(s.id)), 401, "unauthorized");
    expectError(expect, await w.logout(s.id), 401, "unauthorized");

    const row = await w.sessionRow(s.hash);
    expect(typeof row.revoked_at).toBe("number");
    expect(row.revoked_at).toBeGreaterThanOrEqual(s.createdAt);
    expect(await kvEntry(s.hash)).toBeUndefined();
    expect(await w.kv.get(`session:${s.hash}`)).toBeNull();

    // Only that session.
    expect((await w.getCurrentSession(other.id)).status).toBe(200);
    expect((await w.sessionRow(other.hash)).revoked_at).toBeNull();
  });

  it("logout through the cookie works the same", async () => {
    const s = await w.mintSession({ userId: uid("cookieout") });
    const out = await w.logout(null, cookie(s.id));
    expect(out.status).toBe(204);
    expect(out.text).toBe("");
    expect(parseCookie(out.res.headers.get("Set-Cookie")).attrs["max-age"]).toBe("0");
    expectError(expect, await current(cookie(s.id)), 401, "unauthorized");
    expect(typeof (await w.sessionRow(s.hash)).revoked_at).toBe("number");
    expect(await kvEntry(s.hash)).toBeUndefined();
  });

  it("without a valid session → 401", async () => {
    const unknown = unknownSessionId();
    for (const opts of [{}, { session: "garbage" }, { session: unknown }, { headers: { Cookie: `__Host-session=${unknown}` } }]) {
      const r = await w.logout(null, opts);
      expectError(expect, r, 401, "unauthorized");
    }
  });

  it("revocation checks D1: a session revoked in D1 cannot be logged out again from a stale KV copy", async () => {
    const s = await w.mintSession({ userId: uid("stalekv") });
    // Revoked elsewhere: D1 says so, this location's KV copy is still there.
    await w.db.prepare("UPDATE sessions SET revoked_at = ? WHERE id_hash = ?").bind(Date.now(), s.hash).run();
    expect(await kvEntry(s.hash)).toBeTruthy();
    expectError(expect, await w.logout(s.id), 401, "unauthorized");
  });
});

describe("a user's own sessions: GET /sessions, DELETE /sessions/:handle", () => {
  it("lists only the caller's active sessions, newest first, the current one marked, no ids or hashes", async () => {
    const userId = uid("own");
    const older = await w.mintSessionWithHandle({ userId });
    const current = await w.mintSessionWithHandle({ userId });
    const ended = await w.mintSessionWithHandle({ userId });
    expect((await w.revokeSession(ended.handle)).status).toBe(204);
    const stranger = await w.mintSessionWithHandle();
    // A userId in the query does not reach another user's sessions.
    for (const query of [{}, { userId: stranger.userId }]) {
      const r = await w.listMySessions(current.id, query);
      expect(r.status, r.text).toBe(200);
      expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);
      expect(r.body.sessions.map((/** @type {any} */ s) => s.handle)).toEqual([current.handle, older.handle]);
      expect(r.body.sessions[0]).toMatchObject({ userId, current: true, createdAt: current.createdAt });
      expect(r.body.sessions[1]).not.toHaveProperty("current");
      expect(r.body.listComplete).toBe(true);
      for (const secret of [older.id, older.hash, current.id, current.hash, stranger.handle]) {
        expect(r.text).not.toContain(secret);
      }
    }
    const viaCookie = await w.listMySessions(null, {}, { headers: { Cookie: `__Host-session=${older.id}` } });
    expect(viaCookie.body.sessions.map((/** @type {any} */ s) => s.current ?? false)).toEqual([false, true]);
    const paged = await w.listMySessions(current.id, { limit: 1 });
    expect(paged.body.sessions).toHaveLength(1);
    const rest = await w.listMySessions(current.id, { limit: 1, cursor: paged.body.cursor });
    expect(rest.body.sessions.map((/** @type {any} */ s) => s.handle)).toEqual([older.handle]);
  });

  it("ends one of the caller's own sessions by handle; another user's handle is 404 and stays valid", async () => {
    const userId = uid("end");
    const phone = await w.mintSessionWithHandle({ userId });
    const laptop = await w.mintSessionWithHandle({ userId });
    const stranger = await w.mintSessionWithHandle();
    const refused = await w.endMySession(laptop.id, stranger.handle);
    expectError(expect, refused, 404, "not_found");
    expect((await w.getCurrentSession(stranger.id, { client: w.newClient() })).status).toBe(200);
    const r = await w.endMySession(laptop.id, phone.handle);
    expect(r.status, r.text).toBe(204);
    expect(r.text).toBe("");
    expect((await w.sessionRow(phone.hash)).revoked_at).not.toBeNull();
    expect(await w.kv.get(`session:${phone.hash}`)).toBeNull();
    expectError(expect, await w.getCurrentSession(phone.id, { client: w.newClient() }), 401, "unauthorized");
    expect((await w.getCurrentSession(laptop.id, { client: w.newClient() })).status).toBe(200);
    expect((await w.endMySession(laptop.id, phone.handle)).status, "idempotent").toBe(204);
    const list = await w.listMySessions(laptop.id);
    expect(list.body.sessions.map((/** @type {any} */ s) => s.handle)).toEqual([laptop.handle]);
  });

  it("ends all the caller's other sessions and keeps the current one; other users' stay", async () => {
    const userId = uid("others");
    const current = await w.mintSessionWithHandle({ userId });
    const phone = await w.mintSessionWithHandle({ userId });
    const laptop = await w.mintSessionWithHandle({ userId });
    const stranger = await w.mintSessionWithHandle();
    const r = await w.endMyOtherSessions(current.id);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ revoked: 2 });
    for (const s of [phone, laptop]) {
      expectError(expect, await w.getCurrentSession(s.id, { client: w.newClient() }), 401, "unauthorized");
      expect(await w.kv.get(`session:${s.hash}`)).toBeNull();
    }
    expect((await w.getCurrentSession(current.id, { client: w.newClient() })).status).toBe(200);
    expect((await w.getCurrentSession(stranger.id, { client: w.newClient() })).status).toBe(200);
    const list = await w.listMySessions(current.id);
    expect(list.body.sessions.map((/** @type {any} */ s) => s.handle)).toEqual([current.handle]);
    expect((await w.endMyOtherSessions(current.id)).body, "nothing left to end").toEqual({ revoked: 0 });
  });

  it("needs a valid session; bad handles are 400; other methods are 405", async () => {
    const s = await w.mintSessionWithHandle();
    for (const opts of [{}, { session: unknownSessionId() }, { session: "garbage" }]) {
      expectError(expect, await w.json("/sessions", opts), 401, "unauthorized");
      expectError(expect, await w.json(`/sessions/${s.handle}`, { ...opts, method: "DELETE" }), 401, "unauthorized");
      expectError(expect, await w.json("/sessions", { ...opts, method: "DELETE" }), 401, "unauthorized");
    }
    expectError(expect, await w.listMySessions(null, {}, { admin: true }), 401, "unauthorized");
    for (const bad of [s.hash, s.id, "x".repeat(32), s.handle.toUpperCase()]) {
      expectError(expect, await w.endMySession(s.id, bad), 400, "invalid_request");
    }
    for (const query of ["limit=0", "limit=1001", "cursor=abc"]) {
      expectError(expect, await w.listMySessions(s.id, query), 400, "invalid_request");
    }
    const put = await w.json("/sessions", { session: s.id, method: "PUT", body: {} });
    expectError(expect, put, 405, "method_not_allowed");
    expect(put.res.headers.get("Allow")).toBe("POST, GET, DELETE");
    const get = await w.json(`/sessions/${s.handle}`, { session: s.id });
    expectError(expect, get, 405, "method_not_allowed");
    expect(get.res.headers.get("Allow")).toBe("DELETE");
    expect((await w.getCurrentSession(s.id, { client: w.newClient() })).status, "nothing ended").toBe(200);
  });
});

describe("GET /admin/sessions", () => {
  it("requires the admin token", async () => {
    const s = await w.mintSession({ userId: uid("adm") });
    for (const opts of [{}, { admin: "nope" }, { session: s.id }, { headers: { Cookie: `__Host-session=${s.id}` } }]) {
      expectError(expect, await w.listSessions({}, { admin: false, ...opts }), 401, "unauthorized");
    }
  });

  it("lists {sessions, cursor, listComplete} with the userId filter", async () => {
    const userId = uid("list");
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await w.mintSession({ userId, email: `list${i}.${userId}@example.com` }));
    await w.mintSession({ userId: uid("notlisted") });

    const r = await w.listSessions({ userId });
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);
    expect(Object.keys(r.body).sort()).toEqual(["cursor", "listComplete", "sessions"]);
    expect(r.body.listComplete).toBe(true);
    expect(r.body.cursor).toBeNull();
    expect(r.body.sessions).toHaveLength(3);
    for (const s of r.body.sessions) {
      expect(Object.keys(s).sort()).toEqual(["createdAt", "email", "expiresAt", "handle", "idleExpiresAt", "userId"]);
      expect(s.userId).toBe(userId);
    }
    const want = mine.map((s) => ({ userId, email: s.email, createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt }));
    /** @param {{ email: string }} a @param {{ email: string }} b */
    const byEmail = (a, b) => a.email.localeCompare(b.email);
    const views = r.body.sessions.map((/** @type {{ handle: string }} */ { handle, ...view }) => view);
    expect(views.sort(byEmail)).toEqual([...want].sort(byEmail));
    // Newest first.
    /** @type {number[]} */
    const times = r.body.sessions.map((/** @type {{ createdAt: number }} */ s) => s.createdAt);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // No response leaks a session id.
    for (const id of w.minted) expect(r.text).not.toContain(id);

    const none = await w.listSessions({ userId: uid("nobody") });
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ sessions: [], cursor: null, listComplete: true });
  });

  it("pages with limit=2 and the cursor until listComplete: all seen, no duplicates", async () => {
    const userId = uid("page");
    /** @type {string[]} */
    const emails = [];
    for (let i = 0; i < 5; i++) emails.push((await w.mintSession({ userId, email: `page${i}.${userId}@example.com` })).email);

    const pages = await allPages({ userId, limit: "2" });
    expect(pages.length).toBe(3);
    /** @type {string[]} */
    const seen = [];
    pages.forEach((p, i) => {
      expect(p.body.sessions.length).toBeLessThanOrEqual(2);
      expect(p.body.sessions.length).toBeGreaterThan(0);
      const last = i === pages.length - 1;
      expect(p.body.listComplete).toBe(last);
      if (last) expect(p.body.cursor).toBeNull();
      for (const id of w.minted) expect(p.text).not.toContain(id);
      seen.push(...p.body.sessions.map((/** @type {{ email: string }} */ s) => s.email));
    });
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...emails].sort());

    // Unfiltered, the same walk sees every session, once.
    const all = await allPages({ limit: "2" });
    /** @type {string[]} */
    const allSeen = all.flatMap((p) => p.body.sessions.map((/** @type {any} */ s) => `${s.userId}|${s.email}|${s.createdAt}`));
    expect(new Set(allSeen).size).toBe(allSeen.length);
    for (const e of emails) expect(allSeen.some((k) => k.includes(`|${e}|`))).toBe(true);
    /** @type {number[]} */
    const times = all.flatMap((p) => p.body.sessions.map((/** @type {{ createdAt: number }} */ s) => s.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // limit=1000 in one page holds the same sessions.
    const big = await w.listSessions({ limit: 1000 });
    expect(big.status, big.text).toBe(200);
    expect(big.body.listComplete).toBe(true);
    expect(big.body.sessions.length).toBe(allSeen.length);
  });

  it("bad limit, cursor or userId → 400 invalid_request", async () => {
    for (const q of [
      "limit=0",
      "limit=1001",
      "limit=abc",
      "limit=-1",
      "limit=1.5",
      "cursor=garbage",
      "cursor=" + "A".repeat(43),
      "userId=bad%20id",
      "userId=" + "u".repeat(129),
    ]) {
      const r = await w.listSessions(q); // the query as written, percent-encoding included
      const e = expectError(expect, r, 400, "invalid_request");
      expect(e.error, q).toContain(q.split("=")[0]);
    }
    expect((await w.listSessions({ limit: 1 })).status).toBe(200);
    expect((await w.listSessions()).status).toBe(200);
  });

  it("other methods are 405 with Allow", async () => {
    const r = await w.json("/admin/sessions", { method: "POST", admin: true, body: {} }); // not declared: the router's 405
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET");
  });
});

describe("DELETE /admin/users/:userId/sessions", () => {
  it("revokes every session of that user and only theirs", async () => {
    const victim = uid("victim");
    const keeper = uid("keeper");
    const vs = [await w.mintSession({ userId: victim }), await w.mintSession({ userId: victim }), await w.mintSession({ userId: victim })];
    const k = await w.mintSession({ userId: keeper });
    // One of the victim's sessions lives only in D1 (KV evicted).
    await w.kv.delete(`session:${vs[2].hash}`);

    const r = await w.revokeUserSessions(victim);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ revoked: 3 });
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);

    for (const s of vs) {
      expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
      expect(typeof (await w.sessionRow(s.hash)).revoked_at).toBe("number");
      expect(await kvEntry(s.hash)).toBeUndefined();
    }
    const kr = await w.getCurrentSession(k.id);
    expect(kr.status).toBe(200);
    expect(kr.body.userId).toBe(keeper);
    expect((await w.sessionRow(k.hash)).revoked_at).toBeNull();
    expect(await kvEntry(k.hash)).toBeTruthy();

    const again = await w.revokeUserSessions(victim);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ revoked: 0 });

    const nobody = await w.revokeUserSessions(uid("nobody"));
    expect(nobody.status).toBe(200);
    expect(nobody.body).toEqual({ revoked: 0 });
  });

  it("does not count a session already logged out", async () => {
    const user = uid("mixed");
    const live = [await w.mintSession({ userId: user }), await w.mintSession({ userId: user })];
    const out = await w.mintSession({ userId: user });
    expect((await w.logout(out.id)).status).toBe(204);
    const r = await w.revokeUserSessions(user);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ revoked: 2 });
    for (const s of live) expectError(expect, await w.getCurrentSession(s.id), 401, "unauthorized");
  });

  it("bad userId → 400, no or wrong auth → 401, and nothing is revoked", async () => {
    const user = uid("guarded");
    const s = await w.mintSession({ userId: user });
    expectError(expect, await w.revokeUserSessions("u".repeat(129)), 400, "invalid_request");
    expectError(expect, await w.revokeUserSessions("bad%20id"), 400, "invalid_request");
    for (const opts of [{}, { admin: "nope" }, { session: s.id }]) {
      const r = await w.revokeUserSessions(user, { admin: false, ...opts });
      expectError(expect, r, 401, "unauthorized");
    }
    expect((await w.getCurrentSession(s.id)).status).toBe(200);
    expect((await w.sessionRow(s.hash)).revoked_at).toBeNull();
  });

  it("other methods are 405 with Allow", async () => {
    const r = await w.json(`/admin/users/someone/sessions`, { method: "GET", admin: true }); // not declared: the router's 405
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("DELETE");
  });
});

describe("no stored form or response holds a usable sessionId", () => {
  it("KV keys, values, metadata and every D1 row are free of every minted id", async () => {
    // A fresh session that went through every route, so its traces are all there.
    const s = await w.mintSession({ userId: uid("leak") });
    const answers = [];
    answers.push(await w.getCurrentSession(s.id));
    answers.push(await current(cookie(s.id)));
    await w.kv.delete(`session:${s.hash}`);
    answers.push(await w.getCurrentSession(s.id)); // written back
    answers.push(await w.listSessions({ userId: s.userId }));
    answers.push(await w.listSessions({ limit: 1000 }));
    answers.push(await w.logout(s.id));
    answers.push(await w.getCurrentSession(s.id));
    answers.push(await w.revokeUserSessions(s.userId));
    for (const r of answers) {
      const text = `${headerDump(r.res)}\n${r.text}`;
      expect(text).not.toContain(s.id);
    }

    const minted = w.minted; // every session id minted in this file
    expect(minted.length).toBeGreaterThan(20);
    const kv = await kvDump();
    const d1 = await d1Dump();
    expect(kv).toContain(`session:${s.hash}`.slice(0, 8)); // the dump is not empty
    for (const id of minted) {
      expect(kv).not.toContain(id);
      expect(d1).not.toContain(id);
    }
    // Every session row is keyed by a SHA-256 hex digest of an id we were given.
    /** @type {{ id_hash: string }[]} */
    const rows = (await w.db.prepare("SELECT id_hash FROM sessions").all()).results;
    const hashes = new Set(minted.map(sha256));
    for (const r of rows) {
      expect(r.id_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(hashes.has(r.id_hash)).toBe(true);
    }
  });
});
