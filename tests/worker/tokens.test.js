// @ts-check
// Scoped admin tokens: `POST /admin/tokens` mints an `est_…` credential with a name and a
// scope (read, flags or sessions), `GET /admin/tokens` lists them, `DELETE
// /admin/tokens/:name` revokes one. What each scope may do on every admin route (and the 403
// with nothing changed everywhere else), the name in the config history, D1 holding only the
// token's SHA-256, the isolate's copy of the table (revocation and creation effective at
// once through it, a row written elsewhere picked up within its bounds), refused tokens
// counted as failed authentications, malformed ones refused without D1, and D1 missing.
// Checked in the built Worker in workerd with real local KV and D1.
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, eventually, expectError, roomInWindow, sleep, sum, timing } from "../helpers.js";
import { HIGH, TestApp, sha256, spawnApp, uid } from "../app.js";

/** @typedef {import("../helpers.js").Answer} Answer */
/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {"read" | "flags" | "sessions"} Scope */
/** @typedef {{ token: string, name: string, scope: Scope, createdAt: number, createdBy: string }} Minted */

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: HIGH });
});
afterAll(() => w?.dispose());

// --- the token operations (TestApp has no methods for them: by path) --------------------------

/**
 * POST /admin/tokens (the admin token unless `opts.admin` says otherwise).
 * @param {TestApp} app @param {unknown} body @param {CallOptions} [opts]
 */
const createToken = (app, body, opts = {}) => app.json("/admin/tokens", { admin: true, ...opts, method: "POST", body });
/** GET /admin/tokens. @param {TestApp} app @param {CallOptions} [opts] */
const listTokens = (app, opts = {}) => app.json("/admin/tokens", { admin: true, ...opts });
/** DELETE /admin/tokens/:name. @param {TestApp} app @param {string} name @param {CallOptions} [opts] */
const revokeToken = (app, name, opts = {}) => app.json(`/admin/tokens/${name}`, { admin: true, ...opts, method: "DELETE" });

/**
 * A new token of `scope`, made with the admin token.
 * @param {TestApp} app @param {Scope} scope @param {string} [name] @returns {Promise<Minted>}
 */
async function mint(app, scope, name = uid("t")) {
  const r = await createToken(app, { name, scope });
  if (r.status !== 201) throw new Error(`setup: POST /admin/tokens → ${r.status} ${r.text}`);
  return r.body;
}

/** Request options presenting `token` from a client of its own. @param {string} token @param {TestApp} [app] @returns {CallOptions} */
const as = (token, app = w) => ({ admin: token, client: app.newClient() });
/** A well-formed token that no one minted. */
const unknownToken = () => `est_${randomBytes(32).toString("base64url")}`;
/** The names the listing shows. @param {TestApp} [app] @returns {Promise<string[]>} */
const listedNames = async (app = w) => {
  const r = await listTokens(app);
  expect(r.status, r.text).toBe(200);
  return r.body.tokens.map((/** @type {{ name: string }} */ t) => t.name);
};
/** The admin_tokens row of `name`, or null. @param {TestApp} app @param {string} name @returns {Promise<any>} */
const tokenRow = (app, name) => app.db.prepare("SELECT * FROM admin_tokens WHERE name = ?").bind(name).first();

/**
 * The config as a refused write must leave it: its version (ETag), its history's length and
 * newest entry, read with the admin token.
 * @param {TestApp} app
 */
async function configState(app) {
  const c = await app.getAdminConfig();
  const h = await app.getConfigHistory({ limit: 1 });
  expect(c.status, c.text).toBe(200);
  expect(h.status, h.text).toBe(200);
  const { n } = await app.db.prepare("SELECT COUNT(*) AS n FROM config_history").first();
  return { etag: c.res.headers.get("ETag"), rows: n, newest: h.body.entries[0] ?? null };
}

// --- creating, listing, revoking -----------------------------------------------------------------

describe("creating, listing and revoking tokens", () => {
  it("POST /admin/tokens answers 201 with the token, shown this once, and who made it when", async () => {
    const name = uid("ci");
    const before = Date.now();
    const r = await createToken(w, { name, scope: "flags" });
    expect(r.status, r.text).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual(["createdAt", "createdBy", "name", "scope", "token"]);
    expect(r.body).toMatchObject({ name, scope: "flags", createdBy: "admin" });
    expect(r.body.token).toMatch(/^est_[A-Za-z0-9_-]{43}$/);
    expect(r.body.createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(r.body.createdAt).toBeLessThanOrEqual(Date.now() + 1000);
    expect(r.res.headers.get("Cache-Control")).toBe("no-store");
    const used = await w.getAdminConfig(as(r.body.token));
    expect(used.status, used.text).toBe(200);
  });

  it("two tokens never share a secret", async () => {
    const a = await mint(w, "read");
    const b = await mint(w, "read");
    expect(a.token).not.toBe(b.token);
  });

  it("GET /admin/tokens lists every token newest first: name, scope, createdAt, createdBy, never the token or its hash", async () => {
    const app = await spawnApp({ seedConfig: HIGH });
    try {
      const empty = await listTokens(app);
      expect(empty.status, empty.text).toBe(200);
      expect(empty.body).toEqual({ tokens: [] });
      /** @type {Minted[]} */
      const made = [];
      for (const scope of /** @type {Scope[]} */ (["read", "flags", "sessions"])) {
        made.push(await mint(app, scope));
        // Distinct creation times, so that "newest first" has one answer.
        await eventually(() => Date.now() > made[made.length - 1].createdAt + 1, 1000, 2);
      }
      const r = await listTokens(app);
      expect(r.status, r.text).toBe(200);
      expect(r.res.headers.get("Cache-Control")).toBe("no-store");
      expect(r.body).toEqual({
        tokens: made.reverse().map(({ name, scope, createdAt, createdBy }) => ({ name, scope, createdAt, createdBy })),
      });
      const rows = (await app.db.prepare("SELECT hash FROM admin_tokens").all()).results;
      expect(rows).toHaveLength(3);
      for (const t of made) {
        expect(r.text).not.toContain(t.token);
        expect(r.text).not.toContain(t.token.slice(4));
      }
      for (const { hash } of rows) expect(r.text).not.toContain(hash);
    } finally {
      await app.dispose();
    }
  });

  it("a name in use is 400 invalid_request naming the field; the first token keeps working", async () => {
    const first = await mint(w, "read");
    const again = await createToken(w, { name: first.name, scope: "flags" });
    expect(expectError(expect, again, 400, "invalid_request").error).toMatch(/^name: /);
    expect((await listedNames()).filter((n) => n === first.name)).toHaveLength(1);
    expect((await tokenRow(w, first.name)).scope).toBe("read");
    expect((await w.getAdminConfig(as(first.token))).status).toBe(200);
  });

  it("refuses bodies that are not {name, scope} with a known scope, and creates nothing", async () => {
    const name = uid("bad");
    /** @type {[string, unknown][]} */
    const bodies = [
      ["scope admin (no token is the full admin)", { name, scope: "admin" }],
      ["scope in capitals", { name, scope: "Read" }],
      ["scope missing", { name }],
      ["name missing", { scope: "read" }],
      ["name of the wrong type", { name: 7, scope: "read" }],
      ["scope of the wrong type", { name, scope: ["read"] }],
      ["an unknown field (createdBy)", { name, scope: "read", createdBy: "mallory" }],
      ["name with a space", { name: `${name} x`, scope: "read" }],
      ["name of 65 characters", { name: "n".repeat(65), scope: "read" }],
      ["empty name", { name: "", scope: "read" }],
      ["an array", [{ name, scope: "read" }]],
    ];
    const before = await listedNames();
    for (const [what, body] of bodies) {
      const r = await createToken(w, Array.isArray(body) ? JSON.stringify(body) : body);
      expect(r.status, `${what}: ${r.text}`).toBe(400);
      expect(r.body.code, what).toBe("invalid_request");
    }
    expect(await listedNames()).toEqual(before);
  });

  it("a name of dots only is 400 naming the field (`.` and `..` could not be revoked by path)", async () => {
    const before = await listedNames();
    for (const name of [".", "..", "..."]) {
      const r = await createToken(w, { name, scope: "read" });
      expect(expectError(expect, r, 400, "invalid_request").error, name).toMatch(/^name: /);
    }
    expect(await listedNames()).toEqual(before);
  });

  it("a name of 64 characters, and one of every allowed character, are accepted and revocable by path", async () => {
    for (const name of ["n".repeat(64), `ci.deploy:prod-1_${randomBytes(3).toString("hex")}`, ".x", "-"]) {
      const t = await mint(w, "read", name);
      expect(t.name).toBe(name);
      const r = await revokeToken(w, name);
      expect(r.status, `${name}: ${r.text}`).toBe(204);
      expect(await tokenRow(w, name)).toBeNull();
    }
  });

  it("DELETE /admin/tokens/:name answers 204 and the token is refused at once; again it is 404", async () => {
    const t = await mint(w, "flags");
    expect((await w.getAdminConfig(as(t.token))).status).toBe(200);
    const r = await revokeToken(w, t.name);
    expect(r.status, r.text).toBe(204);
    expect(r.text).toBe("");
    expectError(expect, await w.getAdminConfig(as(t.token)), 401, "unauthorized");
    expectError(expect, await w.patchConfig({ featureFlags: { afterRevoke: true } }, as(t.token)), 401, "unauthorized");
    expect(await listedNames()).not.toContain(t.name);
    expect(await tokenRow(w, t.name)).toBeNull();
    expectError(expect, await revokeToken(w, t.name), 404, "not_found");
  });

  it("a name freed by revocation can be used again: the old token stays refused, the new one works", async () => {
    const old = await mint(w, "sessions");
    expect((await revokeToken(w, old.name)).status).toBe(204);
    const renewed = await mint(w, "read", old.name);
    expect(renewed.token).not.toBe(old.token);
    expectError(expect, await w.getAdminConfig(as(old.token)), 401, "unauthorized");
    expect((await w.getAdminConfig(as(renewed.token))).status).toBe(200);
  });

  it("at most 100 tokens exist: the 101st is 400 naming the name, until one is revoked", async () => {
    const app = await spawnApp({ seedConfig: HIGH });
    try {
      const names = Array.from({ length: 100 }, () => uid("max"));
      for (let i = 0; i < names.length; i += 10) {
        const batch = await Promise.all(names.slice(i, i + 10).map((name) => createToken(app, { name, scope: "read" })));
        for (const r of batch) expect(r.status, r.text).toBe(201);
      }
      const over = await createToken(app, { name: uid("over"), scope: "read" });
      expect(expectError(expect, over, 400, "invalid_request").error).toMatch(/^name: /);
      const { n } = await app.db.prepare("SELECT COUNT(*) AS n FROM admin_tokens").first();
      expect(n).toBe(100);
      expect((await listTokens(app)).body.tokens).toHaveLength(100);
      expect((await revokeToken(app, names[0])).status).toBe(204);
      const fits = await createToken(app, { name: uid("fits"), scope: "read" });
      expect(fits.status, fits.text).toBe(201);
    } finally {
      await app.dispose();
    }
  });

  it("D1 keeps only the token's SHA-256: no column of any row holds the token or its secret part", async () => {
    const t = await mint(w, "sessions");
    const row = await tokenRow(w, t.name);
    expect(Object.keys(row).sort()).toEqual(["created_at", "created_by", "hash", "name", "scope"]);
    expect(row).toMatchObject({ name: t.name, scope: "sessions", created_at: t.createdAt, created_by: "admin" });
    expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    expect([sha256(t.token), sha256(t.token.slice(4))]).toContain(row.hash);
    const everything = JSON.stringify((await w.db.prepare("SELECT * FROM admin_tokens").all()).results);
    expect(everything).not.toContain(t.token.slice(4));
    expect(everything).not.toContain(ADMIN_TOKEN);
  });
});

// --- scopes ----------------------------------------------------------------------------------------

/**
 * @typedef {object} AdminRoute An admin operation, as a scoped token calls it.
 * @property {string} route
 * @property {Scope | "admin"} needs The scope it needs ("admin": the admin token or Access only).
 * @property {number} ok Its status when allowed.
 * @property {(app: TestApp) => Promise<any>} [setup] With the admin token; resolves the context.
 * @property {(app: TestApp, ctx: any, opts: CallOptions) => Promise<Answer>} call
 * @property {(app: TestApp, ctx: any) => Promise<unknown>} [state] What the operation changes
 *   (absent for reads): the same after a refusal, different after a success.
 */

/** @type {AdminRoute[]} */
const ROUTES = [
  { route: "GET /admin/config", needs: "read", ok: 200, call: (app, ctx, o) => app.getAdminConfig(o) },
  { route: "GET /admin/config/history", needs: "read", ok: 200, call: (app, ctx, o) => app.getConfigHistory({}, o) },
  { route: "GET /admin/sessions", needs: "read", ok: 200, call: (app, ctx, o) => app.listSessions({}, o) },
  { route: "GET /health?deep=1", needs: "read", ok: 200, call: (app, ctx, o) => app.getHealth({ deep: 1 }, o) },
  {
    route: "PUT /admin/config",
    needs: "flags",
    ok: 200,
    call: (app, ctx, o) => app.replaceConfig({ ...HIGH, featureFlags: { [uid("put")]: true } }, o),
    state: configState,
  },
  {
    route: "PATCH /admin/config",
    needs: "flags",
    ok: 200,
    call: (app, ctx, o) => app.patchConfig({ featureFlags: { [uid("patch")]: true } }, o),
    state: configState,
  },
  {
    route: "POST /admin/config/rollback",
    needs: "flags",
    ok: 200,
    setup: async (app) => {
      const r = await app.patchConfig({ featureFlags: { [uid("base")]: true } });
      expect(r.status, r.text).toBe(200);
      return { version: Number(JSON.parse(String(r.res.headers.get("ETag")))) };
    },
    call: (app, ctx, o) => app.rollbackConfig({ version: ctx.version }, o),
    state: configState,
  },
  {
    route: "POST /sessions",
    needs: "sessions",
    ok: 201,
    setup: async () => ({ userId: uid("s") }),
    call: (app, ctx, o) => app.createSession({ userId: ctx.userId, email: `${ctx.userId}@example.com` }, o),
    state: (app, ctx) => app.sessionCount(ctx.userId),
  },
  {
    route: "DELETE /admin/sessions/:handle",
    needs: "sessions",
    ok: 204,
    setup: (app) => app.mintSessionWithHandle(),
    call: (app, ctx, o) => app.revokeSession(ctx.handle, o),
    state: (app, ctx) => app.sessionStatus(ctx.id),
  },
  {
    route: "DELETE /admin/users/:userId/sessions",
    needs: "sessions",
    ok: 200,
    setup: (app) => app.mintSession(),
    call: (app, ctx, o) => app.revokeUserSessions(ctx.userId, o),
    state: async (app, ctx) => [await app.sessionCount(ctx.userId), await app.sessionStatus(ctx.id)],
  },
  {
    route: "PUT /admin/users/:id",
    needs: "admin",
    ok: 200,
    setup: async () => ({ id: uid("p") }),
    call: (app, ctx, o) => app.putUser(ctx.id, { name: "Written By Token" }, o),
    state: (app, ctx) => app.userRow(ctx.id),
  },
  {
    route: "DELETE /admin/users/:id",
    needs: "admin",
    ok: 204,
    setup: async (app) => {
      const s = await app.mintSession();
      await app.seedUser(s.userId);
      return s;
    },
    call: (app, ctx, o) => app.deleteUser(ctx.userId, o),
    state: async (app, ctx) => [await app.userRow(ctx.userId), await app.sessionCount(ctx.userId)],
  },
  { route: "GET /admin/tokens", needs: "admin", ok: 200, call: (app, ctx, o) => listTokens(app, o) },
  {
    route: "POST /admin/tokens",
    needs: "admin",
    ok: 201,
    setup: async () => ({ name: uid("new") }),
    call: (app, ctx, o) => createToken(app, { name: ctx.name, scope: "flags" }, o),
    state: (app, ctx) => tokenRow(app, ctx.name),
  },
  {
    route: "DELETE /admin/tokens/:name",
    needs: "admin",
    ok: 204,
    setup: (app) => mint(app, "read"),
    call: (app, ctx, o) => revokeToken(app, ctx.name, o),
    state: (app, ctx) => tokenRow(app, ctx.name),
  },
];

/** @type {Scope[]} */
const SCOPES = ["read", "flags", "sessions"];
/** @type {Record<Scope, Minted>} */
const holders = /** @type {any} */ ({});

describe("each scope against each admin route", () => {
  beforeAll(async () => {
    for (const scope of SCOPES) holders[scope] = await mint(w, scope);
  });

  for (const scope of SCOPES) {
    for (const r of ROUTES) {
      const allowed = r.needs === "read" || r.needs === scope;
      it(`a ${scope} token: ${r.route} → ${allowed ? r.ok : "403 forbidden, nothing changed"}`, async () => {
        const ctx = (await r.setup?.(w)) ?? {};
        const before = await r.state?.(w, ctx);
        const answer = await r.call(w, ctx, as(holders[scope].token));
        if (allowed) {
          expect(answer.status, answer.text).toBe(r.ok);
          if (r.state) expect(await r.state(w, ctx)).not.toEqual(before);
        } else {
          expectError(expect, answer, 403, "forbidden");
          expect(answer.res.headers.get("Cache-Control")).toBe("no-store");
          if (r.state) expect(await r.state(w, ctx)).toEqual(before);
        }
      });
    }
  }

  it("the admin token is allowed everywhere (the same table)", async () => {
    for (const r of ROUTES) {
      const ctx = (await r.setup?.(w)) ?? {};
      const answer = await r.call(w, ctx, { admin: true, client: w.newClient() });
      expect(answer.status, `${r.route}: ${answer.text}`).toBe(r.ok);
    }
  });

  it("no scoped token can make, see or revoke tokens, its own included", async () => {
    for (const scope of SCOPES) {
      const own = holders[scope];
      expectError(expect, await createToken(w, { name: uid("esc"), scope }, as(own.token)), 403, "forbidden");
      expectError(expect, await revokeToken(w, own.name, as(own.token)), 403, "forbidden");
      expect((await w.getAdminConfig(as(own.token))).status).toBe(200);
    }
  });
});

describe("the config history names the token", () => {
  it("writes with a flags token are recorded as token:<name>; the admin's as admin", async () => {
    const t = await mint(w, "flags");
    const put = await w.replaceConfig({ ...HIGH, featureFlags: { byToken: true } }, as(t.token));
    expect(put.status, put.text).toBe(200);
    const version = Number(JSON.parse(String(put.res.headers.get("ETag"))));
    const patch = await w.patchConfig({ featureFlags: { byTokenToo: true } }, as(t.token));
    expect(patch.status, patch.text).toBe(200);
    const back = await w.rollbackConfig({ version }, as(t.token));
    expect(back.status, back.text).toBe(200);
    const mine = await w.patchConfig({ cacheTtlSeconds: 299 });
    expect(mine.status, mine.text).toBe(200);
    const h = await w.getConfigHistory({ limit: 4 });
    expect(h.status, h.text).toBe(200);
    expect(h.body.entries.map((/** @type {any} */ e) => [e.action, e.actor])).toEqual([
      ["patch", "admin"],
      ["rollback", `token:${t.name}`],
      ["patch", `token:${t.name}`],
      ["put", `token:${t.name}`],
    ]);
    const stored = JSON.stringify((await w.db.prepare("SELECT * FROM config_history").all()).results);
    expect(stored).not.toContain(t.token.slice(4));
  });

  it("a write refused for its precondition is recorded as the token's too", async () => {
    expect((await w.patchConfig({ featureFlags: { [uid("bump")]: true } })).status).toBe(200);
    const t = await mint(w, "flags");
    const r = await w.patchConfig({ featureFlags: { stale: true } }, { ...as(t.token), headers: { "If-Match": '"0"' } });
    expectError(expect, r, 412, "precondition_failed");
    const h = await w.getConfigHistory({ limit: 1 });
    expect(h.body.entries[0]).toMatchObject({ actor: `token:${t.name}`, outcome: "refused", action: "patch" });
  });
});

// --- refused tokens ----------------------------------------------------------------------------

describe("tokens that are refused", () => {
  it("an unknown token is 401 with WWW-Authenticate, on every admin route, and writes nothing", async () => {
    const before = await configState(w);
    for (const r of ROUTES) {
      const ctx = (await r.setup?.(w)) ?? {};
      const state = await r.state?.(w, ctx);
      const answer = await r.call(w, ctx, as(unknownToken()));
      expectError(expect, answer, 401, "unauthorized");
      expect(answer.res.headers.get("WWW-Authenticate"), r.route).toMatch(/^Bearer realm="edgestate"/);
      if (r.state) expect(await r.state(w, ctx), r.route).toEqual(state);
    }
    // The setups (rollback's base version) wrote with the admin token; nothing else did.
    const after = await configState(w);
    expect(after.newest.actor).toBe("admin");
    expect(after.rows).toBe(before.rows + 1);
  });

  it("malformed bearer tokens are 401 without any D1 query, though the isolate's copy would be read for a well-formed one", async () => {
    const app = await spawnApp({ seedConfig: HIGH });
    try {
      // Its creation drops the isolate's copy: the next well-formed token reads the table.
      const real = await mint(app, "read");
      const secret = real.token.slice(4);
      const malformed = [
        "est_",
        "est_short",
        `est_${secret}x`,
        `est_${secret.slice(1)}`,
        `est_${secret.slice(0, 42)}!`,
        `est_${secret.slice(0, 42)}=`,
        `est_${secret.slice(0, 42)}%`,
        `EST_${secret}`,
        `est-${secret}`,
        secret,
        `${real.token} ${real.token}`,
        `est_${"x".repeat(4096)}`,
      ];
      for (const token of malformed) {
        const r = await app.getAdminConfig(as(token, app));
        expectError(expect, r, 401, "unauthorized");
        expect(r.res.headers.get("WWW-Authenticate"), token.slice(0, 60)).toMatch(/^Bearer realm="edgestate"/);
        expect(timing(r.res).queries, token.slice(0, 60)).toBe(0);
      }
      const unknown = await app.listSessions({}, as(unknownToken(), app));
      expectError(expect, unknown, 401, "unauthorized");
      expect(timing(unknown.res).queries, "a well-formed token is looked up").toBeGreaterThanOrEqual(1);
      expect((await app.getAdminConfig(as(real.token, app))).status).toBe(200);
    } finally {
      await app.dispose();
    }
  });

  it("unknown est_ tokens from one client count as failed authentications: eventually 429, without rate-limit fields", async () => {
    await roomInWindow(60, 15_000);
    const client = w.newClient();
    /** @type {number[]} */
    const statuses = [];
    /** @type {Answer | undefined} */
    let last;
    while (statuses.length < 100 && last?.status !== 429) statuses.push((last = await w.getAdminConfig({ admin: unknownToken(), client })).status);
    expect(statuses[0]).toBe(401);
    const refused = /** @type {Answer} */ (last);
    expectError(expect, refused, 429, "rate_limited");
    expect(refused.res.headers.get("Retry-After")).toMatch(/^\d+$/);
    expect(refused.res.headers.get("RateLimit-Policy")).toBeNull();
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(30);
    // Another client is not affected, and a token that checks out is served from any client.
    expectError(expect, await w.getAdminConfig(as(unknownToken())), 401, "unauthorized");
    const t = await mint(w, "read");
    expect((await w.getAdminConfig({ admin: t.token, client })).status).toBe(200);
  });

  it("a token used outside its scope is no failed authentication: 40 refusals from one client stay 403", async () => {
    await roomInWindow(60, 15_000);
    const t = await mint(w, "read");
    const client = w.newClient();
    for (let i = 0; i < 40; i++) {
      expectError(expect, await w.patchConfig({ featureFlags: { outOfScope: true } }, { admin: t.token, client }), 403, "forbidden");
    }
    expect((await w.getAdminConfig({ admin: t.token, client })).status).toBe(200);
  });

  it("wrong admin tokens and unknown est_ tokens share one count", async () => {
    await roomInWindow(60, 15_000);
    const client = w.newClient();
    for (let i = 0; i < 20; i++) expectError(expect, await w.getAdminConfig({ admin: "wrong-admin-token", client }), 401, "unauthorized");
    /** @type {number[]} */
    const statuses = [];
    let last;
    while (statuses.length < 30 && last?.status !== 429) statuses.push((last = await w.getAdminConfig({ admin: unknownToken(), client })).status);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.length).toBeLessThanOrEqual(11);
  });
});

// --- the isolate's copy of the table ---------------------------------------------------------------

describe("the isolate's copy of the token table", () => {
  it("a token made through this isolate is usable at once, even with a fresh copy loaded just before", async () => {
    const a = await mint(w, "read");
    expect((await w.getAdminConfig(as(a.token))).status).toBe(200); // the copy is (re)loaded
    const b = await mint(w, "flags");
    const r = await w.patchConfig({ featureFlags: { [uid("fresh")]: true } }, as(b.token));
    expect(r.status, r.text).toBe(200);
  });

  it("a known token is checked from the copy: no D1 query", async () => {
    const t = await mint(w, "sessions");
    // POST /sessions refuses this body before any storage: what is left is the token check.
    const first = await w.createSession({}, as(t.token));
    expectError(expect, first, 400, "invalid_request");
    const again = await Promise.all([1, 2, 3].map(() => w.createSession({}, as(t.token))));
    for (const r of again) expectError(expect, r, 400, "invalid_request");
    expect(sum(again.map((r) => timing(r.res))).queries).toBe(0);
  });

  it("guesses right after a read cost D1 nothing: at most one read per 2 s", async () => {
    await sleep(2100); // the reload interval since any earlier read: the first guess reads
    const started = Date.now();
    const first = await w.getAdminConfig(as(unknownToken()));
    expectError(expect, first, 401, "unauthorized");
    expect(timing(first.res).queries).toBeGreaterThanOrEqual(1);
    const guesses = [];
    for (let i = 0; i < 10; i++) guesses.push(await w.getAdminConfig(as(unknownToken())));
    for (const r of guesses) expectError(expect, r, 401, "unauthorized");
    const reads = sum(guesses.map((r) => timing(r.res))).queries;
    expect(reads).toBeLessThanOrEqual(Math.floor((Date.now() - started) / 2000));
  });

  it("a token written to D1 elsewhere (another isolate) is accepted once this isolate re-reads the table", async () => {
    const probe = await mint(w, "read");
    const probeRow = await tokenRow(w, probe.name);
    const secret = randomBytes(32).toString("base64url");
    const name = uid("elsewhere");
    // Stored as this Worker stores its own (the hash of the same part of the token).
    const hash = probeRow.hash === sha256(probe.token) ? sha256(`est_${secret}`) : sha256(secret);
    expect((await w.getAdminConfig(as(probe.token))).status).toBe(200); // a fresh copy, without the row
    await w.db
      .prepare("INSERT INTO admin_tokens (hash, name, scope, created_at, created_by) VALUES (?, ?, 'read', ?, 'admin')")
      .bind(hash, name, Date.now())
      .run();
    const r = await eventually(async () => (await w.getAdminConfig(as(`est_${secret}`))).status === 200, 8000, 250);
    expect(r, "accepted within the reload interval").toBe(true);
    expect(await listedNames()).toContain(name);
  });

  it("a token deleted from D1 elsewhere is refused here within the copy's 10 s", async () => {
    const t = await mint(w, "read");
    expect((await w.getAdminConfig(as(t.token))).status).toBe(200);
    await w.db.prepare("DELETE FROM admin_tokens WHERE name = ?").bind(t.name).run();
    const refused = await eventually(async () => (await w.getAdminConfig(as(t.token))).status === 401, 15_000, 250);
    expect(refused, "refused once the copy is older than 10 s").toBe(true);
  });
});

// --- logs ------------------------------------------------------------------------------------------

describe("logs", () => {
  it("never contain a token, made, used, refused or revoked", async () => {
    let log = "";
    const app = await spawnApp({ seedConfig: HIGH, vars: { LOG_LEVEL: "info" }, onLog: (line) => (log += line) });
    /** @type {string[]} */
    const secrets = [];
    try {
      const t = await mint(app, "read");
      secrets.push(t.token);
      expect((await app.getAdminConfig(as(t.token, app))).status).toBe(200);
      expect((await app.patchConfig({ featureFlags: { x: true } }, as(t.token, app))).status).toBe(403);
      const guess = unknownToken();
      secrets.push(guess);
      expect((await app.getAdminConfig(as(guess, app))).status).toBe(401);
      expect((await revokeToken(app, t.name)).status).toBe(204);
      expect((await app.getAdminConfig(as(t.token, app))).status).toBe(401);
      expect((await listTokens(app)).status).toBe(200);
      // A barrier: once the last request's line is in the output, every earlier line is too.
      expect(await eventually(() => /GET \/admin\/tokens \d{3}/.test(log)), `the last request's line in:\n${log}`).toBe(true);
    } finally {
      await app.dispose();
    }
    expect(log).toMatch(/GET \/admin\/config \d{3}/);
    for (const token of secrets) {
      expect(log).not.toContain(token.slice(4));
      expect(log).not.toContain(sha256(token.slice(4)));
    }
  });
});

// --- D1 missing ----------------------------------------------------------------------------------

describe("without D1", () => {
  /** @type {TestApp} */
  let bare;
  beforeAll(async () => {
    bare = await spawnApp({ d1: false, seedConfig: HIGH });
  });
  afterAll(() => bare?.dispose());

  it("a scoped token is 503 unavailable; the admin token still works where D1 is not needed", async () => {
    const r = await bare.getHealth({ deep: 1 }, as(unknownToken(), bare));
    expectError(expect, r, 503, "unavailable");
    expectError(expect, await bare.patchConfig({ featureFlags: { x: true } }, as(unknownToken(), bare)), 503, "unavailable");
    expectError(expect, await bare.createSession({ userId: "u", email: "u@example.com" }, as(unknownToken(), bare)), 503, "unavailable");
    const admin = await bare.getHealth({ deep: 1 }, { admin: true, client: bare.newClient() });
    expect(admin.status, admin.text).toBe(200);
    expect(admin.body.d1).toMatchObject({ bound: false });
    expect((await bare.getConfig()).status).toBe(200);
  });

  it("a malformed token is still 401, and the token routes are 503 for the admin", async () => {
    expectError(expect, await bare.getAdminConfig(as("est_short", bare)), 401, "unauthorized");
    expectError(expect, await listTokens(bare, { client: bare.newClient() }), 503, "unavailable");
    expectError(expect, await createToken(bare, { name: "x", scope: "read" }, { client: bare.newClient() }), 503, "unavailable");
    expectError(expect, await revokeToken(bare, "x", { client: bare.newClient() }), 503, "unavailable");
  });
});

// --- Cloudflare Access admins -----------------------------------------------------------------------

describe("a Cloudflare Access admin", () => {
  it("manages tokens like the admin token; a token it makes names the person as its creator", async () => {
    const key = { kid: randomBytes(16).toString("hex"), ...generateKeyPairSync("rsa", { modulusLength: 2048 }) };
    const server = createServer((req, res) => {
      if (new URL(req.url ?? "/", "http://x").pathname !== "/cdn-cgi/access/certs") return void res.writeHead(404).end();
      const jwk = { ...key.publicKey.export({ format: "jwk" }), kid: key.kid, alg: "RS256", use: "sig" };
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise((up) => server.listen(0, "127.0.0.1", () => up(null)));
    const origin = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}`;
    const aud = randomBytes(32).toString("hex");
    const app = await spawnApp({ seedConfig: HIGH, vars: { ACCESS_TEAM_DOMAIN: origin, ACCESS_AUD: aud } });
    try {
      const email = `${uid("alice")}@example.com`;
      const t = Math.floor(Date.now() / 1000);
      /** @param {unknown} v */
      const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
      const input = `${b64({ alg: "RS256", typ: "JWT", kid: key.kid })}.${b64({ aud: [aud], iss: origin, iat: t, nbf: t, exp: t + 3600, type: "app", email, sub: "x" })}`;
      const jwt = `${input}.${sign("sha256", Buffer.from(input), key.privateKey).toString("base64url")}`;
      /** @returns {CallOptions} */
      const access = () => ({ admin: false, client: app.newClient(), headers: { "Cf-Access-Jwt-Assertion": jwt } });
      const name = uid("byAccess");
      const made = await createToken(app, { name, scope: "flags" }, access());
      expect(made.status, made.text).toBe(201);
      expect(made.body.createdBy).toBe(email);
      expect((await tokenRow(app, name)).created_by).toBe(email);
      const listed = await listTokens(app, access());
      expect(listed.status, listed.text).toBe(200);
      expect(listed.body.tokens).toEqual([{ name, scope: "flags", createdAt: made.body.createdAt, createdBy: email }]);
      const p = await app.patchConfig({ featureFlags: { viaAccessToken: true } }, as(made.body.token, app));
      expect(p.status, p.text).toBe(200);
      expect((await app.getConfigHistory({ limit: 1 })).body.entries[0].actor).toBe(`token:${name}`);
      expect((await revokeToken(app, name, access())).status).toBe(204);
      expectError(expect, await app.getAdminConfig(as(made.body.token, app)), 401, "unauthorized");
    } finally {
      await app.dispose();
      await new Promise((down) => {
        server.closeAllConnections();
        server.close(() => down(null));
      });
    }
  });
});
