// @ts-check
// Bad inputs and storage faults tried against `GET /prefs`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { unknownSessionId } from "../../app.js";

export const route = "GET /prefs";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid session, nothing stored",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ theme: "light", language: "en", notifications: true }) },
  },
  {
    situation: "no credentials",
    request: { path: "/prefs" },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ path: "/prefs", session: unknownSessionId() }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "malformed session cookie",
    request: { path: "/prefs", headers: { Cookie: "__Host-session=../../etc/passwd" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "the admin token as a session",
    request: { path: "/prefs", admin: true },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "D1 binding absent, session and preferences in KV",
    worker: "noD1",
    setup: async (app) => {
      const s = await app.seedKvOnlySession();
      const prefs = { theme: "dark", language: "nl-BE", notifications: false };
      await app.kv.put(`prefs:${s.userId}`, JSON.stringify({ prefs, version: 1 }));
      return { ...s, prefs };
    },
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r, ctx) => expect(r.body).toEqual(ctx.prefs) },
  },
  {
    situation: "D1 binding absent, session in KV, no KV copy of the preferences",
    worker: "noD1",
    setup: (app) => app.seedKvOnlySession(),
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 503, code: "unavailable" },
  },
  {
    situation: "KV binding absent (read from D1)",
    worker: "noKV",
    setup: async (app) => {
      const s = await app.mintSession();
      await app.db
        .prepare("INSERT INTO preferences (user_id, theme, version, updated_at) VALUES (?, 'dark', 1, ?)")
        .bind(s.userId, Date.now())
        .run();
      return s;
    },
    request: (ctx) => ({ path: "/prefs", session: ctx.id }),
    expect: { status: 200, check: (r) => expect(r.body).toEqual({ theme: "dark", language: "en", notifications: true }) },
  },
];
