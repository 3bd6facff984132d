// @ts-check
// Bad inputs and storage faults tried against `DELETE /admin/tokens/:name`: one row per
// situation (see ../security.test.js for how a row runs and what every response is checked
// for).
import { expect } from "vitest";
import { uid } from "../../app.js";
import { adminAuthRows, scopedToken, statusWithToken, tokenRow } from "./common.js";

export const route = "DELETE /admin/tokens/:name";

/** Check: the row's token still exists and still works. @type {import("./common.js").Check} */
const stillWorks = async (r, ctx, app) => {
  expect(await tokenRow(app, ctx.name)).not.toBeNull();
  expect(await statusWithToken(app, ctx.token)).toBe(200);
};

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (gone from D1, refused at once)",
    setup: (app) => scopedToken(app, "flags"),
    request: (ctx) => ({ method: "DELETE", path: `/admin/tokens/${ctx.name}`, admin: true }),
    expect: {
      status: 204,
      check: async (r, ctx, app) => {
        expect(await tokenRow(app, ctx.name)).toBeNull();
        expect(await statusWithToken(app, ctx.token)).toBe(401);
      },
    },
  },
  {
    situation: "unknown name",
    request: () => ({ method: "DELETE", path: `/admin/tokens/${uid("none")}`, admin: true }),
    expect: { status: 404, code: "not_found" },
  },
  {
    situation: "name with forbidden characters (`a%20b`)",
    request: { method: "DELETE", path: "/admin/tokens/a%20b", admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "name of 65 characters",
    request: { method: "DELETE", path: `/admin/tokens/${"n".repeat(65)}`, admin: true },
    expect: { status: 400, code: "invalid_request" },
  },
  ...adminAuthRows({
    setup: (app) => scopedToken(app, "read"),
    request: (ctx) => ({ method: "DELETE", path: `/admin/tokens/${ctx.name}` }),
    check: stillWorks,
  }),
  {
    situation: "a sessions token revoking itself (scoped tokens cannot revoke tokens)",
    setup: (app) => scopedToken(app, "sessions"),
    request: (ctx) => ({ method: "DELETE", path: `/admin/tokens/${ctx.name}`, admin: ctx.token }),
    expect: { status: 403, code: "forbidden", check: stillWorks },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { method: "DELETE", path: "/admin/tokens/no-d1", admin: true },
    expect: { status: 503, code: "unavailable" },
  },
];
