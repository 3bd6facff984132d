// HTTP standards the Worker follows: cookie-authenticated writes from another site are refused
// (Sec-Fetch-Site), limited responses carry the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-11 (parsed here as Structured Fields), and every 401
// carries the Bearer challenge of RFC 6750.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, boot, expectError, roomInWindow } from "../helpers.js";
import { parseList } from "./structured-fields.js";

let w;
beforeAll(async () => {
  w = await boot({ seedConfig: { rateLimits: { default: 1000000 } } });
});
afterAll(() => w?.dispose());

let seq = 0;
const uid = (tag) => `${tag}-${Date.now().toString(36)}-${++seq}`;

async function mint() {
  const userId = uid("std");
  const r = await w.json("/sessions", { method: "POST", admin: true, body: { userId, email: `${userId}@example.com` } });
  expect(r.status, r.text).toBe(201);
  return r.body;
}

const cookieOf = (s) => ({ Cookie: `session=${s.sessionId}` });
const prefsRow = (userId) => w.db.prepare("SELECT * FROM preferences WHERE user_id = ?").bind(userId).first();
const configNow = async () => (await w.json("/config", { client: w.newClient() })).body;

describe("Sec-Fetch-Site: a cookie-authenticated write from another site is refused", () => {
  it("cross-site PATCH /prefs, DELETE /sessions/current and admin writes with the cookie: 403 forbidden, nothing stored", async () => {
    const s = await mint();
    const cross = { ...cookieOf(s), "Sec-Fetch-Site": "cross-site" };
    const before = await configNow();
    const refused = [
      await w.json("/prefs", { method: "PATCH", headers: cross, body: { theme: "dark" } }),
      await w.json("/sessions/current", { method: "DELETE", headers: cross }),
      await w.json("/admin/config", { method: "PUT", headers: cross, body: { maintenanceMode: true } }),
      await w.json("/admin/config", { method: "PATCH", headers: cross, body: { featureFlags: { csrf: true } } }),
      await w.json(`/admin/users/${uid("u")}`, { method: "PUT", headers: cross, body: { name: "X" } }),
      await w.json(`/admin/users/${s.userId}/sessions`, { method: "DELETE", headers: cross }),
      await w.json("/sessions", { method: "POST", headers: cross, body: { userId: "x", email: "x@example.com" } }),
    ];
    for (const r of refused) expectError(expect, r, 403, "forbidden");
    expect(await prefsRow(s.userId)).toBeNull();
    expect(await configNow()).toEqual(before);
    const still = await w.json("/sessions/current", { headers: cookieOf(s) });
    expect(still.status, "the session was not revoked").toBe(200);
    // A safe method from another site is no write: it passes.
    expect((await w.json("/prefs", { headers: cross })).status).toBe(200);
  });

  it("the same writes with a bearer token, or from the same origin or site, succeed", async () => {
    const s = await mint();
    const cross = { "Sec-Fetch-Site": "cross-site" };
    const bearer = await w.json("/prefs", { method: "PATCH", session: s.sessionId, headers: { ...cross, ...cookieOf(s) }, body: { theme: "dark" } });
    expect(bearer.status, bearer.text).toBe(200);
    for (const site of ["same-origin", "same-site", "none", undefined]) {
      const headers = site ? { ...cookieOf(s), "Sec-Fetch-Site": site } : cookieOf(s);
      const r = await w.json("/prefs", { method: "PATCH", headers, body: { language: "nl" } });
      expect(r.status, `${site}: ${r.text}`).toBe(200);
    }
    expect((await prefsRow(s.userId)).theme).toBe("dark");
    const admin = await w.json("/admin/config", { method: "PATCH", admin: true, headers: cross, body: { featureFlags: { viaBearer: true } } });
    expect(admin.status, admin.text).toBe(200);
    const out = await w.fetch("/sessions/current", { method: "DELETE", headers: { ...cookieOf(s), "Sec-Fetch-Site": "same-origin" } });
    expect(out.status).toBe(204);
  });
});

describe("RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11)", () => {
  async function setLimits(body) {
    const r = await w.json("/admin/config", { method: "PATCH", admin: true, body });
    expect(r.status, r.text).toBe(200);
  }

  /** The one policy and service limit of a response, parsed as Structured Field Lists. */
  function limitFields(res) {
    const policy = parseList(res.headers.get("RateLimit-Policy"));
    const limit = parseList(res.headers.get("RateLimit"));
    expect(policy).toHaveLength(1);
    expect(limit).toHaveLength(1);
    expect(Object.keys(policy[0].params).sort()).toEqual(["q", "w"]);
    expect(Object.keys(limit[0].params).sort()).toEqual(["r", "t"]);
    return { policy: policy[0], limit: limit[0] };
  }

  for (const [tier, strict] of [["approximate", []], ["strict", ["flags"]]]) {
    it(`${tier}: every limited response names its group, the limit, the window, what is left and when it resets; the 429 agrees`, async () => {
      await setLimits({ rateLimits: { default: 1000000, flags: 3 }, strictRateLimits: strict, rateLimitWindowSeconds: 60 });
      // Four requests in one fixed window: one that ended between two of them started the
      // count again (a fresh clone's run once saw RateLimit r=2 on the third).
      await roomInWindow(60, 5000);
      const client = w.newClient();
      const seen = [];
      for (let i = 0; i < 4; i++) seen.push(await w.json("/flags/std", { client }));
      seen.forEach((r, i) => {
        const { policy, limit } = limitFields(r.res);
        expect(policy.value).toEqual({ string: "flags" });
        expect(policy.params).toEqual({ q: 3, w: 60 });
        expect(limit.value).toEqual({ string: "flags" });
        expect(limit.params.r).toBe(Math.max(0, 2 - i));
        expect(limit.params.t).toBeGreaterThanOrEqual(1);
        expect(limit.params.t).toBeLessThanOrEqual(60);
        // The legacy fields, on by default, say the same.
        expect(r.res.headers.get("RateLimit-Limit")).toBe("3");
        expect(r.res.headers.get("RateLimit-Remaining")).toBe(String(limit.params.r));
        expect(r.res.headers.get("RateLimit-Reset")).toBe(String(limit.params.t));
      });
      expect(seen.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
      const refused = seen[3];
      expectError(expect, refused, 429, "rate_limited");
      const { limit } = limitFields(refused.res);
      expect(limit.params.r).toBe(0);
      expect(Number(refused.res.headers.get("Retry-After"))).toBe(limit.params.t);
    });
  }

  it("legacyRateLimitHeaders false drops the three legacy fields and keeps the draft's", async () => {
    await setLimits({ rateLimits: { default: 1000000 }, strictRateLimits: [], legacyRateLimitHeaders: false });
    const r = await w.json("/config", { client: w.newClient() });
    expect(r.status).toBe(200);
    for (const legacy of ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]) {
      expect(r.res.headers.get(legacy), legacy).toBeNull();
    }
    const { policy, limit } = limitFields(r.res);
    expect(policy.value).toEqual({ string: "config" });
    expect(policy.params.q).toBe(1000000);
    expect(limit.params.r).toBe(999999);
    await setLimits({ legacyRateLimitHeaders: true });
    expect((await w.fetch("/config", { client: w.newClient() })).headers.get("RateLimit-Limit")).toBe("1000000");
  });

  it("routes that are never limited carry none of them", async () => {
    for (const r of [await w.fetch("/health"), await w.fetch("/admin/sessions", { admin: true })]) {
      expect(r.status).toBe(200);
      for (const name of ["RateLimit-Policy", "RateLimit", "RateLimit-Limit"]) expect(r.headers.get(name)).toBeNull();
    }
  });
});

describe("WWW-Authenticate on every 401 (RFC 6750)", () => {
  const unknown = () => randomBytes(32).toString("base64url");
  const routes = [
    ["GET", "/sessions/current"],
    ["DELETE", "/sessions/current"],
    ["GET", "/prefs"],
    ["PATCH", "/prefs"],
    ["POST", "/sessions"],
    ["GET", "/admin/sessions"],
    ["PUT", "/admin/config"],
    ["PATCH", "/admin/config"],
    ["DELETE", "/admin/users/someone/sessions"],
    ["PUT", "/admin/users/someone"],
  ];

  it("without credentials: Bearer realm=\"edgestate\", and no error code", async () => {
    for (const [method, path] of routes) {
      const r = await w.json(path, { method, body: method === "GET" || method === "DELETE" ? undefined : {} });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("WWW-Authenticate"), `${method} ${path}`).toBe('Bearer realm="edgestate"');
    }
  });

  it("with a token that is refused: error=\"invalid_token\"", async () => {
    const invalid = 'Bearer realm="edgestate", error="invalid_token"';
    for (const [method, path] of routes) {
      const token = path.startsWith("/admin") || path === "/sessions" ? "not-the-admin-token" : unknown();
      const r = await w.json(path, { method, headers: { Authorization: `Bearer ${token}` }, body: method === "GET" || method === "DELETE" ? undefined : {} });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("WWW-Authenticate"), `${method} ${path}`).toBe(invalid);
    }
    // A refused session cookie is a refused token too.
    const r = await w.json("/sessions/current", { headers: { Cookie: `session=${unknown()}` } });
    expect(r.res.headers.get("WWW-Authenticate")).toBe(invalid);
    // And the admin token works where it should, with no challenge.
    const ok = await w.fetch("/admin/sessions", { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("WWW-Authenticate")).toBeNull();
  });
});
