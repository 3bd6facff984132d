// @ts-check
// Feature flags with variants, targeting rules and sticky percentage rollouts, evaluated
// through the OpenFeature Remote Evaluation Protocol (OFREP) and GET /flags/:name, in the
// built Worker in workerd with real local KV and D1.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ROOT, expectError, sum, timing } from "../helpers.js";
import { HIGH, TestApp, spawnApp } from "../app.js";

/** @typedef {import("../app.js").CallOptions} CallOptions */

const SPLIT = {
  variants: { on: true, off: false },
  defaultVariant: "off",
  rules: [{ when: { country: { in: ["NL", "BE"] } }, variant: "on" }],
  rollout: { on: 30, off: 70 },
};
const FLAGS = {
  plain: true,
  checkout: SPLIT,
  theme: { variants: { light: { bg: "#fff" }, dark: { bg: "#000" } }, defaultVariant: "light" },
  banner: { variants: { a: "A", b: "B" }, defaultVariant: "a", rules: [{ when: { plan: { equals: "pro" } }, variant: "b" }] },
  retired: { variants: { x: 1, y: 2 }, defaultVariant: "y", rollout: { x: 100 }, enabled: false },
};
const SEED = { ...HIGH, featureFlags: FLAGS };

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: SEED });
});
afterAll(() => w?.dispose());

/**
 * POST /ofrep/v1/evaluate/flags/:key with `{context}`.
 * @param {TestApp} env @param {string} key @param {object} context @param {CallOptions} [opts]
 */
const single = (env, key, context, opts = {}) => env.evaluateFlag(key, { context }, opts);
/**
 * POST /ofrep/v1/evaluate/flags with `{context}`.
 * @param {TestApp} env @param {object} context @param {CallOptions} [opts]
 */
const bulk = (env, context, opts = {}) => env.evaluateFlags({ context }, opts);

/**
 * Runs `fn` over `items`, `width` at a time.
 * @template T, U
 * @param {T[]} items @param {number} width @param {(item: T, i: number) => Promise<U>} fn
 * @returns {Promise<U[]>}
 */
async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

describe("OFREP single evaluation", () => {
  it("answers value, variant, reason and metadata for every reason", async () => {
    /** @type {[string, object, object][]} */
    const cases = [
      ["plain", { targetingKey: "u1" }, { value: true, variant: "on", reason: "STATIC" }],
      ["theme", {}, { value: { bg: "#fff" }, variant: "light", reason: "STATIC" }],
      ["banner", { plan: "pro" }, { value: "B", variant: "b", reason: "TARGETING_MATCH" }],
      ["banner", { plan: "free" }, { value: "A", variant: "a", reason: "DEFAULT" }],
      ["retired", { targetingKey: "u1" }, { value: 2, variant: "y", reason: "DISABLED" }],
      ["checkout", { targetingKey: "u1", country: "BE" }, { value: true, variant: "on", reason: "TARGETING_MATCH" }],
    ];
    for (const [key, context, want] of cases) {
      const r = await single(w, key, context);
      expect(r.status, `${key}: ${r.text}`).toBe(200);
      expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(r.body).toMatchObject({ key, ...want });
      expect(r.body.metadata).toMatchObject({ configVersion: 0 });
    }
    const rule = await single(w, "banner", { plan: "pro" });
    expect(rule.body.metadata).toEqual({ configVersion: 0, ruleIndex: 0 });
    const split = await single(w, "checkout", { targetingKey: "u1", country: "US" });
    expect(split.body.reason).toBe("SPLIT");
    expect(["on", "off"]).toContain(split.body.variant);
    expect(split.body.value).toBe(split.body.variant === "on");
  });

  it("a rule on an attribute beats the rollout for every key", async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `rule-key-${i}`);
    const answers = await pool(keys, 10, (targetingKey) => single(w, "checkout", { targetingKey, country: "NL" }));
    expect(answers.every((r) => r.status === 200 && r.body.variant === "on" && r.body.reason === "TARGETING_MATCH")).toBe(true);
    const split = await pool(keys, 10, (targetingKey) => single(w, "checkout", { targetingKey, country: "DE" }));
    expect(split.some((r) => r.body.variant === "off")).toBe(true);
  });

  it("errors take the protocol's shapes: FLAG_NOT_FOUND 404, TARGETING_KEY_MISSING 400", async () => {
    const missing = await single(w, "nope", { targetingKey: "u" });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ key: "nope", errorCode: "FLAG_NOT_FOUND", errorDetails: expect.any(String) });
    const noKey = await single(w, "checkout", { country: "US" });
    expect(noKey.status).toBe(400);
    expect(noKey.body).toEqual({ key: "checkout", errorCode: "TARGETING_KEY_MISSING", errorDetails: expect.any(String) });
  });

  it("bad bodies are 400 PARSE_ERROR or INVALID_CONTEXT in the protocol's shape", async () => {
    const cases = [
      ["{not json", "PARSE_ERROR"],
      ["", "PARSE_ERROR"],
      ["[1]", "INVALID_CONTEXT"],
      ["{}", "INVALID_CONTEXT"],
      ['{"context": "u1"}', "INVALID_CONTEXT"],
      ['{"context": null}', "INVALID_CONTEXT"],
      ['{"context": {"targetingKey": 7}}', "INVALID_CONTEXT"],
    ];
    for (const [body, code] of cases) {
      const r = await w.evaluateFlag("plain", body, { headers: { "Content-Type": "application/json" } });
      expect(r.status, body).toBe(400);
      expect(r.body, body).toEqual({ key: "plain", errorCode: code, errorDetails: expect.any(String) });
    }
    const big = await w.evaluateFlag("plain", JSON.stringify({ context: { pad: "x".repeat(70000) } }));
    expectError(expect, big, 413, "payload_too_large");
    const get = await w.json("/ofrep/v1/evaluate/flags/plain"); // GET is not declared: the router's 405
    expectError(expect, get, 405, "method_not_allowed");
    expect(get.res.headers.get("Allow")).toBe("POST");
  });
});

describe("OFREP bulk evaluation", () => {
  it("evaluates every flag, with failures as items, and an ETag", async () => {
    const r = await bulk(w, { country: "US" });
    expect(r.status, r.text).toBe(200);
    expect(r.body.metadata).toEqual({ configVersion: 0 });
    const byKey = Object.fromEntries(r.body.flags.map((/** @type {{ key: string }} */ f) => [f.key, f]));
    expect(Object.keys(byKey).sort()).toEqual(Object.keys(FLAGS).sort());
    expect(byKey.plain).toMatchObject({ value: true, reason: "STATIC" });
    expect(byKey.checkout).toEqual({ key: "checkout", errorCode: "TARGETING_KEY_MISSING", errorDetails: expect.any(String) });
    expect(r.res.headers.get("ETag")).toMatch(/^"[0-9a-f]{17,32}"$/);
  });

  it("answers 304 to If-None-Match with the current ETag, and 200 with a new one after a config change", async () => {
    const e = await spawnApp({ seedConfig: SEED });
    try {
      const context = { targetingKey: "etag-user", country: "NL" };
      const first = await bulk(e, context);
      const tag = String(first.res.headers.get("ETag"));
      const again = await bulk(e, context, { headers: { "If-None-Match": tag } });
      expect(again.status).toBe(304);
      expect(again.text).toBe("");
      expect(again.res.headers.get("ETag")).toBe(tag);
      expect((await bulk(e, context, { headers: { "If-None-Match": `"stale", W/${tag}` } })).status).toBe(304);
      expect((await bulk(e, context, { headers: { "If-None-Match": '"stale"' } })).status).toBe(200);
      for (const malformed of [tag.slice(1, -1), tag.slice(0, -1), `W/${tag.slice(1, -1)}`, `${tag} ${tag}`]) {
        const bad = await bulk(e, context, { headers: { "If-None-Match": malformed } });
        expect(bad.status, malformed).toBe(400);
        expect(bad.body).toEqual({ errorCode: "GENERAL", errorDetails: expect.stringMatching(/^If-None-Match: /) });
      }
      const other = await bulk(e, { targetingKey: "etag-user", country: "US" }, { headers: { "If-None-Match": tag } });
      expect(other.status, "another context, another answer").toBe(200);

      const p = await e.patchConfig({ featureFlags: { plain: false } });
      expect(p.status, p.text).toBe(200);
      const changed = await bulk(e, context, { headers: { "If-None-Match": tag } });
      expect(changed.status).toBe(200);
      const newTag = String(changed.res.headers.get("ETag"));
      expect(newTag).not.toBe(tag);
      expect(changed.body.metadata).toEqual({ configVersion: 1 });
      expect(changed.body.flags.find((/** @type {{ key: string }} */ f) => f.key === "plain").value).toBe(false);
      expect((await bulk(e, context, { headers: { "If-None-Match": newTag } })).status).toBe(304);
    } finally {
      await e.dispose();
    }
  });

  it("bad bodies are 400 with the bulk failure shape", async () => {
    for (const [body, code] of [["nope", "PARSE_ERROR"], ["{}", "INVALID_CONTEXT"], ['{"context": []}', "INVALID_CONTEXT"]]) {
      const r = await w.evaluateFlags(body);
      expect(r.status, body).toBe(400);
      expect(r.body, body).toEqual({ errorCode: code, errorDetails: expect.any(String) });
    }
  });
});

describe("sticky bucketing", () => {
  it("a 30/70 rollout over 10,000 targetingKeys gives 30 % ± 1.5, and each key the same variant on every call and in a second isolate", async () => {
    const second = await spawnApp({ seedConfig: SEED });
    try {
      const keys = Array.from({ length: 10000 }, (_, i) => `user-${i}`);
      // 21,000 requests: over kept-alive connections (`keepAlive`, contract-checked like every
      // response), the two isolates (two workerd processes) asked at the same time.
      /** @param {TestApp} env */
      const variantIn = (env) => async (/** @type {string} */ targetingKey) => {
        const r = await single(env, "checkout", { targetingKey }, { keepAlive: true });
        if (r.status !== 200 || r.body.reason !== "SPLIT") throw new Error(`${targetingKey}: ${r.text}`);
        return r.body.variant;
      };
      const [here, there] = await Promise.all([pool(keys, 32, variantIn(w)), pool(keys, 32, variantIn(second))]);
      const on = here.filter((v) => v === "on").length / keys.length;
      expect(on).toBeGreaterThanOrEqual(0.285);
      expect(on).toBeLessThanOrEqual(0.315);
      expect(there).toEqual(here);
      const again = await pool(keys.slice(0, 1000), 32, variantIn(w));
      expect(again).toEqual(here.slice(0, 1000));
    } finally {
      await second.dispose();
    }
  });

  it("each flag buckets independently (salted by its name)", async () => {
    const e = await spawnApp({ seedConfig: { ...HIGH, featureFlags: { a: SPLIT, b: SPLIT } } });
    try {
      const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);
      const both = await pool(keys, 16, async (targetingKey) => {
        const r = await bulk(e, { targetingKey });
        return r.body.flags.map((/** @type {{ variant: string }} */ f) => f.variant).join();
      });
      // Independent 30 % rollouts: about 9 % of keys get "on" in both, not 30 %.
      const onInBoth = both.filter((v) => v === "on,on").length / keys.length;
      expect(onInBoth).toBeLessThan(0.2);
    } finally {
      await e.dispose();
    }
  });
});

describe("GET /flags/:name", () => {
  it("keeps answering {name, enabled} for boolean and unknown flags", async () => {
    expect((await w.getFlag("plain")).body).toEqual({ name: "plain", enabled: true });
    expect((await w.getFlag("nothing", { targetingKey: "u" })).body).toEqual({ name: "nothing", enabled: false });
  });

  it("evaluates flags with variants against the query's context", async () => {
    const nl = await w.getFlag("checkout", { targetingKey: "u1", country: "NL" });
    expect(nl.body).toEqual({ name: "checkout", enabled: true, value: true, variant: "on", reason: "TARGETING_MATCH" });
    const us = await w.getFlag("checkout", { targetingKey: "u1", country: "US" });
    const ofrep = await single(w, "checkout", { targetingKey: "u1", country: "US" });
    expect(us.body).toEqual({ name: "checkout", enabled: ofrep.body.value, value: ofrep.body.value, variant: ofrep.body.variant, reason: "SPLIT" });
    const noKey = await w.getFlag("checkout");
    expect(noKey.body).toEqual({
      name: "checkout", enabled: false, value: false, variant: "off", reason: "ERROR", errorCode: "TARGETING_KEY_MISSING",
    });
    const theme = await w.getFlag("theme");
    expect(theme.body).toEqual({ name: "theme", enabled: true, value: { bg: "#fff" }, variant: "light", reason: "STATIC" });
    const retired = await w.getFlag("retired", { targetingKey: "u" });
    expect(retired.body).toMatchObject({ enabled: false, reason: "DISABLED", value: 2 });
  });

  it("refuses a query parameter that cannot be an attribute name", async () => {
    const r = await w.getFlag("checkout", "targetingKey=u&bad%20name=1");
    expect(expectError(expect, r, 400, "invalid_request").error).toMatch(/^query\.bad name:/);
  });
});

describe("prerequisites", () => {
  /** A flag on for everyone (a 100 % rollout) once each of `prerequisites` is met. */
  const gated = (/** @type {Record<string, string[]>} */ prerequisites) => ({
    variants: { new: "N", old: "O" }, defaultVariant: "old", rollout: { new: 100 }, prerequisites,
  });
  const PREREQ_FLAGS = {
    gate: { variants: { on: true, off: false }, defaultVariant: "off", rules: [{ when: { country: { in: ["NL"] } }, variant: "on" }] },
    gated: gated({ gate: ["on"] }),
    chained: { ...gated({ gated: ["new"] }), variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 100 } },
    killed: false,
    behindKill: gated({ killed: ["on"] }),
  };

  it("serve the evaluated variant when met, else the default with metadata naming the prerequisite: single, bulk and GET /flags/:name", async () => {
    const e = await spawnApp({ seedConfig: { ...HIGH, featureFlags: PREREQ_FLAGS } });
    try {
      const met = await single(e, "gated", { targetingKey: "u1", country: "NL" });
      expect(met.status, met.text).toBe(200);
      expect(met.body).toEqual({ key: "gated", value: "N", variant: "new", reason: "SPLIT", metadata: { configVersion: 0 } });
      const unmet = await single(e, "gated", { targetingKey: "u1", country: "US" });
      expect(unmet.status, unmet.text).toBe(200);
      expect(unmet.body).toEqual({
        key: "gated", value: "O", variant: "old", reason: "DEFAULT", metadata: { configVersion: 0, unmetPrerequisite: "gate" },
      });
      // A chain: chained needs gated's `new`, which needs gate's `on`.
      expect((await single(e, "chained", { country: "NL" })).body).toMatchObject({ value: true, variant: "on", reason: "SPLIT" });
      expect((await single(e, "chained", { country: "US" })).body).toMatchObject({
        value: false, variant: "off", reason: "DEFAULT", metadata: { unmetPrerequisite: "gated" },
      });
      // A boolean prerequisite is `on` or `off`: `killed` is false.
      expect((await single(e, "behindKill", {})).body.metadata).toEqual({ configVersion: 0, unmetPrerequisite: "killed" });

      /** @type {[string, { gated: string, chained: string }][]} */
      const countries = [["NL", { gated: "new", chained: "on" }], ["US", { gated: "old", chained: "off" }]];
      for (const [country, want] of countries) {
        const r = await bulk(e, { targetingKey: "u1", country });
        expect(r.status, r.text).toBe(200);
        const byKey = Object.fromEntries(r.body.flags.map((/** @type {{ key: string }} */ f) => [f.key, f]));
        expect(byKey.gated.variant, country).toBe(want.gated);
        expect(byKey.chained.variant, country).toBe(want.chained);
        expect(byKey.gated.metadata.unmetPrerequisite, country).toBe(country === "US" ? "gate" : undefined);
      }

      const view = await e.getFlag("gated", { targetingKey: "u1", country: "US" });
      expect(view.body).toEqual({ name: "gated", enabled: true, value: "O", variant: "old", reason: "DEFAULT", unmetPrerequisite: "gate" });
      const metView = await e.getFlag("chained", { country: "NL" });
      expect(metView.body).toEqual({ name: "chained", enabled: true, value: true, variant: "on", reason: "SPLIT" });
      // The public view evaluates an empty context: gate is off, so chained is false.
      expect((await e.getConfig()).body.featureFlags).toMatchObject({ gated: "O", chained: false, behindKill: "O" });

      // A disabled prerequisite answers its default (gate: `off`), so gated is not met even in NL.
      const p = await e.patchConfig({ featureFlags: { gate: { ...PREREQ_FLAGS.gate, enabled: false } } });
      expect(p.status, p.text).toBe(200);
      expect(p.body.featureFlags.gated.prerequisites).toEqual({ gate: ["on"] });
      const disabled = await single(e, "gated", { targetingKey: "u1", country: "NL" });
      expect(disabled.body).toMatchObject({ variant: "old", reason: "DEFAULT", metadata: { configVersion: 1, unmetPrerequisite: "gate" } });
    } finally {
      await e.dispose();
    }
  });

  it("writes naming unknown flags or variants, cycles and chains over 8 links are refused (400 naming the field), and change nothing", async () => {
    const e = await spawnApp({ seedConfig: { ...HIGH, featureFlags: PREREQ_FLAGS } });
    try {
      /** @type {[object, string][]} */
      const cases = [
        [{ gated: gated({ nope: ["on"] }) }, 'featureFlags.gated.prerequisites.nope: unknown flag "nope"'],
        [{ gated: gated({ gate: ["on", "yes"] }) }, 'featureFlags.gated.prerequisites.gate[1]: unknown variant "yes"'],
        [{ gate: null }, 'featureFlags.gated.prerequisites.gate: unknown flag "gate"'],
        [{ gate: { variants: { a: 1 }, defaultVariant: "a" } }, 'featureFlags.gated.prerequisites.gate[0]: unknown variant "on"'],
        [{ gate: { ...PREREQ_FLAGS.gate, prerequisites: { gate: ["on"] } } }, "featureFlags.gate.prerequisites: cycle gate → gate"],
        [{ gate: { ...PREREQ_FLAGS.gate, prerequisites: { chained: ["on"] } } }, "featureFlags.chained.prerequisites: cycle chained → gated → gate → chained"],
        [{ gated: gated({ gate: [] }) }, "featureFlags.gated.prerequisites.gate: must be 1 to 16 variant names"],
        [{ gated: { ...gated({}), prerequisites: [{ flag: "gate", variants: ["on"] }] } }, "featureFlags.gated.prerequisites: must be an object of at most 8 flags to variant names"],
      ];
      for (const [featureFlags, message] of cases) {
        const r = await e.patchConfig({ featureFlags });
        expect(expectError(expect, r, 400, "invalid_request").error, JSON.stringify(featureFlags)).toBe(message);
      }
      /** A chain c0 → c1 → … → c{links}, every link needing `on`. */
      const chain = (/** @type {number} */ links) => Object.fromEntries(
        Array.from({ length: links + 1 }, (_, i) => [`c${i}`, i === links ? true : { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 100 }, prerequisites: { [`c${i + 1}`]: ["on"] } }]),
      );
      const deep = await e.replaceConfig({ ...HIGH, featureFlags: chain(9) });
      expect(expectError(expect, deep, 400, "invalid_request").error).toBe("featureFlags.c0.prerequisites: prerequisites nest over 8 links deep");
      expect((await e.getAdminConfig()).res.headers.get("ETag"), "nothing was written").toBe('"0"');
      const eight = await e.replaceConfig({ ...HIGH, featureFlags: chain(8) });
      expect(eight.status, eight.text).toBe(200);
      expect((await single(e, "c0", {})).body).toMatchObject({ value: true, reason: "SPLIT" });
    } finally {
      await e.dispose();
    }
  });
});

describe("schedules", () => {
  it("switch a flag by the clock through OFREP and GET /flags/:name, and enabled: false wins over every entry", async () => {
    const now = Date.now();
    const base = { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 100 } };
    const featureFlags = {
      running: { ...base, schedule: [{ at: now - 60_000, enabled: true }, { at: now + 3_600_000, enabled: false }] },
      later: { ...base, schedule: [{ at: now + 3_600_000, enabled: true }] },
      soon: { ...base, schedule: [{ at: now + 120_000, enabled: true }] },
      ended: { ...base, schedule: [{ at: now - 1_000, enabled: false }] },
    };
    const e = await spawnApp({ seedConfig: { ...HIGH, featureFlags } });
    try {
      const reasons = async () => {
        const r = await bulk(e, { targetingKey: "u1" });
        expect(r.status, r.text).toBe(200);
        return Object.fromEntries(r.body.flags.map((/** @type {{ key: string, reason: string }} */ f) => [f.key, f.reason]));
      };
      expect(await reasons()).toEqual({ running: "SPLIT", later: "DISABLED", soon: "DISABLED", ended: "DISABLED" });
      expect((await single(e, "running", {})).body).toMatchObject({ value: true, variant: "on", reason: "SPLIT" });
      expect((await e.getFlag("later")).body).toEqual({ name: "later", enabled: false, value: false, variant: "off", reason: "DISABLED" });
      expect((await e.getConfig()).body.featureFlags).toMatchObject({ running: true, later: false, soon: false });
      // Without a history (the seed, version 0) due entries are applied by the clock, not recorded.
      expect((await single(e, "ended", {})).body).toMatchObject({ value: false, reason: "DISABLED", metadata: { configVersion: 0 } });

      // The kill switch: enabled: false at the top wins over the schedule that has it on. The
      // write applies the entry already due (on), keeping the one to come.
      const p = await e.patchConfig({ featureFlags: { running: { ...featureFlags.running, enabled: false } } });
      expect(p.status, p.text).toBe(200);
      expect(p.body.featureFlags.running.schedule).toEqual([featureFlags.running.schedule[1]]);
      expect((await single(e, "running", {})).body).toMatchObject({ value: false, reason: "DISABLED" });

      const bad = await e.patchConfig({ featureFlags: { later: { ...base, schedule: [{ at: now, enabled: true }, { at: now, enabled: false }] } } });
      expect(expectError(expect, bad, 400, "invalid_request").error).toMatch(/^featureFlags\.later\.schedule\[1\]: must be /);
    } finally {
      await e.dispose();
    }
  });
});

describe("evaluation does no storage work", () => {
  it("50 bulk evaluations of 50 flags: only the strict limiter's leases touch D1, never per flag", async () => {
    const featureFlags = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`flag${i}`, i % 2 ? SPLIT : true]));
    const e = await spawnApp({ seedConfig: { ...HIGH, strictRateLimits: ["flags"], featureFlags } });
    try {
      const each = [];
      for (let i = 0; i < 50; i++) {
        const r = await bulk(e, { targetingKey: `user-${i}`, country: "US" });
        expect(r.status).toBe(200);
        expect(r.body.flags).toHaveLength(50);
        each.push(timing(r.res));
      }
      // Strict rate limiting leases tokens from D1 (a few leases for 50 requests: one per
      // lease, never more than one per request); evaluation adds no query.
      expect(Math.max(...each.map((t) => t.queries))).toBe(1);
      const leases = sum(each).queries;
      expect(leases).toBeGreaterThanOrEqual(1);
      expect(leases, "one lease per second or so, not one per request").toBeLessThanOrEqual(10);
      const total = sum(each);
      expect(total.writes + total.lists + total.deletes).toBe(0);
      // KV: only the isolate's re-read of config:app (once per 5 s), never per flag or request.
      expect(total.reads).toBeLessThanOrEqual(5);
    } finally {
      await e.dispose();
    }
  });

  it(`stays within bench/budgets.json for POST /ofrep/v1/evaluate/flags (50 flags)`, async () => {
    const budget = JSON.parse(readFileSync(join(ROOT, "bench/budgets.json"), "utf8"))["POST /ofrep/v1/evaluate/flags (50 flags)"];
    expect(budget).toBeDefined();
    const featureFlags = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`flag${i}`, i % 2 ? SPLIT : true]));
    const e = await spawnApp({ seedConfig: { ...HIGH, featureFlags } });
    try {
      const client = e.newClient();
      const each = [];
      for (let i = 0; i < 50; i++) {
        const r = await bulk(e, { targetingKey: `user-${i}` }, { client });
        expect(r.status).toBe(200);
        each.push(timing(r.res));
      }
      const total = sum(each);
      expect(total.reads / 50).toBeLessThanOrEqual(budget.kvReads);
      expect(total.queries / 50).toBeLessThanOrEqual(budget.d1Queries);
      expect(Math.max(...each.map((t) => t.writes))).toBeLessThanOrEqual(1);
    } finally {
      await e.dispose();
    }
  });
});

describe("a config of thousands of flags", () => {
  it("5,000 flags with variants, rules and rollouts, over 1 MiB: accepted, edited one at a time in small history rows, all answered", async () => {
    const e = await spawnApp({ seedConfig: HIGH });
    try {
      /** A flag of about 230 bytes: string variants, two rules, a rollout. */
      const flag = (/** @type {number} */ i) => ({
        variants: { control: "control-copy", treatment: `treatment-copy-${i}` },
        defaultVariant: "control",
        rules: [{ when: { plan: { in: ["enterprise", `tier-${i}`] } }, variant: "treatment" }, { when: { country: { equals: "NL" } }, variant: "control" }],
        rollout: { control: 100 - (i % 50), treatment: i % 50 },
      });
      const featureFlags = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`checkout-experiment-${String(i).padStart(4, "0")}`, flag(i)]));
      const body = JSON.stringify({ ...HIGH, featureFlags });
      expect(body.length, "over 1 MiB").toBeGreaterThan(1024 * 1024);
      const put = await e.replaceConfig(body);
      expect(put.status, put.text.slice(0, 300)).toBe(200);
      const etag = /** @type {string} */ (put.res.headers.get("ETag"));
      // One flag replaced, one deleted, one created: each write names only its flag.
      const edits = [{ "checkout-experiment-0007": flag(7007) }, { "checkout-experiment-0008": null }, { "brand-new": flag(1) }];
      let ifMatch = etag;
      for (const edit of edits) {
        const r = await e.patchConfig({ featureFlags: edit }, { headers: { "If-Match": ifMatch } });
        expect(r.status, r.text.slice(0, 300)).toBe(200);
        ifMatch = /** @type {string} */ (r.res.headers.get("ETag"));
      }
      const sizes = await e.db.prepare("SELECT version, LENGTH(change) + COALESCE(LENGTH(document), 0) AS bytes FROM config_history ORDER BY version").all();
      const [whole, ...patches] = /** @type {any[]} */ (sizes.results);
      expect(whole.bytes).toBeGreaterThan(1024 * 1024);
      expect(whole.bytes).toBeLessThan(2_000_000);
      for (const p of patches) expect(p.bytes).toBeLessThan(1_000);
      const all = await bulk(e, { targetingKey: "user-1", plan: "tier-7007" });
      expect(all.status).toBe(200);
      expect(all.body.flags).toHaveLength(5000);
      expect(all.body.flags.find((/** @type {any} */ f) => f.key === "checkout-experiment-0007")).toMatchObject({ value: "treatment-copy-7007", reason: "TARGETING_MATCH" });
      expect(timing(all.res)).toMatchObject({ reads: 0, writes: 0, queries: 0 });
    } finally {
      await e.dispose();
    }
  });

  it("2,000 targeted flags: accepted by PUT, one evaluation reads no storage, bulk answers all 2,000", async () => {
    const e = await spawnApp({ seedConfig: HIGH });
    try {
      /** A targeted flag: a rule on `plan` and a rollout, about 170 bytes of JSON. */
      const featureFlags = Object.fromEntries(
        Array.from({ length: 2000 }, (_, i) => [
          `flag-${String(i).padStart(4, "0")}`,
          { variants: { on: true, off: false }, defaultVariant: "off", rules: [{ when: { plan: { in: ["pro", `team-${i}`] } }, variant: "on" }], rollout: { on: i % 100, off: 100 - (i % 100) } },
        ]),
      );
      const body = JSON.stringify({ ...HIGH, featureFlags });
      expect(body.length, "well over the 64 KiB of other routes' bodies").toBeGreaterThan(300_000);
      const put = await e.replaceConfig(body);
      expect(put.status, put.text.slice(0, 300)).toBe(200);
      expect(Object.keys(put.body.featureFlags)).toHaveLength(2000);

      const one = await single(e, "flag-1234", { targetingKey: "user-1", plan: "pro" });
      expect(one.status, one.text).toBe(200);
      expect(one.body).toMatchObject({ key: "flag-1234", value: true, variant: "on", reason: "TARGETING_MATCH" });
      expect(timing(one.res), "the writing isolate's copy: no storage").toMatchObject({ reads: 0, writes: 0, queries: 0 });

      const all = await bulk(e, { targetingKey: "user-1", plan: "pro" });
      expect(all.status).toBe(200);
      expect(all.body.flags).toHaveLength(2000);
      expect(all.body.flags.every((/** @type {any} */ f) => f.value === true)).toBe(true);
      expect(timing(all.res)).toMatchObject({ reads: 0, writes: 0, queries: 0 });
      const again = await bulk(e, { targetingKey: "user-1", plan: "pro" }, { headers: { "If-None-Match": /** @type {string} */ (all.res.headers.get("ETag")) } });
      expect(again.status).toBe(304);
    } finally {
      await e.dispose();
    }
  });
});

describe("stale flags: when each flag was last evaluated", () => {
  it("is written after the response, at most once a minute per isolate, never on the evaluation's path", async () => {
    const e = await spawnApp({ seedConfig: SEED });
    try {
      const empty = await e.getFlagUsage();
      expect(empty.status, empty.text).toBe(200);
      expect(empty.body).toEqual({ evaluatedAt: {}, bulkEvaluatedAt: null, writtenEverySeconds: 60 });
      const before = Date.now();
      const one = await single(e, "banner", { targetingKey: "u" });
      expect(one.status).toBe(200);
      expect(timing(one.res).queries, "nothing on the evaluation's path").toBe(0);
      // The isolate's first evaluation writes at once, after the response.
      await vi.waitFor(async () => expect(Object.keys((await e.getFlagUsage()).body.evaluatedAt)).toEqual(["banner"]), { timeout: 5_000, interval: 20 });
      const at = (await e.getFlagUsage()).body.evaluatedAt.banner;
      expect(at).toBeGreaterThanOrEqual(before - 1000);
      // Within the minute: other flags, GET /flags/:name and bulk evaluation are noted in
      // memory only. An unknown flag is never noted.
      for (let i = 0; i < 20; i++) {
        expect((await single(e, "theme", { targetingKey: `u${i}` })).status).toBe(200);
        expect((await e.getFlag("plain")).status).toBe(200);
        expect((await e.getFlag("noSuchFlag")).status).toBe(200);
        expect((await bulk(e, { targetingKey: `u${i}` })).status).toBe(200);
      }
      const rows = await e.db.prepare("SELECT name FROM flag_usage ORDER BY name").all();
      expect(rows.results.map((/** @type {any} */ r) => r.name), "one write so far: the first").toEqual(["banner"]);
    } finally {
      await e.dispose();
    }
  });
});

describe("the pipeline's rules apply to the OFREP routes", () => {
  it("maintenance closes them and the flags group limits them", async () => {
    const e = await spawnApp({ seedConfig: { featureFlags: FLAGS, rateLimits: { default: 1000000, flags: 2 } } });
    try {
      const client = e.newClient();
      expect((await single(e, "plain", {}, { client })).status).toBe(200);
      expect((await e.getFlag("plain", {}, { client })).status).toBe(200);
      const limited = await bulk(e, {}, { client });
      expectError(expect, limited, 429, "rate_limited");
      expect(limited.res.headers.get("Retry-After")).toMatch(/^\d+$/);
      const p = await e.patchConfig({ maintenanceMode: true });
      expect(p.status, p.text).toBe(200);
      expectError(expect, await single(e, "plain", {}), 503, "maintenance");
      expectError(expect, await bulk(e, {}), 503, "maintenance");
    } finally {
      await e.dispose();
    }
  });
});
