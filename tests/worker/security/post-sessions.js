// @ts-check
// Bad inputs and storage faults tried against `POST /sessions`: one row per situation (see
// ../security.test.js for how a row runs and what every response is checked for).
import { expect } from "vitest";
import { uid, sha256 } from "../../app.js";
import { bigBody, adminAuthRows, mintFor, noSessionFor } from "./common.js";

export const route = "POST /sessions";

/** @type {import("./common.js").Row[]} */
export const rows = [
  {
    situation: "valid",
    setup: () => ({ userId: uid("new") }),
    request: mintFor,
    expect: {
      status: 201,
      check: async (r, ctx, app) => {
        const id = r.body.sessionId;
        expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(r.res.headers.get("Set-Cookie")).toBe(
          `__Host-session=${id}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=604800`,
        );
        // Stored only as its SHA-256: neither D1 nor KV holds the usable id.
        const row = await app.sessionRow(sha256(id));
        expect(row.user_id).toBe(ctx.userId);
        expect(JSON.stringify(row)).not.toContain(id);
        const { keys } = await app.kv.list({ prefix: "session:" });
        expect(keys.some((/** @type {{ name: string }} */ k) => k.name === `session:${sha256(id)}`)).toBe(true);
        expect(keys.some((/** @type {{ name: string }} */ k) => k.name.includes(id))).toBe(false);
        expect(await app.kv.get(`session:${sha256(id)}`)).not.toContain(id);
      },
    },
  },
  {
    situation: "userId at 128 characters, email at 254 bytes (KV key ≤ 512 B, metadata ≤ 1024 B)",
    setup: () => ({ userId: `m${Date.now().toString(36)}`.padEnd(128, "m") }),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: ctx.userId, email: `${"a".repeat(64)}@${"b".repeat(185)}.com` },
    }),
    expect: {
      status: 201,
      check: async (r, ctx, app) => {
        expect(r.body.userId).toHaveLength(128);
        expect(Buffer.byteLength(r.body.email)).toBe(254);
        const key = `session:${sha256(r.body.sessionId)}`;
        expect(Buffer.byteLength(key)).toBeLessThanOrEqual(512);
        const { metadata } = await app.kv.getWithMetadata(key);
        expect(metadata.userId).toBe(ctx.userId);
        expect(Buffer.byteLength(JSON.stringify(metadata))).toBeLessThanOrEqual(1024);
        const listed = (await app.kv.list({ prefix: key })).keys[0];
        // TTL = remaining life (7 days), never below KV's 60 s: more than 60 s after it was minted.
        expect(listed.expiration - r.body.createdAt / 1000).toBeGreaterThan(60);
      },
    },
  },
  {
    situation: "malformed JSON",
    request: { method: "POST", path: "/sessions", admin: true, body: '{"userId":"mj1","email":' },
    expect: { status: 400, code: "invalid_json", check: noSessionFor("mj1") },
  },
  {
    situation: "a valid body sent as `text/plain`",
    request: { method: "POST", path: "/sessions", admin: true, body: '{"userId":"tp1","email":"tp1@example.com"}', headers: { "Content-Type": "text/plain" } },
    expect: { status: 415, code: "unsupported_media_type", check: noSessionFor("tp1") },
  },
  {
    situation: "wrong type (`userId: 42`)",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: 42, email: "a@example.com" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/userId/) },
  },
  {
    situation: "unknown field (`admin: true`)",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: "uf1", email: "uf1@example.com", admin: true },
    },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("uf1") },
  },
  {
    situation: "userId of 129 characters",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "u".repeat(129), email: "a@example.com" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/userId/) },
  },
  {
    situation: "email of 255 bytes",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: { userId: "e255", email: `${"a".repeat(64)}@${"b".repeat(186)}.com` },
    },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("e255") },
  },
  {
    situation: "email with a newline (header injection)",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "nl1", email: "a@example.com\nX: y" } },
    expect: { status: 400, code: "invalid_request", check: noSessionFor("nl1") },
  },
  {
    situation: "email missing",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "nomail" } },
    expect: { status: 400, code: "invalid_request", check: (r) => expect(r.body.error).toMatch(/email/) },
  },
  {
    situation: "body over 64 KiB",
    request: {
      method: "POST",
      path: "/sessions",
      admin: true,
      body: bigBody({ userId: "big1", email: "big1@example.com" }),
    },
    expect: { status: 413, code: "payload_too_large", check: noSessionFor("big1") },
  },
  ...adminAuthRows({
    setup: () => ({ userId: uid("na") }),
    request: (ctx) => ({ method: "POST", path: "/sessions", body: { userId: ctx.userId, email: `${ctx.userId}@example.com` } }),
    check: (r, ctx, app) => noSessionFor(ctx.userId)(r, ctx, app),
  }),
  {
    situation: "a valid session id instead of the admin token",
    setup: (app) => app.mintSession(),
    request: (ctx) => ({
      method: "POST",
      path: "/sessions",
      session: ctx.id,
      body: { userId: "sa1", email: "sa1@example.com" },
    }),
    expect: { status: 401, code: "unauthorized", check: noSessionFor("sa1") },
  },
  {
    situation: "D1 binding absent",
    worker: "noD1",
    request: { method: "POST", path: "/sessions", admin: true, body: { userId: "d1gone", email: "d1gone@example.com" } },
    expect: {
      status: 503,
      code: "unavailable",
      check: async (r, ctx, app) => expect((await app.kv.list({ prefix: "session:" })).keys.length).toBe(ctx.kvSessions),
    },
    setup: async (app) => ({ kvSessions: (await app.kv.list({ prefix: "session:" })).keys.length }),
  },
  {
    situation: "KV binding absent (D1 only)",
    worker: "noKV",
    setup: () => ({ userId: uid("nokv") }),
    request: mintFor,
    expect: {
      status: 201,
      check: async (r, ctx, app) => {
        expect((await app.sessionRow(sha256(r.body.sessionId))).user_id).toBe(ctx.userId);
      },
    },
  },
];
