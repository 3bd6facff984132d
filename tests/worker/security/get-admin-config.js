// @ts-check
// Bad inputs and storage faults tried against `GET /admin/config`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { adminAuthRows } from "./common.js";

export const route = "GET /admin/config";

/** @type {import("./common.js").Row[]} */
export const rows = [
  ...adminAuthRows({ request: () => ({ path: "/admin/config" }) }),
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/config", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
];
