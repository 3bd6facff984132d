// @ts-check
import { BaseSequencer } from "vitest/node";
import { defineConfig } from "vitest/config";

// Integration tests: each file boots the built Wasm Worker in workerd through Miniflare, with
// real local KV and D1, or runs the project's scripts.
//
// Files run three at a time. Most of their time is spent waiting (bounds of seconds, KV's
// simulated delay, rate-limit windows), so three files share two cores well. No file keeps
// state outside its own Miniflare instances and temporary directories, and no assertion
// depends on how fast the machine runs, so files do not disturb each other: a test waits for
// a condition (`eventually` in tests/helpers.js), arranges a fixed window before it starts
// (`roomInWindow`), seeds the age of stored state instead of waiting for it, or sleeps only to
// let a documented bound pass (KV's delay, the 10 s revocation bound, a second between KV
// writes) before asserting what holds after it. Where a rule is itself per second (KV's one
// write per key per second), it is checked on the spacing of the writes, a bound a correct
// Worker meets at any speed. Files share a worker process (`isolate: false`): the contract
// check (tests/contract.js) compiles its schemas once per process.
//
// build/: the global set-up (tests/snapshot.js) copies it before any file starts, and every
// boot reads that copy, because the two files that run `npm run dev`
// (tests/scripts/dev.test.js, tests/browser/console.test.js) rewrite build/ through wrangler's
// `[build]`. Those two take turns (devServerTurn in tests/helpers.js). The order below starts
// the `npm run dev` test first and queues the browser test behind four other files, so that
// it is picked up about when the first one ends: neither holds a lane for long waiting for its
// turn, and neither is left running alone at the end.
const FIRST = "tests/scripts/dev.test.js";
const SECOND = "tests/browser/";
const BETWEEN = 4;

class DevServersApart extends BaseSequencer {
  /** @param {import("vitest/node").TestSpecification[]} files */
  async sort(files) {
    const sorted = await super.sort(files);
    const first = sorted.filter((f) => f.moduleId.includes(FIRST));
    const second = sorted.filter((f) => f.moduleId.includes(SECOND));
    const rest = sorted.filter((f) => !first.includes(f) && !second.includes(f));
    return [...first, ...rest.slice(0, BETWEEN), ...second, ...rest.slice(BETWEEN)];
  }
}

export default defineConfig({
  test: {
    include: ["tests/**/*.test.js"],
    globalSetup: ["tests/snapshot.js"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    isolate: false,
    fileParallelism: true,
    maxWorkers: 3,
    sequence: { sequencer: DevServersApart },
    // Worker logs only for failing tests.
    silent: "passed-only",
  },
});
