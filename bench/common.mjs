// What every part of `npm run bench` shares: processes and their CPU time, booting a Worker
// in workerd through Miniflare, requests, wrk, the machine, number formatting.
// Everything talks to 127.0.0.1 only.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { COMPATIBILITY_DATE, ROOT, workerModules } from "../tests/helpers.js";

export { ROOT };
export const ADMIN_TOKEN = "bench-admin-token-0123456789-0123456789abcdef";
export const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

export const log = (msg) => console.error(`bench: ${msg}`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round = (x, digits = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Whether the program `cmd` is installed (it ran, whatever its exit status). */
export function hasTool(cmd, args = ["--version"]) {
  try {
    execFileSync(cmd, args, { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch (e) {
    return e.code !== "ENOENT";
  }
}

// ---------------------------------------------------------------------------------------------
// Processes and CPU accounting

/** [{pid, ppid, comm, ticks}] of every process, from /proc/<pid>/stat. */
export function processes() {
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

/** The PIDs of `root` and every process below it. */
export function descendants(root) {
  const all = processes();
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i]) out.push(p.pid);
  return out;
}

/** utime+stime (clock ticks) summed over `pids` (processes that exited count 0). */
export function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return total;
}

/**
 * CPU time (ns) summed over every thread of `pids`, from /proc/<pid>/task/<tid>/schedstat:
 * nanosecond resolution, where utime+stime counts clock ticks (10 ms), too coarse for the
 * few milliseconds of an idle minute. Threads that exited meanwhile are not counted.
 */
export function cpuNs(pids) {
  let total = 0;
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {}
    }
  }
  return total;
}

/** Resident memory of `pid` from /proc/<pid>/status, in KiB: VmRSS, VmHWM (its peak), RssAnon, RssFile. */
export function residentKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { vmRss: field("VmRSS"), vmHwm: field("VmHWM"), rssAnon: field("RssAnon"), rssFile: field("RssFile") };
}

// ---------------------------------------------------------------------------------------------
// Booting a Worker in workerd through Miniflare

/**
 * Boots `scriptPath` on 127.0.0.1:`port` and polls GET /health until the first 200.
 * Returns {mf, pids, base, startToFirst200Ms, readyMs}. `storage` adds the CACHE (KV) and
 * DB (D1) bindings and the admin token; `processName` matches the runtime's process name
 * (another when workerd runs under a tool). `shared` adds Miniflare options of the runtime as a
 * whole (e.g. `inspectorPort`, which bench/flags.mjs uses for the isolate's heap figures).
 */
export async function bootWorker({ scriptPath, port, storage, vars = {}, processName = /^workerd/, shared = {} }) {
  const mine = () => processes().filter((p) => p.ppid === process.pid && processName.test(p.comm));
  const before = new Set(mine().map((p) => p.pid));
  const stderrTail = [];
  const t0 = performance.now();
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: workerModules(scriptPath),
      compatibilityDate: COMPATIBILITY_DATE,
      kvNamespaces: storage ? ["CACHE"] : [],
      d1Databases: storage ? ["DB"] : [],
      bindings: storage ? { ADMIN_TOKEN, ...vars } : vars,
      host: "127.0.0.1",
      port,
      cf: false, // the placeholder Request.cf: no fetch of workers.cloudflare.com
      ...shared,
      // Keep the last lines the runtime wrote (shown if it fails to start).
      handleStructuredLogs({ message }) {
        stderrTail.push(`${message}\n`);
        if (stderrTail.length > 50) stderrTail.shift();
      },
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  let readyMs = null;
  const ready = mf.ready.then(() => {
    readyMs = performance.now() - t0;
  });
  ready.catch(() => {});
  const startToFirst200Ms = await firstOk(`${base}/health`, t0);
  try {
    await ready;
  } catch (e) {
    throw new Error(`workerd did not start: ${e.message}\n${stderrTail.join("")}`);
  }
  const pids = mine()
    .map((p) => p.pid)
    .filter((p) => !before.has(p));
  if (pids.length === 0) throw new Error("could not find the workerd process in /proc");
  return { mf, pids, base, startToFirst200Ms, readyMs, stderrTail };
}

/** Polls `url` until a 200; returns the milliseconds since `t0`. */
export async function firstOk(url, t0, limitMs = 60_000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    await sleep(2);
  }
  throw new Error(`no 200 from ${url} within ${limitMs / 1000} s`);
}

// ---------------------------------------------------------------------------------------------
// Requests

/** One request; returns {status, headers, text}. */
export async function call(base, route) {
  const res = await fetch(base + route.path, {
    method: route.method,
    headers: route.headers ?? {},
    body: route.body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** One request that must answer `status`; returns the parsed body. */
export async function expectStatus(base, route, status) {
  const r = await call(base, route);
  if (r.status !== status) {
    throw new Error(`${route.method} ${route.path}: expected ${status}, got ${r.status} ${r.text}`);
  }
  return r.text ? JSON.parse(r.text) : null;
}

// The contract's Server-Timing; `d1-primary` (the D1 statements the primary served) is absent
// from builds older than it, which then report d1Primary as null.
const TIMING =
  /kv;desc="reads=(\d+) writes=(\d+) lists=(\d+) deletes=(\d+)";dur=[\d.]+, d1;desc="queries=(\d+)";dur=[\d.]+(?:, d1-primary;desc="queries=(\d+)";dur=[\d.]+)?/;

/**
 * `n` sequential requests: mean storage work from Server-Timing (KV operations, D1
 * statements and, of those, the ones the primary served), statuses, X-Cache values.
 */
export async function storagePerRequest(base, route, n) {
  const total = { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, d1Queries: 0, d1Primary: 0 };
  let primaryReported = true;
  const statuses = {};
  const xCache = {};
  for (let i = 0; i < n; i++) {
    const r = await call(base, route);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const cache = r.headers.get("x-cache");
    if (cache) xCache[cache] = (xCache[cache] ?? 0) + 1;
    const m = TIMING.exec(r.headers.get("server-timing") ?? "");
    if (!m) throw new Error(`${route.name}: no contract Server-Timing header in ${r.status} ${r.text}`);
    const [reads, writes, lists, deletes, queries] = m.slice(1, 6).map(Number);
    total.kvReads += reads;
    total.kvWrites += writes;
    total.kvLists += lists;
    total.kvDeletes += deletes;
    total.d1Queries += queries;
    if (m[6] === undefined) primaryReported = false;
    else total.d1Primary += Number(m[6]);
  }
  const mean = Object.fromEntries(Object.entries(total).map(([k, v]) => [k, round(v / n, 3)]));
  if (!primaryReported) mean.d1Primary = null;
  return { samples: n, mean, statuses, xCache: Object.keys(xCache).length ? xCache : undefined };
}

/** Runs wrk against `route` on `base`; returns wrk's BENCH_JSON line, parsed. */
export function wrk(base, route, { duration, connections, threads = 1 }) {
  const headers = Object.entries(route.headers ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");
  const args = [`-t${threads}`, `-c${connections}`, `-d${duration}`, "--timeout", "2s", "-s", join(ROOT, "bench/wrk.lua"), base + route.path];
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

/**
 * A wrk run of `route` with the CPU time of each process group around it: `groups` maps a
 * name to a function returning PIDs. Returns throughput, latency and CPU µs per request of
 * each group.
 */
export async function load(base, route, groups, opts) {
  const pids = Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, f()]));
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuTicks(p)]));
  const w = await wrk(base, route, opts);
  const seconds = w.durationUs / 1e6;
  const cpuUsPerRequest = {};
  for (const [k, p] of Object.entries(pids)) {
    const ms = ((cpuTicks(p) - before[k]) * 1000) / CLK_TCK;
    cpuUsPerRequest[k] = w.requests > 0 ? round((ms * 1000) / w.requests, 1) : null;
  }
  return {
    requests: w.requests,
    seconds: round(seconds, 3),
    requestsPerSecond: round(w.requests / seconds, 0),
    latencyMs: { p50: round(w.p50Us / 1000, 3), p95: round(w.p95Us / 1000, 3), p99: round(w.p99Us / 1000, 3), max: round(w.maxUs / 1000, 3) },
    cpuUsPerRequest,
    non2xx3xx: w.errors.status,
    socketErrors: { connect: w.errors.connect, read: w.errors.read, write: w.errors.write, timeout: w.errors.timeout },
  };
}

const summarise = (runs) => ({
  cpuUsPerRequestByRound: runs.map((r) => r.cpuUsPerRequest.workerd),
  requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
  cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest.workerd)),
  latencyMs: { p50: median(runs.map((r) => r.latencyMs.p50)), p99: median(runs.map((r) => r.latencyMs.p99)) },
  non2xx3xx: runs.reduce((a, r) => a + r.non2xx3xx, 0),
  requests: runs.reduce((a, r) => a + r.requests, 0),
});

/**
 * Alternating wrk runs of each of `targets` ([{worker, route}]), after a warm-up run of each:
 * `rounds` rounds, each a run of every target in turn; their summaries (medians over the
 * rounds, and each round's CPU per request of the target's workerd).
 */
export async function alternateRuns(targets, { duration, connections, rounds, warmup }) {
  const opts = { duration, connections };
  for (const t of targets) await load(t.worker.base, t.route, {}, { ...opts, duration: warmup });
  const runs = targets.map(() => []);
  for (let i = 0; i < rounds; i++) {
    for (const [k, t] of targets.entries()) runs[k].push(await load(t.worker.base, t.route, { workerd: () => t.worker.pids }, opts));
  }
  return runs.map(summarise);
}

/**
 * The app's CPU per request less a ceiling's, from the rounds: each round's difference (its
 * runs are seconds apart, so a drift of the machine's speed falls out of it), then the mean of
 * the middle ones, a quarter of the rounds left out at each end (one run in a few meets a
 * garbage collection or a neighbour, ±60 µs on a KV route). `spread` is the range of the
 * differences kept.
 */
export function pairedOver(a, c) {
  const diffs = a.cpuUsPerRequestByRound.map((x, i) => x - c.cpuUsPerRequestByRound[i]).sort((x, y) => x - y);
  const cut = Math.floor(diffs.length / 4);
  const kept = diffs.slice(cut, diffs.length - cut);
  return { mean: round(kept.reduce((s, x) => s + x, 0) / kept.length, 1), spread: [round(kept[0], 1), round(kept.at(-1), 1)] };
}

// ---------------------------------------------------------------------------------------------
// The machine

export function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", timeout: 10_000 }).trim();
    } catch (e) {
      return String(e.stdout ?? "").trim() || "unknown"; // wrk -v exits 1
    }
  };
  const pkg = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  return {
    cpuModel: model,
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    workerd: version(join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd"), ["--version"]),
    workerdPackage: pkg("workerd"),
    miniflare: pkg("miniflare"),
    wrangler: pkg("wrangler"),
    wrk: /^wrk \S+/.exec(version("wrk", ["-v"]))?.[0] ?? "wrk (unknown version)",
    // Other work on the machine skews the timings: recorded, not controlled (see callgrind).
    loadAverage1mAtStart: round(loadavg()[0], 2),
  };
}

export function machineLine(m) {
  return `${m.cpuModel}, ${m.cores} cores, Linux ${m.kernel} (load average ${m.loadAverage1mAtStart} at start); Node ${m.node}, ${m.workerd} (npm workerd ${m.workerdPackage}), Miniflare ${m.miniflare}, wrangler ${m.wrangler}; ${m.wrk}`;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** A number with at most `digits` decimals, trailing zeros dropped. */
export const fmt = (x, digits = 2) =>
  x === null || x === undefined ? "–" : Number(x).toFixed(digits).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");

export const signed = (x, digits = 0) => {
  if (x === null || x === undefined) return "–";
  const magnitude = fmt(Math.abs(x), digits);
  return magnitude === "0" ? "0" : `${x >= 0 ? "+" : "−"}${magnitude}`;
};
