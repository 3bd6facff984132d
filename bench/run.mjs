// `npm run bench` (after scripts/bench.sh has set up, built and installed wrk).
//
// Boots the built Worker (build/index.js + Wasm) in workerd through Miniflare with real local KV
// and D1, seeds it through the API, and for each hot route measures:
//   - throughput and latency under load: wrk, loopback only, bounded in time;
//   - storage work per request: the Server-Timing counts, averaged over sequential requests;
//   - workerd CPU time per request: utime+stime of the workerd process (/proc/<pid>/stat)
//     across the wrk run, divided by the requests wrk completed.
// The same is measured for a ceiling Worker (bench/ceiling.js: a constant JSON body) booted the
// same way; each route's throughput is reported as a ratio to it. Once per run: Wasm size (raw
// and gzip -9), time from launching workerd to the first 200 of GET /health, the machine.
// Writes bench/results.json, prints a markdown table and rewrites the README's
// "## Performance" section. Talks only to 127.0.0.1.
//
// Environment (all optional): BENCH_PORT (default 8797; the ceiling uses BENCH_PORT+1),
// BENCH_DURATION (wrk -d, default 5s), BENCH_CONNECTIONS (wrk -c, default 8),
// BENCH_SAMPLES (sequential requests for the storage counts, default 50),
// BENCH_NO_README=1 (leave README.md alone).
import { Miniflare } from "miniflare";
import { execFileSync, execFile } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { gzipSync } from "node:zlib";
import { COMPATIBILITY_DATE, ROOT, migrationStatements } from "../tests/helpers.js";

const PORT = Number(process.env.BENCH_PORT ?? 8797);
const CEILING_PORT = PORT + 1;
const DURATION = process.env.BENCH_DURATION ?? "5s";
const WARMUP = "1s";
const THREADS = 1;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 50);
const ADMIN_TOKEN = "bench-admin-token-0123456789";
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
const HARD_LIMIT_MS = 240_000;

const hardLimit = setTimeout(() => {
  console.error(`bench: gave up after ${HARD_LIMIT_MS / 1000} s`);
  process.exit(2);
}, HARD_LIMIT_MS);
hardLimit.unref();

const log = (msg) => console.error(`bench: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, digits = 2) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

// ---------------------------------------------------------------------------------------------
// Processes and CPU accounting

/** [{pid, ppid, comm, ticks}] of every process, from /proc/<pid>/stat. */
function processes() {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" "); // f[0] is field 3 (state)
    out.push({ pid: Number(name), ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

/** PIDs of the workerd processes this node process started. */
function workerdPids() {
  return processes()
    .filter((p) => p.ppid === process.pid && p.comm.startsWith("workerd"))
    .map((p) => p.pid);
}

/** utime+stime (clock ticks) summed over `pids`. */
function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += Number(f[11]) + Number(f[12]);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Booting a Worker

/**
 * Boots `scriptPath` in workerd through Miniflare on 127.0.0.1:`port` and polls GET /health
 * until the first 200. Returns {mf, pids, startToFirst200Ms, readyMs, base}.
 */
async function bootWorker({ scriptPath, port, storage }) {
  const before = new Set(workerdPids());
  const stderrTail = [];
  const t0 = performance.now();
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: COMPATIBILITY_DATE,
    kvNamespaces: storage ? ["CACHE"] : [],
    d1Databases: storage ? ["DB"] : [],
    bindings: storage ? { ADMIN_TOKEN } : {},
    host: "127.0.0.1",
    port,
    cf: false, // the placeholder Request.cf: no fetch of workers.cloudflare.com
    // The Worker logs one line per request: drain workerd's output instead of printing
    // tens of thousands of lines (keep the end of stderr for errors).
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.on("data", (chunk) => {
        stderrTail.push(String(chunk));
        if (stderrTail.length > 50) stderrTail.shift();
      });
    },
  });
  const base = `http://127.0.0.1:${port}`;
  let readyMs = null;
  const ready = mf.ready.then(() => {
    readyMs = performance.now() - t0;
  });
  ready.catch(() => {});
  let startToFirst200Ms = null;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) {
        startToFirst200Ms = performance.now() - t0;
        break;
      }
    } catch {
      // not listening yet
    }
    await sleep(2);
  }
  try {
    await ready;
  } catch (e) {
    throw new Error(`workerd did not start: ${e.message}\n${stderrTail.join("")}`);
  }
  if (startToFirst200Ms === null) throw new Error(`no 200 from ${base}/health within 30 s`);
  const pids = workerdPids().filter((p) => !before.has(p));
  if (pids.length === 0) throw new Error("could not find the workerd process in /proc");
  return { mf, pids, base, startToFirst200Ms, readyMs, stderrTail };
}

// ---------------------------------------------------------------------------------------------
// Requests

function requestInit(route) {
  const headers = { ...(route.headers ?? {}) };
  return { method: route.method, headers, body: route.body };
}

/** One request; returns {status, headers, text}. */
async function call(base, route) {
  const res = await fetch(base + route.path, { ...requestInit(route), signal: AbortSignal.timeout(5000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const TIMING =
  /kv;desc="reads=(\d+) writes=(\d+) lists=(\d+) deletes=(\d+)";dur=[\d.]+, d1;desc="queries=(\d+)";dur=[\d.]+/;

/** `n` sequential requests: mean storage work from Server-Timing, statuses, X-Cache values. */
async function storagePerRequest(base, route, n) {
  const total = { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, d1Queries: 0 };
  const statuses = {};
  const xCache = {};
  for (let i = 0; i < n; i++) {
    const r = await call(base, route);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const cache = r.headers.get("x-cache");
    if (cache) xCache[cache] = (xCache[cache] ?? 0) + 1;
    const m = TIMING.exec(r.headers.get("server-timing") ?? "");
    if (!m) throw new Error(`${route.name}: no contract Server-Timing header in ${r.status} ${r.text}`);
    const [reads, writes, lists, deletes, queries] = m.slice(1).map(Number);
    total.kvReads += reads;
    total.kvWrites += writes;
    total.kvLists += lists;
    total.kvDeletes += deletes;
    total.d1Queries += queries;
  }
  const mean = Object.fromEntries(Object.entries(total).map(([k, v]) => [k, round(v / n, 3)]));
  return { samples: n, mean, statuses, xCache: Object.keys(xCache).length ? xCache : undefined };
}

/** Runs wrk against `route`; returns wrk's BENCH_JSON line, parsed. */
function wrk(base, route, duration) {
  const headers = Object.entries(route.headers ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");
  const args = [
    `-t${THREADS}`,
    `-c${CONNECTIONS}`,
    `-d${duration}`,
    "--timeout",
    "2s",
    "-s",
    join(ROOT, "bench/wrk.lua"),
    base + route.path,
  ];
  const seconds = Number.parseFloat(duration);
  return new Promise((resolve, reject) => {
    execFile(
      "wrk",
      args,
      {
        env: { ...process.env, BENCH_METHOD: route.method, BENCH_BODY: route.body ?? "", BENCH_HEADERS: headers },
        timeout: (seconds + 20) * 1000,
        killSignal: "SIGKILL",
        maxBuffer: 1 << 20,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`wrk failed: ${err.message}\n${stdout}\n${stderr}`));
        const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
        if (!line) return reject(new Error(`wrk printed no BENCH_JSON line:\n${stdout}\n${stderr}`));
        resolve(JSON.parse(line.slice("BENCH_JSON ".length)));
      },
    );
  });
}

/** Warm-up, then the measured wrk run with the workerd CPU time around it. */
async function load(worker, route) {
  await wrk(worker.base, route, WARMUP);
  const before = cpuTicks(worker.pids);
  const w = await wrk(worker.base, route, DURATION);
  const after = cpuTicks(worker.pids);
  const seconds = w.durationUs / 1e6;
  const cpuMs = ((after - before) * 1000) / CLK_TCK;
  return {
    requests: w.requests,
    seconds: round(seconds, 3),
    requestsPerSecond: round(w.requests / seconds, 0),
    latencyMs: {
      p50: round(w.p50Us / 1000, 3),
      p95: round(w.p95Us / 1000, 3),
      p99: round(w.p99Us / 1000, 3),
      max: round(w.maxUs / 1000, 3),
    },
    workerdCpuMs: round(cpuMs, 0),
    workerdCpuUsPerRequest: w.requests > 0 ? round((cpuMs * 1000) / w.requests, 1) : null,
    workerdCoresBusy: round(cpuMs / 1000 / seconds, 2),
    non2xx3xx: w.errors.status,
    socketErrors: { connect: w.errors.connect, read: w.errors.read, write: w.errors.write, timeout: w.errors.timeout },
  };
}

// ---------------------------------------------------------------------------------------------
// Seeding the app

const json = (body) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

async function expectStatus(base, route, status) {
  const r = await call(base, route);
  if (r.status !== status) {
    throw new Error(`${route.method} ${route.path}: expected ${status}, got ${r.status} ${r.text}`);
  }
  return r.text ? JSON.parse(r.text) : null;
}

const CONFIG = {
  featureFlags: { newCheckout: true },
  rateLimits: { default: 1_000_000 },
  maintenanceMode: false,
  strictRateLimits: [],
  rateLimitWindowSeconds: 60,
  cacheTtlSeconds: 86_400,
};
const BATCH_IDS = Array.from({ length: 10 }, (_, i) => `bench-user-${i}`);

async function seed(app) {
  const { mf, base } = app;
  const db = await mf.getD1Database("DB");
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  const kv = await mf.getKVNamespace("CACHE");
  await kv.put("config:app", JSON.stringify(CONFIG));
  const config = await expectStatus(base, { method: "GET", path: "/config" }, 200);
  if (config.rateLimits.default !== CONFIG.rateLimits.default || config.cacheTtlSeconds !== CONFIG.cacheTtlSeconds) {
    throw new Error(`the seeded config:app was not served: ${JSON.stringify(config)}`);
  }

  const session = await expectStatus(
    base,
    { method: "POST", path: "/sessions", ...json({ userId: "bench-user", email: "bench@example.com" }), headers: { ...admin, "content-type": "application/json" } },
    201,
  );
  const bearer = { authorization: `Bearer ${session.sessionId}` };
  for (const id of ["bench-user", ...BATCH_IDS]) {
    await expectStatus(
      base,
      { method: "PUT", path: `/admin/users/${id}`, body: JSON.stringify({ name: `Bench ${id}` }), headers: { ...admin, "content-type": "application/json" } },
      200,
    );
  }
  await expectStatus(
    base,
    { method: "PATCH", path: "/prefs", body: JSON.stringify({ theme: "dark", language: "nl-NL", notifications: false }), headers: { ...bearer, "content-type": "application/json" } },
    200,
  );
  // Warm the users cache: a MISS stores the entry, the next GET is a HIT.
  for (const id of ["bench-user", ...BATCH_IDS]) {
    await expectStatus(base, { method: "GET", path: `/users/${id}` }, 200);
  }
  const hit = await call(base, { method: "GET", path: "/users/bench-user" });
  if (hit.headers.get("x-cache") !== "HIT") throw new Error(`GET /users/bench-user is not a cache HIT: ${hit.headers.get("x-cache")}`);
  const batch = await expectStatus(base, { method: "POST", path: "/users/batch", ...json({ ids: BATCH_IDS }) }, 200);
  if (BATCH_IDS.some((id) => !batch.users[id])) throw new Error(`POST /users/batch misses users: ${JSON.stringify(batch)}`);
  return { bearer };
}

// ---------------------------------------------------------------------------------------------
// Routes and their storage budgets (bench/budgets.json: the budget tests assert them, the
// bench only reports them).
const BUDGETS = JSON.parse(readFileSync(new URL("./budgets.json", import.meta.url), "utf8"));

function hotRoutes(bearer) {
  return [
    { name: "GET /health", method: "GET", path: "/health", expect: 200, budget: BUDGETS["GET /health"] },
    { name: "GET /config", method: "GET", path: "/config", expect: 200, budget: BUDGETS["GET /config"] },
    { name: "GET /flags/newCheckout", method: "GET", path: "/flags/newCheckout", expect: 200, budget: BUDGETS["GET /flags/:name"] },
    { name: "GET /sessions/current", method: "GET", path: "/sessions/current", headers: bearer, expect: 200, budget: BUDGETS["GET /sessions/current"] },
    { name: "GET /prefs", method: "GET", path: "/prefs", headers: bearer, expect: 200, budget: BUDGETS["GET /prefs"] },
    { name: "GET /users/:id (hit)", method: "GET", path: "/users/bench-user", expect: 200, budget: BUDGETS["GET /users/:id (hit)"] },
    { name: "POST /users/batch (10 ids, cached)", method: "POST", path: "/users/batch", ...json({ ids: BATCH_IDS }), expect: 200, budget: BUDGETS["POST /users/batch (cached)"] },
  ];
}

// 50 flags for the OFREP bulk row: 25 booleans and 25 with a targeting rule and a 30/70
// rollout (newCheckout, already in the config, is one of the booleans).
const BENCH_FLAGS = Object.fromEntries(
  Array.from({ length: 49 }, (_, i) => [
    `benchFlag${i}`,
    i % 2
      ? true
      : {
          variants: { on: true, off: false },
          defaultVariant: "off",
          rules: [{ when: { country: { in: ["NL", "BE"] } }, variant: "on" }],
          rollout: { on: 30, off: 70 },
        },
  ]),
);
const OFREP_BULK = {
  name: "POST /ofrep/v1/evaluate/flags (50 flags)",
  method: "POST",
  path: "/ofrep/v1/evaluate/flags",
  ...json({ context: { targetingKey: "bench-user", country: "US" } }),
  expect: 200,
  budget: BUDGETS["POST /ofrep/v1/evaluate/flags (50 flags)"],
};

// The one request per window that the limit admits is a 200.
const LIMITED = { name: "GET /flags/x over its limit (429)", method: "GET", path: "/flags/x", expect: 429, alsoOk: [200], budget: BUDGETS["GET /flags/:name"] };

function overBudget(storage, budget) {
  const over = [];
  for (const [k, max] of Object.entries(budget)) {
    if (storage.mean[k] > max) over.push(`${k} ${storage.mean[k]} > ${max}`);
  }
  return over;
}

// ---------------------------------------------------------------------------------------------
// Machine, size, report

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const workerdBin = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
  let workerd = "unknown";
  try {
    workerd = execFileSync(workerdBin, ["--version"], { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {}
  let wrkVersion = "unknown";
  try {
    wrkVersion = execFileSync("wrk", ["-v"], { encoding: "utf8", timeout: 10_000 });
  } catch (e) {
    wrkVersion = String(e.stdout ?? ""); // wrk -v exits 1
  }
  wrkVersion = /^wrk \S+/.exec(wrkVersion)?.[0] ?? "wrk (unknown version)";
  const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  return {
    cpuModel: model,
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    workerd,
    workerdPackage: pkg("workerd"),
    miniflare: pkg("miniflare"),
    wrk: wrkVersion,
    // Other work on the machine skews the figures (tail latency first): recorded, not controlled.
    loadAverage1mAtStart: round(loadavg()[0], 2),
  };
}

function wasmSize() {
  const wasm = readFileSync(join(ROOT, "build/index_bg.wasm"));
  const gzip = gzipSync(wasm, { level: 9 });
  return { rawBytes: wasm.length, gzipBytes: gzip.length, rawKB: round(wasm.length / 1024, 1), gzipKB: round(gzip.length / 1024, 1) };
}

/** A number with at most `digits` decimals, trailing zeros dropped. */
const fmt = (x, digits = 2) =>
  x === null || x === undefined ? "–" : Number(x).toFixed(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");

const signed = (x) => (x === null || x === undefined ? "–" : `${x >= 0 ? "+" : "−"}${fmt(Math.abs(x), 0)}`);

function table(results) {
  const rows = [
    "| route | req/s | × ceiling | p50 ms | p95 ms | p99 ms | workerd CPU µs/req (over ceiling) | KV reads/req | KV writes/req | KV lists+deletes/req | D1 queries/req |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  results.ceiling.runs.forEach((c, i) => {
    const name = i === 0 ? "ceiling (`bench/ceiling.js`), before the routes" : "ceiling again, after the routes";
    rows.push(
      `| ${name} | ${c.requestsPerSecond} | ${fmt(c.requestsPerSecond / results.ceiling.requestsPerSecond)} | ${fmt(c.latencyMs.p50)} | ${fmt(c.latencyMs.p95)} | ${fmt(c.latencyMs.p99)} | ${fmt(c.workerdCpuUsPerRequest, 0)} | – | – | – | – |`,
    );
  });
  for (const r of results.routes) {
    const s = r.storage.mean;
    rows.push(
      `| \`${r.name}\` | ${r.load.requestsPerSecond} | ${fmt(r.ratioToCeiling)} | ${fmt(r.load.latencyMs.p50)} | ${fmt(r.load.latencyMs.p95)} | ${fmt(r.load.latencyMs.p99)} | ${fmt(r.load.workerdCpuUsPerRequest, 0)} (${signed(r.cpuUsPerRequestOverCeiling)}) | ${fmt(s.kvReads, 3)} | ${fmt(s.kvWrites, 3)} | ${fmt(s.kvLists + s.kvDeletes, 3)} | ${fmt(s.d1Queries, 3)} |`,
    );
  }
  return rows.join("\n");
}

function machineLine(m) {
  return `${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel} (load average ${m.loadAverage1mAtStart} at start); Node ${m.node}, ${m.workerd} (npm workerd ${m.workerdPackage}) through Miniflare ${m.miniflare}; ${m.wrk}`;
}

function performanceSection(results) {
  const m = results.machine;
  const w = results.wasm;
  const s = results.settings;
  const odd = results.routes.filter((r) => r.overBudget.length || r.unexpectedStatuses);
  const lines = [
    "## Performance",
    "",
    `Last measured on ${results.date.slice(0, 10)} by \`npm run bench\`, on ${machineLine(m)}.`,
    "",
    table(results),
    "",
    `- **Wasm**: ${w.rawKB} KiB raw, **${w.gzipKB} KiB gzip** (${w.gzipBytes} bytes; \`build/index_bg.wasm\`, gzip -9; target < 250 KB).`,
    `- **Start to first 200**: ${fmt(results.startup.startToFirst200Ms, 0)} ms from launching workerd (new Miniflare) to the first 200 of \`GET /health\` (ceiling Worker: ${fmt(results.ceiling.startToFirst200Ms, 0)} ms).`,
    `- **Ceiling**: a Worker answering a constant JSON body through the same runtime, measured before and after the routes; "× ceiling" and "over ceiling" use the mean of both runs (${results.ceiling.requestsPerSecond} req/s, ${fmt(results.ceiling.workerdCpuUsPerRequest, 0)} µs CPU/req).`,
    `- **Load**: wrk \`-t${s.threads} -c${s.connections} -d${s.duration}\` per route after a ${s.warmup} warm-up, loopback only, against local workerd with Miniflare's local KV and D1; one client address, rate limits seeded high (\`default\` ${CONFIG.rateLimits.default.toLocaleString("en")}/min) except the last row, measured after \`PATCH /admin/config\` set \`rateLimits.flags\` to 1.`,
    `- **Storage work** per request is the mean of the \`Server-Timing\` counts over ${s.storageSamples} sequential requests per route (work deferred with \`waitUntil\` is not counted there).`,
    "- **CPU** is utime+stime of the workerd process (`/proc/<pid>/stat`) across the wrk run, divided by the requests it completed. It includes Miniflare's entry Worker and its local KV/D1 simulators, so it overstates the Worker's own CPU time at the edge; the entry Worker's share is in the ceiling too, hence the figure over the ceiling in brackets.",
    "- These are local-runtime figures on a small machine (wrk and workerd share its cores), for comparing routes and commits, not edge latencies: at the edge, KV and D1 round trips dominate.",
  ];
  if (odd.length) {
    lines.push(
      `- **Over budget in this run**: ${odd
        .map((r) => `\`${r.name}\` (${[...r.overBudget, ...(r.unexpectedStatuses ? [`statuses ${JSON.stringify(r.storage.statuses)}`] : [])].join(", ")})`)
        .join("; ")}.`,
    );
  }
  lines.push(
    "",
    "Reproduce with `npm run bench` (about 2 minutes after the first set-up): it runs the set-up, builds the release Worker, installs `wrk` from Debian's packages if missing, runs `bench/run.mjs`, writes every figure to `bench/results.json` and rewrites this section. `BENCH_PORT` (default 8797, the ceiling uses the next port), `BENCH_DURATION` and `BENCH_CONNECTIONS` adjust it.",
    "",
  );
  return lines.join("\n");
}

function rewriteReadme(section) {
  const path = join(ROOT, "README.md");
  const readme = readFileSync(path, "utf8");
  const start = readme.indexOf("\n## Performance\n");
  if (start < 0) throw new Error("README.md has no '## Performance' section");
  const next = readme.indexOf("\n## ", start + 1);
  const end = next < 0 ? readme.length : next + 1;
  writeFileSync(path, readme.slice(0, start + 1) + section + (next < 0 ? "" : "\n") + readme.slice(end));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    settings: { threads: THREADS, connections: CONNECTIONS, duration: DURATION, warmup: WARMUP, storageSamples: SAMPLES, port: PORT, clockTicksPerSecond: CLK_TCK },
    wasm: wasmSize(),
  };
  log(`machine: ${machineLine(results.machine)}`);
  log(`wasm: ${results.wasm.rawBytes} B raw, ${results.wasm.gzipBytes} B gzip`);

  // 1. The ceiling, measured before the routes and again after them (the machine may be busy
  //    with other work; the ratios use the mean of both runs). It idles in between.
  log("ceiling: booting bench/ceiling.js");
  const ceiling = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling.js"), port: CEILING_PORT, storage: false });
  let app = null;
  try {
    const ceilingRoute = { name: "ceiling", method: "GET", path: "/health" };
    await expectStatus(ceiling.base, ceilingRoute, 200);
    const first = await load(ceiling, ceilingRoute);
    results.ceiling = { startToFirst200Ms: round(ceiling.startToFirst200Ms, 1), runs: [first], requestsPerSecond: first.requestsPerSecond };
    log(`ceiling: ${first.requestsPerSecond} req/s, ${first.workerdCpuUsPerRequest} µs CPU/req`);

    // 2. The Worker.
    log("app: booting build/index.js");
    app = await bootWorker({ scriptPath: join(ROOT, "build/index.js"), port: PORT, storage: true });
    results.startup = { startToFirst200Ms: round(app.startToFirst200Ms, 1), miniflareReadyMs: round(app.readyMs, 1) };
    log(`app: first 200 after ${results.startup.startToFirst200Ms} ms`);
    results.routes = [];
    const { bearer } = await seed(app);
    const measure = async (route) => {
      await expectStatus(app.base, route, route.expect);
      const storage = await storagePerRequest(app.base, route, SAMPLES);
      const result = await load(app, route);
      const entry = {
        name: route.name,
        method: route.method,
        path: route.path,
        expectedStatus: route.expect,
        ratioToCeiling: null, // filled in once the ceiling has run again
        // workerd CPU beyond what the ceiling Worker costs through the same runtime and entry Worker
        cpuUsPerRequestOverCeiling: null,
        load: result,
        storage,
        budget: route.budget,
        overBudget: overBudget(storage, route.budget),
        unexpectedStatuses:
          Object.keys(storage.statuses).some((s) => Number(s) !== route.expect && !(route.alsoOk ?? []).includes(Number(s))) ||
          undefined,
      };
      results.routes.push(entry);
      log(
        `${route.name}: ${result.requestsPerSecond} req/s, p99 ${result.latencyMs.p99} ms, ` +
          `${result.workerdCpuUsPerRequest} µs CPU/req, storage ${JSON.stringify(storage.mean)}` +
          (entry.overBudget.length ? ` OVER BUDGET: ${entry.overBudget.join(", ")}` : ""),
      );
    };
    for (const route of hotRoutes(bearer)) await measure(route);

    // 2b. Flag evaluation: 50 flags added through the admin route, evaluated in one OFREP call.
    await expectStatus(
      app.base,
      { method: "PATCH", path: "/admin/config", body: JSON.stringify({ featureFlags: BENCH_FLAGS }), headers: { ...admin, "content-type": "application/json" } },
      200,
    );
    await measure(OFREP_BULK);

    // 3. Over the limit: the flags group limited to 1 per window, so nearly every request is a 429.
    await expectStatus(
      app.base,
      { method: "PATCH", path: "/admin/config", body: JSON.stringify({ rateLimits: { flags: 1 } }), headers: { ...admin, "content-type": "application/json" } },
      200,
    );
    await call(app.base, LIMITED); // may be the one admitted request of this window
    await measure(LIMITED);
    const limited = results.routes.at(-1);
    limited.load.share429 = round(limited.load.non2xx3xx / limited.load.requests, 4);

    // 4. The ceiling again; ratios and CPU over the ceiling against the mean of both runs.
    const again = await load(ceiling, ceilingRoute);
    results.ceiling.runs.push(again);
    log(`ceiling again: ${again.requestsPerSecond} req/s, ${again.workerdCpuUsPerRequest} µs CPU/req`);
    const mean = (k) => results.ceiling.runs.reduce((a, r) => a + r[k], 0) / results.ceiling.runs.length;
    results.ceiling.requestsPerSecond = round(mean("requestsPerSecond"), 0);
    results.ceiling.workerdCpuUsPerRequest = round(mean("workerdCpuUsPerRequest"), 1);
    for (const r of results.routes) {
      r.ratioToCeiling = round(r.load.requestsPerSecond / results.ceiling.requestsPerSecond, 3);
      r.cpuUsPerRequestOverCeiling = round(r.load.workerdCpuUsPerRequest - results.ceiling.workerdCpuUsPerRequest, 1);
    }
  } finally {
    await app?.mf.dispose();
    await ceiling.mf.dispose();
  }

  results.elapsedSeconds = round((Date.now() - started) / 1000, 1);
  writeFileSync(join(ROOT, "bench/results.json"), JSON.stringify(results, null, 2) + "\n");
  const section = performanceSection(results);
  console.log("\n" + table(results) + "\n");
  console.log(`Wasm ${results.wasm.rawKB} KB raw, ${results.wasm.gzipKB} KB gzip; first 200 after ${fmt(results.startup.startToFirst200Ms, 0)} ms`);
  console.log(`Machine: ${machineLine(results.machine)}`);
  if (process.env.BENCH_NO_README !== "1") {
    rewriteReadme(section);
    log("README.md: Performance section rewritten");
  }
  log(`results: bench/results.json (${results.elapsedSeconds} s)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${e.stack ?? e}`);
    process.exit(1);
  },
);
