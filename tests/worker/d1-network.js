// @ts-check
// D1 across locations, simulated in workerd for the location tests (locations.js): one
// primary database in location `a` and a read replica in every other location, as D1 read
// replication runs them. This file is the network; d1-location.js is the `DB` binding each
// location's Worker sees.
//
// Local D1 (Miniflare) is one database with no distance and no replicas. This module puts a
// stand-in with D1's binding API (prepare/bind/all/first/run/raw, batch, withSession,
// getBookmark) in front of the Worker's `DB`, backed by two real local D1 databases (the
// primary and one replica), and models what the Worker must get right at the edge:
//
// - Distance: a statement served by the primary for a location other than the primary's
//   waits `rttMs` (half before, half after it runs), as a round trip to a distant primary.
//   The replica is local to every location: no wait.
// - Replication lag: every write is applied to the primary at once and logged; the replica
//   applies the logged writes (the same statements, in commit order, each batch as one)
//   `lagMs` after they committed. Replication is applied lazily, before each replica read.
// - Sessions and bookmarks (D1's sequential consistency): a bookmark is the number of
//   writes the serving database had applied. A session's reads go to the replica when it
//   has applied the session's bookmark (`first-unconstrained` asks for nothing at first),
//   else to the primary; `first-primary` and writes always go to the primary. Every answer
//   moves the session's bookmark to what served it.
// - `meta.served_by_primary` says where each statement ran, as D1 reports it.
// - Every statement is recorded ({location, target, write, sql}) for the tests to count
//   calls to the distant primary.
//
// Not modelled: several replicas per location, a replica that is briefly unreachable, D1's
// own outages (the security suite boots the Worker without a binding for those), and the
// time a statement takes to run.
import { DurableObject } from "cloudflare:workers";

/** @typedef {{ sql: string, args: unknown[] }} Statement */
/** @typedef {{ constraint?: string, bookmark?: number }} Session */

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/** Whether a statement writes: anything but a `SELECT` (every query the Worker makes). */
export function isWrite(/** @type {string} */ sql) {
  return !/^\s*SELECT\b/i.test(sql);
}

export class D1Network extends DurableObject {
  /** @param {DurableObjectState} ctx @param {any} env */
  constructor(ctx, env) {
    super(ctx, env);
    this.primaryAt = String(env.PRIMARY_LOCATION ?? "a");
    this.lagMs = Number(env.REPLICA_LAG_MS ?? 0);
    this.rttMs = Number(env.PRIMARY_RTT_MS ?? 0);
    /** @type {{ seq: number, at: number, statements: Statement[] }[]} */
    this.log = [];
    this.seq = 0;
    this.applied = 0;
    /** @type {{ location: string, target: string, write: boolean, sql: string, at: number }[]} */
    this.calls = [];
    this.queue = Promise.resolve();
  }

  /** Runs `fn` after every operation already queued: one database operation at a time. */
  serial(/** @type {() => Promise<any>} */ fn) {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Applies to the replica the logged writes that are `lagMs` old. */
  async replicate(/** @type {number} */ now) {
    const due = this.log.filter((w) => w.seq > this.applied && w.at <= now - this.lagMs);
    for (const w of due) {
      const db = this.env.D1_REPLICA;
      await db.batch(w.statements.map((s) => db.prepare(s.sql).bind(...s.args)));
      this.applied = w.seq;
    }
  }

  /**
   * Runs `statements` (one, or a batch) for the Worker at `location` in `session`: where D1
   * would serve them, with the distance and lag modelled. Answers D1's result objects (one
   * per statement) and the session's new bookmark.
   * @param {string} location @param {Session} session @param {Statement[]} statements
   */
  async run(location, session, statements) {
    const write = statements.some((s) => isWrite(s.sql));
    const here = location === this.primaryAt;
    const now = Date.now();
    let target = "primary";
    if (!write && !here && session.constraint !== "first-primary") {
      await this.serial(() => this.replicate(now));
      if (this.applied >= (session.bookmark ?? 0)) target = "replica";
    }
    const far = target === "primary" && !here;
    if (far) await sleep(this.rttMs / 2);
    const results = await this.serial(async () => {
      const db = target === "primary" ? this.env.D1_PRIMARY : this.env.D1_REPLICA;
      const prepared = statements.map((s) => db.prepare(s.sql).bind(...s.args));
      const out = statements.length === 1 ? [await prepared[0].all()] : await db.batch(prepared);
      if (write) {
        this.seq += 1;
        this.log.push({ seq: this.seq, at: Date.now(), statements });
      }
      return out;
    });
    if (far) await sleep(this.rttMs / 2);
    for (const s of statements) this.calls.push({ location, target, write, sql: s.sql, at: now });
    const served = target === "primary" ? this.seq : this.applied;
    const bookmark = Math.max(served, session.bookmark ?? 0);
    // Statements run in the primary's location never wait, wherever they are served.
    for (const r of results) {
      r.meta = { ...r.meta, served_by_primary: target === "primary", served_by_region: target === "primary" ? this.primaryAt : location };
    }
    return { results, bookmark };
  }

  /** HTTP control for the tests: the calls made, and the lag and distance. */
  async fetch(/** @type {Request} */ request) {
    const url = new URL(request.url);
    if (url.pathname === "/calls") {
      const location = url.searchParams.get("location");
      return Response.json(this.calls.filter((c) => !location || c.location === location));
    }
    if (url.pathname === "/replica" && request.method === "PUT") {
      const { lagMs, rttMs } = await request.json();
      if (lagMs !== undefined) this.lagMs = lagMs;
      if (rttMs !== undefined) this.rttMs = rttMs;
      return Response.json({ lagMs: this.lagMs, rttMs: this.rttMs });
    }
    if (url.pathname === "/state") {
      return Response.json({ seq: this.seq, applied: this.applied, lagMs: this.lagMs, rttMs: this.rttMs });
    }
    return new Response("not found", { status: 404 });
  }
}

export default {
  /** @param {Request} request @param {any} env */
  fetch(request, env) {
    return env.D1NET.get(env.D1NET.idFromName("d1")).fetch(request);
  },
};
