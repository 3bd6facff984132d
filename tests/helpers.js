// Boots the built Worker (build/index.js + its Wasm) in workerd through Miniflare, with real
// local KV and D1, the schema from migrations/ applied, and an admin token set. Every
// response it receives, through any of `w.fetch`, `w.json`, `w.raw` or `w.mf.dispatchFetch`,
// is checked against docs/openapi.json (contract.js): a response the document does not
// allow fails the test that received it. The typed client over it is app.js.
import { Miniflare } from "miniflare";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Agent, request } from "node:http";
import { checkExchange, checkResponse } from "./contract.js";
import { DEV_SERVER_LOCK } from "./snapshot.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const ROOT = new URL("..", import.meta.url).pathname;
/**
 * The built Worker the tests boot: EDGESTATE_SCRIPT when set (the global set-up,
 * tests/snapshot.js, points it at a copy of build/ taken before the files start), else build/.
 */
export const SCRIPT = process.env.EDGESTATE_SCRIPT ?? join(ROOT, "build/index.js");
export const COMPATIBILITY_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(
  readFileSync(join(ROOT, "wrangler.toml"), "utf8"),
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
  const record = (f) => `INSERT INTO d1_migrations (name) VALUES ('${f}')`;
  const table =
    "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, " +
    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";
  return [table].concat(
    migrationFiles().flatMap((f) => [...statementsOf(readFileSync(join(dir, f), "utf8")), record(f)]),
  );
}

/** The statements of one migration file (comments dropped). */
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
 * Boots a Worker. Options: `kv` / `d1` false to leave a binding out (fault injection),
 * `migrate` false to leave D1 without the schema, `vars` (more environment variables, such
 * as ALLOWED_ORIGINS), `adminToken` (null for unset), `seedConfig` (an object stored as
 * config:app), `onLog`
 * (called with every chunk the runtime writes to stdout or stderr), `scriptPath` (another
 * built Worker, such as examples/embed/build/index.js), `otherRoutes` (that Worker serves
 * paths of its own beside edgestate's: responses on paths docs/openapi.json does not declare
 * are not checked against it), `contract` (false: no response is checked, for a test build
 * that breaks the contract on purpose).
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
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: COMPATIBILITY_DATE,
    kvNamespaces: kv ? ["CACHE"] : [],
    d1Databases: d1 ? ["DB"] : [],
    bindings,
    ...(onLog && {
      handleRuntimeStdio(stdout, stderr) {
        stdout.on("data", (d) => onLog(String(d)));
        stderr.on("data", (d) => onLog(String(d)));
      },
    }),
  });
  await mf.ready;
  // Every response is checked against the contract, however the test sent its request
  // (unless `contract` is false: a test build that breaks it on purpose).
  const dispatch = mf.dispatchFetch.bind(mf);
  if (contract) {
    mf.dispatchFetch = async (input, init = {}) => {
      const res = await dispatch(input, init);
      const method = init.method ?? input?.method ?? "GET";
      return checkResponse(method, String(input?.url ?? input), res, { otherRoutes });
    };
  }
  const env = {
    mf,
    kv: kv ? await mf.getKVNamespace("CACHE") : null,
    db: d1 ? await mf.getD1Database("DB") : null,
  };
  if (env.db && migrate) {
    await env.db.batch(migrationStatements().map((s) => env.db.prepare(s)));
  }
  if (env.kv && seedConfig) {
    await env.kv.put("config:app", JSON.stringify(seedConfig));
  }
  let clientCounter = 0;
  /** A distinct client address, so rate limits of one test do not leak into another. */
  env.newClient = () => `198.51.100.${(++clientCounter % 250) + 1}`;
  env.client = env.newClient();
  /** fetch(path, {method, body (object → JSON), headers, admin, session, client}). */
  env.fetch = (path, opts = {}) => {
    const headers = new Headers(opts.headers ?? {});
    if (opts.admin) headers.set("Authorization", `Bearer ${opts.admin === true ? ADMIN_TOKEN : opts.admin}`);
    if (opts.session) headers.set("Authorization", `Bearer ${opts.session}`);
    if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", opts.client ?? env.client);
    let body = opts.body;
    if (body !== undefined && typeof body !== "string" && !(body instanceof Uint8Array)) {
      body = JSON.stringify(body);
      if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    }
    return mf.dispatchFetch(`http://127.0.0.1${path}`, { method: opts.method ?? "GET", headers, body });
  };
  env.json = async (path, opts) => {
    const res = await env.fetch(path, opts);
    const text = await res.text();
    return { res, status: res.status, body: text ? JSON.parse(text) : null, text };
  };
  // Connections kept alive for `raw`: a request costs the test process about a sixth of what
  // `dispatchFetch` (undici's fetch) costs, which matters to tests that send thousands.
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  /**
   * A plain HTTP/1.1 request to the runtime's own port, over a kept-alive connection, checked
   * against the contract like every other: for methods fetch() refuses (TRACE), and for tests
   * that send thousands of requests. `body` is a string. Resolves {status, headers, text}.
   */
  env.raw = async (method, path, headers = {}, body) => {
    const url = new URL(path, await mf.ready);
    const sent = { "CF-Connecting-IP": env.client, ...headers };
    if (body !== undefined) sent["Content-Length"] = Buffer.byteLength(body);
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent, headers: sent }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          try {
            const header = (name) => [res.headers[name.toLowerCase()]].flat()[0] ?? null;
            checkExchange({ method, pathname: url.pathname, status: res.statusCode, header, text, otherRoutes });
            resolve({ status: res.statusCode, headers: res.headers, text });
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  };
  env.dispose = () => {
    agent.destroy();
    return mf.dispose();
  };
  return env;
}

/** Storage work from the contract's Server-Timing header. */
export function timing(res) {
  const h = res.headers.get("Server-Timing") ?? "";
  const m = /kv;desc="reads=(\d+) writes=(\d+) lists=(\d+) deletes=(\d+)";dur=[\d.]+, d1;desc="queries=(\d+)";dur=[\d.]+/.exec(h);
  if (!m) throw new Error(`no contract Server-Timing header: ${JSON.stringify(h)}`);
  const [reads, writes, lists, deletes, queries] = m.slice(1).map(Number);
  return { reads, writes, lists, deletes, queries };
}

export function sum(timings) {
  return timings.reduce(
    (a, t) => ({
      reads: a.reads + t.reads,
      writes: a.writes + t.writes,
      lists: a.lists + t.lists,
      deletes: a.deletes + t.deletes,
      queries: a.queries + t.queries,
    }),
    { reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 },
  );
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Setup only (no assertion on time): if the current fixed rate-limit window of `seconds` has
 * less than `needMs` left, waits for the next one, so one test's requests fall in one window.
 */
export async function roomInWindow(seconds, needMs) {
  const len = seconds * 1000;
  const left = len - (Date.now() % len);
  if (left < needMs) await sleep(left + 50);
}

/** Polls `fn` until it returns truthy or `ms` passes; returns the last value. */
export async function eventually(fn, ms = 5000, step = 50) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await fn();
    if (v) return v;
    await sleep(step);
  }
  return v;
}

/**
 * Waits until no other test file runs `npm run dev`, then holds that turn; resolves the
 * function that gives it back. Each `npm run dev` rewrites build/ (wrangler's [build]), so two
 * at once could serve each other a half-written build; the lock is a directory, made
 * atomically.
 */
export async function devServerTurn() {
  mkdirSync(join(ROOT, ".edgestate"), { recursive: true });
  for (;;) {
    try {
      mkdirSync(DEV_SERVER_LOCK);
      return () => rmSync(DEV_SERVER_LOCK, { recursive: true, force: true });
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
      await sleep(250);
    }
  }
}

/** Asserts the contract's error shape and returns the body. */
export function expectError(expect, r, status, code) {
  expect(r.status, r.text).toBe(status);
  expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.body.code).toBe(code);
  expect(typeof r.body.error).toBe("string");
  expect(r.body.error.length).toBeGreaterThan(0);
  return r.body;
}
