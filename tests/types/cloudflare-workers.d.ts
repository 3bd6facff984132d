// Types for the runtime module the test stand-ins import (workerd's `cloudflare:workers`,
// for the simulated KV network and its likes), enough for the type check of tests/
// (`npx tsc -p tests/jsconfig.json`). The full types are @cloudflare/workers-types, which the
// project does not install.

/** A Durable Object's state (storage, id, …): not typed here. */
type DurableObjectState = any;

declare module "cloudflare:workers" {
  /** The base class of a Durable Object: the runtime hands it its state and bindings. */
  export class DurableObject<Env = any> {
    constructor(ctx: DurableObjectState, env: Env);
    ctx: DurableObjectState;
    env: Env;
  }
}
