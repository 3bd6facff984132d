// @ts-check
// One runtime: the integration tests boot the Worker in the same workerd that `wrangler dev`
// runs. wrangler pins the Miniflare it drives (and Miniflare the workerd it starts); the tests
// import Miniflare from the top of node_modules. This fails as soon as the two resolve to
// different packages (a wrangler or miniflare bump in package.json without the other), and
// when wrangler.toml's compatibility date falls behind what that workerd supports.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE, ROOT } from "../helpers.js";

const fromRoot = createRequire(join(ROOT, "package.json"));
const fromWrangler = createRequire(fromRoot.resolve("wrangler/package.json"));
/** @param {NodeRequire} req @param {string} name */
const pkg = (req, name) => {
  const path = req.resolve(`${name}/package.json`);
  return { path, version: JSON.parse(readFileSync(path, "utf8")).version };
};

describe("one runtime for wrangler dev and the tests", () => {
  it("the tests' Miniflare is the one wrangler drives, and both start one workerd", () => {
    const testsMiniflare = pkg(fromRoot, "miniflare");
    const wranglersMiniflare = pkg(fromWrangler, "miniflare");
    expect(wranglersMiniflare).toEqual(testsMiniflare);
    const fromMiniflare = createRequire(testsMiniflare.path);
    expect(pkg(fromMiniflare, "workerd")).toEqual(pkg(fromWrangler, "workerd"));
    const declared = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies;
    expect(declared.miniflare, "package.json pins miniflare to wrangler's exact version").toBe(wranglersMiniflare.version);
  });

  it("wrangler.toml's compatibility date is that workerd's newest, or within a month of it", () => {
    const workerd = join(ROOT, "node_modules/.bin/workerd");
    const printed = execFileSync(workerd, ["--version"], { encoding: "utf8" });
    const supported = /(\d{4}-\d{2}-\d{2})/.exec(printed)?.[1];
    expect(supported, printed).toBeTruthy();
    const days = (Date.parse(String(supported)) - Date.parse(COMPATIBILITY_DATE)) / 86_400_000;
    expect(days, `compatibility_date ${COMPATIBILITY_DATE}, workerd supports ${supported}`).toBeGreaterThanOrEqual(0);
    expect(days, `compatibility_date ${COMPATIBILITY_DATE} lags workerd's ${supported}`).toBeLessThanOrEqual(31);
    const embed = readFileSync(join(ROOT, "examples/embed/wrangler.toml"), "utf8");
    expect(/compatibility_date\s*=\s*"([^"]+)"/.exec(embed)?.[1], "examples/embed uses the same date").toBe(COMPATIBILITY_DATE);
  });
});
