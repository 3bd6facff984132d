// The `CACHE` binding of one simulated location (see kv-network.js for what the simulation
// models). Miniflare loads this module as a wrapped binding inside the Worker that uses it,
// so it imports nothing: every call goes to the one KV network object.

/** The network every location's stand-in talks to (one object for the whole simulation). */
const network = (env) => env.NETWORK.get(env.NETWORK.idFromName("kv"));

/**
 * The `CACHE` binding of one location (a wrapped binding: Miniflare calls this with the
 * inner bindings `NETWORK` and `LOCATION`). KV's binding API, every call answered by the
 * network at this location.
 */
export function locationBinding(env) {
  const at = env.LOCATION;
  return {
    get: async (keys, opts) => network(env).get(at, keys, opts),
    getWithMetadata: async (keys, opts) => network(env).getWithMetadata(at, keys, opts),
    put: async (key, value, opts) => network(env).put(at, key, value, opts),
    delete: async (key) => network(env).delete(at, key),
    list: async (opts) => network(env).list(at, opts),
  };
}
