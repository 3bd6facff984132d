// Loads seed-data.json (`wrangler kv bulk put` input) into the KV namespace of binding CACHE.
//
//   node scripts/seed.mjs --local [--missing] [--persist-to DIR]
//   node scripts/seed.mjs --remote [--missing] [--env NAME]
//
// --missing writes only the keys that are absent (one `wrangler kv bulk get` first), so
// changes made through the admin API survive: `npm run dev` and `npm run provision` seed
// this way. Without it every key is written: `npm run seed`, the explicit reset.
//
// The config keeps its history true. D1's `config_history` is the config's authority and
// KV `config:app` its copy, tagged with the version (metadata `{"version": N}`). Once D1
// has a version, a reset records the seed as the next version (actor `seed`, action `put`)
// and writes it to KV with that version, so GET /config, GET /admin/config, the console
// and the next admin write all see the seed; an absent `config:app` is restored from D1's
// newest version rather than from the seed. Without a history (a new deployment) the seed
// goes to KV as it is: version 0, which the first admin write merges into.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Stop, jsonOutput, say, wrangler } from "./lib.mjs";

/** The seed, beside wrangler.toml in the working directory (the project root). */
const seedFile = () => resolve("seed-data.json");
const BINDING = "CACHE";

/** The wrangler options that pick the namespace: local state, or the edge (and env). */
function target({ remote, env, persistTo }) {
  if (remote) return ["--remote", ...(env ? ["--env", env] : [])];
  return ["--local", "--persist-to", persistTo ?? process.env.PERSIST_DIR ?? ".wrangler/state"];
}

const CONFIG_KEY = "config:app";
const D1_BINDING = "DB";

/** The rows of one SQL statement run on D1 (`wrangler d1 execute --json`); null if it failed. */
function d1Rows(sql, opts) {
  const out = wrangler(["d1", "execute", D1_BINDING, ...target(opts), "--json", "--command", sql], { check: false });
  if (out.status !== 0) return null;
  const result = jsonOutput(out.stdout, "wrangler d1 execute");
  return (Array.isArray(result) ? result[0] : result)?.results ?? null;
}

/** A SQL string literal. */
const quoted = (text) => `'${text.replaceAll("'", "''")}'`;

/** D1's newest config version `{version, document}`, or null: no history, or no D1 to ask. */
function configHead(opts) {
  const rows = d1Rows("SELECT version, document FROM config_history WHERE version IS NOT NULL ORDER BY version DESC LIMIT 1", opts);
  if (rows === null) say("D1's config history could not be read (not migrated?): the config goes to KV without a version");
  return rows?.[0] ?? null;
}

/**
 * Records `document` as the version after `head` (conditional on the head, as the Worker's
 * own writes are); returns the new version, or null if another write came first.
 */
function recordSeed(document, head, opts) {
  const sql =
    "INSERT INTO config_history (version, at, actor, action, base_version, change, document) " +
    `SELECT head + 1, ${Date.now()}, 'seed', 'put', head, ${quoted(document)}, ${quoted(document)} ` +
    "FROM (SELECT COALESCE(MAX(version), 0) AS head FROM config_history) " +
    `WHERE head = ${Number(head)} RETURNING version`;
  return d1Rows(sql, opts)?.[0]?.version ?? null;
}

/**
 * The config entry to write, with its version: `entry` recorded as D1's next version when D1
 * has a history (a reset), or D1's newest version instead of the seed (`missing`: KV had none).
 */
function versionedConfig(entry, opts) {
  const head = configHead(opts);
  if (!head) return entry;
  if (opts.missing) {
    say(`KV seed: ${CONFIG_KEY} restored from D1's newest config version (${head.version}), not from seed-data.json`);
    return { key: CONFIG_KEY, value: head.document, metadata: { version: head.version } };
  }
  const version = recordSeed(entry.value, head.version, opts);
  if (version === null) throw new Stop(`an admin wrote the config while seeding (D1 is past version ${head.version}): run the seed again`);
  say(`KV seed: seed-data.json's config recorded as config version ${version} in D1 (actor "seed")`);
  return { ...entry, metadata: { ...entry.metadata, version } };
}

/** The seed keys KV does not hold (either output shape of `wrangler kv bulk get`). */
function absentKeys(entries, opts, dir) {
  const keysFile = join(dir, "keys.json");
  writeFileSync(keysFile, JSON.stringify(entries.map((e) => e.key)));
  const out = wrangler(["kv", "bulk", "get", keysFile, "--binding", BINDING, ...target(opts)]);
  const held = jsonOutput(out.stdout, "wrangler kv bulk get");
  // Remote: {"key": "value" | null}; local: {"key": {"value": "value" | null}}.
  const value = (v) => (v !== null && typeof v === "object" ? v.value : v);
  return new Set(entries.map((e) => e.key).filter((k) => value(held[k] ?? null) === null));
}

/**
 * Seeds KV from seed-data.json. `opts`: {remote, env, persistTo, missing}. Returns the keys
 * it wrote.
 */
export function seed(opts) {
  const entries = JSON.parse(readFileSync(seedFile(), "utf8"));
  if (!Array.isArray(entries) || entries.some((e) => typeof e?.key !== "string")) {
    throw new Stop("seed-data.json must be an array of {key, value, …} (wrangler kv bulk put input)");
  }
  const where = opts.remote ? `remote${opts.env ? `, env ${opts.env}` : ""}` : "local";
  const dir = mkdtempSync(join(tmpdir(), "edgestate-seed-"));
  try {
    const absent = opts.missing ? absentKeys(entries, opts, dir) : null;
    const todo = (absent ? entries.filter((e) => absent.has(e.key)) : entries).map((e) =>
      e.key === CONFIG_KEY && typeof e.value === "string" ? versionedConfig(e, opts) : e,
    );
    const names = (list) => list.map((e) => e.key).join(", ");
    if (todo.length === 0) {
      const reset = opts.remote ? `npm run seed -- --remote${opts.env ? ` --env ${opts.env}` : ""}` : "npm run seed";
      say(`KV seed (${where}): ${names(entries)} already set, left as they are (${reset} resets)`);
      return [];
    }
    const file = join(dir, "seed.json");
    writeFileSync(file, JSON.stringify(todo));
    wrangler(["kv", "bulk", "put", file, "--binding", BINDING, ...target(opts)]);
    if (absent) say(`KV seed (${where}): wrote ${names(todo)} (absent); other keys left as they are`);
    else say(`KV seed (${where}): reset ${names(todo)} to seed-data.json, overwriting any admin changes`);
    return todo.map((e) => e.key);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseArgs(argv) {
  const opts = { remote: false, missing: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--remote") opts.remote = true;
    else if (a === "--local") opts.remote = false;
    else if (a === "--missing") opts.missing = true;
    else if (a === "--env") opts.env = argv[++i];
    else if (a === "--persist-to") opts.persistTo = argv[++i];
    else throw new Stop(`seed: unknown option ${a} (--local | --remote [--env NAME], --missing, --persist-to DIR)`);
  }
  return opts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    seed(parseArgs(process.argv.slice(2)));
  } catch (e) {
    console.error(e instanceof Stop ? `seed: ${e.message}` : e);
    process.exit(1);
  }
}
