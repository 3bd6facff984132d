// @ts-check
// The typed test client (zero2prod's TestApp): `spawnApp()` boots the built Worker through
// helpers.js `boot()` (so every response is checked against docs/openapi.json) and returns
// a TestApp with one method per operation of the document (named by its operationId),
// fixtures that create state through the API or seed it in storage with the age a test
// needs, and readers of the stored rows. `connectApp()` is the same client over a running
// server (`npm run dev`); the location harness (worker/locations.js) builds one per isolate.
// Ids from `uid()` are unique per test run.
//
// Every method resolves an Answer ({status, body, text, res}) and takes the request options
// last (CallOptions: `admin`, `session`, `client`, `headers` such as If-Match or
// Prefs-Version, `query` for parameters the operation does not declare, `method: "HEAD"` on
// a GET operation, `keepAlive` for bulk loads). Path parameters are put in the path as
// given: percent-encode them yourself. Bodies: an object is sent as JSON; a string, bytes or
// a stream as they are (malformed JSON, exact sizes, bodies without Content-Length).
// `fetch`, `json` and `raw` remain for what is no operation: HTTP framing (methods fetch()
// refuses, HEAD, 405 on other methods, unknown paths, preflights).
import { createHash, randomBytes } from "node:crypto";
import { ADMIN_TOKEN, answerOf, boot, checked, clientOver, queryString } from "./helpers.js";

/**
 * @typedef {import("./helpers.js").RequestOptions} RequestOptions
 * @typedef {import("./helpers.js").Answer} Answer
 * @typedef {import("./helpers.js").Client} Client
 * @typedef {import("./helpers.js").Booted} Booted
 * @typedef {Omit<RequestOptions, "body"> & { keepAlive?: boolean }} CallOptions
 *   `admin`: send the admin token (`true`) or this token; admin operations send the admin
 *   token unless `admin` is given (false: none) or `session` or an `Authorization` header is.
 *   `session`: a session id as Bearer; `client`: the CF-Connecting-IP; `keepAlive`: over a
 *   kept-alive HTTP/1.1 connection (`raw`), for tests that send thousands of requests.
 * @typedef {{ theme: "light" | "dark", language: string, notifications: boolean }} Prefs
 * @typedef {{ id: string, name: string, updatedAt: number }} User
 * @typedef {{ id: string, userId: string, email: string, hash: string, createdAt: number, expiresAt: number, idleExpiresAt: number }} MintedSession
 * @typedef {{ userId: string, email: string, createdAt: number, expiresAt: number, idleExpiresAt?: number }} SessionView
 * @typedef {{ id: string, hash: string, userId: string, view: SessionView }} SeededSession
 * @typedef {Client & { mf?: any, kv?: any, db?: any, raw?: Booted["raw"], dispose?: () => Promise<void> }} Backend
 */

const RUN = randomBytes(3).toString("hex");
let seq = 0;

/**
 * A fresh id, valid as a userId and as a profile id, unique within the test run.
 * @param {string} [tag]
 */
export const uid = (tag = "u") => `${tag}_${RUN}_${++seq}`;
/**
 * The stored form of a session id (hex SHA-256).
 * @param {string} s
 */
export const sha256 = (s) => createHash("sha256").update(s).digest("hex");
/** A well-formed session id (43 base64url characters) that no one minted. */
export const unknownSessionId = () => randomBytes(32).toString("base64url");

/** Rate limits high enough that no test runs into them by accident (a config fragment). */
export const HIGH = Object.freeze({ rateLimits: Object.freeze({ default: 1000000 }) });

const HOUR_MS = 3600_000;
const WEEK_MS = 7 * 24 * HOUR_MS;

/**
 * Boots a Worker (options as helpers.js `boot`) and returns its client.
 * @param {Parameters<typeof boot>[0]} [options]
 */
export async function spawnApp(options) {
  return new TestApp(await boot(options));
}

/**
 * The client of a server that is already running (such as `npm run dev`), over the global
 * fetch, every exchange checked against the contract. The server serves paths of its own
 * (static assets), which are not checked.
 * @param {string} base such as http://127.0.0.1:8870
 * @param {{ adminToken: string }} options
 */
export function connectApp(base, { adminToken }) {
  return new TestApp(clientOver(checked((url, init) => fetch(url, init), { otherRoutes: true }), { base, adminToken }));
}

export class TestApp {
  /** @param {Backend} w */
  constructor(w) {
    this.w = w;
    /** The Miniflare instance (booted apps only). */
    this.mf = w.mf;
    /** KV as a test reads and seeds it (`CACHE` of a booted app; a location's own store in the location harness), or null. */
    this.kv = w.kv ?? null;
    /** D1 (`DB`), or null when booted without it. */
    this.db = w.db ?? null;
    /** Every session id this client minted (POST /sessions answered 201). @type {string[]} */
    this.minted = [];
  }

  /** @param {string} [tag] */
  uid(tag) {
    return uid(tag);
  }
  /** The origin requests go to: what a browser on this Worker's own pages sends as `Origin`. */
  get origin() {
    return new URL(this.w.base).origin;
  }
  /** This app's default client address (CF-Connecting-IP). */
  get client() {
    return this.w.client;
  }
  newClient() {
    return this.w.newClient();
  }
  /**
   * A plain HTTP/1.1 request over a kept-alive connection, for HTTP framing (methods fetch()
   * refuses, such as TRACE).
   * @param {string} method @param {string} path @param {Record<string, string>} [headers] @param {string} [body]
   */
  raw(method, path, headers, body) {
    if (!this.w.raw) throw new Error("raw: only a booted app has the runtime's port");
    return this.w.raw(method, path, headers, body);
  }
  /**
   * A request by path and method, for what is no operation (HTTP framing).
   * @param {string} path @param {RequestOptions} [opts] @returns {Promise<Response>}
   */
  fetch(path, opts) {
    return this.w.fetch(path, opts);
  }
  /**
   * `fetch`, read whole.
   * @param {string} path @param {RequestOptions & { keepAlive?: boolean }} [opts] @returns {Promise<Answer>}
   */
  json(path, opts = {}) {
    return opts.keepAlive ? this.#keptAlive(path, opts) : this.w.json(path, opts);
  }
  async dispose() {
    await this.w.dispose?.();
  }

  /**
   * `json` over `raw`: the same request, as an Answer.
   * @param {string} path @param {RequestOptions} opts @returns {Promise<Answer>}
   */
  async #keptAlive(path, opts) {
    /** @type {Record<string, string>} */
    const headers = { ...opts.headers };
    const admin = opts.admin === true ? this.w.adminToken : opts.admin;
    if (admin) headers.Authorization = `Bearer ${admin}`;
    if (opts.session) headers.Authorization = `Bearer ${opts.session}`;
    if (opts.client) headers["CF-Connecting-IP"] = opts.client;
    let body;
    if (typeof opts.body === "string") body = opts.body;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
      headers["Content-Type"] = "application/json";
    }
    const r = await this.raw(opts.method ?? "GET", `${path}${queryString(opts.query)}`, headers, body);
    const empty = r.status === 204 || r.status === 304 || opts.method === "HEAD";
    /** @type {[string, string][]} */
    const fields = Object.entries(r.headers).flatMap(([k, v]) => [v ?? []].flat().map((x) => /** @type {[string, string]} */ ([k, x])));
    return answerOf(new Response(empty ? null : r.text, { status: r.status, headers: fields }));
  }

  /**
   * An admin operation: the admin token unless the caller chose other credentials.
   * @param {string} path @param {RequestOptions} [opts]
   */
  #admin(path, opts = {}) {
    const other = opts.session || Object.keys(opts.headers ?? {}).some((h) => h.toLowerCase() === "authorization");
    return this.json(path, { ...opts, admin: opts.admin ?? !other });
  }

  // --- one method per operation (operationId) --------------------------------------------
  /** GET / (the index) @param {CallOptions} [opts] */
  getIndex(opts) {
    return this.json("/", opts);
  }
  /** GET /health; `{deep: 1}` asks for the admin's set-up report (send `admin: true`) @param {{ deep?: string | number } | string} [query] @param {CallOptions} [opts] */
  getHealth(query = {}, opts) {
    return this.json(`/health${queryString(query)}`, opts);
  }
  /** GET /config @param {CallOptions} [opts] */
  getConfig(opts) {
    return this.json("/config", opts);
  }
  /** GET /flags/:name; `query` is the evaluation context @param {string} name @param {Record<string, string | number> | string} [context] @param {CallOptions} [opts] */
  getFlag(name, context = {}, opts) {
    return this.json(`/flags/${name}${queryString(context)}`, opts);
  }
  /** POST /ofrep/v1/evaluate/flags/:key @param {string} key @param {unknown} body `{context}` @param {CallOptions} [opts] */
  evaluateFlag(key, body, opts) {
    return this.json(`/ofrep/v1/evaluate/flags/${key}`, { ...opts, method: "POST", body });
  }
  /** POST /ofrep/v1/evaluate/flags (send `headers: {"If-None-Match": etag}` for a 304) @param {unknown} body `{context}` @param {CallOptions} [opts] */
  evaluateFlags(body, opts) {
    return this.json("/ofrep/v1/evaluate/flags", { ...opts, method: "POST", body });
  }
  /**
   * GET /ofrep/v1/events: the Response itself, its body a stream that does not end (read it
   * and cancel it; see tests/worker/events.test.js). @param {string} [lastEventId] @param {RequestOptions} [opts]
   */
  flagEvents(lastEventId, opts = {}) {
    const headers = lastEventId === undefined ? opts.headers : { ...opts.headers, "Last-Event-ID": lastEventId };
    return this.fetch("/ofrep/v1/events", { ...opts, headers });
  }
  /** GET /admin/flags/usage @param {CallOptions} [opts] */
  getFlagUsage(opts) {
    return this.#admin("/admin/flags/usage", opts);
  }
  /** GET /admin/config (D1, with ETag) @param {CallOptions} [opts] */
  getAdminConfig(opts) {
    return this.#admin("/admin/config", opts);
  }
  /** GET /admin/config/history @param {{ cursor?: string, limit?: number | string } | string} [query] @param {CallOptions} [opts] */
  getConfigHistory(query = {}, opts) {
    return this.#admin(`/admin/config/history${queryString(query)}`, opts);
  }
  /** POST /admin/config/rollback (If-Match in `headers`) @param {unknown} body `{version}` @param {CallOptions} [opts] */
  rollbackConfig(body, opts) {
    return this.#admin("/admin/config/rollback", { ...opts, method: "POST", body });
  }
  /** PUT /admin/config (If-Match in `headers`) @param {unknown} doc @param {CallOptions} [opts] */
  replaceConfig(doc, opts) {
    return this.#admin("/admin/config", { ...opts, method: "PUT", body: doc });
  }
  /** PATCH /admin/config (If-Match in `headers`) @param {unknown} patch @param {CallOptions} [opts] */
  patchConfig(patch, opts) {
    return this.#admin("/admin/config", { ...opts, method: "PATCH", body: patch });
  }
  /** POST /sessions; the id of a 201 joins `minted` @param {unknown} body `{userId, email}` @param {CallOptions} [opts] */
  async createSession(body, opts) {
    const r = await this.#admin("/sessions", { ...opts, method: "POST", body });
    if (r.status === 201 && typeof r.body?.sessionId === "string") this.minted.push(r.body.sessionId);
    return r;
  }
  /** GET /sessions/current (`sessionId` as Bearer; none: send a cookie in `headers`, or nothing) @param {string | null | undefined} sessionId @param {CallOptions} [opts] */
  getCurrentSession(sessionId, opts) {
    return this.json("/sessions/current", { session: sessionId, ...opts });
  }
  /** DELETE /sessions/current (logout) @param {string | null | undefined} sessionId @param {CallOptions} [opts] */
  logout(sessionId, opts) {
    return this.json("/sessions/current", { session: sessionId, ...opts, method: "DELETE" });
  }
  /** GET /sessions: the caller's own @param {string | null | undefined} sessionId @param {{ userId?: string, cursor?: string, limit?: number | string } | string} [query] @param {CallOptions} [opts] */
  listMySessions(sessionId, query = {}, opts) {
    return this.json(`/sessions${queryString(query)}`, { session: sessionId, ...opts });
  }
  /** DELETE /sessions: end all the caller's other sessions @param {string | null | undefined} sessionId @param {CallOptions} [opts] */
  endMyOtherSessions(sessionId, opts) {
    return this.json("/sessions", { session: sessionId, ...opts, method: "DELETE" });
  }
  /** DELETE /sessions/:handle: end one of the caller's own @param {string | null | undefined} sessionId @param {string} handle @param {CallOptions} [opts] */
  endMySession(sessionId, handle, opts) {
    return this.json(`/sessions/${handle}`, { session: sessionId, ...opts, method: "DELETE" });
  }
  /** GET /admin/sessions @param {{ userId?: string, cursor?: string, limit?: number | string } | string} [query] @param {CallOptions} [opts] */
  listSessions(query = {}, opts) {
    return this.#admin(`/admin/sessions${queryString(query)}`, opts);
  }
  /** DELETE /admin/users/:userId/sessions @param {string} userId @param {CallOptions} [opts] */
  revokeUserSessions(userId, opts) {
    return this.#admin(`/admin/users/${userId}/sessions`, { ...opts, method: "DELETE" });
  }
  /** DELETE /admin/sessions/:handle @param {string} handle from the listing @param {CallOptions} [opts] */
  revokeSession(handle, opts) {
    return this.#admin(`/admin/sessions/${handle}`, { ...opts, method: "DELETE" });
  }
  /** GET /admin/tokens @param {CallOptions} [opts] */
  listTokens(opts) {
    return this.#admin("/admin/tokens", opts);
  }
  /** POST /admin/tokens @param {unknown} body `{name, scope}` @param {CallOptions} [opts] */
  createToken(body, opts) {
    return this.#admin("/admin/tokens", { ...opts, method: "POST", body });
  }
  /** DELETE /admin/tokens/:name @param {string} name @param {CallOptions} [opts] */
  revokeToken(name, opts) {
    return this.#admin(`/admin/tokens/${encodeURIComponent(name)}`, { ...opts, method: "DELETE" });
  }
  /** GET /prefs (send `headers: {"Prefs-Version": v}` to read v or newer) @param {string | null | undefined} sessionId @param {CallOptions} [opts] */
  getPrefs(sessionId, opts) {
    return this.json("/prefs", { session: sessionId, ...opts });
  }
  /** PATCH /prefs @param {string | null | undefined} sessionId @param {unknown} patch @param {CallOptions} [opts] */
  patchPrefs(sessionId, patch, opts) {
    return this.json("/prefs", { session: sessionId, ...opts, method: "PATCH", body: patch });
  }
  /** GET /users/:id @param {string} id @param {CallOptions} [opts] */
  getUser(id, opts) {
    return this.json(`/users/${id}`, opts);
  }
  /** POST /users/batch: `ids` is sent as `{ids}`; any other body as it is @param {string[] | unknown} ids @param {CallOptions} [opts] */
  getUsers(ids, opts) {
    return this.json("/users/batch", { ...opts, method: "POST", body: Array.isArray(ids) ? { ids } : ids });
  }
  /** PUT /admin/users/:id @param {string} id @param {unknown} body `{name}` @param {CallOptions} [opts] */
  putUser(id, body, opts) {
    return this.#admin(`/admin/users/${id}`, { ...opts, method: "PUT", body });
  }
  /** DELETE /admin/users/:id (the whole account) @param {string} id the account's userId @param {CallOptions} [opts] */
  deleteUser(id, opts) {
    return this.#admin(`/admin/users/${id}`, { ...opts, method: "DELETE" });
  }

  // --- fixtures ----------------------------------------------------------------------------
  /**
   * Mints a session through POST /sessions.
   * @param {{ userId?: string, email?: string }} [who]
   * @returns {Promise<MintedSession>}
   */
  async mintSession({ userId = uid("s"), email = `${userId}@example.com` } = {}) {
    const r = await this.createSession({ userId, email }, { client: this.newClient() });
    if (r.status !== 201) throw new Error(`setup: POST /sessions → ${r.status} ${r.text}`);
    const { sessionId: id, createdAt, expiresAt, idleExpiresAt } = r.body;
    return { id, userId, email, hash: sha256(id), createdAt, expiresAt, idleExpiresAt };
  }
  /**
   * Mints a session and reads its handle (what the listing shows) from D1.
   * @param {{ userId?: string, email?: string }} [who]
   * @returns {Promise<MintedSession & { handle: string }>}
   */
  async mintSessionWithHandle(who) {
    const s = await this.mintSession(who);
    return { ...s, handle: (await this.sessionRow(s.hash)).handle };
  }
  /**
   * Creates a profile through PUT /admin/users/:id.
   * @param {string} [id] @param {string} [name] @returns {Promise<User>}
   */
  async seedUser(id = uid("p"), name = `Name of ${id}`) {
    const r = await this.putUser(id, { name });
    if (r.status !== 200) throw new Error(`setup: PUT /admin/users → ${r.status} ${r.text}`);
    return r.body;
  }
  /**
   * Stores the SWR copy `user:<id>` ({data, cachedAt, ttl}) as if cached `ageMs` ago.
   * @param {string} id @param {{ ageMs?: number, ttl?: number, data?: User }} [options] @returns {Promise<User>}
   */
  async seedCachedUser(id, { ageMs = 0, ttl = 300, data } = {}) {
    const now = Date.now();
    const user = data ?? { id, name: `Cached ${id}`, updatedAt: now - 10_000 };
    await this.kv.put(`user:${id}`, JSON.stringify({ data: user, cachedAt: now - ageMs, ttl }));
    return user;
  }
  /**
   * A session that exists only in KV (`session:<sha256 of id>` → its view), as copies were
   * written before idle deadlines existed (no `idleExpiresAt`: its idle deadline is its
   * absolute one).
   * @param {string} [userId]
   * @returns {Promise<{ id: string, userId: string, view: SessionView }>}
   */
  async seedKvOnlySession(userId = uid("k")) {
    const id = unknownSessionId();
    const now = Date.now();
    const view = { userId, email: `${userId}@example.com`, createdAt: now, expiresAt: now + HOUR_MS };
    await this.kv.put(`session:${sha256(id)}`, JSON.stringify(view));
    return { id, userId, view };
  }
  /**
   * A session minted elsewhere earlier: its D1 row with the deadlines given (no
   * `idleExpiresAt`: NULL, which reads as the absolute deadline) and, unless `copy` is false,
   * its KV copy (`session:<hash>`, the view as value and metadata, an hour's TTL), whose view
   * may claim other values (`copy: {…}` overrides).
   * @param {{ userId?: string, createdAt?: number, expiresAt?: number, idleExpiresAt?: number, copy?: Partial<SessionView> | false }} [options]
   * @returns {Promise<SeededSession>}
   */
  async seedSession({ userId = uid("seeded"), createdAt = Date.now(), expiresAt = createdAt + WEEK_MS, idleExpiresAt, copy = {} } = {}) {
    const id = unknownSessionId();
    const hash = sha256(id);
    const email = `${userId}@example.com`;
    await this.db
      .prepare("INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at, idle_expires_at) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(hash, userId, email, createdAt, expiresAt, idleExpiresAt ?? null)
      .run();
    /** @type {SessionView} */
    const view = { userId, email, createdAt, expiresAt, ...(idleExpiresAt !== undefined && { idleExpiresAt }) };
    if (copy) await this.putSessionCopy(hash, { ...view, ...copy });
    return { id, hash, userId, view };
  }
  /**
   * Writes a session's KV copy (`session:<hash>`: the view as value and metadata, an hour's TTL).
   * @param {string} hash @param {Partial<SessionView>} view
   */
  async putSessionCopy(hash, view) {
    await this.kv.put(`session:${hash}`, JSON.stringify(view), { metadata: view, expirationTtl: 3600 });
  }

  // --- stored state --------------------------------------------------------------------------
  /** A user's preferences row (theme, language, notifications, version), or null. @param {string} userId @returns {Promise<any>} */
  prefsRow(userId) {
    return this.db.prepare("SELECT * FROM preferences WHERE user_id = ?").bind(userId).first();
  }
  /** A session's D1 row by its hash, or null. @param {string} hash @returns {Promise<any>} */
  sessionRow(hash) {
    return this.db.prepare("SELECT * FROM sessions WHERE id_hash = ?").bind(hash).first();
  }
  /** A profile's D1 row (id, name, updated_at), or null. @param {string} id @returns {Promise<any>} */
  userRow(id) {
    return this.db.prepare("SELECT id, name, updated_at FROM users WHERE id = ?").bind(id).first();
  }
  /** How many session rows a user has. @param {string} userId @returns {Promise<number>} */
  async sessionCount(userId) {
    return (await this.db.prepare("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first()).n;
  }
  /** The KV listing entry ({name, expiration, metadata}) of exactly `key`, or undefined. @param {string} key @returns {Promise<any>} */
  async kvEntry(key) {
    const l = await this.kv.list({ prefix: key });
    return l.keys.find((/** @type {{ name: string }} */ k) => k.name === key);
  }
  /** A KV value parsed as JSON, or null when absent. @param {string} key @returns {Promise<any>} */
  async kvJson(key) {
    const text = await this.kv.get(key);
    return text === null ? null : JSON.parse(text);
  }
  /** GET /sessions/current with `id` from a fresh client; returns the status. @param {string} id */
  async sessionStatus(id) {
    return (await this.getCurrentSession(id, { client: this.newClient() })).status;
  }
}

export { ADMIN_TOKEN };
