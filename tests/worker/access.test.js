// @ts-check
// Admin sign-in through Cloudflare Access: with ACCESS_TEAM_DOMAIN and ACCESS_AUD set, an
// admin request without an Authorization header is admitted on a valid
// `Cf-Access-Jwt-Assertion` (RS256, signed by a key from the team's certs endpoint, for our
// team and application, not expired), and the config history names the person (or the
// service token). A local stand-in serves the team's certs, counting how often the Worker
// asks for them; the tokens are signed here with keys made for the run.
import { createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError } from "../helpers.js";
import { HIGH, TestApp, spawnApp, uid } from "../app.js";

/** @typedef {import("../app.js").CallOptions} CallOptions */
/** @typedef {{ kid: string, privateKey: import("node:crypto").KeyObject, publicKey: import("node:crypto").KeyObject }} Key */
/**
 * @typedef {object} Team A stand-in for an Access team: its certs endpoint and its issuer.
 * @property {string} origin `http://127.0.0.1:<port>`: ACCESS_TEAM_DOMAIN, and every token's `iss`.
 * @property {{ ACCESS_TEAM_DOMAIN: string, ACCESS_AUD: string }} vars The Worker vars for this team.
 * @property {Key[]} keys The keys the certs endpoint serves (assign to rotate).
 * @property {number} status 200, or the status the certs endpoint fails with.
 * @property {number} requests How many times the certs were asked for.
 * @property {(key: Key, claims?: Record<string, unknown>, header?: Record<string, unknown>) => string} token
 *   An RS256 token this team issues to alice, signed by `key` under its kid, with `claims`
 *   and `header` merged in (an undefined value drops a field).
 * @property {() => Promise<void>} close
 */

const ASSERTION = "Cf-Access-Jwt-Assertion";
const CERTS_PATH = "/cdn-cgi/access/certs";
const AUD = randomBytes(32).toString("hex");
const kid = () => randomBytes(32).toString("hex");
/** @param {string} [id] @returns {Key} */
const rsaKey = (id = kid()) => ({ kid: id, ...generateKeyPairSync("rsa", { modulusLength: 2048 }) });
const KEY = rsaKey();
const NEXT_KEY = rsaKey();
/** Another key under KEY's kid: what it signs must fail the signature check. */
const IMPOSTOR = rsaKey(KEY.kid);

const now = () => Math.floor(Date.now() / 1000);
/** @param {unknown} v */
const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
/**
 * JWS compact serialization signed with RSASSA-PKCS1-v1_5 (`hash`: sha256 for RS256).
 * @param {Key} key @param {object} header @param {object} claims @param {string} [hash]
 */
function signed(key, header, claims, hash = "sha256") {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${sign(hash, Buffer.from(input), key.privateKey).toString("base64url")}`;
}
/** The public half of `key` as Cloudflare lists it in `keys`. @param {Key} key */
const jwk = (key) => ({ ...key.publicKey.export({ format: "jwk" }), kid: key.kid, alg: "RS256", use: "sig" });
/** A PEM per key, as Cloudflare also sends (certificates there; the SPKI stands in here). @param {Key} key */
const pem = (key) => ({ kid: key.kid, cert: key.publicKey.export({ type: "spki", format: "pem" }) });
/** The claims of a token. @param {string} token */
const claimsOf = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());

/**
 * Starts a stand-in team on 127.0.0.1 serving `keys` at /cdn-cgi/access/certs (else 404).
 * @param {Key[]} keys @returns {Promise<Team>}
 */
async function accessTeam(keys) {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || new URL(req.url ?? "/", "http://x").pathname !== CERTS_PATH) return void res.writeHead(404).end();
    team.requests++;
    if (team.status !== 200) return void res.writeHead(team.status, { "Content-Type": "text/plain" }).end("unavailable");
    const body = { keys: team.keys.map(jwk), public_cert: pem(team.keys[0]), public_certs: team.keys.map(pem) };
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise((up) => server.listen(0, "127.0.0.1", () => up(null)));
  const origin = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}`;
  /** @type {Team} */
  const team = {
    origin,
    vars: { ACCESS_TEAM_DOMAIN: origin, ACCESS_AUD: AUD },
    keys,
    status: 200,
    requests: 0,
    token: (key, claims = {}, header = {}) => {
      const t = now();
      const person = { email: "alice@example.com", sub: "7335d417-61da-459d-899c-0a01c76a2dcc", country: "NL", identity_nonce: "6ei69kawdKzMIAPF" };
      const base = { aud: [AUD], iss: origin, iat: t, nbf: t, exp: t + 3600, type: "app", ...person };
      return signed(key, { alg: "RS256", typ: "JWT", kid: key.kid, ...header }, { ...base, ...claims });
    },
    close: () => new Promise((down) => {
      server.closeAllConnections();
      server.close(() => down());
    }),
  };
  return team;
}

/** @type {Team} */
let team;
/** @type {TestApp} */
let w;
beforeAll(async () => {
  team = await accessTeam([KEY]);
  w = await spawnApp({ seedConfig: HIGH, vars: team.vars });
});
afterAll(async () => {
  await w?.dispose();
  await team?.close();
});

/**
 * Request options carrying `token` in the Access header, without the admin token (unless
 * `admin` says otherwise), from a client of its own.
 * @param {string} token @param {TestApp} [app] @param {boolean | string} [admin] @returns {CallOptions}
 */
const access = (token, app = w, admin = false) => ({ admin, client: app.newClient(), headers: { [ASSERTION]: token } });

/**
 * What a refused request must leave as it was: the config's version and the newest history
 * entry, read with the admin token.
 * @param {TestApp} app
 */
async function written(app) {
  const c = await app.getAdminConfig();
  const h = await app.getConfigHistory({ limit: 1 });
  expect(c.status, c.text).toBe(200);
  expect(h.status, h.text).toBe(200);
  return { etag: c.res.headers.get("ETag"), newest: h.body.entries[0] ?? null };
}

/**
 * GET and PATCH /admin/config with `token` are both refused (`status`, `code`) and nothing
 * is written.
 * @param {string} token
 * @param {{ app?: TestApp, admin?: boolean | string, status?: number, code?: string }} [options]
 */
async function expectRefused(token, { app = w, admin = false, status = 401, code = "unauthorized" } = {}) {
  const before = await written(app);
  expectError(expect, await app.getAdminConfig(access(token, app, admin)), status, code);
  expectError(expect, await app.patchConfig({ featureFlags: { intruder: true } }, access(token, app, admin)), status, code);
  expect(await written(app)).toEqual(before);
}

/**
 * Runs `fn` with a team of its own serving `keys` and a Worker booted for it, then stops both.
 * @param {Key[]} keys @param {(app: TestApp, team: Team) => Promise<void>} fn
 */
async function isolated(keys, fn) {
  const own = await accessTeam(keys);
  const app = await spawnApp({ seedConfig: HIGH, vars: own.vars });
  try {
    await fn(app, own);
  } finally {
    await app.dispose();
    await own.close();
  }
}

describe("a valid Access token admits an admin", () => {
  it("GET /admin/config answers 200 and a PATCH is applied, the person's email its actor in the history", async () => {
    const email = `${uid("alice")}@example.com`;
    const jwt = team.token(KEY, { email });
    const r = await w.getAdminConfig(access(jwt));
    expect(r.status, r.text).toBe(200);
    const p = await w.patchConfig({ featureFlags: { viaAccess: true } }, access(jwt));
    expect(p.status, p.text).toBe(200);
    expect(p.body.featureFlags.viaAccess).toBe(true);
    const version = Number(JSON.parse(String(p.res.headers.get("ETag"))));
    const mine = await w.patchConfig({ featureFlags: { viaToken: true } });
    expect(mine.status, mine.text).toBe(200);
    const h = await w.getConfigHistory({ limit: 2 });
    expect(h.body.entries).toMatchObject([
      { version: version + 1, actor: "admin", action: "patch" },
      { version, actor: email, action: "patch", outcome: "applied", change: { featureFlags: { viaAccess: true } } },
    ]);
  });

  it("a service token (no email) is admitted, its common_name the actor", async () => {
    const commonName = `${randomBytes(16).toString("hex")}.access`;
    const jwt = team.token(KEY, { email: undefined, sub: "", country: undefined, identity_nonce: undefined, common_name: commonName });
    const p = await w.patchConfig({ cacheTtlSeconds: 301 }, access(jwt));
    expect(p.status, p.text).toBe(200);
    const h = await w.getConfigHistory({ limit: 1 });
    expect(h.body.entries[0]).toMatchObject({ actor: commonName, action: "patch", change: { cacheTtlSeconds: 301 } });
  });

  it("aud may be a string equal to ours or an array holding it among others", async () => {
    for (const aud of [AUD, ["another-application", AUD]]) {
      const r = await w.getAdminConfig(access(team.token(KEY, { aud })));
      expect(r.status, `${JSON.stringify(aud)}: ${r.text}`).toBe(200);
    }
  });

  it("exp and nbf are allowed 30 s of clock skew (expired 10 s ago, valid 10 s from now)", async () => {
    for (const skew of [{ exp: now() - 10, iat: now() - 3610, nbf: now() - 3610 }, { nbf: now() + 10 }]) {
      const r = await w.getAdminConfig(access(team.token(KEY, skew)));
      expect(r.status, `${JSON.stringify(skew)}: ${r.text}`).toBe(200);
    }
  });

  it("admits the other admin routes too: POST /sessions and GET /health?deep=1; a bad token mints nothing", async () => {
    const userId = uid("s");
    const s = await w.createSession({ userId, email: `${userId}@example.com` }, access(team.token(KEY)));
    expect(s.status, s.text).toBe(201);
    const health = await w.getHealth({ deep: 1 }, access(team.token(KEY)));
    expect(health.status, health.text).toBe(200);
    const other = uid("s");
    const refused = await w.createSession({ userId: other, email: `${other}@example.com` }, access(team.token(IMPOSTOR)));
    expectError(expect, refused, 401, "unauthorized");
    expect(await w.sessionCount(other)).toBe(0);
    expectError(expect, await w.getHealth({ deep: 1 }, access(team.token(KEY, { aud: "x" }))), 401, "unauthorized");
  });
});

describe("any other token is 401 unauthorized and nothing is written", () => {
  const rs384 = () => signed(KEY, { alg: "RS384", typ: "JWT", kid: KEY.kid }, claimsOf(team.token(KEY)), "sha384");
  /** A token of `alg` with the signature `mac` computes over its header and claims. @param {string} alg @param {(input: string) => string} mac */
  const otherAlg = (alg, mac) => {
    const input = `${b64({ alg, typ: "JWT", kid: KEY.kid })}.${team.token(KEY).split(".")[1]}`;
    return `${input}.${mac(input)}`;
  };
  const publicPem = String(KEY.publicKey.export({ type: "spki", format: "pem" }));
  const garbage = () => randomBytes(24).toString("base64url");
  /** @type {[string, () => string][]} */
  const cases = [
    ["expired: exp 2 minutes ago, past the leeway", () => team.token(KEY, { exp: now() - 120, iat: now() - 3720, nbf: now() - 3720 })],
    ["not yet valid: nbf 2 minutes from now", () => team.token(KEY, { nbf: now() + 120 })],
    ["for another application: aud a string that is not ours", () => team.token(KEY, { aud: "another-application" })],
    ["for other applications: aud an array without ours", () => team.token(KEY, { aud: ["another-application", `${AUD}x`] })],
    ["from another team: iss is not ACCESS_TEAM_DOMAIN", () => team.token(KEY, { iss: "https://other-team.cloudflareaccess.com" })],
    ["naming no one: neither email nor common_name", () => team.token(KEY, { email: undefined })],
    ["signed by another key under the team's kid", () => team.token(IMPOSTOR)],
    ["altered after signing (another email)", () => {
      const jwt = team.token(KEY);
      const [h, , s] = jwt.split(".");
      return `${h}.${b64({ ...claimsOf(jwt), email: "mallory@example.com" })}.${s}`;
    }],
    ["without a kid", () => team.token(KEY, {}, { kid: undefined })],
    ["alg RS384, correctly signed (RS256 only)", rs384],
    ["alg HS256, keyed with the team's public key", () => otherAlg("HS256", (i) => createHmac("sha256", publicPem).update(i).digest("base64url"))],
    ["alg none, unsigned", () => otherAlg("none", () => "")],
    ["empty", () => ""],
    ["two parts", () => "a.b"],
    ["three parts of garbage", () => `${garbage()}.${garbage()}.${garbage()}`],
    ["16 KiB of garbage", () => "x".repeat(16 * 1024)],
    ["16 KiB in three parts", () => `${b64({ alg: "RS256", kid: KEY.kid })}.${randomBytes(12 * 1024).toString("base64url")}.${garbage()}`],
  ];
  for (const [name, make] of cases) {
    it(name, async () => {
      await expectRefused(make());
    });
  }

  it("with an Authorization header the admin token decides, and the JWT is not looked at", async () => {
    await expectRefused(team.token(KEY), { admin: "wrong-token" });
    const r = await w.getAdminConfig(access("garbage", w, true));
    expect(r.status, r.text).toBe(200);
  });

  it("failed Access authentications count like wrong admin tokens: one client is eventually 429", async () => {
    const opts = access(team.token(KEY, { aud: "another-application" })); // one client throughout
    /** @type {number[]} */
    const statuses = [];
    let last;
    while (statuses.length < 100 && last?.status !== 429) statuses.push((last = await w.getAdminConfig(opts)).status);
    expect(statuses[0]).toBe(401);
    expectError(expect, /** @type {import("../helpers.js").Answer} */ (last), 429, "rate_limited");
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
  });

  it("without ACCESS_TEAM_DOMAIN and ACCESS_AUD the header is ignored: 401, and no certs are fetched", async () => {
    const plain = await spawnApp({ seedConfig: HIGH });
    try {
      const before = team.requests;
      await expectRefused(team.token(KEY), { app: plain });
      expect(team.requests).toBe(before);
    } finally {
      await plain.dispose();
    }
  });
});

describe("the team's certs", () => {
  it("are fetched on first need, then served from the isolate", async () => {
    await isolated([KEY], async (app, own) => {
      expect((await app.getAdminConfig()).status).toBe(200);
      expect(own.requests).toBe(0);
      for (let i = 0; i < 3; i++) expect((await app.getAdminConfig(access(own.token(KEY), app))).status).toBe(200);
      expect(own.requests).toBe(1);
    });
  });

  it("a kid not in the cache makes one refetch; more unknown kids right after, one by one or in a burst, make none", async () => {
    await isolated([KEY], async (app, own) => {
      expect((await app.getAdminConfig(access(own.token(KEY), app))).status).toBe(200);
      expect(own.requests).toBe(1);
      const stranger = () => own.token({ ...KEY, kid: kid() });
      expectError(expect, await app.getAdminConfig(access(stranger(), app)), 401, "unauthorized");
      expect(own.requests).toBe(2);
      expectError(expect, await app.getAdminConfig(access(stranger(), app)), 401, "unauthorized");
      const burst = await Promise.all(Array.from({ length: 10 }, () => app.getAdminConfig(access(stranger(), app))));
      for (const r of burst) expectError(expect, r, 401, "unauthorized");
      expect(own.requests).toBe(2);
      await expectRefused(stranger(), { app });
    });
  });

  it("a key the team started serving is accepted by a freshly booted Worker; the dropped one is not", async () => {
    await isolated([NEXT_KEY], async (app, own) => {
      expect((await app.getAdminConfig(access(own.token(NEXT_KEY), app))).status).toBe(200);
      await expectRefused(own.token(KEY), { app });
    });
  });

  it("a running isolate picks up a new key on its first refetch", async () => {
    await isolated([KEY], async (app, own) => {
      expect((await app.getAdminConfig(access(own.token(KEY), app))).status).toBe(200);
      own.keys = [KEY, NEXT_KEY];
      const r = await app.patchConfig({ cacheTtlSeconds: 302 }, access(own.token(NEXT_KEY), app));
      expect(r.status, r.text).toBe(200);
      expect(own.requests).toBe(2);
      expect((await app.getAdminConfig(access(own.token(KEY), app))).status).toBe(200);
    });
  });

  it("ACCESS_TEAM_DOMAIN may end in a slash: the certs path and the issuer are the same", async () => {
    const app = await spawnApp({ seedConfig: HIGH, vars: { ...team.vars, ACCESS_TEAM_DOMAIN: `${team.origin}/` } });
    try {
      const r = await app.getAdminConfig(access(team.token(KEY), app));
      expect(r.status, r.text).toBe(200);
    } finally {
      await app.dispose();
    }
  });

  it("answering 500: an Access request is 503 unavailable and writes nothing; the admin token still works", async () => {
    await isolated([KEY], async (app, own) => {
      own.status = 500;
      await expectRefused(own.token(KEY), { app, status: 503, code: "unavailable" });
      expect(own.requests).toBeGreaterThan(0);
      const p = await app.patchConfig({ cacheTtlSeconds: 303 });
      expect(p.status, p.text).toBe(200);
    });
  });

  it("unreachable: an Access request is 503 unavailable; the admin token still works", async () => {
    const gone = await accessTeam([KEY]);
    await gone.close();
    const app = await spawnApp({ seedConfig: HIGH, vars: gone.vars });
    try {
      await expectRefused(gone.token(KEY), { app, status: 503, code: "unavailable" });
      expect((await app.getAdminConfig()).status).toBe(200);
    } finally {
      await app.dispose();
    }
  });
});
