// @ts-check
// Bad inputs and storage faults tried against `GET /config`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { DEFAULTS, publicView } from "../../helpers.js";
import { SEED, KIB, roomInWindow } from "./common.js";

export const route = "GET /config";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "plain request",
    request: { path: "/config" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual(publicView({ ...DEFAULTS, ...SEED })) },
  },
  {
    situation: "query string of 8 KiB (ignored)",
    request: { path: `/config?x=${"q".repeat(8 * KIB)}` },
    expect: { status: 200, check: (r) => expect(r.body.rateLimits.default).toBe(1000000) },
  },
  {
    situation: "DELETE instead of GET",
    request: { method: "DELETE", path: "/config" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    situation: "CORS preflight (OPTIONS) from another origin",
    request: { method: "OPTIONS", path: "/config", headers: { "Access-Control-Request-Method": "GET" } },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    situation: "extra path segment (`/config/extra`)",
    request: { path: "/config/extra" },
    expect: { status: 404, code: "not_found" },
  },
  {
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
    situation: "KV binding absent: the defaults",
    worker: "noKV",
    request: { path: "/config" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual(publicView(DEFAULTS)) },
  },
  {
    situation: "KV binding absent: 110 requests from one client, over the default limit of 100 (approximate tier fails open)",
    worker: "noKV",
    setup: () => roomInWindow(60, 5000),
    request: { path: "/config", repeat: 110 },
    expect: { status: 200 },
  },
];
