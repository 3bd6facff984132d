// @ts-check
// Vitest global set-up: boots read a copy of build/, made once before any test file starts.
// tests/scripts/dev.test.js and tests/browser/console.test.js run `npm run dev`, whose
// wrangler `[build]` rewrites build/ while the other files boot the Worker; with the copy,
// they can run side by side and no file ever boots a half-written build. The copy is this
// run's own (.edgestate/test-build-<pid>, removed at the end), so that runs started side by
// side in one checkout do not replace each other's copy under their feet.
// EDGESTATE_SCRIPT (another build to boot, e.g. an old one to try a test against) wins.
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
/**
 * Where devServerTurn() (tests/helpers.js) keeps its lock, with the holder's pid in `pid`;
 * cleared here if its holder is gone (an interrupted run).
 */
export const DEV_SERVER_LOCK = join(ROOT, ".edgestate/dev-server.lock");

/**
 * Whether process `pid` is alive.
 * @param {number} pid
 */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return /** @type {NodeJS.ErrnoException} */ (e).code === "EPERM";
  }
}

/** @returns {(() => void) | undefined} the teardown */
export default function setup() {
  // A dev-server turn left behind by an interrupted run (see devServerTurn in helpers.js); a
  // turn that another run's live process holds stays.
  const holder = existsSync(join(DEV_SERVER_LOCK, "pid")) ? Number(readFileSync(join(DEV_SERVER_LOCK, "pid"), "utf8")) : NaN;
  if (!(holder > 0 && alive(holder))) rmSync(DEV_SERVER_LOCK, { recursive: true, force: true });
  if (process.env.EDGESTATE_SCRIPT) return;
  const from = join(ROOT, "build");
  const to = join(ROOT, `.edgestate/test-build-${process.pid}`);
  if (!existsSync(join(from, "index.js"))) {
    throw new Error("build/ is missing: run `bash scripts/build.sh` (npm test does) first");
  }
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
  process.env.EDGESTATE_SCRIPT = join(to, "index.js");
  return () => rmSync(to, { recursive: true, force: true });
}
