// @ts-check
// Bad inputs and storage faults tried against `GET /`, the index: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { timing } from "../../helpers.js";

export const route = "GET /";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "plain request",
    request: { path: "/" },
    expect: { status: 200, check: (r) => expect(r.body.name).toBe("edgestate") },
  },
  {
    situation: "KV binding absent (no storage work at all)",
    worker: "noKV",
    request: { path: "/" },
    expect: { status: 200, check: (r) => expect(timing(r.res)).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 }) },
  },
];
