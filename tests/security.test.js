// Hardening (issue 8): every bad input and every storage fault, per route, against the built
// Worker in workerd. CASES is the table of what is tried; each row runs as one test and its
// OBSERVED outcome is rendered into SECURITY.md (between `<!-- cases:begin -->` and
// `<!-- cases:end -->`). The last test fails when that block differs from what was observed;
// `UPDATE_SECURITY_MD=1 npx vitest run tests/security.test.js` rewrites it instead.
//
// Every response, in every mode, is checked for: JSON content type (all but 204),
// `Server-Timing` in the contract's format, `X-Content-Type-Options: nosniff`, no CORS header
// (every request carries a foreign `Origin`), `Cache-Control: no-store` on session,
// preference and admin routes, the contract's error shape on 4xx/5xx, and for every 5xx an
// opaque body that names no binding, query or stack and holds no secret.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN, DEFAULTS, ROOT, boot, timing } from "./helpers.js";

// ---------------------------------------------------------------------------------------
// Workers: the normal one, and the fault modes (a binding left out).

const HIGH = { rateLimits: { default: 1000000 } };
const SEED = { ...HIGH, featureFlags: { newCheckout: true }, cacheTtlSeconds: 1 };
const SEED_NO_D1 = { ...HIGH, featureFlags: { newCheckout: true } };

const WORKERS = {
  normal: { seedConfig: SEED },
  noD1: { d1: false, seedConfig: SEED_NO_D1 },
  // The same fault, with the `flags` group on the strict (D1) tier.
  noD1Strict: { d1: false, seedConfig: { ...HIGH, strictRateLimits: ["flags"] } },
  // No KV: config:app cannot be seeded, so the defaults apply (100 requests per client and
  // group per 60 s); every row uses a fresh client.
  noKV: { kv: false },
};
const booted = {};
const worker = (name) => (booted[name] ??= boot(WORKERS[name]));

beforeAll(async () => {
  await worker("normal");
});
afterAll(async () => {
  for (const p of Object.values(booted)) await (await p).dispose();
});

// ---------------------------------------------------------------------------------------
// Helpers for the rows.

let seq = 0;
/** A fresh id valid as a userId and as a profile id. */
const uid = (tag = "u") => `${tag}_${Date.now().toString(36)}_${++seq}`;
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
/** A well-formed session id (43 chars base64url) that no one minted. */
const unknownSessionId = () => randomBytes(32).toString("base64url");
const KIB = 1024;
/** `text` padded with spaces to exactly `bytes` bytes. */
const pad = (text, bytes) => text + " ".repeat(bytes - Buffer.byteLength(text));
/** A JSON body well over 64 KiB (with a Content-Length). */
const bigBody = (obj = {}) => JSON.stringify({ ...obj, pad: "x".repeat(70 * KIB) });

/** POST /sessions through the Worker; returns {id, userId, email}. */
async function mint(w, userId = uid("s")) {
  const email = `${userId}@example.com`;
  const r = await w.json("/sessions", { method: "POST", admin: true, body: { userId, email }, client: w.newClient() });
  if (r.status !== 201) throw new Error(`setup: POST /sessions → ${r.status} ${r.text}`);
  return { id: r.body.sessionId, userId, email };
}

/** A session that exists only in KV (D1 absent): `session:<sha256 of id>` → its view. */
async function kvOnlySession(w, userId = uid("k")) {
  const id = unknownSessionId();
  const now = Date.now();
  const view = { userId, email: `${userId}@example.com`, createdAt: now, expiresAt: now + 3600_000 };
  await w.kv.put(`session:${sha256(id)}`, JSON.stringify(view));
  return { id, userId, view };
}

/** PUT /admin/users/:id through the Worker. */
async function putUser(w, id = uid("p"), name = `Name of ${id}`) {
  const r = await w.json(`/admin/users/${id}`, { method: "PUT", admin: true, body: { name } });
  if (r.status !== 200) throw new Error(`setup: PUT /admin/users → ${r.status} ${r.text}`);
  return r.body;
}

/** A KV envelope `user:<id>` as the SWR cache writes it. */
async function seedEnvelope(w, id, { ageMs = 0, ttl = 300 } = {}) {
  const data = { id, name: `Cached ${id}`, updatedAt: Date.now() - 10_000 };
  await w.kv.put(`user:${id}`, JSON.stringify({ data, cachedAt: Date.now() - ageMs, ttl }));
  return data;
}

const prefsRow = (w, userId) =>
  w.db.prepare("SELECT theme, language, notifications, version FROM preferences WHERE user_id = ?").bind(userId).first();
const sessionRow = (w, hash) => w.db.prepare("SELECT * FROM sessions WHERE id_hash = ?").bind(hash).first();
const userRow = (w, id) => w.db.prepare("SELECT id, name FROM users WHERE id = ?").bind(id).first();
const usersOf = async (w, userId) =>
  (await w.db.prepare("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first()).n;

/** GET /sessions/current with `id`; returns the status. */
const sessionStatus = async (w, id) => (await w.fetch("/sessions/current", { session: id, client: w.newClient() })).status;

/** Setup + check pair: the stored config:app is byte-for-byte unchanged by the request. */
const keepsConfig = {
  setup: async (w) => ({ before: await w.kv.get("config:app") }),
  check: async (r, ctx, w) => expect(await w.kv.get("config:app")).toBe(ctx.before),
};

/** Setup for PATCH /prefs rows on the normal Worker: a fresh session, nothing stored yet. */
const freshPrefsUser = async (w) => mint(w);
/** Check: a rejected PATCH wrote nothing (no D1 row, no KV copy). */
const prefsUntouched = async (r, ctx, w) => {
  expect(await prefsRow(w, ctx.userId)).toBeNull();
  expect(await w.kv.get(`prefs:${ctx.userId}`)).toBeNull();
};

/** Check: a rejected POST /sessions created no session for the row's user. */
const noSessionFor = (userId) => async (r, ctx, w) => expect(await usersOf(w, userId)).toBe(0);

/**
 * The two rows every admin route gets: no `Authorization`, and a wrong admin token. Both are
 * 401 `unauthorized`, and `check` proves nothing changed.
 */
function adminAuthRows(route, { setup, request, check }) {
  return [
    ["no Authorization", {}],
    ["wrong admin token", { admin: "wrong-token" }],
  ].map(([situation, auth]) => ({
    route,
    situation,
    ...(setup && { setup }),
    request: (ctx) => ({ ...request(ctx), ...auth }),
    expect: { status: 401, code: "unauthorized", ...(check && { check }) },
  }));
}

/** Rows that waited for room in the fixed window (setup only; nothing asserts on time). */
async function roomInWindow(seconds, needMs) {
  const len = seconds * 1000;
  const left = len - (Date.now() % len);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 50));
}

// ---------------------------------------------------------------------------------------
// The table. Row: {route, situation, worker?, setup?(w) → ctx, request (object or fn of ctx),
// expect: {status, code?, headers?, check?(r, ctx, w)}}. request: {method, path, body,
// headers, admin, session, stream?: bytes (no Content-Length), repeat?: n}.

const CASES = [
  // --- GET /health ------------------------------------------------------------------------
  {
    route: "GET /health",
    situation: "plain request",
    request: { path: "/health" },
    expect: {
      status: 200,
      check: (r) => {
        expect(r.body).toMatchObject({ status: "ok" });
        expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
        expect(timing(r.res)).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });
      },
    },
  },
  {
    route: "GET /health",
    situation: "query string of 8 KiB",
    request: { path: `/health?junk=${"j".repeat(8 * KIB)}` },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },
  {
    route: "GET /health",
    situation: "POST instead of GET",
    request: { method: "POST", path: "/health", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    route: "GET /health",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/health" },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },
  {
    route: "GET /health",
    situation: "KV binding absent",
    worker: "noKV",
    request: { path: "/health" },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },

  // --- GET /config ------------------------------------------------------------------------
  {
    route: "GET /config",
    situation: "plain request",
    request: { path: "/config" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ ...DEFAULTS, ...SEED }) },
  },
  {
    route: "GET /config",
    situation: "query string of 8 KiB (ignored)",
    request: { path: `/config?x=${"q".repeat(8 * KIB)}` },
    expect: { status: 200, check: (r) => expect(r.body.rateLimits.default).toBe(1000000) },
  },
  {
    route: "GET /config",
    situation: "DELETE instead of GET",
    request: { method: "DELETE", path: "/config" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    route: "GET /config",
    situation: "CORS preflight (OPTIONS) from another origin",
    request: { method: "OPTIONS", path: "/config", headers: { "Access-Control-Request-Method": "GET" } },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    route: "GET /config",
    situation: "extra path segment (`/config/extra`)",
    request: { path: "/config/extra" },
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "GET /config",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/config" },
    expect: {
      status: 200,
      check: (r) => {
        expect(r.body.rateLimits.default).toBe(1000000);
        expect(r.body.featureFlags.newCheckout).toBe(true);
      },
    },
  },
  {
    route: "GET /config",
    situation: "KV binding absent: the defaults",
    worker: "noKV",
    request: { path: "/config" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual(DEFAULTS) },
  },
  {
    route: "GET /config",
    situation: "KV binding absent: 110 requests from one client, over the default limit of 100 (approximate tier fails open)",
    worker: "noKV",
    setup: () => roomInWindow(60, 5000),
    request: { path: "/config", repeat: 110 },
    expect: { status: 200 },
  },

  // --- GET /flags/:name -------------------------------------------------------------------
  {
    route: "GET /flags/:name",
    situation: "a set flag",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: true }) },
  },
  {
    route: "GET /flags/:name",
    situation: "name at the 64-character limit",
    request: { path: `/flags/${"f".repeat(64)}` },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "f".repeat(64), enabled: false }) },
  },
  {
    route: "GET /flags/:name",
    situation: "name of 65 characters",
    request: { path: `/flags/${"f".repeat(65)}` },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/name/) },
  },
  {
    route: "GET /flags/:name",
    situation: "name with forbidden characters (`a%20b`, `<script>`)",
    request: { path: "/flags/a%20b%3Cscript%3E" },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.text).not.toMatch(/<script>/) },
  },
  {
    route: "GET /flags/:name",
    situation: "name with a slash (`/flags/a/b`)",
    request: { path: "/flags/a/b" },
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "GET /flags/:name",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: true }) },
  },
  {
    route: "GET /flags/:name",
    situation: "D1 binding absent, `flags` a strict rate-limit group (fails closed)",
    worker: "noD1Strict",
    request: { path: "/flags/newCheckout" },
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "GET /flags/:name",
    situation: "KV binding absent",
    worker: "noKV",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: false }) },
  },

  // --- POST /ofrep/v1/evaluate/flags(/:key) ----------------------------------------------
  // Bad bodies get the OpenFeature protocol's error shape (tests/worker/flags.test.js); the
  // rows here are the ones the pipeline answers, and the storage faults.
  {
    route: "POST /ofrep/v1/evaluate/flags/:key",
    situation: "body of 70 KiB",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags/newCheckout", body: bigBody({ context: {} }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    route: "POST /ofrep/v1/evaluate/flags/:key",
    situation: "GET instead of POST",
    request: { path: "/ofrep/v1/evaluate/flags/newCheckout" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "POST" } },
  },
  {
    route: "POST /ofrep/v1/evaluate/flags/:key",
    situation: "D1 binding absent (evaluation needs no D1)",
    worker: "noD1",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags/newCheckout", body: { context: { targetingKey: "u" } } },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ key: "newCheckout", value: true, reason: "STATIC" }) },
  },
  {
    route: "POST /ofrep/v1/evaluate/flags",
    situation: "body of 70 KiB",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags", body: bigBody({ context: {} }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    route: "POST /ofrep/v1/evaluate/flags",
    situation: "KV binding absent (the defaults: no flags)",
    worker: "noKV",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags", body: { context: { targetingKey: "u" } } },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ flags: [], metadata: { configVersion: 0 } }) },
  },

  // --- PUT /admin/config ------------------------------------------------------------------
  {
    route: "PUT /admin/config",
    situation: "valid document",
    request: { method: "PUT", path: "/admin/config", admin: true, body: SEED },
    expect: {
      status: 200,
      check: async (r, ctx, w) => {
        expect(r.body).toEqual({ ...DEFAULTS, ...SEED });
        expect(JSON.parse(await w.kv.get("config:app"))).toEqual({ ...DEFAULTS, ...SEED });
      },
    },
  },
  {
    route: "PUT /admin/config",
    situation: "malformed JSON",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: '{"maintenanceMode": tru' },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "empty body",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: "" },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "JSON that is not an object (`[1,2]`)",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: "[1,2]" },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: 'wrong type (`maintenanceMode: "yes"`)',
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, maintenanceMode: "yes" } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: async (r, ctx, w) => {
        expect(r.body.error).toMatch(/maintenanceMode/);
        await keepsConfig.check(r, ctx, w);
      },
    },
  },
  {
    route: "PUT /admin/config",
    situation: "unknown field",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, debug: true } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: async (r, ctx, w) => {
        expect(r.body.error).toMatch(/debug/);
        await keepsConfig.check(r, ctx, w);
      },
    },
  },
  {
    route: "PUT /admin/config",
    situation: "limit over 1000000",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { rateLimits: { default: 1000001 } } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "flag name of 65 characters",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, featureFlags: { ["f".repeat(65)]: true } } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "cacheTtlSeconds 0",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, cacheTtlSeconds: 0 } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "body of exactly 64 KiB (whitespace-padded)",
    request: { method: "PUT", path: "/admin/config", admin: true, body: pad(JSON.stringify(SEED), 64 * KIB) },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ ...DEFAULTS, ...SEED }) },
  },
  {
    route: "PUT /admin/config",
    situation: "body of 64 KiB + 1 byte",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: pad(JSON.stringify(SEED), 64 * KIB + 1) },
    expect: { status: 413, code: "payload_too_large", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "body without Content-Length that passes 64 KiB and never ends",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, stream: 64 * KIB + 1 },
    expect: {
      status: 413,
      code: "payload_too_large",
      check: async (r, ctx, w) => {
        // Answered while the body was still open: refused before it was read whole.
        expect(ctx.pulled).toBe(64 * KIB + 1);
        await keepsConfig.check(r, ctx, w);
      },
    },
  },
  {
    route: "PUT /admin/config",
    situation: "body over 64 KiB that never ends, no token",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", stream: 64 * KIB + 1 },
    expect: { status: 401, code: "unauthorized", check: keepsConfig.check },
  },
  ...adminAuthRows("PUT /admin/config", {
    setup: keepsConfig.setup,
    request: () => ({ method: "PUT", path: "/admin/config", body: { maintenanceMode: true } }),
    check: keepsConfig.check,
  }),
  {
    route: "PUT /admin/config",
    situation: "right token, `Basic` scheme",
    setup: keepsConfig.setup,
    request: {
      method: "PUT",
      path: "/admin/config",
      headers: { Authorization: `Basic ${ADMIN_TOKEN}` },
      body: { maintenanceMode: true },
    },
    expect: { status: 401, code: "unauthorized", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "admin token with one character changed",
    setup: keepsConfig.setup,
    request: {
      method: "PUT",
      path: "/admin/config",
      admin: ADMIN_TOKEN.slice(0, -1) + (ADMIN_TOKEN.endsWith("9") ? "8" : "9"),
      body: { maintenanceMode: true },
    },
    expect: { status: 401, code: "unauthorized", check: keepsConfig.check },
  },
  {
    route: "PUT /admin/config",
    situation: "POST instead of GET/PUT/PATCH",
    request: { method: "POST", path: "/admin/config", admin: true, body: SEED },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, PUT, PATCH" } },
  },
  {
    route: "PUT /admin/config",
    situation: "D1 binding absent (KV only)",
    worker: "noD1",
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED_NO_D1, maintenanceMode: true } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => {
        // D1 holds the history and the base of every write: without it nothing is written.
        expect(JSON.parse(await w.kv.get("config:app")).maintenanceMode).toBeUndefined();
      },
    },
  },
  {
    route: "PUT /admin/config",
    situation: "KV binding absent",
    worker: "noKV",
    request: { method: "PUT", path: "/admin/config", admin: true, body: { maintenanceMode: true } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => {
        const c = await w.json("/config", { client: w.newClient() });
        expect(c.body).toEqual(DEFAULTS);
      },
    },
  },

  // --- PATCH /admin/config ----------------------------------------------------------------
  {
    route: "PATCH /admin/config",
    situation: "valid merge",
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { featureFlags: { securityRow: true } } },
    expect: {
      status: 200,
      check: (r) => {
        expect(r.body.featureFlags).toEqual({ newCheckout: true, securityRow: true });
        expect(r.body.rateLimits.default).toBe(1000000);
      },
    },
  },
  {
    route: "PATCH /admin/config",
    situation: "malformed JSON",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: "{featureFlags: {}}" },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    route: "PATCH /admin/config",
    situation: 'wrong type (`rateLimits.default: "many"`)',
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { rateLimits: { default: "many" } } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: async (r, ctx, w) => {
        expect(r.body.error).toMatch(/rateLimits\.default/);
        await keepsConfig.check(r, ctx, w);
      },
    },
  },
  {
    route: "PATCH /admin/config",
    situation: "unknown field",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { colour: "red" } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PATCH /admin/config",
    situation: "rateLimitWindowSeconds 86401",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { rateLimitWindowSeconds: 86401 } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PATCH /admin/config",
    situation: "5000 flags of which one has a bad name",
    setup: keepsConfig.setup,
    request: () => {
      const featureFlags = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}`, true]));
      featureFlags["bad name"] = true;
      return { method: "PATCH", path: "/admin/config", admin: true, body: { featureFlags } };
    },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "PATCH /admin/config",
    situation: "body over 64 KiB",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: bigBody() },
    expect: { status: 413, code: "payload_too_large", check: keepsConfig.check },
  },
  ...adminAuthRows("PATCH /admin/config", {
    setup: keepsConfig.setup,
    request: () => ({ method: "PATCH", path: "/admin/config", body: { maintenanceMode: true } }),
    check: keepsConfig.check,
  }),
  {
    route: "PATCH /admin/config",
    situation: "D1 binding absent (KV only)",
    worker: "noD1",
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { featureFlags: { degraded: true } } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => {
        expect(JSON.parse(await w.kv.get("config:app")).featureFlags.degraded).toBeUndefined();
      },
    },
  },
  {
    route: "PATCH /admin/config",
    situation: "KV binding absent",
    worker: "noKV",
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { maintenanceMode: true } },
    expect: { status: 503, code: "unavailable" },
  },

  // --- GET /admin/config, GET /admin/config/history, POST /admin/config/rollback ----------
  ...adminAuthRows("GET /admin/config", { request: () => ({ path: "/admin/config" }) }),
  {
    route: "GET /admin/config",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/config", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
  ...adminAuthRows("GET /admin/config/history", { request: () => ({ path: "/admin/config/history" }) }),
  {
    route: "GET /admin/config/history",
    situation: "cursor that this API never returned",
    request: { path: "/admin/config/history?cursor=%27%3B%20DROP%20TABLE", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /admin/config/history",
    situation: "limit=1000000",
    request: { path: "/admin/config/history?limit=1000000", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows("POST /admin/config/rollback", {
    ...keepsConfig,
    request: () => ({ method: "POST", path: "/admin/config/rollback", body: { version: 1 } }),
  }),
  {
    route: "POST /admin/config/rollback",
    situation: "a version that does not exist",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: 424242 } },
    expect: { status: 404, code: "not_found", check: keepsConfig.check },
  },
  {
    route: "POST /admin/config/rollback",
    situation: "version of the wrong type",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: "1" } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    route: "POST /admin/config/rollback",
    situation: "D1 binding absent",
    worker: "noD1",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: 1 } },
    expect: { status: 503, code: "unavailable", check: keepsConfig.check },
  },

  // --- POST /sessions ---------------------------------------------------------------------
  {
    route: "POST /sessions",
    situation: "valid",
    setup: () => ({ userId: uid("new") }),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: ctx.userId, email: `${ctx.userId}@example.com` },
    }),
    expect: {
      status: 201,
      check: async (r, ctx, w) => {
        const id = r.body.sessionId;
        expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(r.res.headers.get("Set-Cookie")).toBe(
          `session=${id}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=604800`,
        );
        // Stored only as its SHA-256: neither D1 nor KV holds the usable id.
        const row = await sessionRow(w, sha256(id));
        expect(row.user_id).toBe(ctx.userId);
        expect(JSON.stringify(row)).not.toContain(id);
        const { keys } = await w.kv.list({ prefix: "session:" });
        expect(keys.some((k) => k.name === `session:${sha256(id)}`)).toBe(true);
        expect(keys.some((k) => k.name.includes(id))).toBe(false);
        expect(await w.kv.get(`session:${sha256(id)}`)).not.toContain(id);
      },
    },
  },
  {
    route: "POST /sessions",
    situation: "userId at 128 characters, email at 254 bytes (KV key ≤ 512 B, metadata ≤ 1024 B)",
    setup: () => ({ userId: `m${Date.now().toString(36)}`.padEnd(128, "m") }),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: ctx.userId, email: `${"a".repeat(64)}@${"b".repeat(185)}.com` },
    }),
    expect: {
      status: 201,
      check: async (r, ctx, w) => {
        expect(r.body.userId).toHaveLength(128);
        expect(Buffer.byteLength(r.body.email)).toBe(254);
        const key = `session:${sha256(r.body.sessionId)}`;
        expect(Buffer.byteLength(key)).toBeLessThanOrEqual(512);
        const { metadata } = await w.kv.getWithMetadata(key);
        expect(metadata.userId).toBe(ctx.userId);
        expect(Buffer.byteLength(JSON.stringify(metadata))).toBeLessThanOrEqual(1024);
        const listed = (await w.kv.list({ prefix: key })).keys[0];
        // TTL = remaining life (7 days), never below KV's 60 s.
        expect(listed.expiration - Date.now() / 1000).toBeGreaterThan(60);
      },
    },
  },
  {
    route: "POST /sessions",
    situation: "malformed JSON",
    request: { method: "POST", path: "/sessions", admin: true, body: '{"userId":"mj1","email":' },
    expect: { status: 400, code: "invalid_json", check: noSessionFor("mj1") },
  },
  {
    route: "POST /sessions",
    situation: "wrong type (`userId: 42`)",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: 42, email: "a@example.com" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/userId/) },
  },
  {
    route: "POST /sessions",
    situation: "unknown field (`admin: true`)",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: "uf1", email: "uf1@example.com", admin: true },
    },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("uf1") },
  },
  {
    route: "POST /sessions",
    situation: "userId of 129 characters",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "u".repeat(129), email: "a@example.com" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/userId/) },
  },
  {
    route: "POST /sessions",
    situation: "email of 255 bytes",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: "e255", email: `${"a".repeat(64)}@${"b".repeat(186)}.com` },
    },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("e255") },
  },
  {
    route: "POST /sessions",
    situation: "email with a newline (header injection)",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "nl1", email: "a@example.com\nX: y" } },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("nl1") },
  },
  {
    route: "POST /sessions",
    situation: "email missing",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "nomail" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/email/) },
  },
  {
    route: "POST /sessions",
    situation: "body over 64 KiB",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: bigBody({ userId: "big1", email: "big1@example.com" }),
    },
    expect: { status: 413, code: "payload_too_large", check: noSessionFor("big1") },
  },
  ...adminAuthRows("POST /sessions", {
    setup: () => ({ userId: uid("na") }),
    request: (ctx) => ({ method: "POST", path: "/sessions", body: { userId: ctx.userId, email: `${ctx.userId}@example.com` } }),
    check: (r, ctx, w) => noSessionFor(ctx.userId)(r, ctx, w),
  }),
  {
    route: "POST /sessions",
    situation: "a valid session id instead of the admin token",
    setup: (w) => mint(w),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      session: ctx.id,
      body: { userId: "sa1", email: "sa1@example.com" },
    }),
    expect: { status: 401, code: "unauthorized", check: noSessionFor("sa1") },
  },
  {
    route: "POST /sessions",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "d1gone", email: "d1gone@example.com" } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => expect((await w.kv.list({ prefix: "session:" })).keys.length).toBe(ctx.kvSessions),
    },
    setup: async (w) => ({ kvSessions: (await w.kv.list({ prefix: "session:" })).keys.length }),
  },
  {
    route: "POST /sessions",
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: () => ({ userId: uid("nokv") }),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: ctx.userId, email: `${ctx.userId}@example.com` },
    }),
    expect: {
      status: 201,
      check: async (r, ctx, w) => {
        expect((await sessionRow(w, sha256(r.body.sessionId))).user_id).toBe(ctx.userId);
      },
    },
  },

  // --- GET /sessions/current --------------------------------------------------------------
  {
    route: "GET /sessions/current",
    situation: "valid session (Bearer)",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    route: "GET /sessions/current",
    situation: "valid session (cookie)",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: "/sessions/current", headers: { Cookie: `a=b; session=${ctx.id}` } }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    route: "GET /sessions/current",
    situation: "no credentials",
    request: { path: "/sessions/current" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "malformed token (not 43 base64url characters)",
    request: { path: "/sessions/current", session: "not-a-session!" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "well-formed id that was never issued",
    request: () => ({ path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "Bearer token of 16 KiB",
    request: { path: "/sessions/current", session: "A".repeat(16 * KIB) },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "garbage cookie header",
    request: { path: "/sessions/current", headers: { Cookie: ";;==;session;session==\"x" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "the admin token as a session",
    request: { path: "/sessions/current", admin: true },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "revoked session",
    setup: async (w) => {
      const s = await mint(w);
      const d = await w.fetch("/sessions/current", { method: "DELETE", session: s.id, client: w.newClient() });
      if (d.status !== 204) throw new Error(`setup: logout → ${d.status}`);
      return s;
    },
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "expired session (D1 row and KV copy past expiresAt)",
    setup: async (w) => {
      const id = unknownSessionId();
      const userId = uid("exp");
      const now = Date.now();
      await w.db
        .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(sha256(id), userId, `${userId}@example.com`, now - 7200_000, now - 1000)
        .run();
      const view = { userId, email: `${userId}@example.com`, createdAt: now - 7200_000, expiresAt: now - 1000 };
      await w.kv.put(`session:${sha256(id)}`, JSON.stringify(view));
      return { id };
    },
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /sessions/current",
    situation: "PUT instead of GET/DELETE",
    request: { method: "PUT", path: "/sessions/current", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, DELETE" } },
  },
  {
    route: "GET /sessions/current",
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (w) => kvOnlySession(w),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    // A copy written before idle deadlines existed: its idle deadline is its absolute one.
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual({ ...ctx.view, idleExpiresAt: ctx.view.expiresAt }) },
  },
  {
    route: "GET /sessions/current",
    situation: "D1 binding absent, id not in KV",
    worker: "noD1",
    request: () => ({ path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "GET /sessions/current",
    situation: "KV binding absent, session created without KV (read from D1)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.userId).toBe(ctx.userId) },
  },
  {
    route: "GET /sessions/current",
    situation: "KV binding absent, after a logout whose KV delete failed",
    worker: "noKV",
    setup: async (w) => {
      const s = await mint(w);
      await w.fetch("/sessions/current", { method: "DELETE", session: s.id, client: w.newClient() });
      return s;
    },
    request: (ctx) => ({ path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },

  // --- DELETE /sessions/current -----------------------------------------------------------
  {
    route: "DELETE /sessions/current",
    situation: "valid session",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 204,
      check: async (r, ctx, w) => {
        expect(r.text).toBe("");
        expect(r.res.headers.get("Set-Cookie")).toMatch(/^session=; .*Max-Age=0/);
        expect(await w.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect((await sessionRow(w, sha256(ctx.id))).revoked_at).not.toBeNull();
        expect(await sessionStatus(w, ctx.id)).toBe(401);
      },
    },
  },
  {
    route: "DELETE /sessions/current",
    situation: "no credentials",
    request: { method: "DELETE", path: "/sessions/current" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "DELETE /sessions/current",
    situation: "malformed token",
    request: { method: "DELETE", path: "/sessions/current", session: "x".repeat(42) + "!" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "DELETE /sessions/current",
    situation: "well-formed id that was never issued",
    request: () => ({ method: "DELETE", path: "/sessions/current", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "DELETE /sessions/current",
    situation: "Bearer token of 16 KiB",
    request: { method: "DELETE", path: "/sessions/current", session: "A".repeat(16 * KIB) },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "DELETE /sessions/current",
    situation: "already revoked",
    setup: async (w) => {
      const s = await mint(w);
      await w.fetch("/sessions/current", { method: "DELETE", session: s.id, client: w.newClient() });
      return s;
    },
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "DELETE /sessions/current",
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (w) => kvOnlySession(w),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 503,
      code: "unavailable",
      // Nothing half done: the KV copy is still there.
      check: async (r, ctx, w) => expect(JSON.parse(await w.kv.get(`session:${sha256(ctx.id)}`))).toEqual(ctx.view),
    },
  },
  {
    route: "DELETE /sessions/current",
    situation: "KV binding absent (D1 revokes, the KV delete fails)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: "/sessions/current", session: ctx.id }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => {
        expect((await sessionRow(w, sha256(ctx.id))).revoked_at).not.toBeNull();
        expect(await sessionStatus(w, ctx.id)).toBe(401);
      },
    },
  },

  // --- GET /admin/sessions ----------------------------------------------------------------
  {
    route: "GET /admin/sessions",
    situation: "valid, filtered by user",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: `/admin/sessions?userId=${ctx.userId}`, admin: true }),
    expect: {
      status: 200,
      check: (r, ctx) => {
        expect(r.body.sessions.map((s) => s.userId)).toEqual([ctx.userId]);
        expect(Object.keys(r.body.sessions[0]).sort()).toEqual(["createdAt", "email", "expiresAt", "handle", "idleExpiresAt", "userId"]);
        expect(r.text).not.toContain(ctx.id);
        expect(r.text).not.toContain(sha256(ctx.id));
      },
    },
  },
  {
    route: "GET /admin/sessions",
    situation: "limit=1000 (the maximum)",
    request: { path: "/admin/sessions?limit=1000", admin: true },
    expect: { status: 200, check: (r) => expect(Array.isArray(r.body.sessions)).toBe(true) },
  },
  {
    route: "GET /admin/sessions",
    situation: "limit=0",
    request: { path: "/admin/sessions?limit=0", admin: true },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/limit/) },
  },
  {
    route: "GET /admin/sessions",
    situation: "wrong type (`limit=abc`)",
    request: { path: "/admin/sessions?limit=abc", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /admin/sessions",
    situation: "limit=1001",
    request: { path: "/admin/sessions?limit=1001", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /admin/sessions",
    situation: "forged cursor (`' OR 1=1 --`)",
    request: { path: `/admin/sessions?cursor=${encodeURIComponent("1.' OR 1=1 --")}`, admin: true },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/cursor/) },
  },
  {
    route: "GET /admin/sessions",
    situation: "userId of 129 characters",
    request: { path: `/admin/sessions?userId=${"u".repeat(129)}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /admin/sessions",
    situation: "userId with forbidden characters",
    request: { path: `/admin/sessions?userId=${encodeURIComponent("a'; DROP TABLE sessions;--")}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /admin/sessions",
    situation: "unknown query parameter (ignored)",
    request: { path: "/admin/sessions?limit=1&debug=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.sessions.length).toBeLessThanOrEqual(1) },
  },
  ...adminAuthRows("GET /admin/sessions", { request: () => ({ path: "/admin/sessions" }) }),
  {
    route: "GET /admin/sessions",
    situation: "a valid session id instead of the admin token",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: "/admin/sessions", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /admin/sessions",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/sessions", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "GET /admin/sessions",
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: `/admin/sessions?userId=${ctx.userId}`, admin: true }),
    expect: { status: 200, check: (r, ctx) => expect(r.body.sessions.map((s) => s.userId)).toEqual([ctx.userId]) },
  },

  // --- DELETE /admin/users/:userId/sessions -----------------------------------------------
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "valid, user with two sessions",
    setup: async (w) => {
      const a = await mint(w);
      const b = await mint(w, a.userId);
      const other = await mint(w);
      return { ...a, ids: [a.id, b.id], other: other.id };
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 200,
      check: async (r, ctx, w) => {
        expect(r.body).toEqual({ revoked: 2 });
        for (const id of ctx.ids) expect(await sessionStatus(w, id)).toBe(401);
        expect(await sessionStatus(w, ctx.other)).toBe(200);
      },
    },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "userId with forbidden characters",
    request: { method: "DELETE", path: "/admin/users/a%20b%27/sessions", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "userId of 129 characters",
    request: { method: "DELETE", path: `/admin/users/${"u".repeat(129)}/sessions`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows("DELETE /admin/users/:userId/sessions", {
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions` }),
    check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200),
  }),
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "the user's own session id instead of the admin token",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, session: ctx.id }),
    expect: { status: 401, code: "unauthorized", check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200) },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "GET instead of DELETE",
    request: { method: "GET", path: "/admin/users/u1/sessions", admin: true },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "DELETE" } },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "D1 binding absent",
    worker: "noD1",
    setup: (w) => kvOnlySession(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => expect(await w.kv.get(`session:${sha256(ctx.id)}`)).not.toBeNull(),
    },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "KV binding absent, user without sessions",
    worker: "noKV",
    request: () => ({ method: "DELETE", path: `/admin/users/${uid("none")}/sessions`, admin: true }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ revoked: 0 }) },
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    situation: "KV binding absent, user with a session (D1 revokes, the KV delete fails)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}/sessions`, admin: true }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(401),
    },
  },

  // --- GET /prefs -------------------------------------------------------------------------
  {
    route: "GET /prefs",
    situation: "valid session, nothing stored",
    setup: (w) => mint(w),
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ theme: "light", language: "en", notifications: true }) },
  },
  {
    route: "GET /prefs",
    situation: "no credentials",
    request: { path: "/prefs" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /prefs",
    situation: "well-formed id that was never issued",
    request: () => ({ path: "/prefs", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /prefs",
    situation: "malformed session cookie",
    request: { path: "/prefs", headers: { Cookie: "session=../../etc/passwd" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /prefs",
    situation: "the admin token as a session",
    request: { path: "/prefs", admin: true },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "GET /prefs",
    situation: "D1 binding absent, session and preferences in KV",
    worker: "noD1",
    setup: async (w) => {
      const s = await kvOnlySession(w);
      const prefs = { theme: "dark", language: "nl-BE", notifications: false };
      await w.kv.put(`prefs:${s.userId}`, JSON.stringify({ prefs, version: 1 }));
      return { ...s, prefs };
    },
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual(ctx.prefs) },
  },
  {
    route: "GET /prefs",
    situation: "D1 binding absent, session in KV, no KV copy of the preferences",
    worker: "noD1",
    setup: (w) => kvOnlySession(w),
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "GET /prefs",
    situation: "KV binding absent (read from D1)",
    worker: "noKV",
    setup: async (w) => {
      const s = await mint(w);
      await w.db
        .prepare("INSERT INTO preferences (user_id, theme, version, updated_at) VALUES (?, 'dark', 1, ?)")
        .bind(s.userId, Date.now())
        .run();
      return s;
    },
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ theme: "dark", language: "en", notifications: true }) },
  },

  // --- PATCH /prefs -----------------------------------------------------------------------
  {
    route: "PATCH /prefs",
    situation: "valid partial update",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: {
      status: 200,
      check: async (r, ctx, w) => {
        expect(r.body).toEqual({ theme: "dark", language: "en", notifications: true });
        expect((await prefsRow(w, ctx.userId)).theme).toBe("dark");
      },
    },
  },
  {
    route: "PATCH /prefs",
    situation: "malformed JSON",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: '{"theme": "dark"' }),
    expect: { status: 400, code: "invalid_json", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: 'wrong type (`notifications: "yes"`)',
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { notifications: "yes" } }),
    expect: {
      status: 400,
      code: "invalid_request",
      check: async (r, ctx, w) => {
        expect(r.body.error).toMatch(/notifications/);
        await prefsUntouched(r, ctx, w);
      },
    },
  },
  {
    route: "PATCH /prefs",
    situation: 'bad value (`theme: "blue"`)',
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "blue" } }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "unknown field next to a valid one (no partial write)",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark", fontSize: 12 } }),
    expect: {
      status: 400,
      code: "invalid_request",
      check: async (r, ctx, w) => {
        expect(r.body.error).toMatch(/fontSize/);
        await prefsUntouched(r, ctx, w);
      },
    },
  },
  {
    route: "PATCH /prefs",
    situation: "language tag of 36 characters",
    setup: freshPrefsUser,
    request: (ctx) => ({
      method: "PATCH",
      path: "/prefs",
      session: ctx.id,
      body: { language: `en-${"abcdefgh-".repeat(3)}abcdef` },
    }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "language of 60 KiB",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { language: "e".repeat(60 * KIB) } }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "JSON that is not an object (`null`)",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: "null" }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "JSON nested 10000 deep",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: `{"theme":${"[".repeat(10000)}` }),
    expect: { status: 400, code: "invalid_json", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "body over 64 KiB",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: bigBody({ theme: "dark" }) }),
    expect: { status: 413, code: "payload_too_large", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "body over 64 KiB that never ends, no credentials",
    request: { method: "PATCH", path: "/prefs", stream: 64 * KIB + 1 },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "PATCH /prefs",
    situation: "no credentials",
    request: { method: "PATCH", path: "/prefs", body: { theme: "dark" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "PATCH /prefs",
    situation: "well-formed id that was never issued",
    request: () => ({ method: "PATCH", path: "/prefs", session: unknownSessionId(), body: { theme: "dark" } }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    route: "PATCH /prefs",
    situation: "revoked session",
    setup: async (w) => {
      const s = await mint(w);
      await w.fetch("/sessions/current", { method: "DELETE", session: s.id, client: w.newClient() });
      return s;
    },
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: { status: 401, code: "unauthorized", check: prefsUntouched },
  },
  {
    route: "PATCH /prefs",
    situation: "POST instead of GET/PATCH",
    request: { method: "POST", path: "/prefs", body: { theme: "dark" } },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, PATCH" } },
  },
  {
    route: "PATCH /prefs",
    situation: "D1 binding absent (KV copy unchanged)",
    worker: "noD1",
    setup: async (w) => {
      const s = await kvOnlySession(w);
      const copy = JSON.stringify({ prefs: { theme: "light", language: "en", notifications: true }, version: 1 });
      await w.kv.put(`prefs:${s.userId}`, copy);
      return { ...s, copy };
    },
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => {
        expect(await w.kv.get(`prefs:${ctx.userId}`)).toBe(ctx.copy);
        const g = await w.json("/prefs", { session: ctx.id, client: w.newClient() });
        expect(g.body.theme).toBe("light");
      },
    },
  },
  {
    route: "PATCH /prefs",
    situation: "KV binding absent (D1 is the authority)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark", notifications: false } }),
    expect: {
      status: 200,
      check: async (r, ctx, w) => {
        expect(r.body).toEqual({ theme: "dark", language: "en", notifications: false });
        const row = await prefsRow(w, ctx.userId);
        expect([row.theme, row.notifications]).toEqual(["dark", 0]);
      },
    },
  },

  // --- GET /users/:id ---------------------------------------------------------------------
  {
    route: "GET /users/:id",
    situation: "existing profile, cacheTtlSeconds 1 (KV TTL stays ≥ 60 s)",
    setup: async (w) => putUser(w),
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: {
      status: 200,
      headers: { "X-Cache": "MISS" },
      check: async (r, ctx, w) => {
        expect(r.body).toEqual(ctx);
        const listed = (await w.kv.list({ prefix: `user:${ctx.id}` })).keys.find((k) => k.name === `user:${ctx.id}`);
        expect(listed.expiration - Date.now() / 1000).toBeGreaterThan(55);
      },
    },
  },
  {
    route: "GET /users/:id",
    situation: "unknown id",
    request: () => ({ path: `/users/${uid("ghost")}` }),
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "GET /users/:id",
    situation: "id at the 64-character limit (unknown)",
    request: { path: `/users/${"i".repeat(64)}` },
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "GET /users/:id",
    situation: "id of 65 characters",
    request: { path: `/users/${"i".repeat(65)}` },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/id/) },
  },
  {
    route: "GET /users/:id",
    situation: "id with forbidden characters (`a.b`, `%00`)",
    request: { path: "/users/a.b%00" },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /users/:id",
    situation: "POST instead of GET",
    request: { method: "POST", path: "/users/u1", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    route: "GET /users/:id",
    situation: "D1 binding absent, fresh KV copy",
    worker: "noD1",
    setup: async (w) => {
      const id = uid("fresh");
      return { id, data: await seedEnvelope(w, id) };
    },
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "HIT" }, check: (r, ctx) => expect(r.body).toEqual(ctx.data) },
  },
  {
    route: "GET /users/:id",
    situation: "D1 binding absent, KV copy an hour old (stale-if-error)",
    worker: "noD1",
    setup: async (w) => {
      const id = uid("old");
      return { id, data: await seedEnvelope(w, id, { ageMs: 3600_000, ttl: 1 }) };
    },
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "STALE" }, check: (r, ctx) => expect(r.body).toEqual(ctx.data) },
  },
  {
    route: "GET /users/:id",
    situation: "D1 binding absent, no KV copy",
    worker: "noD1",
    request: () => ({ path: `/users/${uid("none")}` }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "GET /users/:id",
    situation: "KV binding absent, after PUT /admin/users/:id",
    worker: "noKV",
    setup: async (w) => putUser(w),
    request: (ctx) => ({ path: `/users/${ctx.id}` }),
    expect: { status: 200, headers: { "X-Cache": "MISS" }, check: (r, ctx) => expect(r.body).toEqual(ctx) },
  },

  // --- POST /users/batch ------------------------------------------------------------------
  {
    route: "POST /users/batch",
    situation: "valid, one known and one unknown id",
    setup: async (w) => ({ user: await putUser(w), ghost: uid("ghost") }),
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: [ctx.user.id, ctx.ghost] } }),
    expect: {
      status: 200,
      check: (r, ctx) => expect(r.body).toEqual({ users: { [ctx.user.id]: ctx.user, [ctx.ghost]: null } }),
    },
  },
  {
    route: "POST /users/batch",
    situation: "100 ids (the maximum)",
    request: () => ({ method: "POST", path: "/users/batch", body: { ids: Array.from({ length: 100 }, () => uid("b")) } }),
    expect: { status: 200, check: (r) => expect(Object.keys(r.body.users)).toHaveLength(100) },
  },
  {
    route: "POST /users/batch",
    situation: "malformed JSON",
    request: { method: "POST", path: "/users/batch", body: '{"ids": ["a",]}' },
    expect: { status: 400, code: "invalid_json" },
  },
  {
    route: "POST /users/batch",
    situation: 'wrong type (`ids: "u1"`)',
    request: { method: "POST", path: "/users/batch", body: { ids: "u1" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids/) },
  },
  {
    route: "POST /users/batch",
    situation: "wrong element type (`ids: [1]`)",
    request: { method: "POST", path: "/users/batch", body: { ids: [1] } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids\[0\]/) },
  },
  {
    route: "POST /users/batch",
    situation: "unknown field",
    request: { method: "POST", path: "/users/batch", body: { ids: ["u1"], fields: ["*"] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "POST /users/batch",
    situation: "empty ids",
    request: { method: "POST", path: "/users/batch", body: { ids: [] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "POST /users/batch",
    situation: "101 ids",
    request: () => ({ method: "POST", path: "/users/batch", body: { ids: Array.from({ length: 101 }, () => uid("b")) } }),
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "POST /users/batch",
    situation: "an id of 65 characters",
    request: { method: "POST", path: "/users/batch", body: { ids: ["ok", "i".repeat(65)] } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids\[1\]/) },
  },
  {
    route: "POST /users/batch",
    situation: "duplicate ids",
    request: { method: "POST", path: "/users/batch", body: { ids: ["dup", "dup"] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "POST /users/batch",
    situation: "body over 64 KiB",
    request: { method: "POST", path: "/users/batch", body: bigBody({ ids: ["u1"] }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    route: "POST /users/batch",
    situation: "GET instead of POST",
    request: { method: "GET", path: "/users/batch" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "POST" } },
  },
  {
    route: "POST /users/batch",
    situation: "D1 binding absent, every id cached",
    worker: "noD1",
    setup: async (w) => {
      const a = uid("ba");
      const b = uid("bb");
      return { users: { [a]: await seedEnvelope(w, a), [b]: await seedEnvelope(w, b) } };
    },
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: Object.keys(ctx.users) } }),
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual({ users: ctx.users }) },
  },
  {
    route: "POST /users/batch",
    situation: "D1 binding absent, one id not cached",
    worker: "noD1",
    setup: async (w) => {
      const a = uid("bc");
      await seedEnvelope(w, a);
      return { ids: [a, uid("miss")] };
    },
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: ctx.ids } }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    route: "POST /users/batch",
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: async (w) => ({ user: await putUser(w), ghost: uid("ghost") }),
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: [ctx.user.id, ctx.ghost] } }),
    expect: {
      status: 200,
      check: (r, ctx) => expect(r.body).toEqual({ users: { [ctx.user.id]: ctx.user, [ctx.ghost]: null } }),
    },
  },

  // --- PUT /admin/users/:id ---------------------------------------------------------------
  {
    route: "PUT /admin/users/:id",
    situation: "valid (the cached copy is invalidated)",
    setup: async (w) => {
      const id = uid("pu");
      await seedEnvelope(w, id);
      return { id };
    },
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "New Name" } }),
    expect: {
      status: 200,
      check: async (r, ctx, w) => {
        expect(r.body.name).toBe("New Name");
        expect(await w.kv.get(`user:${ctx.id}`)).toBeNull();
        expect((await userRow(w, ctx.id)).name).toBe("New Name");
      },
    },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "name of 100 characters (the maximum)",
    setup: () => ({ id: uid("n100") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "é".repeat(100) } }),
    expect: { status: 200, check: (r) => expect(r.body.name).toBe("é".repeat(100)) },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "malformed JSON",
    setup: () => ({ id: uid("pm") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: "{name: Ada}" }),
    expect: { status: 400, code: "invalid_json", check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull() },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "wrong type (`name: 5`)",
    setup: () => ({ id: uid("pt") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: 5 } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull() },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "unknown field",
    setup: () => ({ id: uid("pf") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Ada", role: "admin" } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull() },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "name of 101 characters",
    setup: () => ({ id: uid("po") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "n".repeat(101) } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull() },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "name with control characters",
    setup: () => ({ id: uid("pc") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Ada\u0000\u001b[31m" } }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull() },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "id with forbidden characters (`../x`)",
    request: { method: "PUT", path: "/admin/users/..%2Fx", admin: true, body: { name: "Ada" } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "id of 65 characters",
    request: { method: "PUT", path: `/admin/users/${"i".repeat(65)}`, admin: true, body: { name: "Ada" } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "body over 64 KiB",
    setup: () => ({ id: uid("pb") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: bigBody({ name: "Ada" }) }),
    expect: {
      status: 413,
      code: "payload_too_large",
      check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull(),
    },
  },
  ...adminAuthRows("PUT /admin/users/:id", {
    setup: () => ({ id: uid("pa") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, body: { name: "Ada" } }),
    check: async (r, ctx, w) => expect(await userRow(w, ctx.id)).toBeNull(),
  }),
  {
    route: "PUT /admin/users/:id",
    situation: "D1 binding absent",
    worker: "noD1",
    setup: async (w) => {
      const id = uid("pd");
      const data = await seedEnvelope(w, id);
      return { id, before: await w.kv.get(`user:${id}`), data };
    },
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Changed" } }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, w) => expect(await w.kv.get(`user:${ctx.id}`)).toBe(ctx.before),
    },
  },
  {
    route: "PUT /admin/users/:id",
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: () => ({ id: uid("pk") }),
    request: (ctx) => ({ method: "PUT", path: `/admin/users/${ctx.id}`, admin: true, body: { name: "Kv Less" } }),
    expect: { status: 200, check: async (r, ctx, w) => expect((await userRow(w, ctx.id)).name).toBe("Kv Less") },
  },

  // --- DELETE /admin/users/:id (account deletion) -----------------------------------------
  {
    route: "DELETE /admin/users/:id",
    situation: "valid (sessions, preferences and profile gone, in D1 and KV)",
    setup: async (w) => {
      const s = await mint(w);
      await w.json("/prefs", { method: "PATCH", session: s.id, body: { theme: "dark" } });
      await putUser(w, s.userId);
      await seedEnvelope(w, s.userId);
      return s;
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: {
      status: 204,
      check: async (r, ctx, w) => {
        expect(await usersOf(w, ctx.userId)).toBe(0);
        expect(await prefsRow(w, ctx.userId)).toBeNull();
        expect(await userRow(w, ctx.userId)).toBeNull();
        expect(await w.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect(await w.kv.get(`prefs:${ctx.userId}`)).toBeNull();
        expect(await w.kv.get(`user:${ctx.userId}`)).toBeNull();
        expect(await sessionStatus(w, ctx.id)).toBe(401);
      },
    },
  },
  {
    route: "DELETE /admin/users/:id",
    situation: "id with forbidden characters (`a%20b`)",
    request: { method: "DELETE", path: "/admin/users/a%20b", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "DELETE /admin/users/:id",
    situation: "id of 129 characters",
    request: { method: "DELETE", path: `/admin/users/${"i".repeat(129)}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows("DELETE /admin/users/:id", {
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}` }),
    check: async (r, ctx, w) => {
      expect(await usersOf(w, ctx.userId)).toBe(1);
      expect(await sessionStatus(w, ctx.id)).toBe(200);
    },
  }),
  {
    route: "DELETE /admin/users/:id",
    situation: "D1 binding absent",
    worker: "noD1",
    setup: async (w) => kvOnlySession(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: { status: 503, code: "unavailable", check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200) },
  },
  {
    route: "DELETE /admin/users/:id",
    situation: "KV binding absent (the D1 rows go, the copies cannot)",
    worker: "noKV",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/users/${ctx.userId}`, admin: true }),
    expect: { status: 503, code: "unavailable", check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(401) },
  },

  // --- DELETE /admin/sessions/:handle ------------------------------------------------------
  {
    route: "DELETE /admin/sessions/:handle",
    situation: "valid (that session revoked, its KV copy gone)",
    setup: async (w) => {
      const s = await mint(w);
      const row = await sessionRow(w, sha256(s.id));
      return { ...s, handle: row.handle };
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.handle}`, admin: true }),
    expect: {
      status: 204,
      check: async (r, ctx, w) => {
        expect(await w.kv.get(`session:${sha256(ctx.id)}`)).toBeNull();
        expect(await sessionStatus(w, ctx.id)).toBe(401);
      },
    },
  },
  {
    route: "DELETE /admin/sessions/:handle",
    situation: "unknown handle",
    request: { method: "DELETE", path: `/admin/sessions/${"0".repeat(32)}`, admin: true },
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "DELETE /admin/sessions/:handle",
    situation: "the session id instead of a handle",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.id}`, admin: true }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200) },
  },
  {
    route: "DELETE /admin/sessions/:handle",
    situation: "the id's hash instead of a handle",
    setup: (w) => mint(w),
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${sha256(ctx.id)}`, admin: true }),
    expect: { status: 400, code: "invalid_request", check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200) },
  },
  ...adminAuthRows("DELETE /admin/sessions/:handle", {
    setup: async (w) => {
      const s = await mint(w);
      return { ...s, handle: (await sessionRow(w, sha256(s.id))).handle };
    },
    request: (ctx) => ({ method: "DELETE", path: `/admin/sessions/${ctx.handle}` }),
    check: async (r, ctx, w) => expect(await sessionStatus(w, ctx.id)).toBe(200),
  }),
  {
    route: "DELETE /admin/sessions/:handle",
    situation: "D1 binding absent",
    worker: "noD1",
    request: { method: "DELETE", path: `/admin/sessions/${"a".repeat(32)}`, admin: true },
    expect: { status: 503, code: "unavailable" },
  },

  // --- GET /health?deep=1 and GET / --------------------------------------------------------
  ...adminAuthRows("GET /health?deep=1", { request: () => ({ path: "/health?deep=1" }) }),
  {
    route: "GET /health?deep=1",
    situation: "deep=yes (not 1, true, 0 or false)",
    request: { path: "/health?deep=yes", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    route: "GET /health?deep=1",
    situation: "D1 binding absent (reported, not failed)",
    worker: "noD1",
    request: { path: "/health?deep=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.d1).toMatchObject({ bound: false, ok: false }) },
  },
  {
    route: "GET /health?deep=1",
    situation: "KV binding absent (reported, not failed)",
    worker: "noKV",
    request: { path: "/health?deep=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.kv).toMatchObject({ bound: false, ok: false }) },
  },
  {
    route: "GET /",
    situation: "plain request",
    request: { path: "/" },
    expect: { status: 200, check: (r) => expect(r.body.name).toBe("edgestate") },
  },
  {
    route: "GET /",
    situation: "KV binding absent (no storage work at all)",
    worker: "noKV",
    request: { path: "/" },
    expect: { status: 200, check: (r) => expect(timing(r.res)).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 }) },
  },

  // --- any other path ---------------------------------------------------------------------
  {
    route: "any other path",
    situation: "unknown path (`/.env`)",
    request: { path: "/.env" },
    expect: { status: 404, code: "not_found" },
  },
  {
    route: "any other path",
    situation: "encoded slash (`/admin%2Fconfig`)",
    request: { path: "/admin%2Fconfig", admin: true },
    expect: { status: 404, code: "not_found" },
  },
];

// ---------------------------------------------------------------------------------------
// Running a row.

const ORIGIN = "https://attacker.example";
/** Words an opaque 5xx body must not contain (case-sensitive where they are acronyms). */
const LEAKS = [/DB/, /CACHE/, /D1/, /KV/, /binding/i, /SELECT/i, /INSERT/i, /sql/i, /stack/i, /Error:/, /panic/i, /wasm/i, /unreachable/i];

/** Network errors of a client still writing a body the Worker chose not to read. */
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

async function send(w, spec, client, ctx) {
  const headers = new Headers(spec.headers ?? {});
  headers.set("Origin", ORIGIN);
  if (spec.stream) {
    // A chunked body without Content-Length: `spec.stream` bytes, then it stalls and never
    // ends. A Worker that waited for the whole body would never answer.
    if (spec.admin) headers.set("Authorization", `Bearer ${spec.admin === true ? ADMIN_TOKEN : spec.admin}`);
    if (spec.session) headers.set("Authorization", `Bearer ${spec.session}`);
    headers.set("CF-Connecting-IP", client);
    ctx.pulled = 0;
    const body = new ReadableStream({
      pull(c) {
        if (ctx.pulled >= spec.stream) return new Promise(() => {});
        const n = Math.min(16 * KIB, spec.stream - ctx.pulled);
        ctx.pulled += n;
        c.enqueue(new Uint8Array(n).fill(0x20));
      },
    });
    let timer;
    const never = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer: the Worker waited for a body that never ends")), 10_000);
    });
    try {
      const res = await Promise.race([
        w.mf.dispatchFetch(`http://127.0.0.1${spec.path}`, { method: spec.method, headers, body, duplex: "half" }),
        never,
      ]);
      return await received(res);
    } finally {
      clearTimeout(timer);
    }
  }
  // When the Worker answers without reading a large body (as it should), workerd may close
  // the connection while the client is still writing it; the client then sees a reset
  // instead of the answer. That is transport, not the Worker: send again (at most 3 times).
  for (let attempt = 1; ; attempt++) {
    try {
      return await received(await w.fetch(spec.path, { ...spec, headers, client }));
    } catch (e) {
      const code = e.cause?.code ?? e.code;
      if (attempt >= 3 || !RESET.has(code)) throw e;
    }
  }
}

async function received(res) {
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = undefined;
  }
  return { res, status: res.status, text, body };
}

/** The observed outcome, as it goes into SECURITY.md. */
function outcome(row, r, detail) {
  let s = String(r.status);
  if (r.status >= 400 && r.body?.code) s += ` ${r.body.code}`;
  for (const name of Object.keys(row.expect.headers ?? {})) {
    s += `, ${name}: ${r.res.headers.get(name) ?? "(absent)"}`;
  }
  return detail ? `${s} ${detail}` : s;
}

const observed = new Map();
const opaqueBodies = new Map();

/** Assertions every response must pass, whatever the row. */
function universal(row, r, ctx) {
  const h = r.res.headers;
  const where = `${row.route} / ${row.situation}: ${r.status} ${r.text.slice(0, 300)}`;
  if (r.status === 204) {
    expect(r.text, where).toBe("");
  } else {
    expect(h.get("content-type"), where).toMatch(/^application\/json/);
    expect(r.body, `${where} (not JSON)`).not.toBeUndefined();
  }
  expect(() => timing(r.res), where).not.toThrow();
  expect(h.get("X-Content-Type-Options"), where).toBe("nosniff");
  expect(h.get("Access-Control-Allow-Origin"), where).toBeNull();
  expect(h.get("Access-Control-Allow-Credentials"), where).toBeNull();
  // Session, preference and admin responses are never cached (router-level 404/405 excepted).
  if (/^(\S+) \/(admin|sessions|prefs)/.test(row.route) && ![404, 405].includes(r.status)) {
    expect(h.get("Cache-Control"), where).toBe("no-store");
  }
  if (r.status >= 400) {
    expect(Object.keys(r.body).sort(), where).toEqual(["code", "error"]);
    expect(typeof r.body.error).toBe("string");
    expect(r.body.error.length).toBeGreaterThan(0);
    expect(r.text, where).not.toContain(ADMIN_TOKEN);
    if (ctx.id) expect(r.text, where).not.toContain(ctx.id);
  }
  if (r.status === 429) expect(h.get("Retry-After"), where).toMatch(/^\d+$/);
  if (r.status >= 500) {
    expect(["unavailable", "internal", "maintenance"], where).toContain(r.body.code);
    for (const leak of LEAKS) expect(r.text, `${where} leaks ${leak}`).not.toMatch(leak);
    if (r.body.code === "maintenance") expect(h.get("Retry-After"), where).toMatch(/^\d+$/);
    const seen = opaqueBodies.get(r.body.code) ?? new Set();
    seen.add(r.text);
    opaqueBodies.set(r.body.code, seen);
  }
}

async function runRow(row, index) {
  const w = await worker(row.worker ?? "normal");
  const ctx = { ...((row.setup ? await row.setup(w) : null) ?? {}) };
  const spec = typeof row.request === "function" ? row.request(ctx) : row.request;
  const client = w.newClient();
  const n = spec.repeat ?? 1;
  let r;
  let i = 0;
  while (i < n) {
    i += 1;
    r = await send(w, spec, client, ctx);
    universal(row, r, ctx);
    if (r.status !== row.expect.status) break;
  }
  const detail = n > 1 ? (r.status === row.expect.status ? `on all ${n} requests` : `on request ${i} of ${n}`) : "";
  observed.set(index, outcome(row, r, detail));

  expect(r.status, `${r.status} ${r.text.slice(0, 300)}${n > 1 ? ` (${detail})` : ""}`).toBe(row.expect.status);
  if (row.expect.code) expect(r.body.code).toBe(row.expect.code);
  for (const [name, value] of Object.entries(row.expect.headers ?? {})) {
    expect(r.res.headers.get(name), name).toBe(value);
  }
  if (row.expect.check) await row.expect.check(r, ctx, w);
}

// ---------------------------------------------------------------------------------------
// SECURITY.md: the generated table.

const SECURITY_MD = join(ROOT, "SECURITY.md");
const BEGIN = "<!-- cases:begin -->";
const END = "<!-- cases:end -->";
const cell = (s) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function renderTable() {
  const lines = [
    "| Route | Input or fault | Observed outcome |",
    "|---|---|---|",
    ...CASES.map((row, i) => `| \`${cell(row.route)}\` | ${cell(row.situation)} | ${cell(observed.get(i))} |`),
  ];
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------
// The tests.

describe("bad inputs and storage faults, per route", () => {
  CASES.forEach((row, index) => {
    it(`${row.route} — ${row.situation}`, () => runRow(row, index));
  });
});

describe("across all rows", () => {
  it("every 5xx of one code has one body, whatever failed", () => {
    expect(opaqueBodies.size).toBeGreaterThan(0);
    for (const [code, bodies] of opaqueBodies) expect([...bodies], code).toHaveLength(1);
  });

  it("every route of the contract has rows for both faults", () => {
    const routes = [
      "GET /health",
      "GET /config",
      "GET /flags/:name",
      "PUT /admin/config",
      "PATCH /admin/config",
      "POST /sessions",
      "GET /sessions/current",
      "DELETE /sessions/current",
      "GET /admin/sessions",
      "DELETE /admin/users/:userId/sessions",
      "GET /prefs",
      "PATCH /prefs",
      "GET /users/:id",
      "POST /users/batch",
      "PUT /admin/users/:id",
    ];
    for (const route of routes) {
      const rows = CASES.filter((c) => c.route === route);
      expect(rows.some((c) => c.worker?.startsWith("noD1")), `${route}: D1 absent`).toBe(true);
      expect(rows.some((c) => c.worker === "noKV"), `${route}: KV absent`).toBe(true);
    }
  });

  it("SECURITY.md lists exactly the observed outcomes", () => {
    const missing = CASES.map((row, i) => (observed.has(i) ? null : `${row.route} — ${row.situation}`)).filter(Boolean);
    expect(missing, "rows that did not run (the table needs the whole file)").toEqual([]);
    const table = renderTable();
    const doc = readFileSync(SECURITY_MD, "utf8");
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    expect(start, `SECURITY.md has no ${BEGIN}`).toBeGreaterThanOrEqual(0);
    expect(end, `SECURITY.md has no ${END}`).toBeGreaterThan(start);
    const current = doc.slice(start + BEGIN.length, end).trim();
    if (process.env.UPDATE_SECURITY_MD === "1") {
      writeFileSync(SECURITY_MD, `${doc.slice(0, start + BEGIN.length)}\n${table}\n${doc.slice(end)}`);
      return;
    }
    expect(
      current,
      "SECURITY.md is out of date: run `UPDATE_SECURITY_MD=1 npx vitest run tests/security.test.js`",
    ).toBe(table);
  });
});

// ---------------------------------------------------------------------------------------
// Logs: session ids and the admin token never appear, in normal operation or under faults.

describe("logs", () => {
  it("never contain a session id or the admin token", async () => {
    const token = `log-probe-admin-${randomBytes(12).toString("hex")}`;
    const runs = [
      { kv: true, d1: true },
      { kv: false, d1: true },
      { kv: true, d1: false },
    ];
    for (const { kv, d1 } of runs) {
      let log = "";
      let made = { status: 0, text: "" };
      const stranger = unknownSessionId();
      const w = await boot({ kv, d1, adminToken: token, vars: { LOG_LEVEL: "info" }, onLog: (chunk) => (log += chunk) });
      try {
        const call = async (path, init = {}) => {
          const res = await w.mf.dispatchFetch(`http://127.0.0.1${path}`, init);
          return { status: res.status, text: await res.text() };
        };
        const admin = { Authorization: `Bearer ${token}` };
        const secrets = [token];
        made = await call("/sessions", {
          method: "POST",
          headers: admin,
          body: JSON.stringify({ userId: "logprobe", email: "logprobe@example.com" }),
        });
        if (made.status === 201) secrets.push(JSON.parse(made.text).sessionId);
        secrets.push(stranger);
        for (const id of secrets.slice(1)) {
          await call("/sessions/current", { headers: { Authorization: `Bearer ${id}` } });
          await call("/prefs", { headers: { Cookie: `session=${id}` } });
          await call("/prefs", { method: "PATCH", headers: { Authorization: `Bearer ${id}` }, body: '{"theme":"dark"}' });
          await call("/sessions/current", { method: "DELETE", headers: { Authorization: `Bearer ${id}` } });
        }
        await call("/admin/sessions", { headers: admin });
        await call("/admin/config", { method: "PATCH", headers: admin, body: "{bad" });
        await call("/admin/config", { method: "PATCH", headers: { Authorization: `Bearer ${token}x` }, body: "{}" });
        await call("/admin/users/logprobe/sessions", { method: "DELETE", headers: admin });
        // Let the runtime flush its output.
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        await w.dispose();
      }
      const mode = `kv=${kv} d1=${d1}`;
      expect(log, `${mode}: the Worker logged nothing`).toMatch(/GET \/sessions\/current \d{3}/);
      expect(log, `${mode}: admin token in logs`).not.toContain(token);
      for (const id of [token, stranger]) expect(log, mode).not.toContain(id);
      if (made.status === 201) expect(log, `${mode}: session id in logs`).not.toContain(JSON.parse(made.text).sessionId);
    }
  });
});
