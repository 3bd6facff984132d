// The constant ceiling (bench/ceiling.js, any path) served through an entrypoint of the shape
// worker-build 0.8 generates for every Rust Worker: a WorkerEntrypoint subclass behind a
// Proxy that re-creates the instance after a Wasm panic. Its cost over bench/ceiling.js is
// what that shape costs per request, whatever the Worker does; `npm run bench` reports it
// so that edgestate's own share of the /health overhead can be told apart.
import { WorkerEntrypoint } from "cloudflare:workers";

class Entrypoint extends WorkerEntrypoint {}
Entrypoint.prototype.fetch = function fetch() {
  return new Response('{"status":"ok"}', { headers: { "content-type": "application/json" } });
};

const generation = { current: 0 };
export default new Proxy(Entrypoint, {
  construct(target, args, newTarget) {
    const state = { instance: Reflect.construct(target, args, newTarget), generation: generation.current };
    return new Proxy(state, {
      get(s, prop, receiver) {
        const value = Reflect.get(s.instance, prop, receiver);
        if (typeof value !== "function") return value;
        return new Proxy(value, { apply: (fn, self, argv) => fn.apply(self, argv) });
      },
    });
  },
});
