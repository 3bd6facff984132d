// @ts-check
// npm run dev as a newcomer uses it (scripts/dev.sh, real wrangler dev on 127.0.0.1): admin
// changes survive a restart (the seed only fills in absent keys), a second start on a busy
// port or on the same local state fails within seconds and leaves the running server's state
// alone, `npm run seed` is the explicit reset, and the clone stays clean.
//
// Ports: EDGESTATE_TEST_DEV_PORT (the server, default 8833) and EDGESTATE_TEST_DEV_PORT_2 (the
// second start, refused; default 8834). Set them when those ports are taken on the machine.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, devServerTurn, devServerUp, devVarsAdminToken, portFromEnv, startDevServer } from "../helpers.js";
import { connectApp } from "../app.js";

/** @typedef {import("../helpers.js").DevServer} DevServer */

// Each start of `wrangler dev` builds the Worker first (wrangler.toml [build]): the test
// waits for it, up to the timeout below.
const PORT = portFromEnv("EDGESTATE_TEST_DEV_PORT", 8833);
const OTHER_PORT = portFromEnv("EDGESTATE_TEST_DEV_PORT_2", 8834);
const state = mkdtempSync(join(tmpdir(), "edgestate-dev-"));
/** @type {Set<import("node:child_process").ChildProcess>} */
const running = new Set();
const gitStatus = () => spawnSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).stdout;
/** @type {string} */
let cleanBefore;
let release = () => {};

/**
 * `bash scripts/dev.sh args…` on this file's local state; every server started is stopped at
 * the end.
 * @param {string[]} args @param {Record<string, string>} [env]
 */
function start(args, env = {}) {
  const server = startDevServer(args, state, env);
  running.add(server.child);
  server.exited.then(() => running.delete(server.child));
  return server;
}

/** @param {DevServer} server */
const stop = (server) => server.stop();

const BASE = `http://127.0.0.1:${PORT}`;
/** @param {DevServer} server */
const up = (server) => devServerUp(BASE, server);
/** The typed client of the dev server (every exchange checked against the contract). */
const app = () => connectApp(BASE, { adminToken: devVarsAdminToken() });
/** @param {string} name */
const flag = async (name) => (await app().getFlag(name)).body.enabled;

beforeAll(async () => {
  release = await devServerTurn();
  cleanBefore = gitStatus();
}, 300_000);
afterAll(async () => {
  for (const child of running) {
    try {
      process.kill(-(/** @type {number} */ (child.pid)), "SIGKILL");
    } catch {}
  }
  rmSync(state, { recursive: true, force: true });
  release();
});

describe("npm run dev", () => {
  it("keeps admin changes across restarts; a second start fails fast and touches nothing", async () => {
    const first = start(["--port", String(PORT)]);
    await up(first);
    expect(first.out()).toMatch(/KV seed \(local\): wrote config:app \(absent\)/);
    const patched = await app().patchConfig({ featureFlags: { devLoopFlag: true } });
    expect(patched.status, patched.text).toBe(200);
    expect(await flag("devLoopFlag")).toBe(true);

    // The same port: refused before any set-up, migration or seeding.
    const busy = start([], { PORT: String(PORT) });
    expect(await busy.exited).toBe(1);
    expect(busy.out()).toMatch(new RegExp(`port ${PORT} on 127\\.0\\.0\\.1 is in use`));
    expect(busy.out()).not.toMatch(/KV seed|migrations|tools ready|wrangler/);
    // Another port, the same local state: refused too, as early.
    const same = start([`--port=${OTHER_PORT}`]);
    expect(await same.exited).toBe(1);
    expect(same.out()).toMatch(new RegExp(`another dev server \\(pid \\d+, port ${PORT}\\) serves the local state`));
    expect(same.out()).not.toMatch(/KV seed|migrations|tools ready/);
    expect(await flag("devLoopFlag")).toBe(true);

    await stop(first);
    const again = start(["--port", String(PORT)]);
    await up(again);
    expect(again.out()).toMatch(/config:app already set, left as they are/);
    expect(await flag("devLoopFlag")).toBe(true);
    await stop(again);
    expect(gitStatus()).toBe(cleanBefore);
  }, 600_000); // two `wrangler dev` starts, each running the [build] step

  it("npm run seed resets the local config and says so", () => {
    const r = spawnSync("bash", ["scripts/seed.sh"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, PERSIST_DIR: state } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/reset config:app to seed-data\.json, overwriting any admin changes/);
    const get = spawnSync(
      "node_modules/.bin/wrangler",
      ["kv", "key", "get", "config:app", "--binding", "CACHE", "--local", "--persist-to", state],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    expect(JSON.parse(get.stdout).featureFlags).toEqual({ newCheckout: true, darkLaunch: false });
  });

  it("rejects a port that is not a number, before anything else", async () => {
    const bad = start(["--port", "eighty"]);
    expect(await bad.exited).toBe(2);
    expect(bad.out()).toMatch(/must be a number from 1 to 65535/);
  });
});
