// The admin session list gives each session a handle: neither the session id nor its hash,
// nothing that authenticates. DELETE /admin/sessions/:handle revokes that one session (D1 and
// its KV copy); repeating it answers the same 204; an unknown handle is 404; bad input is
// 400/401 and changes nothing.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, expectError } from "../helpers.js";

let w;
beforeAll(async () => {
  w = await boot({ seedConfig: { rateLimits: { default: 100000 } } });
});
afterAll(() => w?.dispose());

let seq = 0;
const uid = (tag) => `${tag}_${Date.now().toString(36)}_${++seq}`;
const sha256 = (s) => createHash("sha256").update(s).digest("hex");

async function mint(userId) {
  const r = await w.json("/sessions", { method: "POST", admin: true, body: { userId, email: `${userId}@example.com` } });
  expect(r.status, r.text).toBe(201);
  return r.body.sessionId;
}

/**
 * The handles the listing shows for `userId`, by session id (matched through D1, where the
 * row of each id's hash holds its handle), and the listing's text.
 */
async function handles(userId, ids) {
  const r = await w.json(`/admin/sessions?userId=${userId}`, { admin: true });
  expect(r.status, r.text).toBe(200);
  const out = {};
  for (const id of ids) {
    const row = await w.db.prepare("SELECT handle FROM sessions WHERE id_hash = ?").bind(sha256(id)).first();
    out[id] = row.handle;
  }
  expect(r.body.sessions.map((s) => s.handle).sort()).toEqual(Object.values(out).sort());
  return { out, text: r.text };
}

describe("session handles", () => {
  it("the listing shows a 32-hex handle per session that is neither the id nor its hash", async () => {
    const userId = uid("h");
    const ids = [await mint(userId), await mint(userId)];
    const { out, text } = await handles(userId, ids);
    for (const id of ids) {
      expect(out[id]).toMatch(/^[0-9a-f]{32}$/);
      expect(text).not.toContain(id);
      expect(text).not.toContain(sha256(id));
      expect(sha256(id)).not.toContain(out[id]);
    }
    expect(new Set(Object.values(out)).size).toBe(2);
    // A handle does not authenticate.
    expectError(expect, await w.json("/sessions/current", { session: out[ids[0]] }), 401, "unauthorized");
  });

  it("DELETE /admin/sessions/:handle revokes that one session, in D1 and KV", async () => {
    const userId = uid("one");
    const [a, b] = [await mint(userId), await mint(userId)];
    const { out } = await handles(userId, [a, b]);
    const r = await w.fetch(`/admin/sessions/${out[a]}`, { method: "DELETE", admin: true });
    expect(r.status).toBe(204);
    expect(await r.text()).toBe("");
    expect(r.headers.get("Cache-Control")).toBe("no-store");
    expectError(expect, await w.json("/sessions/current", { session: a }), 401, "unauthorized");
    expect(await w.kv.get(`session:${sha256(a)}`)).toBeNull();
    const row = await w.db.prepare("SELECT revoked_at FROM sessions WHERE id_hash = ?").bind(sha256(a)).first();
    expect(row.revoked_at).toBeGreaterThan(0);
    expect((await w.json("/sessions/current", { session: b })).status).toBe(200);
    const listed = await w.json(`/admin/sessions?userId=${userId}`, { admin: true });
    expect(listed.body.sessions.map((s) => s.handle)).toEqual([out[b]]);
  });

  it("repeating the DELETE answers the same, and keeps the first revocation time", async () => {
    const userId = uid("again");
    const id = await mint(userId);
    const { out } = await handles(userId, [id]);
    const first = await w.fetch(`/admin/sessions/${out[id]}`, { method: "DELETE", admin: true });
    const at = (await w.db.prepare("SELECT revoked_at FROM sessions WHERE id_hash = ?").bind(sha256(id)).first()).revoked_at;
    const second = await w.fetch(`/admin/sessions/${out[id]}`, { method: "DELETE", admin: true });
    expect([first.status, second.status]).toEqual([204, 204]);
    const again = (await w.db.prepare("SELECT revoked_at FROM sessions WHERE id_hash = ?").bind(sha256(id)).first()).revoked_at;
    expect(again).toBe(at);
  });

  it("an unknown handle is 404", async () => {
    expectError(expect, await w.json(`/admin/sessions/${"0".repeat(32)}`, { method: "DELETE", admin: true }), 404, "not_found");
  });

  describe("bad input changes nothing", () => {
    let userId, id, handle;
    beforeAll(async () => {
      userId = uid("bad");
      id = await mint(userId);
      handle = (await handles(userId, [id])).out[id];
    });
    const stillActive = async () => expect((await w.json("/sessions/current", { session: id })).status).toBe(200);

    it("no Authorization, a wrong token or a session token: 401", async () => {
      for (const opts of [{}, { admin: "wrong-token" }, { session: id }]) {
        expectError(expect, await w.json(`/admin/sessions/${handle}`, { method: "DELETE", ...opts }), 401, "unauthorized");
      }
      await stillActive();
    });

    it("a malformed handle (the session id, its hash, uppercase, short): 400 naming the handle", async () => {
      for (const bad of [id, sha256(id), handle.toUpperCase(), handle.slice(1), `${handle}0`]) {
        const body = expectError(expect, await w.json(`/admin/sessions/${bad}`, { method: "DELETE", admin: true }), 400, "invalid_request");
        expect(body.error).toMatch(/^handle/);
      }
      await stillActive();
    });

    it("another method: 405 with Allow", async () => {
      const r = await w.json(`/admin/sessions/${handle}`, { admin: true });
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toBe("DELETE");
      await stillActive();
    });
  });
});
