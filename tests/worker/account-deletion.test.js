// @ts-check
// DELETE /admin/users/:id deletes an account: its sessions (D1 rows and KV copies), its
// preferences (D1 row and KV copy) and its profile (D1 row and cached KV copy). The same
// string is the sessions' userId and the profile's id; an id that cannot name a profile
// (such as an e-mail address) deletes sessions and preferences only. A second DELETE
// answers the same 204, and bad input changes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, timing } from "../helpers.js";
import { TestApp, sha256, spawnApp, uid } from "../app.js";

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: { rateLimits: { default: 100000 } } });
});
afterAll(() => w?.dispose());

/**
 * The `n` of a `SELECT COUNT(*) AS n` query.
 * @param {string} sql @param {...unknown} args
 * @returns {Promise<number>}
 */
const count = async (sql, ...args) => (await w.db.prepare(sql).bind(...args).first()).n;

/**
 * An account with two sessions, preferences and (if the id allows) a cached profile; returns
 * the session ids.
 * @param {string} userId
 */
async function account(userId) {
  const ids = [];
  for (let i = 0; i < 2; i++) {
    ids.push((await w.mintSession({ userId, email: `${i}.${userId.replace(/@/g, ".")}@example.com` })).id);
  }
  const p = await w.patchPrefs(ids[0], { theme: "dark", language: "nl" });
  expect(p.status, p.text).toBe(200);
  if (/^[A-Za-z0-9_-]{1,64}$/.test(userId)) {
    expect((await w.putUser(userId, { name: "Ann" })).status).toBe(200);
    const cached = await w.getUser(userId);
    expect(cached.status).toBe(200);
    expect(await w.kv.get(`user:${userId}`)).not.toBeNull();
  }
  expect(await w.kv.get(`prefs:${userId}`)).not.toBeNull();
  for (const id of ids) expect(await w.kv.get(`session:${sha256(id)}`)).not.toBeNull();
  return ids;
}

/**
 * Everything stored under `userId`, in both stores.
 * @param {string} userId
 * @param {string[]} ids its session ids
 */
async function stored(userId, ids) {
  return {
    sessionRows: await w.sessionCount(userId),
    prefsRows: await count("SELECT COUNT(*) AS n FROM preferences WHERE user_id = ?", userId),
    userRows: await count("SELECT COUNT(*) AS n FROM users WHERE id = ?", userId),
    sessionCopies: (await Promise.all(ids.map((id) => w.kv.get(`session:${sha256(id)}`)))).filter(Boolean).length,
    prefsCopy: await w.kv.get(`prefs:${userId}`),
    profileCopy: await w.kv.get(`user:${userId}`),
  };
}
const GONE = { sessionRows: 0, prefsRows: 0, userRows: 0, sessionCopies: 0, prefsCopy: null, profileCopy: null };

describe("DELETE /admin/users/:id", () => {
  it("removes the user record, every session, the preferences and the cached profile", async () => {
    const userId = uid("gone");
    const ids = await account(userId);
    const bystander = uid("stays");
    const theirs = await account(bystander);

    const r = await w.deleteUser(userId);
    expect(r.status).toBe(204);
    expect(r.text).toBe("");
    expect(r.res.headers.get("Cache-Control")).toBe("no-store");
    expect(timing(r.res).deletes).toBeGreaterThanOrEqual(4);

    expect(await stored(userId, ids)).toEqual(GONE);
    for (const id of ids) {
      expectError(expect, await w.getCurrentSession(id), 401, "unauthorized");
      expectError(expect, await w.getPrefs(id), 401, "unauthorized");
    }
    expectError(expect, await w.getUser(userId), 404, "not_found");
    const list = await w.listSessions({ userId });
    expect(list.body.sessions).toEqual([]);

    // The bystander keeps everything.
    const kept = await stored(bystander, theirs);
    expect(kept).toMatchObject({ sessionRows: 2, prefsRows: 1, userRows: 1, sessionCopies: 2 });
    expect((await w.getPrefs(theirs[0])).body.theme).toBe("dark");
  });

  it("answers a second DELETE the same and changes nothing", async () => {
    const userId = uid("twice");
    const ids = await account(userId);
    const first = await w.deleteUser(userId);
    const second = await w.deleteUser(userId);
    expect([first.status, second.status]).toEqual([204, 204]);
    expect(second.text).toBe("");
    expect(await stored(userId, ids)).toEqual(GONE);
    expect((await w.deleteUser(uid("never"))).status).toBe(204);
  });

  it("an id that cannot name a profile deletes sessions and preferences, and no profile", async () => {
    const userId = `${uid("mail")}@example.com`;
    const ids = await account(userId);
    const other = uid("profile");
    await w.putUser(other, { name: "Other" });
    const r = await w.deleteUser(encodeURIComponent(userId));
    expect(r.status).toBe(204);
    expect(await stored(userId, ids)).toEqual(GONE);
    expect((await w.getUser(other)).status).toBe(200);
  });

  it("a new session for the same id afterwards starts from nothing", async () => {
    const userId = uid("again");
    await account(userId);
    await w.deleteUser(userId);
    const minted = await w.createSession({ userId, email: "new@example.com" });
    expect(minted.status).toBe(201);
    const prefs = await w.getPrefs(minted.body.sessionId);
    expect(prefs.body).toEqual({ theme: "light", language: "en", notifications: true });
    expectError(expect, await w.getUser(userId), 404, "not_found");
  });

  describe("bad input changes nothing", () => {
    /** @type {string} */
    let userId;
    /** @type {string[]} */
    let ids;
    /** @type {Awaited<ReturnType<typeof stored>>} */
    let before;
    beforeAll(async () => {
      userId = uid("kept");
      ids = await account(userId);
      before = await stored(userId, ids);
    });

    /** @type {[string, import("../app.js").CallOptions | "session", number, string][]} */
    const cases = [
      ["no Authorization", {}, 401, "unauthorized"],
      ["a wrong admin token", { admin: "wrong-token" }, 401, "unauthorized"],
      ["a session token instead of the admin token", "session", 401, "unauthorized"],
    ];
    for (const [situation, opts, status, code] of cases) {
      it(`${situation}: ${status} ${code}`, async () => {
        const o = opts === "session" ? { session: ids[0] } : opts;
        expectError(expect, await w.deleteUser(userId, { admin: false, ...o }), status, code);
        expect(await stored(userId, ids)).toEqual(before);
      });
    }

    it("an id with characters no account has: 400 naming the id", async () => {
      for (const bad of ["a%20b", "a%2Fb", "%C3%A4", "x".repeat(129)]) {
        const body = expectError(expect, await w.deleteUser(bad), 400, "invalid_request");
        expect(body.error, bad).toMatch(/^id/);
      }
      expect(await stored(userId, ids)).toEqual(before);
    });

    it("another method is 405 with Allow", async () => {
      const r = await w.json(`/admin/users/${userId}`, { method: "POST", admin: true, body: {} }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("PUT, DELETE");
      expect(await stored(userId, ids)).toEqual(before);
    });
  });
});
