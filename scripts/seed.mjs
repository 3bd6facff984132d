// Loads seed-data.json (`wrangler kv bulk put` input) into the KV namespace of binding CACHE.
//
//   node scripts/seed.mjs --local [--missing] [--persist-to DIR]
//   node scripts/seed.mjs --remote [--missing] [--env NAME]
//
// --missing writes only the keys that are absent (one `wrangler kv bulk get` first), so
// changes made through the admin API survive: `npm run dev` and `npm run provision` seed
// this way. Without it every key is written: `npm run seed`, the explicit reset.
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
    const todo = absent ? entries.filter((e) => absent.has(e.key)) : entries;
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
