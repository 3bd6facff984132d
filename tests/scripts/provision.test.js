// @ts-check
// npm run provision against a stub wrangler on PATH (tests/scripts/stub/wrangler), offline:
// the stub keeps an account in a JSON file, records every call, and answers as wrangler 4.164
// does. Provisioning creates each resource once, writes the ids into wrangler.toml, applies
// the migrations, seeds KV and sets ADMIN_TOKEN; a second run creates nothing and changes
// nothing; admin changes to the config survive; staging gets resources of its own.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ROOT, migrationFiles } from "../helpers.js";

/**
 * @typedef {object} Account What the stub keeps (tests/scripts/stub/wrangler).
 * @property {{ title: string, id: string, values: Record<string, string> }[]} kv
 * @property {{ name: string, uuid: string, migrations: string[] }[]} d1
 * @property {Record<string, { secrets: Record<string, string> }>} workers
 */

const STUB = join(ROOT, "tests/scripts/stub");
/** @type {{ key: string, value: string }[]} */
const SEED = JSON.parse(readFileSync(join(ROOT, "seed-data.json"), "utf8"));
/** @type {string} */
let dir;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "edgestate-provision-"));
  for (const f of ["wrangler.toml", "seed-data.json", "migrations"]) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs a command in the copy, with the stub first on PATH.
 * @param {string} cmd @param {string[]} args @param {Record<string, string>} [env]
 */
function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd: dir,
    encoding: "utf8",
    input: "",
    env: { ...process.env, PATH: `${STUB}:${process.env.PATH}`, WRANGLER_STUB_STATE: join(dir, "account.json"), ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
/** @param {string[]} [args] @param {Record<string, string>} [env] */
const provision = (args = [], env = {}) => run(process.execPath, [join(ROOT, "scripts/provision.mjs"), ...args], env);
/** @returns {Account} */
const account = () => JSON.parse(readFileSync(join(dir, "account.json"), "utf8"));
const calls = () =>
  readFileSync(join(dir, "account.json.calls"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).args.join(" "));
const toml = () => readFileSync(join(dir, "wrangler.toml"), "utf8");
const creates = () => calls().filter((c) => / create |^secret put|^kv bulk put/.test(c));

/** An admin token provision accepts (at least 43 characters), told apart by `name`. @param {string} name */
const token = (name) => `${name}-${"x".repeat(43)}`;

describe("npm run provision", () => {
  it("creates every resource once and writes their ids into wrangler.toml", () => {
    const r = provision([], { ADMIN_TOKEN: token("first-token") });
    expect(r.status, r.out).toBe(0);
    const acc = account();
    expect(acc.kv.map((n) => n.title)).toEqual(["edgestate-cache"]);
    expect(acc.d1.map((d) => d.name)).toEqual(["edgestate"]);
    expect(creates()).toEqual([
      "kv namespace create edgestate-cache",
      "d1 create edgestate",
      expect.stringMatching(/^kv bulk put \S+ --binding CACHE --remote$/),
      "secret put ADMIN_TOKEN --env=",
    ]);
    expect(toml()).toContain(`id = "${acc.kv[0].id}"`);
    expect(toml()).toContain(`database_id = "${acc.d1[0].uuid}"`);
    expect(acc.d1[0].migrations).toEqual(migrationFiles());
    expect(acc.kv[0].values["config:app"]).toBe(SEED.find((e) => e.key === "config:app")?.value);
    expect(acc.workers.edgestate.secrets.ADMIN_TOKEN).toBe(token("first-token"));
    expect(r.out).toMatch(/ready: npm run deploy/);
    // The staging tables keep their placeholders.
    expect(toml().match(/0{32}/g)).toHaveLength(1);
  });

  it("a second run creates nothing, writes nothing and leaves wrangler.toml byte-identical", () => {
    expect(provision([], { ADMIN_TOKEN: token("first-token") }).status).toBe(0);
    const before = { toml: toml(), account: account(), calls: calls().length };
    const r = provision();
    expect(r.status, r.out).toBe(0);
    expect(toml()).toBe(before.toml);
    expect(account()).toEqual(before.account);
    const again = calls().slice(before.calls);
    expect(again.filter((c) => / create |^secret put|^kv bulk put/.test(c))).toEqual([]);
    expect(again).toContain("d1 migrations apply DB --remote");
    expect(r.out).toMatch(/No migrations to apply/);
    expect(r.out).toMatch(/config:app already set/);
    expect(r.out).toMatch(/ADMIN_TOKEN is set for edgestate; left as it is/);
  });

  it("keeps a config an admin changed, and applies only a migration added later", () => {
    expect(provision([], { ADMIN_TOKEN: token("t") }).status).toBe(0);
    const acc = account();
    acc.kv[0].values["config:app"] = '{"maintenanceMode":true}';
    writeFileSync(join(dir, "account.json"), JSON.stringify(acc));
    writeFileSync(join(dir, "migrations/9999_later.sql"), "CREATE TABLE later (x INTEGER);\n");
    const r = provision();
    expect(r.status, r.out).toBe(0);
    expect(account().kv[0].values["config:app"]).toBe('{"maintenanceMode":true}');
    expect(account().d1[0].migrations.at(-1)).toBe("9999_later.sql");
  });

  it("adopts resources that exist under their names instead of creating them again", () => {
    writeFileSync(
      join(dir, "account.json"),
      JSON.stringify({
        kv: [{ id: "a".repeat(32), title: "edgestate-cache", values: {} }],
        d1: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "edgestate", migrations: [] }],
        workers: {},
      }),
    );
    const r = provision([], { ADMIN_TOKEN: token("t") });
    expect(r.status, r.out).toBe(0);
    expect(calls().filter((c) => / create /.test(c))).toEqual([]);
    expect(toml()).toContain(`id = "${"a".repeat(32)}"`);
    expect(toml()).toContain('database_id = "11111111-2222-3333-4444-555555555555"');
  });

  it("--env staging provisions staging's own resources into [env.staging]", () => {
    expect(provision([], { ADMIN_TOKEN: token("prod") }).status).toBe(0);
    const prodToml = toml();
    const r = provision(["--env", "staging"], { ADMIN_TOKEN: token("staging-token") });
    expect(r.status, r.out).toBe(0);
    const acc = account();
    expect(acc.kv.map((n) => n.title).sort()).toEqual(["edgestate-cache", "edgestate-staging-cache"]);
    expect(acc.d1.map((d) => d.name).sort()).toEqual(["edgestate", "edgestate-staging"]);
    expect(acc.workers["edgestate-staging"].secrets.ADMIN_TOKEN).toBe(token("staging-token"));
    const staging = toml().slice(toml().indexOf("[[env.staging.kv_namespaces]]"));
    expect(staging).toContain(`id = "${acc.kv.find((n) => n.title === "edgestate-staging-cache")?.id}"`);
    expect(toml().slice(0, toml().indexOf("[env.staging"))).toBe(prodToml.slice(0, prodToml.indexOf("[env.staging")));
    expect(calls()).toContain("d1 migrations apply DB --remote --env staging");
    expect(provision(["--env", "staging"]).status).toBe(0);
    expect(account()).toEqual(acc);
  });

  it("without a TTY or ADMIN_TOKEN it stops with what to do, and a run with the token finishes", () => {
    const r = provision();
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/ADMIN_TOKEN is not set for the Worker: run again with ADMIN_TOKEN=/);
    expect(account().workers).toEqual({});
    expect(provision([], { ADMIN_TOKEN: token("late") }).status).toBe(0);
    expect(account().workers.edgestate.secrets.ADMIN_TOKEN).toBe(token("late"));
    expect(creates().filter((c) => / create /.test(c))).toHaveLength(2);
  });

  it("refuses an admin token shorter than 32 random bytes (43 characters) and sets none", () => {
    const r = provision([], { ADMIN_TOKEN: "x".repeat(42) });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/ADMIN_TOKEN is 42 characters; the admin token must be at least 43/);
    expect(calls().filter((c) => /^secret put/.test(c))).toEqual([]);
    expect(provision([], { ADMIN_TOKEN: "x".repeat(43) }).status).toBe(0);
  });

  it("--rotate-admin-token replaces the secret", () => {
    expect(provision([], { ADMIN_TOKEN: token("old") }).status).toBe(0);
    expect(provision(["--rotate-admin-token"], { ADMIN_TOKEN: token("new") }).status).toBe(0);
    expect(account().workers.edgestate.secrets.ADMIN_TOKEN).toBe(token("new"));
  });

  it("refuses an unknown environment, an unknown option and an id the account does not have", () => {
    let r = provision(["--env", "qa"]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/no \[env\.qa\]/);
    r = provision(["--bogus"]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/unknown option --bogus/);
    writeFileSync(join(dir, "wrangler.toml"), toml().replace(/id = "0{32}"/, `id = "${"f".repeat(32)}"`));
    r = provision([], { ADMIN_TOKEN: token("t") });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/names KV namespace f{32}, but the account has none/);
    expect(calls().filter((c) => / create /.test(c))).toEqual([]);
  });

  it("after it, the README's remote seed line runs as written; a preview_id would break it", () => {
    expect(provision([], { ADMIN_TOKEN: token("t") }).status).toBe(0);
    const line = /npx wrangler (kv bulk put seed-data\.json[^\n`]*--remote[^\n`]*)/.exec(readFileSync(join(ROOT, "README.md"), "utf8"));
    expect(line, "README has a remote kv bulk put line").not.toBeNull();
    const args = String(line?.[1]).trim().split(/\s+/);
    let r = run("wrangler", args);
    expect(r.status, r.out).toBe(0);
    writeFileSync(join(dir, "wrangler.toml"), toml().replace(/^(id = "[0-9a-f]{32}")$/m, `$1\npreview_id = "${"b".repeat(32)}"`));
    r = run("wrangler", args);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/has both an "id" and a "preview_id"/);
  });
});
