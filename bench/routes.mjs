// The routes `npm run bench` measures, and how it seeds the app so that each is a hot path.
// To measure another route, add one entry to ROUTES (its storage budget goes in
// bench/budgets.json, which tests/worker/budgets.test.js asserts) and, if it needs data, to seed().
import { readFileSync } from "node:fs";
import { ADMIN_TOKEN, call, expectStatus } from "./common.mjs";

export const BUDGETS = JSON.parse(readFileSync(new URL("./budgets.json", import.meta.url), "utf8"));

/** The config every run starts from: rate limits high enough never to refuse. */
export const CONFIG = {
  featureFlags: { newCheckout: true },
  rateLimits: { default: 1_000_000 },
  maintenanceMode: false,
  strictRateLimits: [],
  rateLimitWindowSeconds: 60,
  cacheTtlSeconds: 86_400,
};

const BATCH_IDS = Array.from({ length: 10 }, (_, i) => `bench-user-${i}`);
const json = (body) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

/**
 * The hot routes. `headers` may be a function of what seed() returned. `budget` names the
 * entry of bench/budgets.json. `kv` is the KV work the route does per request, which its
 * ceiling (bench/ceiling.js /kv) repeats: `get` keys read one by one, `bulk` keys read in
 * one bulk read (a trailing `*` is a prefix). `wrangler` marks the routes also measured
 * through `wrangler dev`. `setup(base)`, if any, runs just before the route is measured.
 * `untargeted` (a reason) keeps a route's CPU out of the targets (it is still measured).
 */
/** The seeded preferences. */
const PREFS = JSON.stringify({ theme: "dark", language: "nl-NL", notifications: false });

export const ROUTES = [
  { name: "GET /health", method: "GET", path: "/health", budget: "GET /health", wrangler: true },
  { name: "GET /config", method: "GET", path: "/config", budget: "GET /config", wrangler: true },
  { name: "GET /flags/newCheckout", method: "GET", path: "/flags/newCheckout", budget: "GET /flags/:name" },
  {
    name: "GET /sessions/current",
    method: "GET",
    path: "/sessions/current",
    headers: (s) => s.bearer,
    budget: "GET /sessions/current",
    kv: { get: ["session:*"] },
  },
  {
    name: "GET /prefs",
    method: "GET",
    path: "/prefs",
    headers: (s) => s.bearer,
    budget: "GET /prefs",
    kv: { get: ["session:*", "prefs:bench-user"] },
    // A KV copy over a minute old is re-read from D1 in the background once a minute. Under
    // callgrind a minute is a few hundred requests, so that refresh would land in the counted
    // ones 50 times as often as at full speed: the copy is renewed just before they start.
    beforeCount: (base, s) =>
      expectStatus(base, { method: "PATCH", path: "/prefs", body: PREFS, headers: { ...s.bearer, "content-type": "application/json" } }, 200),
  },
  { name: "GET /users/:id (hit)", method: "GET", path: "/users/bench-user", budget: "GET /users/:id (hit)", kv: { get: ["user:bench-user"] }, wrangler: true },
  {
    name: "POST /users/batch (10 ids, cached)",
    method: "POST",
    path: "/users/batch",
    ...json({ ids: BATCH_IDS }),
    budget: "POST /users/batch (cached)",
    kv: { bulk: ["user:bench-user-*"] },
  },
];

// 50 flags for the OFREP bulk row: 25 booleans and 25 with a targeting rule and a 30/70
// rollout (newCheckout, already in the config, is one of the booleans). Added by the row's
// `setup`, after the routes above, so that their config stays small.
const BENCH_FLAGS = Object.fromEntries(
  Array.from({ length: 49 }, (_, i) => [
    `benchFlag${i}`,
    i % 2
      ? true
      : {
          variants: { on: true, off: false },
          defaultVariant: "off",
          rules: [{ when: { country: { in: ["NL", "BE"] } }, variant: "on" }],
          rollout: { on: 30, off: 70 },
        },
  ]),
);

ROUTES.push({
  name: "POST /ofrep/v1/evaluate/flags (50 flags)",
  method: "POST",
  path: "/ofrep/v1/evaluate/flags",
  ...json({ context: { targetingKey: "bench-user", country: "US" } }),
  budget: "POST /ofrep/v1/evaluate/flags (50 flags)",
  // Measured, with no CPU target: the targets are for the hot routes (one lookup each), and
  // this one's work grows with the number of flags it evaluates.
  untargeted: "no target: its work grows with the flags evaluated (50 here, 25 with a rollout)",
  setup: async (base) => {
    const body = JSON.stringify({ featureFlags: BENCH_FLAGS });
    await expectStatus(base, { method: "PATCH", path: "/admin/config", body, headers: admin }, 200);
  },
});

/**
 * The ceiling request for `route`: bench/ceiling.js doing the route's KV work, given `keys`.
 * A route with a body sends the ceiling the same body, which it reads and parses as any
 * Worker answering that request must.
 */
export function ceilingFor(route, keys) {
  const request = route.body
    ? { method: route.method, body: route.body, headers: { "content-type": "application/json" } }
    : { method: "GET", headers: {} };
  if (!route.kv) return { name: route.body ? "ceiling (reading the body)" : "ceiling", path: "/health", ...request };
  const expand = (patterns = []) =>
    patterns.flatMap((p) => (p.endsWith("*") ? keys.filter((k) => k.startsWith(p.slice(0, -1))) : [p]));
  const query = new URLSearchParams({ get: expand(route.kv.get).join(","), bulk: expand(route.kv.bulk).join(",") });
  return { name: `ceiling (${route.name}'s KV work)`, path: `/kv?${query}`, ...request };
}

/** Response headers the runtime or the transport adds, which the ceiling is not asked to send. */
const TRANSPORT_HEADERS = /^(content-type|content-length|content-encoding|transfer-encoding|date|connection|keep-alive|mf-.*)$/i;

/**
 * The headers of `route`'s answer from the app at `base`, for the ceiling to send too:
 * Server-Timing, RateLimit, Cache-Control and the rest the contract asks of any Worker that
 * answers the route. The runtime's work for them is then in the ceiling as well, and "over the
 * ceiling" is what edgestate's code costs.
 */
export async function answerHeaders(base, route) {
  const r = await call(base, route);
  return Object.fromEntries([...r.headers].filter(([name]) => !TRANSPORT_HEADERS.test(name)));
}

/** Makes the ceiling at `base` (bench/ceiling.js) answer with `headers` besides Content-Type. */
export async function sendHeaders(base, headers) {
  const r = await fetch(`${base}/`, { method: "PUT", body: JSON.stringify(headers) });
  if (r.status !== 204) throw new Error(`the ceiling refused its headers: ${r.status} ${await r.text()}`);
}

/** Over its limit: the flags group limited to 1 per window (the one admitted request is a 200). */
export const LIMITED = { name: "GET /flags/x over its limit (429)", method: "GET", path: "/flags/x", expect: 429, alsoOk: [200], budget: "GET /flags/:name", limit: true };

/** A route with its headers resolved against the seed. */
export function resolve(route, seeded) {
  const headers = typeof route.headers === "function" ? route.headers(seeded) : route.headers;
  return { expect: 200, ...route, headers: headers ?? {} };
}

/**
 * Seeds a booted app through its own API (config in KV by `putConfig`, a session, users,
 * preferences) and warms the caches; returns {bearer}.
 */
export async function seed(base, putConfig) {
  await putConfig(JSON.stringify(CONFIG));
  const config = await expectStatus(base, { method: "GET", path: "/config" }, 200);
  if (config.rateLimits.default !== CONFIG.rateLimits.default) {
    throw new Error(`the seeded config:app was not served: ${JSON.stringify(config)}`);
  }
  const session = await expectStatus(
    base,
    { method: "POST", path: "/sessions", ...json({ userId: "bench-user", email: "bench@example.com" }), headers: admin },
    201,
  );
  const bearer = { authorization: `Bearer ${session.sessionId}` };
  for (const id of ["bench-user", ...BATCH_IDS]) {
    const body = JSON.stringify({ name: `Bench ${id}` });
    await expectStatus(base, { method: "PUT", path: `/admin/users/${id}`, body, headers: admin }, 200);
  }
  await expectStatus(base, { method: "PATCH", path: "/prefs", body: PREFS, headers: { ...bearer, "content-type": "application/json" } }, 200);
  // Warm the users cache: a MISS stores the entry, the next GET is a HIT.
  for (const id of ["bench-user", ...BATCH_IDS]) await expectStatus(base, { method: "GET", path: `/users/${id}` }, 200);
  const hit = await call(base, { method: "GET", path: "/users/bench-user" });
  if (hit.headers.get("x-cache") !== "HIT") throw new Error(`GET /users/bench-user is not a cache HIT: ${hit.headers.get("x-cache")}`);
  const batch = await expectStatus(base, { method: "POST", path: "/users/batch", ...json({ ids: BATCH_IDS }) }, 200);
  if (BATCH_IDS.some((id) => !batch.users[id])) throw new Error(`POST /users/batch misses users: ${JSON.stringify(batch)}`);
  return { bearer };
}

/** Sets the flags group's limit to 1, for LIMITED. */
export async function limitFlags(base) {
  const body = JSON.stringify({ rateLimits: { flags: 1 } });
  await expectStatus(base, { method: "PATCH", path: "/admin/config", body, headers: admin }, 200);
}

/**
 * What of `budget` the measured mean storage work exceeds. KV writes may add the approximate
 * limiter's counter syncs (at most one a second, whichever request comes first), as
 * tests/worker/budgets.test.js allows them.
 */
export function overBudget(storage, budget) {
  const syncs = BUDGETS["approximate rate-limit syncs"];
  const allowance = { kvWrites: syncs.kvWrites / syncs.requests };
  return Object.entries(budget)
    .map(([k, max]) => [k, max + (allowance[k] ?? 0)])
    .filter(([k, max]) => storage.mean[k] > max)
    .map(([k, max]) => `${k} ${storage.mean[k]} > ${max}`);
}
