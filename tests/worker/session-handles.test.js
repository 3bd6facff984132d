// @ts-check
// The admin session list gives each session a handle: neither the session id nor its hash,
// nothing that authenticates. DELETE /admin/sessions/:handle revokes that one session (D1 and
// its KV copy); repeating it answers the same 204; an unknown handle is 404; bad input is
// 400/401 and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError } from "../helpers.js";
import { TestApp, sha256, spawnApp, uid } from "../app.js";

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: { rateLimits: { default: 100000 } } });
});
afterAll(() => w?.dispose());

/**
 * The handles the listing shows for `userId`, by session id (matched through D1, where the
 * row of each id's hash holds its handle), and the listing's text.
 * @param {string} userId
 * @param {string[]} ids
 */
async function handles(userId, ids) {
  const r = await w.listSessions({ userId });
  expect(r.status, r.text).toBe(200);
  /** @type {Record<string, string>} */
  const out = {};
  for (const id of ids) out[id] = (await w.sessionRow(sha256(id))).handle;
  expect(r.body.sessions.map((/** @type {{ handle: string }} */ s) => s.handle).sort()).toEqual(Object.values(out).sort());
  return { out, text: r.text };
}

describe("session handles", () => {
  it("the listing shows a 32-hex handle per session that is neither the id nor its hash", async () => {
    const userId = uid("h");
    const ids = [(await w.mintSession({ userId })).id, (await w.mintSession({ userId })).id];
    const { out, text } = await handles(userId, ids);
    for (const id of ids) {
      expect(out[id]).toMatch(/^[0-9a-f]{32}$/);
      expect(text).not.toContain(id);
      expect(text).not.toContain(sha256(id));
      expect(sha256(id)).not.toContain(out[id]);
    }
    expect(new Set(Object.values(out)).size).toBe(2);
    // A handle does not authenticate.
    expectError(expect, await w.getCurrentSession(out[ids[0]]), 401, "unauthorized");
  });

  it("DELETE /admin/sessions/:handle revokes that one session, in D1 and KV", async () => {
    const userId = uid("one");
    const [a, b] = [(await w.mintSession({ userId })).id, (await w.mintSession({ userId })).id];
    const { out } = await handles(userId, [a, b]);
    const r = await w.revokeSession(out[a]);
    expect(r.status).toBe(204);
    expect(r.text).toBe("");
    expect(r.res.headers.get("Cache-Control")).toBe("no-store");
    expectError(expect, await w.getCurrentSession(a), 401, "unauthorized");
    expect(await w.kv.get(`session:${sha256(a)}`)).toBeNull();
    expect((await w.sessionRow(sha256(a))).revoked_at).toBeGreaterThan(0);
    expect((await w.getCurrentSession(b)).status).toBe(200);
    const listed = await w.listSessions({ userId });
    expect(listed.body.sessions.map((/** @type {{ handle: string }} */ s) => s.handle)).toEqual([out[b]]);
  });

  it("repeating the DELETE answers the same, and keeps the first revocation time", async () => {
    const userId = uid("again");
    const id = (await w.mintSession({ userId })).id;
    const { out } = await handles(userId, [id]);
    const first = await w.revokeSession(out[id]);
    const at = (await w.sessionRow(sha256(id))).revoked_at;
    const second = await w.revokeSession(out[id]);
    expect([first.status, second.status]).toEqual([204, 204]);
    expect((await w.sessionRow(sha256(id))).revoked_at).toBe(at);
  });

  it("an unknown handle is 404", async () => {
    expectError(expect, await w.revokeSession("0".repeat(32)), 404, "not_found");
  });

  describe("bad input changes nothing", () => {
    /** @type {string} */
    let id;
    /** @type {string} */
    let handle;
    beforeAll(async () => {
      const userId = uid("bad");
      id = (await w.mintSession({ userId })).id;
      handle = (await handles(userId, [id])).out[id];
    });
    const stillActive = async () => expect((await w.getCurrentSession(id)).status).toBe(200);

    it("no Authorization, a wrong token or a session token: 401", async () => {
      for (const opts of [{}, { admin: "wrong-token" }, { session: id }]) {
        expectError(expect, await w.revokeSession(handle, { admin: false, ...opts }), 401, "unauthorized");
      }
      await stillActive();
    });

    it("a malformed handle (the session id, its hash, uppercase, short): 400 naming the handle", async () => {
      for (const bad of [id, sha256(id), handle.toUpperCase(), handle.slice(1), `${handle}0`]) {
        const body = expectError(expect, await w.revokeSession(bad), 400, "invalid_request");
        expect(body.error).toMatch(/^handle/);
      }
      await stillActive();
    });

    it("another method: 405 with Allow", async () => {
      const r = await w.json(`/admin/sessions/${handle}`, { admin: true }); // GET is not declared: the router's 405
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("DELETE");
      await stillActive();
    });
  });
});
