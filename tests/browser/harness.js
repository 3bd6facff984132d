// @ts-check
// The console's test bench. The Worker is served the way users run it: `npm run dev`'s
// script (scripts/dev.sh: set-up, local D1 migrations, the KV seed, .dev.vars, then
// `wrangler dev`, which runs the [build] step and serves assets/ as Workers Static Assets
// with assets/_headers) on 127.0.0.1, with fresh local state. The browser is Debian's
// Chromium (/usr/bin/chromium, installed by `bash scripts/setup.sh --browser`), driven by
// playwright-core as a library: nothing is downloaded.
//
// Port: EDGESTATE_TEST_BROWSER_PORT (default 8870). Set it when that port is taken on the
// machine. Chromium: CHROMIUM (default /usr/bin/chromium).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, devServerUp, devVarsAdminToken, portFromEnv, startDevServer } from "../helpers.js";
import { connectApp } from "../app.js";

export const PORT = portFromEnv("EDGESTATE_TEST_BROWSER_PORT", 8870);
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

/** `npm run dev -- --port PORT` on fresh local state; resolves once /health answers. */
export async function serve() {
  const state = mkdtempSync(join(tmpdir(), "edgestate-console-"));
  const server = startDevServer(["--port", String(PORT)], state);
  const stop = async () => {
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  };
  try {
    await devServerUp(BASE, server);
  } catch (e) {
    await stop();
    throw e;
  }
  // The token a newcomer pastes: the one in .dev.vars (npm run dev creates it if absent).
  const token = devVarsAdminToken();

  /** The typed client, from outside the browser: `admin` operations send the token. */
  const app = connectApp(BASE, { adminToken: token });

  /**
   * Writes a KV key into the served local state, as `wrangler kv key put --local` does.
   * @param {string} key @param {string} value
   */
  function kvPut(key, value) {
    const r = spawnSync(
      join(ROOT, "node_modules/.bin/wrangler"),
      ["kv", "key", "put", key, value, "--binding", "CACHE", "--local", "--persist-to", state, "--ttl", "3600"],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    if (r.status !== 0) throw new Error(`wrangler kv key put failed:\n${r.stdout}${r.stderr}`);
  }

  return { token, app, kvPut, stop, output: server.out };
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
