// @ts-check
// Bad inputs and storage faults tried against `PATCH /admin/config`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { KIB, keepsConfig, adminAuthRows, namesField } from "./common.js";

export const route = "PATCH /admin/config";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
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
    situation: "malformed JSON",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: "{featureFlags: {}}" },
    expect: { status: 400, code: "invalid_json", check: keepsConfig.check },
  },
  {
    situation: "a valid body sent as `text/plain`",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: '{"maintenanceMode": true}', headers: { "Content-Type": "text/plain;charset=UTF-8" } },
    expect: { status: 415, code: "unsupported_media_type", check: keepsConfig.check },
  },
  {
    situation: 'wrong type (`rateLimits.default: "many"`)',
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { rateLimits: { default: "many" } } },
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/rateLimits\.default/, keepsConfig.check),
    },
  },
  {
    situation: "unknown field",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { colour: "red" } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: "rateLimitWindowSeconds 86401",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { rateLimitWindowSeconds: 86401 } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
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
    situation: "body over 1.9 MB, the config writes' limit",
    setup: keepsConfig.setup,
    request: { method: "PATCH", path: "/admin/config", admin: true, body: JSON.stringify({ pad: "x".repeat(1_900_001) }) },
    expect: { status: 413, code: "payload_too_large", check: keepsConfig.check },
  },
  ...adminAuthRows({
    setup: keepsConfig.setup,
    request: () => ({ method: "PATCH", path: "/admin/config", body: { maintenanceMode: true } }),
    check: keepsConfig.check,
  }),
  {
    situation: "D1 binding absent (KV only)",
    worker: "noD1",
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { featureFlags: { degraded: true } } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => {
        expect(JSON.parse(await app.kv.get("config:app")).featureFlags.degraded).toBeUndefined();
      },
    },
  },
  {
    situation: "KV binding absent",
    worker: "noKV",
    request: { method: "PATCH", path: "/admin/config", admin: true, body: { maintenanceMode: true } },
    expect: { status: 503, code: "unavailable" },
  },
];
