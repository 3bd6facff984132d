// @ts-check
// Bad inputs and storage faults tried against `GET /admin/config/history`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { adminAuthRows } from "./common.js";

export const route = "GET /admin/config/history";

/** @type {import("./common.js").Row[]} */
export const rows = [
  ...adminAuthRows({ request: () => ({ path: "/admin/config/history" }) }),
  {
    situation: "cursor that this API never returned",
    request: { path: "/admin/config/history?cursor=%27%3B%20DROP%20TABLE", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "limit=1000000",
    request: { path: "/admin/config/history?limit=1000000", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
];
