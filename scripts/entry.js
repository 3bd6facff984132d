// The Worker's entry module. scripts/build.sh copies it to build/index.js and moves what
// worker-build wrote there (the wasm-bindgen glue and worker-build's entrypoint) to
// build/glue.mjs.
//
// worker-build's default export is a `WorkerEntrypoint` class behind a `Proxy`: on every
// request the runtime constructs it through the `Proxy`, whose `get` wraps `fetch` in a
// second `Proxy`, so that a Wasm instance reset after a panic also gets a fresh class
// instance. That cost GET /health about 130,000 instructions per request (callgrind; some
// 20 µs), two thirds of what it cost above a constant Worker. edgestate keeps no state in a
// class instance. The reset itself is the glue's: it marks the instance terminated when a
// panic aborts or a call traps, and every call into the Wasm re-instantiates a terminated
// instance first (wasm-bindgen's abort handler and reset-state function, which worker-build
// enables). So this module calls worker-build's handlers directly, with the `env` and `ctx`
// the class would have given them.
//
// The handlers are the ones worker-build put on its class's prototype (here `fetch`); each
// reads `this.env` and `this.ctx`.
import Entrypoint from "./glue.mjs";

const handlers = {};
for (const name of Object.getOwnPropertyNames(Entrypoint.prototype)) {
  const handler = Entrypoint.prototype[name];
  if (name === "constructor" || typeof handler !== "function") continue;
  handlers[name] = (event, env, ctx) => handler.call({ env, ctx }, event);
}

export default handlers;
