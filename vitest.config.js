import { defineConfig } from "vitest/config";

// Integration tests: each file boots the built Wasm Worker (build/) in workerd through
// Miniflare, with real local KV and D1, or runs the project's scripts.
//
// Two groups, one after the other:
// 1. `workerd`: every file but the dev-server one, two at a time. Most of their time is
//    spent waiting (bounds of seconds, KV's simulated delay, rate-limit windows), so two files
//    share the two cores well. No file keeps state outside its own Miniflare instances and
//    temporary directories, and no assertion depends on wall time, so files do not disturb
//    each other. Files share a worker process (`isolate: false`): the contract check
//    (tests/contract.js) compiles its schemas once per process.
// 2. `dev-server`: tests/scripts/dev.test.js runs `npm run dev`, whose wrangler `[build]`
//    rewrites build/ (which every `workerd` file boots), so it runs alone, after them.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  isolate: false,
  // Worker logs only for failing tests.
  silent: "passed-only",
};
const DEV_SERVER = "tests/scripts/dev.test.js";

export default defineConfig({
  test: {
    ...shared,
    projects: [
      {
        test: {
          ...shared,
          name: "workerd",
          include: ["tests/**/*.test.js"],
          exclude: [DEV_SERVER],
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: "dev-server",
          include: [DEV_SERVER],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
