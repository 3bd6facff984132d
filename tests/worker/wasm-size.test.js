// @ts-check
// The built Worker's Wasm stays within its byte budget (bench/budgets.json, zlib level 9, as the
// upload limit counts it) and links no `url`/`idna` code: the `worker` crate depends on `url`,
// so it stays in `cargo tree`, but no code path may reach it (it would add about 70 KB of
// gzip, most of it Unicode tables). These are bytes, not time.
// `bash scripts/size.sh` attributes the bytes by function name and checks the same.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ROOT, SCRIPT } from "../helpers.js";

// The Wasm beside the Worker the other files boot (a copy of build/, see tests/snapshot.js).
const wasm = readFileSync(join(dirname(SCRIPT), "index_bg.wasm"));
const BUDGET = JSON.parse(readFileSync(join(ROOT, "bench/budgets.json"), "utf8")).wasm;

describe("the Wasm", () => {
  it("is within its gzip budget", () => {
    const gzip = gzipSync(wasm, { level: 9 }).length;
    expect(gzip, `build/index_bg.wasm is ${gzip} bytes gzip -9`).toBeLessThanOrEqual(BUDGET.gzipBytes);
  });

  it("links no url, idna or percent-encoding code", () => {
    // Data each of them brings along: idna's punycode prefix, url's dot-segment spellings,
    // percent_encoding's table of escapes. (A build that calls Url::parse has all three.)
    for (const marker of ["xn--", "%2e%2e", "%00%01%02%03"]) {
      expect(wasm.includes(Buffer.from(marker)), `${marker} is in build/index_bg.wasm`).toBe(false);
    }
  });
});
