// @ts-check
// Bad inputs and storage faults tried against `GET /sessions` (the caller's own sessions): one
// row per situation (see ../security.test.js for how a row runs and what every response is
// checked for).
import { expect } from "vitest";
import { sha256, unknownSessionId } from "../../app.js";
import { KIB, revokedSession } from "./common.js";

export const route = "GET /sessions";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid session (its own, marked current; no ids or hashes)",
    setup: (app) => app.mintSessionWithHandle(),
    request: (ctx) => ({ path: "/sessions", session: ctx.id }),
    expect: {
      status: 200,
      check: (r, ctx) => {
        expect(r.body.sessions).toEqual([expect.objectContaining({ handle: ctx.handle, current: true, userId: ctx.userId })]);
        expect(r.text).not.toContain(ctx.id);
        expect(r.text).not.toContain(sha256(ctx.id));
      },
    },
  },
  {
    situation: "another user's id as `userId` (ignored: always the caller's)",
    setup: async (app) => ({ ...(await app.mintSessionWithHandle()), other: await app.mintSessionWithHandle() }),
    request: (ctx) => ({ path: `/sessions?userId=${ctx.other.userId}`, session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.text).not.toContain(ctx.other.handle) },
  },
  {
    situation: "no credentials",
    request: { path: "/sessions" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ path: "/sessions", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "Bearer token of 16 KiB",
    request: { path: "/sessions", session: "A".repeat(16 * KIB) },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "the admin token as a session",
    request: { path: "/sessions", admin: true },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "revoked session",
    setup: revokedSession,
    request: (ctx) => ({ path: "/sessions", session: ctx.id }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "limit out of range",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/sessions?limit=1001", session: ctx.id }),
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "a cursor this API never returned",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/sessions?cursor=../../etc", session: ctx.id }),
    expect: { status: 400, code: "invalid_request" },
  },
  {
    situation: "D1 binding absent, session only in KV",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ path: "/sessions", session: ctx.id }),
    expect: { status: 503, code: "unavailable" },
  },
];
