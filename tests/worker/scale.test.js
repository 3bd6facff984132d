// @ts-check
// D1 at internet scale: every D1 statement the Worker runs, background (`waitUntil`) work
// included, counted by a wrapper of its `DB` binding (counted.js, d1-counter.js), against the
// budgets in bench/budgets.json that `npm run bench` reports too ("sessions at scale",
// "floods", "strict leases"). The scenarios are counted.js's, shared with the bench.
//
// Counts, never time. Where the Worker's own D1 work is set by time (the revocation feed is
// read at most once per refresh interval; a strict lease covers about a second of a client's
// requests), a bound grows with the elapsed time of the run: a slow machine can only make it
// looser, never fail it. Loads are paced (one use per session per second, one request per
// 20 ms); no sleep stands in for an assertion.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, roomInWindow } from "../helpers.js";
import { unknownSessionId } from "../app.js";
import { anonymousFlood, bootCounted, mintSessions, missingUserReads, oneSlash64, since, strictLeases, unknownSessions, useSessions } from "./counted.js";

/** @typedef {import("./counted.js").CountedApp} CountedApp */
/** @typedef {import("./counted.js").SessionsRun} SessionsRun */

const BUDGETS = JSON.parse(readFileSync(join(ROOT, "bench/budgets.json"), "utf8"));
const SCALE = BUDGETS["sessions at scale"];
const FLOODS = BUDGETS.floods;
const LEASES = BUDGETS["strict leases"];
const HIGH = { featureFlags: { newCheckout: true }, rateLimits: { default: 1_000_000 } };

describe("sessions at scale: D1 statements per session check (bench/budgets.json)", () => {
  /** @type {CountedApp} */
  let app;
  /** @type {string[]} */
  let small;
  /** @type {string[]} */
  let large;
  /** @type {SessionsRun | undefined} */
  let first;

  beforeAll(async () => {
    app = await bootCounted({ seedConfig: HIGH });
    small = await mintSessions(app, SCALE.sessions);
    large = await mintSessions(app, SCALE.tenfold);
    // The isolate's first read of the feed, outside the counted runs.
    expect((await app.getCurrentSession(small[0])).status).toBe(200);
  });
  afterAll(() => app?.dispose());

  /** @param {string} id */
  const check = async (id) => (await app.getCurrentSession(id, { keepAlive: true })).status;
  const settled = () => app.counts();
  const REFRESH_MS = SCALE.feedRefreshSeconds * 1000;

  /**
   * What holds for any run, whatever the machine's speed: the sessions (all with a KV copy)
   * cost no D1 statement at all; every statement is a read of the revocation feed, or the
   * isolate's hourly housekeeping (one batch of two deletions, at most once in these runs,
   * which take seconds); and the
   * feed is read at most once per refresh interval of the run's elapsed time, plus one
   * (reads start at least FEED_REFRESH_MS apart: a background read starts only once the
   * last is that old, a read before answering only once it is 10 s old).
   * @param {SessionsRun} run
   */
  function expectOnlyFeedReads(run) {
    expect(run.statuses).toEqual({ 200: run.checks });
    const { kinds, statements, bySql } = run.d1;
    expect(statements - kinds.feed - kinds.housekeeping, `statements besides the feed's: ${JSON.stringify(bySql)}`).toBe(0);
    expect(kinds.housekeeping, "one housekeeping batch at most").toBeLessThanOrEqual(2);
    expect(kinds.feed).toBeLessThanOrEqual(kinds.feedReads * SCALE.feedReadStatements);
    expect(kinds.feedReads, `feed reads in ${run.elapsedMs} ms`).toBeLessThanOrEqual(1 + Math.floor(run.elapsedMs / REFRESH_MS));
  }

  it(
    `${SCALE.sessions} sessions each used once a second for ${SCALE.rounds} s: no statement per session, at most ${SCALE.d1PerCheck} per check`,
    async () => {
      const run = await useSessions({ ids: small, rounds: SCALE.rounds, check, counts: settled });
      expectOnlyFeedReads(run);
      // Per check at the pace the budget names, one use per session per second: when the
      // machine keeps it, the checks; when it cannot (rounds that overrun their second), the
      // uses that pace would have made in the elapsed time, since the feed reads follow the
      // time and not the checks. With at most 1 + E/5 s reads of 2 statements over
      // 60 × max(10, E) uses, that is at most 0.01 for any elapsed time E: the bound fails
      // only if the Worker reads D1 more than its design says.
      const uses = run.sessions * Math.max(run.rounds, run.elapsedMs / 1000);
      expect(run.d1.statements / uses, JSON.stringify(run.d1.bySql)).toBeLessThanOrEqual(SCALE.d1PerCheck);
      first = run;
    },
    120_000,
  );

  it(
    `${SCALE.tenfold} sessions, the same rounds: no more statements than ${SCALE.sessions} sessions, but for the feed's timing`,
    async () => {
      expect(first, "the run with fewer sessions").toBeDefined();
      const small = /** @type {SessionsRun} */ (first);
      const run = await useSessions({ ids: large, rounds: SCALE.rounds, check, counts: settled });
      expectOnlyFeedReads(run);
      // Both runs' statements are feed reads, which follow the elapsed time: where they fall
      // in the refresh interval may give this run a few more over the same rounds (the
      // constant), and a run that took longer (600 requests a second on a slow machine) one
      // more per interval it overran by.
      const overran = Math.ceil(Math.max(0, run.elapsedMs - small.elapsedMs) / REFRESH_MS);
      const allowance = (SCALE.extraFeedReads + overran) * SCALE.feedReadStatements;
      expect(run.d1.statements, `${run.sessions} sessions over ${run.elapsedMs} ms, ${small.sessions} over ${small.elapsedMs} ms`).toBeLessThanOrEqual(
        small.d1.statements + allowance,
      );
      expect(run.d1.statements / run.checks).toBeLessThanOrEqual(SCALE.d1PerCheck);
    },
    120_000,
  );
});

/**
 * A counted app past its first request: that request starts the isolate's background
 * self-check (D1's schema), whose statements are read off here, before anything is measured.
 */
async function bootWarm() {
  const app = await bootCounted({ seedConfig: HIGH });
  expect((await app.getConfig()).status).toBe(200);
  await app.counts();
  return app;
}

describe("floods: what they cost D1 (bench/budgets.json)", () => {
  /** @type {CountedApp} */
  let app;
  beforeAll(async () => {
    app = await bootWarm();
  });
  afterAll(() => app?.dispose());

  it("anonymous requests from distinct addresses to a strict group: refused before the limiter, no lease", async () => {
    const budget = FLOODS["anonymous to a strict group"];
    const flood = await anonymousFlood(app, budget.requests);
    expect(flood.addresses).toBe(budget.requests);
    expect(flood.statuses).toEqual({ 401: budget.requests });
    expect(flood.d1.statements, JSON.stringify(flood.d1.bySql)).toBeLessThanOrEqual(budget.d1Queries);
    expect(flood.d1.kinds.leases, "access is checked before the rate limit").toBe(0);
  });

  it("reads of one user that does not exist: D1 is asked once, the isolate remembers", async () => {
    const budget = FLOODS["missing user"];
    const flood = await missingUserReads(app, budget.requests);
    expect(flood.statuses).toEqual({ 404: budget.requests });
    expect(flood.d1.statements, JSON.stringify(flood.d1.bySql)).toBeLessThanOrEqual(budget.d1Queries);
  });

  it("unknown session ids from one client: one D1 lookup each until its failures are used up, then 429 without D1", async () => {
    const budget = FLOODS["unknown session ids"];
    await roomInWindow(60, 15_000); // set-up: the failures are counted per minute
    const flood = await unknownSessions(app, budget.requests);
    const limit = budget.failuresPerMinute;
    const before = flood.each.slice(0, limit);
    const after = flood.each.slice(limit);
    expect(before.map((r) => r.status)).toEqual(before.map(() => 401));
    expect(before.map((r) => r.d1), "D1 statements of each refused lookup").toEqual(before.map(() => budget.d1QueriesEach));
    expect(after.map((r) => r.status), `the ${limit + 1}st and later`).toEqual(after.map(() => 429));
    expect(after.map((r) => r.d1), "D1 statements of each 429").toEqual(after.map(() => 0));
    for (const r of after) expect(r.serverTiming).toMatch(/, d1;desc="queries=0";dur=[\d.]+, d1-primary;desc="queries=0";/);
    expect(flood.d1.kinds.sessions).toBe(limit);
    expect(flood.d1.statements).toBe(limit);
    // The throttled client's own valid session (its KV copy) is still served, with no D1
    // statement on sessions (the isolate may read its feed, and the strict group leases).
    const [valid] = await mintSessions(app, 1);
    const before2 = await app.counts();
    const mine = await app.getCurrentSession(valid, { client: flood.client });
    expect(mine.status, "a valid session from a throttled client").toBe(200);
    const cost = since(before2, await app.counts());
    expect(cost.kinds.sessions, JSON.stringify(cost.bySql)).toBe(0);
  });

  it("a concurrent burst of unknown session ids from one client: counted as they arrive, so D1 sees at most the allowance", async () => {
    const budget = FLOODS["unknown session ids"];
    await roomInWindow(60, 15_000); // set-up: the failures are counted per minute
    const client = app.newClient();
    const before = await app.counts();
    const burst = 3 * budget.failuresPerMinute;
    const answers = await Promise.all(
      Array.from({ length: burst }, () => app.getCurrentSession(unknownSessionId(), { client })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBe(budget.failuresPerMinute);
    expect(statuses.filter((s) => s === 429).length).toBe(burst - budget.failuresPerMinute);
    expect(since(before, await app.counts()).kinds.sessions).toBeLessThanOrEqual(budget.failuresPerMinute);
  });

  for (const strict of [false, true]) {
    it(`five addresses of one /64 share one limit (${strict ? "strict" : "approximate"} tier); another /64 is not limited by them`, async () => {
      const budget = FLOODS["one /64"];
      await roomInWindow(60, 10_000); // set-up: one rate-limit window
      const r = await oneSlash64(app, { strict, net: strict ? 2 : 1 });
      expect(r.addresses).toHaveLength(budget.addresses);
      expect(r.limit).toBe(budget.limit);
      expect(r.first, "one request from each address").toEqual(r.first.map(() => 200));
      expect(r.again, "a sixth request, from any of them or another address of the /64").toEqual(r.again.map(() => 429));
      expect(r.otherNetwork, "an address of another /64").toBe(200);
      // Besides the flag-usage write (at most one a minute per isolate: src/domain/usage.rs).
      if (!strict) expect(r.d1.statements - r.d1.kinds.usage).toBe(0);
      expect(r.d1.kinds.usage, "at most one flag-usage write a minute").toBeLessThanOrEqual(1);
    });
  }
});

describe("strict leases: D1 writes of a steady client (bench/budgets.json)", () => {
  /** @type {CountedApp} */
  let app;
  beforeAll(async () => {
    app = await bootWarm();
  });
  afterAll(() => app?.dispose());

  it(`${LEASES.requests} requests at ${LEASES.requestsPerSecond}/s: about one lease a second after the first`, async () => {
    await roomInWindow(86_400, 60_000); // set-up: the run's window is a day (see strictLeases)
    const spacingMs = 1000 / LEASES.requestsPerSecond;
    const run = await strictLeases(app, { count: LEASES.requests, spacingMs });
    expect(run.statuses).toEqual({ 200: LEASES.requests });
    const { kinds, statements, bySql } = run.d1;
    expect(statements - kinds.leases - kinds.prunes - kinds.usage, JSON.stringify(bySql)).toBe(0);
    expect(kinds.usage, "at most one flag-usage write a minute per isolate").toBeLessThanOrEqual(1);
    expect(kinds.prunes, "the window's first lease prunes ended windows, once").toBeLessThanOrEqual(1);
    // Leases double while they follow each other within a second, so the first second takes
    // at most firstSecondLeases (1 + 2 + 4 + … + 32 covers its 50 requests); after it, each
    // lease asks for at least the client's requests of the last second here, which last it
    // about a second (about 9 leases in all at 20 ms, 3 after the first second). The requests
    // go one at a time, never faster than the rate: a slower machine sends fewer a second,
    // so its leases are smaller and come no faster than about one a second, but its run
    // lasts longer; the bound counts the seconds the run took, so it holds at any speed.
    const seconds = Math.max(1, Math.ceil((run.elapsedMs - 1000) / 1000));
    const bound = LEASES.firstSecondLeases + LEASES.d1WritesPerSecond * seconds;
    expect(kinds.leases, `leases over ${run.elapsedMs} ms: ${JSON.stringify(run.leases)}`).toBeLessThanOrEqual(bound);
    const firstSecond = run.leases.filter((l) => l.atMs < 1000).length;
    expect(firstSecond, JSON.stringify(run.leases)).toBeLessThanOrEqual(LEASES.firstSecondLeases);
    expect(kinds.leases - firstSecond, `leases after the first second, over ${run.elapsedMs} ms`).toBeLessThanOrEqual(LEASES.d1WritesPerSecond * seconds);
  }, 150_000);
});
