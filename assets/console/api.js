// The console's one way to the Worker: same-origin fetch with the admin token in the
// Authorization header (never in a URL, never logged), and every answer's Server-Timing
// handed to the Cost panel. Cookies go to this origin only: behind Cloudflare Access its
// own cookie is what lets the request through (the Worker reads no cookie on admin routes).

import { alarm } from "./dom.js";

const KEY = "edgestate.adminToken";

/** The admin token, in this tab's sessionStorage only. */
export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

const hooks = { refused() {}, measured() {} };
/** `refused`: an admin call got 401; `measured`: an answer's storage work. */
export function on(event, fn) {
  hooks[event] = fn;
}

/** The KV and D1 work of one answer, from `Server-Timing` (null where it is missing). */
export function storageWork(header) {
  const kv = /kv;desc="reads=(\d+) writes=(\d+) lists=(\d+) deletes=(\d+)";dur=([\d.]+)/.exec(header ?? "");
  const d1 = /d1;desc="queries=(\d+)";dur=([\d.]+)/.exec(header ?? "");
  if (!kv || !d1) return null;
  const [reads, writes, lists, deletes, kvMs] = kv.slice(1).map(Number);
  const [queries, d1Ms] = d1.slice(1).map(Number);
  return { reads, writes, lists, deletes, kvMs, queries, d1Ms };
}

/** The version an `ETag: "N"` names, or null. */
export const versionOf = (etag) => (/^"(\d+)"$/.test(etag ?? "") ? Number(etag.slice(1, -1)) : null);

/**
 * One request. `admin` (default true) sends the stored token; `credential` sends that token
 * instead (signing in); `ifMatch` a version; `body` as JSON. Answers
 * `{status, ok, body, version, cache, work}`; status 0 when the network failed.
 */
export async function call(method, path, { body, ifMatch, admin = true, credential } = {}) {
  const headers = {};
  const bearer = credential ?? (admin ? token.get() : null);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (ifMatch !== undefined && ifMatch !== null) headers["If-Match"] = `"${ifMatch}"`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    return { status: 0, ok: false, body: { error: "The Worker could not be reached." } };
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: `HTTP ${res.status} with a body that is not JSON` };
  }
  const answer = {
    status: res.status,
    ok: res.ok,
    body: parsed,
    version: versionOf(res.headers.get("ETag")),
    cache: res.headers.get("X-Cache"),
    work: storageWork(res.headers.get("Server-Timing")),
  };
  hooks.measured({ method, path, status: res.status, work: answer.work });
  if (res.status === 401 && admin && credential === undefined) hooks.refused();
  return answer;
}

/** The contract's error message of a failed answer. */
export const problem = (answer) => answer.body?.error ?? `HTTP ${answer.status}`;

/** Announces a failed answer (a refused token is already handled by the `refused` hook). */
export function complain(answer, what) {
  if (answer.status !== 401) alarm(`${what}: ${problem(answer)}`);
}
