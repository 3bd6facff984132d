// The typed test client (zero2prod's TestApp): `spawnApp()` boots the built Worker through
// helpers.js `boot()` (so every response is checked against docs/openapi.json) and returns
// a TestApp with one method per operation of the document (named by its operationId),
// fixtures that create state through the API or seed it in storage with the age a test
// needs, and readers of the stored rows. Ids from `uid()` are unique per test run.
import { createHash, randomBytes } from "node:crypto";
import { ADMIN_TOKEN, boot } from "./helpers.js";

/**
 * @typedef {{ admin?: boolean | string, session?: string, client?: string, headers?: Record<string, string> }} CallOptions
 *   `admin`: send the admin token (`true`) or this token; `session`: a session id as Bearer;
 *   `client`: the CF-Connecting-IP; admin operations send the admin token unless `admin: false`.
 * @typedef {{ status: number, body: any, text: string, res: Response }} Answer
 * @typedef {{ theme: "light" | "dark", language: string, notifications: boolean }} Prefs
 * @typedef {{ id: string, name: string, updatedAt: number }} User
 * @typedef {{ id: string, userId: string, email: string, hash: string, createdAt: number, expiresAt: number, idleExpiresAt: number }} MintedSession
 */

const RUN = randomBytes(3).toString("hex");
let seq = 0;

/** A fresh id, valid as a userId and as a profile id, unique within the test run. */
export const uid = (tag = "u") => `${tag}_${RUN}_${++seq}`;
/** The stored form of a session id. */
export const sha256 = (s) => createHash("sha256").update(s).digest("hex");
/** A well-formed session id (43 base64url characters) that no one minted. */
export const unknownSessionId = () => randomBytes(32).toString("base64url");

/** Boots a Worker (options as helpers.js `boot`) and returns its client. */
export async function spawnApp(options) {
  return new TestApp(await boot(options));
}

export class TestApp {
  /** @param {Awaited<ReturnType<typeof boot>>} w */
  constructor(w) {
    this.w = w;
    this.mf = w.mf;
    /** Local KV (`CACHE`), or null when booted without it. */
    this.kv = w.kv;
    /** Local D1 (`DB`), or null when booted without it. */
    this.db = w.db;
  }

  uid(tag) {
    return uid(tag);
  }
  /** This app's default client address (CF-Connecting-IP). */
  get client() {
    return this.w.client;
  }
  newClient() {
    return this.w.newClient();
  }
  /** A plain HTTP/1.1 request over a kept-alive connection (methods fetch() refuses, such as TRACE; bulk loads). */
  raw(method, path, headers, body) {
    return this.w.raw(method, path, headers, body);
  }
  /** @returns {Promise<Response>} */
  fetch(path, opts) {
    return this.w.fetch(path, opts);
  }
  /** @returns {Promise<Answer>} */
  json(path, opts) {
    return this.w.json(path, opts);
  }
  dispose() {
    return this.w.dispose();
  }

  #admin(path, opts = {}) {
    return this.json(path, { ...opts, admin: opts.admin ?? true });
  }

  // --- one method per operation (operationId) --------------------------------------------
  /** GET / (the index) @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getIndex(opts) {
    return this.json("/", opts);
  }
  /** GET /health; `{deep: 1}` asks for the admin's set-up report (send `admin: true`) @param {{ deep?: string | number }} [query] @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getHealth(query = {}, opts) {
    return this.json(`/health${queryString(query)}`, opts);
  }
  /** GET /config @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getConfig(opts) {
    return this.json("/config", opts);
  }
  /** GET /flags/:name @param {string} name @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getFlag(name, opts) {
    return this.json(`/flags/${name}`, opts);
  }
  /** POST /ofrep/v1/evaluate/flags/:key @param {string} key @param {object | string} body `{context}` @param {CallOptions} [opts] @returns {Promise<Answer>} */
  evaluateFlag(key, body, opts) {
    return this.json(`/ofrep/v1/evaluate/flags/${key}`, { ...opts, method: "POST", body });
  }
  /** POST /ofrep/v1/evaluate/flags @param {object | string} body `{context}` @param {CallOptions} [opts] @returns {Promise<Answer>} */
  evaluateFlags(body, opts) {
    return this.json("/ofrep/v1/evaluate/flags", { ...opts, method: "POST", body });
  }
  /** GET /admin/config (D1, with ETag) @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getAdminConfig(opts) {
    return this.#admin("/admin/config", opts);
  }
  /** GET /admin/config/history @param {{ cursor?: string, limit?: number | string }} [query] @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getConfigHistory(query = {}, opts) {
    return this.#admin(`/admin/config/history${queryString(query)}`, opts);
  }
  /** POST /admin/config/rollback @param {{ version: number } | string} body @param {CallOptions} [opts] @returns {Promise<Answer>} */
  rollbackConfig(body, opts) {
    return this.#admin("/admin/config/rollback", { ...opts, method: "POST", body });
  }
  /** PUT /admin/config @param {object | string} doc @param {CallOptions} [opts] @returns {Promise<Answer>} */
  replaceConfig(doc, opts) {
    return this.#admin("/admin/config", { ...opts, method: "PUT", body: doc });
  }
  /** PATCH /admin/config @param {object | string} patch @param {CallOptions} [opts] @returns {Promise<Answer>} */
  patchConfig(patch, opts) {
    return this.#admin("/admin/config", { ...opts, method: "PATCH", body: patch });
  }
  /** POST /sessions @param {{ userId: string, email: string } | string} body @param {CallOptions} [opts] @returns {Promise<Answer>} */
  createSession(body, opts) {
    return this.#admin("/sessions", { ...opts, method: "POST", body });
  }
  /** GET /sessions/current @param {string} sessionId @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getCurrentSession(sessionId, opts) {
    return this.json("/sessions/current", { session: sessionId, ...opts });
  }
  /** DELETE /sessions/current @param {string} sessionId @param {CallOptions} [opts] @returns {Promise<Answer>} */
  logout(sessionId, opts) {
    return this.json("/sessions/current", { session: sessionId, ...opts, method: "DELETE" });
  }
  /** GET /admin/sessions @param {{ userId?: string, cursor?: string, limit?: number | string }} [query] @param {CallOptions} [opts] @returns {Promise<Answer>} */
  listSessions(query = {}, opts) {
    return this.#admin(`/admin/sessions${queryString(query)}`, opts);
  }
  /** DELETE /admin/users/:userId/sessions @param {string} userId @param {CallOptions} [opts] @returns {Promise<Answer>} */
  revokeUserSessions(userId, opts) {
    return this.#admin(`/admin/users/${userId}/sessions`, { ...opts, method: "DELETE" });
  }
  /** DELETE /admin/sessions/:handle @param {string} handle from the listing @param {CallOptions} [opts] @returns {Promise<Answer>} */
  revokeSession(handle, opts) {
    return this.#admin(`/admin/sessions/${handle}`, { ...opts, method: "DELETE" });
  }
  /** GET /prefs (send `headers: {"Prefs-Version": v}` to read v or newer) @param {string} sessionId @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getPrefs(sessionId, opts) {
    return this.json("/prefs", { session: sessionId, ...opts });
  }
  /** PATCH /prefs @param {string} sessionId @param {Partial<Prefs> | string} patch @param {CallOptions} [opts] @returns {Promise<Answer>} */
  patchPrefs(sessionId, patch, opts) {
    return this.json("/prefs", { session: sessionId, ...opts, method: "PATCH", body: patch });
  }
  /** GET /users/:id @param {string} id @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getUser(id, opts) {
    return this.json(`/users/${id}`, opts);
  }
  /** POST /users/batch @param {string[]} ids @param {CallOptions} [opts] @returns {Promise<Answer>} */
  getUsers(ids, opts) {
    return this.json("/users/batch", { ...opts, method: "POST", body: { ids } });
  }
  /** PUT /admin/users/:id @param {string} id @param {{ name: string } | string} body @param {CallOptions} [opts] @returns {Promise<Answer>} */
  putUser(id, body, opts) {
    return this.#admin(`/admin/users/${id}`, { ...opts, method: "PUT", body });
  }
  /** DELETE /admin/users/:id (the whole account) @param {string} id the account's userId @param {CallOptions} [opts] @returns {Promise<Answer>} */
  deleteUser(id, opts) {
    return this.#admin(`/admin/users/${id}`, { ...opts, method: "DELETE" });
  }

  // --- fixtures ----------------------------------------------------------------------------
  /** Mints a session through POST /sessions. @returns {Promise<MintedSession>} */
  async mintSession({ userId = uid("s"), email = `${userId}@example.com` } = {}) {
    const r = await this.createSession({ userId, email }, { client: this.newClient() });
    if (r.status !== 201) throw new Error(`setup: POST /sessions → ${r.status} ${r.text}`);
    const { sessionId: id, createdAt, expiresAt, idleExpiresAt } = r.body;
    return { id, userId, email, hash: sha256(id), createdAt, expiresAt, idleExpiresAt };
  }
  /** Mints a session and reads its handle (what the listing shows) from D1. @returns {Promise<MintedSession & { handle: string }>} */
  async mintSessionWithHandle(who) {
    const s = await this.mintSession(who);
    return { ...s, handle: (await this.sessionRow(s.hash)).handle };
  }
  /** Creates a profile through PUT /admin/users/:id. @returns {Promise<User>} */
  async seedUser(id = uid("p"), name = `Name of ${id}`) {
    const r = await this.putUser(id, { name });
    if (r.status !== 200) throw new Error(`setup: PUT /admin/users → ${r.status} ${r.text}`);
    return r.body;
  }
  /** Stores the SWR copy `user:<id>` ({data, cachedAt, ttl}) as if cached `ageMs` ago. @returns {Promise<User>} */
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
   */
  async seedKvOnlySession(userId = uid("k")) {
    const id = unknownSessionId();
    const now = Date.now();
    const view = { userId, email: `${userId}@example.com`, createdAt: now, expiresAt: now + 3600_000 };
    await this.kv.put(`session:${sha256(id)}`, JSON.stringify(view));
    return { id, userId, view };
  }

  // --- stored state --------------------------------------------------------------------------
  prefsRow(userId) {
    return this.db.prepare("SELECT theme, language, notifications, version FROM preferences WHERE user_id = ?").bind(userId).first();
  }
  sessionRow(hash) {
    return this.db.prepare("SELECT * FROM sessions WHERE id_hash = ?").bind(hash).first();
  }
  userRow(id) {
    return this.db.prepare("SELECT id, name FROM users WHERE id = ?").bind(id).first();
  }
  async sessionCount(userId) {
    return (await this.db.prepare("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ?").bind(userId).first()).n;
  }
  /** GET /sessions/current with `id` from a fresh client; returns the status. */
  async sessionStatus(id) {
    return (await this.getCurrentSession(id, { client: this.newClient() })).status;
  }
}

/** `?k=v&…` for the entries of `query`, or "" when it has none. */
function queryString(query) {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  return q ? `?${q}` : "";
}

export { ADMIN_TOKEN };
