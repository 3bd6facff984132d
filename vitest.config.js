import { defineConfig } from "vitest/config";

// Integration tests: each file boots the built Wasm Worker in workerd through Miniflare, with
// real local KV and D1, or runs the project's scripts.
//
// Files run three at a time. Most of their time is spent waiting (bounds of seconds, KV's
// simulated delay, rate-limit windows), so three files share two cores well. No file keeps
// state outside its own Miniflare instances and temporary directories, and no assertion
// depends on wall time, so files do not disturb each other. Files share a worker process
// (`isolate: false`): the contract check (tests/contract.js) compiles its schemas once per
// process.
//
// build/: the global set-up (tests/snapshot.js) copies it before any file starts, and every
// boot reads that copy, because the two files that run `npm run dev`
// (tests/scripts/dev.test.js, tests/browser/console.test.js) rewrite build/ through wrangler's
// `[build]`. Those two take turns (devServerTurn in tests/helpers.js).
export default defineConfig({
  test: {
    include: ["tests/**/*.test.js"],
    globalSetup: ["tests/snapshot.js"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    isolate: false,
    fileParallelism: true,
    maxWorkers: 3,
    // Worker logs only for failing tests.
    silent: "passed-only",
  },
});
