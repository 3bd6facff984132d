// The two-location harness: the built Worker running as two isolates in one workerd
// (Miniflare), sharing one D1, each behind the KV of its own simulated location
// (kv-network.js: propagation delay, last writer wins, TTLs and metadata carried, one write
// per second per key). Each isolate is its own Miniflare worker, so each has its own module
// state (its own `isolate.rs` state), as two isolates at the edge do.
//
// The delay between locations is a parameter: `bootLocations({ delayMs })`, defaulting to
// EDGESTATE_KV_DELAY_MS (2000 ms in the test command, so it stays fast). The same tests run
// at KV's real ~60 s by hand:
//
//   EDGESTATE_KV_DELAY_MS=60000 npx vitest run tests/worker/locations.test.js
//
// Isolates can also share a location (two isolates of one location see one KV at once):
// `bootLocations({ isolates: [["a", "here"], ["b", "here"]] })`.
import { Miniflare } from "miniflare";
import { join } from "node:path";
import { ADMIN_TOKEN, COMPATIBILITY_DATE, ROOT, SCRIPT, migrationStatements } from "../helpers.js";

/** The delay between locations unless a test asks for another. */
export const DELAY_MS = Number(process.env.EDGESTATE_KV_DELAY_MS ?? 2000);

const KV_LOCATION = join(ROOT, "tests/worker/kv-location.js");
const KV_NETWORK = join(ROOT, "tests/worker/kv-network.js");

/** The Miniflare workers: one per isolate, the location stand-in, and the KV network. */
function workers({ isolates, locations, delayMs, scriptPath }) {
  return [
    ...isolates.map(([name, location]) => ({
      name,
      modules: true,
      scriptPath,
      modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
      compatibilityDate: COMPATIBILITY_DATE,
      d1Databases: { DB: "shared-d1" },
      bindings: { ADMIN_TOKEN },
      wrappedBindings: {
        CACHE: { scriptName: "kv-location", entrypoint: "locationBinding", bindings: { LOCATION: location } },
      },
    })),
    {
      name: "kv-location",
      modules: true,
      scriptPath: KV_LOCATION,
      durableObjects: { NETWORK: { className: "KvNetwork", scriptName: "kv-network" } },
    },
    {
      name: "kv-network",
      modules: true,
      scriptPath: KV_NETWORK,
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: { NETWORK: { className: "KvNetwork", unsafePreventEviction: true } },
      kvNamespaces: Object.fromEntries(locations.map((l) => [`KV_${l}`, `kv-${l}`])),
      bindings: { DELAY_MS: String(delayMs), LOCATIONS: locations.join(",") },
    },
  ];
}

/** Requests to one isolate: `fetch(path, {method, body, headers, admin, session, client})`. */
function isolateClient(worker, location) {
  let n = 0;
  const client = {
    location,
    /** A distinct client address, so one test's rate limits do not reach another's. */
    newClient: () => `203.0.113.${(++n % 250) + 1}`,
    fetch(path, opts = {}) {
      const headers = new Headers(opts.headers ?? {});
      if (opts.admin) headers.set("Authorization", `Bearer ${ADMIN_TOKEN}`);
      if (opts.session) headers.set("Authorization", `Bearer ${opts.session}`);
      if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", opts.client ?? "198.51.100.1");
      let body = opts.body;
      if (body !== undefined && typeof body !== "string") {
        body = JSON.stringify(body);
        headers.set("Content-Type", "application/json");
      }
      return worker.fetch(`http://127.0.0.1${path}`, { method: opts.method ?? "GET", headers, body });
    },
    async json(path, opts) {
      const res = await client.fetch(path, opts);
      const text = await res.text();
      return { res, status: res.status, body: text ? JSON.parse(text) : null, text };
    },
  };
  return client;
}

/**
 * Boots the Worker as isolates at locations (default: isolate `a` at location `a`, `b` at
 * `b`). Returns a client per isolate (by name), the shared D1 (`db`), each location's raw
 * KV namespace (`kvAt[location]`: real local KV, bypassing the simulation, for seeding and
 * inspection), KV as each location sees it through the simulation (`kv(location)`), and the
 * network (`writes(prefix)`: every write attempt, accepted or refused; `setDelay(ms)`;
 * `setSlowPuts([...])`).
 */
export async function bootLocations({
  delayMs = DELAY_MS,
  isolates = [
    ["a", "a"],
    ["b", "b"],
  ],
  seedConfig,
  scriptPath = SCRIPT,
} = {}) {
  const locations = [...new Set(isolates.map(([, location]) => location))];
  const mf = new Miniflare({ workers: workers({ isolates, locations, delayMs, scriptPath }) });
  await mf.ready;
  const db = await mf.getD1Database("DB", isolates[0][0]);
  await db.batch(migrationStatements().map((s) => db.prepare(s)));
  const kvAt = {};
  for (const l of locations) kvAt[l] = await mf.getKVNamespace(`KV_${l}`, "kv-network");
  if (seedConfig) {
    for (const kv of Object.values(kvAt)) await kv.put("config:app", JSON.stringify(seedConfig));
  }
  const network = await mf.getWorker("kv-network");
  const env = { mf, db, kvAt, delayMs };
  for (const [name, location] of isolates) env[name] = isolateClient(await mf.getWorker(name), location);
  /** Every write attempt on keys starting with `prefix`: {seq, location, key, op, at, accepted}. */
  env.writes = async (prefix = "") => (await network.fetch(`http://kv/log?prefix=${encodeURIComponent(prefix)}`)).json();
  /** Holds puts in flight: [{location, prefix, ms}] (an empty list releases them). */
  env.setSlowPuts = async (slow) => (await network.fetch("http://kv/slow", { method: "PUT", body: JSON.stringify(slow) })).json();
  /** KV's binding API at `location`, through the simulation (as the Worker there sees it). */
  const ns = await mf.getDurableObjectNamespace("NETWORK", "kv-network");
  const stub = ns.get(ns.idFromName("kv"));
  env.kv = (location) => ({
    get: (key, opts) => stub.get(location, key, opts),
    getWithMetadata: (key, opts) => stub.getWithMetadata(location, key, opts),
    put: (key, value, opts) => stub.put(location, key, value, opts),
    delete: (key) => stub.delete(location, key),
    list: (opts) => stub.list(location, opts),
  });
  env.setDelay = async (ms) => {
    await (await network.fetch("http://kv/delay", { method: "PUT", body: String(ms) })).json();
    env.delayMs = ms;
  };
  env.dispose = () => mf.dispose();
  return env;
}

/** Accepted writes per key closer together than a second: [{key, gapMs}] (KV refuses those). */
export function writesUnderASecondApart(writes) {
  const last = new Map();
  const out = [];
  for (const w of writes.filter((w) => w.accepted)) {
    if (last.has(w.key) && w.at - last.get(w.key) < 1000) out.push({ key: w.key, gapMs: w.at - last.get(w.key) });
    last.set(w.key, w.at);
  }
  return out;
}
