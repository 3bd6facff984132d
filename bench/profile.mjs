// `npm run bench -- --profile`: where the CPU of one request goes, for the ceiling Worker and
// each route, measured two ways on a build that keeps its function names (target/size/build,
// made by scripts/size.sh):
//
//  - stages: `perf record` samples of the workerd process (V8 writes a perf map of its JIT
//    code, so Wasm and JS functions have names), each sample attributed to the stage its
//    stack is in (the innermost frame that names one), in µs per request;
//  - instructions: callgrind counts the instructions workerd executes per request, which,
//    unlike time, do not change when other work shares the machine.
//
// Either is skipped, with the reason recorded, when `perf` or `valgrind` is missing.
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, bootWorker, hasTool, load, log, round, sleep } from "./common.mjs";
import { migrationStatements } from "../tests/helpers.js";
import { answerHeaders, limitFlags, resolve, seed, sendHeaders } from "./routes.mjs";

const run = promisify(execFile);
const WORK = join(ROOT, ".edgestate/profile");

// ---------------------------------------------------------------------------------------------
// Stages

/** Stages recognised anywhere on a stack, checked first (in this order). */
const ANYWHERE = [
  ["Miniflare's entry Worker (in the ceiling too)", /(^|[\s/])entry\.worker\.js/],
  ["local KV and D1 simulators (Miniflare)", /object-entry\.worker\.js|namespace\.worker\.js|database\.worker\.js|miniflare:shared/],
  ["V8 garbage collection", /Heap::CollectGarbage|MinorGCJob|ScavengerCollector|MarkCompactCollector|ConcurrentMarking/],
  ["console (log lines)", /__wbg_(log|warn|error|info|debug)_|api::Console|ConsoleLog/],
];

/**
 * Stages recognised only inside the innermost JS or Wasm frame. The runtime resumes the code
 * awaiting a KV read inside that read's frames (`IoContext::awaitIo<...KvNamespace...>`), so a
 * KV frame further out is the Worker's own work after the read, not the read.
 */
const INNERMOST = [["KV and D1 calls (runtime side)", /api::KvNamespace|api::D1|KvNamespace::|D1Database::/]];

/** The stage of a Wasm function, by name. */
function wasmStage(name) {
  if (/serde_json|serde_core|zmij|itoa/.test(name)) return "Wasm: JSON (serde_json)";
  if (/sha2::|digest::|block_buffer/.test(name)) return "Wasm: hashing (SHA-256)";
  if (/meter::|Tenths|server_timing/.test(name)) return "Wasm: Server-Timing";
  if (/edgestate::log::/.test(name)) return "Wasm: logging";
  if (/routes::find|routes::score|split_url|percent_decode/.test(name)) return "Wasm: routing and URL";
  if (/read_body/.test(name)) return "Wasm: body read";
  if (/dlmalloc|__rdl_|__rust_(de|re)?alloc|RawVec|__wbindgen_(malloc|free|realloc)/.test(name)) return "Wasm: allocator";
  if (/js_sys::futures|wasm_bindgen_futures|Waker|wake/.test(name)) return "Wasm: promise executor";
  if (/wasm_bindgen::|js_sys::|externref|web_sys::/.test(name)) return "Wasm: wasm-bindgen conversions";
  if (/core.*::fmt::|alloc.*::fmt::|format/.test(name)) return "Wasm: formatting";
  if (/edgestate::storage::/.test(name)) return "Wasm: storage adapters";
  if (/edgestate::/.test(name)) return "Wasm: edgestate (routes, domain, pipeline)";
  return "Wasm: other (core, std, worker)";
}

/** The stage of a JS function: `name` is "<function> <file>:<line>:<column>" (perf map). */
function jsStage(name) {
  const [fn, file = ""] = name.replace(/^[~^*+']+/, "").split(" ");
  if (/ceiling/.test(file)) return "the ceiling Worker's own JS";
  if (/wasm-to-js|js-to-wasm|Wasm.*Wrapper/.test(fn)) return "JS↔Wasm: call transitions";
  if (/^__wbg_(url|method|headers|get)_|^(getStringFromWasm0|passStringToWasm0|decodeText|encodeString|getArrayU8FromWasm0)$/.test(fn)) {
    return "JS↔Wasm: strings, request line, headers, property reads";
  }
  if (/^response$|^__wbg_new_with_opt/.test(fn)) return "Response construction";
  if (/^readBody$/.test(fn)) return "body read (stream and copies)";
  if (/^getMany$/.test(fn)) return "KV and D1 calls (JS side)";
  if (/^__wbg_(read|getReader|body|byteLength|buffer|new_with_byte|prototypesetcall|length)_/.test(fn)) return "body read (stream and copies)";
  if (/^__wbg_(get_text|get_many|put_text|delete_key|prepare|bind|all|stringify|results)_/.test(fn)) return "KV and D1 calls (JS side)";
  if (/^__wbg_(then|resolve|queueMicrotask|new_typed|catch)_|^queueMicrotask$/.test(fn)) return "promises and microtasks";
  if (/index\.js/.test(file) && /^(Entrypoint|construct|checkReinitialize|apply|fetch2?|get)$/.test(fn)) return "worker-build entrypoint (class and Proxy)";
  if (/^__wbg_|^__wbindgen/.test(fn)) return "JS↔Wasm: other imports";
  return "JS: other";
}

function stageOf(frames) {
  for (const [stage, re] of ANYWHERE) if (frames.some((f) => re.test(f))) return stage;
  const js = frames.findIndex((f) => f.startsWith("JS:"));
  const native = js < 0 ? frames : frames.slice(0, js);
  for (const [stage, re] of INNERMOST) if (native.some((f) => re.test(f))) return stage;
  for (const f of frames) {
    if (!f.startsWith("JS:")) continue;
    const name = f.slice(3);
    if (/-(liftoff|turbofan)$/.test(name) || /::h[0-9a-f]{16}|^<.* as .*>::|::\{\{closure\}\}/.test(name)) return wasmStage(name);
    if (/wasm-to-js|js-to-wasm/.test(name)) continue; // the frame that called across is more telling
    return jsStage(name);
  }
  const all = frames.join(" ");
  if (/WorkerEntrypoint::request|ServiceWorkerGlobalScope::request|IoContext|getExportedHandler/.test(all)) return "runtime: request dispatch (in the ceiling too)";
  if (/Http|AsyncStreamFd|AsyncIo|tcp_|sock_|__libc_(read|write)|epoll/.test(all)) return "runtime: HTTP and sockets (in the ceiling too)";
  if (/Platform|JobTask|Worker::Isolate/.test(all)) return "runtime: V8 background tasks";
  return "runtime: other";
}

/** µs per request of each stage, from `perf script` text and the requests served meanwhile. */
export function stages(script, requests, periodNs) {
  const out = {};
  for (const block of script.split("\n\n")) {
    const frames = block
      .split("\n")
      .slice(1)
      .map((l) => l.trim().replace(/^[0-9a-f]+ /, ""))
      .filter(Boolean);
    if (frames.length === 0) continue;
    const stage = stageOf(frames);
    out[stage] = (out[stage] ?? 0) + periodNs / 1000;
  }
  return Object.fromEntries(
    Object.entries(out)
      .map(([k, us]) => [k, round(us / requests, 1)])
      .sort((a, b) => b[1] - a[1]),
  );
}

/** perf samples of `worker`'s workerd during a wrk run of `route`. */
async function perfStages(worker, route, { duration, connections }) {
  const hz = 5000;
  await load(worker.base, route, {}, { duration: "2s", connections });
  const data = join(WORK, "perf.data");
  const seconds = Number.parseFloat(duration);
  const rec = spawn("perf", ["record", "-e", "cpu-clock", "-F", String(hz), "-g", "-p", worker.pids.join(","), "-o", data, "--", "sleep", String(seconds)], { stdio: "ignore" });
  const done = new Promise((r) => rec.on("exit", r));
  await sleep(100);
  const w = await load(worker.base, route, {}, { duration, connections });
  await done;
  const { stdout } = await run("perf", ["script", "-i", data, "-F", "comm,period,ip,sym"], { maxBuffer: 1 << 30 });
  return { requests: w.requests, stages: stages(stdout, w.requests, 1e9 / hz) };
}

// ---------------------------------------------------------------------------------------------
// Instructions (callgrind)

/** A wrapper that runs workerd under callgrind with instrumentation off until asked. */
function callgrindWrapper() {
  const path = join(WORK, "workerd-callgrind.sh");
  const workerd = join(ROOT, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
  const out = join(WORK, "callgrind.%p");
  writeFileSync(
    path,
    `#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no --callgrind-out-file=${out} ${workerd} "$@"\n`,
    { mode: 0o755 },
  );
  return path;
}

/** Boots `scriptPath` in workerd under callgrind (instrumentation off until asked). */
async function bootCounted(scriptPath, port) {
  process.env.MINIFLARE_WORKERD_PATH = callgrindWrapper();
  try {
    return await bootWorker({ scriptPath, port, storage: true, processName: /^(workerd|valgrind|callgrind)/ });
  } finally {
    delete process.env.MINIFLARE_WORKERD_PATH;
  }
}

/**
 * Instructions `worker` (booted by bootCounted) executes per request of `route`: `warmup`
 * requests uninstrumented (the JIT settles), then `n` counted, one after another.
 */
async function instructions(worker, route, { warmup, n }, beforeCount) {
  const storage = { kvReads: 0, kvWrites: 0, d1Queries: 0 };
  const once = async () => {
    const res = await fetch(worker.base + route.path, { method: route.method, headers: route.headers, body: route.body });
    const m = /reads=(\d+) writes=(\d+).*queries=(\d+)/.exec(res.headers.get("server-timing") ?? "");
    if (m) {
      storage.kvReads += Number(m[1]);
      storage.kvWrites += Number(m[2]);
      storage.d1Queries += Number(m[3]);
    }
    await res.arrayBuffer();
  };
  // A keep-alive connection the runtime closed while idle (the control calls pause this
  // process) fails once with ECONNRESET: retried on a new connection.
  const batch = async (k) => {
    for (let i = 0; i < k; i++) await once().catch(once);
  };
  await batch(warmup);
  await beforeCount?.();
  const pid = String(worker.pids[0]);
  const ctl = (args) => execFileSync("callgrind_control", [...args, pid], { stdio: "ignore", timeout: 60_000 });
  ctl(["-i", "on"]);
  await batch(20);
  ctl(["-z"]);
  Object.keys(storage).forEach((k) => (storage[k] = 0));
  await batch(n);
  ctl(["-d", "measured"]);
  const file = join(WORK, `callgrind.${pid}.1`);
  const summary = /^summary: (\d+)/m.exec(readFileSync(file, "utf8"));
  const perRequest = Object.fromEntries(Object.entries(storage).map(([k, v]) => [k, round(v / n, 3)]));
  const tasks = await foregroundTasks(file);
  return {
    instructions: round((Number(summary[1]) - tasks) / n, 0),
    foregroundTasks: round(tasks / n, 0),
    storagePerRequest: perRequest,
  };
}

/**
 * Instructions in V8's foreground tasks (`DefaultPlatform::PumpMessageLoop`, inclusive): the
 * C++ heap's incremental sweeping and the like, which run in slices of wall time. Under
 * callgrind's 50-fold slowdown a slice is a few requests' worth of wall time, so their share
 * swings from run to run (some 10% of a route's instructions, 70% seen in a bulk-read run);
 * they are left out of the figures compared and shown apart.
 */
async function foregroundTasks(file) {
  const { stdout } = await run("callgrind_annotate", ["--inclusive=yes", "--threshold=100", file], { maxBuffer: 1 << 28 });
  const line = stdout.split("\n").find((l) => /DefaultPlatform::PumpMessageLoop/.test(l));
  return line ? Number(line.trim().split(" ")[0].replaceAll(",", "")) : 0;
}

// ---------------------------------------------------------------------------------------------

/** Migrations, then the bench seed (config through KV); returns the seed. */
async function seedWorker(w) {
  const kv = await w.mf.getKVNamespace("CACHE");
  const db = await w.mf.getD1Database("DB");
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  return seed(w.base, (text) => kv.put("config:app", text));
}

/** The KV entries of `w` (rate-limit counters left out). */
async function kvEntries(w) {
  const kv = await w.mf.getKVNamespace("CACHE");
  const keys = (await kv.list()).keys.map((k) => k.name).filter((k) => !k.startsWith("rl:"));
  return Promise.all(keys.map(async (k) => [k, await kv.get(k)]));
}

async function perfAll({ routes, scriptPath, port, ceilingPort, duration, connections }) {
  log("profile: perf stages (V8 perf map on)");
  // The perf map names JIT code; V8 would also write an isolate-*.log per isolate into the
  // working directory, hence the log file to /dev/null.
  process.env.MINIFLARE_WORKERD_V8_FLAGS = "--perf-basic-prof --interpreted-frames-native-stack --no-logfile-per-isolate --logfile=/dev/null";
  const ceiling = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling.js"), port: ceilingPort, storage: false });
  const app = await bootWorker({ scriptPath, port, storage: true });
  delete process.env.MINIFLARE_WORKERD_V8_FLAGS;
  try {
    const seeded = await seedWorker(app);
    const out = { ceiling: await perfStages(ceiling, CONSTANT, { duration, connections }) };
    for (const r of routes) {
      if (r.limit) await limitFlags(app.base);
      await r.setup?.(app.base);
      out[r.name] = await perfStages(app, resolve(r, seeded), { duration, connections });
      log(`profile: ${r.name} stages measured`);
    }
    return out;
  } finally {
    await app.mf.dispose();
    await ceiling.mf.dispose();
    for (const pid of [...app.pids, ...ceiling.pids]) rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

async function instructionsAll({ routes, scriptPath, port, ceilingPort, ceilingFor }) {
  const opts = { warmup: 1500, n: 300 };
  // A KV bulk read costs the local simulator some 50 M instructions under callgrind: a fifth
  // of the requests keeps that row within minutes.
  const bulk = { warmup: 300, n: 60 };
  const optsFor = (r) => (r.kv?.bulk ? bulk : opts);
  const out = { settings: { ...opts, bulkReadRoutes: bulk } };
  log("profile: callgrind instructions per request (about 20 s per Worker)");
  const constant = await bootCounted(join(ROOT, "bench/ceiling.js"), ceilingPort);
  try {
    out.ceiling = (await instructions(constant, CONSTANT, opts)).instructions;
  } finally {
    await constant.mf.dispose();
  }
  for (const r of routes) {
    const app = await bootCounted(scriptPath, port);
    let entries;
    let headers;
    try {
      const seeded = await seedWorker(app);
      if (r.limit) await limitFlags(app.base);
      await r.setup?.(app.base);
      const route = resolve(r, seeded);
      const counted = await instructions(app, route, optsFor(r), r.beforeCount && (() => r.beforeCount(app.base, seeded)));
      out[r.name] = counted.instructions;
      out[`foreground tasks: ${r.name}`] = counted.foregroundTasks;
      out[`storage: ${r.name}`] = counted.storagePerRequest;
      entries = await kvEntries(app);
      headers = await answerHeaders(app.base, route);
    } finally {
      await app.mf.dispose();
    }
    // As in the load runs: the ceiling does the route's KV work and sends its headers.
    const ceiling = await bootCounted(join(ROOT, "bench/ceiling.js"), ceilingPort);
    try {
      const kv = await ceiling.mf.getKVNamespace("CACHE");
      if (r.kv) for (const [k, v] of entries) await kv.put(k, v);
      await sendHeaders(ceiling.base, headers);
      const counted = await instructions(ceiling, ceilingFor(r, entries.map(([k]) => k)), optsFor(r));
      out[`ceiling: ${r.name}`] = counted.instructions;
      out[`ceiling foreground tasks: ${r.name}`] = counted.foregroundTasks;
    } finally {
      await ceiling.mf.dispose();
    }
    log(`profile: ${r.name}: ${out[r.name]} instructions/request (its ceiling ${out[`ceiling: ${r.name}`]})`);
  }
  return out;
}

const CONSTANT = { name: "ceiling", method: "GET", path: "/health", headers: {} };

/**
 * Profiles the ceiling and `routes` on the named build (target/size/build). Returns
 * {stages, instructions}, each keyed by route name (and "ceiling"), or why it was skipped.
 */
export async function profile(opts) {
  const scriptPath = join(ROOT, "target/size/build/index.js");
  if (!existsSync(scriptPath)) throw new Error("no named build: run `bash scripts/size.sh` first (scripts/bench.sh does)");
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const result = { build: "target/size/build: the same code as build/, function names kept" };
  const all = { ...opts, scriptPath };
  result.stages = hasTool("perf") ? await perfAll(all) : { skipped: "perf is not installed" };
  result.instructions = opts.noInstructions ? { skipped: "not asked" } : hasTool("valgrind") ? await instructionsAll(all) : { skipped: "valgrind is not installed" };
  return result;
}
