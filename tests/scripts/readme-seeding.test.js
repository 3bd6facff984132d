// @ts-check
// The README's `wrangler kv bulk put` lines run as written with the real wrangler 4.164 and
// this wrangler.toml: the local one into local state (what `wrangler dev` serves), the
// remote one against a stand-in of the Cloudflare API on 127.0.0.1 (CLOUDFLARE_API_BASE_URL),
// which records what wrangler sent. Both failed while the binding had a preview_id.
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

const WRANGLER = join(ROOT, "node_modules/.bin/wrangler");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
/** @type {{ key: string, value: string }[]} */
const SEED = JSON.parse(readFileSync(join(ROOT, "seed-data.json"), "utf8"));
const lines = [...README.matchAll(/npx wrangler (kv bulk put seed-data\.json[^\n`#]*)/g)].map((m) => m[1].trim());
/** @type {string} */
let dir;
/** @type {import("node:http").Server} */
let api;
/** @type {{ method?: string, url?: string, body: string }[]} */
let requests;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "edgestate-readme-"));
  for (const f of ["wrangler.toml", "seed-data.json"]) cpSync(join(ROOT, f), join(dir, f));
  requests = [];
  api = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, body });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ success: true, errors: [], messages: [], result: null }));
    });
  });
  await new Promise((r) => api.listen(0, "127.0.0.1", () => r(undefined)));
});
afterAll(() => {
  api?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the real wrangler in the copy; remote calls go to the stand-in API.
 * @param {string[]} args
 * @returns {Promise<{ status: number | null, out: string }>}
 */
function wrangler(args) {
  return new Promise((done) => {
    const child = spawn(WRANGLER, args, {
      cwd: dir,
      env: {
        ...process.env,
        PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}`,
        WRANGLER_SEND_METRICS: "false",
        CLOUDFLARE_API_BASE_URL: `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (api.address()).port}/client/v4`,
        CLOUDFLARE_API_TOKEN: "test-token",
        CLOUDFLARE_ACCOUNT_ID: "test-account",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (status) => done({ status, out }));
  });
}
/** @param {string | undefined} line */
const args = (line) => String(line).split(/\s+/);

describe("the README's seeding lines", () => {
  it("has one local and one remote `wrangler kv bulk put` line", () => {
    expect(lines.filter((l) => l.includes("--local"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("--remote"))).toHaveLength(1);
  });

  it("the local line writes the seed where wrangler dev reads it", async () => {
    const line = lines.find((l) => l.includes("--local"));
    const put = await wrangler(args(line));
    expect(put.status, put.out).toBe(0);
    const get = await wrangler(["kv", "key", "get", "config:app", "--binding", "CACHE", "--local"]);
    expect(get.status, get.out).toBe(0);
    expect(get.out).toContain(SEED.find((e) => e.key === "config:app")?.value);
  });

  it("the remote line uploads the seed to the namespace wrangler.toml names", async () => {
    const line = lines.find((l) => l.includes("--remote"));
    const put = await wrangler(args(line));
    expect(put.status, put.out).toBe(0);
    const id = /\[\[kv_namespaces\]\]\s*\nbinding = "CACHE"\s*\nid = "([0-9a-f]+)"/.exec(readFileSync(join(dir, "wrangler.toml"), "utf8"))?.[1];
    const bulk = requests.filter((r) => r.method === "PUT" && r.url?.endsWith("/bulk"));
    expect(bulk).toHaveLength(1);
    expect(bulk[0].url).toBe(`/client/v4/accounts/test-account/storage/kv/namespaces/${id}/bulk`);
    expect(JSON.parse(bulk[0].body)).toEqual(SEED);
  });
});
