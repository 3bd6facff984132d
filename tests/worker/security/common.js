// What the per-route rows of the bad-input and fault suite share: the seeded configs of
// the Workers they run on, body builders, and setup/check pairs that prove a refused request
// changed nothing.
import { expect } from "vitest";

export const HIGH = { rateLimits: { default: 1000000 } };
export const SEED = { ...HIGH, featureFlags: { newCheckout: true }, cacheTtlSeconds: 1 };
export const SEED_NO_D1 = { ...HIGH, featureFlags: { newCheckout: true } };

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
/** `text` padded with spaces to exactly `bytes` bytes. */
export const pad = (text, bytes) => text + " ".repeat(bytes - Buffer.byteLength(text));
/** A JSON body well over 64 KiB (with a Content-Length). */
export const bigBody = (obj = {}) => JSON.stringify({ ...obj, pad: "x".repeat(70 * KIB) });

/** Setup + check pair: the stored config:app is byte-for-byte unchanged by the request. */
export const keepsConfig = {
  setup: async (app) => ({ before: await app.kv.get("config:app") }),
  check: async (r, ctx, app) => expect(await app.kv.get("config:app")).toBe(ctx.before),
};

/** Setup for PATCH /prefs rows on the normal Worker: a fresh session, nothing stored yet. */
export const freshPrefsUser = async (app) => app.mintSession();
/** Check: a rejected PATCH wrote nothing (no D1 row, no KV copy). */
export const prefsUntouched = async (r, ctx, app) => {
  expect(await app.prefsRow(ctx.userId)).toBeNull();
  expect(await app.kv.get(`prefs:${ctx.userId}`)).toBeNull();
};

/** Check: a rejected POST /sessions created no session for the row's user. */
export const noSessionFor = (userId) => async (r, ctx, app) => expect(await app.sessionCount(userId)).toBe(0);

/**
 * The two rows every admin route gets: no `Authorization`, and a wrong admin token. Both are
 * 401 `unauthorized`, and `check` proves nothing changed.
 */
export function adminAuthRows({ setup, request, check }) {
  return [
    ["no Authorization", {}],
    ["wrong admin token", { admin: "wrong-token" }],
  ].map(([situation, auth]) => ({
    situation,
    ...(setup && { setup }),
    request: (ctx) => ({ ...request(ctx), ...auth }),
    expect: { status: 401, code: "unauthorized", ...(check && { check }) },
  }));
}

/** Rows that wait for room in the fixed window (setup only; nothing asserts on time). */
export { roomInWindow } from "../../helpers.js";
