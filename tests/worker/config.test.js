// @ts-check
// The config store (`config:app` in KV), feature flags, the maintenance gate and
// admin auth, checked black-box against the built Worker in workerd with real local KV and D1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, DEFAULTS, expectError, publicView, sum, timing } from "../helpers.js";
import { HIGH, TestApp, spawnApp } from "../app.js";

/** Config writes take bodies of a whole config document: 1.9 MB (other routes: 64 KiB). */
const LIMIT = 1_900_000;

/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {import("../helpers.js").Answer} Answer */

const SEED = {
  featureFlags: { newCheckout: true, oldBanner: false },
  rateLimits: { default: 1000000, sessions: 10 },
};

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: SEED });
});
afterAll(() => w?.dispose());

/** @returns {Promise<string>} */
const stored = () => w.kv.get("config:app");

/**
 * The admin write of `method`: PUT /admin/config (replaceConfig) or PATCH (patchConfig).
 * @param {string} method
 * @param {TestApp} [env]
 * @returns {(body: unknown, opts?: CallOptions) => Promise<Answer>}
 */
const write = (method, env = w) => (method === "PUT" ? env.replaceConfig.bind(env) : env.patchConfig.bind(env));

/**
 * PUT a whole config through the admin route and check it took.
 * @param {object} cfg @param {TestApp} [env]
 */
async function put(cfg, env = w) {
  const r = await env.replaceConfig(cfg);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** @param {object} body @param {TestApp} [env] */
async function patch(body, env = w) {
  const r = await env.patchConfig(body);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

/** @param {Response} res */
function expectAdminHeaders(res) {
  expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
  expect(res.headers.get("Cache-Control")).toMatch(/no-store/);
}

describe("GET /config", () => {
  // First test of the file on purpose: the isolate has not read config:app yet.
  it("serves the seeded config with missing fields filled with defaults", async () => {
    const r = await w.getConfig({ client: w.newClient() });
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(r.body).toEqual(publicView({ ...DEFAULTS, ...SEED }));
  });

  it("serves the contract's defaults when config:app is absent", async () => {
    const e = await spawnApp();
    try {
      expect(await e.kv.get("config:app")).toBeNull();
      const r = await e.getConfig();
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual(publicView(DEFAULTS));
      expect(r.res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      const f = await e.getFlag("newCheckout");
      expect(f.status, f.text).toBe(200);
      expect(f.body).toEqual({ name: "newCheckout", enabled: false });
    } finally {
      await e.dispose();
    }
  });

  it("keeps serving (defaults) when KV is unavailable, and a write then fails as 503 unavailable", async () => {
    const e = await spawnApp({ kv: false });
    try {
      const r = await e.getConfig();
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual(publicView(DEFAULTS));
      const f = await e.getFlag("x");
      expect(f.status, f.text).toBe(200);
      expect(f.body).toEqual({ name: "x", enabled: false });
      const p = await e.replaceConfig({ maintenanceMode: true });
      const b = expectError(expect, p, 503, "unavailable");
      expect(p.text).not.toMatch(/CACHE|binding|KvStore/i);
      expect(b.error).not.toMatch(/CACHE|binding/i);
    } finally {
      await e.dispose();
    }
  });
});

describe("GET /config is a public view", () => {
  it("shows each flag's value for an empty context, never rules, rollouts, other variants or session lifetimes", async () => {
    const e = await spawnApp();
    try {
      const flags = {
        plain: true,
        beta: {
          variants: { on: true, off: false }, defaultVariant: "off",
          rules: [{ when: { email: { in: ["ceo@example.com"] } }, variant: "on" }],
        },
        layout: { variants: { grid: "grid-v2", list: "list-v1" }, defaultVariant: "list", rollout: { grid: 30, list: 70 } },
        color: { variants: { red: "#f00", blue: "#00f" }, defaultVariant: "blue", enabled: false },
      };
      const put = await e.replaceConfig({ ...HIGH, featureFlags: flags, sessionIdleSeconds: 7200 });
      expect(put.status, put.text).toBe(200);
      const r = await e.getConfig();
      expect(r.status, r.text).toBe(200);
      expect(r.res.headers.get("ETag")).toBe(put.res.headers.get("ETag"));
      expect(r.body.featureFlags).toEqual({ plain: true, beta: false, layout: "list-v1", color: "#00f" });
      expect(Object.keys(r.body).sort()).toEqual(
        ["featureFlags", "maintenanceMode", "rateLimitWindowSeconds", "rateLimits"],
      );
      for (const secret of ["rules", "rollout", "variants", "ceo@example.com", "grid-v2", "#f00", "sessionIdleSeconds", "enabled", "strictRateLimits", "cacheTtlSeconds"]) {
        expect(r.text, secret).not.toContain(secret);
      }
      const admin = await e.getAdminConfig();
      expect(admin.body.featureFlags.color).toMatchObject({ enabled: false, variants: flags.color.variants });
      expect(admin.body.featureFlags.beta.rules).toHaveLength(1);
      expect(admin.body.sessionIdleSeconds).toBe(7200);
    } finally {
      await e.dispose();
    }
  });
});

describe("GET /flags/:name", () => {
  beforeAll(async () => {
    await put({ ...HIGH, featureFlags: { newCheckout: true, oldBanner: false, "a.b:c-d_e": true } });
  });

  it("a set flag is its value", async () => {
    const client = w.newClient();
    let r = await w.getFlag("newCheckout", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "newCheckout", enabled: true });
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    r = await w.getFlag("oldBanner", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "oldBanner", enabled: false });
    r = await w.getFlag("a.b:c-d_e", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "a.b:c-d_e", enabled: true });
  });

  it("an unset flag is false (also at the 64-char maximum)", async () => {
    const client = w.newClient();
    let r = await w.getFlag("neverSet", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "neverSet", enabled: false });
    const long = "f".repeat(64);
    r = await w.getFlag(long, {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: long, enabled: false });
    // Names are case-sensitive.
    r = await w.getFlag("newcheckout", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "newcheckout", enabled: false });
  });

  it("an invalid name is 400 invalid_request", async () => {
    const client = w.newClient();
    for (const name of ["f".repeat(65), "a%20b", "a@b", "a%2Fb", "%C3%A9t%C3%A9"]) {
      const r = await w.getFlag(name, {}, { client });
      const b = expectError(expect, r, 400, "invalid_request");
      expect(b.error).toMatch(/name/i);
    }
  });
});

describe("PUT /admin/config", () => {
  it("replaces the whole config, fills defaults, answers with and stores the config", async () => {
    await put({ ...HIGH, featureFlags: { a: true, b: true }, strictRateLimits: ["users"], cacheTtlSeconds: 5 });
    const r = await w.replaceConfig({ featureFlags: { c: true }, rateLimits: { default: 1000000, users: 7 } });
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expectAdminHeaders(r.res);
    const expected = {
      ...DEFAULTS,
      featureFlags: { c: true },
      rateLimits: { default: 1000000, users: 7 },
    };
    expect(r.body).toEqual(expected);
    expect(JSON.parse(await stored())).toEqual(expected);
    const g = await w.getConfig({ client: w.newClient() });
    expect(g.status, g.text).toBe(200);
    expect(g.body).toEqual(publicView(expected));
  });

  it("the seed guide's {maintenanceMode:false} is a valid whole document (all defaults)", async () => {
    const body = await put({ maintenanceMode: false });
    expect(body).toEqual(DEFAULTS);
    expect(JSON.parse(await stored())).toEqual(DEFAULTS);
    // rateLimits.default is always present, even when rateLimits is given without it.
    const b2 = await put({ rateLimits: { users: 5 } });
    expect(b2.rateLimits).toEqual({ default: 100, users: 5 });
  });

  it("the contract's example round-trips, and boundary values are accepted", async () => {
    const example = {
      featureFlags: { newCheckout: true },
      rateLimits: { default: 100, sessions: 10 },
      maintenanceMode: false,
      strictRateLimits: ["sessions"],
      rateLimitWindowSeconds: 60,
      cacheTtlSeconds: 300,
    };
    // The answer and the stored document fill in the session and header settings.
    expect(await put(example)).toEqual({ ...DEFAULTS, ...example });
    expect(JSON.parse(await stored())).toEqual({ ...DEFAULTS, ...example });
    const lo = {
      ...DEFAULTS,
      featureFlags: { ["f".repeat(64)]: false },
      rateLimits: { default: 1, ["g".repeat(64)]: 1000000 },
      rateLimitWindowSeconds: 1,
      cacheTtlSeconds: 1,
    };
    expect(await put(lo)).toEqual(lo);
    const hi = { ...DEFAULTS, rateLimits: { default: 1000000 }, rateLimitWindowSeconds: 86400, cacheTtlSeconds: 86400 };
    expect(await put(hi)).toEqual(hi);
    expect(JSON.parse(await stored())).toEqual(hi);
  });
});

describe("PATCH /admin/config", () => {
  it("maps merge key by key, null removes a key, scalars replace", async () => {
    await put({
      featureFlags: { a: true, b: false, c: true },
      rateLimits: { default: 1000000, users: 50, flags: 70 },
      strictRateLimits: ["sessions"],
      rateLimitWindowSeconds: 120,
      cacheTtlSeconds: 30,
    });
    const r = await w.patchConfig({
      featureFlags: { b: true, c: null, d: true },
      rateLimits: { users: null, prefs: 5 },
      cacheTtlSeconds: 1,
    });
    expect(r.status, r.text).toBe(200);
    expectAdminHeaders(r.res);
    const expected = {
      ...DEFAULTS,
      featureFlags: { a: true, b: true, d: true },
      rateLimits: { default: 1000000, flags: 70, prefs: 5 },
      maintenanceMode: false,
      strictRateLimits: ["sessions"],
      rateLimitWindowSeconds: 120,
      cacheTtlSeconds: 1,
    };
    expect(r.body).toEqual(expected);
    expect(JSON.parse(await stored())).toEqual(expected);
    const g = await w.getConfig({ client: w.newClient() });
    expect(g.body).toEqual(publicView(expected));

    // A list is not a map: it is replaced whole. Scalars replace.
    const b2 = await patch({ strictRateLimits: ["users"], rateLimitWindowSeconds: 30 });
    expect(b2).toEqual({ ...expected, strictRateLimits: ["users"], rateLimitWindowSeconds: 30 });

    // An empty patch (or an empty map) changes nothing; removing an absent key is a no-op.
    const before = await stored();
    const b3 = await patch({});
    expect(b3).toEqual(JSON.parse(before));
    const b4 = await patch({ featureFlags: {}, rateLimits: { nope: null } });
    expect(b4).toEqual(JSON.parse(before));
    expect(JSON.parse(await stored())).toEqual(JSON.parse(before));
  });

  it("removing rateLimits.default falls back to 100", async () => {
    await put({ rateLimits: { default: 1000000, users: 3 } });
    const b = await patch({ rateLimits: { default: null } });
    expect(b.rateLimits).toEqual({ default: 100, users: 3 });
    expect(JSON.parse(await stored()).rateLimits.default ?? 100).toBe(100);
  });

  it("a PATCH is visible on the very next request", async () => {
    await put(HIGH);
    const client = w.newClient();
    // Warm the isolate's cached copy first.
    let r = await w.getFlag("fresh", {}, { client });
    expect(r.body).toEqual({ name: "fresh", enabled: false });
    r = await w.getConfig({ client });
    expect(r.body.featureFlags).toEqual({});

    await patch({ featureFlags: { fresh: true } });
    r = await w.getFlag("fresh", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "fresh", enabled: true });

    await patch({ featureFlags: { fresh: null }, cacheTtlSeconds: 42 });
    r = await w.getConfig({ client });
    expect(r.body.featureFlags).toEqual({});
    expect((await w.getAdminConfig()).body.cacheTtlSeconds).toBe(42);
    r = await w.getFlag("fresh", {}, { client });
    expect(r.body).toEqual({ name: "fresh", enabled: false });

    // A PUT too.
    await put({ ...HIGH, featureFlags: { fresh: true } });
    r = await w.getFlag("fresh", {}, { client });
    expect(r.body).toEqual({ name: "fresh", enabled: true });
  });
});

describe("admin auth", () => {
  /** @type {[string, Record<string, string>][]} */
  const BAD_AUTH = [
    ["missing header", {}],
    ["wrong token", { Authorization: "Bearer wrong-token" }],
    ["token one char short", { Authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
    ["token with an extra char", { Authorization: `Bearer ${ADMIN_TOKEN}x` }],
    ["token with a changed last char", { Authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}8` }],
    ["Basic scheme", { Authorization: `Basic ${ADMIN_TOKEN}` }],
    ["Token scheme", { Authorization: `Token ${ADMIN_TOKEN}` }],
    ["no scheme", { Authorization: ADMIN_TOKEN }],
    ["Bearer without token", { Authorization: "Bearer" }],
    ["empty Bearer", { Authorization: "Bearer " }],
    ["admin token in a cookie", { Cookie: `__Host-session=${ADMIN_TOKEN}` }],
  ];

  it("missing, wrong or non-Bearer credentials are 401 unauthorized and change nothing", async () => {
    await put({ ...HIGH, featureFlags: { keep: true } });
    const before = await stored();
    for (const method of ["PUT", "PATCH"]) {
      for (const [label, headers] of BAD_AUTH) {
        const r = await write(method)({ featureFlags: { hacked: true }, maintenanceMode: true }, { admin: false, headers });
        expect(r.status, `${method} ${label}: ${r.text}`).toBe(401);
        expectError(expect, r, 401, "unauthorized");
        expectAdminHeaders(r.res);
        expect(r.text).not.toContain(ADMIN_TOKEN);
        expect(await stored(), `${method} ${label}`).toBe(before);
      }
    }
    const g = await w.getConfig({ client: w.newClient() });
    expect(g.status, g.text).toBe(200);
    expect(g.body.featureFlags).toEqual({ keep: true });
    expect(g.body.maintenanceMode).toBe(false);
  });

  it("auth is checked before the body: a bad token with a malformed or invalid body is 401", async () => {
    const before = await stored();
    let r = await w.patchConfig("{", { admin: "nope" });
    expectError(expect, r, 401, "unauthorized");
    r = await w.replaceConfig({ surprise: true }, { admin: false });
    expectError(expect, r, 401, "unauthorized");
    expect(await stored()).toBe(before);
  });

  it("a Worker without ADMIN_TOKEN refuses everyone, whatever token is sent", async () => {
    const e = await spawnApp({ adminToken: null });
    try {
      /** @type {Record<string, string>[]} */
      const attempts = [
        {},
        { Authorization: "Bearer " },
        { Authorization: "Bearer" },
        { Authorization: "Bearer undefined" },
        { Authorization: "Bearer null" },
        { Authorization: `Bearer ${ADMIN_TOKEN}` },
        { Authorization: "Bearer anything" },
      ];
      for (const method of ["PUT", "PATCH"]) {
        for (const headers of attempts) {
          const r = await write(method, e)({ maintenanceMode: true }, { admin: false, headers });
          expect(r.status, `${method} ${JSON.stringify(headers)}: ${r.text}`).toBe(401);
          expectError(expect, r, 401, "unauthorized");
        }
      }
      expect(await e.kv.get("config:app")).toBeNull();
      const g = await e.getConfig();
      expect(g.status, g.text).toBe(200);
      expect(g.body).toEqual(publicView(DEFAULTS));
    } finally {
      await e.dispose();
    }
  });

  it("an empty ADMIN_TOKEN counts as unset; a seeded maintenanceMode gates from the first request", async () => {
    const e = await spawnApp({ adminToken: "", seedConfig: { maintenanceMode: true } });
    try {
      const before = await e.kv.get("config:app");
      /** @type {Record<string, string>[]} */
      const attempts = [{}, { Authorization: "Bearer " }, { Authorization: "Bearer x" }];
      for (const headers of attempts) {
        const r = await e.patchConfig({ maintenanceMode: false }, { admin: false, headers });
        expectError(expect, r, 401, "unauthorized");
      }
      expect(await e.kv.get("config:app")).toBe(before);
      const g = await e.getConfig();
      const b = expectError(expect, g, 503, "maintenance");
      expect(b).toEqual({ error: "Service under maintenance", code: "maintenance" });
      expect(g.res.headers.get("Retry-After")).toMatch(/^[1-9]\d*$/);
      const h = await e.getHealth();
      expect(h.status).toBe(200);
      expect(h.body).toMatchObject({ status: "ok" });
    } finally {
      await e.dispose();
    }
  });
});

describe("bad input for PUT and PATCH", () => {
  const MALFORMED = ["{", "", "   ", "{'a':1}", "not json", '{"maintenanceMode": tru}', '{"a":1}{', "[".repeat(10000)];

  // [body, a substring the error message must contain (the field)].
  /** @type {[object, string][]} */
  const INVALID = [
    [{ maintenanceMode: "yes" }, "maintenanceMode"],
    [{ maintenanceMode: 1 }, "maintenanceMode"],
    [{ featureFlags: [] }, "featureFlags"],
    [{ featureFlags: "on" }, "featureFlags"],
    [{ featureFlags: { newCheckout: "true" } }, "newCheckout"],
    [{ featureFlags: { newCheckout: 1 } }, "newCheckout"],
    [{ featureFlags: { "bad name": true } }, "featureFlags"],
    [{ featureFlags: { ["f".repeat(65)]: true } }, "featureFlags"],
    [{ featureFlags: { "": true } }, "featureFlags"],
    [{ featureFlags: { "a/b": true } }, "featureFlags"],
    [{ rateLimits: 5 }, "rateLimits"],
    [{ rateLimits: { default: 0 } }, "rateLimits"],
    [{ rateLimits: { burstGroup: 0 } }, "burstGroup"],
    [{ rateLimits: { burstGroup: 1000001 } }, "burstGroup"],
    [{ rateLimits: { burstGroup: -1 } }, "burstGroup"],
    [{ rateLimits: { burstGroup: 1.5 } }, "burstGroup"],
    [{ rateLimits: { burstGroup: "10" } }, "burstGroup"],
    [{ rateLimits: { burstGroup: true } }, "burstGroup"],
    [{ rateLimits: { "bad group": 10 } }, "rateLimits"],
    [{ rateLimitWindowSeconds: 0 }, "rateLimitWindowSeconds"],
    [{ rateLimitWindowSeconds: 86401 }, "rateLimitWindowSeconds"],
    [{ rateLimitWindowSeconds: "60" }, "rateLimitWindowSeconds"],
    [{ rateLimitWindowSeconds: 1.5 }, "rateLimitWindowSeconds"],
    [{ rateLimitWindowSeconds: -60 }, "rateLimitWindowSeconds"],
    [{ cacheTtlSeconds: 0 }, "cacheTtlSeconds"],
    [{ cacheTtlSeconds: 86401 }, "cacheTtlSeconds"],
    [{ cacheTtlSeconds: "300" }, "cacheTtlSeconds"],
    [{ cacheTtlSeconds: 1e12 }, "cacheTtlSeconds"],
    [{ strictRateLimits: "sessions" }, "strictRateLimits"],
    [{ strictRateLimits: [1] }, "strictRateLimits"],
    [{ strictRateLimits: ["ok", "x y"] }, "strictRateLimits"],
    [{ strictRateLimits: { sessions: true } }, "strictRateLimits"],
    [{ surprise: true }, "surprise"],
    [{ featureFlags: { a: true }, maintenance: true }, "maintenance"],
    [{ FeatureFlags: { a: true } }, "FeatureFlags"],
  ];

  // Valid JSON that is not an object.
  const NOT_OBJECT = ["[]", "[{}]", "null", "42", '"config"', "true"];

  /** @type {string} */
  let before;
  beforeAll(async () => {
    await put({ ...HIGH, featureFlags: { stable: true }, rateLimits: { default: 1000000, users: 9 } });
    before = await stored();
    expect(before).not.toBeNull();
  });

  for (const method of ["PUT", "PATCH"]) {
    it(`${method}: malformed JSON is 400 invalid_json, KV unchanged`, async () => {
      for (const body of MALFORMED) {
        const r = await write(method)(body, { headers: { "Content-Type": "application/json" } });
        expect(r.status, `${JSON.stringify(body.slice(0, 30))}: ${r.text}`).toBe(400);
        expectError(expect, r, 400, "invalid_json");
        expectAdminHeaders(r.res);
        expect(await stored()).toBe(before);
      }
    });

    it(`${method}: wrong types, unknown fields, bad names and out-of-range limits are 400 invalid_request naming the field, KV unchanged`, async () => {
      for (const [body, field] of INVALID) {
        const r = await write(method)(body);
        expect(r.status, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`).toBe(400);
        const b = expectError(expect, r, 400, "invalid_request");
        expect(b.error, JSON.stringify(body).slice(0, 80)).toContain(field);
        expectAdminHeaders(r.res);
        expect(await stored(), JSON.stringify(body).slice(0, 80)).toBe(before);
      }
      for (const body of NOT_OBJECT) {
        const r = await write(method)(body, { headers: { "Content-Type": "application/json" } });
        expect(r.status, `${body}: ${r.text}`).toBe(400);
        expectError(expect, r, 400, "invalid_request");
        expect(await stored()).toBe(before);
      }
      // One bad field rejects the whole write: the valid parts are not applied either.
      const r = await write(method)({ featureFlags: { stable: false, other: true }, cacheTtlSeconds: 0 });
      const b = expectError(expect, r, 400, "invalid_request");
      expect(b.error).toContain("cacheTtlSeconds");
      expect(await stored()).toBe(before);
      const g = await w.getConfig({ client: w.newClient() });
      expect(g.status, g.text).toBe(200);
      expect(JSON.stringify(g.body)).toBe(JSON.stringify(publicView(JSON.parse(before))));
    });

    it(`${method}: a body over 1.9 MB is 413 payload_too_large, KV unchanged; exactly 1.9 MB is accepted`, async () => {
      // Valid JSON, but too big.
      const big = JSON.stringify({ featureFlags: { stable: true } }) + " ".repeat(LIMIT);
      expect(big.length).toBeGreaterThan(LIMIT);
      let r = await write(method)(big);
      expectError(expect, r, 413, "payload_too_large");
      expectAdminHeaders(r.res);
      expect(await stored()).toBe(before);

      // A lot of flags (valid names) over 1.9 MB.
      /** @type {Record<string, boolean>} */
      const flags = {};
      for (let i = 0; i < 55_000; i++) flags[`flag_${i}_${"x".repeat(20)}`] = true;
      const many = JSON.stringify({ featureFlags: flags });
      expect(many.length).toBeGreaterThan(LIMIT);
      r = await write(method)(many);
      expectError(expect, r, 413, "payload_too_large");
      expect(await stored()).toBe(before);

      // Streamed, without Content-Length (chunked): refused once the bytes pass the limit.
      const streamed = new TextEncoder().encode('{"featureFlags":{"s":true}}' + " ".repeat(LIMIT + 16));
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(streamed);
          controller.close();
        },
      });
      r = await write(method)(stream, { headers: { "Content-Type": "application/json" } });
      expect(r.status, r.text).toBe(413);
      expect(r.body.code).toBe("payload_too_large");
      expect(await stored()).toBe(before);

      // Exactly 1.9 MB is within the limit.
      const core = before;
      const exact = core + " ".repeat(LIMIT - Buffer.byteLength(core));
      expect(Buffer.byteLength(exact)).toBe(LIMIT);
      r = await write(method)(exact);
      expect(r.status, r.text.slice(0, 200)).toBe(200);
      expect(r.body).toEqual(JSON.parse(before));
      expect(JSON.parse(await stored())).toEqual(JSON.parse(before));
      before = await stored();
    });
  }
});

describe("maintenance gate", () => {
  it("maintenanceMode true gates every route but /health and /admin/*; false restores service", async () => {
    await put({ ...HIGH, featureFlags: { x: true } });
    const client = w.newClient();
    let r = await w.getConfig({ client });
    expect(r.status, r.text).toBe(200);

    const on = await w.patchConfig({ maintenanceMode: true });
    expect(on.status, on.text).toBe(200);
    expect(on.body.maintenanceMode).toBe(true);
    expect(on.body.featureFlags).toEqual({ x: true });
    expect(JSON.parse(await stored()).maintenanceMode).toBe(true);

    // The very next request is gated.
    /** @type {[string, () => Promise<Answer>][]} */
    const gated = [
      ["GET /config", () => w.getConfig({ client })],
      ["GET /flags/x", () => w.getFlag("x", {}, { client })],
      ["GET /flags/unknownFlag", () => w.getFlag("unknownFlag", {}, { client })],
      ["GET /prefs", () => w.getPrefs(null, { client })],
      ["GET /users/u1", () => w.getUser("u1", { client })],
      ["GET /sessions/current", () => w.getCurrentSession(null, { client })],
      ["POST /sessions", () => w.createSession({ userId: "u1", email: "u1@example.com" }, { client })],
      ["POST /users/batch", () => w.getUsers(["u1"], { client })],
      ["PATCH /prefs", () => w.patchPrefs(null, { theme: "dark" }, { client })],
    ];
    for (const [label, call] of gated) {
      r = await call();
      expect(r.status, `${label}: ${r.text}`).toBe(503);
      expect(r.body, label).toEqual({ error: "Service under maintenance", code: "maintenance" });
      expect(r.res.headers.get("content-type"), label).toMatch(/^application\/json/);
      expect(r.res.headers.get("Retry-After"), label).toMatch(/^[1-9]\d*$/);
      expect(r.res.headers.get("X-Content-Type-Options"), label).toBe("nosniff");
    }
    // The maintenance gate answers before the work: no session was minted in D1.
    const minted = await w.db.prepare("SELECT COUNT(*) AS n FROM sessions").first();
    expect(minted.n).toBe(0);

    // /health is never gated.
    r = await w.getHealth({}, { client });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ok" });

    // Admin config routes still work during maintenance.
    let p = await w.patchConfig({ featureFlags: { y: true } });
    expect(p.status, p.text).toBe(200);
    expect(p.body.maintenanceMode).toBe(true);
    expect(p.body.featureFlags).toEqual({ x: true, y: true });
    expectAdminHeaders(p.res);
    // ...and other admin routes are not gated either.
    r = await w.listSessions();
    expect(r.status, r.text).not.toBe(503);
    // Admin auth still applies during maintenance.
    r = await w.patchConfig({ maintenanceMode: false }, { admin: false });
    expectError(expect, r, 401, "unauthorized");
    r = await w.getConfig({ client });
    expect(r.status, r.text).toBe(503);

    // Switching it off restores service on the next request.
    p = await w.patchConfig({ maintenanceMode: false });
    expect(p.status, p.text).toBe(200);
    expect(p.body.maintenanceMode).toBe(false);
    expect(JSON.parse(await stored()).maintenanceMode).toBe(false);
    r = await w.getConfig({ client });
    expect(r.status, r.text).toBe(200);
    expect(r.body.maintenanceMode).toBe(false);
    expect(r.body.featureFlags).toEqual({ x: true, y: true });
    r = await w.getFlag("y", {}, { client });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ name: "y", enabled: true });
    expect(r.res.headers.get("Retry-After")).toBeNull();
  });

  it("a PUT that turns maintenance on gates at once, and a PUT without it turns it off", async () => {
    const client = w.newClient();
    await put({ ...HIGH, maintenanceMode: true });
    let r = await w.getFlag("x", {}, { client });
    expectError(expect, r, 503, "maintenance");
    expect(r.res.headers.get("Retry-After")).toMatch(/^[1-9]\d*$/);
    // Replace: a document without maintenanceMode means the default, false.
    const b = await put(HIGH);
    expect(b.maintenanceMode).toBe(false);
    r = await w.getFlag("x", {}, { client });
    expect(r.status, r.text).toBe(200);
  });
});

describe("config cache", () => {
  it("50 sequential GET /config read config:app from KV at most 5 times in all", async () => {
    // A fresh Worker (cold isolate cache). The config group is strict (counted in D1), so
    // every KV read in Server-Timing is a config read.
    const e = await spawnApp({ seedConfig: { ...HIGH, strictRateLimits: ["config"] } });
    try {
      const timings = [];
      for (let i = 0; i < 50; i++) {
        const r = await e.getConfig();
        expect(r.status, r.text).toBe(200);
        timings.push(timing(r.res));
      }
      const total = sum(timings);
      // The very first request had to read the config (nothing was cached).
      expect(timings[0].reads).toBeGreaterThanOrEqual(1);
      expect(total.reads).toBeLessThanOrEqual(5);
      expect(total.writes).toBe(0);
      expect(timings.filter((t) => t.reads > 0).length).toBeLessThanOrEqual(5);
    } finally {
      await e.dispose();
    }
  });

  it("steady GET /flags traffic on the default (KV) rate limiter also reads config:app rarely", async () => {
    // Config and approximate rate-limit reads both count here; the limiter may read at most
    // once at first sight of its counter and once a second per sync, so the total stays small.
    await put(HIGH);
    const client = w.newClient();
    const timings = [];
    for (let i = 0; i < 50; i++) {
      const r = await w.getFlag("x", {}, { client });
      expect(r.status).toBe(200);
      timings.push(timing(r.res));
    }
    expect(timings.filter((t) => t.reads > 0).length).toBeLessThan(25);
  });
});
