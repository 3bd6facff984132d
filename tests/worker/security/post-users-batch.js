// @ts-check
// Bad inputs and storage faults tried against `POST /users/batch`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid } from "../../app.js";
import { bigBody } from "./common.js";

export const route = "POST /users/batch";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid, one known and one unknown id",
    setup: async (app) => ({ user: await app.seedUser(), ghost: uid("ghost") }),
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: [ctx.user.id, ctx.ghost] } }),
    expect: {
      status: 200,
      check: (r, ctx) => expect(r.body).toEqual({ users: { [ctx.user.id]: ctx.user, [ctx.ghost]: null } }),
    },
  },
  {
    situation: "100 ids (the maximum)",
    request: () => ({ method: "POST", path: "/users/batch", body: { ids: Array.from({ length: 100 }, () => uid("b")) } }),
    expect: { status: 200, check: (r) => expect(Object.keys(r.body.users)).toHaveLength(100) },
  },
  {
    situation: "malformed JSON",
    request: { method: "POST", path: "/users/batch", body: '{"ids": ["a",]}' },
    expect: { status: 400, code: "invalid_json" },
  },
  {
    situation: "a valid body sent as `text/plain`",
    request: { method: "POST", path: "/users/batch", body: '{"ids": ["a"]}', headers: { "Content-Type": "text/plain" } },
    expect: { status: 415, code: "unsupported_media_type" },
  },
  {
    situation: 'wrong type (`ids: "u1"`)',
    request: { method: "POST", path: "/users/batch", body: { ids: "u1" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids/) },
  },
  {
    situation: "wrong element type (`ids: [1]`)",
    request: { method: "POST", path: "/users/batch", body: { ids: [1] } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids\[0\]/) },
  },
  {
    situation: "unknown field",
    request: { method: "POST", path: "/users/batch", body: { ids: ["u1"], fields: ["*"] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "empty ids",
    request: { method: "POST", path: "/users/batch", body: { ids: [] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "101 ids",
    request: () => ({ method: "POST", path: "/users/batch", body: { ids: Array.from({ length: 101 }, () => uid("b")) } }),
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "an id of 65 characters",
    request: { method: "POST", path: "/users/batch", body: { ids: ["ok", "i".repeat(65)] } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/ids\[1\]/) },
  },
  {
    situation: "duplicate ids",
    request: { method: "POST", path: "/users/batch", body: { ids: ["dup", "dup"] } },
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "body over 64 KiB",
    request: { method: "POST", path: "/users/batch", body: bigBody({ ids: ["u1"] }) },
    expect: { status: 413, code: "payload_too_large" },
  },
  {
    situation: "GET instead of POST",
    request: { method: "GET", path: "/users/batch" },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "POST" } },
  },
  {
    situation: "D1 binding absent, every id cached",
    worker: "noD1",
    setup: async (app) => {
      const a = uid("ba");
      const b = uid("bb");
      return { users: { [a]: await app.seedCachedUser(a), [b]: await app.seedCachedUser(b) } };
    },
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: Object.keys(ctx.users) } }),
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual({ users: ctx.users }) },
  },
  {
    situation: "D1 binding absent, one id not cached",
    worker: "noD1",
    setup: async (app) => {
      const a = uid("bc");
      await app.seedCachedUser(a);
      return { ids: [a, uid("miss")] };
    },
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: ctx.ids } }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: async (app) => ({ user: await app.seedUser(), ghost: uid("ghost") }),
    request: (ctx) => ({ method: "POST", path: "/users/batch", body: { ids: [ctx.user.id, ctx.ghost] } }),
    expect: {
      status: 200,
      check: (r, ctx) => expect(r.body).toEqual({ users: { [ctx.user.id]: ctx.user, [ctx.ghost]: null } }),
    },
  },
];
