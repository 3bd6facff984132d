// @ts-check
// The skeleton: the Wasm Worker really boots in workerd and answers the contract's basics.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_WORK, expectError, timing } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp();
});
afterAll(() => w?.dispose());

describe("foundation", () => {
  it("GET /health is 200 {status: ok} with no storage work", async () => {
    const r = await w.getHealth();
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ok" });
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(timing(r.res)).toEqual(NO_WORK);
    expect(r.res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
  });

  it("an unknown path is 404 not_found in the error JSON", async () => {
    const r = await w.json("/nope"); // no operation: the router's 404
    expectError(expect, r, 404, "not_found");
    expect(r.res.headers.get("Server-Timing")).toMatch(/^kv;desc="reads=0/);
  });

  it("a known path with another method is 405 with Allow", async () => {
    // Methods the paths do not declare: the router's 405, no operation.
    let r = await w.json("/health", { method: "POST" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET");
    r = await w.json("/admin/config", { method: "POST" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET, PUT, PATCH");
    r = await w.json("/sessions/current", { method: "POST" });
    expect(r.res.headers.get("Allow")).toBe("GET, DELETE");
  });

  it("every response carries Server-Timing in the contract format", async () => {
    const answers = [await w.getHealth(), await w.getConfig(), await w.getFlag("x"), await w.json("/nope") /* no operation */];
    for (const r of answers) expect(() => timing(r.res)).not.toThrow();
  });

  it("paths are matched exactly", async () => {
    // Paths no operation declares: the router's 404.
    expectError(expect, await w.json("/health/"), 404, "not_found");
    expectError(expect, await w.json("/HEALTH"), 404, "not_found");
    expectError(expect, await w.json("/config/x"), 404, "not_found");
  });

  it("any method a path does not declare is 405 with Allow, unknown methods included", async () => {
    // Methods fetch() refuses or does not know (TRACE, PROPFIND…): plain HTTP/1.1.
    for (const method of ["PROPFIND", "QUERY", "PURGE", "TRACE", "OPTIONS"]) {
      const r = await w.raw(method, "/config");
      expect(r.status, `${method} ${r.text}`).toBe(405);
      expect(r.headers.allow).toBe("GET");
      expect(JSON.parse(r.text).code).toBe("method_not_allowed");
    }
    const r = await w.raw("PROPFIND", "/admin/users/u1/sessions");
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe("DELETE");
  });

  it("HEAD is answered wherever GET is: same status and headers, no body", async () => {
    const head = await w.getHealth({}, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(head.text).toBe("");
    const config = await w.getConfig({ method: "HEAD" });
    expect(config.status).toBe(200);
    expect(config.res.headers.get("RateLimit-Limit")).not.toBeNull();
    // HEAD on a path without GET: the router's 405, no operation.
    expect((await w.fetch("/admin/config/rollback", { method: "HEAD" })).status).toBe(405);
  });

  it("a percent-encoded path parameter means the same as its decoded form", async () => {
    const put = await w.putUser("A", { name: "Ann" });
    expect(put.status, put.text).toBe(200);
    const plain = await w.getUser("A");
    const encoded = await w.getUser("%41");
    expect(encoded.status, encoded.text).toBe(200);
    expect(encoded.body).toEqual(plain.body);
    for (const user of ["alice@example.com", "alice%40example.com"]) {
      const r = await w.revokeUserSessions(user);
      expect(r.status, `${user}: ${r.text}`).toBe(200);
      expect(r.body).toEqual({ revoked: 0 });
    }
    expectError(expect, await w.getUser("%2541"), 400, "invalid_request");
  });
});
