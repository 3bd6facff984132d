// @ts-check
// Bad inputs and storage faults tried against `GET /health`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { timing } from "../../helpers.js";
import { KIB } from "./common.js";

export const route = "GET /health";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
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
    situation: "query string of 8 KiB",
    request: { path: `/health?junk=${"j".repeat(8 * KIB)}` },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },
  {
    situation: "POST instead of GET",
    request: { method: "POST", path: "/health", body: {} },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET" } },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/health" },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },
  {
    situation: "KV binding absent",
    worker: "noKV",
    request: { path: "/health" },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ status: "ok" }) },
  },
];
