// @ts-check
// What the per-route rows of the bad-input and fault suite share: the seeded configs of
// the Workers they run on, body builders, and setup/check pairs that prove a refused request
// changed nothing.
import { expect } from "vitest";
import { HIGH, uid } from "../../app.js";

/**
 * @typedef {object} RequestSpec A row's request (see ../security.test.js for how it is sent).
 * @property {string} [method] GET unless given.
 * @property {string} path With its query, exactly as sent.
 * @property {unknown} [body] An object is sent as JSON; a string as it is.
 * @property {Record<string, string>} [headers]
 * @property {boolean | string} [admin] The admin token (`true`) or this token; none unless given.
 * @property {string} [session] A session id as Bearer.
 * @property {number} [stream] Instead of `body`: this many bytes without Content-Length, then a
 *   body that never ends.
 * @property {number} [repeat] Sent this many times (the outcome is the last one's, or the
 *   first that differs from the expected status).
 */
/** @typedef {import("../../app.js").TestApp} TestApp */
/** @typedef {import("../../helpers.js").Answer} Answer */
/** @typedef {(r: Answer, ctx: any, app: TestApp) => any} Check */
/** @typedef {(app: TestApp) => any} Setup */
/**
 * @typedef {object} Row One situation of one route's table.
 * @property {string} situation
 * @property {keyof typeof WORKERS} [worker] The Worker it runs on ("normal" unless given).
 * @property {Setup} [setup] Resolves the row's context.
 * @property {RequestSpec | ((ctx: any) => RequestSpec)} request
 * @property {{ status: number, code?: string, headers?: Record<string, string>, check?: Check }} expect
 */

export { HIGH };
export const SEED = { ...HIGH, featureFlags: { newCheckout: true }, cacheTtlSeconds: 1 };
export const SEED_NO_D1 = { ...HIGH, featureFlags: { newCheckout: true } };

/** @type {Record<"normal" | "noD1" | "noD1Strict" | "noKV" | "cors", NonNullable<Parameters<typeof import("../../app.js").spawnApp>[0]>>} */
export const WORKERS = {
  normal: { seedConfig: SEED },
  noD1: { d1: false, seedConfig: SEED_NO_D1 },
  // The same fault, with the `flags` group on the strict (D1) tier.
  noD1Strict: { d1: false, seedConfig: { ...HIGH, strictRateLimits: ["flags"] } },
  // No KV: config:app cannot be seeded, so the defaults apply (100 requests per client and
  // group per 60 s); every row uses a fresh client.
  noKV: { kv: false },
  // CORS configured for an origin the suite's requests never come from.
  cors: { seedConfig: SEED, vars: { ALLOWED_ORIGINS: "https://app.example" } },
};

export const KIB = 1024;
/**
 * `text` padded with spaces to exactly `bytes` bytes.
 * @param {string} text @param {number} bytes
 */
export const pad = (text, bytes) => text + " ".repeat(bytes - Buffer.byteLength(text));
/**
 * A JSON body well over 64 KiB (with a Content-Length).
 * @param {object} [obj]
 */
export const bigBody = (obj = {}) => JSON.stringify({ ...obj, pad: "x".repeat(70 * KIB) });

/** Setup + check pair: the stored config:app is byte-for-byte unchanged by the request. */
export const keepsConfig = {
  /** @param {TestApp} app */
  setup: async (app) => ({ before: await app.kv.get("config:app") }),
  /** @param {Answer} r @param {any} ctx @param {TestApp} app */
  check: async (r, ctx, app) => expect(await app.kv.get("config:app")).toBe(ctx.before),
};

/**
 * Setup for PATCH /prefs rows on the normal Worker: a fresh session, nothing stored yet.
 * @param {TestApp} app
 */
export const freshPrefsUser = async (app) => app.mintSession();
/**
 * Check: a rejected PATCH wrote nothing (no D1 row, no KV copy).
 * @param {Answer} r @param {any} ctx @param {TestApp} app
 */
export const prefsUntouched = async (r, ctx, app) => {
  expect(await app.prefsRow(ctx.userId)).toBeNull();
  expect(await app.kv.get(`prefs:${ctx.userId}`)).toBeNull();
};

/**
 * Check: the error message names the field (`field` matches it), then `then` holds.
 * @param {RegExp} field @param {Check} then
 * @returns {Check}
 */
export const namesField = (field, then) => async (r, ctx, app) => {
  expect(r.body.error).toMatch(field);
  await then(r, ctx, app);
};

/**
 * Setup: a session minted and then logged out; `loggedOut` is the logout's status.
 * @param {TestApp} app
 */
export async function revokedSession(app) {
  const s = await app.mintSession();
  const { status } = await app.logout(s.id, { client: app.newClient() });
  return { ...s, loggedOut: status };
}

/**
 * POST /sessions with the admin token for the row's `userId` (and an e-mail made from it).
 * @param {{ userId: string }} ctx
 * @returns {RequestSpec}
 */
export const mintFor = (ctx) => ({
  method: "POST",
  path: "/sessions",
  admin: true,
  body: { userId: ctx.userId, email: `${ctx.userId}@example.com` },
});

/**
 * Check: a rejected POST /sessions created no session for the row's user.
 * @param {string} userId
 * @returns {Check}
 */
export const noSessionFor = (userId) => async (r, ctx, app) => expect(await app.sessionCount(userId)).toBe(0);

/**
 * The two rows every admin route gets: no `Authorization`, and a wrong admin token. Both are
 * 401 `unauthorized`, and `check` proves nothing changed.
 * @param {{ setup?: Setup, request: (ctx: any) => RequestSpec, check?: Check }} parts
 * @returns {Row[]}
 */
export function adminAuthRows({ setup, request, check }) {
  /** @type {[string, Partial<RequestSpec>][]} */
  const credentials = [
    ["no Authorization", {}],
    ["wrong admin token", { admin: "wrong-token" }],
  ];
  return credentials.map(([situation, auth]) => ({
    situation,
    ...(setup && { setup }),
    request: (ctx) => ({ ...request(ctx), ...auth }),
    expect: { status: 401, code: "unauthorized", ...(check && { check }) },
  }));
}

/** Rows that wait for room in the fixed window (setup only; nothing asserts on time). */
export { roomInWindow } from "../../helpers.js";

/**
 * Setup: a scoped admin token (`{token, name, scope, createdAt, createdBy}`), made through
 * POST /admin/tokens with the admin token.
 * @param {TestApp} app @param {"read" | "flags" | "sessions"} scope @param {string} [name]
 */
export async function scopedToken(app, scope, name = uid("tok")) {
  const r = await app.json("/admin/tokens", { method: "POST", admin: true, body: { name, scope } });
  if (r.status !== 201) throw new Error(`setup: POST /admin/tokens → ${r.status} ${r.text}`);
  return /** @type {{ token: string, name: string, scope: string, createdAt: number, createdBy: string }} */ (r.body);
}

/**
 * The admin_tokens row named `name`, or null.
 * @param {TestApp} app @param {string} name @returns {Promise<any>}
 */
export const tokenRow = (app, name) => app.db.prepare("SELECT * FROM admin_tokens WHERE name = ?").bind(name).first();

/**
 * Check: no token named as the row's `name` exists.
 * @param {Answer} r @param {any} ctx @param {TestApp} app
 */
export const noTokenNamed = async (r, ctx, app) => expect(await tokenRow(app, ctx.name)).toBeNull();

/**
 * The status of GET /admin/config with `token`, from a fresh client.
 * @param {TestApp} app @param {string} token
 */
export const statusWithToken = async (app, token) => (await app.getAdminConfig({ admin: token, client: app.newClient() })).status;
