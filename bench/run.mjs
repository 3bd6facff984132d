// `npm run bench` (after scripts/bench.sh has set up, built and installed wrk).
//
// 1. Miniflare direct: the built Worker (build/index.js + Wasm) in workerd with local KV and
//    D1, seeded through its API, beside the ceiling Worker (bench/ceiling.js) in its own
//    workerd with a copy of the same KV data. For each hot route (bench/routes.mjs): storage
//    work per request from Server-Timing, then wrk runs alternating between the route and its
//    ceiling (the same KV work in plain JS), with throughput, latency and the workerd CPU time
//    per request (/proc) of each. Also: start-to-first-200 of both (the fastest of 9 boots
//    each), Wasm bytes.
// 2. D1 at scale: bench/d1.mjs, every D1 statement counted (background work included):
//    statements per session check and per second at 60 and 600 sessions used once a
//    second, floods, strict leases (results.json `sessionsScale`, `floods`, `strictLeases`).
// 3. Feature flags at scale: bench/flags.mjs, CPU per bulk OFREP request at 50, 500 and
//    5,000 targeted flags against a ceiling with the same answer, the isolate's memory at
//    5,000 flags (V8 inspector and /proc), and the CPU of idle event streams (results.json
//    `flagsAtScale`, `eventStreams`).
// 4. wrangler dev: bench/wrangler.mjs, the way users run it.
// 5. With --profile (or BENCH_PROFILE=1): bench/profile.mjs, where the CPU goes (perf) and
//    instructions per request (callgrind).
// Writes bench/results.json, prints the tables and rewrites the generated section of
// docs/performance.md (between the START and END markers below); then, if bench/capacity.mjs
// exists, runs `node bench/capacity.mjs --write` (docs/capacity.md's generated block, from
// bench/results.json). Talks only to 127.0.0.1.
//
// Environment (all optional): BENCH_PORT (default 8820; the bench uses it and the next 9),
// BENCH_DURATION (wrk -d per run, default 3s), BENCH_CONNECTIONS (default 8), BENCH_ROUNDS
// (alternations per route, default 11), BENCH_SAMPLES (sequential requests for the storage
// counts, default 50), BENCH_SCALE_SECONDS (how long each number of sessions is used, default
// 20), BENCH_LEASE_SECONDS (the strict-lease run, default 10), BENCH_NO_README=1 (leaves
// docs/performance.md alone; the name is older than that page), BENCH_NO_WRANGLER=1,
// BENCH_DRY_RUN (a file with the output of `wrangler deploy --dry-run`, for its upload sizes),
// BENCH_FLAG_DURATION and BENCH_FLAG_ROUNDS (the flags-at-scale wrk runs, default 2s and 5),
// BENCH_STREAMS and BENCH_STREAM_SECONDS (idle event streams: how many, default 100, and the
// window they are measured over, default 25 s),
// BENCH_ONLY (a comma-separated list of the parts to measure: startup, direct, d1, flags, wrangler;
// the others are taken from bench/results.json as it was), BENCH_RESULTS (where to write the
// results instead of bench/results.json; docs/performance.md and capacity.mjs are left alone
// then). `--from-results` measures nothing: it recomputes the targets and
// docs/performance.md's generated section from bench/results.json.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { migrationStatements } from "../tests/helpers.js";
import { ROOT, alternateRuns, bootWorker, expectStatus, fmt, log, machine, machineLine, median, pairedOver, round, signed, storagePerRequest } from "./common.mjs";
import { measureD1 } from "./d1.mjs";
import { measureFlags } from "./flags.mjs";
import { profile } from "./profile.mjs";
import { BUDGETS, LIMITED, ROUTES, answerHeaders, ceilingFor, limitFlags, overBudget, resolve, seed, sendHeaders } from "./routes.mjs";
import { measureWranglerDev } from "./wrangler.mjs";

const BASE_PORT = Number(process.env.BENCH_PORT ?? 8820);
const PORTS = {
  app: BASE_PORT,
  ceiling: BASE_PORT + 1,
  entrypoint: BASE_PORT + 2,
  wrangler: { app: BASE_PORT + 3, appInspector: BASE_PORT + 4, ceiling: BASE_PORT + 5, ceilingInspector: BASE_PORT + 6 },
  profile: { app: BASE_PORT + 7, ceiling: BASE_PORT + 8 },
  plainCeiling: BASE_PORT + 9,
};
const SETTINGS = {
  duration: process.env.BENCH_DURATION ?? "3s",
  connections: Number(process.env.BENCH_CONNECTIONS ?? 8),
  rounds: Number(process.env.BENCH_ROUNDS ?? 11),
  storageSamples: Number(process.env.BENCH_SAMPLES ?? 50),
  scaleSeconds: Number(process.env.BENCH_SCALE_SECONDS ?? 20),
  leaseSeconds: Number(process.env.BENCH_LEASE_SECONDS ?? 10),
  warmup: "2s",
  basePort: BASE_PORT,
};
/** The flags-at-scale part (bench/flags.mjs): shorter wrk runs and fewer rounds than the hot routes'. */
const FLAG_SETTINGS = {
  duration: process.env.BENCH_FLAG_DURATION ?? "2s",
  connections: SETTINGS.connections,
  rounds: Number(process.env.BENCH_FLAG_ROUNDS ?? 5),
  warmup: "1s",
};
const STREAMS = Number(process.env.BENCH_STREAMS ?? 100);
const STREAM_SECONDS = Number(process.env.BENCH_STREAM_SECONDS ?? 25);
const PROFILE = process.argv.includes("--profile") || process.env.BENCH_PROFILE === "1";
const PARTS = ["startup", "direct", "d1", "flags", "wrangler"];
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((p) => p.trim()) : null;
for (const p of ONLY ?? []) if (!PARTS.includes(p)) throw new Error(`BENCH_ONLY: no part "${p}" (${PARTS.join(", ")})`);
const RESULTS = join(ROOT, "bench/results.json");
const OUT = process.env.BENCH_RESULTS ?? RESULTS;
const CAPACITY = join(ROOT, "bench/capacity.mjs");
const TARGETS = { healthOverCeilingUs: 30, routeOverCeilingUs: 120, wranglerHealthRatio: 0.9, startupRatio: 1.4, wasmGzipBytes: 140 * 1024 };

// ---------------------------------------------------------------------------------------------
// Sizes and start-up

function wasmSize() {
  const path = join(ROOT, "build/index_bg.wasm");
  const wasm = readFileSync(path);
  const zlibBytes = gzipSync(wasm, { level: 9 }).length;
  let gzipBytes = zlibBytes; // `gzip -9` itself when installed (a few hundred bytes smaller than zlib's)
  try {
    gzipBytes = execFileSync("gzip", ["-9", "-c", path], { maxBuffer: 1 << 26 }).length;
  } catch {}
  const out = { rawBytes: wasm.length, gzipBytes, zlibLevel9Bytes: zlibBytes, rawKiB: round(wasm.length / 1024, 1), gzipKiB: round(gzipBytes / 1024, 1) };
  const dryRun = process.env.BENCH_DRY_RUN && existsSync(process.env.BENCH_DRY_RUN) ? readFileSync(process.env.BENCH_DRY_RUN, "utf8") : "";
  const upload = /Total Upload:\s*([\d.]+) KiB \/ gzip:\s*([\d.]+) KiB/.exec(dryRun);
  if (upload) out.wranglerDryRun = { totalUploadKiB: Number(upload[1]), gzipKiB: Number(upload[2]) };
  const size = join(ROOT, "bench/size.json");
  if (existsSync(size)) out.attribution = JSON.parse(readFileSync(size, "utf8"));
  return out;
}

/** Start-to-first-200 of the ceiling and the app, booted alternately `n` times; medians. */
async function startup(n) {
  const times = { ceiling: [], app: [] };
  for (let i = 0; i < n; i++) {
    for (const [name, scriptPath] of [
      ["ceiling", join(ROOT, "bench/ceiling.js")],
      ["app", join(ROOT, "build/index.js")],
    ]) {
      const w = await bootWorker({ scriptPath, port: PORTS.app, storage: true });
      times[name].push(w.startToFirst200Ms);
      await w.mf.dispose();
    }
  }
  // The fastest of each: a start-up only gets slower when other work shares the machine.
  const ceiling = round(Math.min(...times.ceiling), 1);
  const app = round(Math.min(...times.app), 1);
  const medians = { ceilingMs: round(median(times.ceiling), 1), appMs: round(median(times.app), 1) };
  return { ceilingMs: ceiling, appMs: app, ratio: round(app / ceiling, 2), medians, runs: times };
}

// ---------------------------------------------------------------------------------------------
// Miniflare direct

async function seedApp(app) {
  const db = await app.mf.getD1Database("DB");
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  const kv = await app.mf.getKVNamespace("CACHE");
  return seed(app.base, (text) => kv.put("config:app", text));
}

/** Copies the app's KV entries (not rate-limit counters) to the ceiling's namespace. */
async function copyKv(app, ceiling) {
  const from = await app.mf.getKVNamespace("CACHE");
  const to = await ceiling.mf.getKVNamespace("CACHE");
  const keys = (await from.list()).keys.map((k) => k.name).filter((k) => !k.startsWith("rl:"));
  for (const key of keys) await to.put(key, await from.get(key));
  return keys;
}

/** Alternating wrk runs of each of `targets` ([{worker, route}]); their summaries. */
const alternate = (targets) => alternateRuns(targets, SETTINGS);

/**
 * One route against two ceilings doing its KV work (and body parse): `ceiling` answers with
 * the route's own response headers (the figure the targets use), `plain` with Content-Type
 * alone (what those headers cost the runtime, shown beside it).
 */
async function measureRoute({ app, ceiling, plain }, extra, route, keys) {
  await expectStatus(app.base, route, route.expect);
  const storage = await storagePerRequest(app.base, route, SETTINGS.storageSamples);
  const headers = await answerHeaders(app.base, route);
  await sendHeaders(ceiling.base, headers);
  const ceilingRoute = ceilingFor(route, keys);
  await expectStatus(ceiling.base, ceilingRoute, 200);
  await expectStatus(plain.base, ceilingRoute, 200);
  const targets = [
    { worker: ceiling, route: ceilingRoute },
    { worker: app, route },
    { worker: plain, route: ceilingRoute },
    ...extra,
  ];
  const [c, a, p, ...others] = await alternate(targets);
  const budget = BUDGETS[route.budget];
  const over = pairedOver(a, c);
  const entry = {
    name: route.name,
    method: route.method,
    path: route.path,
    expectedStatus: route.expect,
    load: a,
    ceiling: { request: `${ceilingRoute.method} ${ceilingRoute.path}`, headers, ...c },
    plainCeiling: { request: `${ceilingRoute.method} ${ceilingRoute.path}`, headers: { "content-type": "application/json" }, ...p },
    cpuUsOverCeiling: over.mean,
    cpuUsOverCeilingSpread: over.spread,
    cpuUsOverPlainCeiling: pairedOver(a, p).mean,
    ratioToCeiling: round(a.requestsPerSecond / c.requestsPerSecond, 3),
    storage,
    budget,
    overBudget: overBudget(storage, budget),
    unexpectedStatuses: Object.keys(storage.statuses).some((s) => Number(s) !== route.expect && !(route.alsoOk ?? []).includes(Number(s))) || undefined,
  };
  if (others.length) entry.others = others;
  log(
    `${route.name}: ${a.requestsPerSecond} req/s (${entry.ratioToCeiling}× its ceiling), p99 ${a.latencyMs.p99} ms, ` +
      `${a.cpuUsPerRequest} µs CPU/req (ceiling ${c.cpuUsPerRequest}, ${signed(entry.cpuUsOverCeiling)}; without its headers ${p.cpuUsPerRequest}, ${signed(entry.cpuUsOverPlainCeiling)}), storage ${JSON.stringify(storage.mean)}` +
      (entry.overBudget.length ? ` OVER BUDGET: ${entry.overBudget.join(", ")}` : ""),
  );
  return entry;
}

async function measureDirect() {
  log("direct: booting the app, the ceiling and the entrypoint-shaped ceiling");
  const app = await bootWorker({ scriptPath: join(ROOT, "build/index.js"), port: PORTS.app, storage: true });
  const ceiling = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling.js"), port: PORTS.ceiling, storage: true });
  const plain = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling.js"), port: PORTS.plainCeiling, storage: true });
  const entrypoint = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling-entrypoint.js"), port: PORTS.entrypoint, storage: false });
  try {
    const seeded = await seedApp(app);
    const keys = await copyKv(app, ceiling);
    await copyKv(app, plain);
    const workers = { app, ceiling, plain };
    const routes = [];
    for (const r of ROUTES) {
      await r.setup?.(app.base);
      const route = resolve(r, seeded);
      // /health also runs against the entrypoint-shaped ceiling (see bench/ceiling-entrypoint.js).
      const extra = route.path === "/health" ? [{ worker: entrypoint, route: { method: "GET", path: "/", headers: {} } }] : [];
      routes.push(await measureRoute(workers, extra, route, keys));
    }
    // Over the limit: the flags group limited to 1 per window, so nearly every request is a 429.
    await limitFlags(app.base);
    await fetch(app.base + LIMITED.path).then((r) => r.arrayBuffer()); // may be the one admitted request
    const limited = await measureRoute(workers, [], resolve(LIMITED, seeded), keys);
    limited.load.share429 = round(limited.load.non2xx3xx / limited.load.requests, 4);
    routes.push(limited);
    const health = routes.find((r) => r.path === "/health");
    return {
      routes,
      entrypointCeiling: {
        about: "bench/ceiling-entrypoint.js: the constant answer through a worker-build-shaped entrypoint (class + Proxy)",
        ...health.others[0],
        cpuUsOverCeiling: pairedOver(health.others[0], health.plainCeiling).mean,
      },
    };
  } finally {
    for (const w of [app, ceiling, plain, entrypoint]) await w.mf.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Targets

function targets(results) {
  const out = [];
  const add = (name, value, limit, met, note) => out.push({ name, value, limit, met, ...(note && { note }) });
  const w = results.wasm;
  add("Wasm bytes after gzip -9 (build/index_bg.wasm; 140 KiB)", w.gzipBytes, TARGETS.wasmGzipBytes, w.gzipBytes <= TARGETS.wasmGzipBytes);
  const ins = results.profile?.instructions;
  const usPerIr = ins?.ceiling ? results.direct.routes.find((r) => r.path === "/health").plainCeiling.cpuUsPerRequest / ins.ceiling : null;
  for (const r of results.direct.routes) {
    const limit = r.path === "/health" ? TARGETS.healthOverCeilingUs : TARGETS.routeOverCeilingUs;
    const irOver = ins?.[r.name] && ins[`ceiling: ${r.name}`] ? ins[r.name] - ins[`ceiling: ${r.name}`] : null;
    const writes = ins?.[`storage: ${r.name}`]?.kvWrites ?? 0;
    const syncs =
      writes > 0
        ? `, with ${writes} KV writes per counted request, which the ceiling does not do: the approximate rate limiter's counter syncs, at most one a second, land in one request of a few under callgrind's fifty-fold slowdown, one in thousands at full speed, so this count overstates the route`
        : "";
    const note = irOver === null ? undefined : `callgrind: ${signed(irOver)} instructions/request over its ceiling ≈ ${signed(irOver * usPerIr)} µs${syncs}`;
    const untargeted = ROUTES.find((x) => x.name === r.name)?.untargeted;
    const [shownLimit, met] = untargeted ? ["–", null] : [limit, r.cpuUsOverCeiling <= limit];
    add(`${r.name}: workerd CPU µs/request over its ceiling`, r.cpuUsOverCeiling, shownLimit, met, [untargeted, note].filter(Boolean).join("; "));
    add(`${r.name}: storage within bench/budgets.json`, r.overBudget.join(", ") || "within", "budget", r.overBudget.length === 0);
  }
  d1Targets(results, add);
  const wh = results.wranglerDev?.routes?.find((r) => r.name === "GET /health");
  if (wh) add("wrangler dev: GET /health req/s ÷ the ceiling's", wh.ratioToCeiling, TARGETS.wranglerHealthRatio, wh.ratioToCeiling >= TARGETS.wranglerHealthRatio);
  add("start to first 200 ÷ the ceiling's", results.startup.ratio, TARGETS.startupRatio, results.startup.ratio <= TARGETS.startupRatio);
  return out;
}

/** The targets of bench/d1.mjs's figures (the budgets tests/worker/scale.test.js asserts). */
function d1Targets(results, add) {
  const scale = results.sessionsScale;
  if (scale?.runs?.length >= 2) {
    const [small, large] = scale.runs;
    add(`D1 statements per session check, ${small.sessions} sessions each used once a second`, fmt(small.d1PerCheck, 5), scale.budget.d1PerCheck, scale.perCheckWithinBudget);
    add(
      `D1 statements, ${large.sessions} sessions against ${small.sessions}, over the same ${large.seconds} s (at most ${small.sessions}'s + ${scale.tenfoldAllowance} for the feed's timing)`,
      `${large.d1Queries} vs ${small.d1Queries}`,
      "budget",
      scale.tenfoldWithinBudget,
    );
  }
  const f = results.floods;
  if (f) {
    const a = f.anonymousToStrictGroup;
    add(`D1 statements of ${a.requests} anonymous requests from ${a.addresses} addresses to a strict group`, a.d1Queries, a.budget, a.d1Queries <= a.budget);
    const m = f.missingUser;
    add(`D1 statements of ${m.requests} reads of one missing user`, m.d1Queries, m.budget, m.d1Queries <= m.budget);
    const u = f.unknownSessionIds;
    const expected = u.budget.failuresPerMinute;
    add(
      `${u.requests} unknown session ids from one client: D1 statements before the first 429 (at request ${u.refusedFrom}) / after`,
      `${u.d1QueriesBeforeRefusal} / ${u.d1QueriesAfterRefusal}`,
      `${expected * u.budget.d1QueriesEach} / 0`,
      u.refusedFrom === expected + 1 && u.d1QueriesBeforeRefusal <= expected * u.budget.d1QueriesEach && u.d1QueriesAfterRefusal === 0,
    );
    for (const s of f.oneSlash64 ?? []) {
      add(`${s.addresses.length} addresses of one /64 share one limit of ${s.limit} (${s.tier}); another /64 is not limited by them`, s.shared ? "shared" : "not shared", "shared", s.shared);
    }
  }
  const l = results.strictLeases;
  if (l) {
    add(
      `strict leases, one client at ${l.requestsPerSecond} req/s for ${l.seconds} s: leases per second after the first second (${l.leasesInFirstSecond} in it)`,
      l.leasesPerSecondAfterFirst,
      l.budget.d1WritesPerSecond,
      l.withinBudget,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function directTable(results) {
  const rows = [
    "| route | req/s | × its ceiling | p50 ms | p99 ms | workerd CPU µs/req | its ceiling µs/req | over it µs (spread) | over its ceiling without the route's headers µs | KV reads/req | KV writes/req | D1 queries/req | of which the primary's |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of results.direct.routes) {
    const s = r.storage.mean;
    rows.push(
      `| \`${r.name}\` | ${r.load.requestsPerSecond} | ${fmt(r.ratioToCeiling)} | ${fmt(r.load.latencyMs.p50)} | ${fmt(r.load.latencyMs.p99)} | ${fmt(r.load.cpuUsPerRequest, 0)} | ${fmt(r.ceiling.cpuUsPerRequest, 0)} | ${signed(r.cpuUsOverCeiling)} (${r.cpuUsOverCeilingSpread.map((x) => signed(x)).join(" … ")}) | ${signed(r.cpuUsOverPlainCeiling)} | ${fmt(s.kvReads, 3)} | ${fmt(s.kvWrites, 3)} | ${fmt(s.d1Queries, 3)} | ${fmt(s.d1Primary, 3)} |`,
    );
  }
  return rows.join("\n");
}

/** The D1-at-scale lines of the generated section (bench/d1.mjs). */
function d1Lines(results) {
  const lines = [];
  const scale = results.sessionsScale;
  if (scale?.runs?.length) {
    lines.push(
      "| D1 at scale (every statement counted, background included; one isolate) | sessions | seconds | checks | D1 statements | per check | per second |",
      "|---|--:|--:|--:|--:|--:|--:|",
    );
    for (const r of scale.runs) {
      lines.push(`| each session used once a second (\`GET /sessions/current\`) | ${r.sessions} | ${r.seconds} (${fmt(r.elapsedSeconds, 1)} elapsed) | ${r.checks.toLocaleString("en")} | ${r.d1Queries} | ${fmt(r.d1PerCheck, 5)} | ${fmt(r.d1PerSecond, 3)} |`);
    }
    lines.push("");
  }
  const f = results.floods;
  if (f) {
    const a = f.anonymousToStrictGroup;
    const m = f.missingUser;
    const u = f.unknownSessionIds;
    const slash = (f.oneSlash64 ?? []).map((s) => `${s.tier}: ${s.shared ? "shared" : "**not shared**"}, ${s.d1Queries} D1 statements`).join("; ");
    lines.push(
      `- **Floods** (D1 statements in all): ${a.requests} anonymous \`GET /sessions/current\` from ${a.addresses} addresses with \`sessions\` a strict group: ${a.d1Queries}; ` +
        `${m.requests} reads of one missing user: ${m.d1Queries} (all at once: ${m.d1QueriesAllAtOnce}); ` +
        `${u.requests} unknown session ids from one client: ${u.d1QueriesBeforeRefusal} until the first 429 (request ${u.refusedFrom ?? "–"}), ${u.d1QueriesAfterRefusal} after; ` +
        `five addresses of one /64 against a limit of 5: ${slash}.`,
    );
  }
  const l = results.strictLeases;
  if (l) {
    lines.push(
      `- **Strict leases**: one client at ${fmt(l.requestsPerSecond, 1)} requests/s for ${fmt(l.seconds, 1)} s to a strict group: ${l.leases} leases and ${l.prunes} prune, ${fmt(l.d1WritesPerSecond, 2)} D1 writes/s (${l.leasesInFirstSecond} leases in the first second, ${fmt(l.leasesPerSecondAfterFirst, 2)}/s after).`,
    );
  }
  if (f || l) lines.push("");
  return lines;
}

/** The flags-at-scale lines of the generated section (bench/flags.mjs). */
function flagLines(results) {
  const f = results.flagsAtScale;
  const lines = [];
  if (f?.sizes?.length) {
    const shape = JSON.stringify(f.flagShape);
    lines.push(
      "| bulk OFREP at scale (`POST /ofrep/v1/evaluate/flags`) | config stored, bytes | answer, bytes | req/s | workerd CPU µs/req | its ceiling µs/req (the same answer) | over it µs (spread) | per flag µs (over it ÷ flags) | per flag µs (all of it ÷ flags) |",
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    );
    for (const s of f.sizes) {
      lines.push(
        `| ${s.flags.toLocaleString("en")} targeted flags | ${s.configStoredBytes.toLocaleString("en")} | ${s.answerBytes.toLocaleString("en")} | ${s.load.requestsPerSecond} | ${fmt(s.cpuUsPerRequest, 0)} | ${fmt(s.ceilingCpuUsPerRequest, 0)} | ${signed(s.cpuUsOverCeiling)} (${s.cpuUsOverCeilingSpread.map((x) => signed(x)).join(" … ")}) | ${fmt(s.cpuUsPerFlag, 2)} | ${fmt(s.cpuUsPerFlagWithCeiling, 2)} |`,
      );
    }
    const marginal = f.marginal.map((m) => `${fmt(m.cpuUsPerAddedFlag, 2)} µs from ${m.from.toLocaleString("en")} to ${m.to.toLocaleString("en")}`).join(", ");
    lines.push(
      "",
      `Each flag is \`${shape}\` (the rule and the split vary by flag); the context \`${JSON.stringify(f.context)}\` matches no rule, so every flag is evaluated through its rule and its rollout (reason SPLIT). The ceiling reads and parses the same request body and answers the route's very answer, with its headers. Per flag, over the ceiling: ${fmt(f.sizes.at(-1).cpuUsPerFlag, 2)} µs at ${f.sizes.at(-1).flags.toLocaleString("en")} flags, ${fmt(f.perFlagAtLargestOverSmallest, 2)}× the figure at ${f.sizes[0].flags}; each added flag: ${marginal}. wrk \`-c${f.settings.connections} -d${f.settings.duration}\`, ${f.settings.rounds} rounds alternating with the ceiling.`,
      "",
    );
  }
  const m = f?.memory;
  if (m) {
    const mib = (b) => fmt(b / 1024 / 1024, 1);
    const kib = (k) => fmt(k / 1024, 0);
    const w = m.writer;
    const r = m.reader;
    lines.push(
      `- **Memory at ${m.flags.toLocaleString("en")} flags** (config ${m.configStoredBytes.toLocaleString("en")} bytes stored; the isolate's limit is ${m.isolateLimitMiB} MB): ` +
        `the Worker's **Wasm linear memory** (V8 inspector: the byte length of its \`WebAssembly.Memory\`, which never shrinks) grew from ${mib(w.before.wasmMemoryBytes)} to **${mib(w.after.wasmMemoryBytes)} MiB** in the isolate that wrote the config, ` +
        `**${mib(w.afterSecondVersion.wasmMemoryBytes)} MiB** after a second version of as many flags and ${mib(w.afterThirdVersion.wasmMemoryBytes)} MiB after a third, ` +
        `and to **${mib(r.after.wasmMemoryBytes)} MiB** in an isolate that only read it from KV; its **JS heap** after a full collection (\`Runtime.getHeapUsage\`) stayed at ${mib(w.after.jsHeapUsedBytes)} MiB (${mib(w.before.jsHeapUsedBytes)} before). ` +
        `The whole **workerd process's RSS** (/proc VmRSS, which also holds Miniflare's entry Worker and the local KV and D1 simulators with their copies of the config): ${kib(w.before.processRssKiB)} → ${kib(w.after.processRssKiB)} MiB (peak ${kib(w.after.processPeakRssKiB)}) for the writer, ${kib(w.afterThirdVersion.processRssKiB)} MiB after the third version; ${kib(r.before.processRssKiB)} → ${kib(r.after.processRssKiB)} MiB (peak ${kib(r.after.processPeakRssKiB)}) for the reader.`,
    );
  }
  const e = results.eventStreams;
  if (e?.manyStreams) {
    lines.push(
      `- **Idle event streams** (\`GET /ofrep/v1/events\`, no config change; workerd's CPU from /proc schedstat, all threads): ${fmt(e.idle.cpuMsPerMinute, 1)} ms CPU a minute with no stream; ` +
        `one stream: ${fmt(e.oneStreamSmallConfig.cpuMsPerMinute, 1)} ms/min with the bench's small config (${e.smallConfigStoredBytes.toLocaleString("en")} bytes), ${fmt(e.oneStream.cpuMsPerMinute, 1)} ms/min with ${e.flags.toLocaleString("en")} flags ` +
        `(while a stream is open the isolate re-reads its config's metadata from KV every ${e.tickSeconds} s, once however many streams, and transfers the text only for a new version); ` +
        `${e.streams} streams (${e.flags.toLocaleString("en")} flags, opened over one tick; every stream of an isolate ticks at once, on the multiples of ${e.tickSeconds} s): ${fmt(e.manyStreams.cpuMsPerMinute, 1)} ms/min, ${e.manyStreams.sent.comments} keep-alive comments and ${e.manyStreams.sent.events} events sent in ${fmt(e.manyStreams.seconds, 0)} s: ` +
        `**${fmt(e.cpuMsPerStreamPerMinute, 2)} ms CPU per stream per minute** (${fmt(e.cpuMsPerAddedStreamPerMinute, 2)} ms for each stream after the first).`,
    );
  }
  if (m || e) lines.push("");
  return lines;
}

function wranglerTable(results) {
  const wd = results.wranglerDev;
  if (!wd?.routes) return `wrangler dev: ${wd?.skipped ?? "not measured"}.`;
  const rows = [
    "| through `wrangler dev` | req/s | its ceiling req/s | × its ceiling | wrangler CPU µs/req (its ceiling) | workerd CPU µs/req (its ceiling) | p50 ms |",
    "|---|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of wd.routes) {
    rows.push(
      `| \`${r.name}\` | ${r.app.requestsPerSecond} | ${r.ceiling.requestsPerSecond} | ${fmt(r.ratioToCeiling)} | ${fmt(r.app.wranglerCpuUsPerRequest, 0)} (${fmt(r.ceiling.wranglerCpuUsPerRequest, 0)}) | ${fmt(r.app.workerdCpuUsPerRequest, 0)} (${fmt(r.ceiling.workerdCpuUsPerRequest, 0)}) | ${fmt(r.app.p50Ms)} |`,
    );
  }
  return rows.join("\n");
}

function profileTables(results) {
  const p = results.profile;
  if (!p) return [];
  const lines = [];
  if (p.instructions && !p.instructions.skipped) {
    lines.push(
      "| callgrind: instructions per request, outside V8's foreground tasks | route | its ceiling | over it | in foreground tasks: route (its ceiling) | storage ops per request while counted (KV reads / writes, D1) |",
      "|---|--:|--:|--:|--:|--:|",
    );
    for (const r of results.direct.routes) {
      const a = p.instructions[r.name];
      const c = p.instructions[`ceiling: ${r.name}`];
      const st = p.instructions[`storage: ${r.name}`];
      const ops = st ? `${fmt(st.kvReads, 3)} / ${fmt(st.kvWrites, 3)}, ${fmt(st.d1Queries, 3)}` : "–";
      const tasks = `${(p.instructions[`foreground tasks: ${r.name}`] ?? 0).toLocaleString("en")} (${(p.instructions[`ceiling foreground tasks: ${r.name}`] ?? 0).toLocaleString("en")})`;
      if (a && c) lines.push(`| \`${r.name}\` | ${a.toLocaleString("en")} | ${c.toLocaleString("en")} | ${signed(a - c)} | ${tasks} | ${ops} |`);
    }
    lines.push(
      "",
      "Each route's ceiling does its KV work and sends its headers, as in the load runs. V8's foreground tasks (`DefaultPlatform::PumpMessageLoop`: the C++ heap's incremental sweeping and the like) run in slices of wall time, which callgrind stretches fifty-fold, so their instructions swing from run to run and are left out of the compared figures.",
      "",
    );
  } else if (p.instructions?.skipped) {
    lines.push(`callgrind: skipped (${p.instructions.skipped}).`, "");
  }
  if (p.stages && !p.stages.skipped) {
    const shown = ["ceiling", "GET /health", "GET /config", "GET /sessions/current", "POST /users/batch (10 ids, cached)"];
    const names = Object.keys(p.stages).filter((n) => shown.includes(n));
    const all = [...new Set(names.flatMap((n) => Object.keys(p.stages[n].stages)))];
    const total = (n) => Object.values(p.stages[n].stages).reduce((a, b) => a + b, 0);
    all.sort((x, y) => (p.stages[names[1]]?.stages[y] ?? 0) - (p.stages[names[1]]?.stages[x] ?? 0));
    lines.push(`| perf: µs of CPU per request, by stage | ${names.map((n) => `\`${n}\``).join(" | ")} |`, `|---|${names.map(() => "--:").join("|")}|`);
    for (const s of all) lines.push(`| ${s} | ${names.map((n) => fmt(p.stages[n].stages[s] ?? 0, 1)).join(" | ")} |`);
    lines.push(`| **total (sampled)** | ${names.map((n) => `**${fmt(total(n), 0)}**`).join(" | ")} |`, "");
  } else if (p.stages?.skipped) {
    lines.push(`perf stages: skipped (${p.stages.skipped}).`, "");
  }
  return lines;
}

function attributionTable(attribution) {
  if (!attribution?.top) return [];
  const rows = ["| contributor (top 15 of the named build) | code bytes | share | gzip -9 alone |", "|---|--:|--:|--:|"];
  for (const c of attribution.top.slice(0, 15)) rows.push(`| ${c.name} | ${c.bytes.toLocaleString("en")} | ${fmt(c.share * 100, 1)}% | ${c.gzipBytes === null ? "–" : c.gzipBytes.toLocaleString("en")} |`);
  return rows;
}

function generatedSection(results) {
  const m = results.machine;
  const w = results.wasm;
  const d = results.direct;
  const e = d.entrypointCeiling;
  const lines = [
    `Last measured on ${results.date.slice(0, 10)} by \`npm run bench${results.settings.profile ? " -- --profile" : ""}\` on ${machineLine(m)}.` +
      (results.partial ? ` That run measured ${results.partial.measured.join(", ")} (\`BENCH_ONLY\`); the other figures are from the run of ${results.partial.othersFrom?.slice(0, 10) ?? "an earlier date"}.` : ""),
    "",
    directTable(results),
    "",
    `The same constant answer through an entrypoint shaped like worker-build's (\`bench/ceiling-entrypoint.js\`: a \`WorkerEntrypoint\` class behind a \`Proxy\`) costs ${fmt(e.cpuUsPerRequest, 0)} µs/req, ${signed(e.cpuUsOverCeiling)} µs over the constant ceiling sending \`Content-Type\` alone (by callgrind, about 32,000 instructions per request more than a plain module Worker; worker-build's real entrypoint cost edgestate some 130,000). edgestate's build does not use that shape: \`scripts/entry.js\` calls worker-build's handlers without the per-request \`Proxy\`s.`,
    "",
    wranglerTable(results),
    "",
    ...d1Lines(results),
    ...flagLines(results),
    ...profileTables(results),
    `- **Wasm**: ${w.rawBytes.toLocaleString("en")} bytes raw, **${w.gzipBytes.toLocaleString("en")} bytes gzip -9** (${w.gzipKiB} KiB; \`build/index_bg.wasm\`)${w.wranglerDryRun ? `; \`wrangler deploy --dry-run\`: total upload ${w.wranglerDryRun.totalUploadKiB} KiB, gzip ${w.wranglerDryRun.gzipKiB} KiB` : ""}.`,
    `- **Start to first 200** (a new workerd through Miniflare until \`GET /health\` answers 200; the fastest of ${results.startup.runs.app.length} alternating starts, medians in brackets): ${fmt(results.startup.appMs, 0)} ms (${fmt(results.startup.medians.appMs, 0)}), the ceiling ${fmt(results.startup.ceilingMs, 0)} ms (${fmt(results.startup.medians.ceilingMs, 0)}): ${fmt(results.startup.ratio)}×.`,
    `- **Load**: wrk \`-t1 -c${results.settings.connections} -d${results.settings.duration}\`, ${results.settings.rounds} rounds per route, each a run of the ceiling, the route and the ceiling without the route's headers, after a ${results.settings.warmup} warm-up; req/s, latency and CPU columns are medians over the rounds, and "over it" is the mean of the rounds' differences (the runs of a round are seconds apart, so a drift of the machine's speed falls out) without the highest and lowest quarter, with the range of the differences kept in brackets; loopback only; one client address; rate limits seeded high except the 429 row. **CPU** is utime+stime of the workerd process over a run ÷ the requests completed; it includes Miniflare's entry Worker and, for routes that read KV, the local KV simulator, which is why each route is compared with a ceiling doing the same KV reads (and reading and parsing the same body, for a POST). **The ceiling answers with the route's own response headers** (\`Server-Timing\`, \`RateLimit\` and the legacy three, \`Cache-Control\`, \`X-Content-Type-Options\`: what the contract asks of any Worker answering the route, copied from one of edgestate's answers), so that "over it" is edgestate's code and not the runtime's work for those headers; the column beside it is the same comparison with a ceiling sending \`Content-Type\` alone. Storage counts are the means of \`Server-Timing\` over ${results.settings.storageSamples} sequential requests (the primary's D1 queries: its \`d1-primary\`). The D1-at-scale figures count every statement the Worker sends, work after the response included, through a wrapper of its \`DB\` binding (\`tests/worker/counted.js\`).`,
    "",
    "| target | measured | limit | met |",
    "|---|--:|--:|:-:|",
    ...results.targets.map((t) => `| ${t.name}${t.note ? ` (${t.note})` : ""} | ${typeof t.value === "number" ? fmt(t.value, 2) : t.value} | ${t.limit} | ${t.met === null ? "–" : t.met ? "yes" : "**no**"} |`),
  ];
  const attribution = attributionTable(w.attribution);
  if (attribution.length) lines.push("", `Size attribution (\`bash scripts/size.sh\`, ${w.attribution.date?.slice(0, 10) ?? ""}):`, "", ...attribution);
  return lines.join("\n");
}

const START = "<!-- bench:start (generated by npm run bench) -->";
const END = "<!-- bench:end -->";

/** Replaces what lies between START and END in docs/performance.md with `section`. */
function rewritePerformancePage(section) {
  const path = join(ROOT, "docs/performance.md");
  const page = readFileSync(path, "utf8");
  const a = page.indexOf(START);
  const b = page.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/performance.md has no ${START} … ${END} block`);
  writeFileSync(path, page.slice(0, a + START.length) + "\n" + section + "\n" + page.slice(b));
}

// ---------------------------------------------------------------------------------------------

/** Whether this run measures `part` (all parts unless BENCH_ONLY names some). */
const measures = (part) => ONLY === null || ONLY.includes(part);

async function main() {
  if (process.argv.includes("--from-results")) return fromResults();
  const started = Date.now();
  // A partial run (BENCH_ONLY) keeps the other parts' figures from bench/results.json.
  const previous = ONLY ? JSON.parse(readFileSync(RESULTS, "utf8")) : {};
  const results = { date: new Date().toISOString(), machine: machine(), settings: { ...SETTINGS, profile: PROFILE } };
  if (ONLY) results.partial = { measured: ONLY, othersFrom: previous.date ?? null };
  results.wasm = wasmSize();
  log(`machine: ${machineLine(results.machine)}`);
  log(`wasm: ${results.wasm.rawBytes} B raw, ${results.wasm.gzipBytes} B gzip`);
  if (measures("startup")) {
    results.startup = await startup(9);
    log(`start to first 200: app ${results.startup.appMs} ms, ceiling ${results.startup.ceilingMs} ms`);
  } else results.startup = previous.startup;
  results.direct = measures("direct") ? await measureDirect() : previous.direct;
  if (measures("d1")) {
    Object.assign(results, await measureD1({ port: PORTS.app, seconds: SETTINGS.scaleSeconds, leaseSeconds: SETTINGS.leaseSeconds }));
  } else {
    for (const k of ["sessionsScale", "floods", "strictLeases"]) if (previous[k]) results[k] = previous[k];
  }
  if (measures("flags")) {
    const ports = { app: PORTS.app, ceiling: PORTS.ceiling, inspector: PORTS.entrypoint };
    Object.assign(results, await measureFlags({ ports, settings: FLAG_SETTINGS, streams: STREAMS, streamSeconds: STREAM_SECONDS }));
  } else {
    for (const k of ["flagsAtScale", "eventStreams"]) if (previous[k]) results[k] = previous[k];
  }
  if (!measures("wrangler")) {
    results.wranglerDev = previous.wranglerDev;
  } else if (process.env.BENCH_NO_WRANGLER === "1") {
    results.wranglerDev = { skipped: "BENCH_NO_WRANGLER=1" };
  } else {
    results.wranglerDev = await measureWranglerDev({ ports: PORTS.wrangler, duration: "3s", connections: 16, rounds: 5 });
  }
  if (PROFILE) {
    results.profile = await profile({
      routes: [...ROUTES, LIMITED],
      ceilingFor,
      port: PORTS.profile.app,
      ceilingPort: PORTS.profile.ceiling,
      duration: "4s",
      connections: SETTINGS.connections,
    });
  } else if (previous.profile) {
    results.profile = previous.profile;
  }
  results.targets = targets(results);
  results.elapsedSeconds = round((Date.now() - started) / 1000, 1);
  writeFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  const section = generatedSection(results);
  console.log("\n" + section + "\n");
  const own = OUT === RESULTS;
  if (own && process.env.BENCH_NO_README !== "1") {
    rewritePerformancePage(section);
    log("docs/performance.md: the generated section rewritten");
  }
  log(`results: ${own ? "bench/results.json" : OUT} (${results.elapsedSeconds} s)`);
  if (own) capacity();
}

/**
 * `node bench/run.mjs --from-results`: the targets and docs/performance.md's generated section
 * again from the committed bench/results.json, without measuring (after a change to how they
 * are told).
 */
function fromResults() {
  const results = JSON.parse(readFileSync(RESULTS, "utf8"));
  results.targets = targets(results);
  writeFileSync(RESULTS, JSON.stringify(results, null, 2) + "\n");
  rewritePerformancePage(generatedSection(results));
  log("bench/results.json's targets and docs/performance.md's generated section rewritten from the results");
  capacity();
}

/** `node bench/capacity.mjs --write` (docs/capacity.md's generated block), when it exists. */
function capacity() {
  if (!existsSync(CAPACITY)) return;
  log("bench/capacity.mjs --write");
  execFileSync(process.execPath, [CAPACITY, "--write"], { cwd: ROOT, stdio: "inherit" });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${e.stack ?? e}`);
    process.exit(1);
  },
);
