// @ts-check
// The first request of an isolate checks the set-up and logs each problem once, as a warning
// that names its fix: a missing binding, a missing ADMIN_TOKEN, a D1 without the schema,
// an ALLOWED_ORIGINS entry that is not an exact origin. Later requests add nothing, and the
// check adds no storage work to any response.
import { afterEach, describe, expect, it } from "vitest";
import { NO_WORK, eventually, timing } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @type {TestApp | undefined} */
let w;
afterEach(async () => {
  await w?.dispose();
  w = undefined;
});

/**
 * Boots with `opts`, captures the runtime's output, serves `n` requests.
 * @param {Parameters<typeof spawnApp>[0]} opts
 * @param {number} [n]
 */
async function bootAndServe(opts, n = 5) {
  let log = "";
  const app = await spawnApp({ ...opts, onLog: (line) => (log += line) });
  w = app;
  const responses = [];
  for (let i = 0; i < n; i++) responses.push(await app.getHealth());
  return { app, log: () => log, responses };
}

/** @param {string} text @param {string} needle */
const count = (text, needle) => text.split(needle).length - 1;

describe("the first-request self-check", () => {
  it("logs a missing ADMIN_TOKEN and an unmigrated D1 once each, naming the fix", async () => {
    const { app, log, responses } = await bootAndServe({ adminToken: null, migrate: false });
    await eventually(() => log().includes("lacks the tables"));
    expect(count(log(), "ADMIN_TOKEN is not set")).toBe(1);
    expect(log()).toMatch(/ADMIN_TOKEN is not set[^\n]*\.dev\.vars[^\n]*wrangler secret put ADMIN_TOKEN/);
    expect(count(log(), "lacks the tables")).toBe(1);
    expect(log()).toMatch(/lacks the tables [^\n]*sessions[^\n]*wrangler d1 migrations apply DB/);
    for (const r of responses) {
      expect(r.status).toBe(200);
      expect(timing(r.res)).toEqual(NO_WORK);
    }
    // Later requests, of any route, log nothing more.
    await app.getConfig();
    await app.getHealth();
    expect(count(log(), "ADMIN_TOKEN is not set")).toBe(1);
    expect(count(log(), "lacks the tables")).toBe(1);
  });

  it("logs missing bindings and ignored origins once each", async () => {
    const { log } = await bootAndServe({ kv: false, d1: false, vars: { ALLOWED_ORIGINS: "*, https://app.example/" } });
    await eventually(() => log().includes("ALLOWED_ORIGINS"));
    expect(count(log(), 'KV binding "CACHE" is missing')).toBe(1);
    expect(log()).toMatch(/KV binding "CACHE" is missing[^\n]*\[\[kv_namespaces\]\]/);
    expect(count(log(), 'D1 binding "DB" is missing')).toBe(1);
    expect(log()).toMatch(/D1 binding "DB" is missing[^\n]*\[\[d1_databases\]\]/);
    expect(count(log(), 'ALLOWED_ORIGINS: ignoring "*"')).toBe(1);
    expect(count(log(), 'ALLOWED_ORIGINS: ignoring "https://app.example/"')).toBe(1);
  });

  it("logs a short ADMIN_TOKEN once, saying how to make a strong one; deep health reports it without degrading", async () => {
    const { app, log } = await bootAndServe({ adminToken: "x".repeat(42) });
    await eventually(() => log().includes("ADMIN_TOKEN is shorter"));
    expect(count(log(), "ADMIN_TOKEN is shorter than 43 characters")).toBe(1);
    expect(log()).toMatch(/ADMIN_TOKEN is shorter than 43 characters[^\n]*openssl rand -base64 32/);
    const r = await app.getHealth({ deep: 1 }, { admin: true });
    expect(r.body).toMatchObject({ status: "ok", adminToken: true, adminTokenStrong: false });
  });

  it("logs nothing for a complete set-up", async () => {
    // The schema check runs after the first response and says, at LOG_LEVEL info, when it
    // found nothing (at the default level, warn, a complete set-up logs nothing at all).
    const vars = { ALLOWED_ORIGINS: "https://app.example", LOG_LEVEL: "info" };
    const { log } = await bootAndServe({ vars });
    expect(await eventually(() => log().includes("D1 schema complete"))).toBe(true);
    expect(count(log(), "self-check:")).toBe(1);
    expect(log()).not.toMatch(/is missing|is not set|is shorter|lacks the tables|schema version|ignoring|self-check failed/);
  });
});
