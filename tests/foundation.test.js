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
    expect(r.body).toMatchObject({ status: "ok" });
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
    r = await w.json("/admin/config", { method: "POST" });
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET, PUT, PATCH");
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

  it("any method a path does not declare is 405 with Allow, unknown methods included", async () => {
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
    const head = await w.fetch("/health", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await head.text()).toBe("");
    const config = await w.fetch("/config", { method: "HEAD" });
    expect(config.status).toBe(200);
    expect(config.headers.get("RateLimit-Limit")).not.toBeNull();
    expect((await w.fetch("/admin/config/rollback", { method: "HEAD" })).status).toBe(405);
  });

  it("a percent-encoded path parameter means the same as its decoded form", async () => {
    const put = await w.json("/admin/users/A", { method: "PUT", admin: true, body: { name: "Ann" } });
    expect(put.status, put.text).toBe(200);
    const plain = await w.json("/users/A");
    const encoded = await w.json("/users/%41");
    expect(encoded.status, encoded.text).toBe(200);
    expect(encoded.body).toEqual(plain.body);
    for (const user of ["alice@example.com", "alice%40example.com"]) {
      const r = await w.json(`/admin/users/${user}/sessions`, { method: "DELETE", admin: true });
      expect(r.status, `${user}: ${r.text}`).toBe(200);
      expect(r.body).toEqual({ revoked: 0 });
    }
    expectError(expect, await w.json("/users/%2541"), 400, "invalid_request");
  });
});

