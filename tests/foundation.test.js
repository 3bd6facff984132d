// The skeleton: the Wasm Worker really boots in workerd and answers the contract's basics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, expectError, timing } from "./helpers.js";

let w;
beforeAll(async () => {
  w = await boot();
});
afterAll(() => w?.dispose());

describe("foundation", () => {
  it("GET /health is 200 {status: ok} with no storage work", async () => {
    const r = await w.json("/health");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: "ok" });
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(timing(r.res)).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });
    expect(r.res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
  });

  it("an unknown path is 404 not_found in the error JSON", async () => {
    const r = await w.json("/nope");
    expectError(expect, r, 404, "not_found");
    expect(r.res.headers.get("Server-Timing")).toMatch(/^kv;desc="reads=0/);
  });

  it("a known path with another method is 405 with Allow", async () => {
    let r = await w.json("/health", { method: "POST" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET");
    r = await w.json("/admin/config", { method: "GET" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("PUT, PATCH");
    r = await w.json("/sessions/current", { method: "POST" });
    expect(r.res.headers.get("Allow")).toBe("GET, DELETE");
  });

  it("every response carries Server-Timing in the contract format", async () => {
    for (const path of ["/health", "/config", "/flags/x", "/nope"]) {
      const res = await w.fetch(path);
      expect(() => timing(res)).not.toThrow();
    }
  });

  it("paths are matched exactly", async () => {
    expectError(expect, await w.json("/health/"), 404, "not_found");
    expectError(expect, await w.json("/HEALTH"), 404, "not_found");
    expectError(expect, await w.json("/config/x"), 404, "not_found");
  });
});
