// A panic aborts the Wasm instance (panic = "abort"): the request that panicked fails, and the
// next one must be served by a fresh instance, not by the poisoned one. The reset is the
// wasm-bindgen glue's (its abort handler marks the instance terminated; the next call into
// the Wasm re-instantiates it), reached through edgestate's entry module (scripts/entry.js).
//
// No route of the Worker panics, so this boots a test build with the `panic-probe` feature
// (scripts/test.sh builds it into target/panic-probe/build), whose `GET /__panic` panics. It
// boots it without the contract check (`contract: false`): the 500 a panic gets is exactly
// what the contract forbids.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, boot } from "../helpers.js";

const SCRIPT = join(ROOT, "target/panic-probe/build/index.js");

describe("a panic", () => {
  it("fails only its own request: the next ones are served by a reset Wasm instance", async () => {
    if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: scripts/test.sh builds it`);
    let log = "";
    const { mf } = await boot({ scriptPath: SCRIPT, contract: false, onLog: (chunk) => (log += chunk) });
    try {
      const health = async () => {
        const res = await mf.dispatchFetch("http://127.0.0.1/health");
        return [res.status, await res.json()];
      };
      expect(await health()).toEqual([200, expect.objectContaining({ status: "ok" })]);
      for (let round = 0; round < 2; round++) {
        const res = await mf.dispatchFetch("http://127.0.0.1/__panic");
        await res.arrayBuffer();
        expect(res.status).toBe(500);
        for (let i = 0; i < 3; i++) {
          expect(await health()).toEqual([200, expect.objectContaining({ status: "ok" })]);
        }
      }
      expect(log).toMatch(/Rust panic: .*panic probe/s);
      expect(log).not.toMatch(/Module terminated/);
    } finally {
      await mf.dispose();
    }
  });
});
