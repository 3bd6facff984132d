// `npm run bench`, part 2: the Worker the way users run it, through `wrangler dev`, side by
// side with the ceiling Worker (bench/ceiling.js) through `wrangler dev` in the same run.
// Each runs from a generated config in .edgestate/bench/ (no [build]: the already built
// build/index.js is served, so nothing is rebuilt), with local KV and D1 in a fresh
// directory. For each route, wrk runs against the ceiling and the app in alternation; the
// CPU time of wrangler's own Node.js process and of its workerd is counted separately.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { COMPATIBILITY_DATE } from "../tests/helpers.js";
import { ADMIN_TOKEN, ROOT, descendants, firstOk, load, log, median, processes, round } from "./common.mjs";
import { ROUTES, ceilingFor, resolve, seed } from "./routes.mjs";

const DIR = join(ROOT, ".edgestate/bench");

function config(name, main, d1) {
  const lines = [`name = "${name}"`, `main = "${main}"`, `compatibility_date = "${COMPATIBILITY_DATE}"`];
  // Both Workers bind the same local KV namespace (one persistence directory): the ceiling
  // reads the data the app was seeded with.
  lines.push("", "[[kv_namespaces]]", 'binding = "CACHE"', 'id = "bench"');
  if (d1) {
    lines.push(
      "",
      "[[d1_databases]]",
      'binding = "DB"',
      'database_name = "edgestate-bench"',
      'database_id = "00000000-0000-0000-0000-000000000001"',
      'migrations_dir = "../../migrations"',
    );
  }
  const path = join(DIR, `${name}.toml`);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

const env = () => ({ ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", FORCE_COLOR: "0" });

/** The keys of the local KV namespace the app was seeded into. */
function listKeys(cfg, persist) {
  const args = ["kv", "key", "list", "--binding", "CACHE", "--local", "--persist-to", persist, "-c", cfg];
  const out = execFileSync(join(ROOT, "node_modules/.bin/wrangler"), args, { cwd: ROOT, env: env(), encoding: "utf8", timeout: 60_000 });
  return JSON.parse(out.slice(out.indexOf("["))).map((k) => k.name);
}

/** Starts `wrangler dev` for `cfg` on `port`; resolves once GET /health answers 200. */
async function start({ cfg, port, inspectorPort, persist }) {
  const args = ["dev", "-c", cfg, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort)];
  args.push("--persist-to", persist, "--show-interactive-dev-session=false", "--var", `ADMIN_TOKEN:${ADMIN_TOKEN}`);
  const t0 = performance.now();
  const child = spawn(join(ROOT, "node_modules/.bin/wrangler"), args, { cwd: ROOT, env: env(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const tail = [];
  let lines = 0;
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      const text = String(chunk);
      lines += text.split("\n").length - 1;
      tail.push(text);
      if (tail.length > 40) tail.shift();
    });
  }
  const exited = new Promise((r) => child.on("exit", r));
  const base = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([firstOk(`${base}/health`, t0, 120_000), exited.then(() => Promise.reject(new Error("wrangler dev exited")))]);
  } catch (e) {
    stop(child);
    throw new Error(`wrangler dev (${cfg}) did not serve: ${e.message}\n${tail.join("")}`);
  }
  const tree = (wanted) => () => {
    const ids = new Set(descendants(child.pid));
    return processes()
      .filter((p) => ids.has(p.pid) && wanted(p.comm))
      .map((p) => p.pid);
  };
  const groups = { wrangler: tree((comm) => !comm.startsWith("workerd")), workerd: tree((comm) => comm.startsWith("workerd")) };
  return { child, base, groups, exited, lines: () => lines, startToFirst200Ms: round(performance.now() - t0, 0) };
}

function stop(child) {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {}
}

/**
 * Measures the wrangler-marked routes through `wrangler dev`. `rounds` alternations of
 * ceiling and app per route; medians reported.
 */
export async function measureWranglerDev({ ports, duration, connections, rounds }) {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const appCfg = config("edgestate-bench", "../../build/index.js", true);
  const ceilingCfg = config("edgestate-bench-ceiling", "../../bench/ceiling.js", false);
  const persist = join(DIR, "state");
  log("wrangler dev: applying migrations to a fresh local D1");
  execFileSync(join(ROOT, "node_modules/.bin/wrangler"), ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist, "-c", appCfg], {
    cwd: ROOT,
    env: env(),
    stdio: "ignore",
    timeout: 120_000,
  });
  let ceiling = null;
  let app = null;
  try {
    log("wrangler dev: starting the ceiling Worker and the app");
    ceiling = await start({ cfg: ceilingCfg, port: ports.ceiling, inspectorPort: ports.ceilingInspector, persist });
    app = await start({ cfg: appCfg, port: ports.app, inspectorPort: ports.appInspector, persist });
    const adminPut = async (body) => {
      const res = await fetch(`${app.base}/admin/config`, { method: "PUT", body, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" } });
      if (res.status !== 200) throw new Error(`PUT /admin/config through wrangler dev: ${res.status} ${await res.text()}`);
    };
    const seeded = await seed(app.base, adminPut);
    const keys = listKeys(appCfg, persist);
    const opts = { duration, connections };
    const results = [];
    for (const route of ROUTES.filter((r) => r.wrangler).map((r) => resolve(r, seeded))) {
      const ceilingRoute = ceilingFor(route, keys);
      await load(ceiling.base, ceilingRoute, {}, { duration: "1s", connections });
      await load(app.base, route, {}, { duration: "1s", connections });
      const runs = { ceiling: [], app: [] };
      for (let i = 0; i < rounds; i++) {
        runs.ceiling.push(await load(ceiling.base, ceilingRoute, ceiling.groups, opts));
        runs.app.push(await load(app.base, route, app.groups, opts));
      }
      const summary = (rs) => ({
        requestsPerSecond: median(rs.map((r) => r.requestsPerSecond)),
        wranglerCpuUsPerRequest: median(rs.map((r) => r.cpuUsPerRequest.wrangler)),
        workerdCpuUsPerRequest: median(rs.map((r) => r.cpuUsPerRequest.workerd)),
        p50Ms: median(rs.map((r) => r.latencyMs.p50)),
        p99Ms: median(rs.map((r) => r.latencyMs.p99)),
        non2xx3xx: rs.reduce((a, r) => a + r.non2xx3xx, 0),
      });
      const entry = { name: route.name, ceilingRequest: ceilingRoute.path, ceiling: summary(runs.ceiling), app: summary(runs.app), runs };
      entry.ratioToCeiling = round(entry.app.requestsPerSecond / entry.ceiling.requestsPerSecond, 3);
      results.push(entry);
      log(
        `wrangler dev ${route.name}: ${entry.app.requestsPerSecond} req/s (${entry.ratioToCeiling}× the ceiling's ${entry.ceiling.requestsPerSecond}); ` +
          `CPU µs/req wrangler ${entry.app.wranglerCpuUsPerRequest} (ceiling ${entry.ceiling.wranglerCpuUsPerRequest}), ` +
          `workerd ${entry.app.workerdCpuUsPerRequest} (ceiling ${entry.ceiling.workerdCpuUsPerRequest})`,
      );
    }
    return {
      settings: { duration, connections, rounds, ports },
      startToFirst200Ms: { ceiling: ceiling.startToFirst200Ms, app: app.startToFirst200Ms },
      outputLines: { ceiling: ceiling.lines(), app: app.lines() },
      routes: results,
    };
  } finally {
    for (const w of [app, ceiling]) {
      if (!w) continue;
      stop(w.child);
      await Promise.race([w.exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
}
