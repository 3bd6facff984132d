// @ts-check
// Bad inputs and storage faults tried against `POST /ofrep/v1/evaluate/flags`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { bigBody } from "./common.js";

export const route = "POST /ofrep/v1/evaluate/flags";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "a valid body sent as `text/plain`",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags", body: '{"context": {"targetingKey": "u"}}', headers: { "Content-Type": "text/plain" } },
    expect: { status: 415, code: "unsupported_media_type" },
  },
  {
    situation: "body of 70 KiB",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags", body: bigBody({ context: {} }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    situation: "KV binding absent (the defaults: no flags)",
    worker: "noKV",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags", body: { context: { targetingKey: "u" } } },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ flags: [], metadata: { configVersion: 0 } }) },
  },
];
