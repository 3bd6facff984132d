// @ts-check
// User preferences without lost updates. GET/PATCH /prefs for the session's user;
// D1 (`preferences`) is the authority, KV (`prefs:<userId>`) the fast read path.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, expectError, timing } from "../helpers.js";
import { HIGH, TestApp, spawnApp, uid } from "../app.js";

/** @typedef {import("../app.js").Prefs} Prefs */
/** @typedef {import("../app.js").CallOptions} CallOptions */

/** @type {Prefs} */
const DEFAULTS = { theme: "light", language: "en", notifications: true };

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: HIGH });
});
afterAll(() => w?.dispose());

/**
 * A fresh user id, unique within the run.
 * @param {string} [tag]
 */
const newUser = (tag = "u") => uid(`prefs-${tag}`);

/**
 * Mints a session for `userId` and returns its id.
 * @param {string} userId
 */
async function session(userId) {
  return (await w.mintSession({ userId })).id;
}

/** @param {string} tag */
async function newSession(tag) {
  const userId = newUser(tag);
  return { userId, sid: await session(userId) };
}

/** @param {string | null} sid @param {CallOptions} [opts] */
const getPrefs = (sid, opts) => w.getPrefs(sid, opts);
/** @param {string | null} sid @param {unknown} body @param {CallOptions} [opts] */
const patchPrefs = (sid, body, opts) => w.patchPrefs(sid, body, opts);

/**
 * The D1 row of a user, or null.
 * @param {string} userId
 */
const row = (userId) => w.prefsRow(userId);

/**
 * The raw text of the KV copy, or null.
 * @param {string} userId
 * @returns {Promise<string | null>}
 */
const kvText = (userId) => w.kv.get(`prefs:${userId}`);

/** @param {string} userId */
const kvEnvelope = (userId) => w.kvJson(`prefs:${userId}`);

/**
 * D1 row → the preferences it stands for (NULL column = default).
 * @param {any} r
 */
function rowPrefs(r) {
  return {
    theme: r.theme ?? DEFAULTS.theme,
    language: r.language ?? DEFAULTS.language,
    notifications: r.notifications === null ? DEFAULTS.notifications : r.notifications === 1,
  };
}

/**
 * Polls until KV holds exactly `prefs`; returns the last envelope seen.
 * @param {string} userId @param {object} prefs @param {number} [ms]
 * @returns {Promise<any>}
 */
async function kvEventually(userId, prefs, ms = 5000) {
  /** @type {any} */
  let last = null;
  await eventually(async () => {
    last = await kvEnvelope(userId);
    return last !== null && JSON.stringify(sortKeys(last.prefs)) === JSON.stringify(sortKeys(prefs));
  }, ms);
  return last;
}

/** @param {object} o */
function sortKeys(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Byte-for-byte stored state: the D1 row and the KV text.
 * @param {string} userId
 */
async function stored(userId) {
  return { row: JSON.stringify(await row(userId)), kv: await kvText(userId) };
}

/** @param {any} body */
function expectPrefsShape(body) {
  expect(Object.keys(body).sort()).toEqual(["language", "notifications", "theme"]);
  expect(["light", "dark"]).toContain(body.theme);
  expect(typeof body.language).toBe("string");
  expect(typeof body.notifications).toBe("boolean");
}

describe("GET /prefs", () => {
  it("a user who never set anything gets the defaults", async () => {
    const { sid } = await newSession("defaults");
    const r = await getPrefs(sid);
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.body).toEqual(DEFAULTS);
  });

  it("responses carry Cache-Control: no-store (GET, PATCH and errors)", async () => {
    const { sid } = await newSession("nostore");
    const g = await getPrefs(sid);
    expect(g.status).toBe(200);
    expect(g.res.headers.get("Cache-Control")).toBe("no-store");
    const p = await patchPrefs(sid, { theme: "dark" });
    expect(p.status).toBe(200);
    expect(p.res.headers.get("Cache-Control")).toBe("no-store");
    const bad = await patchPrefs(sid, { theme: "blue" });
    expect(bad.status).toBe(400);
    expect(bad.res.headers.get("Cache-Control")).toBe("no-store");
    const anon = await getPrefs(null);
    expect(anon.status).toBe(401);
    expect(anon.res.headers.get("Cache-Control")).toBe("no-store");
  });

  it("the session cookie works as well as the Bearer header", async () => {
    const { sid } = await newSession("cookie");
    expect((await patchPrefs(sid, { language: "nl-BE" })).status).toBe(200);
    const r = await getPrefs(null, { headers: { Cookie: `__Host-session=${sid}` } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ ...DEFAULTS, language: "nl-BE" });
  });

  it("another method on /prefs is 405 with Allow", async () => {
    const { sid } = await newSession("405");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await w.json("/prefs", { method, session: sid, body: { theme: "dark" } }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      const allow = (r.res.headers.get("Allow") ?? "").split(",").map((s) => s.trim()).sort();
      expect(allow).toEqual(["GET", "PATCH"]);
    }
  });
});

describe("PATCH /prefs", () => {
  it("returns the full preferences, and a later GET sees the change (D1 row and KV too)", async () => {
    const { userId, sid } = await newSession("patch");
    let r = await patchPrefs(sid, { theme: "dark" });
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.body).toEqual({ ...DEFAULTS, theme: "dark" });

    r = await getPrefs(sid);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ...DEFAULTS, theme: "dark" });

    r = await patchPrefs(sid, { language: "fr", notifications: false });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ theme: "dark", language: "fr", notifications: false });
    expect((await getPrefs(sid)).body).toEqual({ theme: "dark", language: "fr", notifications: false });

    const d1 = await row(userId);
    expect(d1).not.toBeNull();
    expect(rowPrefs(d1)).toEqual({ theme: "dark", language: "fr", notifications: false });
    expect(d1.version).toBeGreaterThanOrEqual(2);

    const env = await kvEventually(userId, { theme: "dark", language: "fr", notifications: false });
    expect(env?.prefs).toEqual({ theme: "dark", language: "fr", notifications: false });
    expect(env.version).toBe(d1.version);
  });

  it("PATCH back to a default value is stored and returned", async () => {
    const { sid } = await newSession("back");
    expect((await patchPrefs(sid, { theme: "dark", notifications: false })).status).toBe(200);
    const r = await patchPrefs(sid, { theme: "light", notifications: true });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(DEFAULTS);
    expect((await getPrefs(sid)).body).toEqual(DEFAULTS);
  });

  it("an empty PATCH {} is a no-op 200 with the current prefs that writes nothing to D1", async () => {
    // A user with no row: still no row afterwards.
    const fresh = await newSession("empty-fresh");
    let r = await patchPrefs(fresh.sid, {});
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(DEFAULTS);
    expect(await row(fresh.userId)).toBeNull();

    // A user with a row: the row stays byte-for-byte (same version, same updated_at).
    const { userId, sid } = await newSession("empty");
    expect((await patchPrefs(sid, { language: "de-CH" })).status).toBe(200);
    const before = JSON.stringify(await row(userId));
    r = await patchPrefs(sid, {});
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ ...DEFAULTS, language: "de-CH" });
    expect(JSON.stringify(await row(userId))).toBe(before);
    const count = await w.db
      .prepare("SELECT COUNT(*) AS n FROM preferences WHERE user_id = ?")
      .bind(fresh.userId)
      .first();
    expect(count.n).toBe(0);
  });

  it("accepts valid BCP 47 tags (en-US, zh-Hant-TW, es-419, sr-Latn-RS, de-CH-1901, fil)", async () => {
    const { userId, sid } = await newSession("bcp47");
    for (const tag of ["en-US", "zh-Hant-TW", "es-419", "sr-Latn-RS", "de-CH-1901", "fil"]) {
      const r = await patchPrefs(sid, { language: tag });
      expect(r.status, `${tag}: ${r.text}`).toBe(200);
      expect(r.body.language).toBe(tag);
      expect((await getPrefs(sid)).body.language).toBe(tag);
      expect((await row(userId)).language).toBe(tag);
    }
  });

  it("accepts every well-formed RFC 5646 tag: extended language, private use, grandfathered", async () => {
    const { userId, sid } = await newSession("bcp47-all");
    const tags = ["zh-yue", "zh-min-nan", "zh-cmn-Hans-CN", "x-private", "i-klingon", "en-GB-oed", "sgn-CH-DE", "art-lojban", "en-US-u-ca-gregory"];
    for (const tag of tags) {
      const r = await patchPrefs(sid, { language: tag });
      expect(r.status, `${tag}: ${r.text}`).toBe(200);
      expect(r.body.language).toBe(tag);
      expect((await row(userId)).language).toBe(tag);
    }
  });

  it("refuses malformed tags with 400 invalid_request naming language, and stores nothing", async () => {
    const { userId, sid } = await newSession("bcp47-bad");
    for (const tag of ["zh-yue-cmn-nan-min", "x", "x-", "i-notgrandfathered", "en-u", "en-GB-oed-x", "en--US", "en_US", "abcdefghi"]) {
      const r = await patchPrefs(sid, { language: tag });
      expectError(expect, r, 400, "invalid_request");
      expect(r.body.error, tag).toMatch(/language/);
    }
    expect(await row(userId)).toBeNull();
  });
});

describe("no lost updates", () => {
  it("20 concurrent PATCHes of different fields all survive, 5 rounds with different users", async () => {
    for (let round = 0; round < 5; round++) {
      const { userId, sid } = await newSession(`conc${round}`);
      // Odd rounds start from a non-default state, so every field really changes.
      let start = DEFAULTS;
      let target = { theme: "dark", language: `fr-CA`, notifications: false };
      if (round % 2 === 1) {
        start = { theme: "dark", language: "pt-BR", notifications: false };
        target = { theme: "light", language: "ja", notifications: true };
        const s = await patchPrefs(sid, start);
        expect(s.status, s.text).toBe(200);
        expect(s.body).toEqual(start);
      }
      const versionBefore = (await row(userId))?.version ?? 0;

      // 20 PATCHes: each sets one field (some set two) to its target value.
      /** @type {Record<string, unknown>[]} */
      const bodies = Array.from({ length: 20 }, (_, i) => {
        switch (i % 4) {
          case 0:
            return { theme: target.theme };
          case 1:
            return { language: target.language };
          case 2:
            return { notifications: target.notifications };
          default:
            return i % 8 === 3
              ? { theme: target.theme, notifications: target.notifications }
              : { language: target.language };
        }
      });
      const results = await Promise.all(bodies.map((b) => patchPrefs(sid, b)));
      results.forEach((r, i) => {
        expect(r.status, `round ${round} patch ${i}: ${r.text}`).toBe(200);
        expectPrefsShape(r.body);
        // Every response reflects at least its own change.
        for (const [k, v] of Object.entries(bodies[i])) expect(r.body[k]).toBe(v);
      });

      const g = await getPrefs(sid);
      expect(g.status).toBe(200);
      expect(g.body, `round ${round} GET`).toEqual(target);

      const d1 = await row(userId);
      expect(rowPrefs(d1), `round ${round} D1 row`).toEqual(target);
      expect(d1.theme).toBe(target.theme);
      expect(d1.language).toBe(target.language);
      expect(d1.notifications).toBe(target.notifications ? 1 : 0);
      // Each acknowledged write increased the version.
      expect(d1.version - versionBefore).toBeGreaterThanOrEqual(20);

      const env = await kvEventually(userId, target);
      expect(env?.prefs, `round ${round} KV`).toEqual(target);
    }
  });

  it("alternating values on one field never undo a concurrent change of another", async () => {
    const { userId, sid } = await newSession("disjoint");
    const reqs = [];
    for (let i = 0; i < 10; i++) {
      reqs.push(patchPrefs(sid, { theme: i % 2 === 0 ? "dark" : "light" }));
      reqs.push(patchPrefs(sid, { language: "it" }));
    }
    const rs = await Promise.all(reqs);
    rs.forEach((r) => expect(r.status, r.text).toBe(200));
    const mid = rowPrefs(await row(userId));
    expect(mid.language).toBe("it");
    expect(mid.notifications).toBe(true);
    // Then fix the alternating field: the final state is known.
    const final = await patchPrefs(sid, { theme: "dark" });
    expect(final.status).toBe(200);
    expect(final.body).toEqual({ theme: "dark", language: "it", notifications: true });
    expect(rowPrefs(await row(userId))).toEqual({ theme: "dark", language: "it", notifications: true });
    expect((await getPrefs(sid)).body).toEqual({ theme: "dark", language: "it", notifications: true });
  });

  it("a burst of PATCHes for one user is all 200 and KV eventually holds the final state", async () => {
    const { userId, sid } = await newSession("burst");
    // Sequential, as fast as possible, alternating values: final state is known.
    const seq = [];
    for (let i = 0; i < 15; i++) {
      seq.push(
        await patchPrefs(sid, {
          theme: i % 2 === 0 ? "dark" : "light",
          language: ["en-GB", "fr", "es-419"][i % 3],
          notifications: i % 2 === 1,
        }),
      );
    }
    seq.forEach((r, i) => expect(r.status, `burst ${i}: ${r.text}`).toBe(200));
    // i = 14: dark, es-419, false
    const mid = { theme: "dark", language: "es-419", notifications: false };
    expect(seq[14].body).toEqual(mid);
    expect((await getPrefs(sid)).body).toEqual(mid);

    // Then a concurrent burst of one-field PATCHes on top.
    const conc = await Promise.all([
      ...Array.from({ length: 10 }, () => patchPrefs(sid, { theme: "light" })),
      ...Array.from({ length: 10 }, () => patchPrefs(sid, { notifications: true })),
    ]);
    conc.forEach((r, i) => expect(r.status, `concurrent ${i}: ${r.text}`).toBe(200));
    const final = { theme: "light", language: "es-419", notifications: true };

    // The isolate serves its newest acknowledged write at once.
    const g = await getPrefs(sid);
    expect(g.status).toBe(200);
    expect(g.body).toEqual(final);
    const d1 = await row(userId);
    expect(rowPrefs(d1)).toEqual(final);
    expect(d1.version).toBeGreaterThanOrEqual(35);

    // KV catches up within 5 s, with the version of the D1 row.
    const env = await kvEventually(userId, final, 5000);
    expect(env?.prefs).toEqual(final);
    expect(env.version).toBe((await row(userId)).version);
  });
});

describe("validation: a rejected PATCH changes nothing", () => {
  /** @type {[string, unknown, number, string, string?][]} */
  const invalid = [
    ["theme \"blue\"", { theme: "blue" }, 400, "invalid_request"],
    ["theme null", { theme: null }, 400, "invalid_request"],
    ["theme \"Dark\"", { theme: "Dark" }, 400, "invalid_request"],
    ["theme 1", { theme: 1 }, 400, "invalid_request"],
    ["language 5", { language: 5 }, 400, "invalid_request"],
    ["language null", { language: null }, 400, "invalid_request"],
    ["language \"not a tag\"", { language: "not a tag" }, 400, "invalid_request"],
    ["language \"\"", { language: "" }, 400, "invalid_request"],
    ["language \"en_US\"", { language: "en_US" }, 400, "invalid_request"],
    ["language \"en-\"", { language: "en-" }, 400, "invalid_request"],
    ["language too long", { language: "a".repeat(300) }, 400, "invalid_request"],
    ["notifications \"yes\"", { notifications: "yes" }, 400, "invalid_request"],
    ["notifications 1", { notifications: 1 }, 400, "invalid_request"],
    ["notifications null", { notifications: null }, 400, "invalid_request"],
    ["unknown field", { fontSize: 3 }, 400, "invalid_request", "fontSize"],
    ["unknown field next to a valid one", { theme: "light", fontSize: 3 }, 400, "invalid_request", "fontSize"],
    ["valid field next to a bad one", { theme: "light", language: 5 }, 400, "invalid_request"],
    ["another user's id in the body", { userId: "someone-else", theme: "light" }, 400, "invalid_request", "userId"],
    ["array body", [{ theme: "light" }], 400, "invalid_request"],
    ["string body", '"light"', 400, "invalid_request"],
    ["null body", "null", 400, "invalid_request"],
    ["malformed JSON", '{"theme": "light"', 400, "invalid_json"],
    ["not JSON", "theme=light", 400, "invalid_json"],
    ["empty body", "", 400, "invalid_json"],
    [
      "body > 64 KiB",
      JSON.stringify({ theme: "light", language: "en", pad: "x".repeat(70 * 1024) }),
      413,
      "payload_too_large",
    ],
    [
      "body > 64 KiB of whitespace around a valid patch",
      `${" ".repeat(65 * 1024)}{"theme":"light"}`,
      413,
      "payload_too_large",
    ],
  ];

  it("bad bodies give 400/413 and leave the D1 row and KV copy byte-for-byte unchanged", async () => {
    const { userId, sid } = await newSession("invalid");
    const state = { theme: "dark", language: "sv-SE", notifications: false };
    const ok = await patchPrefs(sid, state);
    expect(ok.status).toBe(200);
    // Let the KV copy settle, so the snapshot is the final stored state.
    expect((await kvEventually(userId, state))?.prefs).toEqual(state);
    const before = await stored(userId);
    expect(before.row).not.toBe("null");
    expect(before.kv).not.toBeNull();

    for (const [name, body, status, code, names] of invalid) {
      const r = await patchPrefs(sid, body, { headers: typeof body === "string" ? { "Content-Type": "application/json" } : {} });
      const err = expectError(expect, r, status, code);
      if (names) expect(err.error, name).toContain(names);
      expect(await stored(userId), `after ${name}`).toEqual(before);
    }
    const g = await getPrefs(sid);
    expect(g.body).toEqual(state);
    // No deferred write either. A refresh of the KV copy runs after the response (waitUntil),
    // once the key's write window opens (a second after its last write). Instead of waiting a
    // while, wait for a sentinel that takes the same path later: another user's second PATCH
    // within a second, whose copy only deferred work writes, once that user's window opens,
    // which is after this user's. Once the sentinel's copy has landed, any refresh the
    // rejected PATCHes had scheduled would have run before it.
    const sentinel = await newSession("sentinel");
    expect((await patchPrefs(sentinel.sid, { theme: "dark" })).status).toBe(200);
    const deferred = await patchPrefs(sentinel.sid, { language: "fi" });
    expect(deferred.status).toBe(200);
    expect((await kvEventually(sentinel.userId, deferred.body))?.prefs).toEqual(deferred.body);
    expect(await stored(userId)).toEqual(before);
  });

  it("a rejected PATCH for a user with no row creates no row", async () => {
    const { userId, sid } = await newSession("invalid-fresh");
    for (const body of [{ theme: "blue" }, { language: 5 }, { notifications: "yes" }, { x: 1 }]) {
      expectError(expect, await patchPrefs(sid, body), 400, "invalid_request");
    }
    expect(await row(userId)).toBeNull();
    expect(await kvText(userId)).toBeNull();
  });

  it("the error message names the bad field", async () => {
    const { sid } = await newSession("msg");
    for (const field of ["theme", "language", "notifications"]) {
      const err = expectError(expect, await patchPrefs(sid, { [field]: [] }), 400, "invalid_request");
      expect(err.error).toContain(field);
    }
  });
});

describe("auth", () => {
  it("no session, an unknown session and a malformed token: 401, and nothing is written", async () => {
    const before = await w.db.prepare("SELECT COUNT(*) AS n FROM preferences").first();
    /** @type {CallOptions[]} */
    const credentials = [
      {},
      { session: "A".repeat(43) },
      { session: "not-a-session" },
      { headers: { Cookie: "__Host-session=nope" } },
      { headers: { Authorization: "Basic Zm9vOmJhcg==" } },
    ];
    for (const opts of credentials) {
      expectError(expect, await getPrefs(null, opts), 401, "unauthorized");
      expectError(expect, await patchPrefs(null, { theme: "dark" }, opts), 401, "unauthorized");
    }
    const after = await w.db.prepare("SELECT COUNT(*) AS n FROM preferences").first();
    expect(after.n).toBe(before.n);
  });

  it("the admin token is not a session", async () => {
    expectError(expect, await getPrefs(null, { admin: true }), 401, "unauthorized");
  });

  it("a revoked session gets 401 on GET and PATCH, and its PATCH writes nothing", async () => {
    const { userId, sid } = await newSession("revoked");
    expect((await patchPrefs(sid, { theme: "dark" })).status).toBe(200);
    await kvEventually(userId, { ...DEFAULTS, theme: "dark" });
    const del = await w.logout(sid);
    expect(del.status).toBe(204);
    const before = await stored(userId);
    expectError(expect, await getPrefs(sid), 401, "unauthorized");
    expectError(expect, await patchPrefs(sid, { theme: "light" }), 401, "unauthorized");
    expect(await stored(userId)).toEqual(before);

    // Revoke-all through the admin route too.
    const other = await newSession("revoked-all");
    expect((await getPrefs(other.sid)).status).toBe(200);
    const ra = await w.revokeUserSessions(encodeURIComponent(other.userId));
    expect(ra.status, ra.text).toBe(200);
    expectError(expect, await getPrefs(other.sid), 401, "unauthorized");
    expectError(expect, await patchPrefs(other.sid, { theme: "dark" }), 401, "unauthorized");
    expect(await row(other.userId)).toBeNull();
  });

  it("one user cannot read or change another's preferences", async () => {
    const a = await newSession("A");
    const b = await newSession("B");
    const aState = { theme: "dark", language: "nl", notifications: false };
    expect((await patchPrefs(a.sid, aState)).body).toEqual(aState);
    await kvEventually(a.userId, aState);
    const aBefore = await stored(a.userId);

    // B writes its own prefs: A's row and KV copy are untouched.
    const bState = { theme: "light", language: "ko-KR", notifications: true };
    const rb = await patchPrefs(b.sid, { language: "ko-KR" });
    expect(rb.status).toBe(200);
    expect(rb.body).toEqual(bState);
    // Trying to name A in the body or the query does not reach A.
    expectError(expect, await patchPrefs(b.sid, { userId: a.userId, theme: "light" }), 400, "invalid_request");
    // (A query parameter the operations do not declare.)
    const q = await getPrefs(b.sid, { query: `userId=${encodeURIComponent(a.userId)}` });
    if (q.status === 200) expect(q.body).toEqual(bState);
    else expect(q.status).toBeGreaterThanOrEqual(400);
    const qp = await patchPrefs(b.sid, { notifications: true }, { query: `userId=${encodeURIComponent(a.userId)}` });
    if (qp.status === 200) expect(qp.body).toEqual(bState);

    expect(await stored(a.userId)).toEqual(aBefore);
    expect(rowPrefs(await row(b.userId))).toEqual(bState);

    // Each GET shows only its own user's values.
    expect((await getPrefs(a.sid)).body).toEqual(aState);
    expect((await getPrefs(b.sid)).body).toEqual(bState);

    // Two sessions of the same user share the same prefs.
    const a2 = await session(a.userId);
    expect((await getPrefs(a2)).body).toEqual(aState);
  });
});

describe("KV read path", () => {
  it("a KV miss falls back to D1 and writes the copy back to KV", async () => {
    const { userId, sid } = await newSession("kvmiss");
    const state = { theme: "dark", language: "it", notifications: false };
    expect((await patchPrefs(sid, state)).status).toBe(200);
    expect((await kvEventually(userId, state))?.prefs).toEqual(state);

    // Change the authority directly and drop the KV copy: GET must read D1.
    const v = (await row(userId)).version;
    await w.db
      .prepare("UPDATE preferences SET language = 'pl', version = ? WHERE user_id = ?")
      .bind(v + 1, userId)
      .run();
    await w.kv.delete(`prefs:${userId}`);
    expect(await kvText(userId)).toBeNull();

    const r = await getPrefs(sid);
    expect(r.status, r.text).toBe(200);
    const fromD1 = { ...state, language: "pl" };
    expect(r.body).toEqual(fromD1);
    expect(timing(r.res).queries).toBeGreaterThanOrEqual(1);

    const env = await kvEventually(userId, fromD1);
    expect(env?.prefs).toEqual(fromD1);
    expect(env.version).toBe(v + 1);

    // Once written back, GET is served from KV (no D1 query needed for the prefs).
    const again = await getPrefs(sid);
    expect(again.body).toEqual(fromD1);
    expect(timing(again.res).queries).toBe(0);
  });

  it("a KV miss for a user with no row gives the defaults and creates no D1 row", async () => {
    const { userId, sid } = await newSession("kvmiss-fresh");
    const r = await getPrefs(sid);
    expect(r.status).toBe(200);
    expect(r.body).toEqual(DEFAULTS);
    expect(await row(userId)).toBeNull();
  });
});
