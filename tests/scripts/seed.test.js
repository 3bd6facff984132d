// @ts-check
// `npm run seed` keeps the config's history true, with the real wrangler on local state: on a
// new deployment the seed goes to KV as version 0; once D1 has a config history, a reset
// records the seed as D1's next version and tags the KV copy with it, and an absent
// config:app is restored from D1's newest version rather than from the seed.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

/** @type {{ key: string, value: string }[]} */
const SEED = JSON.parse(readFileSync(join(ROOT, "seed-data.json"), "utf8"));
const SEED_CONFIG = String(SEED.find((e) => e.key === "config:app")?.value);
/** @type {string} */
let dir;
/** @type {string} */
let state;

/**
 * Runs a command in the copy, with the project's tools on PATH.
 * @param {string} command @param {string[]} args
 */
function run(command, args) {
  const r = spawnSync(command, args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
/** @param {string[]} args */
const wrangler = (args) => run("wrangler", [...args, "--local", "--persist-to", state]);
/** @param {string[]} args */
const seed = (...args) => run("node", [join(ROOT, "scripts/seed.mjs"), "--local", "--persist-to", state, ...args]);
/** @param {string} sql @returns {any[]} */
function rows(sql) {
  const r = wrangler(["d1", "execute", "DB", "--json", "--command", sql]);
  expect(r.status, r.out).toBe(0);
  return JSON.parse(r.out.slice(r.out.indexOf("[")))[0].results;
}
/** config:app in local KV: its value and metadata. */
function kvConfig() {
  const list = wrangler(["kv", "key", "list", "--binding", "CACHE"]);
  expect(list.status, list.out).toBe(0);
  const keys = JSON.parse(list.out.slice(list.out.indexOf("[")));
  const entry = keys.find((/** @type {{ name: string }} */ k) => k.name === "config:app");
  if (!entry) return null;
  const get = wrangler(["kv", "key", "get", "config:app", "--binding", "CACHE", "--text"]);
  expect(get.status, get.out).toBe(0);
  return { value: get.out.trim(), metadata: entry.metadata ?? null };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "edgestate-seed-"));
  state = join(dir, "state");
  for (const f of ["wrangler.toml", "seed-data.json", "migrations"]) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
  const migrated = run("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state]);
  expect(migrated.status, migrated.out).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("npm run seed and the config's history", () => {
  it("a new deployment (no history): the seed goes to KV as it is, version 0, and D1 stays empty", () => {
    const r = seed();
    expect(r.status, r.out).toBe(0);
    expect(kvConfig()).toEqual({ value: SEED_CONFIG, metadata: null });
    expect(rows("SELECT COUNT(*) AS n FROM config_history")[0].n).toBe(0);
  });

  it("with a history, a reset records the seed as the next version and tags KV's copy with it", () => {
    rows(
      "INSERT INTO config_history (version, at, actor, action, base_version, change, document) " +
        `VALUES (1, 1, 'admin', 'patch', 0, '{"maintenanceMode":true}', '{"maintenanceMode":true}')`,
    );
    const r = seed();
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/recorded as config version 2/);
    const head = rows("SELECT version, actor, action, base_version, document FROM config_history ORDER BY version DESC LIMIT 1")[0];
    expect(head).toEqual({ version: 2, actor: "seed", action: "put", base_version: 1, document: SEED_CONFIG });
    expect(kvConfig()).toEqual({ value: SEED_CONFIG, metadata: { version: 2 } });
  });

  it("an absent config:app is restored from D1's newest version, not from seed-data.json", () => {
    rows(
      "INSERT INTO config_history (version, at, actor, action, base_version, change, document) " +
        `VALUES (3, 3, 'admin', 'put', 2, '{"cacheTtlSeconds":77}', '{"cacheTtlSeconds":77}')`,
    );
    const deleted = wrangler(["kv", "key", "delete", "config:app", "--binding", "CACHE"]);
    expect(deleted.status, deleted.out).toBe(0);
    const r = seed("--missing");
    expect(r.status, r.out).toBe(0);
    expect(kvConfig()).toEqual({ value: '{"cacheTtlSeconds":77}', metadata: { version: 3 } });
    expect(rows("SELECT MAX(version) AS v FROM config_history")[0].v).toBe(3);
    const again = seed("--missing");
    expect(again.out).toMatch(/already set, left as they are/);
  });
});
