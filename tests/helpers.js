// Boots the built Worker (build/index.js + its Wasm) in workerd through Miniflare, with real
// local KV and D1, the schema from migrations/ applied, and an admin token set.
import { Miniflare } from "miniflare";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const ROOT = new URL("..", import.meta.url).pathname;
export const COMPATIBILITY_DATE = /compatibility_date\s*=\s*"([^"]+)"/.exec(
  readFileSync(join(ROOT, "wrangler.toml"), "utf8"),
)[1];

/** The contract's config defaults (API.md, Config), and the session and header settings. */
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
 * built Worker, such as examples/embed/build/index.js).
 */
export async function boot({
  kv = true,
  d1 = true,
  migrate = true,
  vars = {},
  adminToken = ADMIN_TOKEN,
  seedConfig,
  onLog,
  scriptPath = process.env.EDGESTATE_SCRIPT ?? join(ROOT, "build/index.js"),
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
  /** A raw HTTP/1.1 request to the runtime's own port: for methods fetch() refuses (TRACE). */
  env.raw = async (method, path, headers = {}) => {
    const url = new URL(path, await mf.ready);
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers: { "CF-Connecting-IP": env.client, ...headers } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text }));
      });
      req.on("error", reject);
      req.end();
    });
  };
  env.dispose = () => mf.dispose();
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

/** Asserts the contract's error shape and returns the body. */
export function expectError(expect, r, status, code) {
  expect(r.status, r.text).toBe(status);
  expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.body.code).toBe(code);
  expect(typeof r.body.error).toBe("string");
  expect(r.body.error.length).toBeGreaterThan(0);
  return r.body;
}
