// D1 at scale, for `npm run bench` (bench/run.mjs): every D1 statement the Worker runs,
// background (`waitUntil`) work included, counted by a wrapper of its `DB` binding
// (tests/worker/counted.js and d1-counter.js: the scenarios tests/worker/scale.test.js
// asserts, with the same budgets, bench/budgets.json).
//
// - sessionsScale: 60, then 600 sessions, each used once a second (GET /sessions/current,
//   spread evenly over the second, one isolate) for `seconds`: D1 statements per check and
//   per second, the revocation feed's (one statement per read after the isolate's first)
//   apart from the isolate's hourly housekeeping (one batch of two deletions, on its first
//   background feed read: in the first run).
// - floods: anonymous requests from 60 addresses to a strict group, 30 reads of a missing
//   user (one after another, and all at once), 50 unknown session ids from one client (then
//   its own valid session), 90 at once from another, five addresses of one /64 against a
//   limit of 5 (both tiers).
// - strictLeases: one client at 50 requests a second for `leaseSeconds` to a strict group:
//   D1 writes (leases) per second.
//
// Each part boots its own counted Worker on `port` (127.0.0.1), one after another.
import { join } from "node:path";
import { unknownSessionId } from "../tests/app.js";
import { roomInWindow } from "../tests/helpers.js";
import {
  anonymousFlood,
  bootCounted,
  mintSessions,
  missingUserReads,
  oneSlash64,
  since,
  strictLeases,
  unknownSessions,
  useSessions,
} from "../tests/worker/counted.js";
import { ROOT, log, round } from "./common.mjs";
import { BUDGETS } from "./routes.mjs";

const SCALE = BUDGETS["sessions at scale"];
const FLOODS = BUDGETS.floods;
const LEASES = BUDGETS["strict leases"];
const HIGH = { featureFlags: { newCheckout: true }, rateLimits: { default: 1_000_000 } };
/**
 * Housekeeping statements a sessions run may hold besides the feed's: one batch of two
 * deletions (src/domain/sessions/housekeeping.rs, at most once an hour per isolate), as
 * tests/worker/scale.test.js allows.
 */
const HOUSEKEEPING_STATEMENTS = 2;

/** Boots a counted Worker, runs `fn` with it, disposes of it. */
async function withApp(options, fn) {
  const app = await bootCounted({ seedConfig: HIGH, scriptPath: join(ROOT, "build/index.js"), ...options });
  try {
    // Warm-up: the isolate's first request starts its background self-check (D1's schema).
    await app.getConfig();
    await app.counts();
    return await fn(app);
  } finally {
    await app.dispose();
  }
}

/**
 * A run of useSessions as results.json reports it: every statement (d1Queries, d1PerCheck,
 * d1PerSecond), and apart, the revocation feed's (feedStatements in feedReads round trips,
 * feedPerSecond) and housekeeping's (at most one batch in a run; bench/capacity.mjs models it
 * per isolate and hour, not from these seconds).
 */
export function sessionsFigures(run) {
  const seconds = run.elapsedMs / 1000;
  const { feed, feedReads, housekeeping } = run.d1.kinds;
  return {
    sessions: run.sessions,
    seconds: run.rounds,
    elapsedSeconds: round(seconds, 2),
    checks: run.checks,
    d1Queries: run.d1.statements,
    d1PerCheck: round(run.d1.statements / run.checks, 5),
    d1PerSecond: round(run.d1.statements / seconds, 3),
    feedReads,
    feedStatements: feed,
    feedPerSecond: round(feed / seconds, 3),
    housekeeping,
    other: run.d1.statements - feed - housekeeping,
    statuses: run.statuses,
    statements: run.d1.bySql,
  };
}

/**
 * The budget checks of the scale test (tests/worker/scale.test.js), as figures: the first
 * run (`sessions`) and the tenfold one against bench/budgets.json. In each run, every
 * statement is a feed read or housekeeping (at most one batch), and the feed is read at most
 * once per refresh interval of the elapsed time, plus one. Per check: every statement,
 * housekeeping included, as the test counts. Tenfold: the feed's statements of both runs
 * compared (housekeeping falls in whichever run the isolate's hour starts, so it is held to
 * its own bound instead).
 */
export function sessionsVerdict(small, large) {
  const refresh = SCALE.feedRefreshSeconds;
  const feedOrHousekeeping = (r) =>
    r.other === 0 &&
    r.housekeeping <= HOUSEKEEPING_STATEMENTS &&
    r.feedStatements <= r.feedReads * SCALE.feedReadStatements &&
    r.feedReads <= 1 + Math.floor(r.elapsedSeconds / refresh);
  const perUse = small.d1Queries / (small.sessions * Math.max(small.seconds, small.elapsedSeconds));
  const overran = Math.ceil(Math.max(0, large.elapsedSeconds - small.elapsedSeconds) / refresh);
  const allowance = (SCALE.extraFeedReads + overran) * SCALE.feedReadStatements;
  return {
    perCheckWithinBudget: feedOrHousekeeping(small) && perUse <= SCALE.d1PerCheck,
    tenfoldWithinBudget: feedOrHousekeeping(large) && large.feedStatements <= small.feedStatements + allowance && large.d1PerCheck <= SCALE.d1PerCheck,
    tenfoldAllowance: allowance,
    housekeepingAllowed: HOUSEKEEPING_STATEMENTS,
  };
}

async function measureSessionsScale({ port, seconds }) {
  return withApp({ port }, async (app) => {
    log(`D1 at scale: minting ${SCALE.sessions} + ${SCALE.tenfold} sessions`);
    const small = await mintSessions(app, SCALE.sessions);
    const large = await mintSessions(app, SCALE.tenfold);
    // The isolate's first read of the feed (a new reader's batch of two), not counted; its
    // first background read, in the first run, also runs the hour's housekeeping.
    await app.getCurrentSession(small[0]);
    const check = async (id) => (await app.getCurrentSession(id, { keepAlive: true })).status;
    const runs = [];
    for (const ids of [small, large]) {
      const run = sessionsFigures(await useSessions({ ids, rounds: seconds, check, counts: () => app.counts() }));
      log(
        `D1 at scale: ${run.sessions} sessions × ${run.seconds} s (${run.elapsedSeconds} s elapsed): ${run.checks} checks, ` +
          `${run.d1Queries} D1 statements (${run.feedStatements} in ${run.feedReads} feed reads, ${run.housekeeping} housekeeping): ` +
          `${run.d1PerCheck} per check, ${run.d1PerSecond} per second (the feed ${run.feedPerSecond})`,
      );
      runs.push(run);
    }
    return { budget: { d1PerCheck: SCALE.d1PerCheck }, runs, ...sessionsVerdict(runs[0], runs[1]) };
  });
}

async function measureFloods({ port }) {
  return withApp({ port }, async (app) => {
    const out = {};
    const anonymous = await anonymousFlood(app, FLOODS["anonymous to a strict group"].requests);
    out.anonymousToStrictGroup = {
      requests: anonymous.requests,
      addresses: anonymous.addresses,
      statuses: anonymous.statuses,
      d1Queries: anonymous.d1.statements,
      budget: FLOODS["anonymous to a strict group"].d1Queries,
    };
    const missing = await missingUserReads(app, FLOODS["missing user"].requests);
    const together = await missingUserReads(app, FLOODS["missing user"].requests, { concurrent: true });
    out.missingUser = {
      requests: missing.requests,
      statuses: missing.statuses,
      d1Queries: missing.d1.statements,
      d1QueriesAllAtOnce: together.d1.statements,
      budget: FLOODS["missing user"].d1Queries,
    };
    await roomInWindow(60, 15_000); // the failures are counted per minute
    const unknown = await unknownSessions(app, FLOODS["unknown session ids"].requests);
    const refusedFrom = unknown.each.findIndex((r) => r.status === 429);
    const cut = refusedFrom < 0 ? unknown.each.length : refusedFrom;
    out.unknownSessionIds = {
      requests: unknown.requests,
      refusedFrom: refusedFrom < 0 ? null : refusedFrom + 1,
      d1QueriesBeforeRefusal: unknown.each.slice(0, cut).reduce((a, r) => a + r.d1, 0),
      d1QueriesAfterRefusal: unknown.each.slice(cut).reduce((a, r) => a + r.d1, 0),
      statuses: unknown.each.reduce((t, r) => ((t[r.status] = (t[r.status] ?? 0) + 1), t), {}),
      budget: FLOODS["unknown session ids"],
    };
    // The throttled client's own valid session (a KV copy): still served, not looked up in D1.
    const [valid] = await mintSessions(app, 1);
    const beforeValid = await app.counts();
    const mine = await app.getCurrentSession(valid, { client: unknown.client });
    out.unknownSessionIds.throttledClientValidSession = { status: mine.status, d1SessionStatements: since(beforeValid, await app.counts()).kinds.sessions };
    // A concurrent burst from another client: lookups count as they start, so D1 sees at most
    // the allowance.
    const limit = FLOODS["unknown session ids"].failuresPerMinute;
    await roomInWindow(60, 15_000);
    const burstClient = app.newClient();
    const beforeBurst = await app.counts();
    const burst = await Promise.all(Array.from({ length: 3 * limit }, () => app.getCurrentSession(unknownSessionId(), { client: burstClient })));
    const burstD1 = since(beforeBurst, await app.counts());
    out.unknownSessionIdsAtOnce = {
      requests: burst.length,
      statuses: burst.reduce((t, r) => ((t[r.status] = (t[r.status] ?? 0) + 1), t), {}),
      d1Lookups: burstD1.kinds.sessions,
      d1Queries: burstD1.statements,
      budget: limit,
    };
    out.oneSlash64 = [];
    for (const strict of [false, true]) {
      await roomInWindow(60, 10_000); // one rate-limit window
      const r = await oneSlash64(app, { strict, net: strict ? 2 : 1 });
      out.oneSlash64.push({
        tier: r.tier,
        limit: r.limit,
        addresses: r.addresses,
        first: r.first,
        again: r.again,
        otherNetwork: r.otherNetwork,
        shared: r.first.every((s) => s === 200) && r.again.every((s) => s === 429) && r.otherNetwork === 200,
        d1Queries: r.d1.statements,
        d1Leases: r.d1.kinds.leases,
        d1Prunes: r.d1.kinds.prunes,
      });
    }
    const u = out.unknownSessionIds;
    log(
      `floods: ${anonymous.requests} anonymous to a strict group ${out.anonymousToStrictGroup.d1Queries} D1 statements; ` +
        `${missing.requests} reads of a missing user ${missing.d1.statements} (all at once: ${together.d1.statements}); ` +
        `${u.requests} unknown session ids: ${u.d1QueriesBeforeRefusal} before the first 429 (request ${u.refusedFrom}), ${u.d1QueriesAfterRefusal} after ` +
        `(its own session: ${u.throttledClientValidSession.status}, ${u.throttledClientValidSession.d1SessionStatements} lookups); ` +
        `${out.unknownSessionIdsAtOnce.requests} at once: ${out.unknownSessionIdsAtOnce.d1Lookups} D1 lookups; ` +
        `one /64: ${out.oneSlash64.map((s) => `${s.tier} ${s.shared ? "shared" : "NOT shared"} (${s.d1Queries} D1)`).join(", ")}`,
    );
    return out;
  });
}

async function measureStrictLeases({ port, seconds }) {
  return withApp({ port }, async (app) => {
    const spacingMs = 1000 / LEASES.requestsPerSecond;
    const count = Math.round(seconds * LEASES.requestsPerSecond);
    await roomInWindow(86_400, seconds * 1000 + 60_000); // the run's window is a day
    const run = await strictLeases(app, { count, spacingMs });
    const elapsed = run.elapsedMs / 1000;
    const { leases, prunes } = run.d1.kinds;
    const firstSecond = run.leases.filter((l) => l.atMs < 1000).length;
    const after = Math.max(1, elapsed - 1);
    const out = {
      requestsPerSecond: round(count / elapsed, 1),
      targetRequestsPerSecond: LEASES.requestsPerSecond,
      seconds: round(elapsed, 2),
      requests: count,
      statuses: run.statuses,
      d1Writes: run.d1.writes,
      leases,
      prunes,
      d1WritesPerSecond: round(run.d1.writes / elapsed, 2),
      leasesInFirstSecond: firstSecond,
      leasesPerSecondAfterFirst: round((leases - firstSecond) / after, 2),
      leaseSizes: run.leases,
      budget: { firstSecondLeases: LEASES.firstSecondLeases, d1WritesPerSecond: LEASES.d1WritesPerSecond },
    };
    out.withinBudget = firstSecond <= LEASES.firstSecondLeases && leases - firstSecond <= LEASES.d1WritesPerSecond * Math.ceil(after);
    log(
      `strict leases: ${count} requests at ${out.requestsPerSecond}/s over ${out.seconds} s: ${leases} leases + ${prunes} prune = ` +
        `${out.d1WritesPerSecond} D1 writes/s (${firstSecond} leases in the first second, ${out.leasesPerSecondAfterFirst}/s after)`,
    );
    return out;
  });
}

/**
 * The D1 figures of `npm run bench`: {sessionsScale, floods, strictLeases}.
 * @param {{ port: number, seconds: number, leaseSeconds: number }} options
 */
export async function measureD1({ port, seconds, leaseSeconds }) {
  const sessionsScale = await measureSessionsScale({ port, seconds });
  const floods = await measureFloods({ port });
  const leases = await measureStrictLeases({ port, seconds: leaseSeconds });
  return { sessionsScale, floods, strictLeases: leases };
}
