// @ts-check
// Bad inputs and storage faults tried against `GET /ofrep/v1/events`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for). A stream that
// opens does not end, so the rows that succeed ask with HEAD: the same route, gate, limit and
// headers, without the stream; tests/worker/events.test.js reads the events themselves.
import { expect } from "vitest";
import { KIB } from "./common.js";

export const route = "GET /ofrep/v1/events";

/** @param {import("../../helpers.js").Answer} r */
const isStream = (r) => expect(r.res.headers.get("Content-Type")).toBe("text/event-stream");

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "`Last-Event-ID` of 8 KiB of junk (counts as none)",
    request: { method: "HEAD", path: "/ofrep/v1/events", headers: { "Last-Event-ID": "x".repeat(8 * KIB) } },
    expect: { status: 200, check: isStream },
  },
  {
    situation: "KV binding absent (the defaults, version 0)",
    worker: "noKV",
    request: { method: "HEAD", path: "/ofrep/v1/events" },
    expect: { status: 200, check: isStream },
  },
  {
    situation: "D1 binding absent (the stream reads no D1)",
    worker: "noD1",
    request: { method: "HEAD", path: "/ofrep/v1/events" },
    expect: { status: 200, check: isStream },
  },
  {
    situation: "D1 binding absent, `flags` a strict rate-limit group (fails closed)",
    worker: "noD1Strict",
    request: { path: "/ofrep/v1/events" },
    expect: { status: 503, code: "unavailable" },
  },
];
