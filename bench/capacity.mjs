// @ts-check
// The capacity model (docs/capacity.md): projects the storage operations per request that
// `npm run bench` measured (bench/results.json), plus the background work the code does
// beside requests, onto a stated workload (bench/workload.json), and holds the result
// against the platform's limits and prices.
//
//   node bench/capacity.mjs                      print the tables
//   node bench/capacity.mjs --workload my.json   another workload (entries it lacks come from bench/workload.json)
//   node bench/capacity.mjs --scale 2            the workload's traffic and users times 2
//   node bench/capacity.mjs --json               the model as JSON
//   node bench/capacity.mjs --write              rewrite docs/capacity.md's generated block
//   node bench/capacity.mjs --check              exit 1 if that block is not what --write would write
//   --results <file>, --doc <file>               another results.json or page (for tests)
//
// Nothing here talks to Cloudflare: every limit and price is a constant below, with the page
// it comes from. Check the current pages before relying on a figure.
import { readFileSync, writeFileSync } from "node:fs";

const ROOT = new URL("..", import.meta.url);
const at = (/** @type {string} */ p) => new URL(p, ROOT);

/** When the limits and prices below were read from Cloudflare's pages. */
const READ_ON = "2026-12-04";

/** Platform limits (Workers Paid unless said). */
const LIMITS = {
  // Cloudflare D1 limits page, FAQ "How much work can a D1 database do?": a database runs its
  // queries one at a time, so its throughput is 1 / query time: about 1,000 queries/s at 1 ms.
  // Read replicas (D1 read replication page; its beta changelog, 2025-04-10): Cloudflare
  // creates them, "currently one in each supported D1 region", and routes a read to the
  // nearest. Nothing is published about a replica's throughput: the model assumes each runs
  // queries one at a time as the primary does (this figure), so replicas add throughput
  // region by region, not without bound, and the busiest one (workload
  // d1BusiestReplicaShare) is the limit.
  d1QueriesPerSecondAt1Ms: 1000,
  // D1 limits page: maximum database size 10 GB (Workers Paid; 500 MB on Free).
  d1DatabaseBytes: 10e9,
  // D1 limits page: queries per Worker invocation 1,000 (Paid) / 50 (Free).
  d1QueriesPerInvocation: 1000,
  d1QueriesPerInvocationFree: 50,
  // D1 limits page: maximum string, BLOB or row size 2,000,000 bytes.
  d1RowBytes: 2_000_000,
  // D1 limits page: databases per account 50,000 (Paid).
  d1DatabasesPerAccount: 50_000,
  // Workers KV limits page: writes to the same key, 1 per second.
  kvWritesPerKeyPerSecond: 1,
  // KV limits page: 1,000 operations per Worker invocation; a bulk read counts as one.
  kvOperationsPerInvocation: 1000,
  // KV limits page: value size 25 MiB.
  kvValueBytes: 25 * 1024 * 1024,
  // KV's documentation: a write can take up to about 60 s to be seen in other locations.
  kvPropagationSeconds: 60,
  // Workers limits page: 1,000 subrequests per invocation (Paid), as the issue cites it; the
  // page read on READ_ON lists 10,000 on Paid. KV's 1,000 operations above bind first.
  subrequestsPerInvocation: 1000,
};

/** Prices beyond the included amounts, US$ (Workers, Workers KV and D1 pricing pages). */
const PRICES = {
  workersRequests: 0.3 / 1e6, // per request
  workersCpuMs: 0.02 / 1e6, // per CPU ms
  kvReads: 0.5 / 1e6, // per key read (a bulk read is billed per key)
  kvWrites: 5 / 1e6,
  kvDeletes: 5 / 1e6,
  kvLists: 5 / 1e6,
  d1RowsRead: 0.001 / 1e6,
  d1RowsWritten: 1 / 1e6,
  d1StorageGbMonth: 0.75,
};

/** Included every month on Workers Paid (the same pages). */
const INCLUDED = {
  workersRequests: 10e6,
  workersCpuMs: 30e6,
  kvReads: 10e6,
  kvWrites: 1e6,
  kvDeletes: 1e6,
  kvLists: 1e6,
  d1RowsRead: 25e9,
  d1RowsWritten: 50e6,
  d1StorageGb: 5,
};

/** A month of 730 hours. */
const SECONDS_PER_MONTH = 730 * 3600;

/** edgestate's own constants, from the code (file: name). */
const CODE = {
  feedRefreshSeconds: 5, // src/domain/sessions/checks.rs: FEED_REFRESH_MS
  // A feed read is one statement (the cursor query), the feed empty or not; only an isolate's
  // first read (or one idle past the horizon) is the new reader's batch of two, which the
  // model leaves out: it assumes isolates that live for hours.
  feedReadStatements: 1, // src/storage/d1.rs: SessionDb::revocations
  feedHorizonSeconds: 300, // src/domain/sessions/checks.rs: FEED_HORIZON_MS
  // Housekeeping (src/domain/sessions/housekeeping.rs): each isolate, at most once per
  // PRUNE_EVERY_MS, after a background feed read, one batch of two deletions: up to
  // PRUNE_BATCH sessions past their idle deadline (never later than the absolute one) by
  // KEEP_EXPIRED_MS, and up to
  // PRUNE_BATCH revocations older than twice the feed's horizon that no longer linger.
  pruneEverySeconds: 3600, // PRUNE_EVERY_MS
  pruneBatch: 500, // PRUNE_BATCH
  pruneStatements: 2,
  keepExpiredSeconds: 86_400, // KEEP_EXPIRED_MS
  configCacheSeconds: 5, // src/domain/config.rs: CACHE_MS
  maxConfigBytes: 1_900_000, // src/domain/config.rs: MAX_CONFIG_BYTES
  configOtherBytes: 300, // the config's fields other than its flags, about
  maxFailuresPerMinute: 30, // src/domain/ratelimit/failures.rs: MAX_FAILURES
  missingTtlSeconds: 30, // src/domain/users.rs: MISSING_TTL_MS
  maxBatch: 100, // src/domain/users.rs: MAX_BATCH
  historyRowOverheadBytes: 200, // config_history: the row beside its change and document
  snapshotEvery: 32, // src/domain/versions.rs: SNAPSHOT_EVERY (a patch's row holds the whole document this often)
  patchWrapperBytes: 20, // {"featureFlags":{...}} around one flag's patch
};

/**
 * @typedef {{ kvReads?: number, kvWrites?: number, kvLists?: number, kvDeletes?: number,
 *   d1Reads?: number, d1Writes?: number, d1Replica?: number }} Ops
 *   Storage operations (per request, or per second). kvReads count operations per request and
 *   billed key reads per second; d1Reads/d1Writes run on the primary.
 */

/**
 * The routes of the mix: rate-limit group, whether a session is checked, the bench's name
 * for the route, and the request path's operations as the code does them (used when the
 * bench did not measure the route). The request path is the hot case the bench measures:
 * profile misses, stale copies and the like are flows of their own below.
 */
const ROUTES = [
  { key: "GET /sessions/current", group: "sessions", session: true, bench: /^GET \/sessions\/current$/, feedOnly: true, code: { kvReads: 1 } },
  { key: "GET /prefs", group: "prefs", session: true, bench: /^GET \/prefs$/, feedOnly: true, code: { kvReads: 2 } },
  { key: "PATCH /prefs", group: "prefs", session: true, write: true, bench: /^PATCH \/prefs\b/, d1Kind: "write", code: { kvReads: 1, kvWrites: 1, d1Writes: 1 } },
  { key: "GET /config", group: "config", bench: /^GET \/config$/, code: {} },
  { key: "GET /flags/:name", group: "flags", bench: /^GET \/flags\/\S+$/, code: {} },
  { key: "POST /ofrep/v1/evaluate/flags", group: "flags", bench: /^POST \/ofrep\/v1\/evaluate\/flags( \(|$)/, code: {} },
  { key: "GET /users/:id", group: "users", bench: /^GET \/users\/\S+ \(hit\)/, code: { kvReads: 1 } },
  { key: "POST /users/batch", group: "users", bulk: true, bench: /^POST \/users\/batch\b.*cached/, code: { kvReads: 1 } },
  { key: "PUT /admin/users/:id", write: true, bench: /^PUT \/admin\/users\//, d1Kind: "write", code: { d1Writes: 1, kvDeletes: 1 } },
  { key: "POST /sessions", write: true, bench: /^POST \/sessions$/, d1Kind: "write", code: { d1Writes: 1, kvWrites: 1 } },
  { key: "DELETE /sessions/current", group: "sessions", write: true, bench: /^DELETE \/sessions\/current$/, d1Kind: "write", code: { d1Reads: 1, d1Writes: 2, kvDeletes: 1 } },
];

/** What a user does when a source of work is what fills a resource. */
const ACTIONS = {
  strictLeases:
    "keep `strictRateLimits` to groups that need an exact limit (the seed makes `sessions` strict); a client whose strict requests come over a second apart costs a D1 write each",
  strictPrunes: "nothing to set: one per isolate and window (a longer `rateLimitWindowSeconds`, fewer)",
  housekeeping: "nothing to set: two statements per isolate and hour",
  prefsRevalidation: "nothing to set (it reads replicas); fewer is a code change (`REVALIDATE_MS`, 60 s)",
  prefsKvMisses: "nothing to set: a copy lives 30 days",
  "PATCH /prefs": "shard users across D1 databases (a code change)",
  renewals: "raise `renewAfterSeconds` (e.g. 4 h), with `sessionIdleSeconds` well above it",
  revocationFeed: "nothing to set: it grows with isolates, not sessions",
  profileMisses: "raise `cacheTtlSeconds`",
  profileRefreshes: "raise `cacheTtlSeconds`",
  batchMisses: "raise `cacheTtlSeconds`",
  "PUT /admin/users/:id": "write profiles less often, or shard them",
  "DELETE /sessions/current": "shard sessions with users",
  badTokens: "nothing: 30 a minute per client and isolate; block abusive addresses in the WAF",
  adminConfig: "nothing needed",
  approximateLimiter: "a longer `rateLimitWindowSeconds`; at this scale, a limiter without KV (a code change)",
};

// ---------------------------------------------------------------------------------------
// Inputs

/** @param {unknown} v @returns {any} a workload entry's value ({value} or plain) */
const val = (v) => (v && typeof v === "object" && !Array.isArray(v) && "value" in v ? /** @type {any} */ (v).value : v);

/**
 * Deep merge of a workload over the committed one: objects merge, anything else replaces.
 * @param {any} base @param {any} over @returns {any}
 */
function merge(base, over) {
  if (!over || typeof over !== "object" || Array.isArray(over) || "value" in over) return over ?? base;
  if (!base || typeof base !== "object" || Array.isArray(base) || "value" in base) return over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** @param {any} raw the workload file's JSON @returns the workload as plain numbers */
function workloadOf(raw) {
  /** @param {string} path */
  const get = (path) => {
    let v = raw;
    for (const k of path.split(".")) v = v?.[k];
    const x = val(v);
    if (x === undefined) throw new Error(`workload: ${path} is missing`);
    return x;
  };
  const mix = Object.fromEntries(Object.keys(raw.mix).filter((k) => k !== "$comment").map((k) => [k, Number(val(raw.mix[k]))]));
  for (const k of Object.keys(mix)) if (!ROUTES.some((r) => r.key === k)) throw new Error(`workload: mix names an unknown route: ${k}`);
  const sum = Object.values(mix).reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new Error(`workload: the mix's shares sum to ${sum}, not 1`);
  const w = {
    requestsPerSecond: get("requestsPerSecond"),
    locations: get("locations"),
    isolatesPerLocation: get("isolatesPerLocation"),
    activeSessions: get("activeSessions"),
    flags: get("flags"),
    flagBytes: get("flagBytes"),
    mix,
    strictGroups: /** @type {string[]} */ (get("strictGroups")),
    strictClientsPerSecondShare: get("strictClientsPerSecondShare"),
    strictFirstInWindowShare: get("strictFirstInWindowShare"),
    rateLimitWindowSeconds: get("rateLimitWindowSeconds"),
    requestsPerCounter: get("approximateLimiter.requestsPerCounter"),
    syncsPerCounter: get("approximateLimiter.syncsPerCounter"),
    renewAfterSeconds: get("renewAfterSeconds"),
    sessionIdleSeconds: get("sessionIdleSeconds"),
    sessionAbsoluteSeconds: get("sessionAbsoluteSeconds"),
    badTokenShare: get("badTokenShare"),
    kvHitRatio: get("profiles.kvHitRatio"),
    staleShareOfHits: get("profiles.staleShareOfHits"),
    missingShareOfMisses: get("profiles.missingShareOfMisses"),
    batchIds: get("profiles.batchIds"),
    prefsKvMissShare: get("prefs.kvMissShare"),
    prefsRevalidatedShare: get("prefs.revalidatedShare"),
    adminConfigWritesPerHour: get("adminConfigWritesPerHour"),
    d1RowsReadPerQuery: get("d1RowsReadPerQuery"),
    d1RowsWrittenPerQuery: get("d1RowsWrittenPerQuery"),
    d1MeanQueryMs: get("d1MeanQueryMs"),
    d1BusiestReplicaShare: get("d1BusiestReplicaShare"),
    cpuMsPerRequest: get("cpuMsPerRequest"),
    profiles: get("stored.profiles"),
    usersWithPrefs: get("stored.usersWithPrefs"),
    profileBytes: get("stored.profileBytes"),
    prefsBytes: get("stored.prefsBytes"),
    sessionBytes: get("stored.sessionBytes"),
    revocationBytes: get("stored.revocationBytes"),
    rateLimitBytes: get("stored.rateLimitBytes"),
  };
  if (w.renewAfterSeconds >= w.sessionIdleSeconds) throw new Error("workload: renewAfterSeconds must be below sessionIdleSeconds");
  if (!(w.sessionAbsoluteSeconds > 0)) throw new Error("workload: sessionAbsoluteSeconds must be positive");
  if (w.batchIds < 1 || w.batchIds > CODE.maxBatch) throw new Error(`workload: profiles.batchIds must be 1 to ${CODE.maxBatch}`);
  return w;
}

/** @typedef {ReturnType<typeof workloadOf>} Workload */

/**
 * What bench/results.json measured: per-route means, and the sections a newer bench adds.
 * @param {any} results
 */
function measuredOf(results) {
  const routes = results?.direct?.routes ?? [];
  /** @type {Map<string, { name: string, mean: Record<string, number> }>} */
  const byRoute = new Map();
  for (const r of ROUTES) {
    const found = routes.find((/** @type {any} */ m) => r.bench.test(m.name) && m.storage?.mean);
    if (found) byRoute.set(r.key, { name: found.name, mean: found.storage.mean });
  }
  const runs = (results?.sessionsScale?.runs ?? []).filter((/** @type {any} */ r) => r.d1PerSecond >= 0 && r.sessions > 0);
  const largest = runs.length ? runs.reduce((/** @type {any} */ a, /** @type {any} */ b) => (b.sessions > a.sessions ? b : a)) : null;
  // The feed's statements per second of one isolate: bench/d1.mjs reports them apart from the
  // isolate's hourly housekeeping (feedPerSecond), which the model counts on its own; an older
  // results.json has only every statement (d1PerSecond).
  const feedRate = (/** @type {any} */ r) => r.feedPerSecond ?? r.d1PerSecond;
  const floods = results?.floods ?? {};
  // Two shapes: {reads|requests, d1Queries} as first planned, and bench/d1.mjs's.
  const missing = floods.missingUser;
  const unknown = floods.badTokens ?? floods.unknownSessionIds;
  const beforeCap = unknown && (unknown.refusedFrom ? unknown.refusedFrom - 1 : unknown.requests);
  const burst = floods.unknownSessionIdsAtOnce;
  const unknownQueries = unknown && (unknown.d1Queries ?? unknown.d1QueriesBeforeRefusal);
  const leases = results?.strictLeases;
  const steady = leases && (leases.leasesPerSecondAfterFirst ?? leases.d1WritesPerSecond);
  return {
    date: String(results?.date ?? "").slice(0, 10) || "unknown",
    byRoute,
    sessionsScale: largest ? { runs: runs.map((/** @type {any} */ r) => ({ sessions: r.sessions, feedPerSecond: feedRate(r), housekeeping: r.housekeeping ?? null })), feedPerIsolate: feedRate(largest) } : null,
    // A second in which a client sends any strict request costs at least one lease (a client
    // sending one now and then leases one token per request); the bench's steady client may
    // cost more while its leases grow.
    strictLeases: steady > 0 ? { requestsPerSecond: leases.requestsPerSecond, perClientSecond: Math.max(1, steady) } : null,
    // D1 queries for one missing id read again and again in one isolate (remembered 30 s).
    missingPerId: missing && missing.d1Queries >= 0 && (missing.reads ?? missing.requests) > 0 ? missing.d1Queries : null,
    missingReads: missing ? (missing.reads ?? missing.requests) : null,
    // D1 queries per unknown session id, before the client's 30 a minute are used up.
    badTokenRatio: beforeCap > 0 && unknownQueries >= 0 ? unknownQueries / beforeCap : null,
    anonymousStrict: floods.anonymousStrict ?? floods.anonymousToStrictGroup ?? null,
    // A concurrent burst of unknown ids from one client: D1 lookups in all (counted as they start).
    badTokenBurst: burst && burst.requests > 0 && burst.d1Lookups >= 0 ? { requests: burst.requests, d1Lookups: burst.d1Lookups } : null,
  };
}

// ---------------------------------------------------------------------------------------
// The model

/**
 * @typedef {{ id: string, label: string, grows: "traffic" | "sessions" | "isolates" | "admin",
 *   when: "request" | "background", from: string, perSecond: Required<Ops> & { rowsRead: number, rowsWritten: number } }} Flow
 */

/**
 * @param {string} id @param {string} label @param {Flow["grows"]} grows
 * @param {Flow["when"]} when @param {string} from @param {Ops & { rowsRead?: number, rowsWritten?: number }} ops
 * @returns {Flow}
 */
function flow(id, label, grows, when, from, ops) {
  const z = { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, d1Reads: 0, d1Writes: 0, d1Replica: 0, rowsRead: 0, rowsWritten: 0 };
  return { id, label, grows, when, from, perSecond: { ...z, ...ops } };
}

/**
 * A route's request path per request: measured where the bench measured it, else as coded.
 * @param {typeof ROUTES[number]} route @param {ReturnType<typeof measuredOf>} m
 * @returns {{ ops: Required<Ops>, from: string }}
 */
function requestPath(route, m) {
  const z = { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, d1Reads: 0, d1Writes: 0, d1Replica: 0 };
  const found = m.byRoute.get(route.key);
  if (!found) return { ops: { ...z, ...route.code }, from: "code" };
  const s = found.mean;
  const queries = s.d1Queries ?? 0;
  const primary = s.d1Primary ?? queries;
  // A session route's D1 query in the bench is the revocation feed's read on an isolate's
  // first request: it is counted per isolate (the feed row), not per request.
  const [p, r] = route.feedOnly ? [0, 0] : [primary, Math.max(0, queries - primary)];
  return {
    ops: {
      ...z,
      kvReads: s.kvReads ?? 0,
      kvWrites: s.kvWrites ?? 0,
      kvLists: s.kvLists ?? 0,
      kvDeletes: s.kvDeletes ?? 0,
      d1Reads: route.d1Kind === "write" ? 0 : p,
      d1Writes: route.d1Kind === "write" ? p : 0,
      d1Replica: r,
    },
    from: "bench",
  };
}

/**
 * The model: every flow of storage work per second, the resources against their limits, the
 * sizes and the monthly cost.
 * @param {Workload} w0 @param {any} results @param {number} scale
 */
export function project(w0, results, scale = 1) {
  const w = {
    ...w0,
    requestsPerSecond: w0.requestsPerSecond * scale,
    activeSessions: w0.activeSessions * scale,
    profiles: w0.profiles * scale,
    usersWithPrefs: w0.usersWithPrefs * scale,
  };
  const m = measuredOf(results);
  const isolates = w.locations * w.isolatesPerLocation;
  const rate = (/** @type {string} */ key) => w.requestsPerSecond * (w.mix[key] ?? 0);
  const strict = (/** @type {string | undefined} */ g) => g !== undefined && w.strictGroups.includes(g);
  const rR = w.d1RowsReadPerQuery;
  const rW = w.d1RowsWrittenPerQuery;
  /** @type {Flow[]} */
  const flows = [];

  // Request paths, per route.
  const perRequest = ROUTES.map((route) => {
    const { ops, from } = requestPath(route, m);
    const r = rate(route.key);
    const billed = route.bulk ? w.batchIds : 1;
    const d1 = ops.d1Reads + ops.d1Writes;
    flows.push(
      flow(route.key, `${route.key}`, "traffic", "request", from, {
        kvReads: ops.kvReads * billed * r,
        kvWrites: ops.kvWrites * r,
        kvLists: ops.kvLists * r,
        kvDeletes: ops.kvDeletes * r,
        d1Reads: ops.d1Reads * r,
        d1Writes: ops.d1Writes * r,
        d1Replica: ops.d1Replica * r,
        rowsRead: (d1 + ops.d1Replica) * rR * r,
        rowsWritten: ops.d1Writes * rW * r,
      }),
    );
    return { route: route.key, share: w.mix[route.key] ?? 0, ops, from, bench: m.byRoute.get(route.key)?.name ?? null, bulk: !!route.bulk };
  });

  // Rate limiting: strict leases and prunes (D1), approximate counters (KV).
  const strictRps = ROUTES.filter((r) => strict(r.group)).reduce((a, r) => a + rate(r.key), 0);
  const approxRps = ROUTES.filter((r) => r.group && !strict(r.group)).reduce((a, r) => a + rate(r.key), 0);
  const leasesPerClientSecond = m.strictLeases ? m.strictLeases.perClientSecond : 1;
  const leases = Math.min(strictRps, strictRps * w.strictClientsPerSecondShare * leasesPerClientSecond);
  const leaseFrom = m.strictLeases ? "bench + workload" : "code + workload";
  flows.push(flow("strictLeases", "strict leases", "traffic", "request", leaseFrom, { d1Writes: leases, rowsRead: leases * rR, rowsWritten: leases * rW }));
  // Ended windows' counters are pruned once per window and isolate, whatever the number of
  // clients (src/domain/ratelimit/strict.rs): every isolate, as an upper bound (one that sees
  // no strict request in a window prunes nothing in it). The rows they delete are the
  // counters the size below counts, written once each: left out of the rows written.
  const prunes = strictRps > 0 ? isolates / w.rateLimitWindowSeconds : 0;
  flows.push(flow("strictPrunes", "strict prunes", "isolates", "background", "code", { d1Writes: prunes, rowsRead: prunes * rR, rowsWritten: prunes * rW }));
  const counterFlows = approxRps / w.requestsPerCounter;
  flows.push(
    flow("approximateLimiter", "approximate limiter", "traffic", "request", "code + workload", {
      kvLists: counterFlows * (1 + w.syncsPerCounter),
      kvWrites: counterFlows * w.syncsPerCounter,
    }),
  );

  // Sessions: renewals (grow with sessions), the revocation feed (grows with isolates), bad tokens.
  const renewals = w.activeSessions / w.renewAfterSeconds;
  flows.push(flow("renewals", "session renewals", "sessions", "request", "code + workload", { d1Writes: renewals, d1Reads: renewals, kvWrites: renewals, rowsRead: 2 * renewals * rR, rowsWritten: renewals * rW }));
  // One statement per read, at most one read per isolate per FEED_REFRESH_MS in steady use.
  const feedPerIsolate = m.sessionsScale ? m.sessionsScale.feedPerIsolate : CODE.feedReadStatements / CODE.feedRefreshSeconds;
  const revocationsPerSecond = rate("DELETE /sessions/current");
  const logins = rate("POST /sessions");
  const feed = isolates * feedPerIsolate;
  flows.push(flow("revocationFeed", "revocation feed", "isolates", "background", m.sessionsScale ? "bench" : "code", { d1Reads: feed, rowsRead: feed }));
  // Housekeeping: two statements per isolate and hour on the primary (isolates), and the rows
  // they delete, which follow the logins and revocations (traffic): at steady state, as many
  // sessions pass their deadline as are minted, and as many feed rows age out as are added,
  // each deleted once (D1 bills a deleted row as written; index entries left out).
  const housekeeping = (isolates * CODE.pruneStatements) / CODE.pruneEverySeconds;
  flows.push(flow("housekeeping", "housekeeping", "isolates", "background", "code", { d1Writes: housekeeping, rowsRead: housekeeping }));
  const pruneCapacity = (isolates * CODE.pruneBatch) / CODE.pruneEverySeconds; // rows of each table per second
  const deleted = Math.min(logins, pruneCapacity) + Math.min(revocationsPerSecond, pruneCapacity);
  flows.push(flow("housekeepingRows", "rows housekeeping deletes", "traffic", "background", "code + workload", { rowsRead: deleted, rowsWritten: deleted * rW }));
  // Every isolate reads every revocation once: rows that grow with traffic (and isolates).
  flows.push(flow("revocationRows", "revocation rows read by every isolate", "traffic", "background", "code + workload", { rowsRead: revocationsPerSecond * isolates }));
  const sessionRps = ROUTES.filter((r) => r.session).reduce((a, r) => a + rate(r.key), 0);
  const badTokens = sessionRps * w.badTokenShare * (m.badTokenRatio ?? 1);
  flows.push(flow("badTokens", "bad tokens", "traffic", "request", m.badTokenRatio !== null ? "bench + workload" : "code + workload", { d1Reads: badTokens, rowsRead: badTokens * rR }));

  // Config: each isolate re-reads config:app every 5 s; admin writes.
  flows.push(flow("configReads", "config re-reads", "isolates", "background", "code", { kvReads: isolates / CODE.configCacheSeconds }));
  const adminWrites = w.adminConfigWritesPerHour / 3600;
  flows.push(flow("adminConfig", "admin config writes", "admin", "request", "code + workload", { d1Reads: adminWrites, d1Writes: adminWrites, kvWrites: adminWrites, rowsRead: adminWrites * rR, rowsWritten: adminWrites * rW }));

  // Profiles: misses, missing ids, stale refreshes; the batch's.
  const h = w.kvHitRatio;
  const users = rate("GET /users/:id");
  const found = users * (1 - h) * (1 - w.missingShareOfMisses);
  // Distinct missing ids: one D1 read each per isolate and 30 s (the bench reads one id again and again).
  const missing = users * (1 - h) * w.missingShareOfMisses * (m.missingPerId ?? 1);
  flows.push(flow("profileMisses", "profile misses", "traffic", "request", m.missingPerId !== null ? "bench + workload" : "code + workload", { d1Reads: found + missing, kvWrites: found, rowsRead: (found + missing) * rR }));
  const stale = users * h * w.staleShareOfHits;
  flows.push(flow("profileRefreshes", "profile stale refreshes", "traffic", "background", "code + workload", { d1Reads: stale, kvWrites: stale, rowsRead: stale * rR }));
  const batches = rate("POST /users/batch");
  const n = w.batchIds;
  const sh = h * w.staleShareOfHits;
  const batchQueries = batches * (1 - h ** n) + batches * (1 - (1 - sh) ** n);
  flows.push(
    flow("batchMisses", "batch misses and refreshes", "traffic", "request", "code + workload", {
      d1Reads: batchQueries,
      kvWrites: batches * n * ((1 - h) * (1 - w.missingShareOfMisses) + sh),
      rowsRead: batches * n * ((1 - h) + sh),
    }),
  );

  // Preferences: KV misses and the revalidation of copies over a minute old, both through a
  // replica (src/domain/prefs.rs `revalidate`, src/routes/prefs.rs): off the primary.
  const prefsReads = rate("GET /prefs");
  const prefsMiss = prefsReads * w.prefsKvMissShare;
  flows.push(flow("prefsKvMisses", "prefs KV misses", "traffic", "request", "code + workload", { d1Replica: prefsMiss, kvWrites: prefsMiss, rowsRead: prefsMiss * rR }));
  const revalidate = prefsReads * (1 - w.prefsKvMissShare) * w.prefsRevalidatedShare;
  flows.push(flow("prefsRevalidation", "prefs revalidation", "traffic", "background", "code + workload", { d1Replica: revalidate, kvWrites: revalidate, rowsRead: revalidate * rR }));

  // Resources against their limits.
  const sum = (/** @type {(f: Flow) => number} */ f, /** @type {(f: Flow) => boolean} */ keep = () => true) => flows.filter(keep).reduce((a, x) => a + f(x), 0);
  const fixed = (/** @type {Flow} */ f) => f.grows === "isolates" || f.grows === "admin";
  const perDb = LIMITS.d1QueriesPerSecondAt1Ms / w.d1MeanQueryMs;
  /** @param {string} id @param {string} label @param {(f: Flow) => number} of @param {number} limit @param {string} unit */
  const resource = (id, label, of, limit, unit) => {
    const total = sum(of);
    const still = sum(of, fixed);
    const grows = total - still;
    const factor = grows > 0 ? Math.max(0, (limit - still) / grows) : Infinity;
    const parts = flows.filter((f) => of(f) > 0).map((f) => ({ id: f.id, label: f.label, perSecond: of(f), share: of(f) / total })).sort((a, b) => b.perSecond - a.perSecond);
    return { id, label, perSecond: total, fixedPerSecond: still, limit, unit, utilisation: total / limit, breaksAt: factor, breaksAtRps: factor * w.requestsPerSecond, parts };
  };
  const resources = [
    resource("d1Primary", "D1 primary (one database)", (f) => f.perSecond.d1Reads + f.perSecond.d1Writes, perDb, "queries"),
    resource("d1Replica", "D1 busiest read replica", (f) => f.perSecond.d1Replica * w.d1BusiestReplicaShare, perDb, "queries"),
    resource("kvConfigKey", "KV writes to `config:app`", (f) => (f.id === "adminConfig" ? f.perSecond.kvWrites : 0), LIMITS.kvWritesPerKeyPerSecond, "writes"),
  ];
  const first = resources.reduce((a, b) => (b.breaksAt < a.breaksAt ? b : a));

  // KV writes per key (one a second each): average per key at this workload.
  const perUserPrefs = (rate("PATCH /prefs") + revalidate + prefsMiss) / Math.max(1, w.activeSessions);
  const perSession = (rate("POST /sessions") + renewals) / Math.max(1, w.activeSessions);

  // Housekeeping against what expires: each isolate deletes up to PRUNE_BATCH rows of each
  // table an hour; at steady state as many sessions pass their deadline (by a day) as are
  // minted, and as many revocations age out as are made.
  const hour = 3600;
  const prunedPerHour = pruneCapacity * hour;
  const expiringPerHour = { sessions: logins * hour, revocations: revocationsPerSecond * hour };
  const busiest = Math.max(expiringPerHour.sessions, expiringPerHour.revocations);
  const housekeepingCheck = {
    isolates,
    prunedPerHour,
    expiringPerHour,
    keepsUp: busiest <= prunedPerHour,
    headroom: busiest > 0 ? prunedPerHour / busiest : Infinity,
  };

  // Sizes. D1 at steady state (housekeeping keeping up): the rows of
  // - sessions: the active ones (kept alive by renewal), and every session minted within
  //   the idle lifetime and a day (a logged-out or unused session stays until a day past
  //   its idle deadline), plus the gap between two prunes across the isolates;
  // - revocations: the last twice FEED_HORIZON_MS of them (lingering ones left out: few);
  // - rate_limits: the counters of this window and the last;
  // - users and preferences, as stored.
  // config_history is never pruned: it grows with admin writes. An admin write is taken to
  // be a PATCH of one flag, as the console's editor makes it: its row holds that flag's
  // patch, and every SNAPSHOT_EVERY patches the whole document. So do sessions and
  // revocations grow by what outruns housekeeping, if anything does.
  const day = 86400;
  const gap = CODE.pruneEverySeconds / Math.max(1, isolates);
  const sessionRows = Math.max(w.activeSessions, logins * (retentionSeconds(w) + CODE.keepExpiredSeconds + gap));
  const revocationRows = revocationsPerSecond * (2 * CODE.feedHorizonSeconds + gap);
  const strictRows = strictRps * w.strictFirstInWindowShare * w.rateLimitWindowSeconds * 2;
  const steady = {
    sessions: sessionRows * w.sessionBytes,
    profiles: w.profiles * w.profileBytes,
    prefs: w.usersWithPrefs * w.prefsBytes,
    rateLimits: strictRows * w.rateLimitBytes,
    revocations: revocationRows * w.revocationBytes,
  };
  const steadyBytes = Object.values(steady).reduce((a, b) => a + b, 0);
  const configBytes = w.flags * w.flagBytes + CODE.configOtherBytes;
  const historyRow = Math.min(configBytes, CODE.maxConfigBytes) / CODE.snapshotEvery + w.flagBytes + CODE.patchWrapperBytes + CODE.historyRowOverheadBytes;
  const growth = {
    sessions: Math.max(0, logins - pruneCapacity) * day * w.sessionBytes,
    revocations: Math.max(0, revocationsPerSecond - pruneCapacity) * day * w.revocationBytes,
    configHistory: w.adminConfigWritesPerHour * 24 * historyRow,
  };
  const perDay = growth.sessions + growth.revocations + growth.configHistory;
  const daysToFull = perDay > 0 ? Math.max(0, (LIMITS.d1DatabaseBytes - steadyBytes) / perDay) : steadyBytes > LIMITS.d1DatabaseBytes ? 0 : Infinity;
  const sizes = {
    configBytes,
    configFits: configBytes <= CODE.maxConfigBytes,
    flagsThatFit: Math.floor((CODE.maxConfigBytes - CODE.configOtherBytes) / w.flagBytes),
    d1SessionRows: sessionRows,
    d1Steady: steady,
    d1SteadyBytes: steadyBytes,
    // The workload's multiple at which the steady state alone fills a database.
    d1SteadyFullAt: steadyBytes > 0 ? LIMITS.d1DatabaseBytes / steadyBytes : Infinity,
    d1GrowthBytesPerDay: perDay,
    d1Growth: growth,
    d1BytesAfter30Days: steadyBytes + 30 * perDay,
    d1DaysToFull: daysToFull,
  };

  // Monthly cost.
  const month = (/** @type {(f: Flow) => number} */ of) => sum(of) * SECONDS_PER_MONTH;
  const storageGb = Math.min(sizes.d1BytesAfter30Days, LIMITS.d1DatabaseBytes) / 1e9;
  /** @type {[string, string, number, number, number][]} kind, unit, per month, included, price */
  const kinds = [
    ["Workers requests", "requests", w.requestsPerSecond * SECONDS_PER_MONTH, INCLUDED.workersRequests, PRICES.workersRequests],
    ["Workers CPU", "ms", w.requestsPerSecond * w.cpuMsPerRequest * SECONDS_PER_MONTH, INCLUDED.workersCpuMs, PRICES.workersCpuMs],
    ["KV reads", "keys", month((f) => f.perSecond.kvReads), INCLUDED.kvReads, PRICES.kvReads],
    ["KV writes", "writes", month((f) => f.perSecond.kvWrites), INCLUDED.kvWrites, PRICES.kvWrites],
    ["KV lists", "lists", month((f) => f.perSecond.kvLists), INCLUDED.kvLists, PRICES.kvLists],
    ["KV deletes", "deletes", month((f) => f.perSecond.kvDeletes), INCLUDED.kvDeletes, PRICES.kvDeletes],
    ["D1 rows read", "rows", month((f) => f.perSecond.rowsRead), INCLUDED.d1RowsRead, PRICES.d1RowsRead],
    ["D1 rows written", "rows", month((f) => f.perSecond.rowsWritten), INCLUDED.d1RowsWritten, PRICES.d1RowsWritten],
    ["D1 storage (day 30, at most 10 GB)", "GB-month", storageGb, INCLUDED.d1StorageGb, PRICES.d1StorageGbMonth],
  ];
  const costs = kinds.map(([kind, unit, perMonth, included, price]) => ({ kind, unit, perMonth, included, price, cost: Math.max(0, perMonth - included) * price }));
  const totalCost = costs.reduce((a, c) => a + c.cost, 0);
  // What each flow costs at list prices (included amounts left out), largest first.
  const byFlow = flows
    .map((f) => {
      const x = f.perSecond;
      const perSecond = x.kvReads * PRICES.kvReads + x.kvWrites * PRICES.kvWrites + x.kvLists * PRICES.kvLists + x.kvDeletes * PRICES.kvDeletes + x.rowsRead * PRICES.d1RowsRead + x.rowsWritten * PRICES.d1RowsWritten;
      return { id: f.id, label: f.label, cost: perSecond * SECONDS_PER_MONTH };
    })
    .sort((a, b) => b.cost - a.cost);

  const writes = ROUTES.filter((r) => r.write).reduce((a, r) => a + (w.mix[r.key] ?? 0), 0);
  return {
    scale,
    workload: { ...w, isolates, writeShare: writes, strictShare: strictRps / w.requestsPerSecond, strictRps, approxRps },
    measured: {
      date: m.date,
      routes: [...m.byRoute].map(([key, v]) => ({ route: key, bench: v.name })),
      sessionsScale: m.sessionsScale,
      strictLeases: m.strictLeases,
      missingPerId: m.missingPerId,
      missingReads: m.missingReads,
      badTokenRatio: m.badTokenRatio,
      anonymousStrict: m.anonymousStrict,
      badTokenBurst: m.badTokenBurst,
    },
    perRequest,
    flows,
    resources,
    first: { id: first.id, label: first.label, breaksAt: first.breaksAt, breaksAtRps: first.breaksAtRps },
    kvPerKey: { prefsPerUser: perUserPrefs, sessionPerSession: perSession, configPerSecond: adminWrites },
    housekeeping: housekeepingCheck,
    // A flood of guessed session ids: at most MAX_FAILURES D1 lookups per client, isolate and
    // minute, concurrent ones included; for one client reaching every isolate, per second.
    guessFloodPerClient: (isolates * CODE.maxFailuresPerMinute) / 60,
    sizes,
    costs,
    totalCost,
    costByFlow: byFlow,
  };
}

// ---------------------------------------------------------------------------------------
// Rendering (deterministic: no dates but the bench's, no locale)

/** @param {number} x @param {number} [d] */
function grouped(x, d = 0) {
  const [i, f] = Math.abs(x).toFixed(d).split(".");
  const s = i.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (x < 0 ? "-" : "") + (f ? `${s}.${f}` : s);
}
/** @param {number} x */
function num(x) {
  if (!Number.isFinite(x)) return "∞";
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a >= 100) return grouped(x);
  if (a >= 10) return trim(x.toFixed(1));
  if (a >= 1) return trim(x.toFixed(2));
  if (a >= 0.0005) return trim(x.toFixed(3));
  return "<0.001";
}
/** @param {string} s */
const trim = (s) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
/** @param {number} x */
const big = (x) => (x >= 1e9 ? `${num(x / 1e9)} B` : x >= 1e6 ? `${num(x / 1e6)} M` : num(x));
/** @param {number} x */
const usd = (x) => `$${grouped(Math.round(x))}`;
/** @param {number} x */
const pct = (x) => `${num(x * 100)} %`;
/** @param {number} k */
const times = (k) => (Number.isFinite(k) ? `${k >= 10 ? grouped(k) : trim(k.toPrecision(2))}×` : "never");
/** @param {number} n @param {string} one @param {string} many */
const count = (n, one, many) => `${num(n)} ${n === 1 ? one : many}`;
/** @param {number} b */
const gb = (b) => `${num(b / 1e9)} GB`;

/** @param {ReturnType<typeof project>} p @returns {string} the generated block (markdown) */
export function render(p) {
  const w = p.workload;
  const L = [];
  L.push(`_Generated by \`npm run capacity -- --write\` from bench/results.json (bench of ${p.measured.date}) and bench/workload.json${p.scale !== 1 ? ` scaled ${p.scale}×` : ""}; limits and prices as read on ${READ_ON}. Do not edit by hand._`, "");
  L.push(
    `**Workload:** ${grouped(w.requestsPerSecond)} requests/s over ${grouped(w.locations)} locations × ${w.isolatesPerLocation} isolates (${grouped(w.isolates)} isolates), ` +
      `${grouped(w.activeSessions)} active sessions, ${grouped(w.flags)} flags, ${pct(w.writeShare)} writes; ` +
      `strict groups: ${w.strictGroups.join(", ") || "none"} (${pct(w.strictShare)} of requests).`,
    "",
  );

  L.push("### Storage operations per request (request path)", "");
  L.push("| route | share | KV reads | KV writes | KV lists | KV deletes | D1 primary | D1 replica | from |", "|---|--:|--:|--:|--:|--:|--:|--:|---|");
  for (const r of p.perRequest) {
    const o = r.ops;
    L.push(`| ${r.route} | ${pct(r.share)} | ${num(o.kvReads)}${r.bulk ? " (bulk)" : ""} | ${num(o.kvWrites)} | ${num(o.kvLists)} | ${num(o.kvDeletes)} | ${num(o.d1Reads + o.d1Writes)} | ${num(o.d1Replica)} | ${r.from} |`);
  }
  L.push("");

  L.push("### Work per second, by source", "");
  L.push("| source | KV reads | KV writes | KV lists | KV deletes | D1 primary | D1 replica | grows with |", "|---|--:|--:|--:|--:|--:|--:|---|");
  const columns = /** @type {const} */ (["kvReads", "kvWrites", "kvLists", "kvDeletes", "d1Reads", "d1Writes", "d1Replica"]);
  const shown = p.flows.filter((f) => columns.some((c) => f.perSecond[c] > 0));
  for (const f of shown) {
    const s = f.perSecond;
    L.push(`| ${f.label}${f.when === "background" ? "*" : ""} | ${num(s.kvReads)} | ${num(s.kvWrites)} | ${num(s.kvLists)} | ${num(s.kvDeletes)} | ${num(s.d1Reads + s.d1Writes)} | ${num(s.d1Replica)} | ${f.grows} |`);
  }
  const tot = (/** @type {(s: Flow["perSecond"]) => number} */ g) => num(p.flows.reduce((a, f) => a + g(f.perSecond), 0));
  L.push(`| **total** | ${tot((s) => s.kvReads)} | ${tot((s) => s.kvWrites)} | ${tot((s) => s.kvLists)} | ${tot((s) => s.kvDeletes)} | ${tot((s) => s.d1Reads + s.d1Writes)} | ${tot((s) => s.d1Replica)} | |`, "");
  L.push(`\\* in the background (\`waitUntil\`), not in \`Server-Timing\`. KV reads per second are billed keys (a bulk read of ${w.batchIds} ids is ${w.batchIds}).`, "");

  L.push("### Against the limits", "");
  L.push("| resource | per second | limit | used | breaks at |", "|---|--:|--:|--:|---|");
  for (const r of p.resources) {
    const at = Number.isFinite(r.breaksAt) ? `${times(r.breaksAt)} (${grouped(Math.round(r.breaksAtRps))} requests/s)` : "never (does not grow with traffic)";
    L.push(`| ${r.label} | ${num(r.perSecond)} ${r.unit} | ${num(r.limit)}/s | ${pct(r.utilisation)} | ${at} |`);
  }
  L.push("");
  const first = p.resources.find((r) => r.id === p.first.id);
  if (!first) throw new Error("no resource");
  const over = first.utilisation > 1 ? ` At ${p.scale === 1 ? "the stated workload" : "this workload"} it would carry ${times(first.utilisation)} its limit.` : "";
  const stated = p.scale === 1 ? "the stated workload" : "this workload";
  L.push(`**The first limit to break is the ${first.label}, at ${times(first.breaksAt)} ${stated} (${grouped(Math.round(first.breaksAtRps))} requests/s).**${over} What fills it, and what a user does then:`, "");
  for (const part of first.parts.filter((x) => x.share >= 0.05)) {
    L.push(`- ${part.label}: ${num(part.perSecond)}/s, ${pct(part.share)}: ${ACTIONS[/** @type {keyof typeof ACTIONS} */ (part.id)] ?? "see below"}.`);
  }
  L.push("");
  const replica = p.resources.find((r) => r.id === "d1Replica");
  if (replica) {
    const top = replica.parts[0];
    const fills = top ? ` The busiest is ${pct(top.share)} ${top.label}: ${ACTIONS[/** @type {keyof typeof ACTIONS} */ (top.id)] ?? "see above"}.` : "";
    L.push(
      `**Replicas** (one per D1 region, reads go to the nearest): each assumed to do ${num(replica.limit)} queries/s, as the primary, the busiest taking ${pct(w.d1BusiestReplicaShare)} of replica reads: they add reads region by region, not without bound.${fills}`,
      "",
    );
  }
  L.push(
    `**Floods** (not in the totals): guessed session ids cost at most ${CODE.maxFailuresPerMinute} D1 lookups per client, isolate and minute, bursts included (past that, KV copies only): ${num(p.guessFloodPerClient)}/s for one client on all ${grouped(w.isolates)} isolates.`,
    "",
  );

  const k = p.kvPerKey;
  L.push(
    `**KV writes per key** (limit: one a second): \`prefs:<user>\` ${num(k.prefsPerUser)}/s per active user, \`session:<hash>\` ${num(k.sessionPerSession)}/s per session, \`config:app\` ${num(k.configPerSecond)}/s.`,
    "",
  );

  const s = p.sizes;
  L.push("### Size", "");
  L.push("| what | at the workload | limit | verdict |", "|---|--:|--:|---|");
  const tooBig = s.d1SteadyFullAt <= 1;
  const full = tooBig ? `does not fit: ${times(1 / s.d1SteadyFullAt)} the limit` : Number.isFinite(s.d1DaysToFull) ? `full after ${grouped(Math.floor(s.d1DaysToFull))} days` : "never full";
  const steadyFull = !tooBig && Number.isFinite(s.d1SteadyFullAt) ? `; the steady state alone at ${times(s.d1SteadyFullAt)}` : "";
  const g = s.d1Growth;
  const growing = /** @type {[string, number][]} */ ([["config history", g.configHistory], ["sessions", g.sessions], ["revocations", g.revocations]]).filter(([, b]) => b > 0);
  const parts = growing.length === 1 && g.configHistory > 0 ? "config history, never pruned" : growing.map(([what, b]) => `${what} ${pct(b / s.d1GrowthBytesPerDay)}`).join(", ");
  const perDay = growing.length ? `, + ${gb(s.d1GrowthBytesPerDay)}/day (${parts})` : "";
  const days = (retentionSeconds(w) + 86_400) / 86_400;
  L.push(
    `| D1 database | ${gb(s.d1SteadyBytes)} steady (sessions ${pct(s.d1Steady.sessions / s.d1SteadyBytes)}: ${big(s.d1SessionRows)} rows, the logins of ${num(days)} days)${perDay} | ${gb(LIMITS.d1DatabaseBytes)} | ${full}${steadyFull} |`,
  );
  L.push(`| \`config:app\` | ${grouped(s.configBytes)} bytes (${grouped(w.flags)} flags × ${w.flagBytes}) | ${grouped(CODE.maxConfigBytes)} bytes (edgestate's \`MAX_CONFIG_BYTES\`) | ${s.configFits ? "fits" : `does not fit: about ${grouped(s.flagsThatFit)} flags do`} |`, "");
  const hk = p.housekeeping;
  const e = hk.expiringPerHour;
  L.push(
    `**Housekeeping ${hk.keepsUp ? "keeps up" : "does not keep up"}**: ${count(hk.isolates, "isolate", "isolates")} × ${CODE.pruneBatch} an hour = ${grouped(hk.prunedPerHour)} sessions and as many revocations an hour; ` +
      `${grouped(e.sessions)} sessions and ${grouped(e.revocations)} revocations expire an hour${hk.keepsUp ? ` (${times(hk.headroom)} headroom)` : `: the rest piles up (the D1 row above)`}.`,
    "",
  );
  L.push(
    "- D1 size, then: write config less often, or trim `config_history` by hand; a shorter `sessionIdleSeconds` keeps fewer sessions; past 10 GB, shard.",
    "- `config:app`, then: fewer or shorter flags; past that, a code change (a history row's change and document stay under D1's 2 MB row limit).",
    "",
  );

  // The included amounts and prices are in the page's table of sources (and `--json`).
  L.push("### Monthly cost (Workers Paid, beyond the included amounts)", "");
  L.push("| kind | per month | cost |", "|---|--:|--:|");
  for (const c of p.costs) L.push(`| ${c.kind} | ${big(c.perMonth)} ${c.unit} | ${usd(c.cost)} |`);
  L.push(`| **total** | | **${usd(p.totalCost)}** (and the $5 subscription) |`, "");
  const all = p.costByFlow.reduce((a, f) => a + f.cost, 0);
  const top = p.costByFlow[0];
  L.push(
    `Storage work costs most in ${p.costByFlow.slice(0, 4).map((f) => `${f.label} (${pct(f.cost / all)})`).join(", ")}. ` +
      `For the ${top.label}, a user can: ${ACTIONS[/** @type {keyof typeof ACTIONS} */ (top.id)] ?? "see the sources above"}.`,
    "",
  );

  const measured = [];
  if (p.measured.routes.length) measured.push(`the request paths marked bench`);
  if (p.measured.sessionsScale) measured.push(`the revocation feed (${p.measured.sessionsScale.runs.map((/** @type {any} */ r) => `${num(r.feedPerSecond)} statements/s at ${grouped(r.sessions)} sessions`).join(", ")}, one isolate, its housekeeping apart)`);
  if (p.measured.strictLeases) measured.push(`strict leases (${num(p.measured.strictLeases.perClientSecond)} per second for one client at ${num(p.measured.strictLeases.requestsPerSecond)} requests/s)`);
  if (p.measured.missingPerId !== null) measured.push(`${count(p.measured.missingPerId, "D1 query", "D1 queries")} for ${grouped(p.measured.missingReads ?? 0)} reads of one missing profile`);
  if (p.measured.badTokenRatio !== null) measured.push(`${count(p.measured.badTokenRatio, "D1 query", "D1 queries")} per bad token`);
  if (p.measured.badTokenBurst) measured.push(`${count(p.measured.badTokenBurst.d1Lookups, "D1 lookup", "D1 lookups")} for a concurrent burst of ${grouped(p.measured.badTokenBurst.requests)} unknown ids from one client`);
  if (p.measured.anonymousStrict) measured.push(`an anonymous flood of a strict group (${count(p.measured.anonymousStrict.d1Queries, "D1 query", "D1 queries")} for ${grouped(p.measured.anonymousStrict.requests)} requests)`);
  const assumed = [];
  if (!p.measured.sessionsScale) assumed.push("one feed statement per isolate per 5 s");
  if (!p.measured.strictLeases) assumed.push("one strict lease per client-second");
  if (p.measured.missingPerId === null) assumed.push("one D1 read per missing profile");
  if (p.measured.badTokenRatio === null) assumed.push("one D1 read per bad token");
  L.push(`**Measured** by \`npm run bench\`: ${measured.join("; ") || "nothing"}. **Assumed** from the code: the rows marked code${assumed.length ? `, and ${assumed.join(", ")}` : ""}; the workload's estimates do the rest.`);
  return L.join("\n");
}

// ---------------------------------------------------------------------------------------
// Command line

const START = "<!-- capacity:start -->";
const END = "<!-- capacity:end -->";

/** @param {string} doc @param {string} block */
function replaceBlock(doc, block) {
  const i = doc.indexOf(START);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) throw new Error(`docs/capacity.md has no ${START} … ${END} block`);
  return `${doc.slice(0, i + START.length)}\n${block}\n${doc.slice(j)}`;
}

function main() {
  const args = process.argv.slice(2);
  /** @param {string} name */
  const option = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
    return v;
  };
  const valued = ["--workload", "--results", "--scale", "--doc"];
  const known = new Set([...valued, "--json", "--write", "--check"]);
  for (const [i, a] of args.entries()) {
    if (a.startsWith("--") && !known.has(a)) throw new Error(`unknown option ${a}`);
    if (!a.startsWith("--") && !valued.includes(args[i - 1])) throw new Error(`unexpected argument ${a}`);
  }
  const base = JSON.parse(readFileSync(at("bench/workload.json"), "utf8"));
  const given = option("--workload");
  const mine = given ? JSON.parse(readFileSync(given, "utf8")) : null;
  // A mix given replaces the committed one whole (its shares must sum to 1 by themselves).
  const raw = mine ? { ...merge(base, mine), ...(mine.mix ? { mix: mine.mix } : {}) } : base;
  const results = JSON.parse(readFileSync(option("--results") ?? at("bench/results.json"), "utf8"));
  const scale = Number(option("--scale") ?? 1);
  if (!(scale > 0)) throw new Error("--scale must be a positive number");
  const model = project(workloadOf(raw), results, scale);
  if (args.includes("--json")) {
    process.stdout.write(`${JSON.stringify(model, null, 2)}\n`);
    return 0;
  }
  const block = render(model);
  const docPath = option("--doc") ?? at("docs/capacity.md");
  if (args.includes("--check")) {
    const doc = readFileSync(docPath, "utf8");
    if (replaceBlock(doc, block) !== doc) {
      console.error("docs/capacity.md's generated block is out of date: run `npm run capacity -- --write`");
      return 1;
    }
    console.log("docs/capacity.md is up to date");
    return 0;
  }
  if (args.includes("--write")) {
    writeFileSync(docPath, replaceBlock(readFileSync(docPath, "utf8"), block));
    console.log("rewrote docs/capacity.md's generated block");
  }
  process.stdout.write(`${block}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    process.exitCode = main();
  } catch (e) {
    console.error(`capacity: ${e instanceof Error ? e.message : e}`);
    process.exitCode = 2;
  }
}

/**
 * How long an unused session's row lives before housekeeping may delete it: its idle
 * lifetime, never past its absolute one.
 * @param {{ sessionIdleSeconds: number, sessionAbsoluteSeconds: number }} w
 */
function retentionSeconds(w) {
  return Math.min(w.sessionIdleSeconds, w.sessionAbsoluteSeconds);
}
