// @ts-check
// Bad inputs and storage faults tried against `GET /health?deep=1`, the admin's set-up
// report: one row per situation (see ../security.test.js for how a row runs and what every
// response is checked for).
import { expect } from "vitest";
import { adminAuthRows } from "./common.js";

export const route = "GET /health?deep=1";

/** @type {import("./common.js").Row[]} */
export const rows = [
  ...adminAuthRows({ request: () => ({ path: "/health?deep=1" }) }),
  {
    situation: "deep=yes (not 1, true, 0 or false)",
    request: { path: "/health?deep=yes", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "D1 binding absent (reported, not failed)",
    worker: "noD1",
    request: { path: "/health?deep=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.d1).toMatchObject({ bound: false, ok: false }) },
  },
  {
    situation: "KV binding absent (reported, not failed)",
    worker: "noKV",
    request: { path: "/health?deep=1", admin: true },
    expect: { status: 200, check: (r) => expect(r.body.kv).toMatchObject({ bound: false, ok: false }) },
  },
];
