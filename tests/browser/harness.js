// The console's test bench. The Worker is served the way users run it: `npm run dev`'s
// script (scripts/dev.sh: set-up, local D1 migrations, the KV seed, .dev.vars, then
// `wrangler dev`, which runs the [build] step and serves assets/ as Workers Static Assets
// with assets/_headers) on 127.0.0.1:8870, with fresh local state. The browser is Debian's
// Chromium (/usr/bin/chromium, installed by `bash scripts/setup.sh --browser`), driven by
// playwright-core as a library: nothing is downloaded.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, eventually } from "../helpers.js";

export const PORT = 8870;
export const BASE = `http://127.0.0.1:${PORT}`;
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** Screenshots of each panel (git-ignored). */
export const SHOTS = join(ROOT, ".edgestate/screenshots");

// This machine's network is closed: without these, Chromium keeps trying its own services.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** `npm run dev -- --port 8870` on fresh local state; resolves once /health answers. */
export async function serve() {
  const state = mkdtempSync(join(tmpdir(), "edgestate-console-"));
  const child = spawn("bash", ["scripts/dev.sh", "--port", String(PORT)], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, PERSIST_DIR: state },
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((done) => child.on("exit", done));

  const stop = async () => {
    try {
      process.kill(-child.pid, "SIGINT");
    } catch {}
    const hard = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 10_000);
    await exited;
    clearTimeout(hard);
    rmSync(state, { recursive: true, force: true });
  };

  // Each start builds the Worker first (wrangler.toml [build]).
  const up = await eventually(async () => (await fetch(`${BASE}/health`).catch(() => null))?.ok, 280_000, 500);
  if (!up) {
    await stop();
    throw new Error(`npm run dev did not start on ${PORT}:\n${output}`);
  }
  // The token a newcomer pastes: the one in .dev.vars (npm run dev creates it if absent).
  const token = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(join(ROOT, ".dev.vars"), "utf8"))?.[1]?.trim();
  if (!token) throw new Error(".dev.vars sets no ADMIN_TOKEN");

  /** A request from outside the browser: `admin` sends the token, `session` a session id. */
  async function api(path, { method = "GET", body, admin = false, session, ifMatch } = {}) {
    const headers = {};
    if (admin) headers.Authorization = `Bearer ${token}`;
    if (session) headers.Authorization = `Bearer ${session}`;
    if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
    const res = await fetch(`${BASE}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const json = res.headers.get("content-type")?.startsWith("application/json") && text ? JSON.parse(text) : null;
    return { status: res.status, headers: res.headers, body: json, text };
  }

  /** Writes a KV key into the served local state, as `wrangler kv key put --local` does. */
  function kvPut(key, value) {
    const r = spawnSync(
      join(ROOT, "node_modules/.bin/wrangler"),
      ["kv", "key", "put", key, value, "--binding", "CACHE", "--local", "--persist-to", state, "--ttl", "3600"],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    if (r.status !== 0) throw new Error(`wrangler kv key put failed:\n${r.stdout}${r.stderr}`);
  }

  return { token, api, kvPut, stop, output: () => output };
}

/** Debian's Chromium, headless, with a fresh profile. */
export async function browser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: \`bash scripts/setup.sh --browser\` installs Debian's chromium package ` +
        "(or set CHROMIUM to a Chromium binary)",
    );
  }
  const profile = mkdtempSync(join(tmpdir(), "edgestate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1440, height: 900 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
