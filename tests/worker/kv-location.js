// @ts-check
// The `CACHE` binding of one simulated location (see kv-network.js for what the simulation
// models). locations.js loads this module beside the built Worker in each simulated isolate
// (its entry passes the Worker `locationBinding(env)` as `CACHE`), so it imports nothing:
// every call goes to the one KV network object.

/** @typedef {{ NETWORK: any, LOCATION: string }} LocationEnv */

/**
 * The network every location's stand-in talks to (one object for the whole simulation).
 * @param {LocationEnv} env
 */
const network = (env) => env.NETWORK.get(env.NETWORK.idFromName("kv"));

/**
 * The `CACHE` binding of one location, from the isolate's `NETWORK` (the network object's
 * namespace) and `LOCATION` bindings: KV's binding API, every call answered by the network
 * at this location.
 * @param {LocationEnv} env
 */
export function locationBinding(env) {
  const at = env.LOCATION;
  return {
    /** @param {string | string[]} keys @param {unknown} [opts] */
    get: async (keys, opts) => network(env).get(at, keys, opts),
    /** @param {string | string[]} keys @param {unknown} [opts] */
    getWithMetadata: async (keys, opts) => network(env).getWithMetadata(at, keys, opts),
    /** @param {string} key @param {unknown} value @param {unknown} [opts] */
    put: async (key, value, opts) => network(env).put(at, key, value, opts),
    /** @param {string} key */
    delete: async (key) => network(env).delete(at, key),
    /** @param {unknown} [opts] */
    list: async (opts) => network(env).list(at, opts),
  };
}
