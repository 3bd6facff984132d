// @ts-check
// HTTP standards the Worker follows: cookie-authenticated writes from another site are refused
// (Sec-Fetch-Site), limited responses carry the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-11 (parsed here as Structured Fields), and every 401
// carries the Bearer challenge of RFC 6750.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, expectError, roomInWindow, timing } from "../helpers.js";
import { OPENAPI } from "../contract.js";
import { HIGH, TestApp, spawnApp, uid, unknownSessionId } from "../app.js";
import { parseList } from "./structured-fields.js";

/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {import("../helpers.js").Answer} Answer */

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: HIGH });
});
afterAll(() => w?.dispose());

/** @param {{ id: string }} s */
const cookieOf = (s) => ({ Cookie: `__Host-session=${s.id}` });
const configNow = async () => (await w.getConfig({ client: w.newClient() })).body;

describe("Sec-Fetch-Site: a cookie-authenticated write from another site is refused", () => {
  it("cross-site PATCH /prefs, DELETE /sessions/current and admin writes with the cookie: 403 forbidden, nothing stored", async () => {
    const s = await w.mintSession({ userId: uid("std") });
    // The session cookie and nothing else: no Bearer token, not even for the admin routes.
    const cross = { admin: false, headers: { ...cookieOf(s), "Sec-Fetch-Site": "cross-site" } };
    const before = await configNow();
    const refused = [
      await w.patchPrefs(null, { theme: "dark" }, cross),
      await w.logout(null, cross),
      await w.replaceConfig({ maintenanceMode: true }, cross),
      await w.patchConfig({ featureFlags: { csrf: true } }, cross),
      await w.putUser(uid("u"), { name: "X" }, cross),
      await w.revokeUserSessions(s.userId, cross),
      await w.createSession({ userId: "x", email: "x@example.com" }, cross),
    ];
    for (const r of refused) expectError(expect, r, 403, "forbidden");
    expect(await w.prefsRow(s.userId)).toBeNull();
    expect(await configNow()).toEqual(before);
    const still = await w.getCurrentSession(null, { headers: cookieOf(s) });
    expect(still.status, "the session was not revoked").toBe(200);
    // A safe method from another site is no write: it passes.
    expect((await w.getPrefs(null, cross)).status).toBe(200);
  });

  it("the same writes with a bearer token, or from the same origin or site, succeed", async () => {
    const s = await w.mintSession({ userId: uid("std") });
    const cross = { "Sec-Fetch-Site": "cross-site" };
    const bearer = await w.patchPrefs(s.id, { theme: "dark" }, { headers: { ...cross, ...cookieOf(s) } });
    expect(bearer.status, bearer.text).toBe(200);
    for (const site of ["same-origin", "same-site", "none", undefined]) {
      /** @type {Record<string, string>} */
      const headers = site ? { ...cookieOf(s), "Sec-Fetch-Site": site } : cookieOf(s);
      const r = await w.patchPrefs(null, { language: "nl" }, { headers });
      expect(r.status, `${site}: ${r.text}`).toBe(200);
    }
    expect((await w.prefsRow(s.userId)).theme).toBe("dark");
    const admin = await w.patchConfig({ featureFlags: { viaBearer: true } }, { headers: cross });
    expect(admin.status, admin.text).toBe(200);
    const out = await w.logout(null, { headers: { ...cookieOf(s), "Sec-Fetch-Site": "same-origin" } });
    expect(out.status).toBe(204);
  });
});

describe("Origin, where a browser sends no Sec-Fetch-Site; a second session cookie", () => {
  it("a cookie-authenticated write whose Origin is another site's (or null) is 403; this Worker's own origin and no Origin pass", async () => {
    const s = await w.mintSession({ userId: uid("origin") });
    const own = w.origin;
    for (const origin of ["https://evil.example", "null", `${own}.evil.example`, `${own}:1`]) {
      const headers = { ...cookieOf(s), Origin: origin };
      expectError(expect, await w.patchPrefs(null, { theme: "dark" }, { headers }), 403, "forbidden");
      expectError(expect, await w.logout(null, { headers }), 403, "forbidden");
    }
    expect(await w.prefsRow(s.userId)).toBeNull();
    const bearer = await w.patchPrefs(s.id, { theme: "light" }, { headers: { Origin: "https://evil.example" } });
    expect(bearer.status, "a bearer token is never sent by a browser on its own").toBe(200);
    for (const headers of [{ ...cookieOf(s), Origin: own }, { ...cookieOf(s), Origin: own.toUpperCase() }, cookieOf(s)]) {
      const r = await w.patchPrefs(null, { theme: "dark" }, { headers });
      expect(r.status, `${JSON.stringify(headers)}: ${r.text}`).toBe(200);
    }
    expect((await w.prefsRow(s.userId)).theme).toBe("dark");
  });

  it("two session cookies are 401, whichever comes first; the session itself stays valid", async () => {
    const s = await w.mintSession({ userId: uid("twice") });
    const other = await w.mintSession({ userId: uid("planted") });
    for (const cookie of [`__Host-session=${other.id}; __Host-session=${s.id}`, `__Host-session=${s.id}; __Host-session=${s.id}`, `__Host-session=${s.id}; a=1; __Host-session=`]) {
      const r = await w.getCurrentSession(null, { headers: { Cookie: cookie } });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("WWW-Authenticate")).toContain("invalid_token");
    }
    const one = await w.getCurrentSession(null, { headers: { Cookie: `a=1; __Host-session=${s.id}` } });
    expect(one.status, one.text).toBe(200);
  });
});

describe("Request bodies are declared JSON (415 otherwise, before any storage work)", () => {
  const profile = uid("media");
  /**
   * Every route that reads a body, with a body it accepts and the credentials it needs.
   * @param {{ id: string }} s a session
   * @returns {[string, string, object, CallOptions][]}
   */
  const bodyRoutes = (s) => [
    ["POST", "/ofrep/v1/evaluate/flags/plain", { context: { targetingKey: "u1" } }, {}],
    ["POST", "/ofrep/v1/evaluate/flags", { context: { targetingKey: "u1" } }, {}],
    ["PUT", "/admin/config", HIGH, { admin: true }],
    ["PATCH", "/admin/config", { cacheTtlSeconds: 300 }, { admin: true }],
    ["POST", "/admin/config/rollback", { version: 1 }, { admin: true }],
    ["POST", "/sessions", { userId: uid("media"), email: "media@example.com" }, { admin: true }],
    ["PATCH", "/prefs", { theme: "dark" }, { session: s.id }],
    ["POST", "/users/batch", { ids: ["u1"] }, {}],
    ["PUT", `/admin/users/${profile}`, { name: "Media" }, { admin: true }],
    ["POST", "/admin/tokens", { name: uid("media"), scope: "read" }, { admin: true }],
  ];

  it("covers every operation of docs/openapi.json that takes a body", () => {
    const listed = bodyRoutes({ id: "x" }).map(([m, p]) => `${m} ${p.replace(/\/plain$/, "/{key}").replace(/^\/admin\/users\/[^/]+$/, "/admin/users/{id}")}`);
    const documented = Object.entries(OPENAPI.paths).flatMap(([path, item]) =>
      Object.entries(/** @type {Record<string, any>} */ (item)).filter(([, op]) => op?.requestBody).map(([m]) => `${m.toUpperCase()} ${path}`),
    );
    expect(listed.sort()).toEqual(documented.sort());
  });

  it("text/plain, a form or no Content-Type at all: 415 unsupported_media_type with no storage work, nothing stored", async () => {
    const s = await w.mintSession({ userId: uid("media") });
    const before = await configNow();
    for (const [method, path, body, opts] of bodyRoutes(s)) {
      for (const type of ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"]) {
        const r = await w.json(path, { ...opts, method, body, headers: { "Content-Type": type } });
        expectError(expect, r, 415, "unsupported_media_type");
        expect(timing(r.res), `${method} ${path} (${type})`).toEqual({ reads: 0, writes: 0, lists: 0, deletes: 0, queries: 0 });
      }
      /** @type {Record<string, string>} */
      const credentials = opts.admin ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : opts.session ? { Authorization: `Bearer ${opts.session}` } : {};
      const raw = await w.raw(method, path, credentials, JSON.stringify(body));
      expect(raw.status, `${method} ${path} without Content-Type: ${raw.text}`).toBe(415);
      expect(JSON.parse(raw.text).code).toBe("unsupported_media_type");
    }
    expect(await w.prefsRow(s.userId)).toBeNull();
    expect(await configNow()).toEqual(before);
    expect((await w.getUser(profile)).status).toBe(404);
  });

  it("application/json with parameters and +json types are accepted; a body-less POST without Content-Type is judged by its (empty) body", async () => {
    const s = await w.mintSession({ userId: uid("media") });
    const charset = await w.patchPrefs(s.id, { theme: "dark" }, { headers: { "Content-Type": "Application/JSON; charset=utf-8" } });
    expect(charset.status, charset.text).toBe(200);
    const merge = await w.patchPrefs(s.id, { language: "nl" }, { headers: { "Content-Type": "application/merge-patch+json" } });
    expect(merge.status, merge.text).toBe(200);
    expect(await w.prefsRow(s.userId)).toMatchObject({ theme: "dark", language: "nl" });
    const empty = await w.raw("POST", "/users/batch", {}, "");
    expect(empty.status, empty.text).toBe(400);
    expect(JSON.parse(empty.text).code).toBe("invalid_json");
  });
});

describe("RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11)", () => {
  /** @param {object} body */
  async function setLimits(body) {
    const r = await w.patchConfig(body);
    expect(r.status, r.text).toBe(200);
  }

  /**
   * The one policy and service limit of a response, parsed as Structured Field Lists.
   * @param {Response} res
   * @returns {{ policy: any, limit: any }}
   */
  function limitFields(res) {
    const policy = parseList(String(res.headers.get("RateLimit-Policy")));
    const limit = parseList(String(res.headers.get("RateLimit")));
    expect(policy).toHaveLength(1);
    expect(limit).toHaveLength(1);
    expect(Object.keys(policy[0].params).sort()).toEqual(["q", "w"]);
    expect(Object.keys(limit[0].params).sort()).toEqual(["r", "t"]);
    return { policy: policy[0], limit: limit[0] };
  }

  /** @type {[string, string[]][]} */
  const tiers = [["approximate", []], ["strict", ["flags"]]];
  for (const [tier, strict] of tiers) {
    it(`${tier}: every limited response names its group, the limit, the window, what is left and when it resets; the 429 agrees`, async () => {
      await setLimits({ rateLimits: { default: 1000000, flags: 3 }, strictRateLimits: strict, rateLimitWindowSeconds: 60 });
      // Four requests in one fixed window: one that ended between two of them started the
      // count again (a fresh clone's run once saw RateLimit r=2 on the third).
      await roomInWindow(60, 5000);
      const client = w.newClient();
      const seen = [];
      for (let i = 0; i < 4; i++) seen.push(await w.getFlag("std", {}, { client }));
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
    const r = await w.getConfig({ client: w.newClient() });
    expect(r.status).toBe(200);
    for (const legacy of ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]) {
      expect(r.res.headers.get(legacy), legacy).toBeNull();
    }
    const { policy, limit } = limitFields(r.res);
    expect(policy.value).toEqual({ string: "config" });
    expect(policy.params.q).toBe(1000000);
    expect(limit.params.r).toBe(999999);
    await setLimits({ legacyRateLimitHeaders: true });
    expect((await w.getConfig({ client: w.newClient() })).res.headers.get("RateLimit-Limit")).toBe("1000000");
  });

  it("routes that are never limited carry none of them", async () => {
    for (const r of [await w.getHealth(), await w.listSessions()]) {
      expect(r.status).toBe(200);
      for (const name of ["RateLimit-Policy", "RateLimit", "RateLimit-Limit"]) expect(r.res.headers.get(name)).toBeNull();
    }
  });
});

describe("WWW-Authenticate on every 401 (RFC 6750)", () => {
  /** @type {[string, (opts: CallOptions) => Promise<Answer>][]} Every operation that authenticates (writes with an empty body). */
  const routes = [
    ["GET /sessions/current", (o) => w.getCurrentSession(null, o)],
    ["DELETE /sessions/current", (o) => w.logout(null, o)],
    ["GET /prefs", (o) => w.getPrefs(null, o)],
    ["PATCH /prefs", (o) => w.patchPrefs(null, {}, o)],
    ["POST /sessions", (o) => w.createSession({}, o)],
    ["GET /admin/sessions", (o) => w.listSessions({}, o)],
    ["PUT /admin/config", (o) => w.replaceConfig({}, o)],
    ["PATCH /admin/config", (o) => w.patchConfig({}, o)],
    ["DELETE /admin/users/:userId/sessions", (o) => w.revokeUserSessions("someone", o)],
    ["PUT /admin/users/:id", (o) => w.putUser("someone", {}, o)],
  ];

  it("without credentials: Bearer realm=\"edgestate\", and no error code", async () => {
    for (const [route, call] of routes) {
      const r = await call({ admin: false });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("WWW-Authenticate"), route).toBe('Bearer realm="edgestate"');
    }
  });

  it("with a token that is refused: error=\"invalid_token\"", async () => {
    const invalid = 'Bearer realm="edgestate", error="invalid_token"';
    for (const [route, call] of routes) {
      const token = / \/admin|^POST \/sessions$/.test(route) ? "not-the-admin-token" : unknownSessionId();
      const r = await call({ headers: { Authorization: `Bearer ${token}` } });
      expectError(expect, r, 401, "unauthorized");
      expect(r.res.headers.get("WWW-Authenticate"), route).toBe(invalid);
    }
    // A refused session cookie is a refused token too.
    const r = await w.getCurrentSession(null, { headers: { Cookie: `__Host-session=${unknownSessionId()}` } });
    expect(r.res.headers.get("WWW-Authenticate")).toBe(invalid);
    // And the admin token works where it should, with no challenge.
    const ok = await w.listSessions({}, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.res.headers.get("WWW-Authenticate")).toBeNull();
  });
});
