// @ts-check
// CORS as configuration: ALLOWED_ORIGINS lists exact origins. A listed origin gets its own
// origin back with credentials allowed, on every response (errors included); any other
// origin gets no CORS header; every response varies on Origin while the list is set.
// Preflights are answered from the route table: 204 for a listed origin, no storage work,
// no rate limit, open during maintenance; a non-preflight OPTIONS stays 405 with Allow.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_WORK, answerOf, expectError, timing } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @typedef {import("../helpers.js").Answer} Answer */

const APP = "https://app.example.com";
const OTHER = "https://evil.example";
const CORS_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-expose-headers",
  "access-control-max-age",
];

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({
    vars: { ALLOWED_ORIGINS: `${APP}, http://localhost:5173` },
    seedConfig: { rateLimits: { default: 1000, flags: 2 } },
  });
});
afterAll(() => w?.dispose());

/** @param {Response} res */
const corsHeadersOf = (res) => CORS_HEADERS.filter((h) => res.headers.get(h) !== null);
/** Request options that send `Origin: origin`. @param {string} origin */
const from = (origin) => ({ headers: { Origin: origin } });
/**
 * A preflight (an OPTIONS with Access-Control-Request-Method): the router answers it from its
 * route table, no operation, so it goes by path.
 * @param {string} path @param {string} origin @param {string} [method] @param {string} [client]
 */
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
    const { res } = await w.getConfig(from(APP));
    expect(res.status).toBe(200);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(res.headers.get("Access-Control-Allow-Credentials")).toBe("true");
    expect(res.headers.get("Access-Control-Expose-Headers")).toMatch(/RateLimit-Remaining/);
    expect(res.headers.get("Vary")).toMatch(/\bOrigin\b/);
    const local = await w.getHealth({}, from("http://localhost:5173"));
    expect(local.res.headers.get("Access-Control-Allow-Origin")).toBe("http://localhost:5173");
  });

  it("a listed origin can read errors too (401, 404, 405)", async () => {
    /** @type {[string, () => Promise<Answer>, number][]} */
    const errors = [
      ["GET /prefs", () => w.getPrefs(null, from(APP)), 401],
      ["GET /nope", () => w.json("/nope", from(APP)), 404], // no operation: the router's 404
      ["DELETE /config", () => w.json("/config", { method: "DELETE", ...from(APP) }), 405], // not declared: the router's 405
    ];
    for (const [label, call, status] of errors) {
      const { res } = await call();
      expect(res.status, label).toBe(status);
      expect(res.headers.get("Access-Control-Allow-Origin"), label).toBe(APP);
    }
  });

  it("an unlisted origin, a lookalike or a wildcard-style origin gets no CORS header, only Vary", async () => {
    for (const origin of [OTHER, "https://app.example.com.evil.example", "http://app.example.com", "null"]) {
      const { res } = await w.getConfig(from(origin));
      expect(res.status, origin).toBe(200);
      expect(corsHeadersOf(res), origin).toEqual([]);
      expect(res.headers.get("Vary"), origin).toMatch(/\bOrigin\b/);
    }
  });

  it("a request without Origin still varies on it (a cache must not share the answers)", async () => {
    const { res } = await w.getConfig();
    expect(corsHeadersOf(res)).toEqual([]);
    expect(res.headers.get("Vary")).toMatch(/\bOrigin\b/);
  });

  it("with ALLOWED_ORIGINS empty, CORS is off: no CORS header, no Vary, a preflight is 405", async () => {
    const plain = await spawnApp({ vars: { ALLOWED_ORIGINS: "" } });
    try {
      const { res } = await plain.getConfig(from(APP));
      expect(corsHeadersOf(res)).toEqual([]);
      expect(res.headers.get("Vary")).toBeNull();
      const pre = await plain.fetch("/config", {
        method: "OPTIONS", // a preflight: no operation
        headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
      });
      const r = await answerOf(pre);
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
    expect(res.headers.get("Access-Control-Allow-Headers")).toBe("Authorization, Content-Type, If-Match, If-None-Match, Prefs-Version, Prefs-Bookmark");
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
      const r = await w.getFlag("x", {}, { client, ...from(APP) });
      expect(r.status, `request ${i + 1}`).toBe(200);
    }
    expect((await w.getFlag("x", {}, { client })).status).toBe(429);
  });

  it("an unlisted origin gets 403 forbidden and no CORS header", async () => {
    const res = await preflight("/prefs", OTHER);
    expectError(expect, await answerOf(res), 403, "forbidden");
    expect(corsHeadersOf(res)).toEqual([]);
    expect(timing(res)).toEqual(NO_WORK);
  });

  it("an unknown path is 404, as for any method", async () => {
    const res = await preflight("/nope", APP);
    expectError(expect, await answerOf(res), 404, "not_found");
  });

  it("preflights stay open during maintenance", async () => {
    const m = await spawnApp({ vars: { ALLOWED_ORIGINS: APP }, seedConfig: { maintenanceMode: true } });
    try {
      const res = await m.fetch("/config", {
        method: "OPTIONS", // a preflight: no operation
        headers: { Origin: APP, "Access-Control-Request-Method": "GET" },
      });
      expect(res.status).toBe(204);
      expect(timing(res)).toEqual(NO_WORK);
    } finally {
      await m.dispose();
    }
  });

  it("an OPTIONS that is not a preflight keeps 405 with Allow", async () => {
    /** @type {Record<string, string>[]} */
    const notPreflights = [{}, { Origin: APP }, { "Access-Control-Request-Method": "GET" }];
    for (const headers of notPreflights) {
      const r = await w.json("/config", { method: "OPTIONS", headers }); // not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("GET");
    }
  });
});
