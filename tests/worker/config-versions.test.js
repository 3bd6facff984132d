// The versioned, audited config: every admin write is a new version in D1 (the authority)
// then KV (the read path); ETags of versions, If-Match, concurrent admins, the history and
// rollback, checked in the built Worker in workerd with real local KV and D1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, DEFAULTS, boot, expectError } from "../helpers.js";

const HIGH = { rateLimits: { default: 1000000 } };
const SEED = { ...HIGH, featureFlags: { seeded: true } };

let w;
beforeAll(async () => {
  w = await boot({ seedConfig: SEED });
});
afterAll(() => w?.dispose());

const admin = (env, method, path, body, headers = {}) => env.json(path, { method, admin: true, body, headers });
const history = async (env, query = "") => {
  const r = await env.json(`/admin/config/history${query}`, { admin: true });
  expect(r.status, r.text).toBe(200);
  return r.body;
};
const rows = (env) => env.db.prepare("SELECT version, action FROM config_history ORDER BY seq").all().then((r) => r.results);
const kvEntry = async (env) => {
  const { value, metadata } = await env.kv.getWithMetadata("config:app");
  return { config: JSON.parse(value), version: metadata?.version ?? 0 };
};

/** A fresh Worker whose KV holds SEED and whose history is empty. */
async function fresh(fn) {
  const e = await boot({ seedConfig: SEED });
  try {
    await fn(e);
  } finally {
    await e.dispose();
  }
}

describe("versions and ETags", () => {
  it("a seeded config is version 0 until the first write, which merges into it as version 1", async () => {
    await fresh(async (e) => {
      const get = await e.json("/config");
      expect(get.res.headers.get("ETag")).toBe('"0"');
      const a = await admin(e, "GET", "/admin/config");
      expect(a.status, a.text).toBe(200);
      expect(a.res.headers.get("ETag")).toBe('"0"');
      expect(a.body).toEqual({ ...DEFAULTS, ...SEED });
      expect(a.res.headers.get("Cache-Control")).toMatch(/no-store/);

      const p = await admin(e, "PATCH", "/admin/config", { featureFlags: { mine: true } }, { "If-Match": '"0"' });
      expect(p.status, p.text).toBe(200);
      expect(p.res.headers.get("ETag")).toBe('"1"');
      expect(p.body.featureFlags).toEqual({ seeded: true, mine: true });
      expect(await kvEntry(e)).toEqual({ config: p.body, version: 1 });
      expect((await e.json("/config")).res.headers.get("ETag")).toBe('"1"');
      expect((await admin(e, "GET", "/admin/config")).res.headers.get("ETag")).toBe('"1"');
      const h = await history(e);
      expect(h.entries).toHaveLength(1);
      expect(h.entries[0]).toMatchObject({ version: 1, outcome: "applied", action: "patch", baseVersion: 0, change: { featureFlags: { mine: true } } });
    });
  });

  it("every successful write (PUT, PATCH, rollback) takes the next version", async () => {
    await fresh(async (e) => {
      const tags = [];
      for (const [method, path, body] of [
        ["PUT", "/admin/config", { featureFlags: { a: true } }],
        ["PATCH", "/admin/config", { featureFlags: { b: true } }],
        ["POST", "/admin/config/rollback", { version: 1 }],
        ["PUT", "/admin/config", {}],
      ]) {
        const r = await admin(e, method, path, body);
        expect(r.status, r.text).toBe(200);
        tags.push(r.res.headers.get("ETag"));
      }
      expect(tags).toEqual(['"1"', '"2"', '"3"', '"4"']);
      expect((await rows(e)).map((r) => r.action)).toEqual(["put", "patch", "rollback", "put"]);
    });
  });
});

describe("concurrent admins", () => {
  it("two PATCHes with the same If-Match: exactly one succeeds, the other gets 412, nothing is lost", async () => {
    await fresh(async (e) => {
      const base = await admin(e, "PUT", "/admin/config", { featureFlags: { base: true } });
      const tag = base.res.headers.get("ETag");
      const [x, y] = await Promise.all([
        admin(e, "PATCH", "/admin/config", { featureFlags: { alice: true } }, { "If-Match": tag }),
        admin(e, "PATCH", "/admin/config", { featureFlags: { bob: true } }, { "If-Match": tag }),
      ]);
      expect([x.status, y.status].sort()).toEqual([200, 412]);
      const [won, lost] = x.status === 200 ? [x, y] : [y, x];
      expectError(expect, lost, 412, "precondition_failed");
      expect(lost.res.headers.get("ETag")).toBe('"2"');
      expect(won.res.headers.get("ETag")).toBe('"2"');
      const loser = won === x ? "bob" : "alice";
      const winner = won === x ? "alice" : "bob";
      expect((await e.json("/config")).body.featureFlags).toEqual({ base: true, [winner]: true });

      // The loser re-reads and retries on the current version: nothing is lost.
      const current = (await admin(e, "GET", "/admin/config")).res.headers.get("ETag");
      const retry = await admin(e, "PATCH", "/admin/config", { featureFlags: { [loser]: true } }, { "If-Match": current });
      expect(retry.status, retry.text).toBe(200);
      expect(retry.body.featureFlags).toEqual({ base: true, alice: true, bob: true });

      const h = await history(e);
      expect(h.entries.map((x) => [x.version, x.outcome])).toEqual([
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
      const results = await Promise.all(names.map((n) => admin(e, "PATCH", "/admin/config", { featureFlags: { [n]: true } })));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      const all = { seeded: true, p1: true, p2: true, p3: true, p4: true, p5: true };
      expect((await e.json("/config")).body.featureFlags).toEqual(all);
      const final = await admin(e, "GET", "/admin/config");
      expect(final.body.featureFlags).toEqual(all);
      const versions = results.map((r) => Number(JSON.parse(r.res.headers.get("ETag")))).sort();
      expect(versions).toEqual([1, 2, 3, 4, 5]);
      expect(await kvEntry(e)).toEqual({ config: final.body, version: 5 });
    });
  });
});

describe("history and rollback", () => {
  it("rollback restores an earlier flag set as a new version", async () => {
    await fresh(async (e) => {
      const early = { checkout: { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 10, off: 90 } } };
      const v1 = await admin(e, "PUT", "/admin/config", { ...HIGH, featureFlags: early });
      expect(v1.status, v1.text).toBe(200);
      await admin(e, "PUT", "/admin/config", { ...HIGH, featureFlags: { other: false } });
      const back = await admin(e, "POST", "/admin/config/rollback", { version: 1 }, { "If-Match": '"2"' });
      expect(back.status, back.text).toBe(200);
      expect(back.res.headers.get("ETag")).toBe('"3"');
      expect(back.body).toEqual(v1.body);
      expect((await e.json("/config")).body).toEqual(v1.body);
      const flag = await e.json("/ofrep/v1/evaluate/flags/checkout", { method: "POST", body: { context: { targetingKey: "u" } } });
      expect(flag.body).toMatchObject({ reason: "SPLIT", metadata: { configVersion: 3 } });
      const h = await history(e, "?limit=1");
      expect(h.entries[0]).toMatchObject({ version: 3, action: "rollback", baseVersion: 2, change: { version: 1 } });
    });
  });

  it("lists newest first in pages, with the actor's fingerprint and never the token", async () => {
    await fresh(async (e) => {
      for (let i = 1; i <= 5; i++) await admin(e, "PUT", "/admin/config", { cacheTtlSeconds: i });
      const p1 = await history(e, "?limit=2");
      expect(p1.entries.map((x) => x.version)).toEqual([5, 4]);
      expect(p1.listComplete).toBe(false);
      const p2 = await history(e, `?limit=2&cursor=${p1.cursor}`);
      expect(p2.entries.map((x) => x.version)).toEqual([3, 2]);
      const p3 = await history(e, `?limit=2&cursor=${p2.cursor}`);
      expect(p3).toMatchObject({ listComplete: true, cursor: null });
      expect(p3.entries.map((x) => x.version)).toEqual([1]);
      const all = await history(e, "?limit=&cursor=");
      expect(all.entries).toHaveLength(5);
      for (const entry of all.entries) {
        expect(entry.actor).toMatch(/^[0-9a-f]{8}$/);
        expect(typeof entry.at).toBe("number");
      }
      const stored = JSON.stringify(await e.db.prepare("SELECT * FROM config_history").all());
      expect(stored).not.toContain(ADMIN_TOKEN);
    });
  });
});

describe("bad input changes nothing", () => {
  /** Runs `fn`, then checks that neither the history nor KV changed. */
  async function unchanged(env, fn) {
    const before = [await rows(env), await kvEntry(env)];
    await fn();
    expect([await rows(env), await kvEntry(env)]).toEqual(before);
  }

  it("PUT and PATCH: a stale or malformed If-Match is 412 (and recorded), an invalid flag names its field", async () => {
    await admin(w, "PUT", "/admin/config", SEED);
    for (const ifMatch of ['"999"', "W/\"1\"", "1", "garbage"]) {
      const r = await admin(w, "PATCH", "/admin/config", { maintenanceMode: true }, { "If-Match": ifMatch });
      expectError(expect, r, 412, "precondition_failed");
    }
    const refused = (await history(w)).entries.filter((x) => x.outcome === "refused");
    expect(refused.length).toBeGreaterThanOrEqual(4);
    await unchanged(w, async () => {
      const cases = [
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "b" } } }, "featureFlags.x.defaultVariant"],
        [{ featureFlags: { x: { variants: { a: 1, b: 2 }, defaultVariant: "a", rollout: { a: 60, b: 60 } } } }, "featureFlags.x.rollout"],
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "a", rollout: { c: 100 } } } }, "featureFlags.x.rollout.c"],
        [{ featureFlags: { x: { variants: { a: "v".repeat(1100) }, defaultVariant: "a" } } }, "featureFlags.x.variants.a"],
        [{ featureFlags: { x: { variants: { a: 1 }, defaultVariant: "a", rules: [{ when: { c: { like: 1 } }, variant: "a" }] } } }, "featureFlags.x.rules[0].when.c.like"],
      ];
      for (const [body, field] of cases) {
        for (const method of ["PUT", "PATCH"]) {
          const r = await admin(w, method, "/admin/config", body);
          expect(expectError(expect, r, 400, "invalid_request").error.startsWith(`${field}:`), r.text).toBe(true);
        }
      }
      expectError(expect, await admin(w, "PATCH", "/admin/config", "{oops"), 400, "invalid_json");
      expectError(expect, await w.json("/admin/config", { method: "PATCH", body: { maintenanceMode: true } }), 401, "unauthorized");
    });
  });

  it("rollback: missing, malformed or unknown versions, no credentials", async () => {
    await unchanged(w, async () => {
      for (const body of [{}, { version: 0 }, { version: "1" }, { version: 1.5 }, { version: 1, extra: true }, [1]]) {
        expectError(expect, await admin(w, "POST", "/admin/config/rollback", body), 400, "invalid_request");
      }
      expectError(expect, await admin(w, "POST", "/admin/config/rollback", "{"), 400, "invalid_json");
      expectError(expect, await admin(w, "POST", "/admin/config/rollback", { version: 999999 }), 404, "not_found");
      expectError(expect, await w.json("/admin/config/rollback", { method: "POST", body: { version: 1 } }), 401, "unauthorized");
      expectError(expect, await w.json("/admin/config/rollback", { method: "POST", admin: "wrong", body: { version: 1 } }), 401, "unauthorized");
      const get = await w.json("/admin/config/rollback", { admin: true });
      expectError(expect, get, 405, "method_not_allowed");
      expect(get.res.headers.get("Allow")).toBe("POST");
    });
  });

  it("history and GET /admin/config: bad limit or cursor, no credentials", async () => {
    await unchanged(w, async () => {
      for (const q of ["?limit=0", "?limit=101", "?limit=x", "?cursor=abc", "?cursor=0", "?cursor=-3"]) {
        expectError(expect, await w.json(`/admin/config/history${q}`, { admin: true }), 400, "invalid_request");
      }
      expectError(expect, await w.json("/admin/config/history"), 401, "unauthorized");
      expectError(expect, await w.json("/admin/config"), 401, "unauthorized");
      const post = await w.json("/admin/config/history", { method: "POST", admin: true, body: {} });
      expectError(expect, post, 405, "method_not_allowed");
    });
  });

  it("without D1 (the authority) writes are 503 and GET /config keeps serving KV", async () => {
    const e = await boot({ d1: false, seedConfig: SEED });
    try {
      expectError(expect, await admin(e, "PATCH", "/admin/config", { maintenanceMode: true }), 503, "unavailable");
      expectError(expect, await admin(e, "POST", "/admin/config/rollback", { version: 1 }), 503, "unavailable");
      expectError(expect, await admin(e, "GET", "/admin/config/history"), 503, "unavailable");
      expect(JSON.parse(await e.kv.get("config:app"))).toEqual(SEED);
      expect((await e.json("/config")).body).toEqual({ ...DEFAULTS, ...SEED });
    } finally {
      await e.dispose();
    }
  });
});
