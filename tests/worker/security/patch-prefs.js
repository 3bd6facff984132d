// @ts-check
// Bad inputs and storage faults tried against `PATCH /prefs`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { unknownSessionId } from "../../app.js";
import { KIB, bigBody, freshPrefsUser, namesField, prefsUntouched, revokedSession } from "./common.js";

export const route = "PATCH /prefs";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid partial update",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body).toEqual({ theme: "dark", language: "en", notifications: true });
        expect((await app.prefsRow(ctx.userId)).theme).toBe("dark");
      },
    },
  },
  {
    situation: "malformed JSON",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: '{"theme": "dark"' }),
    expect: { status: 400, code: "invalid_json", check: prefsUntouched },
  },
  {
    situation: "a valid body sent as `text/plain` (what a cross-site form or `fetch` can send without a preflight)",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: '{"theme": "dark"}', headers: { "Content-Type": "text/plain;charset=UTF-8" } }),
    expect: { status: 415, code: "unsupported_media_type", check: prefsUntouched },
  },
  {
    situation: 'wrong type (`notifications: "yes"`)',
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { notifications: "yes" } }),
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/notifications/, prefsUntouched),
    },
  },
  {
    situation: 'bad value (`theme: "blue"`)',
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "blue" } }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    situation: "unknown field next to a valid one (no partial write)",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark", fontSize: 12 } }),
    expect: {
      status: 400,
      code: "invalid_request",
      check: namesField(/fontSize/, prefsUntouched),
    },
  },
  {
    situation: "language tag of 36 characters",
    setup: freshPrefsUser,
    request: (ctx) => ({
      method: "PATCH",
      path: "/prefs",
      session: ctx.id,
      body: { language: `en-${"abcdefgh-".repeat(3)}abcdef` },
    }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    situation: "language of 60 KiB",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { language: "e".repeat(60 * KIB) } }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    situation: "JSON that is not an object (`null`)",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: "null" }),
    expect: { status: 400, code: "invalid_request", check: prefsUntouched },
  },
  {
    situation: "JSON nested 10000 deep",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: `{"theme":${"[".repeat(10000)}` }),
    expect: { status: 400, code: "invalid_json", check: prefsUntouched },
  },
  {
    situation: "body over 64 KiB",
    setup: freshPrefsUser,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: bigBody({ theme: "dark" }) }),
    expect: { status: 413, code: "payload_too_large", check: prefsUntouched },
  },
  {
    // A few KiB, then nothing more: the Worker must answer without waiting for the rest.
    situation: "a body that never ends, no credentials",
    request: { method: "PATCH", path: "/prefs", stream: 4 * KIB },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "no credentials",
    request: { method: "PATCH", path: "/prefs", body: { theme: "dark" } },
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "well-formed id that was never issued",
    request: () => ({ method: "PATCH", path: "/prefs", session: unknownSessionId(), body: { theme: "dark" } }),
    expect: { status: 401, code: "unauthorized" },
  },
  {
    situation: "revoked session",
    setup: revokedSession,
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: { status: 401, code: "unauthorized", check: prefsUntouched },
  },
  {
    situation: "session cookie from another site (`Sec-Fetch-Site: cross-site`)",
    setup: freshPrefsUser,
    request: (ctx) => ({
      method: "PATCH",
      path: "/prefs",
      headers: { Cookie: `__Host-session=${ctx.id}`, "Sec-Fetch-Site": "cross-site" },
      body: { theme: "dark" },
    }),
    expect: { status: 403, code: "forbidden", check: prefsUntouched },
  },
  {
    situation: "POST instead of GET/PATCH",
    request: { method: "POST", path: "/prefs", body: { theme: "dark" } },
    expect: { status: 405, code: "method_not_allowed", headers: { Allow: "GET, PATCH" } },
  },
  {
    situation: "D1 binding absent (KV copy unchanged)",
    worker: "noD1",
    setup: async (app) => {
      const s = await app.seedKvOnlySession();
      const copy = JSON.stringify({ prefs: { theme: "light", language: "en", notifications: true }, version: 1 });
      await app.kv.put(`prefs:${s.userId}`, copy);
      return { ...s, copy };
    },
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark" } }),
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => {
        expect(await app.kv.get(`prefs:${ctx.userId}`)).toBe(ctx.copy);
        const g = await app.getPrefs(ctx.id, { client: app.newClient() });
        expect(g.body.theme).toBe("light");
      },
    },
  },
  {
    situation: "KV binding absent (D1 is the authority)",
    worker: "noKV",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({ method: "PATCH", path: "/prefs", session: ctx.id, body: { theme: "dark", notifications: false } }),
    expect: {
      status: 200,
      check: async (r, ctx, app) => {
        expect(r.body).toEqual({ theme: "dark", language: "en", notifications: false });
        const row = await app.prefsRow(ctx.userId);
        expect([row.theme, row.notifications]).toEqual(["dark", 0]);
      },
    },
  },
];
