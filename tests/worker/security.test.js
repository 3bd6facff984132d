// @ts-check
// Hardening: every bad input and every storage fault, per route, against the built Worker
// in workerd. The rows live in security/<route>.js, one table per route (`route` and
// `rows`); each row runs as one test and its OBSERVED outcome is rendered into SECURITY.md
// (between `<!-- cases:begin -->` and `<!-- cases:end -->`). The last test fails when that
// block differs from what was observed; `UPDATE_SECURITY_MD=1 npx vitest run
// tests/worker/security.test.js` rewrites it instead.
//
// Every response, in every mode, is checked for: JSON content type (all but 204),
// `Server-Timing` in the contract's format, `X-Content-Type-Options: nosniff`, no CORS header
// granting access (every request carries a foreign `Origin`; `Vary: Origin` exactly when the
// Worker has ALLOWED_ORIGINS), `Cache-Control: no-store` on session, preference and admin
// routes, the contract's error shape on 4xx/5xx, `WWW-Authenticate` on every 401, the
// rate-limit fields of the route's group on every counted response of a limited route and on
// no other, and for every 5xx an opaque body that names no binding, query or stack and holds
// no secret (and, like every response of the suite, against docs/openapi.json).
//
// A row's request goes through the typed client: the method of its operation (found as the
// router finds it), with the row's path parameters and query as written and only the
// credentials the row gives. Requests that are no operation (an unknown path, a method the
// path does not declare, a preflight) go by path.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN, ROOT, eventually, timing } from "../helpers.js";
import { TestApp, spawnApp, unknownSessionId } from "../app.js";
import { OPENAPI, operationFor } from "../contract.js";
import { KIB, WORKERS } from "./security/common.js";
import * as getHealth from "./security/get-health.js";
import * as getConfig from "./security/get-config.js";
import * as getFlagsName from "./security/get-flags-name.js";
import * as postOfrepV1EvaluateFlagsKey from "./security/post-ofrep-v1-evaluate-flags-key.js";
import * as postOfrepV1EvaluateFlags from "./security/post-ofrep-v1-evaluate-flags.js";
import * as getOfrepV1Events from "./security/get-ofrep-v1-events.js";
import * as putAdminConfig from "./security/put-admin-config.js";
import * as patchAdminConfig from "./security/patch-admin-config.js";
import * as getAdminConfig from "./security/get-admin-config.js";
import * as getAdminConfigHistory from "./security/get-admin-config-history.js";
import * as getAdminFlagsUsage from "./security/get-admin-flags-usage.js";
import * as postAdminConfigRollback from "./security/post-admin-config-rollback.js";
import * as postSessions from "./security/post-sessions.js";
import * as getSessionsCurrent from "./security/get-sessions-current.js";
import * as deleteSessionsCurrent from "./security/delete-sessions-current.js";
import * as getSessions from "./security/get-sessions.js";
import * as deleteSessionsHandle from "./security/delete-sessions-handle.js";
import * as deleteSessions from "./security/delete-sessions.js";
import * as getAdminSessions from "./security/get-admin-sessions.js";
import * as deleteAdminUsersUseridSessions from "./security/delete-admin-users-userid-sessions.js";
import * as getPrefs from "./security/get-prefs.js";
import * as patchPrefs from "./security/patch-prefs.js";
import * as getUsersId from "./security/get-users-id.js";
import * as postUsersBatch from "./security/post-users-batch.js";
import * as putAdminUsersId from "./security/put-admin-users-id.js";
import * as deleteAdminUsersId from "./security/delete-admin-users-id.js";
import * as getAdminTokens from "./security/get-admin-tokens.js";
import * as postAdminTokens from "./security/post-admin-tokens.js";
import * as deleteAdminTokensName from "./security/delete-admin-tokens-name.js";
import * as deleteAdminSessionsHandle from "./security/delete-admin-sessions-handle.js";
import * as getHealthDeep from "./security/get-health-deep.js";
import * as getIndex from "./security/get-index.js";
import * as optionsPreflight from "./security/options-preflight.js";
import * as anyOtherPath from "./security/any-other-path.js";

// ---------------------------------------------------------------------------------------
// Workers: the normal one, and the fault modes (a binding left out; see security/common.js).

/** @typedef {import("./security/common.js").Row} Row */
/** @typedef {import("./security/common.js").RequestSpec} RequestSpec */
/** @typedef {import("../helpers.js").Answer} Answer */
/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {keyof typeof WORKERS} WorkerName */

/** @type {Partial<Record<WorkerName, Promise<TestApp>>>} */
const booted = {};
/** @param {WorkerName} name */
const worker = (name) => (booted[name] ??= spawnApp(WORKERS[name]));

beforeAll(async () => {
  await worker("normal");
});
afterAll(async () => {
  for (const p of Object.values(booted)) await (await p).dispose();
});

// ---------------------------------------------------------------------------------------
// The table: every route's rows, in route order. Row: {situation, worker?, setup?(app) → ctx,
// request (object or fn of ctx), expect: {status, code?, headers?, check?(r, ctx, app)}}.
// request: {method, path, body, headers, admin, session, stream?: bytes (no
// Content-Length), repeat?: n}.

const TABLES = [
  getHealth,
  getConfig,
  getFlagsName,
  postOfrepV1EvaluateFlagsKey,
  postOfrepV1EvaluateFlags,
  getOfrepV1Events,
  putAdminConfig,
  patchAdminConfig,
  getAdminConfig,
  getAdminConfigHistory,
  getAdminFlagsUsage,
  postAdminConfigRollback,
  postSessions,
  getSessionsCurrent,
  deleteSessionsCurrent,
  getSessions,
  deleteSessionsHandle,
  deleteSessions,
  getAdminSessions,
  deleteAdminUsersUseridSessions,
  getPrefs,
  patchPrefs,
  getUsersId,
  postUsersBatch,
  putAdminUsersId,
  deleteAdminUsersId,
  getAdminTokens,
  postAdminTokens,
  deleteAdminTokensName,
  deleteAdminSessionsHandle,
  getHealthDeep,
  getIndex,
  optionsPreflight,
  anyOtherPath,
];
/** @type {(Row & { route: string })[]} */
const CASES = TABLES.flatMap((t) => t.rows.map((row) => ({ ...row, route: t.route })));

// ---------------------------------------------------------------------------------------
// Running a row.

const ORIGIN = "https://attacker.example";
/** Words an opaque 5xx body must not contain (case-sensitive where they are acronyms). */
const LEAKS = [/DB/, /CACHE/, /D1/, /KV/, /binding/i, /SELECT/i, /INSERT/i, /sql/i, /stack/i, /Error:/, /panic/i, /wasm/i, /unreachable/i];

/**
 * The typed client's call for a row's request (see the top of this file), or null for a
 * request that is no operation.
 * @param {TestApp} app @param {RequestSpec} spec @param {CallOptions} opts
 * @returns {Promise<Answer> | null}
 */
function typedCall(app, spec, opts) {
  const method = spec.method ?? "GET";
  const at = spec.path.indexOf("?");
  const pathname = at < 0 ? spec.path : spec.path.slice(0, at);
  const query = at < 0 ? undefined : spec.path.slice(at + 1);
  const found = operationFor(method, pathname);
  if (found.kind !== "operation") return null;
  /** @type {Record<string, string>} */
  const p = {};
  const segments = pathname.slice(1).split("/");
  String(found.template).slice(1).split("/").forEach((/** @type {string} */ part, /** @type {number} */ i) => {
    if (part.startsWith("{")) p[part.slice(1, -1)] = segments[i];
  });
  /** @type {CallOptions} */
  const o = { ...opts, admin: spec.admin ?? false, ...(method === "HEAD" && { method }) };
  // A JSON array body as the client sends any other JSON body (`getUsers` would wrap an array).
  let b = spec.body;
  if (Array.isArray(b)) {
    b = JSON.stringify(b);
    o.headers = { "Content-Type": "application/json", ...o.headers };
  }
  /** The query, as an operation without query parameters is sent it. */
  const q = { ...o, query };
  /** @type {Record<string, () => Promise<Answer>>} */
  const calls = {
    getIndex: () => app.getIndex(q),
    getHealth: () => app.getHealth(query, o),
    getConfig: () => app.getConfig(q),
    getFlag: () => app.getFlag(p.name, query, o),
    evaluateFlag: () => app.evaluateFlag(p.key, b, q),
    evaluateFlags: () => app.evaluateFlags(b, q),
    // Read whole: the rows that open a stream ask with HEAD.
    flagEvents: () => app.json("/ofrep/v1/events", q),
    getAdminConfig: () => app.getAdminConfig(q),
    getConfigHistory: () => app.getConfigHistory(query, o),
    getFlagUsage: () => app.getFlagUsage(q),
    rollbackConfig: () => app.rollbackConfig(b, q),
    replaceConfig: () => app.replaceConfig(b, q),
    patchConfig: () => app.patchConfig(b, q),
    createSession: () => app.createSession(b, q),
    getCurrentSession: () => app.getCurrentSession(spec.session, q),
    logout: () => app.logout(spec.session, q),
    listMySessions: () => app.listMySessions(spec.session, query, o),
    endMySession: () => app.endMySession(spec.session, p.handle, q),
    endMyOtherSessions: () => app.endMyOtherSessions(spec.session, q),
    listSessions: () => app.listSessions(query, o),
    revokeUserSessions: () => app.revokeUserSessions(p.userId, q),
    revokeSession: () => app.revokeSession(p.handle, q),
    getPrefs: () => app.getPrefs(spec.session, q),
    patchPrefs: () => app.patchPrefs(spec.session, b, q),
    getUser: () => app.getUser(p.id, q),
    getUsers: () => app.getUsers(b, q),
    putUser: () => app.putUser(p.id, b, q),
    deleteUser: () => app.deleteUser(p.id, q),
    // The token operations have no TestApp method: by their path, with the same options.
    listTokens: () => app.json("/admin/tokens", q),
    createToken: () => app.json("/admin/tokens", { ...q, method: "POST", body: b }),
    revokeToken: () => app.json(`/admin/tokens/${p.name}`, { ...q, method: "DELETE" }),
  };
  const call = calls[found.operation.operationId];
  if (!call) throw new Error(`security.test.js: no typed call for ${found.operation.operationId}`);
  return call();
}

/**
 * Sends a row's request from `client`: through the typed client (a request that is no
 * operation: by path).
 * @param {TestApp} app @param {RequestSpec} spec @param {string} client @param {Record<string, any>} ctx
 * @returns {Promise<Answer>}
 */
async function send(app, spec, client, ctx) {
  if (!spec.stream) return sendOnce(app, spec, client, ctx);
  // A never-ending body the Worker answers without reading: workerd may close the connection
  // while the client is still writing, and the client then sees a reset instead of the answer
  // (transport, not the Worker: tests/helpers.js resends other bodies alike). A fresh stream
  // is sent again, at most six times in all (under a full suite's load the race is lost
  // now and then; every attempt must still get the same answer when it gets one).
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendOnce(app, spec, client, ctx);
    } catch (e) {
      const err = /** @type {{ cause?: { code?: string }, code?: string }} */ (e);
      const code = err.cause?.code ?? err.code ?? "";
      if (attempt >= 6 || !["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"].includes(code)) throw e;
    }
  }
}

/** One attempt of `send`. @param {TestApp} app @param {RequestSpec} spec @param {string} client @param {Record<string, any>} ctx @returns {Promise<Answer>} */
async function sendOnce(app, spec, client, ctx) {
  const headers = { ...spec.headers, Origin: ORIGIN };
  /** @type {CallOptions} */
  const opts = { headers, client, ...(spec.session && { session: spec.session }) };
  let body = spec.body;
  if (spec.stream) {
    // A chunked body without Content-Length: `spec.stream` bytes, then it stalls and never
    // ends. A Worker that waited for the whole body would never answer.
    const bytes = spec.stream;
    ctx.pulled = 0;
    body = new ReadableStream({
      pull(c) {
        if (ctx.pulled >= bytes) return new Promise(() => {});
        const n = Math.min(16 * KIB, bytes - ctx.pulled);
        ctx.pulled += n;
        c.enqueue(new Uint8Array(n).fill(0x20));
      },
    });
  }
  const request = { ...spec, body };
  const answer = typedCall(app, request, opts) ?? app.json(spec.path, { ...request, ...opts }); // no operation: by path
  if (!spec.stream) return answer;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const never = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer: the Worker waited for a body that never ends")), 10_000);
  });
  try {
    return await /** @type {Promise<Answer>} */ (Promise.race([answer, never]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The observed outcome, as it goes into SECURITY.md.
 * @param {Row} row @param {Answer} r @param {string} detail
 */
function outcome(row, r, detail) {
  let s = String(r.status);
  if (r.status >= 400 && r.body?.code) s += ` ${r.body.code}`;
  for (const name of Object.keys(row.expect.headers ?? {})) {
    s += `, ${name}: ${r.res.headers.get(name) ?? "(absent)"}`;
  }
  return detail ? `${s} ${detail}` : s;
}

/** @type {Map<number, string>} */
const observed = new Map();
/** @type {Map<string, Set<string>>} */
const opaqueBodies = new Map();

/**
 * Assertions every response must pass, whatever the row.
 * @param {Row & { route: string }} row @param {Answer} r @param {Record<string, any>} ctx @param {RequestSpec} spec
 */
function universal(row, r, ctx, spec) {
  const h = r.res.headers;
  const where = `${row.route} / ${row.situation}: ${r.status} ${r.text.slice(0, 300)}`;
  if (r.status === 204) {
    expect(r.text, where).toBe("");
  } else if (row.route === "GET /ofrep/v1/events" && r.status === 200) {
    // The event stream (asked with HEAD here): its own type, no body.
    expect(h.get("content-type"), where).toBe("text/event-stream");
    expect(r.text, where).toBe("");
  } else {
    expect(h.get("content-type"), where).toMatch(/^application\/json/);
    expect(r.body, `${where} (not JSON)`).not.toBeUndefined();
  }
  expect(() => timing(r.res), where).not.toThrow();
  expect(h.get("X-Content-Type-Options"), where).toBe("nosniff");
  expect(h.get("Access-Control-Allow-Origin"), where).toBeNull();
  expect(h.get("Access-Control-Allow-Credentials"), where).toBeNull();
  /** @type {{ vars?: Record<string, string> }} */
  const mode = WORKERS[row.worker ?? "normal"];
  const corsOn = Boolean(mode.vars?.ALLOWED_ORIGINS);
  expect(h.get("Vary"), where).toBe(corsOn ? "Origin" : null);
  if (r.status === 401) expect(h.get("WWW-Authenticate"), where).toMatch(/^Bearer realm="edgestate"(, error="invalid_token")?$/);
  else expect(h.get("WWW-Authenticate"), where).toBeNull();
  rateLimitFields(r, spec, where);
  // Session, preference and admin responses are never cached (router-level 404/405 excepted).
  if (/^(\S+) \/(admin|sessions|prefs)/.test(row.route) && ![404, 405].includes(r.status)) {
    expect(h.get("Cache-Control"), where).toBe("no-store");
  }
  if (r.status >= 400) {
    expect(Object.keys(r.body).sort(), where).toEqual(["code", "error"]);
    expect(typeof r.body.error).toBe("string");
    expect(r.body.error.length).toBeGreaterThan(0);
    expect(r.text, where).not.toContain(ADMIN_TOKEN);
    if (ctx.id) expect(r.text, where).not.toContain(ctx.id);
  }
  if (r.status === 429) expect(h.get("Retry-After"), where).toMatch(/^\d+$/);
  if (r.status >= 500) {
    expect(["unavailable", "internal", "maintenance"], where).toContain(r.body.code);
    for (const leak of LEAKS) expect(r.text, `${where} leaks ${leak}`).not.toMatch(leak);
    if (r.body.code === "maintenance") expect(h.get("Retry-After"), where).toMatch(/^\d+$/);
    const seen = opaqueBodies.get(r.body.code) ?? new Set();
    seen.add(r.text);
    opaqueBodies.set(r.body.code, seen);
  }
}

/**
 * The rate-limit fields: on a limited route's counted responses, both draft-11 fields for
 * the route's group, and the legacy ones (on by default) with the same numbers; none on a
 * request refused for access (401, 403, or 429 for too many failed authentications: the
 * access check comes before the count, so such a request is never counted), on a 5xx (which
 * may come before counting), on unlimited routes and on the router's answers.
 * @param {Answer} r @param {RequestSpec} spec @param {string} where
 */
function rateLimitFields(r, spec, where) {
  const h = r.res.headers;
  const found = operationFor(spec.method ?? "GET", new URL(spec.path, "http://x").pathname);
  const group = found.kind === "operation" ? found.operation["x-edgestate"].rateLimitGroup : null;
  const names = ["RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];
  if (!group) {
    for (const name of names) expect(h.get(name), `${where}: ${name}`).toBeNull();
    return;
  }
  if (r.status >= 500) return;
  // Refused before counting: the body's media type (415), access (401, 403, and the 429 of
  // too many failed authentications, which has no fields).
  const refusedBeforeCounting = [401, 403, 415].includes(r.status) || (r.status === 429 && h.get("RateLimit-Policy") === null);
  if (refusedBeforeCounting) {
    for (const name of names) expect(h.get(name), `${where}: ${name} on a request refused before counting`).toBeNull();
    return;
  }
  const policy = new RegExp(`^"${group}";q=(\\d+);w=(\\d+)$`).exec(h.get("RateLimit-Policy") ?? "");
  const left = new RegExp(`^"${group}";r=(\\d+);t=(\\d+)$`).exec(h.get("RateLimit") ?? "");
  expect(policy, `${where}: RateLimit-Policy ${h.get("RateLimit-Policy")}`).not.toBeNull();
  expect(left, `${where}: RateLimit ${h.get("RateLimit")}`).not.toBeNull();
  expect([h.get("RateLimit-Limit"), h.get("RateLimit-Remaining"), h.get("RateLimit-Reset")], where).toEqual([policy?.[1], left?.[1], left?.[2]]);
}

/** @param {Row & { route: string }} row @param {number} index */
async function runRow(row, index) {
  const app = await worker(row.worker ?? "normal");
  const ctx = { ...((row.setup ? await row.setup(app) : null) ?? {}) };
  const spec = typeof row.request === "function" ? row.request(ctx) : row.request;
  const client = app.newClient();
  const n = spec.repeat ?? 1;
  let r = await send(app, spec, client, ctx);
  universal(row, r, ctx, spec);
  let i = 1;
  while (i < n && r.status === row.expect.status) {
    i += 1;
    r = await send(app, spec, client, ctx);
    universal(row, r, ctx, spec);
  }
  const detail = n > 1 ? (r.status === row.expect.status ? `on all ${n} requests` : `on request ${i} of ${n}`) : "";
  observed.set(index, outcome(row, r, detail));

  expect(r.status, `${r.status} ${r.text.slice(0, 300)}${n > 1 ? ` (${detail})` : ""}`).toBe(row.expect.status);
  if (row.expect.code) expect(r.body.code).toBe(row.expect.code);
  for (const [name, value] of Object.entries(row.expect.headers ?? {})) {
    expect(r.res.headers.get(name), name).toBe(value);
  }
  if (row.expect.check) await row.expect.check(r, ctx, app);
}

// ---------------------------------------------------------------------------------------
// SECURITY.md: the generated table.

const SECURITY_MD = join(ROOT, "SECURITY.md");
const BEGIN = "<!-- cases:begin -->";
const END = "<!-- cases:end -->";
/** @param {string} s */
const cell = (s) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function renderTable() {
  const lines = [
    "| Route | Input or fault | Observed outcome |",
    "|---|---|---|",
    ...CASES.map((row, i) => `| \`${cell(row.route)}\` | ${cell(row.situation)} | ${cell(String(observed.get(i)))} |`),
  ];
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------
// The tests.

describe("bad inputs and storage faults, per route", () => {
  CASES.forEach((row, index) => {
    it(`${row.route} — ${row.situation}`, () => runRow(row, index));
  });
});

describe("across all rows", () => {
  it("every 5xx of one code has one body, whatever failed", () => {
    expect(opaqueBodies.size).toBeGreaterThan(0);
    for (const [code, bodies] of opaqueBodies) expect([...bodies], code).toHaveLength(1);
  });

  it("every operation of docs/openapi.json has a table; the core routes have rows for both faults", () => {
    /** @type {string[]} */
    const operations = Object.entries(OPENAPI.paths).flatMap(([path, item]) =>
      Object.keys(/** @type {object} */ (item)).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
    );
    expect(operations.filter((op) => !TABLES.some((t) => t.route === op))).toEqual([]);
    const routes = [
      "GET /health",
      "GET /config",
      "GET /flags/:name",
      "PUT /admin/config",
      "PATCH /admin/config",
      "POST /sessions",
      "GET /sessions/current",
      "DELETE /sessions/current",
      "GET /admin/sessions",
      "DELETE /admin/users/:userId/sessions",
      "GET /prefs",
      "PATCH /prefs",
      "GET /users/:id",
      "POST /users/batch",
      "PUT /admin/users/:id",
      "DELETE /admin/users/:id",
    ];
    for (const route of routes) {
      const rows = CASES.filter((c) => c.route === route);
      expect(rows.some((c) => c.worker?.startsWith("noD1")), `${route}: D1 absent`).toBe(true);
      expect(rows.some((c) => c.worker === "noKV"), `${route}: KV absent`).toBe(true);
    }
  });

  it("SECURITY.md lists exactly the observed outcomes", () => {
    const missing = CASES.map((row, i) => (observed.has(i) ? null : `${row.route} — ${row.situation}`)).filter(Boolean);
    expect(missing, "rows that did not run (the table needs the whole file)").toEqual([]);
    const table = renderTable();
    const doc = readFileSync(SECURITY_MD, "utf8");
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    expect(start, `SECURITY.md has no ${BEGIN}`).toBeGreaterThanOrEqual(0);
    expect(end, `SECURITY.md has no ${END}`).toBeGreaterThan(start);
    const current = doc.slice(start + BEGIN.length, end).trim();
    if (process.env.UPDATE_SECURITY_MD === "1") {
      writeFileSync(SECURITY_MD, `${doc.slice(0, start + BEGIN.length)}\n${table}\n${doc.slice(end)}`);
      return;
    }
    expect(
      current,
      "SECURITY.md is out of date: run `UPDATE_SECURITY_MD=1 npx vitest run tests/worker/security.test.js`",
    ).toBe(table);
  });
});

// ---------------------------------------------------------------------------------------
// Logs: session ids and the admin token never appear, in normal operation or under faults.

describe("logs", () => {
  it("never contain a session id or the admin token", async () => {
    const token = `log-probe-admin-${randomBytes(12).toString("hex")}`;
    const runs = [
      { kv: true, d1: true },
      { kv: false, d1: true },
      { kv: true, d1: false },
    ];
    for (const { kv, d1 } of runs) {
      let log = "";
      let made = { status: 0, text: "" };
      const stranger = unknownSessionId();
      const w = await spawnApp({ kv, d1, adminToken: token, vars: { LOG_LEVEL: "info" }, onLog: (line) => (log += line) });
      try {
        const secrets = [token];
        made = await w.createSession({ userId: "logprobe", email: "logprobe@example.com" });
        if (made.status === 201) secrets.push(JSON.parse(made.text).sessionId);
        secrets.push(stranger);
        for (const id of secrets.slice(1)) {
          await w.getCurrentSession(id);
          await w.getPrefs(null, { headers: { Cookie: `__Host-session=${id}` } });
          await w.patchPrefs(id, '{"theme":"dark"}');
          await w.logout(id);
        }
        await w.listSessions();
        await w.patchConfig("{bad");
        await w.patchConfig("{}", { admin: `${token}x` });
        await w.revokeUserSessions("logprobe");
        // A barrier: once the last request's line is in the output (at info, every request
        // logs one), every line of the earlier ones is too.
        const last = /DELETE \/admin\/users\/:userId\/sessions \d{3}/;
        expect(await eventually(() => last.test(log)), `the last request's line in:\n${log}`).toBe(true);
      } finally {
        await w.dispose();
      }
      const mode = `kv=${kv} d1=${d1}`;
      expect(log, `${mode}: the Worker logged nothing`).toMatch(/GET \/sessions\/current \d{3}/);
      expect(log, `${mode}: admin token in logs`).not.toContain(token);
      for (const id of [token, stranger]) expect(log, mode).not.toContain(id);
      if (made.status === 201) expect(log, `${mode}: session id in logs`).not.toContain(JSON.parse(made.text).sessionId);
    }
  });
});
