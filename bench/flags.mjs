// Feature flags at the scale teams run them, for `npm run bench` (bench/run.mjs, the part
// `flags`; `BENCH_ONLY=flags npm run bench` measures it alone, in about two and a half minutes).
//
// - cpu: the bulk OFREP request (POST /ofrep/v1/evaluate/flags) at 50, 500 and 5,000 flags,
//   every flag targeted (two variants, a rule on `plan`, a rollout; about 160 bytes of JSON
//   each, as in tests/worker/flags.test.js's "2,000 targeted flags"), with a context that
//   matches no rule, so every flag is evaluated through its rule and then its rollout (the
//   longest path: reason SPLIT). Against bench/ceiling.js reading and parsing the same body and
//   answering the route's very answer (same bytes, same headers): wrk runs alternating between
//   the two, as for the hot routes, and the CPU over the ceiling ÷ the flags is the cost per flag.
// - memory: at 5,000 flags, what workerd can tell. The Worker's isolate through the V8
//   inspector (Miniflare's `inspectorPort`): the JS heap after a full garbage collection
//   (Runtime.getHeapUsage) and the Wasm linear memory (the byte length of every
//   WebAssembly.Memory in the Worker's context, found with Runtime.queryObjects; it never
//   shrinks, so it is the Wasm heap's high-water mark); and the resident memory of the whole
//   workerd process (/proc: VmRSS, and VmHWM, its peak), which also holds Miniflare's entry
//   Worker and the local KV and D1 simulators with their copies of the config. Each before
//   the 5,000-flag config (a small config served and warm) and after it has been served,
//   in two isolates: the one that wrote it (PUT /admin/config, then bulk answers; then a
//   second and a third version of as many flags, each built while the old copy is held) and
//   one that only reads it from KV (another workerd, the same stored value and metadata).
// - streams: idle OFREP event streams (GET /ofrep/v1/events) and no change to the config:
//   workerd's CPU time (every thread, /proc/<pid>/task/*/schedstat, in ns) over a window with
//   no stream, with one (the bench's small config served, then the 5,000-flag one), and with
//   `streams` (5,000 flags; opened one after another over one 5 s tick, as independent
//   clients would); per stream per minute, and what the first stream costs the isolate (each
//   tick reads the isolate's copy of the config, whose version is re-read from KV at most
//   every 5 s whatever the number of streams, the text only when the version changed; the
//   streams of an isolate tick at once, on the wall clock's multiples of 5 s).
//
// Talks only to 127.0.0.1.
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { migrationStatements } from "../tests/helpers.js";
import {
  ADMIN_TOKEN,
  ROOT,
  alternateRuns,
  bootWorker,
  call,
  cpuNs,
  expectStatus,
  log,
  pairedOver,
  residentKiB,
  round,
  signed,
  sleep,
  storagePerRequest,
} from "./common.mjs";
import { CONFIG, answerHeaders, ceilingFor, sendHeaders } from "./routes.mjs";

export const FLAG_COUNTS = [50, 500, 5000];
/** The context of every bulk request: matches no flag's rule, so each flag is rolled out. */
export const CONTEXT = { targetingKey: "bench-user", plan: "free" };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
const BULK = {
  method: "POST",
  path: "/ofrep/v1/evaluate/flags",
  body: JSON.stringify({ context: CONTEXT }),
  headers: { "content-type": "application/json" },
};
/** src/domain/events.rs TICK_MS and KEEP_ALIVE_MS. */
const TICK_MS = 5_000;
const KEEP_ALIVE_MS = 25_000;

/**
 * `n` targeted flags, `f0000` …: two variants, a rule on `plan` (which CONTEXT never matches)
 * and a rollout whose split moves with the flag; about 160 bytes of JSON each.
 */
export function targetedFlags(n) {
  return Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      `f${String(i).padStart(4, "0")}`,
      {
        variants: { on: true, off: false },
        defaultVariant: "off",
        rules: [{ when: { plan: { in: ["pro", `t${i}`] } }, variant: "on" }],
        rollout: { on: i % 100, off: 100 - (i % 100) },
      },
    ]),
  );
}

/** The bench's config (rate limits that never refuse) with `n` targeted flags, as JSON. */
const configWith = (n) => JSON.stringify({ ...CONFIG, featureFlags: targetedFlags(n) });

/** D1's schema and the bench's small config in KV, served. */
async function seedSmall(app) {
  const db = await app.mf.getD1Database("DB");
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  const kv = await app.mf.getKVNamespace("CACHE");
  await kv.put("config:app", JSON.stringify(CONFIG));
  await expectStatus(app.base, { method: "GET", path: "/config" }, 200);
  return kv;
}

/** PUT /admin/config with `n` targeted flags; returns {requestBytes, storedBytes}. */
async function replaceFlags(app, kv, n) {
  const body = configWith(n);
  const put = await call(app.base, { method: "PUT", path: "/admin/config", body, headers: admin });
  if (put.status !== 200) throw new Error(`PUT /admin/config with ${n} flags: ${put.status} ${put.text.slice(0, 300)}`);
  const stored = await kv.get("config:app");
  return { requestBytes: Buffer.byteLength(body), storedBytes: Buffer.byteLength(stored ?? "") };
}

/** A bulk answer that must hold all `n` flags; returns it with its reasons counted. */
async function bulkAnswer(base, n) {
  const r = await call(base, BULK);
  if (r.status !== 200) throw new Error(`bulk evaluation at ${n} flags: ${r.status} ${r.text.slice(0, 300)}`);
  const flags = JSON.parse(r.text).flags;
  if (flags.length !== n) throw new Error(`bulk evaluation answered ${flags.length} flags, not ${n}`);
  const reasons = {};
  for (const f of flags) reasons[f.reason] = (reasons[f.reason] ?? 0) + 1;
  return { text: r.text, reasons };
}

// ---------------------------------------------------------------------------------------------
// CPU per bulk request

/** CPU per bulk OFREP request at each of FLAG_COUNTS, against a ceiling with the same answer. */
export async function measureFlagCpu({ ports, settings }) {
  log(`flags at scale: CPU per bulk request at ${FLAG_COUNTS.join(", ")} targeted flags`);
  const app = await bootWorker({ scriptPath: join(ROOT, "build/index.js"), port: ports.app, storage: true });
  const ceiling = await bootWorker({ scriptPath: join(ROOT, "bench/ceiling.js"), port: ports.ceiling, storage: true });
  try {
    const kv = await seedSmall(app);
    const sizes = [];
    for (const n of FLAG_COUNTS) {
      const bytes = await replaceFlags(app, kv, n);
      const answer = await bulkAnswer(app.base, n);
      const route = { name: `POST /ofrep/v1/evaluate/flags (${n} targeted flags)`, expect: 200, ...BULK };
      const storage = await storagePerRequest(app.base, route, 10);
      // The ceiling answers the route's very answer, with its headers, after reading and
      // parsing the same request body.
      const headers = await answerHeaders(app.base, route);
      await sendHeaders(ceiling.base, headers);
      const set = await fetch(`${ceiling.base}/body`, { method: "PUT", body: answer.text });
      if (set.status !== 204) throw new Error(`the ceiling refused its body: ${set.status}`);
      const ceilingRoute = ceilingFor(route, []);
      const echoed = await call(ceiling.base, ceilingRoute);
      if (echoed.status !== 200 || echoed.text !== answer.text) throw new Error("the ceiling does not answer the route's answer");
      const [c, a] = await alternateRuns(
        [
          { worker: ceiling, route: ceilingRoute },
          { worker: app, route },
        ],
        settings,
      );
      const over = pairedOver(a, c);
      const entry = {
        flags: n,
        name: route.name,
        configRequestBytes: bytes.requestBytes,
        configStoredBytes: bytes.storedBytes,
        answerBytes: Buffer.byteLength(answer.text),
        reasons: answer.reasons,
        cpuUsPerRequest: a.cpuUsPerRequest,
        ceilingCpuUsPerRequest: c.cpuUsPerRequest,
        cpuUsOverCeiling: over.mean,
        cpuUsOverCeilingSpread: over.spread,
        cpuUsPerFlag: round(over.mean / n, 3),
        cpuUsPerFlagWithCeiling: round(a.cpuUsPerRequest / n, 3),
        load: a,
        ceiling: { request: `${ceilingRoute.method} ${ceilingRoute.path}`, ...c },
        storage,
      };
      log(
        `${n} flags: ${a.requestsPerSecond} req/s, ${a.cpuUsPerRequest} µs CPU/req (ceiling with the same answer ${c.cpuUsPerRequest}, ` +
          `${signed(over.mean)}), ${entry.cpuUsPerFlag} µs per flag over the ceiling; answer ${entry.answerBytes} B, config ${bytes.storedBytes} B stored`,
      );
      sizes.push(entry);
    }
    // The cost of each added flag between two sizes (the slope), which a fixed per-request
    // cost does not sway.
    const marginal = sizes.slice(1).map((b, i) => {
      const a = sizes[i];
      return { from: a.flags, to: b.flags, cpuUsPerAddedFlag: round((b.cpuUsOverCeiling - a.cpuUsOverCeiling) / (b.flags - a.flags), 3) };
    });
    const first = sizes[0];
    const last = sizes.at(-1);
    return {
      context: CONTEXT,
      flagShape: Object.values(targetedFlags(1))[0],
      sizes,
      marginal,
      perFlagAtLargestOverSmallest: round(last.cpuUsPerFlag / first.cpuUsPerFlag, 2),
    };
  } finally {
    for (const w of [app, ceiling]) await w.mf.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Memory at 5,000 flags

/** A minimal Chrome DevTools Protocol client over Node's WebSocket. */
async function inspect(url) {
  const ws = new WebSocket(url);
  let next = 0;
  const pending = new Map();
  let contextId = null;
  ws.onmessage = (m) => {
    const msg = JSON.parse(String(m.data));
    if (msg.method === "Runtime.executionContextCreated") contextId ??= msg.params.context.id;
    const p = msg.id !== undefined && pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
    else p.resolve(msg.result);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`no inspector at ${url}`));
  });
  const send = (method, params = {}, ms = 15_000) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer from the inspector in ${ms} ms`));
      }, ms);
      pending.set(id, {
        method,
        resolve: (x) => (clearTimeout(timer), resolve(x)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Runtime.enable");
  for (let i = 0; contextId === null && i < 100; i++) await sleep(10);
  return { send, contextId: () => contextId, close: () => ws.close() };
}

/**
 * The Worker's isolate and the workerd process now: a full garbage collection first (workerd
 * runs it when the isolate next runs, so requests follow the command until it is done), then the JS heap,
 * the Wasm memories' bytes and the process's resident memory.
 */
async function memoryNow(app, ins) {
  let done = false;
  const gc = ins.send("HeapProfiler.collectGarbage").finally(() => (done = true));
  while (!done) {
    await expectStatus(app.base, { method: "GET", path: "/health" }, 200);
    await Promise.race([gc, sleep(100)]);
  }
  await gc;
  const heap = await ins.send("Runtime.getHeapUsage");
  const proto = await ins.send("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype", contextId: ins.contextId() });
  const found = await ins.send("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId });
  const sizes = await ins.send("Runtime.callFunctionOn", {
    objectId: found.objects.objectId,
    functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
    returnByValue: true,
  });
  const wasm = sizes.result.value;
  const rss = residentKiB(app.pids[0]);
  return {
    jsHeapUsedBytes: heap.usedSize,
    jsHeapTotalBytes: heap.totalSize,
    wasmMemoryBytes: wasm.reduce((a, b) => a + b, 0),
    wasmMemories: wasm.length,
    processRssKiB: rss.vmRss,
    processPeakRssKiB: rss.vmHwm,
    processRssAnonKiB: rss.rssAnon,
  };
}

const MiB = (bytes) => round(bytes / 1024 / 1024, 2);
const delta = (before, after) => ({
  jsHeapUsedMiB: MiB(after.jsHeapUsedBytes - before.jsHeapUsedBytes),
  wasmMemoryMiB: MiB(after.wasmMemoryBytes - before.wasmMemoryBytes),
  processRssMiB: round((after.processRssKiB - before.processRssKiB) / 1024, 1),
  processPeakRssMiB: round((after.processPeakRssKiB - before.processPeakRssKiB) / 1024, 1),
});

/** Boots the app with its inspector, seeds the small config and warms it; runs `fn`. */
async function withInspectedApp(ports, fn) {
  const app = await bootWorker({ scriptPath: join(ROOT, "build/index.js"), port: ports.app, storage: true, shared: { inspectorPort: ports.inspector } });
  let ins = null;
  try {
    const kv = await seedSmall(app);
    // The Worker's own isolate: Miniflare names it `core:user:<name>` (here no name).
    const targets = await (await fetch(`http://127.0.0.1:${ports.inspector}/json/list`)).json();
    const target = targets.find((t) => t.id.startsWith("core:user:"));
    if (!target) throw new Error(`no Worker isolate among the inspector's targets: ${targets.map((t) => t.id).join(", ")}`);
    ins = await inspect(`ws://127.0.0.1:${ports.inspector}/${target.id}`);
    for (let i = 0; i < 5; i++) await bulkAnswer(app.base, 1);
    return await fn(app, kv, ins);
  } finally {
    ins?.close();
    await app.mf.dispose();
  }
}

/** Memory before and after the 5,000-flag config, in the isolate that writes it and in one that reads it. */
export async function measureFlagMemory({ ports }) {
  const n = FLAG_COUNTS.at(-1);
  log(`flags at scale: memory at ${n} flags (V8 inspector and /proc)`);
  let stored = null;
  const writer = await withInspectedApp(ports, async (app, kv, ins) => {
    const before = await memoryNow(app, ins);
    await replaceFlags(app, kv, n);
    for (let i = 0; i < 5; i++) await bulkAnswer(app.base, n);
    const after = await memoryNow(app, ins);
    stored = await kv.getWithMetadata("config:app");
    // Two more versions of as many flags (every rollout moved by a point each time): the
    // isolate builds each new copy while it still holds the old one; the Wasm memory's
    // high-water mark after the second and the third shows whether it keeps growing.
    const versions = [];
    for (const shift of [1, 2]) {
      const moved = JSON.parse(configWith(n));
      for (const f of Object.values(moved.featureFlags)) {
        const on = (f.rollout.on + shift) % 100;
        f.rollout = { on, off: 100 - on };
      }
      const put = await call(app.base, { method: "PUT", path: "/admin/config", body: JSON.stringify(moved), headers: admin });
      if (put.status !== 200) throw new Error(`PUT /admin/config, version ${shift + 1}: ${put.status} ${put.text.slice(0, 300)}`);
      for (let i = 0; i < 5; i++) await bulkAnswer(app.base, n);
      versions.push(await memoryNow(app, ins));
    }
    const [afterSecondVersion, afterThirdVersion] = versions;
    return {
      before,
      after,
      afterSecondVersion,
      afterThirdVersion,
      growth: delta(before, after),
      growthAfterSecondVersion: delta(before, afterSecondVersion),
      growthAfterThirdVersion: delta(before, afterThirdVersion),
    };
  });
  const reader = await withInspectedApp(ports, async (app, kv, ins) => {
    const before = await memoryNow(app, ins);
    await kv.put("config:app", stored.value, { metadata: stored.metadata });
    // The isolate's copy of the small config expires within 5 s (CACHE_MS), then it reads KV.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await call(app.base, BULK);
      if (r.status === 200 && JSON.parse(r.text).flags.length === n) break;
      if (Date.now() > deadline) throw new Error(`the ${n}-flag config written to KV was not served within 15 s`);
      await sleep(250);
    }
    for (let i = 0; i < 5; i++) await bulkAnswer(app.base, n);
    const after = await memoryNow(app, ins);
    return { before, after, growth: delta(before, after) };
  });
  const out = { flags: n, configStoredBytes: Buffer.byteLength(stored.value), isolateLimitMiB: 128, writer, reader };
  for (const [name, m] of [
    ["writer", writer],
    ["reader", reader],
  ]) {
    log(
      `${name}: JS heap ${MiB(m.before.jsHeapUsedBytes)} → ${MiB(m.after.jsHeapUsedBytes)} MiB, Wasm memory ${MiB(m.before.wasmMemoryBytes)} → ${MiB(m.after.wasmMemoryBytes)} MiB, ` +
        `workerd RSS ${round(m.before.processRssKiB / 1024, 1)} → ${round(m.after.processRssKiB / 1024, 1)} MiB (peak ${round(m.after.processPeakRssKiB / 1024, 1)})` +
        (m.afterThirdVersion
          ? `; after a second and a third version: Wasm memory ${MiB(m.afterSecondVersion.wasmMemoryBytes)}, ${MiB(m.afterThirdVersion.wasmMemoryBytes)} MiB, RSS ${round(m.afterSecondVersion.processRssKiB / 1024, 1)}, ${round(m.afterThirdVersion.processRssKiB / 1024, 1)} MiB`
          : ""),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Idle event streams

/** Opens GET /ofrep/v1/events; counts what arrives. Resolves once the first event arrived. */
function openStream(base) {
  const url = new URL(`${base}/ofrep/v1/events`);
  const s = { events: 0, comments: 0, bytes: 0, req: null, ended: false };
  return new Promise((resolve, reject) => {
    let buffer = "";
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, agent: false, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /ofrep/v1/events: ${res.statusCode}`));
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        s.bytes += Buffer.byteLength(chunk);
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(":")) s.comments++;
          else if (/^id: /m.test(block)) {
            s.events++;
            resolve(s);
          }
        }
      });
      res.on("end", () => (s.ended = true));
      res.on("error", () => {});
    });
    req.on("error", reject); // a no-op once the first event arrived (the bench ends streams by destroying them)
    s.req = req;
    req.end();
  });
}

/** workerd's CPU (ms) over `seconds` of wall time, from `pids`' schedstat. */
async function cpuOver(pids, seconds) {
  const t0 = performance.now();
  const before = cpuNs(pids);
  await sleep(seconds * 1000);
  const ns = cpuNs(pids) - before;
  return { cpuMs: round(ns / 1e6, 3), seconds: round((performance.now() - t0) / 1000, 2) };
}

/**
 * Idle event streams: workerd's CPU over a window with no stream, with one (first with the
 * bench's small config served, then with 5,000 flags), and with `streams`; per stream per
 * minute. The one-stream windows show what any open stream costs the isolate: its ticks make
 * it re-read its config's metadata from KV every 5 s (CACHE_MS; the text is transferred and
 * parsed only for a new version), whatever the number of streams.
 */
export async function measureEventStreams({ ports, streams, seconds, oneSeconds, idleSeconds }) {
  const n = FLAG_COUNTS.at(-1);
  log(`event streams: ${streams} idle streams for ${seconds} s, ${n} flags served`);
  const app = await bootWorker({ scriptPath: join(ROOT, "build/index.js"), port: ports.app, storage: true });
  const open = [];
  const perMinute = (w) => (w.cpuMs * 60) / w.seconds;
  const counts = () => open.reduce((a, s) => ({ events: a.events + s.events, comments: a.comments + s.comments }), { events: 0, comments: 0 });
  /** A CPU window, with what the open streams were sent meanwhile. */
  const windowOf = async (secs) => {
    const at = counts();
    const w = await cpuOver(app.pids, secs);
    const after = counts();
    return { ...w, cpuMsPerMinute: round(perMinute(w), 2), streams: open.length, sent: { events: after.events - at.events, comments: after.comments - at.comments } };
  };
  try {
    const kv = await seedSmall(app);
    await bulkAnswer(app.base, 1);
    await sleep(1000);
    const idle = await windowOf(idleSeconds);
    open.push(await openStream(app.base));
    await sleep(500);
    const oneSmall = await windowOf(oneSeconds);
    const small = await kv.get("config:app");
    await replaceFlags(app, kv, n);
    await bulkAnswer(app.base, n);
    // The open stream announces the new version at its next tick; the write's background work ends.
    await sleep(TICK_MS + 1000);
    const one = await windowOf(oneSeconds);
    // The others one after another over one tick, as independent clients would open them.
    const gap = TICK_MS / (streams - 1);
    const opening = [];
    for (let i = 1; i < streams; i++) {
      opening.push(openStream(app.base));
      await sleep(gap);
    }
    open.push(...(await Promise.all(opening)));
    await sleep(500);
    const many = await windowOf(seconds);
    many.endedEarly = open.filter((s) => s.ended).length;
    const out = {
      flags: n,
      configStoredBytes: Buffer.byteLength(await kv.get("config:app")),
      smallConfigStoredBytes: Buffer.byteLength(small ?? ""),
      streams,
      idle,
      oneStreamSmallConfig: oneSmall,
      oneStream: one,
      manyStreams: many,
      // What streams add to an idle workerd, per stream: all of them, and each after the first.
      cpuMsPerStreamPerMinute: round((perMinute(many) - perMinute(idle)) / streams, 3),
      cpuMsPerAddedStreamPerMinute: round((perMinute(many) - perMinute(one)) / (streams - 1), 3),
      firstStreamCpuMsPerMinute: round(perMinute(one) - perMinute(idle), 2),
      firstStreamSmallConfigCpuMsPerMinute: round(perMinute(oneSmall) - perMinute(idle), 2),
      tickSeconds: TICK_MS / 1000,
      keepAliveSeconds: KEEP_ALIVE_MS / 1000,
    };
    log(
      `event streams: workerd ${idle.cpuMsPerMinute} ms CPU/min idle, ${oneSmall.cpuMsPerMinute} with one stream (small config), ${one.cpuMsPerMinute} with one (${n} flags), ` +
        `${many.cpuMsPerMinute} with ${streams}: ${out.cpuMsPerStreamPerMinute} ms per stream per minute (${out.cpuMsPerAddedStreamPerMinute} each after the first)`,
    );
    return out;
  } finally {
    for (const s of open) s.req?.destroy();
    await app.mf.dispose();
  }
}

/** All three, one after another (results.json `flagsAtScale`, `eventStreams`). */
export async function measureFlags({ ports, settings, streams, streamSeconds }) {
  const cpu = await measureFlagCpu({ ports, settings });
  const memory = await measureFlagMemory({ ports });
  const windows = { seconds: streamSeconds, oneSeconds: Math.max(5, Math.round(streamSeconds * 0.6)), idleSeconds: Math.max(5, Math.round(streamSeconds * 0.3)) };
  const eventStreams = await measureEventStreams({ ports, streams, ...windows });
  return { flagsAtScale: { ...cpu, memory, settings }, eventStreams: { ...eventStreams, windows } };
}
