// @ts-check
// Bad inputs and storage faults tried against `POST /ofrep/v1/evaluate/flags/:key`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
// Bad bodies get the OpenFeature protocol's error shape (flags.test.js); the rows here are
// the ones the pipeline answers, and the storage faults.
import { expect } from "vitest";
import { bigBody } from "./common.js";

export const route = "POST /ofrep/v1/evaluate/flags/:key";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "a valid body sent as `text/plain`",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags/newCheckout", body: '{"context": {"targetingKey": "u"}}', headers: { "Content-Type": "text/plain" } },
    expect: { status: 415, code: "unsupported_media_type" },
  },
  {
    situation: "body of 70 KiB",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags/newCheckout", body: bigBody({ context: {} }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    situation: "GET instead of POST",
    request: { path: "/ofrep/v1/evaluate/flags/newCheckout" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "POST" } },
  },
  {
    situation: "D1 binding absent (evaluation needs no D1)",
    worker: "noD1",
    request: { method: "POST", path: "/ofrep/v1/evaluate/flags/newCheckout", body: { context: { targetingKey: "u" } } },
    expect: { status: 200, check: (r) => expect(r.body).toMatchObject({ key: "newCheckout", value: true, reason: "STATIC" }) },
  },
];
