// `npm run provision [-- --env staging] [-- --rotate-admin-token]`: everything a deploy
// needs, created once. Run from the project root, logged in (`npx wrangler login`) or with
// CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID) set. Each step checks before it acts,
// so a second run creates nothing and changes nothing:
//
//   1. the KV namespace for CACHE ("<worker>-cache"): found by title, else created;
//   2. the D1 database for DB (its database_name): found by name, else created;
//      both ids are written into wrangler.toml (the top level, or [env.<name>]);
//   3. D1 migrations applied at the edge (wrangler applies only the missing ones);
//   4. seed-data.json written to the edge's KV for keys that are absent;
//   5. the ADMIN_TOKEN secret, if the Worker has none: from the ADMIN_TOKEN environment
//      variable, else a prompt (empty: a random one of 32 bytes, shown once); a given token
//      shorter than 43 characters (32 random bytes in base64url) is refused.
//      --rotate-admin-token sets it even if one exists.
//
// Then `npm run deploy` (`-- --env staging`) uploads the Worker.
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { seed } from "./seed.mjs";
import {
  Stop,
  envArgs,
  hasEnv,
  isPlaceholder,
  jsonOutput,
  readBinding,
  readKey,
  say,
  wrangler,
  writeBinding,
} from "./lib.mjs";

const CONFIG = "wrangler.toml";
/** The shortest admin token provision sets: 32 random bytes written in base64url. */
const MIN_TOKEN_CHARS = 43;
const KV_BINDING = "CACHE";
const D1_BINDING = "DB";

/** What one environment is called and where its bindings live in wrangler.toml. */
function environment(toml, env) {
  const base = readKey(toml, "name");
  if (!base) throw new Stop(`${CONFIG} has no top-level name`);
  if (env && !hasEnv(toml, env)) throw new Stop(`${CONFIG} has no [env.${env}] tables`);
  const worker = env ? (readKey(toml, "name", `env.${env}`) ?? `${base}-${env}`) : base;
  const prefix = env ? `env.${env}.` : "";
  return { env, worker, kvTable: `${prefix}kv_namespaces`, d1Table: `${prefix}d1_databases` };
}

/** Writes `key = "id"` into the binding's table of wrangler.toml (if it differs). */
function recordId(where, table, binding, key, id) {
  const toml = readFileSync(CONFIG, "utf8");
  if (readBinding(toml, table, binding, key) === id) return false;
  writeFileSync(CONFIG, writeBinding(toml, table, binding, key, id));
  say(`wrote ${key} = "${id}" into ${CONFIG} [[${table}]] (binding ${binding}) for ${where}`);
  return true;
}

/**
 * One resource: the one wrangler.toml names, else the one with its name, else a new one.
 * `r`: {what, name, configured (id in wrangler.toml), list() → [{id, name}], create()}.
 */
function ensure(r) {
  const find = (all) => all.find((x) => x.id === r.configured) ?? all.find((x) => x.name === r.name);
  let found = find(r.list());
  if (found) {
    say(`${r.what} "${found.name}" exists (id ${found.id})`);
    return found.id;
  }
  if (!isPlaceholder(r.configured)) {
    throw new Stop(`${CONFIG} names ${r.what} ${r.configured}, but the account has none with that id (wrong account?)`);
  }
  r.create();
  found = r.list().find((x) => x.name === r.name);
  if (!found) throw new Stop(`wrangler created ${r.what} "${r.name}" but does not list it`);
  say(`${r.what} "${r.name}" created (id ${found.id})`);
  return found.id;
}

/** 1. The KV namespace of CACHE, titled "<worker>-cache". */
function kvNamespace(e) {
  const title = `${e.worker}-cache`;
  const id = ensure({
    what: "KV namespace",
    name: title,
    configured: readBinding(readFileSync(CONFIG, "utf8"), e.kvTable, KV_BINDING, "id"),
    list: () =>
      jsonOutput(wrangler(["kv", "namespace", "list"]).stdout, "wrangler kv namespace list").map((ns) => ({
        id: ns.id,
        name: ns.title,
      })),
    create: () => wrangler(["kv", "namespace", "create", title]),
  });
  recordId(e.worker, e.kvTable, KV_BINDING, "id", id);
}

/** 2. The D1 database of DB, named as its database_name says. */
function d1Database(e) {
  const toml = readFileSync(CONFIG, "utf8");
  const name = readBinding(toml, e.d1Table, D1_BINDING, "database_name");
  if (!name) throw new Stop(`${CONFIG} [[${e.d1Table}]] (binding ${D1_BINDING}) has no database_name`);
  const id = ensure({
    what: "D1 database",
    name,
    configured: readBinding(toml, e.d1Table, D1_BINDING, "database_id"),
    list: () =>
      jsonOutput(wrangler(["d1", "list", "--json"]).stdout, "wrangler d1 list --json").map((db) => ({
        id: db.uuid,
        name: db.name,
      })),
    create: () => wrangler(["d1", "create", name]),
  });
  recordId(e.worker, e.d1Table, D1_BINDING, "database_id", id);
}

/** 3. Remote migrations (wrangler applies the missing ones; CI=true: no confirmation). */
function migrate(e) {
  say(`D1 migrations at the edge (${e.worker})`);
  const args = ["d1", "migrations", "apply", D1_BINDING, "--remote", ...(e.env ? ["--env", e.env] : [])];
  const out = wrangler(args, { env: { CI: "true" } });
  const lines = out.stdout.split("\n").filter((l) => l.trim() && !/wrangler \d|^[\s─]+$/.test(l));
  if (lines.length) console.log(lines.map((l) => `    ${l}`).join("\n"));
}

/** Whether the Worker has an ADMIN_TOKEN secret (a Worker not yet deployed has none). */
function hasAdminToken(e) {
  const out = wrangler(["secret", "list", ...envArgs(e.env)], { check: false });
  if (out.status !== 0) {
    if (/not found/i.test(out.stderr + out.stdout)) return false;
    throw new Stop(`wrangler secret list failed:\n${(out.stderr + out.stdout).trim()}`);
  }
  return jsonOutput(out.stdout, "wrangler secret list").some((s) => s.name === "ADMIN_TOKEN");
}

/** Asks for the token without echoing it; empty means "make one". */
async function promptToken() {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  let muted = false;
  rl._writeToOutput = (s) => rl.output.write(muted ? "" : s);
  const answer = new Promise((done) => rl.question("ADMIN_TOKEN (empty: generate one): ", done));
  muted = true;
  const token = (await answer).trim();
  rl.close();
  process.stdout.write("\n");
  return token;
}

/** 5. The admin token, unless one is set (or --rotate-admin-token). */
async function adminToken(e, rotate) {
  if (!rotate && hasAdminToken(e)) {
    say(`ADMIN_TOKEN is set for ${e.worker}; left as it is (rotate: npm run provision -- --rotate-admin-token)`);
    return false;
  }
  let token = process.env.ADMIN_TOKEN ?? "";
  if (!token && process.stdin.isTTY) token = await promptToken();
  if (!token && !process.stdin.isTTY) {
    throw new Stop("ADMIN_TOKEN is not set for the Worker: run again with ADMIN_TOKEN=<a long random value> in the environment");
  }
  if (!token) {
    token = randomBytes(32).toString("base64url");
    console.log(`    generated ADMIN_TOKEN (shown once, keep it): ${token}`);
  }
  if (token.length < MIN_TOKEN_CHARS) {
    throw new Stop(
      `ADMIN_TOKEN is ${token.length} characters; the admin token must be at least ${MIN_TOKEN_CHARS} ` +
        "(32 random bytes, as `openssl rand -base64 32` makes): run again with a longer one, or with none to have one generated",
    );
  }
  wrangler(["secret", "put", "ADMIN_TOKEN", ...envArgs(e.env)], { input: token });
  say(`ADMIN_TOKEN set for ${e.worker}`);
  return true;
}

function parseArgs(argv) {
  const opts = { env: undefined, rotate: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--env" || a === "-e") opts.env = argv[++i] || undefined;
    else if (a.startsWith("--env=")) opts.env = a.slice(6) || undefined;
    else if (a === "--rotate-admin-token") opts.rotate = true;
    else throw new Stop(`unknown option ${a} (--env NAME, --rotate-admin-token)`);
  }
  return opts;
}

export async function provision(argv) {
  const opts = parseArgs(argv);
  const e = environment(readFileSync(CONFIG, "utf8"), opts.env);
  say(`provisioning ${e.env ? `environment ${e.env}` : "production (the top level)"}: Worker "${e.worker}"`);
  kvNamespace(e);
  d1Database(e);
  migrate(e);
  seed({ remote: true, env: e.env, missing: true });
  await adminToken(e, opts.rotate);
  say(`ready: npm run deploy${e.env ? ` -- --env ${e.env}` : ""}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  provision(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Stop ? `provision: ${e.message}` : e);
    process.exit(1);
  });
}
