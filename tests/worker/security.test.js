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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_TOKEN, ROOT, boot, timing } from "../helpers.js";
import { spawnApp, unknownSessionId } from "../app.js";
import { OPENAPI, operationFor } from "../contract.js";
import { KIB, WORKERS } from "./security/common.js";
import * as getHealth from "./security/get-health.js";
import * as getConfig from "./security/get-config.js";
import * as getFlagsName from "./security/get-flags-name.js";
import * as postOfrepV1EvaluateFlagsKey from "./security/post-ofrep-v1-evaluate-flags-key.js";
import * as postOfrepV1EvaluateFlags from "./security/post-ofrep-v1-evaluate-flags.js";
import * as putAdminConfig from "./security/put-admin-config.js";
import * as patchAdminConfig from "./security/patch-admin-config.js";
import * as getAdminConfig from "./security/get-admin-config.js";
import * as getAdminConfigHistory from "./security/get-admin-config-history.js";
import * as postAdminConfigRollback from "./security/post-admin-config-rollback.js";
import * as postSessions from "./security/post-sessions.js";
import * as getSessionsCurrent from "./security/get-sessions-current.js";
import * as deleteSessionsCurrent from "./security/delete-sessions-current.js";
import * as getAdminSessions from "./security/get-admin-sessions.js";
import * as deleteAdminUsersUseridSessions from "./security/delete-admin-users-userid-sessions.js";
import * as getPrefs from "./security/get-prefs.js";
import * as patchPrefs from "./security/patch-prefs.js";
import * as getUsersId from "./security/get-users-id.js";
import * as postUsersBatch from "./security/post-users-batch.js";
import * as putAdminUsersId from "./security/put-admin-users-id.js";
import * as deleteAdminUsersId from "./security/delete-admin-users-id.js";
import * as deleteAdminSessionsHandle from "./security/delete-admin-sessions-handle.js";
import * as getHealthDeep from "./security/get-health-deep.js";
import * as getIndex from "./security/get-index.js";
import * as optionsPreflight from "./security/options-preflight.js";
import * as anyOtherPath from "./security/any-other-path.js";

// ---------------------------------------------------------------------------------------
// Workers: the normal one, and the fault modes (a binding left out; see security/common.js).

const booted = {};
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
  putAdminConfig,
  patchAdminConfig,
  getAdminConfig,
  getAdminConfigHistory,
  postAdminConfigRollback,
  postSessions,
  getSessionsCurrent,
  deleteSessionsCurrent,
  getAdminSessions,
  deleteAdminUsersUseridSessions,
  getPrefs,
  patchPrefs,
  getUsersId,
  postUsersBatch,
  putAdminUsersId,
  deleteAdminUsersId,
  deleteAdminSessionsHandle,
  getHealthDeep,
  getIndex,
  optionsPreflight,
  anyOtherPath,
];
const CASES = TABLES.flatMap((t) => t.rows.map((row) => ({ ...row, route: t.route })));

// ---------------------------------------------------------------------------------------
// Running a row.

const ORIGIN = "https://attacker.example";
/** Words an opaque 5xx body must not contain (case-sensitive where they are acronyms). */
const LEAKS = [/DB/, /CACHE/, /D1/, /KV/, /binding/i, /SELECT/i, /INSERT/i, /sql/i, /stack/i, /Error:/, /panic/i, /wasm/i, /unreachable/i];

/** Network errors of a client still writing a body the Worker chose not to read. */
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

async function send(app, spec, client, ctx) {
  const headers = new Headers(spec.headers ?? {});
  headers.set("Origin", ORIGIN);
  if (spec.stream) {
    // A chunked body without Content-Length: `spec.stream` bytes, then it stalls and never
    // ends. A Worker that waited for the whole body would never answer.
    if (spec.admin) headers.set("Authorization", `Bearer ${spec.admin === true ? ADMIN_TOKEN : spec.admin}`);
    if (spec.session) headers.set("Authorization", `Bearer ${spec.session}`);
    headers.set("CF-Connecting-IP", client);
    ctx.pulled = 0;
    const body = new ReadableStream({
      pull(c) {
        if (ctx.pulled >= spec.stream) return new Promise(() => {});
        const n = Math.min(16 * KIB, spec.stream - ctx.pulled);
        ctx.pulled += n;
        c.enqueue(new Uint8Array(n).fill(0x20));
      },
    });
    let timer;
    const never = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer: the Worker waited for a body that never ends")), 10_000);
    });
    try {
      const res = await Promise.race([
        app.mf.dispatchFetch(`http://127.0.0.1${spec.path}`, { method: spec.method, headers, body, duplex: "half" }),
        never,
      ]);
      return await received(res);
    } finally {
      clearTimeout(timer);
    }
  }
  // When the Worker answers without reading a large body (as it should), workerd may close
  // the connection while the client is still writing it; the client then sees a reset
  // instead of the answer. That is transport, not the Worker: send again (at most 3 times).
  for (let attempt = 1; ; attempt++) {
    try {
      return await received(await app.fetch(spec.path, { ...spec, headers, client }));
    } catch (e) {
      const code = e.cause?.code ?? e.code;
      if (attempt >= 3 || !RESET.has(code)) throw e;
    }
  }
}

async function received(res) {
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = undefined;
  }
  return { res, status: res.status, text, body };
}

/** The observed outcome, as it goes into SECURITY.md. */
function outcome(row, r, detail) {
  let s = String(r.status);
  if (r.status >= 400 && r.body?.code) s += ` ${r.body.code}`;
  for (const name of Object.keys(row.expect.headers ?? {})) {
    s += `, ${name}: ${r.res.headers.get(name) ?? "(absent)"}`;
  }
  return detail ? `${s} ${detail}` : s;
}

const observed = new Map();
const opaqueBodies = new Map();

/** Assertions every response must pass, whatever the row. */
function universal(row, r, ctx, spec) {
  const h = r.res.headers;
  const where = `${row.route} / ${row.situation}: ${r.status} ${r.text.slice(0, 300)}`;
  if (r.status === 204) {
    expect(r.text, where).toBe("");
  } else {
    expect(h.get("content-type"), where).toMatch(/^application\/json/);
    expect(r.body, `${where} (not JSON)`).not.toBeUndefined();
  }
  expect(() => timing(r.res), where).not.toThrow();
  expect(h.get("X-Content-Type-Options"), where).toBe("nosniff");
  expect(h.get("Access-Control-Allow-Origin"), where).toBeNull();
  expect(h.get("Access-Control-Allow-Credentials"), where).toBeNull();
  const corsOn = Boolean(WORKERS[row.worker ?? "normal"].vars?.ALLOWED_ORIGINS);
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
 * The rate-limit fields: on a limited route's counted responses (all but a 5xx, which may
 * come before counting), both draft-11 fields for the route's group, and the legacy ones
 * (on by default) with the same numbers; on unlimited routes and the router's answers, none.
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
  const policy = new RegExp(`^"${group}";q=(\\d+);w=(\\d+)$`).exec(h.get("RateLimit-Policy") ?? "");
  const left = new RegExp(`^"${group}";r=(\\d+);t=(\\d+)$`).exec(h.get("RateLimit") ?? "");
  expect(policy, `${where}: RateLimit-Policy ${h.get("RateLimit-Policy")}`).not.toBeNull();
  expect(left, `${where}: RateLimit ${h.get("RateLimit")}`).not.toBeNull();
  expect([h.get("RateLimit-Limit"), h.get("RateLimit-Remaining"), h.get("RateLimit-Reset")], where).toEqual([policy[1], left[1], left[2]]);
}

async function runRow(row, index) {
  const app = await worker(row.worker ?? "normal");
  const ctx = { ...((row.setup ? await row.setup(app) : null) ?? {}) };
  const spec = typeof row.request === "function" ? row.request(ctx) : row.request;
  const client = app.newClient();
  const n = spec.repeat ?? 1;
  let r;
  let i = 0;
  while (i < n) {
    i += 1;
    r = await send(app, spec, client, ctx);
    universal(row, r, ctx, spec);
    if (r.status !== row.expect.status) break;
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
const cell = (s) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function renderTable() {
  const lines = [
    "| Route | Input or fault | Observed outcome |",
    "|---|---|---|",
    ...CASES.map((row, i) => `| \`${cell(row.route)}\` | ${cell(row.situation)} | ${cell(observed.get(i))} |`),
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
    const operations = Object.entries(OPENAPI.paths).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
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
      const w = await boot({ kv, d1, adminToken: token, vars: { LOG_LEVEL: "info" }, onLog: (chunk) => (log += chunk) });
      try {
        const call = async (path, init = {}) => {
          const res = await w.mf.dispatchFetch(`http://127.0.0.1${path}`, init);
          return { status: res.status, text: await res.text() };
        };
        const admin = { Authorization: `Bearer ${token}` };
        const secrets = [token];
        made = await call("/sessions", {
          method: "POST",
          headers: admin,
          body: JSON.stringify({ userId: "logprobe", email: "logprobe@example.com" }),
        });
        if (made.status === 201) secrets.push(JSON.parse(made.text).sessionId);
        secrets.push(stranger);
        for (const id of secrets.slice(1)) {
          await call("/sessions/current", { headers: { Authorization: `Bearer ${id}` } });
          await call("/prefs", { headers: { Cookie: `session=${id}` } });
          await call("/prefs", { method: "PATCH", headers: { Authorization: `Bearer ${id}` }, body: '{"theme":"dark"}' });
          await call("/sessions/current", { method: "DELETE", headers: { Authorization: `Bearer ${id}` } });
        }
        await call("/admin/sessions", { headers: admin });
        await call("/admin/config", { method: "PATCH", headers: admin, body: "{bad" });
        await call("/admin/config", { method: "PATCH", headers: { Authorization: `Bearer ${token}x` }, body: "{}" });
        await call("/admin/users/logprobe/sessions", { method: "DELETE", headers: admin });
        // Let the runtime flush its output.
        await new Promise((r) => setTimeout(r, 300));
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
