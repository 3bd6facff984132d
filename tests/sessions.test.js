// Sessions (issue 4): KV is the read path, D1 the authority, only hashes are stored, and
// revocation takes effect at once. Black-box against the built Worker in workerd.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, boot, expectError, timing } from "./helpers.js";

const WEEK_S = 7 * 24 * 60 * 60;
const WEEK_MS = WEEK_S * 1000;

let w;
beforeAll(async () => {
  // Not a rate-limit test: a limit high enough never to get in the way.
  w = await boot({ seedConfig: { rateLimits: { default: 1000000 } } });
});
afterAll(() => w?.dispose());

const sha256 = (s) => createHash("sha256").update(s).digest("hex");
let seq = 0;
/** A userId unique to this run. */
const uid = (tag) => `${tag}-${Date.now().toString(36)}-${++seq}`;
/** Every sessionId minted in this file, to prove none leaks into storage or responses. */
const minted = [];

async function mint(userId, email = `${userId.toLowerCase()}@example.com`) {
  const r = await w.json("/sessions", { method: "POST", admin: true, body: { userId, email } });
  expect(r.status, r.text).toBe(201);
  minted.push(r.body.sessionId);
  return { ...r.body, hash: sha256(r.body.sessionId), res: r.res };
}

/** The KV listing entry ({name, expiration, metadata}) of a session hash, or undefined. */
async function kvEntry(hash) {
  const key = `session:${hash}`;
  const l = await w.kv.list({ prefix: key });
  return l.keys.find((k) => k.name === key);
}

async function d1Row(hash) {
  return w.db.prepare("SELECT * FROM sessions WHERE id_hash = ?").bind(hash).first();
}

async function d1Count(where = "1=1", ...args) {
  const r = await w.db.prepare(`SELECT COUNT(*) AS n FROM sessions WHERE ${where}`).bind(...args).first();
  return r.n;
}

async function kvSessionKeyCount() {
  let n = 0;
  let cursor;
  do {
    const l = await w.kv.list({ prefix: "session:", cursor });
    n += l.keys.length;
    cursor = l.list_complete ? undefined : l.cursor;
  } while (cursor);
  return n;
}

/** Every KV key, metadata and value, as one string. */
async function kvDump() {
  const parts = [];
  let cursor;
  do {
    const l = await w.kv.list({ cursor });
    for (const k of l.keys) {
      parts.push(JSON.stringify(k), (await w.kv.get(k.name)) ?? "");
    }
    cursor = l.list_complete ? undefined : l.cursor;
  } while (cursor);
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

/** `Set-Cookie` split into its name=value pair and its attributes (lower-cased names). */
function parseCookie(header) {
  expect(header).toBeTruthy();
  const [pair, ...attrs] = header.split(";").map((s) => s.trim());
  const eq = pair.indexOf("=");
  const map = {};
  for (const a of attrs) {
    const i = a.indexOf("=");
    if (i < 0) map[a.toLowerCase()] = true;
    else map[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs: map };
}

/** All headers of a response, as one string. */
const headerDump = (res) => [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");

const current = (opts) => w.json("/sessions/current", opts);

/** Walks GET /admin/sessions page by page; returns the pages. */
async function allPages(query) {
  const pages = [];
  let cursor = null;
  for (let i = 0; i < 500; i++) {
    const qs = new URLSearchParams(query);
    if (cursor) qs.set("cursor", cursor);
    const r = await w.json(`/admin/sessions?${qs}`, { admin: true });
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
    const r = await w.json("/sessions", {
      method: "POST",
      admin: true,
      body: { userId, email: "mint@example.com" },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    minted.push(r.body.sessionId);
    expect(Object.keys(r.body).sort()).toEqual(["createdAt", "email", "expiresAt", "idleExpiresAt", "sessionId", "userId"]);
    const { sessionId, createdAt, expiresAt } = r.body;
    expect(r.body.userId).toBe(userId);
    expect(r.body.email).toBe("mint@example.com");
    expect(typeof sessionId).toBe("string");
    expect(sessionId.length).toBeGreaterThanOrEqual(43); // ≥ 256 bits in base64url; ≥ 128 required
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Number.isInteger(createdAt)).toBe(true);
    expect(Math.abs(createdAt - before)).toBeLessThan(60_000); // milliseconds, not seconds
    expect(expiresAt).toBe(createdAt + WEEK_MS);

    const c = parseCookie(r.res.headers.get("Set-Cookie"));
    expect(c.name).toBe("session");
    expect(c.value).toBe(sessionId);
    expect(c.attrs.path).toBe("/");
    expect(c.attrs.httponly).toBe(true);
    expect(c.attrs.secure).toBe(true);
    expect(c.attrs.samesite?.toLowerCase()).toBe("lax");
    expect(c.attrs["max-age"]).toBe(String(WEEK_S));
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);
  });

  it("two sessions never share an id", async () => {
    const userId = uid("twice");
    const a = await mint(userId);
    const b = await mint(userId);
    expect(a.sessionId).not.toBe(b.sessionId);
  });

  it("stores only the SHA-256 of the id: KV key, TTL, metadata and D1 row", async () => {
    const userId = uid("store");
    const s = await mint(userId, "store@example.com");
    const view = { userId, email: "store@example.com", createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt };

    const entry = await kvEntry(s.hash);
    expect(entry, "KV key session:<sha256 hex of id>").toBeTruthy();
    expect(entry.metadata).toEqual(view);
    // expirationTtl = the time to the idle deadline (24 h by default), never past the
    // absolute deadline (7 days).
    expect(typeof entry.expiration).toBe("number");
    expect(Math.abs(entry.expiration - s.idleExpiresAt / 1000)).toBeLessThan(60);
    expect(Math.abs(entry.expiration - (Date.now() / 1000 + 86400))).toBeLessThan(120);
    expect(entry.expiration).toBeLessThanOrEqual(s.expiresAt / 1000);
    const value = await w.kv.get(`session:${s.hash}`);
    expect(value).not.toContain(s.sessionId);
    expect(JSON.parse(value)).toMatchObject(view);
    // No KV key is named after the id itself.
    expect((await w.kv.list({ prefix: `session:${s.sessionId}` })).keys).toEqual([]);

    const row = await d1Row(s.hash);
    expect(row).toMatchObject({
      id_hash: s.hash,
      user_id: userId,
      email: "store@example.com",
      created_at: s.createdAt,
      expires_at: s.expiresAt,
      revoked_at: null,
    });
    expect(JSON.stringify(row)).not.toContain(s.sessionId);
  });

  it("rejects bad input with 400/413 and stores nothing", async () => {
    const rows = await d1Count();
    const keys = await kvSessionKeyCount();
    const post = (body, headers) => w.json("/sessions", { method: "POST", admin: true, body, headers });
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
    for (const [body, field] of cases) {
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
    let sent = 0;
    const stream = new ReadableStream({
      pull(ctrl) {
        if (sent++ < 6) ctrl.enqueue(chunk);
        else ctrl.close();
      },
    });
    const res = await w.mf.dispatchFetch("http://127.0.0.1/sessions", {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", "CF-Connecting-IP": w.client },
      body: stream,
      duplex: "half",
    });
    const text = await res.text();
    expectError(expect, { res, status: res.status, text, body: JSON.parse(text) }, 413, "payload_too_large");

    expect(await d1Count()).toBe(rows);
    expect(await kvSessionKeyCount()).toBe(keys);
  });

  it("accepts the limits: a 128-char userId of every allowed character and a 254-byte email", async () => {
    const userId = ("aZ09_.:@-" + "x".repeat(128)).slice(0, 128);
    const email = `${"a".repeat(64)}@${"b".repeat(185)}.com`;
    expect(new TextEncoder().encode(email).length).toBe(254);
    const s = await mint(userId, email);
    expect(s.userId).toBe(userId);
    expect(s.email).toBe(email);
    expect((await kvEntry(s.hash)).metadata).toMatchObject({ userId, email });
  });

  it("needs the admin token: none, wrong or a session id → 401 and nothing stored", async () => {
    const userId = uid("noadmin");
    const other = await mint(uid("holder"));
    const rows = await d1Count();
    const body = { userId, email: "x@example.com" };
    for (const opts of [{}, { admin: "wrong-token" }, { admin: ADMIN_TOKEN + "x" }, { session: other.sessionId }]) {
      const r = await w.json("/sessions", { method: "POST", body, ...opts });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("Set-Cookie")).toBeNull();
    }
    const r = await w.json("/sessions", {
      method: "POST",
      body,
      headers: { Authorization: `Basic ${ADMIN_TOKEN}` },
    });
    expectError(expect, r, 401, "unauthorized");
    expect(await d1Count("user_id = ?", userId)).toBe(0);
    expect(await d1Count()).toBe(rows);
  });

  it("other methods on /sessions are 405 with Allow", async () => {
    const r = await w.json("/sessions", { method: "PUT", admin: true, body: {} });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("POST");
  });
});

describe("GET /sessions/current", () => {
  it("answers with Bearer and with the cookie", async () => {
    const userId = uid("cur");
    const s = await mint(userId, "cur@example.com");
    const want = { userId, email: "cur@example.com", createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: s.idleExpiresAt };

    let r = await current({ session: s.sessionId });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);

    r = await current({ headers: { Cookie: `session=${s.sessionId}` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);

    r = await current({ headers: { Cookie: `theme=dark; session=${s.sessionId}; other=1` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(want);
  });

  it("Bearer wins over the cookie", async () => {
    const a = await mint(uid("bearerA"));
    const b = await mint(uid("cookieB"));
    let r = await current({ session: a.sessionId, headers: { Cookie: `session=${b.sessionId}` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.userId).toBe(a.userId);
    const unknown = randomBytes(32).toString("base64url");
    r = await current({ session: unknown, headers: { Cookie: `session=${b.sessionId}` } });
    expectError(expect, r, 401, "unauthorized");
  });

  it("a KV hit needs no D1 query", async () => {
    const s = await mint(uid("fast"));
    const r = await current({ session: s.sessionId });
    expect(r.status, r.text).toBe(200);
    const t = timing(r.res);
    expect(t.queries).toBe(0);
    expect(t.reads).toBeGreaterThanOrEqual(1);
  });

  it("missing, garbage, unknown and forged tokens → 401", async () => {
    const s = await mint(uid("forge"));
    const unknown = randomBytes(32).toString("base64url");
    expect(unknown).toHaveLength(43);
    const attempts = [
      {},
      { headers: { Authorization: "Bearer" } },
      { headers: { Authorization: "Bearer " } },
      { headers: { Authorization: `Basic ${s.sessionId}` } },
      { session: "garbage" },
      { session: "x".repeat(2000) },
      { session: s.sessionId.slice(1) },
      { session: s.sessionId + "A" },
      { session: s.sessionId.slice(0, 42) + "=" },
      { session: "../../../../etc/passwd" },
      { session: unknown },
      { session: s.hash }, // the stored hash is not a usable session
      { session: ADMIN_TOKEN }, // the admin token is not a session
      { headers: { Cookie: `session=${unknown}` } },
      { headers: { Cookie: "session=" } },
      { headers: { Cookie: `mysession=${s.sessionId}` } },
      { headers: { Cookie: `session=${s.hash}` } },
    ];
    for (const opts of attempts) {
      const r = await current(opts);
      expectError(expect, r, 401, "unauthorized");
    }
  });

  it("a session missing from KV is found in D1 and written back to KV", async () => {
    const userId = uid("miss");
    const s = await mint(userId, "miss@example.com");
    const key = `session:${s.hash}`;
    await w.kv.delete(key);
    expect(await kvEntry(s.hash)).toBeUndefined();

    const r = await current({ session: s.sessionId });
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
    const again = await current({ headers: { Cookie: `session=${s.sessionId}` } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(view);
  });

  it("an expired session is refused: past expires_at in D1 with no KV entry", async () => {
    const s = await mint(uid("expd1"));
    await w.db.prepare("UPDATE sessions SET expires_at = ? WHERE id_hash = ?").bind(Date.now() - 1000, s.hash).run();
    await w.kv.delete(`session:${s.hash}`);
    expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
    expectError(expect, await current({ headers: { Cookie: `session=${s.sessionId}` } }), 401, "unauthorized");
    expect(await kvEntry(s.hash), "an expired session is not written back").toBeUndefined();
  });

  it("an expired session is refused even while KV still holds it", async () => {
    const userId = uid("expkv");
    const s = await mint(userId);
    const past = Date.now() - 1000;
    const stale = { userId, email: s.email, createdAt: past - WEEK_MS, expiresAt: past };
    await w.kv.put(`session:${s.hash}`, JSON.stringify(stale), { metadata: stale, expirationTtl: 3600 });
    expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
  });

  it("a session revoked in D1 (elsewhere) and absent from KV is refused", async () => {
    const s = await mint(uid("revd1"));
    await w.db.prepare("UPDATE sessions SET revoked_at = ? WHERE id_hash = ?").bind(Date.now(), s.hash).run();
    await w.kv.delete(`session:${s.hash}`);
    expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
    expect(await kvEntry(s.hash)).toBeUndefined();
  });

  it("other methods on /sessions/current are 405 with Allow", async () => {
    const r = await w.json("/sessions/current", { method: "PUT" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET, DELETE");
  });
});

describe("DELETE /sessions/current", () => {
  it("logout: 204, a clearing cookie, no body; reuse → 401; D1 revoked, KV gone", async () => {
    const other = await mint(uid("bystander"));
    const s = await mint(uid("logout"));
    expect((await current({ session: s.sessionId })).status).toBe(200);

    const res = await w.fetch("/sessions/current", { method: "DELETE", session: s.sessionId });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    const c = parseCookie(res.headers.get("Set-Cookie"));
    expect(c.name).toBe("session");
    expect(c.value).not.toBe(s.sessionId);
    expect(c.attrs["max-age"]).toBe("0");
    expect(c.attrs.path).toBe("/");

    expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
    expectError(expect, await current({ headers: { Cookie: `session=${s.sessionId}` } }), 401, "unauthorized");
    const again = await w.json("/sessions/current", { method: "DELETE", session: s.sessionId });
    expectError(expect, again, 401, "unauthorized");

    const row = await d1Row(s.hash);
    expect(typeof row.revoked_at).toBe("number");
    expect(row.revoked_at).toBeGreaterThanOrEqual(s.createdAt);
    expect(await kvEntry(s.hash)).toBeUndefined();
    expect(await w.kv.get(`session:${s.hash}`)).toBeNull();

    // Only that session.
    expect((await current({ session: other.sessionId })).status).toBe(200);
    expect((await d1Row(other.hash)).revoked_at).toBeNull();
  });

  it("logout through the cookie works the same", async () => {
    const s = await mint(uid("cookieout"));
    const res = await w.fetch("/sessions/current", {
      method: "DELETE",
      headers: { Cookie: `session=${s.sessionId}` },
    });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect(parseCookie(res.headers.get("Set-Cookie")).attrs["max-age"]).toBe("0");
    expectError(expect, await current({ headers: { Cookie: `session=${s.sessionId}` } }), 401, "unauthorized");
    expect(typeof (await d1Row(s.hash)).revoked_at).toBe("number");
    expect(await kvEntry(s.hash)).toBeUndefined();
  });

  it("without a valid session → 401", async () => {
    const unknown = randomBytes(32).toString("base64url");
    for (const opts of [{}, { session: "garbage" }, { session: unknown }, { headers: { Cookie: `session=${unknown}` } }]) {
      const r = await w.json("/sessions/current", { method: "DELETE", ...opts });
      expectError(expect, r, 401, "unauthorized");
    }
  });

  it("revocation checks D1: a session revoked in D1 cannot be logged out again from a stale KV copy", async () => {
    const s = await mint(uid("stalekv"));
    // Revoked elsewhere: D1 says so, this location's KV copy is still there.
    await w.db.prepare("UPDATE sessions SET revoked_at = ? WHERE id_hash = ?").bind(Date.now(), s.hash).run();
    expect(await kvEntry(s.hash)).toBeTruthy();
    const r = await w.json("/sessions/current", { method: "DELETE", session: s.sessionId });
    expectError(expect, r, 401, "unauthorized");
  });
});

describe("GET /admin/sessions", () => {
  it("requires the admin token", async () => {
    const s = await mint(uid("adm"));
    for (const opts of [{}, { admin: "nope" }, { session: s.sessionId }, { headers: { Cookie: `session=${s.sessionId}` } }]) {
      expectError(expect, await w.json("/admin/sessions", opts), 401, "unauthorized");
    }
  });

  it("lists {sessions, cursor, listComplete} with the userId filter", async () => {
    const userId = uid("list");
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await mint(userId, `list${i}.${seq}@example.com`));
    await mint(uid("notlisted"));

    const r = await w.json(`/admin/sessions?userId=${encodeURIComponent(userId)}`, { admin: true });
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
    const byEmail = (a, b) => a.email.localeCompare(b.email);
    const views = r.body.sessions.map(({ handle, ...view }) => view);
    expect(views.sort(byEmail)).toEqual([...want].sort(byEmail));
    // Newest first.
    const times = r.body.sessions.map((s) => s.createdAt);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // No response leaks a session id.
    for (const id of minted) expect(r.text).not.toContain(id);

    const none = await w.json(`/admin/sessions?userId=${uid("nobody")}`, { admin: true });
    expect(none.status).toBe(200);
    expect(none.body).toEqual({ sessions: [], cursor: null, listComplete: true });
  });

  it("pages with limit=2 and the cursor until listComplete: all seen, no duplicates", async () => {
    const userId = uid("page");
    const emails = [];
    for (let i = 0; i < 5; i++) emails.push((await mint(userId, `page${i}.${seq}@example.com`)).email);

    const pages = await allPages({ userId, limit: "2" });
    expect(pages.length).toBe(3);
    const seen = [];
    pages.forEach((p, i) => {
      expect(p.body.sessions.length).toBeLessThanOrEqual(2);
      expect(p.body.sessions.length).toBeGreaterThan(0);
      const last = i === pages.length - 1;
      expect(p.body.listComplete).toBe(last);
      if (last) expect(p.body.cursor).toBeNull();
      for (const id of minted) expect(p.text).not.toContain(id);
      seen.push(...p.body.sessions.map((s) => s.email));
    });
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...emails].sort());

    // Unfiltered, the same walk sees every session, once.
    const all = await allPages({ limit: "2" });
    const allSeen = all.flatMap((p) => p.body.sessions.map((s) => `${s.userId}|${s.email}|${s.createdAt}`));
    expect(new Set(allSeen).size).toBe(allSeen.length);
    for (const e of emails) expect(allSeen.some((k) => k.includes(`|${e}|`))).toBe(true);
    const times = all.flatMap((p) => p.body.sessions.map((s) => s.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // limit=1000 in one page holds the same sessions.
    const big = await w.json("/admin/sessions?limit=1000", { admin: true });
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
      const r = await w.json(`/admin/sessions?${q}`, { admin: true });
      const e = expectError(expect, r, 400, "invalid_request");
      expect(e.error, q).toContain(q.split("=")[0]);
    }
    expect((await w.json("/admin/sessions?limit=1", { admin: true })).status).toBe(200);
    expect((await w.json("/admin/sessions", { admin: true })).status).toBe(200);
  });

  it("other methods are 405 with Allow", async () => {
    const r = await w.json("/admin/sessions", { method: "POST", admin: true, body: {} });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET");
  });
});

describe("DELETE /admin/users/:userId/sessions", () => {
  it("revokes every session of that user and only theirs", async () => {
    const victim = uid("victim");
    const keeper = uid("keeper");
    const vs = [await mint(victim), await mint(victim), await mint(victim)];
    const k = await mint(keeper);
    // One of the victim's sessions lives only in D1 (KV evicted).
    await w.kv.delete(`session:${vs[2].hash}`);

    const r = await w.json(`/admin/users/${victim}/sessions`, { method: "DELETE", admin: true });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ revoked: 3 });
    expect(r.res.headers.get("Cache-Control")).toMatch(/no-store/);

    for (const s of vs) {
      expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
      expect(typeof (await d1Row(s.hash)).revoked_at).toBe("number");
      expect(await kvEntry(s.hash)).toBeUndefined();
    }
    const kr = await current({ session: k.sessionId });
    expect(kr.status).toBe(200);
    expect(kr.body.userId).toBe(keeper);
    expect((await d1Row(k.hash)).revoked_at).toBeNull();
    expect(await kvEntry(k.hash)).toBeTruthy();

    const again = await w.json(`/admin/users/${victim}/sessions`, { method: "DELETE", admin: true });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ revoked: 0 });

    const nobody = await w.json(`/admin/users/${uid("nobody")}/sessions`, { method: "DELETE", admin: true });
    expect(nobody.status).toBe(200);
    expect(nobody.body).toEqual({ revoked: 0 });
  });

  it("does not count a session already logged out", async () => {
    const user = uid("mixed");
    const live = [await mint(user), await mint(user)];
    const out = await mint(user);
    expect((await w.fetch("/sessions/current", { method: "DELETE", session: out.sessionId })).status).toBe(204);
    const r = await w.json(`/admin/users/${user}/sessions`, { method: "DELETE", admin: true });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ revoked: 2 });
    for (const s of live) expectError(expect, await current({ session: s.sessionId }), 401, "unauthorized");
  });

  it("bad userId → 400, no or wrong auth → 401, and nothing is revoked", async () => {
    const user = uid("guarded");
    const s = await mint(user);
    const long = await w.json(`/admin/users/${"u".repeat(129)}/sessions`, { method: "DELETE", admin: true });
    expectError(expect, long, 400, "invalid_request");
    const bad = await w.json(`/admin/users/bad%20id/sessions`, { method: "DELETE", admin: true });
    expectError(expect, bad, 400, "invalid_request");
    for (const opts of [{}, { admin: "nope" }, { session: s.sessionId }]) {
      const r = await w.json(`/admin/users/${user}/sessions`, { method: "DELETE", ...opts });
      expectError(expect, r, 401, "unauthorized");
    }
    expect((await current({ session: s.sessionId })).status).toBe(200);
    expect((await d1Row(s.hash)).revoked_at).toBeNull();
  });

  it("other methods are 405 with Allow", async () => {
    const r = await w.json(`/admin/users/someone/sessions`, { method: "GET", admin: true });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("DELETE");
  });
});

describe("no stored form or response holds a usable sessionId", () => {
  it("KV keys, values, metadata and every D1 row are free of every minted id", async () => {
    // A fresh session that went through every route, so its traces are all there.
    const s = await mint(uid("leak"));
    const responses = [];
    responses.push(await w.fetch("/sessions/current", { session: s.sessionId }));
    responses.push(await w.fetch("/sessions/current", { headers: { Cookie: `session=${s.sessionId}` } }));
    await w.kv.delete(`session:${s.hash}`);
    responses.push(await w.fetch("/sessions/current", { session: s.sessionId })); // written back
    responses.push(await w.fetch(`/admin/sessions?userId=${s.userId}`, { admin: true }));
    responses.push(await w.fetch("/admin/sessions?limit=1000", { admin: true }));
    responses.push(await w.fetch("/sessions/current", { method: "DELETE", session: s.sessionId }));
    responses.push(await w.fetch("/sessions/current", { session: s.sessionId }));
    responses.push(await w.fetch(`/admin/users/${s.userId}/sessions`, { method: "DELETE", admin: true }));
    for (const res of responses) {
      const text = `${headerDump(res)}\n${await res.text()}`;
      expect(text).not.toContain(s.sessionId);
    }

    expect(minted.length).toBeGreaterThan(20);
    const kv = await kvDump();
    const d1 = await d1Dump();
    expect(kv).toContain(`session:${s.hash}`.slice(0, 8)); // the dump is not empty
    for (const id of minted) {
      expect(kv).not.toContain(id);
      expect(d1).not.toContain(id);
    }
    // Every session row is keyed by a SHA-256 hex digest of an id we were given.
    const rows = (await w.db.prepare("SELECT id_hash FROM sessions").all()).results;
    const hashes = new Set(minted.map(sha256));
    for (const r of rows) {
      expect(r.id_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(hashes.has(r.id_hash)).toBe(true);
    }
  });
});
