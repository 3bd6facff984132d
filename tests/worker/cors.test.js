// CORS as configuration: ALLOWED_ORIGINS lists exact origins. A listed origin gets its own
// origin back with credentials allowed, on every response (errors included); any other
// origin gets no CORS header; every response varies on Origin while the list is set.
// Preflights are answered from the route table: 204 for a listed origin, no storage work,
// no rate limit, open during maintenance; a non-preflight OPTIONS stays 405 with Allow.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, expectError, timing } from "../helpers.js";

const APP = "https://app.example.com";
const OTHER = "https://evil.example";
const NO_WORK = { reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 };
const CORS_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-expose-headers",
  "access-control-max-age",
];

let w;
beforeAll(async () => {
  w = await boot({
    vars: { ALLOWED_ORIGINS: `${APP}, http://localhost:5173` },
    seedConfig: { rateLimits: { default: 1000, flags: 2 } },
  });
});
afterAll(() => w?.dispose());

const corsHeadersOf = (res) => CORS_HEADERS.filter((h) => res.headers.get(h) !== null);
const preflight = (path, origin, method = "PATCH", client = w.newClient()) =>
  w.fetch(path, {
    method: "OPTIONS",
    client,
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": method,
      "Access-Control-Request-Headers": "authorization, content-type",
    },
  });

describe("CORS on ordinary requests", () => {
  it("a listed origin gets itself back, credentials allowed, readable rate-limit headers", async () => {
    const res = await w.fetch("/config", { headers: { Origin: APP } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(res.headers.get("Access-Control-Expose-Headers")).toMatch(/RateLimit-Remaining/);
    expect(res.headers.get("Vary")).toMatch(/\bOrigin\b/);
    const local = await w.fetch("/health", { headers: { Origin: "http://localhost:5173" } });
    expect(local.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:5173");
  });

  it("a listed origin can read errors too (401, 404, 405)", async () => {
    for (const [path, method, status] of [
      ["/prefs", "GET", 401],
      ["/nope", "GET", 404],
      ["/config", "DELETE", 405],
    ]) {
      const res = await w.fetch(path, { method, headers: { Origin: APP } });
      expect(res.status, path).toBe(status);
      expect(res.headers.get("Access-Control-Allow-Origin"), path).toBe(APP);
    }
  });

  it("an unlisted origin, a lookalike or a wildcard-style origin gets no CORS header, only Vary", async () => {
    for (const origin of [OTHER, "https://app.example.com.evil.example", "http://app.example.com", "null"]) {
      const res = await w.fetch("/config", { headers: { Origin: origin } });
      expect(res.status, origin).toBe(200);
      expect(corsHeadersOf(res), origin).toEqual([]);
      expect(res.headers.get("Vary"), origin).toMatch(/\bOrigin\b/);
    }
  });

  it("a request without Origin still varies on it (a cache must not share the answers)", async () => {
    const res = await w.fetch("/config");
    expect(corsHeadersOf(res)).toEqual([]);
    expect(res.headers.get("Vary")).toMatch(/\bOrigin\b/);
  });

  it("with ALLOWED_ORIGINS empty, CORS is off: no CORS header, no Vary, a preflight is 405", async () => {
    const plain = await boot({ vars: { ALLOWED_ORIGINS: "" } });
    try {
      const res = await plain.fetch("/config", { headers: { Origin: APP } });
      expect(corsHeadersOf(res)).toEqual([]);
      expect(res.headers.get("Vary")).toBeNull();
      const pre = await plain.fetch("/config", {
        method: "OPTIONS",
        headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
      });
      const r = await jsonOf(pre);
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("GET");
      expect(corsHeadersOf(pre)).toEqual([]);
    } finally {
      await plain.dispose();
    }
  });
});

describe("CORS preflights", () => {
  it("a listed origin gets 204 with the path's methods and headers, and no storage work", async () => {
    const res = await preflight("/prefs", APP);
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(res.headers.get("Access-Control-Allow-Methods")).toBe("GET, PATCH");
    expect(res.headers.get("Access-Control-Allow-Headers")).toBe("Authorization, Content-Type, If-Match, If-None-Match, Prefs-Version");
    expect(Number(res.headers.get("Access-Control-Max-Age"))).toBeGreaterThan(0);
    expect(res.headers.get("Vary")).toMatch(/Origin/);
    expect(res.headers.get("Vary")).toMatch(/Access-Control-Request-Method/);
    expect(res.headers.get("RateLimit-Limit")).toBeNull();
    expect(timing(res)).toEqual(NO_WORK);
    expect(await res.text()).toBe("");
    const admin = await preflight("/admin/users/u1", APP, "DELETE");
    expect(admin.headers.get("Access-Control-Allow-Methods")).toBe("PUT, DELETE");
  });

  it("preflights are not counted by the rate limiter", async () => {
    const client = w.newClient();
    for (let i = 0; i < 5; i++) expect((await preflight("/flags/x", APP, "GET", client)).status).toBe(204);
    // The flags group allows 2 per window: both still pass after five preflights.
    for (let i = 0; i < 2; i++) {
      const r = await w.fetch("/flags/x", { client, headers: { Origin: APP } });
      expect(r.status, `request ${i + 1}`).toBe(200);
    }
    expect((await w.fetch("/flags/x", { client })).status).toBe(429);
  });

  it("an unlisted origin gets 403 forbidden and no CORS header", async () => {
    const res = await preflight("/prefs", OTHER);
    expectError(expect, await jsonOf(res), 403, "forbidden");
    expect(corsHeadersOf(res)).toEqual([]);
    expect(timing(res)).toEqual(NO_WORK);
  });

  it("an unknown path is 404, as for any method", async () => {
    const res = await preflight("/nope", APP);
    expectError(expect, await jsonOf(res), 404, "not_found");
  });

  it("preflights stay open during maintenance", async () => {
    const m = await boot({ vars: { ALLOWED_ORIGINS: APP }, seedConfig: { maintenanceMode: true } });
    try {
      const res = await m.fetch("/config", {
        method: "OPTIONS",
        headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
      });
      expect(res.status).toBe(204);
      expect(timing(res)).toEqual(NO_WORK);
    } finally {
      await m.dispose();
    }
  });

  it("an OPTIONS that is not a preflight keeps 405 with Allow", async () => {
    for (const headers of [{}, { Origin: APP }, { "Access-Control-Request-Method": "GET" }]) {
      const r = await jsonOf(await w.fetch("/config", { method: "OPTIONS", headers }));
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("GET");
    }
  });
});

/** The shape expectError wants, from a Response. */
async function jsonOf(res) {
  const text = await res.text();
  return { res, status: res.status, text, body: text ? JSON.parse(text) : null };
}
