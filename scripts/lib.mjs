// Helpers shared by scripts/seed.mjs and scripts/provision.mjs: running wrangler, reading
// its JSON output, and reading and writing the ids in wrangler.toml. Node built-ins only.
import { spawnSync } from "node:child_process";

export const say = (msg) => console.log(`==> ${msg}`);

/** Thrown for a failure the user can act on; the scripts print its message and exit 1. */
export class Stop extends Error {}

/**
 * Runs `wrangler args…` (the `wrangler` on PATH: node_modules/.bin under npm) and returns
 * its output. `input` goes to stdin (a secret, say); otherwise stdin is empty, so wrangler
 * never waits for an answer. `env` adds environment variables. A non-zero exit throws
 * `Stop` with wrangler's own message (unless `check` is false).
 */
export function wrangler(args, { input, check = true, env = {} } = {}) {
  const r = spawnSync("wrangler", args, {
    encoding: "utf8",
    input: input ?? "",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Stop(`could not run wrangler (${r.error.message}); run npm run setup`);
  const out = { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  if (check && out.status !== 0) {
    const detail = `${out.stderr}\n${out.stdout}`.trim().split("\n").slice(-15).join("\n");
    throw new Stop(`wrangler ${args.join(" ")} failed (exit ${out.status}):\n${detail}`);
  }
  return out;
}

/** The JSON document wrangler printed (it may print banners or warnings around it). */
export function jsonOutput(stdout, what) {
  const start = stdout.search(/^[[{]/m);
  if (start < 0) throw new Stop(`no JSON in the output of ${what}:\n${stdout}`);
  try {
    return JSON.parse(stdout.slice(start));
  } catch (e) {
    throw new Stop(`unreadable JSON from ${what}: ${e.message}`);
  }
}

/** `--env NAME` for an environment, `--env=` (wrangler's "the top level") without one. */
export const envArgs = (env) => (env ? ["--env", env] : ["--env="]);

// ---------------------------------------------------------------------------------------
// wrangler.toml: just enough TOML for this project's file. Values are read and written
// line by line inside one table, so comments and layout stay as they are.

const HEADER = /^\s*\[\[?\s*([^\]\s]+)\s*\]\]?\s*(#.*)?$/;

/** The tables of a TOML text: {header, start, end} (line indices, end exclusive). */
function tables(lines) {
  const out = [{ header: "", start: 0, end: lines.length }];
  lines.forEach((line, i) => {
    const m = HEADER.exec(line);
    if (!m) return;
    out.at(-1).end = i;
    out.push({ header: m[1], start: i + 1, end: lines.length });
  });
  return out;
}

const keyLine = (key) => new RegExp(`^\\s*${key.replace(/\./g, "\\.")}\\s*=\\s*"([^"]*)"`);

/** The table `header` (e.g. `env.staging.kv_namespaces`) whose `binding` is `binding`. */
function bindingTable(lines, header, binding) {
  return tables(lines).find(
    (t) => t.header === header && lines.slice(t.start, t.end).some((l) => keyLine("binding").exec(l)?.[1] === binding),
  );
}

/** The string value of `key` in the `binding` table under `header`, or undefined. */
export function readBinding(toml, header, binding, key) {
  const lines = toml.split("\n");
  const t = bindingTable(lines, header, binding);
  if (!t) return undefined;
  for (const l of lines.slice(t.start, t.end)) {
    const m = keyLine(key).exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/** `toml` with `key = "value"` in the `binding` table under `header` (replaced or added). */
export function writeBinding(toml, header, binding, key, value) {
  const lines = toml.split("\n");
  const t = bindingTable(lines, header, binding);
  if (!t) throw new Stop(`wrangler.toml has no [[${header}]] table with binding = "${binding}"`);
  const at = lines.slice(t.start, t.end).findIndex((l) => keyLine(key).test(l));
  if (at >= 0) lines[t.start + at] = lines[t.start + at].replace(keyLine(key), `${key} = "${value}"`);
  else lines.splice(t.start + lines.slice(t.start, t.end).findIndex((l) => keyLine("binding").test(l)) + 1, 0, `${key} = "${value}"`);
  return lines.join("\n");
}

/** A top-level (or, with `table`, that table's) string value, or undefined. */
export function readKey(toml, key, table = "") {
  const lines = toml.split("\n");
  const t = tables(lines).find((x) => x.header === table);
  for (const l of t ? lines.slice(t.start, t.end) : []) {
    const m = keyLine(key).exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/** Whether wrangler.toml declares environment `env` (any `[env.<env>…]` table). */
export const hasEnv = (toml, env) => tables(toml.split("\n")).some((t) => t.header === `env.${env}` || t.header.startsWith(`env.${env}.`));

/** An id that `npm run provision` has yet to replace: all zeros (dashes aside). */
export const isPlaceholder = (id) => !id || /^[0-]+$/.test(id);
