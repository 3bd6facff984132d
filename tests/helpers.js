// @ts-check
// Boots the built Worker (build/index.js + its Wasm) in workerd through Miniflare, with real
// local KV and D1, the schema from migrations/ applied, and an admin token set. Every
// response it receives, through any of `w.fetch`, `w.json`, `w.raw` or `w.mf.dispatchFetch`,
// is checked against docs/openapi.json (contract.js): a response the document does not
// allow fails the test that received it. The typed client over it is app.js.
//
// `clientOver` is the request layer every client shares (this boot, each isolate of the
// location harness, a `npm run dev` server): credentials, the client address, JSON bodies,
// and the contract check of every exchange.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Agent, request } from "node:http";
import { spawn } from "node:child_process";
import { checkExchange, checkResponse } from "./contract.js";
import { DEV_SERVER_LOCK } from "./snapshot.js";

/**
 * @typedef {object} RequestOptions What `fetch` and `json` send.
 * @property {string} [method] GET unless given.
 * @property {unknown} [body] An object is sent as JSON; a string, bytes or a stream are sent
 *   as they are (a stream without Content-Length), all with `Content-Type: application/json`
 *   unless `headers` name another. A function that makes a stream is a stream that can be
 *   sent again when the connection is reset under it (see `resending`).
 * @property {Record<string, string>} [headers] Sent as given (before the options below).
 * @property {boolean | string} [admin] `Authorization: Bearer` with the admin token (`true`)
 *   or with this string.
 * @property {string | null} [session] `Authorization: Bearer` with this session id (wins
 *   over `admin`).
 * @property {string} [client] The `CF-Connecting-IP` (the client's own address unless
 *   given; a `CF-Connecting-IP` in `headers` wins).
 * @property {Record<string, string | number> | string} [query] More query parameters
 *   (appended to the path; a string is used as it is).
 */
/**
 * @typedef {object} Answer A response read whole.
 * @property {number} status
 * @property {any} body The parsed JSON body; null for an empty body, undefined for one that
 *   is not JSON.
 * @property {string} text The body as text.
 * @property {Response} res The response (its body already read).
 */
/**
 * @typedef {object} RawAnswer What `raw` resolves.
 * @property {number} status
 * @property {import("node:http").IncomingHttpHeaders} headers Lower-case names.
 * @property {string} text
 */
/** @typedef {(input: string, init: RequestInit & { duplex?: "half" }) => Promise<Response>} Dispatch */
/**
 * @typedef {object} Client Requests to one Worker, each checked against the contract.
 * @property {(path: string, opts?: RequestOptions) => Promise<Response>} fetch
 * @property {(path: string, opts?: RequestOptions) => Promise<Answer>} json
 * @property {() => string} newClient A distinct client address (`CF-Connecting-IP`), so one
 *   test's rate limits do not leak into another's.
 * @property {string} client This client's default address.
 * @property {string} adminToken The token `admin: true` sends.
 * @property {string} base The scheme and authority requests go to (the Worker's own origin).
 */
/**
 * @typedef {Client & {
 *   mf: Miniflare,
 *   kv: any,
 *   db: any,
 *   raw: (method: string, path: string, headers?: Record<string, string>, body?: string) => Promise<RawAnswer>,
 *   dispose: () => Promise<void>,
 * }} Booted What `boot` resolves: a client, the Miniflare instance, local KV (`CACHE`) and D1
 *   (`DB`) or null where left out, `raw` and `dispose`.
 */

export const ADMIN_TOKEN = "test-admin-token-0123456789-0123456789abcdef";
export const ROOT = new URL("..", import.meta.url).pathname;
/**
 * The built Worker the tests boot: EDGESTATE_SCRIPT when set (the global set-up,
 * tests/snapshot.js, points it at a copy of build/ taken before the files start), else build/.
 */
export const SCRIPT = process.env.EDGESTATE_SCRIPT ?? join(ROOT, "build/index.js");
export const COMPATIBILITY_DATE = /** @type {RegExpExecArray} */ (
  /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "wrangler.toml"), "utf8"))
)[1];

/** The config defaults (docs/API.md, "Config"), the session settings included. */
export const DEFAULTS = {
  featureFlags: {},
  rateLimits: { default: 100 },
  maintenanceMode: false,
  strictRateLimits: [],
  rateLimitWindowSeconds: 60,
  cacheTtlSeconds: 300,
  sessionIdleSeconds: 86400,
  sessionAbsoluteSeconds: 604800,
  renewAfterSeconds: 3600,
  legacyRateLimitHeaders: true,
};

/**
 * What `GET /config` shows of a config document (missing fields take DEFAULTS): the public
 * fields, and each flag as its value for an empty context. A flag with variants shows its
 * default variant's value, which is what an empty context gets wherever no rule matches it
 * and no rollout decides (a rollout needs a targetingKey): every flag these tests make.
 * @param {Record<string, any>} config
 */
export function publicView(config) {
  const c = { ...DEFAULTS, ...config };
  /** @param {any} f */
  const value = (f) => (typeof f === "boolean" ? f : f.variants[f.defaultVariant]);
  return {
    featureFlags: Object.fromEntries(Object.entries(c.featureFlags).map(([k, f]) => [k, value(f)])),
    rateLimits: c.rateLimits,
    maintenanceMode: c.maintenanceMode,
    rateLimitWindowSeconds: c.rateLimitWindowSeconds,
  };
}

/** No storage work at all, as `timing` reads it. */
export const NO_WORK = Object.freeze({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });

/**
 * The modules of a Worker, its entry first: the entry and every module it imports by a
 * relative path, transitively (ES modules, and `.wasm` files as compiled Wasm), as Miniflare
 * 5 wants them listed (its classic `modulesRules` option does not convert).
 * @param {string} scriptPath
 * @returns {{ type: "CompiledWasm" | "ESModule", path: string }[]}
 */
export function workerModules(scriptPath) {
  /** @type {Map<string, { type: "CompiledWasm" | "ESModule", path: string }>} */
  const seen = new Map();
  /** @param {string} path */
  const visit = (path) => {
    if (seen.has(path)) return;
    const wasm = path.endsWith(".wasm");
    seen.set(path, { type: wasm ? "CompiledWasm" : "ESModule", path });
    if (wasm) return;
    const source = readFileSync(path, "utf8");
    for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*)["'](\.{1,2}\/[^"']+)["']/g)) {
      visit(join(dirname(path), m[1]));
    }
  };
  visit(scriptPath);
  return [...seen.values()];
}

/** The migration files, in order. */
export const migrationFiles = () =>
  readdirSync(join(ROOT, "migrations"))
    .filter((f) => f.endsWith(".sql"))
    .sort();

/**
 * The statements of every migration, in order, each followed by the row
 * `wrangler d1 migrations apply` records for it in `d1_migrations`.
 */
export function migrationStatements() {
  const dir = join(ROOT, "migrations");
  /** @param {string} f */
  const record = (f) => `INSERT INTO d1_migrations (name) VALUES ('${f}')`;
  const table =
    "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, " +
    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";
  return [table].concat(
    migrationFiles().flatMap((f) => [...statementsOf(readFileSync(join(dir, f), "utf8")), record(f)]),
  );
}

/**
 * The statements of one migration file (comments dropped).
 * @param {string} sql
 */
function statementsOf(sql) {
  return sql
    .split("\n")
    .map((line) => line.replace(/--.*$/, ""))
    .join("\n")
    .split(";")
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Distinct client addresses in `prefix`.0/24 (`${prefix}.1` to `${prefix}.250`, then round
 * again), one counter per call of this function.
 * @param {string} prefix three octets, such as "198.51.100"
 * @returns {() => string}
 */
export function addresses(prefix) {
  let n = 0;
  return () => `${prefix}.${(++n % 250) + 1}`;
}

/**
 * `dispatch` with every exchange checked against docs/openapi.json (contract.js), the request
 * it answered included: a response the document does not allow rejects.
 * @param {Dispatch} dispatch
 * @param {{ otherRoutes?: boolean }} [options] `otherRoutes`: the Worker serves paths of its
 *   own beside edgestate's, which are not checked.
 * @returns {Dispatch}
 */
export function checked(dispatch, { otherRoutes = false } = {}) {
  return async (input, init = {}) => {
    const res = await dispatch(input, init);
    const method = init.method ?? "GET";
    const request = { headers: new Headers(init.headers ?? {}), body: init.body ?? null };
    return checkResponse(method, String(input), res, { otherRoutes, request });
  };
}

/**
 * The request layer over `dispatch` (which receives full URLs under `base`).
 * @param {Dispatch} dispatch
 * @param {{ base?: string, newClient?: () => string, adminToken?: string }} [options]
 * @returns {Client}
 */
export function clientOver(dispatch, { base = "http://127.0.0.1", newClient = addresses("198.51.100"), adminToken = ADMIN_TOKEN } = {}) {
  const client = newClient();
  /** @type {Client["fetch"]} */
  const fetch = (path, opts = {}) => {
    const headers = new Headers(opts.headers ?? {});
    if (opts.admin) headers.set("Authorization", `Bearer ${opts.admin === true ? adminToken : opts.admin}`);
    if (opts.session) headers.set("Authorization", `Bearer ${opts.session}`);
    if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", opts.client ?? client);
    let body = opts.body;
    /** @type {{ duplex?: "half" }} */
    let streamed = {};
    const makeStream = typeof body === "function" ? /** @type {() => ReadableStream} */ (body) : null;
    if (makeStream) {
      streamed = { duplex: "half" };
    } else if (body instanceof ReadableStream) {
      streamed = { duplex: "half" };
    } else if (body !== undefined && typeof body !== "string" && !(body instanceof Uint8Array)) {
      body = JSON.stringify(body);
    }
    // Every body this API reads is JSON, declared as such (else 415): a test that sends another
    // type says so in its headers; one that sends none uses `raw`.
    if (body !== undefined && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    const url = `${base}${path}${extraQuery(path, opts.query)}`;
    const init = { method: opts.method ?? "GET", headers, body: /** @type {BodyInit | undefined} */ (body), ...streamed };
    if (makeStream) return resending(() => dispatch(url, { ...init, body: makeStream() }));
    return body instanceof ReadableStream ? dispatch(url, init) : resending(() => dispatch(url, init));
  };
  return {
    fetch,
    json: async (path, opts) => answerOf(await fetch(path, opts)),
    newClient,
    client,
    adminToken,
    base,
  };
}

/** Network errors of a client still writing a body the Worker chose not to read. */
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

/**
 * `send()`, sent again (at most 6 times in all) when the connection was reset under it. When
 * the Worker answers without reading a large body (as it should, for a 413 or a 401), workerd
 * may close the connection while the client is still writing it; the client then sees a reset
 * instead of the answer. That is transport, not the Worker.
 * @param {() => Promise<Response>} send
 */
async function resending(send) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (e) {
      const err = /** @type {{ cause?: { code?: string }, code?: string }} */ (e);
      const code = err.cause?.code ?? err.code;
      if (attempt >= 6 || !code || !RESET.has(code)) throw e;
    }
  }
}

/**
 * A binding Miniflare proxies into this process (the KV namespace, the D1 database), whose
 * calls are sent again when the connection they went out on had been reset (`resending`):
 * the proxy shares its connections with the requests, and one the runtime closed after
 * answering a body it did not read can be picked up by the next call. Statements and other
 * objects the binding hands back are wrapped alike; values pass through.
 * @template {object} T
 * @param {T} target
 * @returns {T}
 */
function resilient(target) {
  return new Proxy(target, {
    get(t, prop) {
      const v = /** @type {any} */ (t)[prop];
      if (typeof v !== "function") return v;
      return (/** @type {unknown[]} */ ...args) => {
        const call = () => v.apply(t, args);
        const out = call();
        if (out && typeof out.then === "function") return againOnReset(out, call);
        return out && typeof out === "object" ? resilient(out) : out;
      };
    },
  });
}

/**
 * `first`, or, if it failed because its connection was reset, `call()` again (`resending`).
 * @param {Promise<any>} first @param {() => Promise<any>} call
 */
async function againOnReset(first, call) {
  try {
    return await first;
  } catch (e) {
    const err = /** @type {{ cause?: { code?: string }, code?: string }} */ (e);
    const code = err.cause?.code ?? err.code;
    if (!code || !RESET.has(code)) throw e;
  }
  return resending(call);
}

/**
 * `?k=v&…` (or `&k=v&…` after a path that has a query) for `query`; "" for none.
 * @param {string} path
 * @param {Record<string, string | number> | string | undefined} query
 */
function extraQuery(path, query) {
  const q = queryString(query);
  return q && path.includes("?") ? `&${q.slice(1)}` : q;
}

/**
 * `?k=v&…` for the entries of `query` (a string is taken as it is: exact bytes, for malformed
 * queries), or "" when it has none.
 * @param {Record<string, string | number> | string | undefined} query
 */
export function queryString(query) {
  if (query === undefined) return "";
  const q = typeof query === "string" ? query.replace(/^\?/, "") : new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  return q ? `?${q}` : "";
}

/**
 * A response read whole: its status, its text and its JSON body.
 * @param {Response} res
 * @returns {Promise<Answer>}
 */
export async function answerOf(res) {
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = undefined;
  }
  return { res, status: res.status, body, text };
}

/**
 * Boots a Worker. Options: `kv` / `d1` false to leave a binding out (fault injection),
 * `migrate` false to leave D1 without the schema, `vars` (more environment variables, such
 * as ALLOWED_ORIGINS), `adminToken` (null for unset), `seedConfig` (an object stored as
 * config:app), `onLog` (called with every line the runtime writes), `scriptPath` (another
 * built Worker, such as examples/embed/build/index.js), `otherRoutes` (that Worker serves
 * paths of its own beside edgestate's: responses on paths docs/openapi.json does not declare
 * are not checked against it), `contract` (false: no response is checked, for a test build
 * that breaks the contract on purpose).
 * @param {{
 *   kv?: boolean, d1?: boolean, migrate?: boolean, vars?: Record<string, string>,
 *   adminToken?: string | null, seedConfig?: object, onLog?: (line: string) => void,
 *   scriptPath?: string, otherRoutes?: boolean, contract?: boolean,
 * }} [options]
 * @returns {Promise<Booted>}
 */
export async function boot({
  kv = true,
  d1 = true,
  migrate = true,
  vars = {},
  adminToken = ADMIN_TOKEN,
  seedConfig,
  onLog,
  scriptPath = SCRIPT,
  otherRoutes = false,
  contract = true,
} = {}) {
  const bindings = { ...vars, ...(adminToken === null ? {} : { ADMIN_TOKEN: adminToken }) };
  // Miniflare 5 (the one wrangler runs) takes a new options shape; the classic one converts.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: workerModules(scriptPath),
      compatibilityDate: COMPATIBILITY_DATE,
      kvNamespaces: kv ? ["CACHE"] : [],
      d1Databases: d1 ? ["DB"] : [],
      bindings,
      // Each line the runtime writes (the Worker's console, uncaught errors), as text.
      ...(onLog && { handleStructuredLogs: (/** @type {{ message: string }} */ { message }) => onLog(`${message}\n`) }),
    }),
  );
  await mf.ready;
  // Every response is checked against the contract, however the test sent its request
  // (unless `contract` is false: a test build that breaks it on purpose).
  /** @type {Dispatch} */
  const dispatch = /** @type {any} */ (mf.dispatchFetch.bind(mf));
  if (contract) mf.dispatchFetch = /** @type {any} */ (checked(dispatch, { otherRoutes }));
  // (Their types come from @cloudflare/workers-types, which is not installed: any.)
  /** @type {any} */
  const storeKv = kv ? resilient(await mf.getKVNamespace("CACHE")) : null;
  /** @type {any} */
  const db = d1 ? resilient(await mf.getD1Database("DB")) : null;
  if (db && migrate) {
    await db.batch(migrationStatements().map((s) => db.prepare(s)));
  }
  if (storeKv && seedConfig) {
    await storeKv.put("config:app", JSON.stringify(seedConfig));
  }
  const client = clientOver(/** @type {any} */ (mf.dispatchFetch), { adminToken: adminToken ?? ADMIN_TOKEN });
  // Connections kept alive for `raw`: a request costs the test process about a sixth of what
  // `dispatchFetch` (undici's fetch) costs, which matters to tests that send thousands.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /**
   * A plain HTTP/1.1 request to the runtime's own port, over a kept-alive connection, checked
   * against the contract like every other: for methods fetch() refuses (TRACE), and for tests
   * that send thousands of requests. `body` is a string. Resolves {status, headers, text}.
   * @type {Booted["raw"]}
   */
  const raw = async (method, path, headers = {}, body) => {
    const url = new URL(path, await mf.ready);
    /** @type {Record<string, string | number>} */
    const sent = { "CF-Connecting-IP": client.client, ...headers };
    if (body !== undefined) sent["Content-Length"] = Buffer.byteLength(body);
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent, headers: sent }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          try {
            /** @param {string} name */
            const header = (name) => [res.headers[name.toLowerCase()]].flat()[0] ?? null;
            const asked = { headers: new Headers(Object.entries(sent).map(([k, v]) => /** @type {[string, string]} */ ([k, String(v)]))), body: body ?? null };
            if (contract) {
              const status = /** @type {number} */ (res.statusCode);
              checkExchange({ method, pathname: url.pathname, search: url.search, status, header, text, otherRoutes, request: asked });
            }
            resolve({ status: /** @type {number} */ (res.statusCode), headers: res.headers, text });
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  };
  return {
    ...client,
    mf,
    kv: storeKv,
    db,
    raw,
    dispose: () => {
      agent.destroy();
      return mf.dispose();
    },
  };
}

/**
 * @typedef {{ reads: number, writes: number, lists: number, deletes: number, queries: number }} Timing
 */

/**
 * Storage work from the contract's Server-Timing header.
 * @param {Response} res
 * @returns {Timing}
 */
export function timing(res) {
  const h = res.headers.get("Server-Timing") ?? "";
  const m = /kv;desc="reads=(\d+) writes=(\d+) lists=(\d+) deletes=(\d+)";dur=[\d.]+, d1;desc="queries=(\d+)";dur=[\d.]+/.exec(h);
  if (!m) throw new Error(`no contract Server-Timing header: ${JSON.stringify(h)}`);
  const [reads, writes, lists, deletes, queries] = m.slice(1).map(Number);
  return { reads, writes, lists, deletes, queries };
}

/**
 * The D1 statements of a response the primary database served (`d1-primary` in
 * Server-Timing): the round trips that grow with the distance to the primary.
 * @param {Response} res
 * @returns {number}
 */
export function primaryQueries(res) {
  const h = res.headers.get("Server-Timing") ?? "";
  const m = /d1-primary;desc="queries=(\d+)"/.exec(h);
  if (!m) throw new Error(`no d1-primary in Server-Timing: ${JSON.stringify(h)}`);
  return Number(m[1]);
}

/**
 * The storage work of several responses, added up.
 * @param {Timing[]} timings
 * @returns {Timing}
 */
export function sum(timings) {
  return timings.reduce(
    (a, t) => ({
      reads: a.reads + t.reads,
      writes: a.writes + t.writes,
      lists: a.lists + t.lists,
      deletes: a.deletes + t.deletes,
      queries: a.queries + t.queries,
    }),
    { ...NO_WORK },
  );
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Set-up only: sleeps until the wall-clock time `t` (ms since the epoch), such as a bound's
 * end. What follows asserts on behaviour, never on how long anything took.
 * @param {number} t
 */
export const until = (t) => sleep(t - Date.now());

/**
 * Setup only (no assertion on time): if the current fixed rate-limit window of `seconds` has
 * less than `needMs` left, waits for the next one, so one test's requests fall in one window.
 * @param {number} seconds
 * @param {number} needMs
 */
export async function roomInWindow(seconds, needMs) {
  const len = seconds * 1000;
  const left = len - (Date.now() % len);
  if (left < needMs) await sleep(left + 50);
}

/**
 * The start (in seconds since the epoch) of the fixed window of `seconds` holding `at`.
 * @param {number} seconds
 * @param {number} [at] ms since the epoch; now unless given
 */
export const windowStartSeconds = (seconds, at = Date.now()) => Math.floor(at / (seconds * 1000)) * seconds;

/**
 * Polls `fn` until it returns truthy or `ms` passes; returns the last value. The wait for a
 * condition: what the caller asserts is that value, never how long it took.
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {number} [ms]
 * @param {number} [step]
 * @returns {Promise<T>}
 */
export async function eventually(fn, ms = 5000, step = 50) {
  const end = Date.now() + ms;
  let v = await fn();
  while (!v && Date.now() < end) {
    await sleep(step);
    v = await fn();
  }
  return v;
}

/**
 * Waits until no other test file runs `npm run dev`, then holds that turn; resolves the
 * function that gives it back. Each `npm run dev` rewrites build/ (wrangler's [build]), so two
 * at once could serve each other a half-written build; the lock is a directory, made
 * atomically, holding the holder's pid.
 * @returns {Promise<() => void>}
 */
export async function devServerTurn() {
  mkdirSync(join(ROOT, ".edgestate"), { recursive: true });
  for (;;) {
    try {
      mkdirSync(DEV_SERVER_LOCK);
      // Its holder, so that a run's set-up clears it only once this process is gone.
      writeFileSync(join(DEV_SERVER_LOCK, "pid"), String(process.pid));
      return () => rmSync(DEV_SERVER_LOCK, { recursive: true, force: true });
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code !== "EEXIST") throw e;
      await sleep(250);
    }
  }
}

/**
 * @typedef {object} DevServer A running `npm run dev` (scripts/dev.sh).
 * @property {import("node:child_process").ChildProcess} child
 * @property {Promise<number | null>} exited Its exit code.
 * @property {() => string} out Everything it printed so far.
 * @property {() => Promise<void>} stop SIGINT to its process group (SIGKILL 10 s later), then
 *   its exit.
 */

/**
 * `bash scripts/dev.sh args…` (`npm run dev`) on the local state in `persistDir`, in its own
 * process group. Take a turn first (devServerTurn).
 * @param {string[]} args
 * @param {string} persistDir
 * @param {Record<string, string>} [env]
 * @returns {DevServer}
 */
export function startDevServer(args, persistDir, env = {}) {
  const child = spawn("bash", ["scripts/dev.sh", ...args], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, PERSIST_DIR: persistDir, ...env },
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  /** @type {Promise<number | null>} */
  const exited = new Promise((done) => child.on("exit", (code) => done(code)));
  const pid = /** @type {number} */ (child.pid);
  const stop = async () => {
    try {
      process.kill(-pid, "SIGINT");
    } catch {}
    const hard = setTimeout(() => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    }, 10_000);
    await exited;
    clearTimeout(hard);
  };
  return { child, exited, out: () => out, stop };
}

/**
 * Waits until the dev server at `base` answers GET /health (each start builds the Worker
 * first, wrangler.toml's [build]: up to 280 s); throws with its output if it never does.
 * (A plain request: whether anything listens yet, before any operation's answer.)
 * @param {string} base @param {DevServer} server
 */
export async function devServerUp(base, server) {
  const up = await eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 280_000, 500);
  if (!up) throw new Error(`npm run dev did not start on ${base}:\n${server.out()}`);
}

/** The admin token a newcomer has: the one in .dev.vars (npm run dev creates it if absent). */
export function devVarsAdminToken() {
  const token = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(ROOT, ".dev.vars"), "utf8"))?.[1]?.trim();
  if (!token) throw new Error(".dev.vars sets no ADMIN_TOKEN");
  return token;
}

/**
 * An environment variable holding a TCP port, or `fallback` when it is unset.
 * @param {string} name
 * @param {number} fallback
 */
export function portFromEnv(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}=${value} is not a port (1 to 65535)`);
  return port;
}

/**
 * Asserts the contract's error shape and returns the body.
 * @param {import("vitest").ExpectStatic} expect
 * @param {Answer} r
 * @param {number} status
 * @param {string} code
 * @returns {{ error: string, code: string }}
 */
export function expectError(expect, r, status, code) {
  expect(r.status, r.text).toBe(status);
  expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.body.code).toBe(code);
  expect(typeof r.body.error).toBe("string");
  expect(r.body.error.length).toBeGreaterThan(0);
  return r.body;
}
