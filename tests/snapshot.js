// Vitest global set-up: boots read a copy of build/, made once before any test file starts.
// tests/scripts/dev.test.js and tests/browser/console.test.js run `npm run dev`, whose
// wrangler `[build]` rewrites build/ while the other files boot the Worker; with the copy,
// they can run side by side and no file ever boots a half-written build.
// EDGESTATE_SCRIPT (another build to boot, e.g. an old one to try a test against) wins.
import { cpSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
/** Where devServerTurn() (tests/helpers.js) keeps its lock; cleared here if left behind. */
export const DEV_SERVER_LOCK = join(ROOT, ".edgestate/dev-server.lock");

export default function setup() {
  // A dev-server turn left behind by an interrupted run (see devServerTurn in helpers.js).
  rmSync(DEV_SERVER_LOCK, { recursive: true, force: true });
  if (process.env.EDGESTATE_SCRIPT) return;
  const from = join(ROOT, "build");
  const to = join(ROOT, ".edgestate/test-build");
  if (!existsSync(join(from, "index.js"))) {
    throw new Error("build/ is missing: run `bash scripts/build.sh` (npm test does) first");
  }
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
  process.env.EDGESTATE_SCRIPT = join(to, "index.js");
}
