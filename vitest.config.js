import { defineConfig } from "vitest/config";

// Integration tests: each file boots the built Wasm Worker (build/) in workerd through
// Miniflare, with real local KV and D1. Files run one after another: each boots its own
// runtime, and the machines this runs on have two cores. They share one worker process
// (`isolate: false`): no file keeps state outside its own Miniflare instances, and the
// contract check (tests/contract.js) compiles its schemas once for the whole run.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.js"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    isolate: false,
    // Worker logs only for failing tests.
    silent: "passed-only",
  },
});
