// @ts-check
// Bad inputs and storage faults tried against `POST /admin/tokens`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { sha256, uid } from "../../app.js";
import { adminAuthRows, bigBody, namesField, noTokenNamed, scopedToken, statusWithToken, tokenRow } from "./common.js";

export const route = "POST /admin/tokens";

/** A fresh, valid name as the row's context. */
const fresh = () => ({ name: uid("nt") });
/**
 * POST /admin/tokens with the admin token and `body`.
 * @param {unknown} body @returns {import("./common.js").RequestSpec}
 */
const post = (body) => ({ method: "POST", path: "/admin/tokens", admin: true, body });
/** Check: 400 naming `name`, and no token of the row's name. */
const refusedName = namesField(/^name: /, noTokenNamed);
/** Check: 400 naming `scope`, and no token of the row's name. */
const refusedScope = namesField(/^scope: /, noTokenNamed);

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid (shown once, usable at once, only its SHA-256 in D1)",
    setup: fresh,
    request: (ctx) => post({ name: ctx.name, scope: "flags" }),
    expect: {
      status: 201,
      check: async (r, ctx, app) => {
        expect(r.body).toMatchObject({ name: ctx.name, scope: "flags", createdBy: "admin" });
        expect(r.body.token).toMatch(/^est_[A-Za-z0-9_-]{43}$/);
        const row = await tokenRow(app, ctx.name);
        expect([sha256(r.body.token), sha256(r.body.token.slice(4))]).toContain(row.hash);
        expect(JSON.stringify(row)).not.toContain(r.body.token.slice(4));
        expect(await statusWithToken(app, r.body.token)).toBe(200);
      },
    },
  },
  {
    situation: "name of 64 characters, every allowed kind (the maximum)",
    setup: () => ({ name: `${uid("n64")}.:-_`.padEnd(64, "x") }),
    request: (ctx) => post({ name: ctx.name, scope: "read" }),
    expect: { status: 201, check: (r, ctx) => expect(r.body.name).toBe(ctx.name) },
  },
  {
    situation: "malformed JSON",
    setup: fresh,
    request: (ctx) => post(`{"name": "${ctx.name}", scope: read}`),
    expect: { status: 400, code: "invalid_json", check: noTokenNamed },
  },
  {
    situation: "a valid body sent as `text/plain`",
    setup: fresh,
    request: (ctx) => ({ ...post(JSON.stringify({ name: ctx.name, scope: "read" })), headers: { "Content-Type": "text/plain" } }),
    expect: { status: 415, code: "unsupported_media_type", check: noTokenNamed },
  },
  {
    situation: "body over 64 KiB",
    setup: fresh,
    request: (ctx) => post(bigBody({ name: ctx.name, scope: "read" })),
    expect: { status: 413, code: "payload_too_large", check: noTokenNamed },
  },
  {
    situation: "not an object (a JSON array)",
    setup: fresh,
    request: (ctx) => post([{ name: ctx.name, scope: "read" }]),
    expect: { status: 400, code: "invalid_request", check: noTokenNamed },
  },
  {
    situation: "name missing",
    setup: fresh,
    request: () => post({ scope: "read" }),
    expect: { status: 400, code: "invalid_request", check: namesField(/^name: /, () => {}) },
  },
  {
    situation: "wrong type (`name: 5`)",
    setup: fresh,
    request: () => post({ name: 5, scope: "read" }),
    expect: { status: 400, code: "invalid_request", check: namesField(/^name: /, () => {}) },
  },
  {
    situation: "name of 65 characters",
    setup: () => ({ name: uid("n65").padEnd(65, "x") }),
    request: (ctx) => post({ name: ctx.name, scope: "read" }),
    expect: { status: 400, code: "invalid_request", check: refusedName },
  },
  {
    situation: "name with forbidden characters (`ci deploy/1`)",
    setup: () => ({ name: "ci deploy/1" }),
    request: (ctx) => post({ name: ctx.name, scope: "read" }),
    expect: { status: 400, code: "invalid_request", check: refusedName },
  },
  {
    situation: "name of dots only (`..`: unrevocable by path)",
    setup: () => ({ name: ".." }),
    request: (ctx) => post({ name: ctx.name, scope: "read" }),
    expect: { status: 400, code: "invalid_request", check: refusedName },
  },
  {
    situation: "name already in use (the first token keeps its scope)",
    setup: (app) => scopedToken(app, "read"),
    request: (ctx) => post({ name: ctx.name, scope: "flags" }),
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/^name: /, async (r, ctx, app) => {
        expect((await tokenRow(app, ctx.name)).scope).toBe("read");
        expect(await statusWithToken(app, ctx.token)).toBe(200);
      }),
    },
  },
  {
    situation: "scope `admin` (no token is the full admin)",
    setup: fresh,
    request: (ctx) => post({ name: ctx.name, scope: "admin" }),
    expect: { status: 400, code: "invalid_request", check: refusedScope },
  },
  {
    situation: "scope missing",
    setup: fresh,
    request: (ctx) => post({ name: ctx.name }),
    expect: { status: 400, code: "invalid_request", check: refusedScope },
  },
  {
    situation: "wrong type (`scope: [\"read\"]`)",
    setup: fresh,
    request: (ctx) => post({ name: ctx.name, scope: ["read"] }),
    expect: { status: 400, code: "invalid_request", check: refusedScope },
  },
  {
    situation: "unknown field (`createdBy`)",
    setup: fresh,
    request: (ctx) => post({ name: ctx.name, scope: "read", createdBy: "someone-else" }),
    expect: { status: 400, code: "invalid_request", check: noTokenNamed },
  },
  ...adminAuthRows({
    setup: fresh,
    request: (ctx) => ({ method: "POST", path: "/admin/tokens", body: { name: ctx.name, scope: "read" } }),
    check: noTokenNamed,
  }),
  {
    situation: "a flags token (scoped tokens cannot make tokens)",
    setup: async (app) => ({ ...(await scopedToken(app, "flags")), name: uid("esc") }),
    request: (ctx) => ({ method: "POST", path: "/admin/tokens", admin: ctx.token, body: { name: ctx.name, scope: "flags" } }),
    expect: { status: 403, code: "forbidden", check: noTokenNamed },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: post({ name: "no-d1", scope: "read" }),
    expect: { status: 503, code: "unavailable" },
  },
];
