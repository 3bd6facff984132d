// @ts-check
// Bad inputs and storage faults tried against `GET /flags/:name`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";

export const route = "GET /flags/:name";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "a set flag",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: true }) },
  },
  {
    situation: "name at the 64-character limit",
    request: { path: `/flags/${"f".repeat(64)}` },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "f".repeat(64), enabled: false }) },
  },
  {
    situation: "name of 65 characters",
    request: { path: `/flags/${"f".repeat(65)}` },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/name/) },
  },
  {
    situation: "name with forbidden characters (`a%20b`, `<script>`)",
    request: { path: "/flags/a%20b%3Cscript%3E" },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.text).not.toMatch(/<script>/) },
  },
  {
    situation: "name with a slash (`/flags/a/b`)",
    request: { path: "/flags/a/b" },
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: true }) },
  },
  {
    situation: "D1 binding absent, `flags` a strict rate-limit group (fails closed)",
    worker: "noD1Strict",
    request: { path: "/flags/newCheckout" },
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent",
    worker: "noKV",
    request: { path: "/flags/newCheckout" },
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ name: "newCheckout", enabled: false }) },
  },
];
