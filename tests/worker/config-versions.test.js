// @ts-check
// The versioned, audited config: every admin write is a new version in D1 (the authority)
// then KV (the read path); ETags of versions, If-Match, concurrent admins, the history and
// rollback, checked in the built Worker in workerd with real local KV and D1.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, DEFAULTS, expectError, publicView, sleep, timing } from "../helpers.js";
import { HIGH, TestApp, spawnApp } from "../app.js";

const SEED = { ...HIGH, featureFlags: { seeded: true } };
/** src/domain/config.rs CACHE_MS: how long an isolate trusts its copy. */
const CACHE_MS = 5_000;

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: SEED });
});
afterAll(() => w?.dispose());

/**
 * A page of GET /admin/config/history, checked to be 200.
 * @param {TestApp} env @param {{ limit?: number | string, cursor?: string }} [query]
 */
const history = async (env, query = {}) => {
  const r = await env.getConfigHistory(query);
  expect(r.status, r.text).toBe(200);
  return r.body;
};
/** The If-Match header as request options. @param {string} ifMatch */
const ifMatch = (ifMatch) => ({ headers: { "If-Match": ifMatch } });
/** @param {TestApp} env @returns {Promise<{ version: number | null, action: string }[]>} */
const rows = (env) => env.db.prepare("SELECT version, action FROM config_history ORDER BY seq").all().then((/** @type {any} */ r) => r.results);
/** @param {TestApp} env */
const kvEntry = async (env) => {
  const { value, metadata } = await env.kv.getWithMetadata("config:app");
  return { config: JSON.parse(value), version: metadata?.version ?? 0 };
};
/** @param {import("../helpers.js").Answer} r */
const etag = (r) => r.res.headers.get("ETag");

/**
 * Runs `fn` on a fresh Worker whose KV holds SEED and whose history is empty.
 * @param {(e: TestApp) => Promise<void>} fn
 */
async function fresh(fn) {
  const e = await spawnApp({ seedConfig: SEED });
  try {
    await fn(e);
  } finally {
    await e.dispose();
  }
}

describe("versions and ETags", () => {
  it("a seeded config is version 0 until the first write, which merges into it as version 1", async () => {
    await fresh(async (e) => {
      const get = await e.getConfig();
      expect(etag(get)).toBe('"0"');
      const a = await e.getAdminConfig();
      expect(a.status, a.text).toBe(200);
      expect(a.res.headers.get("ETag")).toBe('"0"');
      expect(a.body).toEqual({ ...DEFAULTS, ...SEED });
      expect(a.res.headers.get("Cache-Control")).toMatch(/no-store/);

      const p = await e.patchConfig({ featureFlags: { mine: true } }, ifMatch('"0"'));
      expect(p.status, p.text).toBe(200);
      expect(p.res.headers.get("ETag")).toBe('"1"');
      expect(p.body.featureFlags).toEqual({ seeded: true, mine: true });
      expect(await kvEntry(e)).toEqual({ config: p.body, version: 1 });
      expect(etag(await e.getConfig())).toBe('"1"');
      expect(etag(await e.getAdminConfig())).toBe('"1"');
      const h = await history(e);
      expect(h.entries).toHaveLength(1);
      expect(h.entries[0]).toMatchObject({ version: 1, outcome: "applied", action: "patch", baseVersion: 0, change: { featureFlags: { mine: true } } });
    });
  });

  it("every successful write (PUT, PATCH, rollback) takes the next version", async () => {
    await fresh(async (e) => {
      const tags = [];
      for (const write of [
        () => e.replaceConfig({ featureFlags: { a: true } }),
        () => e.patchConfig({ featureFlags: { b: true } }),
        () => e.rollbackConfig({ version: 1 }),
        () => e.replaceConfig({}),
      ]) {
        const r = await write();
        expect(r.status, r.text).toBe(200);
        tags.push(etag(r));
      }
      expect(tags).toEqual(['"1"', '"2"', '"3"', '"4"']);
      expect((await rows(e)).map((r) => r.action)).toEqual(["put", "patch", "rollback", "put"]);
    });
  });
});

describe("the isolate's copy, re-read every 5 s", () => {
  it("reads only KV's metadata while the version is its own, and the new document in the same read when it is newer", async () => {
    let log = "";
    // The config group strict (counted in D1): every KV read in Server-Timing is a config read.
    const e = await spawnApp({ seedConfig: { ...SEED, strictRateLimits: ["config"] }, onLog: (line) => (log += line) });
    try {
      expect((await e.patchConfig({ featureFlags: { a: true } })).status).toBe(200);
      // Past the copy's 5 s: a re-read of the metadata (the value's stream cancelled unread).
      await sleep(CACHE_MS + 100);
      const same = await e.getConfig();
      expect([etag(same), same.body.featureFlags.a, timing(same.res).reads]).toEqual(['"1"', true, 1]);
      // Another isolate's write reaches this location's KV as version 2.
      const { value } = await e.kv.getWithMetadata("config:app");
      const next = { ...JSON.parse(value), featureFlags: { a: false, b: true } };
      await e.kv.put("config:app", JSON.stringify(next), { metadata: { version: 2 } });
      await sleep(CACHE_MS + 100);
      const newer = await e.getConfig();
      expect([etag(newer), newer.body.featureFlags, timing(newer.res).reads]).toEqual(['"2"', { a: false, b: true }, 1]);
      expect(log, "no failed or refused read").not.toMatch(/config read failed|does not validate/);
    } finally {
      await e.dispose();
    }
  });
});

describe("concurrent admins", () => {
  it("two PATCHes with the same If-Match: exactly one succeeds, the other gets 412, nothing is lost", async () => {
    await fresh(async (e) => {
      const base = await e.replaceConfig({ featureFlags: { base: true } });
      const tag = String(etag(base));
      const [x, y] = await Promise.all([
        e.patchConfig({ featureFlags: { alice: true } }, ifMatch(tag)),
        e.patchConfig({ featureFlags: { bob: true } }, ifMatch(tag)),
      ]);
      expect([x.status, y.status].sort()).toEqual([200, 412]);
      const [won, lost] = x.status === 200 ? [x, y] : [y, x];
      expectError(expect, lost, 412, "precondition_failed");
      expect(etag(lost)).toBe('"2"');
      expect(etag(won)).toBe('"2"');
      const loser = won === x ? "bob" : "alice";
      const winner = won === x ? "alice" : "bob";
      expect((await e.getConfig()).body.featureFlags).toEqual({ base: true, [winner]: true });

      // The loser re-reads and retries on the current version: nothing is lost.
      const current = String(etag(await e.getAdminConfig()));
      const retry = await e.patchConfig({ featureFlags: { [loser]: true } }, ifMatch(current));
      expect(retry.status, retry.text).toBe(200);
      expect(retry.body.featureFlags).toEqual({ base: true, alice: true, bob: true });

      const h = await history(e);
      expect(h.entries.map((/** @type {any} */ x) => [x.version, x.outcome])).toEqual([
        [3, "applied"],
        [null, "refused"],
        [2, "applied"],
        [1, "applied"],
      ]);
      expect(h.entries[1]).toMatchObject({ action: "patch", change: { featureFlags: { [loser]: true } } });
    });
  });

  it("concurrent PATCHes without If-Match are all applied, each as its own version", async () => {
    await fresh(async (e) => {
      const names = ["p1", "p2", "p3", "p4", "p5"];
      const results = await Promise.all(names.map((n) => e.patchConfig({ featureFlags: { [n]: true } })));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      const all = { seeded: true, p1: true, p2: true, p3: true, p4: true, p5: true };
      expect((await e.getConfig()).body.featureFlags).toEqual(all);
      const final = await e.getAdminConfig();
      expect(final.body.featureFlags).toEqual(all);
      const versions = results.map((r) => Number(JSON.parse(String(etag(r))))).sort();
      expect(versions).toEqual([1, 2, 3, 4, 5]);
      expect(await kvEntry(e)).toEqual({ config: final.body, version: 5 });
    });
  });
});

describe("history and rollback", () => {
  it("rollback restores an earlier flag set as a new version", async () => {
    await fresh(async (e) => {
      const early = { checkout: { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 10, off: 90 } } };
      const v1 = await e.replaceConfig({ ...HIGH, featureFlags: early });
      expect(v1.status, v1.text).toBe(200);
      await e.replaceConfig({ ...HIGH, featureFlags: { other: false } });
      const back = await e.rollbackConfig({ version: 1 }, ifMatch('"2"'));
      expect(back.status, back.text).toBe(200);
      expect(etag(back)).toBe('"3"');
      expect(back.body).toEqual(v1.body);
      expect((await e.getConfig()).body).toEqual(publicView(v1.body));
      const flag = await e.evaluateFlag("checkout", { context: { targetingKey: "u" } });
      expect(flag.body).toMatchObject({ reason: "SPLIT", metadata: { configVersion: 3 } });
      const h = await history(e, { limit: 1 });
      expect(h.entries[0]).toMatchObject({ version: 3, action: "rollback", baseVersion: 2, change: { version: 1 } });
    });
  });

  it("a PATCH of one flag in a large config stores that flag, not the config; rollback to it restores it", async () => {
    await fresh(async (e) => {
      /** @type {Record<string, unknown>} */
      const many = {};
      for (let i = 0; i < 2000; i++) many[`flag-${i}`] = { variants: { on: true, off: false }, defaultVariant: "off", rules: [{ when: { plan: { in: ["pro"] } }, variant: "on" }] };
      expect((await e.replaceConfig({ ...HIGH, featureFlags: many })).status).toBe(200);
      const two = await e.patchConfig({ featureFlags: { "flag-7": true } }, ifMatch('"1"'));
      expect(two.status, two.text).toBe(200);
      const three = await e.patchConfig({ featureFlags: { "flag-7": null } }, ifMatch('"2"'));
      expect(three.status, three.text).toBe(200);
      const sizes = await e.db.prepare("SELECT version, action, LENGTH(change) AS change, LENGTH(document) AS document FROM config_history ORDER BY version").all();
      const [put, ...patches] = /** @type {any[]} */ (sizes.results);
      // The PUT's change is its whole document (about 200 KB); the first version stores no copy of it.
      expect(put).toMatchObject({ version: 1, action: "put", document: null });
      expect(put.change).toBeGreaterThan(150_000);
      for (const p of patches) expect(p).toMatchObject({ action: "patch", document: null });
      for (const p of patches) expect(p.change).toBeLessThan(100);
      const back = await e.rollbackConfig({ version: 2 }, ifMatch('"3"'));
      expect(back.status, back.text).toBe(200);
      expect(back.body).toEqual(two.body);
      expect(back.body.featureFlags["flag-7"]).toBe(true);
      expect(Object.keys(back.body.featureFlags)).toHaveLength(2000);
    });
  });

  it("lists newest first in pages, with the actor (admin) and nothing derived from the token", async () => {
    await fresh(async (e) => {
      for (let i = 1; i <= 5; i++) await e.replaceConfig({ cacheTtlSeconds: i });
      /** @param {{ entries: { version: number }[] }} page */
      const versions = (page) => page.entries.map((x) => x.version);
      const p1 = await history(e, { limit: 2 });
      expect(versions(p1)).toEqual([5, 4]);
      expect(p1.listComplete).toBe(false);
      const p2 = await history(e, { limit: 2, cursor: p1.cursor });
      expect(versions(p2)).toEqual([3, 2]);
      const p3 = await history(e, { limit: 2, cursor: p2.cursor });
      expect(p3).toMatchObject({ listComplete: true, cursor: null });
      expect(versions(p3)).toEqual([1]);
      const all = await history(e, { limit: "", cursor: "" });
      expect(all.entries).toHaveLength(5);
      for (const entry of all.entries) {
        expect(entry.actor).toBe("admin");
        expect(typeof entry.at).toBe("number");
      }
      const stored = JSON.stringify(await e.db.prepare("SELECT * FROM config_history").all());
      expect(stored).not.toContain(ADMIN_TOKEN);
    });
  });
});

describe("bad input changes nothing", () => {
  /**
   * Runs `fn`, then checks that neither the history nor KV changed.
   * @param {TestApp} env @param {() => Promise<void>} fn
   */
  async function unchanged(env, fn) {
    const before = [await rows(env), await kvEntry(env)];
    await fn();
    expect([await rows(env), await kvEntry(env)]).toEqual(before);
  }

  it("PUT and PATCH: a stale If-Match is 412 (and recorded), an invalid flag names its field", async () => {
    await w.replaceConfig(SEED);
    const refusedCount = async () => (await history(w)).entries.filter((/** @type {{ outcome: string }} */ x) => x.outcome === "refused").length;
    const before = await refusedCount();
    for (const tag of ['"999"', "W/\"1\"", '"x", "998"']) {
      const r = await w.patchConfig({ maintenanceMode: true }, ifMatch(tag));
      expectError(expect, r, 412, "precondition_failed");
    }
    expect(await refusedCount()).toBe(before + 3);
    await unchanged(w, async () => {
      /** @type {[object, string][]} */
      const cases = [
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "b" } } }, "featureFlags.x.defaultVariant"],
        [{ featureFlags: { x: { variants: { a: 1, b: 2 }, defaultVariant: "a", rollout: { a: 60, b: 60 } } } }, "featureFlags.x.rollout"],
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "a", rollout: { c: 100 } } } }, "featureFlags.x.rollout.c"],
        [{ featureFlags: { x: { variants: { a: "v".repeat(1100) }, defaultVariant: "a" } } }, "featureFlags.x.variants.a"],
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "a", rules: [{ when: { c: { like: 1 } }, variant: "a" }] } } }, "featureFlags.x.rules[0].when.c.like"],
      ];
      for (const [body, field] of cases) {
        for (const r of [await w.replaceConfig(body), await w.patchConfig(body)]) {
          expect(expectError(expect, r, 400, "invalid_request").error.startsWith(`${field}:`), r.text).toBe(true);
        }
      }
      expectError(expect, await w.patchConfig("{oops"), 400, "invalid_json");
      expectError(expect, await w.patchConfig({ maintenanceMode: true }, { admin: false }), 401, "unauthorized");
    });
  });

  it("a malformed If-Match is 400 naming the header, even when it spells the current version; nothing is written or recorded", async () => {
    const put = await w.replaceConfig(SEED);
    const current = String(JSON.parse(String(put.res.headers.get("ETag"))));
    const refused = async () => (await history(w)).entries.filter((/** @type {{ outcome: string }} */ x) => x.outcome === "refused").length;
    const before = await refused();
    await unchanged(w, async () => {
      for (const tag of [current, `"${current}`, `${current}"`, "garbage", `W/${current}`, `"${current}" "${current}"`, `"a b"`]) {
        for (const r of [
          await w.patchConfig({ maintenanceMode: true }, ifMatch(tag)),
          await w.replaceConfig(SEED, ifMatch(tag)),
          await w.rollbackConfig({ version: 1 }, ifMatch(tag)),
        ]) {
          const e = expectError(expect, r, 400, "invalid_request");
          expect(e.error.startsWith("If-Match: "), `${tag}: ${e.error}`).toBe(true);
        }
      }
    });
    expect(await refused()).toBe(before);
    const ok = await w.patchConfig({ cacheTtlSeconds: 301 }, ifMatch(`"x", "${current}"`));
    expect(ok.status, ok.text).toBe(200);
  });

  it("rollback: missing, malformed or unknown versions, no credentials", async () => {
    await unchanged(w, async () => {
      for (const body of [{}, { version: 0 }, { version: "1" }, { version: 1.5 }, { version: 1, extra: true }, [1]]) {
        expectError(expect, await w.rollbackConfig(body), 400, "invalid_request");
      }
      expectError(expect, await w.rollbackConfig("{"), 400, "invalid_json");
      expectError(expect, await w.rollbackConfig({ version: 999999 }), 404, "not_found");
      expectError(expect, await w.rollbackConfig({ version: 1 }, { admin: false }), 401, "unauthorized");
      expectError(expect, await w.rollbackConfig({ version: 1 }, { admin: "wrong" }), 401, "unauthorized");
      const get = await w.json("/admin/config/rollback", { admin: true }); // GET is not declared: the router's 405
      expectError(expect, get, 405, "method_not_allowed");
      expect(get.res.headers.get("Allow")).toBe("POST");
    });
  });

  it("history and GET /admin/config: bad limit or cursor, no credentials", async () => {
    await unchanged(w, async () => {
      for (const q of ["limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=0", "cursor=-3"]) {
        expectError(expect, await w.getConfigHistory(q), 400, "invalid_request");
      }
      expectError(expect, await w.getConfigHistory({}, { admin: false }), 401, "unauthorized");
      expectError(expect, await w.getAdminConfig({ admin: false }), 401, "unauthorized");
      const post = await w.json("/admin/config/history", { method: "POST", admin: true, body: {} }); // not declared: the router's 405
      expectError(expect, post, 405, "method_not_allowed");
    });
  });

  it("without D1 (the authority) writes are 503 and GET /config keeps serving KV", async () => {
    const e = await spawnApp({ d1: false, seedConfig: SEED });
    try {
      expectError(expect, await e.patchConfig({ maintenanceMode: true }), 503, "unavailable");
      expectError(expect, await e.rollbackConfig({ version: 1 }), 503, "unavailable");
      expectError(expect, await e.getConfigHistory(), 503, "unavailable");
      expect(await e.kvJson("config:app")).toEqual(SEED);
      expect((await e.getConfig()).body).toEqual(publicView({ ...DEFAULTS, ...SEED }));
    } finally {
      await e.dispose();
    }
  });
});

describe("a config written from outside the Worker (wrangler kv bulk put)", () => {
  // `wrangler kv bulk put seed-data.json` writes config:app without metadata: no version.
  const OUTSIDE = { ...HIGH, featureFlags: { fromOutside: true } };
  /** @param {TestApp} e */
  const putFromOutside = (e) => e.kv.put("config:app", JSON.stringify(OUTSIDE));
  /** @param {TestApp} e */
  const deepHealth = async (e) => {
    const r = await e.getHealth({ deep: 1 }, { admin: true });
    expect(r.status, r.text).toBe(200);
    return r.body;
  };

  it("after admin writes, a new isolate adopts it as the next version (actor seed), in D1 and KV", async () => {
    await fresh(async (e) => {
      // History exists (version 1), then the namespace is bulk-put: a new isolate reads it first.
      expect((await e.patchConfig({ featureFlags: { admin: true } })).status).toBe(200);
      const later = await spawnApp({ seedConfig: OUTSIDE });
      try {
        // Written two minutes ago: past KV's propagation bound, so the unversioned copy is newer.
        const head = await e.db.prepare("SELECT at - 120000 AS at, actor, action, base_version, change, document FROM config_history").first();
        await later.db.prepare("INSERT INTO config_history (version, at, actor, action, base_version, change, document) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)")
          .bind(...Object.values(/** @type {Record<string, unknown>} */ (head))).run();
        const before = await deepHealth(later);
        expect(before.status).toBe("degraded");
        expect([before.kv.configVersion, before.d1.configVersion, before.configInSync]).toEqual([0, 1, false]);

        // This isolate holds no versioned copy: it serves the document as it is (version 0)
        // and asks D1 after answering; the requests after that see the adopted version.
        const first = await later.getConfig();
        expect(first.body.featureFlags).toEqual({ fromOutside: true });
        expect(timing(first.res).queries, "D1 is asked off the request's path").toBe(0);
        await vi.waitFor(async () => expect(etag(await later.getConfig())).toBe('"2"'), { timeout: 5_000, interval: 20 });
        const get = await later.getConfig();
        expect(get.body.featureFlags).toEqual({ fromOutside: true });
        const admin = await later.getAdminConfig();
        expect(etag(admin)).toBe('"2"');
        expect(admin.body).toEqual({ ...DEFAULTS, ...OUTSIDE });
        expect((await history(later)).entries[0]).toMatchObject({ version: 2, actor: "seed", action: "put", baseVersion: 1, change: { ...DEFAULTS, ...OUTSIDE } });
        expect(await kvEntry(later)).toEqual({ config: { ...DEFAULTS, ...OUTSIDE }, version: 2 });
        const after = await deepHealth(later);
        expect([after.status, after.kv.configVersion, after.d1.configVersion, after.configInSync]).toEqual(["ok", 2, 2, true]);
      } finally {
        await later.dispose();
      }
    });
  });

  it("the next admin write builds on it instead of bringing the old flags back", async () => {
    await fresh(async (e) => {
      expect((await e.patchConfig({ featureFlags: { admin: true } })).status).toBe(200);
      // That write was two minutes ago: a copy without a version now is newer than it.
      await e.db.prepare("UPDATE config_history SET at = at - 120000").run();
      await putFromOutside(e);
      const p = await e.patchConfig({ maintenanceMode: false });
      expect(p.status, p.text).toBe(200);
      expect(p.body.featureFlags).toEqual({ fromOutside: true });
      expect(etag(p)).toBe('"3"');
      expect((await rows(e)).map((r) => [r.version, r.action])).toEqual([[1, "patch"], [2, "put"], [3, "patch"]]);
      expect(etag(await e.getConfig())).toBe('"3"');
      expect(etag(await e.getAdminConfig())).toBe('"3"');
      expect((await deepHealth(e)).configInSync).toBe(true);
    });
  });

  it("without a history it stays version 0, and deep health agrees", async () => {
    await fresh(async (e) => {
      await putFromOutside(e);
      const get = await e.getConfig();
      expect(etag(get)).toBe('"0"');
      expect(get.body.featureFlags).toEqual({ fromOutside: true });
      expect(await rows(e)).toEqual([]);
      const h = await deepHealth(e);
      expect([h.status, h.kv.configVersion, h.d1.configVersion, h.configInSync]).toEqual(["ok", 0, null, true]);
    });
  });

  it("within a minute of an admin write, a copy without a version is taken for a stale one: the head is served", async () => {
    await fresh(async (e) => {
      const p = await e.patchConfig({ featureFlags: { admin: true } });
      expect(p.status).toBe(200);
      const later = await spawnApp({ seedConfig: OUTSIDE });
      try {
        const head = await e.db.prepare("SELECT at, actor, action, base_version, change, document FROM config_history").first();
        await later.db.prepare("INSERT INTO config_history (version, at, actor, action, base_version, change, document) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)")
          .bind(...Object.values(/** @type {Record<string, unknown>} */ (head))).run();
        expect((await later.getConfig()).status).toBe(200);
        // The isolate asks D1 after answering; once it has, it serves D1's head, not the copy.
        await vi.waitFor(async () => expect(etag(await later.getConfig())).toBe('"1"'), { timeout: 5_000, interval: 20 });
        expect((await later.getConfig()).body.featureFlags).toEqual({ admin: true, seeded: true });
        expect((await rows(later)).map((r) => r.version)).toEqual([1]);
      } finally {
        await later.dispose();
      }
    });
  });

  it("deep health reports a KV copy behind D1's newest version as degraded", async () => {
    await fresh(async (e) => {
      expect((await e.patchConfig({ featureFlags: { a: true } })).status).toBe(200);
      expect((await e.patchConfig({ featureFlags: { b: true } })).status).toBe(200);
      const v1 = await e.db.prepare("SELECT document FROM config_history WHERE version = 1").first();
      // What a location whose KV still serves version 1 reads.
      await e.kv.put("config:app", /** @type {string} */ (v1?.document), { metadata: { version: 1 } });
      const h = await deepHealth(e);
      expect([h.status, h.kv.configVersion, h.d1.configVersion, h.configInSync]).toEqual(["degraded", 1, 2, false]);
    });
  });
});

describe("schedules take effect by the clock and are recorded when first served", () => {
  /** A flag whose scheduled definition takes effect at `at`. @param {number} at */
  const staged = (at) => ({ variants: { a: "old", b: "other" }, defaultVariant: "a", schedule: [{ at, set: { variants: { c: "new" }, defaultVariant: "c" } }] });
  /**
   * Runs `fn` on a Worker whose version 1 (in D1 and KV) was written two minutes ago, when
   * its flag's entry, which took effect a second ago, was still to come: the clock moved on
   * since the write, as it does between a write and the entry it schedules.
   * @param {(e: TestApp) => Promise<void>} fn
   */
  async function writtenBefore(fn) {
    const doc = { ...DEFAULTS, ...HIGH, featureFlags: { s: staged(Date.now() - 1000) } };
    await fresh(async (e) => {
      await e.db.prepare("INSERT INTO config_history (version, at, actor, action, base_version, change) VALUES (1, ?1, 'admin', 'put', 0, ?2)")
        .bind(Date.now() - 120_000, JSON.stringify(doc)).run();
      await e.kv.put("config:app", JSON.stringify(doc), { metadata: { version: 1 } });
      await fn(e);
    });
  }

  it("an entry is served by the clock, then recorded once as the next version (actor schedule) without it", async () => {
    await writtenBefore(async (e) => {
      const served = await e.evaluateFlag("s", { context: { targetingKey: "u" } });
      expect(served.body).toMatchObject({ value: "new", variant: "c", reason: "STATIC" });
      await vi.waitFor(async () => expect((await history(e, { limit: 1 })).entries[0]).toMatchObject({ version: 2, actor: "schedule", action: "patch", baseVersion: 1 }), { timeout: 5_000, interval: 20 });
      const admin = await e.getAdminConfig();
      expect(etag(admin)).toBe('"2"');
      expect(admin.body.featureFlags.s).toEqual({ variants: { c: "new" }, defaultVariant: "c", rules: [], enabled: true });
      expect((await kvEntry(e)).version).toBe(2);
      for (let i = 0; i < 3; i++) expect((await e.evaluateFlag("s", { context: {} })).body.value).toBe("new");
      expect(await rows(e)).toEqual([{ version: 1, action: "put" }, { version: 2, action: "patch" }]);
    });
  });

  it("a rollback to a version from before the entry serves that version as it was: the rollback wins", async () => {
    await writtenBefore(async (e) => {
      expect((await e.evaluateFlag("s", { context: {} })).body.value).toBe("new");
      await vi.waitFor(async () => expect((await rows(e)).length).toBe(2), { timeout: 5_000, interval: 20 });
      const back = await e.rollbackConfig({ version: 1 }, ifMatch('"2"'));
      expect(back.status, back.text).toBe(200);
      expect(back.body.featureFlags.s).toEqual({ variants: { a: "old", b: "other" }, defaultVariant: "a", rules: [], enabled: true });
      expect((await e.evaluateFlag("s", { context: {} })).body).toMatchObject({ value: "old", variant: "a" });
      expect((await rows(e)).map((r) => r.version)).toEqual([1, 2, 3]);
    });
  });

  it("a write whose entry is already due applies it: the version says what is served, nothing more is recorded", async () => {
    await fresh(async (e) => {
      const put = await e.replaceConfig({ ...HIGH, featureFlags: { s: staged(Date.now() - 1000) } });
      expect(put.status, put.text).toBe(200);
      expect(put.body.featureFlags.s).toEqual({ variants: { c: "new" }, defaultVariant: "c", rules: [], enabled: true });
      expect((await e.evaluateFlag("s", { context: {} })).body.value).toBe("new");
      expect((await history(e)).entries.map((/** @type {{ version: number }} */ x) => x.version)).toEqual([1]);
    });
  });

  it("an entry without enabled or set, or a set with fields of its own, is 400 naming it; nothing is written", async () => {
    await fresh(async (e) => {
      const bad = [
        [{ at: 5 }, "featureFlags.s.schedule[0]"],
        [{ at: 5, set: { variants: { c: 1 }, defaultVariant: "c", enabled: false } }, "featureFlags.s.schedule[0].set.enabled"],
        [{ at: 5, set: { variants: { c: 1 }, defaultVariant: "x" } }, "featureFlags.s.schedule[0].set.defaultVariant"],
      ];
      for (const [entry, field] of bad) {
        const r = await e.patchConfig({ featureFlags: { s: { variants: { a: 1 }, defaultVariant: "a", schedule: [entry] } } });
        expect(expectError(expect, r, 400, "invalid_request").error, JSON.stringify(entry)).toContain(`${field}:`);
      }
      expect(await rows(e)).toEqual([]);
    });
  });
});
