// @ts-check
// The two-location harness: the built Worker running as two isolates in one workerd
// (Miniflare), each behind the KV of its own simulated location (kv-network.js: propagation
// delay, last writer wins, TTLs and metadata carried, one write per second per key) and the
// D1 of its own location (d1-network.js: the primary database in the first isolate's
// location, a read replica that lags in every other, a round trip to the distant primary,
// sessions and bookmarks). Each isolate is its own Miniflare worker, so each has its own
// module state (its own `isolate.rs` state), as two isolates at the edge do.
//
// The delay between locations is a parameter: `bootLocations({ delayMs })`, defaulting to
// EDGESTATE_KV_DELAY_MS (2000 ms in the test command, so it stays fast); so are the
// replica's lag (`replicaLagMs`, EDGESTATE_D1_LAG_MS, 1000 ms) and the round trip from
// another location to the primary (`primaryRttMs`, EDGESTATE_D1_RTT_MS, 150 ms). The same
// tests run at KV's real ~60 s by hand:
//
//   EDGESTATE_KV_DELAY_MS=60000 npx vitest run tests/worker/locations.test.js
//
// Isolates can also share a location (two isolates of one location see one KV at once):
// `bootLocations({ isolates: [["a", "here"], ["b", "here"]] })`.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { TestApp } from "../app.js";
import { ADMIN_TOKEN, COMPATIBILITY_DATE, ROOT, SCRIPT, addresses, checked, clientOver, migrationStatements, workerModules } from "../helpers.js";

/**
 * @typedef {{ seq: number, location: string, key: string, op: "put" | "delete", at: number, accepted: boolean }} Write
 *   One write attempt as the network logged it (`at`: the network's clock, ms).
 * @typedef {TestApp & { location: string }} Isolate The typed client of one isolate.
 * @typedef {{
 *   get: (key: string | string[], opts?: any) => Promise<any>,
 *   getWithMetadata: (key: string, opts?: any) => Promise<any>,
 *   put: (key: string, value: string, opts?: any) => Promise<void>,
 *   delete: (key: string) => Promise<void>,
 *   list: (opts?: any) => Promise<any>,
 * }} LocationKv KV's binding API at one location, through the simulation.
 */

/** The delay between locations unless a test asks for another. */
export const DELAY_MS = Number(process.env.EDGESTATE_KV_DELAY_MS ?? 2000);
/** How far the read replicas lag behind the primary unless a test asks for another. */
export const REPLICA_LAG_MS = Number(process.env.EDGESTATE_D1_LAG_MS ?? 1000);
/** The round trip from another location to the primary unless a test asks for another. */
export const PRIMARY_RTT_MS = Number(process.env.EDGESTATE_D1_RTT_MS ?? 150);

const KV_LOCATION = join(ROOT, "tests/worker/kv-location.js");
const KV_NETWORK = join(ROOT, "tests/worker/kv-network.js");
const D1_LOCATION = join(ROOT, "tests/worker/d1-location.js");
const D1_NETWORK = join(ROOT, "tests/worker/d1-network.js");

/**
 * The entry of each simulated isolate: the built Worker's own `fetch`, called with an `env`
 * whose `CACHE` is this location's view of the KV network (kv-location.js) and whose `DB` is
 * this location's view of the D1 network (d1-location.js). The rest (the admin token) is
 * passed through.
 */
const ENTRY = `import edgestate from "./index.js";
import { locationBinding } from "./kv-location.mjs";
import { d1Binding } from "./d1-location.mjs";
export default {
  fetch(request, env, ctx) {
    return edgestate.fetch(request, { ...env, CACHE: locationBinding(env), DB: d1Binding(env) }, ctx);
  },
};
`;

/**
 * The Miniflare workers: one per isolate, the KV network and the D1 network.
 * @param {{ isolates: [string, string][], locations: string[], delayMs: number, scriptPath: string, replicaLagMs: number, primaryRttMs: number }} options
 */
function workers({ isolates, locations, delayMs, scriptPath, replicaLagMs, primaryRttMs }) {
  const dir = dirname(scriptPath);
  const modules = [
    { type: "ESModule", path: join(dir, "location-entry.mjs"), contents: ENTRY },
    { type: "ESModule", path: join(dir, "kv-location.mjs"), contents: readFileSync(KV_LOCATION, "utf8") },
    { type: "ESModule", path: join(dir, "d1-location.mjs"), contents: readFileSync(D1_LOCATION, "utf8") },
    ...workerModules(scriptPath),
  ];
  return [
    ...isolates.map(([name, location]) => ({
      name,
      modules,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: { ADMIN_TOKEN, LOCATION: location },
      durableObjects: {
        NETWORK: { className: "KvNetwork", scriptName: "kv-network" },
        D1NET: { className: "D1Network", scriptName: "d1-network" },
      },
    })),
    {
      name: "d1-network",
      modules: [{ type: "ESModule", path: D1_NETWORK }],
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: { D1NET: { className: "D1Network", unsafePreventEviction: true } },
      d1Databases: { D1_PRIMARY: "shared-d1", D1_REPLICA: "replica-d1" },
      bindings: {
        PRIMARY_LOCATION: isolates[0][1],
        REPLICA_LAG_MS: String(replicaLagMs),
        PRIMARY_RTT_MS: String(primaryRttMs),
      },
    },
    {
      name: "kv-network",
      modules: [{ type: "ESModule", path: KV_NETWORK }],
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: { NETWORK: { className: "KvNetwork", unsafePreventEviction: true } },
      kvNamespaces: Object.fromEntries(locations.map((l) => [`KV_${l}`, `kv-${l}`])),
      bindings: { DELAY_MS: String(delayMs), LOCATIONS: locations.join(",") },
    },
  ];
}

/**
 * Boots the Worker as isolates at locations (default: isolate `a` at location `a`, `b` at
 * `b`). Returns the typed client of each isolate (by name: a TestApp whose `db` is the shared
 * D1 and whose `kv` is its location's own store, for seeding and inspection), the shared D1
 * (`db`), each location's raw KV namespace (`kvAt[location]`: real local KV, bypassing the
 * simulation), KV as each location sees it through the simulation (`kv(location)`), and the
 * network (`writes(prefix)`: every write attempt, accepted or refused; `setDelay(ms)`;
 * `setSlowPuts([...])`; `inFlight(prefix)`). Every exchange with an isolate is checked
 * against docs/openapi.json, as every other in the suite.
 * D1 is the primary in the first isolate's location and a lagging replica elsewhere
 * (`d1Calls(location)`: every statement run for a location, and where; `setReplica({lagMs,
 * rttMs})`); `db` is the primary itself.
 * @param {{ delayMs?: number, isolates?: [string, string][], seedConfig?: object, scriptPath?: string, replicaLagMs?: number, primaryRttMs?: number }} [options]
 */
export async function bootLocations({
  delayMs = DELAY_MS,
  replicaLagMs = REPLICA_LAG_MS,
  primaryRttMs = PRIMARY_RTT_MS,
  isolates = [
    ["a", "a"],
    ["b", "b"],
  ],
  seedConfig,
  scriptPath = SCRIPT,
} = {}) {
  const locations = [...new Set(isolates.map(([, location]) => location))];
  const options = { workers: workers({ isolates, locations, delayMs, scriptPath, replicaLagMs, primaryRttMs }) };
  const mf = new Miniflare(convertV4MiniflareOptions(/** @type {any} */ (options)));
  await mf.ready;
  // (Binding types come from @cloudflare/workers-types, which is not installed: any.)
  /** @type {any} */
  const db = await mf.getD1Database("D1_PRIMARY", "d1-network");
  /** @type {any} */
  const replica = await mf.getD1Database("D1_REPLICA", "d1-network");
  for (const d of [db, replica]) await d.batch(migrationStatements().map((s) => d.prepare(s)));
  /** @type {any} */
  const d1Network = await mf.getWorker("d1-network");
  /** @type {Record<string, any>} */
  const kvAt = {};
  for (const l of locations) kvAt[l] = await mf.getKVNamespace(`KV_${l}`, "kv-network");
  if (seedConfig) {
    for (const kv of Object.values(kvAt)) await kv.put("config:app", JSON.stringify(seedConfig));
  }
  /** @type {any} */
  const network = await mf.getWorker("kv-network");
  /** @param {string} path @param {RequestInit} [init] */
  const ask = async (path, init) => (await network.fetch(`http://kv${path}`, init)).json();
  /** @type {any} */
  const ns = await mf.getDurableObjectNamespace("NETWORK", "kv-network");
  const stub = /** @type {any} */ (ns.get(ns.idFromName("kv")));
  // One pool of client addresses for all isolates: a client is one address wherever it goes.
  const newClient = addresses("203.0.113");
  /** @type {Record<string, Isolate>} */
  const at = {};
  for (const [name, location] of isolates) {
    /** @type {any} */
    const worker = await mf.getWorker(name);
    // The isolates serve only edgestate's routes: every answer is held to the contract.
    const dispatch = checked((url, init) => worker.fetch(url, init), { otherRoutes: false });
    const client = clientOver(dispatch, { newClient, adminToken: ADMIN_TOKEN });
    at[name] = Object.assign(new TestApp({ ...client, db, kv: kvAt[location] }), { location });
  }
  const env = {
    mf,
    db,
    kvAt,
    delayMs,
    /** The typed client of each isolate, by name. */
    at,
    /**
     * Every write attempt on keys starting with `prefix`.
     * @param {string} [prefix] @returns {Promise<Write[]>}
     */
    writes: (prefix = "") => ask(`/log?prefix=${encodeURIComponent(prefix)}`),
    /**
     * Holds puts in flight: `[{location, prefix, ms}]`, `ms` null to hold them until released;
     * a new list (an empty one to release all) releases the held puts it no longer matches.
     * @param {{ location: string, prefix: string, ms: number | null }[]} slow
     */
    setSlowPuts: (slow) => ask("/slow", { method: "PUT", body: JSON.stringify(slow) }),
    /**
     * The puts held in flight now (`[{location, key}]`) whose key starts with `prefix`.
     * @param {string} [prefix] @returns {Promise<{ location: string, key: string }[]>}
     */
    inFlight: (prefix = "") => ask(`/in-flight?prefix=${encodeURIComponent(prefix)}`),
    /**
     * KV's binding API at `location`, through the simulation (as the Worker there sees it).
     * @param {string} location @returns {LocationKv}
     */
    kv: (location) => ({
      get: (key, opts) => stub.get(location, key, opts),
      getWithMetadata: (key, opts) => stub.getWithMetadata(location, key, opts),
      put: (key, value, opts) => stub.put(location, key, value, opts),
      delete: (key) => stub.delete(location, key),
      list: (opts) => stub.list(location, opts),
    }),
    /**
     * Every D1 statement run for `location` (all locations when absent), oldest first.
     * @param {string} [location]
     * @returns {Promise<{ location: string, target: "primary" | "replica", write: boolean, sql: string, at: number }[]>}
     */
    d1Calls: async (location) =>
      (await d1Network.fetch(`http://d1/calls${location ? `?location=${location}` : ""}`)).json(),
    /**
     * The replicas' lag and the round trip to the primary from now on.
     * @param {{ lagMs?: number, rttMs?: number }} replication
     */
    setReplica: async (replication) =>
      (await d1Network.fetch("http://d1/replica", { method: "PUT", body: JSON.stringify(replication) })).json(),
    /** @param {number} ms */
    setDelay: async (ms) => {
      await ask("/delay", { method: "PUT", body: String(ms) });
      env.delayMs = ms;
    },
    dispose: () => mf.dispose(),
  };
  return env;
}

/**
 * Accepted writes per key closer together than a second: [{key, gapMs}] (KV refuses those).
 * @param {Write[]} writes
 */
export function writesUnderASecondApart(writes) {
  /** @type {Map<string, number>} */
  const last = new Map();
  const out = [];
  for (const w of writes.filter((w) => w.accepted)) {
    if (last.has(w.key) && w.at - /** @type {number} */ (last.get(w.key)) < 1000) out.push({ key: w.key, gapMs: w.at - /** @type {number} */ (last.get(w.key)) });
    last.set(w.key, w.at);
  }
  return out;
}
