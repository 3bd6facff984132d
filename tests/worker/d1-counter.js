// @ts-check
// The D1 counter, inside the Worker's isolate: `counting(worker)` wraps the built Worker's
// handlers so that its `DB` binding counts every statement the Worker runs, work it hands to
// `ctx.waitUntil` included, and answers `GET /__d1-count` itself (before the Worker) with
// the counts. counted.js boots the Worker with it (tests/worker/scale.test.js, and the D1
// figures of `npm run bench`); this module is loaded beside the built Worker, so it imports
// nothing.
//
// What the Worker sees does not change: `env` and `ctx` are proxies that pass every property
// through, except `env.DB` (a proxy of the real binding: `prepare`, `batch`, `exec` and
// `withSession` hand back counted objects, the rest, `getBookmark` and `dump` included, is
// the binding's own) and `ctx.waitUntil` (the promise is handed on unchanged, and watched).
// Statements run on the real binding with the real arguments, and their results, `meta`
// included, come back as D1 gave them. A method the real binding lacks is lacked here too
// (the Worker tests `typeof db.withSession === "function"`).
//
// Counting: a statement counts when it is sent (`all`, `first`, `run`, `raw`; each
// statement of a `batch`; each of an `exec`), classified by its first keyword (`SELECT` and
// `WITH` read, anything else writes) and by its text (`bySql`, whitespace collapsed). The
// answer also says what is still under way: statements sent and not yet answered
// (`inFlight`), and `waitUntil` promises not yet settled (`background`); a reader that waits
// until both are 0 (counted.js `settled()`) has every statement of the requests it sent,
// background work included. The counts are the isolate's module state: one Miniflare worker
// is one isolate.

/**
 * @typedef {object} Counts What `GET /__d1-count` answers.
 * @property {number} statements Every statement sent.
 * @property {number} reads Of those, `SELECT`/`WITH`.
 * @property {number} writes Of those, the others (`INSERT`, `UPDATE`, `DELETE`, …).
 * @property {number} calls Round trips: one per `all`/`first`/`run`/`raw`, `batch` or `exec`.
 * @property {number} batches Of those, `batch` calls.
 * @property {Record<string, number>} bySql Statements by their text (whitespace collapsed).
 * @property {{ sql: string, args: unknown[], at: number }[]} recent The last statements sent
 *   (at most RECENT), with their arguments and `Date.now()`.
 * @property {number} inFlight Statements sent and not yet answered.
 * @property {number} background `waitUntil` promises not yet settled.
 */

/** The path the wrapper answers itself. */
export const COUNT_PATH = "/__d1-count";
/** How many statements `recent` keeps. */
const RECENT = 2000;

/** @type {Omit<Counts, "inFlight" | "background">} */
const counts = { statements: 0, reads: 0, writes: 0, calls: 0, batches: 0, bySql: {}, recent: [] };
let inFlight = 0;
let background = 0;

/** A counted object → the runtime's own (a batch is given the runtime's statements). */
const real = new WeakMap();
/** A counted statement → its SQL text and bound arguments. */
const sqlOf = new WeakMap();

/** @param {string} sql */
const normalise = (sql) => sql.replace(/\s+/g, " ").trim();

/**
 * Counts `statements` (one round trip), then runs `send`; `inFlight` covers the round trip.
 * @template T
 * @param {{ sql: string, args: unknown[] }[]} statements
 * @param {boolean} batch
 * @param {() => Promise<T>} send
 * @returns {Promise<T>}
 */
function counted(statements, batch, send) {
  counts.calls += 1;
  if (batch) counts.batches += 1;
  const at = Date.now();
  for (const { sql, args } of statements) {
    const text = normalise(sql);
    counts.statements += 1;
    if (/^(SELECT|WITH)\b/i.test(text)) counts.reads += 1;
    else counts.writes += 1;
    counts.bySql[text] = (counts.bySql[text] ?? 0) + 1;
    counts.recent.push({ sql: text, args, at });
    if (counts.recent.length > RECENT) counts.recent.splice(0, counts.recent.length - RECENT);
  }
  inFlight += 1;
  /** @type {Promise<T>} */
  let sent;
  try {
    sent = Promise.resolve(send());
  } catch (e) {
    inFlight -= 1;
    throw e;
  }
  sent.then(
    () => (inFlight -= 1),
    () => (inFlight -= 1),
  );
  return sent;
}

/** The statements `exec` runs: its text split at semicolons, empty parts dropped. @param {string} sql */
const execStatements = (sql) =>
  String(sql)
    .split(";")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => ({ sql: s, args: /** @type {unknown[]} */ ([]) }));

/**
 * A counted prepared statement over the runtime's `statement`.
 * @param {any} statement
 * @param {string} sql
 * @param {unknown[]} args
 * @returns {any}
 */
function countedStatement(statement, sql, args) {
  if (statement === null || typeof statement !== "object") return statement;
  const proxy = new Proxy(statement, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "bind":
          return (/** @type {unknown[]} */ ...values) => countedStatement(value.apply(target, values), sql, values);
        case "all":
        case "first":
        case "run":
        case "raw":
          return (/** @type {unknown[]} */ ...rest) => counted([{ sql, args }], false, () => value.apply(target, rest));
        default:
          return value.bind(target);
      }
    },
  });
  real.set(proxy, statement);
  sqlOf.set(proxy, { sql, args });
  return proxy;
}

/**
 * A counted D1 binding (or D1 session) over the runtime's `db`; anything that is not an
 * object (no binding) is passed through as it is.
 * @param {any} db
 * @returns {any}
 */
export function countedDb(db) {
  if (db === null || typeof db !== "object") return db;
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "prepare":
          return (/** @type {string} */ sql, /** @type {unknown[]} */ ...rest) => countedStatement(value.call(target, sql, ...rest), String(sql), []);
        case "batch":
          return (/** @type {any[]} */ statements, /** @type {unknown[]} */ ...rest) => {
            const list = Array.from(statements ?? []);
            const described = list.map((s) => sqlOf.get(s) ?? { sql: "(a statement not prepared through this binding)", args: [] });
            const runtime = list.map((s) => real.get(s) ?? s);
            return counted(described, true, () => value.call(target, runtime, ...rest));
          };
        case "exec":
          return (/** @type {string} */ sql, /** @type {unknown[]} */ ...rest) => counted(execStatements(sql), false, () => value.call(target, sql, ...rest));
        case "withSession":
          return (/** @type {unknown[]} */ ...rest) => countedDb(value.apply(target, rest));
        default:
          return value.bind(target);
      }
    },
  });
}

/**
 * `ctx` with `waitUntil` watched: the promise is handed to the runtime unchanged, and
 * `background` counts it until it settles.
 * @param {any} ctx
 * @returns {any}
 */
function watchedCtx(ctx) {
  if (ctx === null || typeof ctx !== "object") return ctx;
  return new Proxy(ctx, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop !== "waitUntil") return value.bind(target);
      return (/** @type {unknown} */ promise, /** @type {unknown[]} */ ...rest) => {
        background += 1;
        Promise.resolve(promise).then(
          () => (background -= 1),
          () => (background -= 1),
        );
        return value.call(target, promise, ...rest);
      };
    },
  });
}

/** `env` with `DB` counted; every other binding is the runtime's own. @param {any} env @returns {any} */
function countedEnv(env) {
  const db = countedDb(env?.DB);
  return new Proxy(env, {
    get(target, prop) {
      return prop === "DB" ? db : Reflect.get(target, prop, target);
    },
  });
}

/** The counts now, as `GET /__d1-count` answers them. @returns {Counts} */
export function snapshot() {
  return { ...counts, bySql: { ...counts.bySql }, recent: counts.recent.slice(), inFlight, background };
}

/**
 * The Worker's handlers with `DB` counted and `GET /__d1-count` answered here: only `fetch`
 * is wrapped (the built Worker has no other handler).
 * @param {{ fetch: (request: Request, env: any, ctx: any) => unknown }} worker
 */
export function counting(worker) {
  return {
    /** @param {Request} request @param {any} env @param {any} ctx */
    fetch(request, env, ctx) {
      if (request.method === "GET" && new URL(request.url).pathname === COUNT_PATH) {
        return new Response(JSON.stringify(snapshot()), { headers: { "content-type": "application/json" } });
      }
      return worker.fetch(request, countedEnv(env), watchedCtx(ctx));
    },
  };
}
