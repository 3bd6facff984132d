// @ts-check
// CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an
// origin `ALLOWED_ORIGINS` does not list: one row per situation (see ../security.test.js for
// how a row runs and what every response is checked for; every request of the suite comes
// from such an origin).
import { expect } from "vitest";

export const route = "OPTIONS (CORS preflight)";

/** @param {string} path @param {string} method */
const preflight = (path, method) => ({ method: "OPTIONS", path, headers: { "Access-Control-Request-Method": method } });

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "CORS configured, origin not listed",
    worker: "cors",
    request: preflight("/prefs", "PATCH"),
    expect: {
      status: 403,
      code: "forbidden",
      check: (r) => expect(r.res.headers.get("Access-Control-Allow-Methods")).toBeNull(),
    },
  },
  {
    situation: "CORS configured, origin not listed, unknown path",
    worker: "cors",
    request: preflight("/.env", "GET"),
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "CORS off (no ALLOWED_ORIGINS)",
    request: preflight("/prefs", "PATCH"),
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, PATCH" } },
  },
];
