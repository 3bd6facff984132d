// @ts-check
// Bad inputs and storage faults tried against `PUT /admin/config`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { DEFAULTS, ADMIN_TOKEN, publicView } from "../../helpers.js";
import { SEED, SEED_NO_D1, KIB, pad, keepsConfig, adminAuthRows, namesField } from "./common.js";

export const route = "PUT /admin/config";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid document",
    request: { method: "PUT", path: "/admin/config", admin: true, body: SEED },
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body).toEqual({ ...DEFAULTS, ...SEED });
        expect(JSON.parse(await app.kv.get("config:app"))).toEqual({ ...DEFAULTS, ...SEED });
      },
    },
  },
  {
    situation: "malformed JSON",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: '{"maintenanceMode": tru' },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    situation: "a valid body sent as a form (`application/x-www-form-urlencoded`, what `curl -d` sends)",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: '{"maintenanceMode": true}', headers: { "Content-Type": "application/x-www-form-urlencoded" } },
    expect: { status: 415, code: "unsupported_media_type", check: keepsConfig.check },
  },
  {
    situation: "empty body",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: "" },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    situation: "JSON that is not an object (`[1,2]`)",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: "[1,2]" },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: 'wrong type (`maintenanceMode: "yes"`)',
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, maintenanceMode: "yes" } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/maintenanceMode/, keepsConfig.check),
    },
  },
  {
    situation: "unknown field",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, debug: true } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/debug/, keepsConfig.check),
    },
  },
  {
    situation: "limit over 1000000",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { rateLimits: { default: 1000001 } } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: "flag name of 65 characters",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, featureFlags: { ["f".repeat(65)]: true } } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: "cacheTtlSeconds 0",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED, cacheTtlSeconds: 0 } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: "body of exactly 1.9 MB, the config writes' limit (whitespace-padded)",
    request: { method: "PUT", path: "/admin/config", admin: true, body: pad(JSON.stringify(SEED), 1_900_000) },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ ...DEFAULTS, ...SEED }) },
  },
  {
    situation: "body of 1.9 MB + 1 byte",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, body: pad(JSON.stringify(SEED), 1_900_000 + 1) },
    expect: { status: 413, code: "payload_too_large", check: keepsConfig.check },
  },
  {
    situation: "body without Content-Length that passes 1.9 MB and never ends",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", admin: true, stream: 1_900_000 + 1 },
    expect: {
      status: 413,
      code: "payload_too_large",
      check: async (r, ctx, app) => {
        // Answered while the body was still open: refused before it was read whole.
        expect(ctx.pulled).toBe(1_900_000 + 1);
        await keepsConfig.check(r, ctx, app);
      },
    },
  },
  {
    // A few KiB, then nothing more: the Worker must answer without waiting for the rest.
    // (A client still writing when the runtime closes the connection after answering sees a
    // reset instead of the answer: transport, not the Worker.)
    situation: "a body that never ends, no token",
    setup: keepsConfig.setup,
    request: { method: "PUT", path: "/admin/config", stream: 4 * KIB },
    expect: { status: 401, code: "unauthorized", check: keepsConfig.check },
  },
  ...adminAuthRows({
    setup: keepsConfig.setup,
    request: () => ({ method: "PUT", path: "/admin/config", body: { maintenanceMode: true } }),
    check: keepsConfig.check,
  }),
  {
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
    situation: "POST instead of GET/PUT/PATCH",
    request: { method: "POST", path: "/admin/config", admin: true, body: SEED },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, PUT, PATCH" } },
  },
  {
    situation: "D1 binding absent (KV only)",
    worker: "noD1",
    request: { method: "PUT", path: "/admin/config", admin: true, body: { ...SEED_NO_D1, maintenanceMode: true } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => {
        // D1 holds the history and the base of every write: without it nothing is written.
        expect(JSON.parse(await app.kv.get("config:app")).maintenanceMode).toBeUndefined();
      },
    },
  },
  {
    situation: "KV binding absent",
    worker: "noKV",
    request: { method: "PUT", path: "/admin/config", admin: true, body: { maintenanceMode: true } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => {
        const c = await app.getConfig({ client: app.newClient() });
        expect(c.body).toEqual(publicView(DEFAULTS));
      },
    },
  },
];
