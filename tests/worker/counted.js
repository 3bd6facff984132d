// @ts-check
// The built Worker with every D1 statement counted (d1-counter.js inside the isolate), for
// tests/worker/scale.test.js and the D1 figures of `npm run bench` (bench/run.mjs): how many
// statements a load costs in all, background (`waitUntil`) work included, which the
// `Server-Timing` header of each response cannot say.
//
// `countedModules(script)` is the Worker's module list with the counting entry in front
// (the entry and the counter are given to Miniflare as contents: nothing is written to disk).
// `bootCounted()` boots it as helpers.js `boot()` boots the Worker (local KV and D1, the
// schema applied, every exchange checked against docs/openapi.json) and adds the counter:
// `counts()` (once no statement and no `waitUntil` work is under way; `{settle: false}`: now),
// and `since(before, after)` is what happened between two counts. The load drivers, the
// scenarios and the classification of statements below are shared with the bench, so both
// count the same way.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { dirname, join } from "node:path";
import { TestApp, unknownSessionId } from "../app.js";
import { checkExchange } from "../contract.js";
import { ADMIN_TOKEN, COMPATIBILITY_DATE, ROOT, SCRIPT, checked, clientOver, migrationStatements, sleep, workerModules } from "../helpers.js";
import { COUNT_PATH } from "./d1-counter.js";

/** @typedef {import("./d1-counter.js").Counts} Counts */
/**
 * @typedef {object} Kinds The statements of a delta by what they do (see `kindOf`).
 * @property {number} feed Reads of the revocation feed (`SELECT … FROM revocations`).
 * @property {number} feedReads Round trips reading the feed (a new reader's is a batch of two).
 * @property {number} leases Strict rate-limit leases (`INSERT INTO rate_limits`).
 * @property {number} prunes Deletions of ended windows' counters (`DELETE FROM rate_limits`).
 * @property {number} housekeeping Deletions of expired sessions and settled revocations
 *   (`DELETE FROM sessions|revocations … LIMIT`: each isolate at most once an hour).
 * @property {number} usage Writes of when flags were last evaluated (`INSERT INTO
 *   flag_usage`: each isolate that evaluates flags at most once a minute, src/domain/usage.rs).
 * @property {number} sessions Statements on `sessions` (lookups, renewals, inserts).
 * @property {number} users Statements on `users`.
 * @property {number} other Everything else.
 */
/**
 * @typedef {Omit<Counts, "inFlight" | "background"> & { kinds: Kinds }} Delta
 *   What happened between two counts (`recent`: the statements sent meanwhile, as far as
 *   the counter kept them).
 */

export { COUNT_PATH };
const COUNTER = join(ROOT, "tests/worker/d1-counter.js");

/** The counting entry: the built Worker's handlers, wrapped (d1-counter.js). */
const ENTRY = `import edgestate from "./index.js";
import { counting } from "./d1-counter.mjs";
export default counting(edgestate);
`;

/**
 * The Worker's modules with the counting entry first (Miniflare boots the first module).
 * @param {string} [scriptPath] the built Worker (build/index.js or the tests' copy)
 * @returns {{ type: "CompiledWasm" | "ESModule", path: string, contents?: string }[]}
 */
export function countedModules(scriptPath = SCRIPT) {
  const dir = dirname(scriptPath);
  return [
    { type: "ESModule", path: join(dir, "d1-counter-entry.mjs"), contents: ENTRY },
    { type: "ESModule", path: join(dir, "d1-counter.mjs"), contents: readFileSync(COUNTER, "utf8") },
    ...workerModules(scriptPath),
  ];
}

/**
 * The first keyword of a statement and what it touches, as `Kinds` names them.
 * @param {string} sql (whitespace collapsed, as the counter keeps it)
 * @returns {keyof Kinds}
 */
export function kindOf(sql) {
  if (/^SELECT\b.*\bFROM revocations\b/i.test(sql)) return "feed";
  if (/^INSERT INTO rate_limits\b/i.test(sql)) return "leases";
  if (/^DELETE FROM rate_limits\b/i.test(sql)) return "prunes";
  if (/^DELETE FROM (sessions|revocations) WHERE \w+ IN \(SELECT\b.*\bLIMIT\b/i.test(sql)) return "housekeeping";
  if (/^INSERT INTO flag_usage\b/i.test(sql)) return "usage";
  if (/\b(FROM|INTO|UPDATE) sessions\b/i.test(sql)) return "sessions";
  if (/\b(FROM|INTO|UPDATE) users\b/i.test(sql)) return "users";
  return "other";
}

/**
 * What happened between the counts `before` and `after`.
 * @param {Counts} before @param {Counts} after
 * @returns {Delta}
 */
export function since(before, after) {
  /** @type {Record<string, number>} */
  const bySql = {};
  /** @type {Kinds} */
  const kinds = { feed: 0, feedReads: 0, leases: 0, prunes: 0, housekeeping: 0, usage: 0, sessions: 0, users: 0, other: 0 };
  for (const [sql, n] of Object.entries(after.bySql)) {
    const d = n - (before.bySql[sql] ?? 0);
    if (d <= 0) continue;
    bySql[sql] = d;
    kinds[kindOf(sql)] += d;
    // A read of the feed is one of its two row queries (a new reader's batch adds the head).
    if (kindOf(sql) === "feed" && !/\bMAX\(seq\)/i.test(sql)) kinds.feedReads += d;
  }
  const n = after.statements - before.statements;
  return {
    statements: n,
    reads: after.reads - before.reads,
    writes: after.writes - before.writes,
    calls: after.calls - before.calls,
    batches: after.batches - before.batches,
    bySql,
    kinds,
    recent: n > 0 ? after.recent.slice(-n) : [],
  };
}

/**
 * The counts from a counted Worker, through `fetchCounts` (its `GET /__d1-count`); once
 * `settle` is set, only when nothing is under way (no statement unanswered, no `waitUntil`
 * work unsettled): every statement the requests sent so far caused, background included.
 * Polls for at most `ms` (a condition, not a time: it throws if the work never settles).
 * @param {() => Promise<Counts>} fetchCounts
 * @param {{ settle?: boolean, ms?: number }} [options]
 * @returns {Promise<Counts>}
 */
export async function readCounts(fetchCounts, { settle = true, ms = 10_000 } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const c = await fetchCounts();
    if (!settle || (c.inFlight === 0 && c.background === 0)) return c;
    if (Date.now() > end) throw new Error(`D1 work still under way after ${ms} ms: ${c.inFlight} statements, ${c.background} waitUntil promises`);
    await sleep(20);
  }
}

/**
 * Sends `count` requests, the i-th `spacingMs` × i after the start (a steady rate), without
 * waiting for earlier answers (`sequential` false) or each no sooner than `spacingMs` after
 * the previous answer (`sequential` true: one request at a time, never faster than the rate,
 * so a slow machine sends fewer per second, never a burst to catch up). Resolves what
 * `send` resolved, in order.
 * @template T
 * @param {number} count @param {number} spacingMs
 * @param {(i: number) => Promise<T>} send
 * @param {{ sequential?: boolean }} [options]
 * @returns {Promise<T[]>}
 */
export async function paced(count, spacingMs, send, { sequential = false } = {}) {
  const start = Date.now();
  /** @type {Promise<T>[]} */
  const sent = [];
  let previous = start - spacingMs;
  for (let i = 0; i < count; i++) {
    const at = sequential ? previous + spacingMs : start + i * spacingMs;
    const wait = at - Date.now();
    if (wait > 0) await sleep(wait);
    if (sequential) {
      previous = Date.now();
      sent.push(Promise.resolve(await send(i)));
    } else {
      sent.push(send(i));
    }
  }
  return Promise.all(sent);
}

/**
 * @typedef {object} SessionsRun One run of `useSessions`.
 * @property {number} sessions
 * @property {number} rounds Rounds sent (each uses every session once).
 * @property {number} checks Requests answered (sessions × rounds).
 * @property {number} elapsedMs From the first request to the last answer, the work it caused
 *   settled.
 * @property {Record<string, number>} statuses
 * @property {Delta} d1 The D1 statements of the run, background work included.
 */

/**
 * Uses every session of `ids` once a second for `rounds` seconds, the requests of a round
 * spread evenly over its second (`check(id)` sends `GET /sessions/current`, resolving the
 * status), and counts every D1 statement that caused (`counts`: settled counts, as
 * `readCounts` gives them). A round that does not fit in its second (a slow machine) starts
 * the next late: rounds are never sent faster than one a second.
 * @param {{ ids: string[], rounds: number, check: (id: string) => Promise<number>, counts: () => Promise<Counts> }} options
 * @returns {Promise<SessionsRun>}
 */
export async function useSessions({ ids, rounds, check, counts }) {
  const before = await counts();
  const t0 = Date.now();
  /** @type {Record<string, number>} */
  const statuses = {};
  for (let r = 0; r < rounds; r++) {
    const roundStart = Date.now();
    const answered = await paced(ids.length, 1000 / ids.length, (i) => check(ids[i]));
    for (const s of answered) statuses[s] = (statuses[s] ?? 0) + 1;
    if (r < rounds - 1) await sleep(roundStart + 1000 - Date.now());
  }
  const after = await counts();
  const elapsedMs = Date.now() - t0;
  return { sessions: ids.length, rounds, checks: ids.length * rounds, elapsedMs, statuses, d1: since(before, after) };
}

/**
 * @typedef {TestApp & {
 *   counts: (options?: { settle?: boolean }) => Promise<Counts>,
 *   base: string,
 * }} CountedApp A TestApp over the counted Worker, with its counter (`counts()` settled
 *   unless asked otherwise) and its address (`base`).
 */

/**
 * Boots the built Worker with its D1 counted, as helpers.js `boot()` does (local KV and D1,
 * the schema applied, the admin token, `seedConfig` as config:app, every exchange checked
 * against docs/openapi.json), on a port of its own on 127.0.0.1 (`base`; `port`, or any free
 * one). `raw` (and `keepAlive` calls) send over kept-alive HTTP/1.1 connections, for the
 * thousands of requests of a scale run.
 * @param {{ seedConfig?: object, scriptPath?: string, port?: number }} [options]
 * @returns {Promise<CountedApp>}
 */
export async function bootCounted({ seedConfig, scriptPath = SCRIPT, port = 0 } = {}) {
  const mf = new Miniflare(
    convertV4MiniflareOptions(
      /** @type {any} */ ({
        modules: countedModules(scriptPath),
        compatibilityDate: COMPATIBILITY_DATE,
        kvNamespaces: ["CACHE"],
        d1Databases: ["DB"],
        bindings: { ADMIN_TOKEN },
        host: "127.0.0.1",
        port,
      }),
    ),
  );
  const url = await mf.ready;
  const base = url.origin;
  // (Binding types come from @cloudflare/workers-types, which is not installed: any.)
  /** @type {any} */
  const db = await mf.getD1Database("DB");
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  /** @type {any} */
  const kv = await mf.getKVNamespace("CACHE");
  if (seedConfig) await kv.put("config:app", JSON.stringify(seedConfig));
  /** @type {import("../helpers.js").Dispatch} */
  const dispatch = /** @type {any} */ (mf.dispatchFetch.bind(mf));
  const client = clientOver(checked(dispatch), { adminToken: ADMIN_TOKEN });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /** @type {import("../helpers.js").Booted["raw"]} */
  const raw = (method, path, headers = {}, body) => {
    /** @type {Record<string, string | number>} */
    const sent = { "CF-Connecting-IP": client.client, ...headers };
    if (body !== undefined) sent["Content-Length"] = Buffer.byteLength(body);
    const target = new URL(path, base);
    return new Promise((resolve, reject) => {
      const req = request(target, { method, agent, headers: sent }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          try {
            const status = /** @type {number} */ (res.statusCode);
            /** @param {string} name */
            const header = (name) => [res.headers[name.toLowerCase()]].flat()[0] ?? null;
            const asked = { headers: new Headers(Object.entries(sent).map(([k, v]) => /** @type {[string, string]} */ ([k, String(v)]))), body: body ?? null };
            checkExchange({ method, pathname: target.pathname, search: target.search, status, header, text, request: asked });
            resolve({ status, headers: res.headers, text });
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  };
  /** The counter's answer (not an operation of the API: not checked against the contract). */
  const fetchCounts = async () => /** @type {Counts} */ (await (await dispatch(`${base}${COUNT_PATH}`, {})).json());
  const app = new TestApp({
    ...client,
    mf,
    kv,
    db,
    raw,
    dispose: async () => {
      agent.destroy();
      await mf.dispose();
    },
  });
  return Object.assign(app, {
    base,
    /** @param {{ settle?: boolean }} [options] */
    counts: (options) => readCounts(fetchCounts, options),
  });
}

// ---------------------------------------------------------------------------------------------
// The scenarios the scale test asserts and the bench reports (each sets the config it needs)

/** The one flag the scenarios read (GET /flags/newCheckout). */
export const FLAG = "newCheckout";

/**
 * Replaces the whole config (PUT /admin/config), through this isolate: it applies at once.
 * @param {TestApp} app
 * @param {{ rateLimits?: Record<string, number>, strictRateLimits?: string[], rateLimitWindowSeconds?: number }} doc
 */
export async function setConfig(app, doc) {
  const r = await app.replaceConfig({ featureFlags: { [FLAG]: true }, rateLimitWindowSeconds: 60, strictRateLimits: [], ...doc });
  if (r.status !== 200) throw new Error(`setup: PUT /admin/config → ${r.status} ${r.text}`);
}

/**
 * Mints `n` sessions through POST /sessions, `concurrency` at a time; their ids.
 * @param {TestApp} app @param {number} n @param {number} [concurrency]
 */
export async function mintSessions(app, n, concurrency = 8) {
  /** @type {string[]} */
  const ids = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, () => app.mintSession()));
    ids.push(...batch.map((s) => s.id));
  }
  return ids;
}

/**
 * @typedef {object} Flood A burst of requests and what it cost in D1.
 * @property {number} requests
 * @property {Record<string, number>} statuses
 * @property {Delta} d1
 */

/** @param {number[]} statuses */
const tally = (statuses) => statuses.reduce((/** @type {Record<string, number>} */ t, s) => ((t[s] = (t[s] ?? 0) + 1), t), {});

/**
 * `n` anonymous GET /sessions/current (no credentials), each from its own address, all at
 * once, with `sessions` a strict group: refused by the access check (401) before the
 * limiter, whose lease would be a D1 write.
 * @param {CountedApp} app @param {number} n
 * @returns {Promise<Flood & { addresses: number }>}
 */
export async function anonymousFlood(app, n) {
  await setConfig(app, { rateLimits: { default: 1_000_000 }, strictRateLimits: ["sessions"] });
  const before = await app.counts();
  const addresses = Array.from({ length: n }, () => app.newClient());
  const answers = await Promise.all(addresses.map((client) => app.getCurrentSession(null, { client, keepAlive: true })));
  const d1 = since(before, await app.counts());
  return { requests: n, addresses: new Set(addresses).size, statuses: tally(answers.map((a) => a.status)), d1 };
}

/**
 * `n` GET /users/:id of one id no profile has, one after another (`concurrent`: all at
 * once, with another id): D1 is asked on the first; the isolate remembers the answer.
 * @param {CountedApp} app @param {number} n @param {{ concurrent?: boolean }} [options]
 * @returns {Promise<Flood>}
 */
export async function missingUserReads(app, n, { concurrent = false } = {}) {
  const id = app.uid("missing");
  const before = await app.counts();
  /** @type {number[]} */
  let statuses = [];
  if (concurrent) {
    statuses = (await Promise.all(Array.from({ length: n }, () => app.getUser(id, { keepAlive: true })))).map((a) => a.status);
  } else {
    for (let i = 0; i < n; i++) statuses.push((await app.getUser(id, { keepAlive: true })).status);
  }
  return { requests: n, statuses: tally(statuses), d1: since(before, await app.counts()) };
}

/**
 * `n` GET /sessions/current from one client, one after another, each with a well-formed
 * session id no one minted: each costs D1 a lookup (the id is not in KV) until the client
 * has used up its failed authentications, then is refused (429) without one. Each
 * request's own D1 statements, background included, and its Server-Timing.
 * Set-up: the requests fit in one failure window (a minute).
 * @param {CountedApp} app @param {number} n
 * @returns {Promise<{ requests: number, client: string, each: { status: number, d1: number, serverTiming: string | null }[], d1: Delta }>}
 */
export async function unknownSessions(app, n) {
  const client = app.newClient();
  const first = await app.counts();
  const each = [];
  let before = first;
  for (let i = 0; i < n; i++) {
    const r = await app.getCurrentSession(unknownSessionId(), { client, keepAlive: true });
    const after = await app.counts();
    each.push({ status: r.status, d1: after.statements - before.statements, serverTiming: r.res.headers.get("server-timing") });
    before = after;
  }
  return { requests: n, client, each, d1: since(first, before) };
}

/**
 * Five addresses of one IPv6 /64 against a group limited to 5 (`flags`, in the `strict` or
 * the approximate tier): one request from each is admitted, then a sixth from each of them,
 * and from a sixth address of the /64, is refused, while an address of another /64 is not.
 * `net` names the /64s' third and fourth groups (distinct per call, so calls do not share
 * counters). Set-up: the requests fit in one window (a minute).
 * @param {CountedApp} app @param {{ strict: boolean, net: number }} options
 */
export async function oneSlash64(app, { strict, net }) {
  await setConfig(app, { rateLimits: { default: 1_000_000, flags: 5 }, strictRateLimits: strict ? ["flags"] : [] });
  const prefix = `2001:db8:${net}:2::`;
  const five = [1, 2, 3, 4, 5].map((k) => `${prefix}${k}`);
  const before = await app.counts();
  /** @param {string} client */
  const flag = async (client) => (await app.getFlag(FLAG, {}, { client, keepAlive: true })).status;
  const first = [];
  for (const a of five) first.push(await flag(a));
  const again = [];
  for (const a of [...five, `${prefix}ffff`]) again.push(await flag(a));
  const otherNetwork = await flag(`2001:db8:${net}:3::1`);
  const d1 = since(before, await app.counts());
  return { tier: strict ? "strict" : "approximate", limit: 5, addresses: five, first, again, otherNetwork, d1 };
}

/**
 * One client at a steady rate to a strict group with a limit never reached (`flags`, in a
 * day-long window): `count` requests, one at a time, each no sooner than `spacingMs` after
 * the previous answer. The leases (`INSERT INTO rate_limits`) are the D1 writes; the
 * window's first lease also prunes ended windows' counters in the background.
 * Set-up: the requests fit in one window (a day).
 * @param {CountedApp} app @param {{ count: number, spacingMs: number }} options
 */
export async function strictLeases(app, { count, spacingMs }) {
  await setConfig(app, { rateLimits: { default: 1_000_000 }, strictRateLimits: ["flags"], rateLimitWindowSeconds: 86_400 });
  const client = app.newClient();
  const before = await app.counts();
  const t0 = Date.now();
  const statuses = await paced(count, spacingMs, async () => (await app.getFlag(FLAG, {}, { client, keepAlive: true })).status, { sequential: true });
  const elapsedMs = Date.now() - t0;
  const d1 = since(before, await app.counts());
  const leases = d1.recent.filter((s) => kindOf(s.sql) === "leases");
  return {
    requests: count,
    spacingMs,
    elapsedMs,
    statuses: tally(statuses),
    d1,
    // The size each lease asked for (its third argument), and when it was sent (ms after the start).
    leases: leases.map((s) => ({ wanted: Number(s.args[2]), atMs: s.at - t0 })),
  };
}
