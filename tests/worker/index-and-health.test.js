// @ts-check
// The API's front door: GET / (a small JSON index), GET /health (public, storage-free, with
// the build's version), HEAD on every GET route, and GET /health?deep=1, which only an admin
// may ask for and which reports the bindings, the schema version and the admin token.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_WORK, ROOT, expectError, migrationFiles, timing } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {import("../helpers.js").Answer} Answer */

const VERSION = /** @type {RegExpExecArray} */ (/^version\s*=\s*"([^"]+)"/m.exec(readFileSync(join(ROOT, "Cargo.toml"), "utf8")))[1];
const NEWEST = /** @type {string} */ (migrationFiles().at(-1));

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: { rateLimits: { default: 1000 } } });
});
afterAll(() => w?.dispose());

describe("GET /", () => {
  it("answers a small JSON index: name, version, entry points and docs, with no storage work", async () => {
    const r = await w.getIndex();
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.body).toMatchObject({ name: "edgestate", version: VERSION });
    expect(r.body.links).toMatchObject({ health: "/health", config: "/config" });
    expect(r.body.docs).toMatchObject({ readme: "README.md", api: "docs/API.md" });
    expect(timing(r.res)).toEqual(NO_WORK);
    expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
  });

  it("refuses other methods with 405 and Allow", async () => {
    const r = await w.json("/", { method: "POST", body: {} }); // not declared: the router's 405
    expectError(expect, r, 405, "method_not_allowed");
    expect(r.res.headers.get("Allow")).toBe("GET");
  });

  it("stays open during maintenance", async () => {
    const m = await spawnApp({ seedConfig: { maintenanceMode: true } });
    try {
      expect((await m.getIndex()).status).toBe(200);
      expect((await m.getHealth()).status).toBe(200);
      expectError(expect, await m.getConfig(), 503, "maintenance");
    } finally {
      await m.dispose();
    }
  });
});

describe("GET /health", () => {
  it("is public, storage-free, never limited, and carries the version", async () => {
    const r = await w.getHealth();
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: "ok", version: VERSION });
    expect(timing(r.res)).toEqual(NO_WORK);
    expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
    expect(r.res.headers.get("Cache-Control")).toBe("no-store");
  });

  it("?deep=0, ?deep=false and an empty value are the plain form, for anyone", async () => {
    for (const q of ["deep=0", "deep=false", "deep=", "deep"]) {
      const r = await w.getHealth(q); // the query as written
      expect(r.status, q).toBe(200);
      expect(r.body, q).toEqual({ status: "ok", version: VERSION });
    }
  });

  it("HEAD answers 200 with the headers and no body, as curl -I does", async () => {
    const head = await w.getHealth({}, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(head.text).toBe("");
  });
});

describe("HEAD on every GET route", () => {
  it("answers as GET would, without a body", async () => {
    const { id: session } = await w.mintSession({ userId: "head-user", email: "h@example.com" });
    await w.seedUser("head-user", "H");
    // Each GET operation, asked with GET and then with HEAD (`method: "HEAD"`).
    /** @type {[string, (opts: CallOptions) => Promise<Answer>][]} */
    const cases = [
      ["/", (o) => w.getIndex(o)],
      ["/health", (o) => w.getHealth({}, o)],
      ["/health?deep=1", (o) => w.getHealth({ deep: 1 }, { admin: true, ...o })],
      ["/config", (o) => w.getConfig(o)],
      ["/flags/newCheckout", (o) => w.getFlag("newCheckout", {}, o)],
      ["/sessions/current", (o) => w.getCurrentSession(session, o)],
      ["/admin/sessions", (o) => w.listSessions({}, o)],
      ["/prefs", (o) => w.getPrefs(session, o)],
      ["/users/head-user", (o) => w.getUser("head-user", o)],
    ];
    for (const [path, call] of cases) {
      const get = await call({});
      const head = await call({ method: "HEAD" });
      expect(head.status, `HEAD ${path}`).toBe(get.status);
      expect(get.status, path).toBe(200);
      expect(head.res.headers.get("content-type"), path).toBe(get.res.headers.get("content-type"));
      expect(head.text, path).toBe("");
    }
    expect((await w.getHealth({ deep: 1 }, { method: "HEAD" })).status).toBe(401);
  });
});

describe("GET /health?deep=1", () => {
  it("needs the admin token: none or a wrong one is 401 and reads nothing", async () => {
    for (const admin of [undefined, "wrong-token"]) {
      const r = await w.getHealth({ deep: 1 }, { admin });
      expectError(expect, r, 401, "unauthorized");
      expect(timing(r.res)).toEqual(NO_WORK);
    }
    expectError(expect, await w.getHealth({ deep: "true" }), 401, "unauthorized");
    expectError(expect, await w.getHealth("deep=0&deep=1"), 401, "unauthorized");
  });

  it("refuses a value that is not 1, true, 0 or false with 400 naming the parameter", async () => {
    for (const q of ["deep=yes", "deep=2", "deep=TRUE"]) {
      const body = expectError(expect, await w.getHealth(q, { admin: true }), 400, "invalid_request");
      expect(body.error, q).toMatch(/^deep/);
    }
  });

  it("reports each binding, the schema version, the config and the admin token", async () => {
    const r = await w.getHealth({ deep: 1 }, { admin: true });
    expect(r.status, r.text).toBe(200);
    expect(r.res.headers.get("Cache-Control")).toBe("no-store");
    expect(r.body).toEqual({
      status: "ok",
      version: VERSION,
      adminToken: true,
      adminTokenStrong: true,
      kv: { binding: "CACHE", bound: true, ok: true, config: "stored", configVersion: 0 },
      d1: {
        binding: "DB",
        bound: true,
        ok: true,
        schemaVersion: Number(NEWEST.slice(0, 4)),
        expectedSchemaVersion: Number(NEWEST.slice(0, 4)),
        latestMigration: NEWEST,
        missingTables: [],
        configVersion: null,
      },
      ignoredOrigins: [],
      configInSync: true,
    });
    expect(timing(r.res)).toMatchObject({ reads: 1, writes: 0 });
  });

  it("shows an unseeded config, an unmigrated D1 and ignored origins as they are", async () => {
    const bare = await spawnApp({ migrate: false, vars: { ALLOWED_ORIGINS: "*,https://ok.example" } });
    try {
      const r = await bare.getHealth({ deep: 1 }, { admin: true });
      expect(r.status, r.text).toBe(200);
      expect(r.body.status).toBe("degraded");
      expect(r.body.kv).toEqual({ binding: "CACHE", bound: true, ok: true, config: "absent", configVersion: null });
      expect(r.body.d1).toMatchObject({ ok: false, schemaVersion: null, latestMigration: null });
      expect([...r.body.d1.missingTables].sort()).toEqual(["admin_tokens", "config_history", "flag_usage", "preferences", "rate_limits", "revocations", "sessions", "users"]);
      expect(r.body.ignoredOrigins).toEqual(["*"]);
    } finally {
      await bare.dispose();
    }
  });

  it("shows a binding that is missing as unbound, without failing", async () => {
    const noKv = await spawnApp({ kv: false });
    try {
      const r = await noKv.getHealth({ deep: 1 }, { admin: true });
      expect(r.status, r.text).toBe(200);
      expect(r.body.status).toBe("degraded");
      expect(r.body.kv).toEqual({ binding: "CACHE", bound: false, ok: false, config: null, configVersion: null });
      expect(r.body.d1.ok).toBe(true);
    } finally {
      await noKv.dispose();
    }
  });
});
