// @ts-check
// Bad inputs and storage faults tried against `POST /admin/config/rollback`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { adminAuthRows, keepsConfig } from "./common.js";

export const route = "POST /admin/config/rollback";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "a valid body sent as `text/plain`",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: '{"version": 1}', headers: { "Content-Type": "text/plain" } },
    expect: { status: 415, code: "unsupported_media_type", check: keepsConfig.check },
  },
  ...adminAuthRows({
    ...keepsConfig,
    request: () => ({ method: "POST", path: "/admin/config/rollback", body: { version: 1 } }),
  }),
  {
    situation: "a version that does not exist",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: 424242 } },
    expect: { status: 404, code: "not_found", check: keepsConfig.check },
  },
  {
    situation: "version of the wrong type",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: "1" } },
    expect: { status: 400, code: "invalid_request", check: keepsConfig.check },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    setup: keepsConfig.setup,
    request: { method: "POST", path: "/admin/config/rollback", admin: true, body: { version: 1 } },
    expect: { status: 503, code: "unavailable", check: keepsConfig.check },
  },
];
