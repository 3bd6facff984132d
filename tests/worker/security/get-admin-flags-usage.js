// @ts-check
// Bad inputs and storage faults tried against `GET /admin/flags/usage`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { adminAuthRows } from "./common.js";

export const route = "GET /admin/flags/usage";

/** @type {import("./common.js").Row[]} */
export const rows = [
  ...adminAuthRows({ request: () => ({ path: "/admin/flags/usage" }) }),
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/admin/flags/usage", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent (usage is in D1)",
    worker: "noKV",
    request: { path: "/admin/flags/usage", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.writtenEverySeconds).toBe(60) },
  },
];
