// npm run dev as a newcomer uses it (scripts/dev.sh, real wrangler dev on 127.0.0.1): admin
// changes survive a restart (the seed only fills in absent keys), a second start on a busy
// port or on the same local state fails within seconds and leaves the running server's state
// alone, `npm run seed` is the explicit reset, and the clone stays clean. Ports 8833-8834.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, devServerTurn, eventually } from "../helpers.js";

// Each start of `wrangler dev` builds the Worker first (wrangler.toml [build]): the test
// waits for it, up to the timeout below.
const PORT = 8833;
const OTHER_PORT = 8834;
const state = mkdtempSync(join(tmpdir(), "edgestate-dev-"));
const running = new Set();
const gitStatus = () => spawnSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).stdout;
let cleanBefore;
let release = () => {};

/** `bash scripts/dev.sh args…` in its own process group; resolves its exit. */
function start(args, env = {}) {
  const child = spawn("bash", ["scripts/dev.sh", ...args], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, PERSIST_DIR: state, ...env },
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((done) => child.on("exit", (code) => done(code)));
  running.add(child);
  exited.then(() => running.delete(child));
  return { child, exited, out: () => out };
}

async function stop(server) {
  try {
    process.kill(-server.child.pid, "SIGINT");
  } catch {}
  const timeout = setTimeout(() => {
    try {
      process.kill(-server.child.pid, "SIGKILL");
    } catch {}
  }, 10_000);
  await server.exited;
  clearTimeout(timeout);
}

const url = (path, port = PORT) => `http://127.0.0.1:${port}${path}`;
async function up(server, port = PORT) {
  const ok = await eventually(async () => (await fetch(url("/health", port)).catch(() => null))?.ok, 280_000, 500);
  if (!ok) throw new Error(`dev server did not start:\n${server.out()}`);
}
const adminToken = () => /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(ROOT, ".dev.vars"), "utf8"))[1].trim();
const flag = async (name) => (await (await fetch(url(`/flags/${name}`))).json()).enabled;

beforeAll(async () => {
  release = await devServerTurn();
  cleanBefore = gitStatus();
}, 300_000);
afterAll(async () => {
  for (const child of running) {
    try {
      process.kill(-child.pid, "SIGKILL");
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
    const patched = await fetch(url("/admin/config"), {
      method: "PATCH",
      headers: { Authorization: `Bearer ${adminToken()}` },
      body: JSON.stringify({ featureFlags: { devLoopFlag: true } }),
    });
    expect(patched.status).toBe(200);
    expect(await flag("devLoopFlag")).toBe(true);

    // The same port: refused before any set-up, migration or seeding.
    const busy = start([], { PORT: String(PORT) });
    expect(await busy.exited).toBe(1);
    expect(busy.out()).toMatch(/port 8833 on 127\.0\.0\.1 is in use/);
    expect(busy.out()).not.toMatch(/KV seed|migrations|tools ready|wrangler/);
    // Another port, the same local state: refused too, as early.
    const same = start([`--port=${OTHER_PORT}`]);
    expect(await same.exited).toBe(1);
    expect(same.out()).toMatch(/another dev server \(pid \d+, port 8833\) serves the local state/);
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
