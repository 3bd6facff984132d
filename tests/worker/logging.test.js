// @ts-check
// Logs have a level (LOG_LEVEL in [vars]) and are objects whose fields Workers Logs indexes.
// At the default level (warn) a request that goes well logs nothing, since the platform
// already logs every invocation; degraded work logs a warning and every 5xx its cause. At
// info each request adds one line with its route, status and storage work.
//
// Absence is checked after a barrier: the last request logs an error, and once that line is
// in the output, every line of the earlier requests would be too.
import { describe, expect, it } from "vitest";
import { eventually, timing } from "../helpers.js";
import { TestApp, spawnApp, unknownSessionId } from "../app.js";

/**
 * The objects the runtime printed, as the text of each (a short object on one line, a longer
 * one as a `{` … `}` block), less the
 * first-request self-check's warning that D1 is missing (these Workers run without D1 on
 * purpose: it makes the barrier's 5xx).
 * @param {string} log
 */
function entries(log) {
  const all = log.match(/^\{.*\}$|^\{[\s\S]*?^\}$/gm) ?? [];
  return all.filter((e) => !e.includes('D1 binding "DB" is missing'));
}

/**
 * Boots with `vars`, runs `requests`, then the barrier; returns the printed objects.
 * @param {{ vars: Record<string, string>, kv?: boolean, d1?: boolean }} options
 * @param {(w: TestApp) => Promise<void>} requests
 */
async function logsOf({ vars, kv = true, d1 = false }, requests) {
  let log = "";
  const w = await spawnApp({ kv, d1, vars, onLog: (line) => (log += line) });
  try {
    await requests(w);
    // The barrier: D1 is absent, so an unknown session is a 503 whose cause is logged.
    const barrier = await w.getCurrentSession(unknownSessionId());
    expect(barrier.status).toBe(503);
    const seen = await eventually(() => entries(log).some((e) => e.includes("level: 'error'")));
    expect(seen, `no error line in:\n${log}`).toBe(true);
  } finally {
    await w.dispose();
  }
  return entries(log);
}

/** @type {Record<string, import("../helpers.js").Timing>} */
const served = {};
/**
 * Requests that go well (or are refused as the contract says); their Server-Timing by path.
 * @param {TestApp} w
 */
async function routine(w) {
  /** @type {[string, () => Promise<import("../helpers.js").Answer>, number][]} */
  const requests = [
    ["/health", () => w.getHealth(), 200],
    ["/config", () => w.getConfig(), 200],
    ["/flags/newCheckout", () => w.getFlag("newCheckout"), 200],
    ["/nope", () => w.json("/nope"), 404], // no operation: the router's 404
  ];
  for (const [path, call, status] of requests) {
    const r = await call();
    expect(r.status, path).toBe(status);
    served[path] = timing(r.res);
  }
  const bad = await w.getUsers("{bad");
  expect(bad.status).toBe(400);
}

describe("logs", () => {
  it("at the default level, requests that go well log nothing and a 5xx logs its cause once", async () => {
    const logged = await logsOf({ vars: {} }, routine);
    expect(logged, logged.join("\n")).toHaveLength(1);
    const [line] = logged;
    expect(line).toContain("level: 'error'");
    expect(line).toContain("code: 'unavailable'");
    expect(line).toContain("route: '/sessions/current'");
    expect(line).toContain("D1 binding is not configured");
  });

  it("at info, each request logs one line with method, route, path, status and storage work", async () => {
    const logged = await logsOf({ vars: { LOG_LEVEL: "info" } }, routine);
    const info = logged.filter((e) => e.includes("level: 'info'"));
    expect(info.map((e) => /msg: '([^']*)'/.exec(e)?.[1])).toEqual([
      "GET /health 200",
      "GET /config 200",
      "GET /flags/:name 200",
      "GET /nope 404",
      "POST /users/batch 400",
      "GET /sessions/current 503",
    ]);
    const [health, config, flag, nope] = info;
    for (const field of ["method: 'GET'", "route: '/health'", "path: '/health'", "status: 200", "kvReads: 0", "d1Queries: 0"]) {
      expect(health).toContain(field);
    }
    const st = served["/config"];
    expect(config).toMatch(new RegExp(`kvReads: ${st.reads}\\b`)); // the response's Server-Timing counts
    expect(config).toMatch(new RegExp(`d1Queries: ${st.queries}\\b`));
    expect(flag).toContain("path: '/flags/newCheckout'");
    expect(nope).toContain("route: null");
  });

  it("at error, degraded work that was handled logs nothing", async () => {
    // Without KV, /config serves the defaults and warns at the default level.
    /** @param {TestApp} w */
    const requests = async (w) => {
      const r = await w.getConfig();
      expect(r.status).toBe(200);
    };
    const warned = await logsOf({ vars: {}, kv: false }, requests);
    expect(warned.some((e) => e.includes("level: 'warn'") && e.includes("config read failed"))).toBe(true);
    const quiet = await logsOf({ vars: { LOG_LEVEL: "error" }, kv: false }, requests);
    expect(quiet.filter((e) => !e.includes("level: 'error'")), quiet.join("\n")).toEqual([]);
  });

  it("a refused admin token is one warning naming the client, never the token; throttled 429s and the right token log nothing", async () => {
    const wrong = "wrong-admin-token-that-is-never-logged";
    let client = "";
    /** @param {TestApp} w */
    const requests = async (w) => {
      client = w.newClient();
      const statuses = [];
      for (let i = 0; i < 32; i++) statuses.push((await w.getHealth({ deep: 1 }, { admin: wrong, client })).status);
      expect(statuses).toEqual([...Array(30).fill(401), 429, 429]);
      const right = await w.getHealth({ deep: 1 }, { admin: true, client: w.newClient() });
      expect(right.status).toBe(200);
    };
    const logged = await logsOf({ vars: {} }, requests);
    const refused = logged.filter((e) => e.includes("admin token refused"));
    expect(refused, logged.join("\n")).toHaveLength(30);
    for (const line of refused) {
      expect(line).toContain("level: 'warn'");
      expect(line).toContain(`client: '${client}'`);
    }
    expect(logged.join("\n")).not.toContain(wrong);
  });

  it("an unknown LOG_LEVEL is named in one warning and the default applies", async () => {
    const logged = await logsOf({ vars: { LOG_LEVEL: "chatty" } }, routine);
    const warnings = logged.filter((e) => e.includes("level: 'warn'"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("LOG_LEVEL chatty is not error, warn or info");
    expect(logged.filter((e) => e.includes("level: 'info'"))).toEqual([]);
  });
});
