// @ts-check
// A panic aborts the Wasm instance (panic = "abort"): the request that panicked fails, and the
// next one must be served by a fresh instance, not by the poisoned one. The reset is the
// wasm-bindgen glue's (its abort handler marks the instance terminated; the next call into
// the Wasm re-instantiates it), reached through edgestate's entry module (scripts/entry.js).
//
// No route of the Worker panics, so this boots a test build with the `panic-probe` feature
// (scripts/test.sh builds it into target/panic-probe/build), whose `GET /__panic` panics in
// the runtime's call into the Wasm, and `GET /__panic/after-await` after a KV read came back
// (in a future woken from the microtask queue, where the glue's exception handling differs). It
// boots it without the contract check (`contract: false`): the 500 a panic gets is exactly
// what the contract forbids.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";
import { spawnApp } from "../app.js";

const SCRIPT = join(ROOT, "target/panic-probe/build/index.js");

describe("a panic", () => {
  for (const path of ["/__panic", "/__panic/after-await"]) {
    it(`fails only its own request (${path}): the next ones are served by a reset Wasm instance`, async () => {
      if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: scripts/test.sh builds it`);
      let log = "";
      const app = await spawnApp({ scriptPath: SCRIPT, contract: false, onLog: (line) => (log += line) });
      try {
        const health = async () => {
          const r = await app.getHealth();
          return [r.status, r.body];
        };
        expect(await health()).toEqual([200, expect.objectContaining({ status: "ok" })]);
        for (let round = 0; round < 2; round++) {
          const res = await app.fetch(path); // the probe's own route, no operation
          await res.arrayBuffer();
          expect(res.status).toBe(500);
          for (let i = 0; i < 3; i++) {
            expect(await health()).toEqual([200, expect.objectContaining({ status: "ok" })]);
          }
        }
        expect(log).toMatch(/Rust panic: .*panic probe/s);
        expect(log).not.toMatch(/Module terminated/);
      } finally {
        await app.dispose();
      }
    });
  }
});
