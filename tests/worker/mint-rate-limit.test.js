// @ts-check
// Rate-limit policy for minting sessions: POST /sessions is admin-only, and the backend that
// calls it is one client, so it is not limited per client address. Under the seed config
// (`sessions`: 10 per minute, strict), 20 admin mints from one address in one minute all
// succeed, while GET /sessions/current keeps its limit.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, expectError } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

/** @type {{ key: string, value: string }[]} */
const seed = JSON.parse(readFileSync(join(ROOT, "seed-data.json"), "utf8"));
const SEED_CONFIG = JSON.parse(/** @type {{ value: string }} */ (seed.find((e) => e.key === "config:app")).value);

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: SEED_CONFIG });
});
afterAll(() => w?.dispose());

describe("POST /sessions and the sessions rate limit", () => {
  it("the seed config limits the sessions group to 10 per minute, strictly", () => {
    expect(SEED_CONFIG.rateLimits.sessions).toBe(10);
    expect(SEED_CONFIG.strictRateLimits).toContain("sessions");
    expect(SEED_CONFIG.rateLimitWindowSeconds).toBe(60);
  });

  it("20 admin mints from one address in one minute all succeed, without rate-limit headers", async () => {
    const client = w.newClient();
    const statuses = [];
    for (let i = 0; i < 20; i++) {
      const r = await w.createSession({ userId: `backend-user-${i}`, email: `u${i}@example.com` }, { client });
      statuses.push(r.status);
      expect(r.res.headers.get("RateLimit-Limit")).toBeNull();
    }
    expect(statuses).toEqual(Array(20).fill(201));
  });

  it("refused mints are not limited either, and stay 401", async () => {
    const client = w.newClient();
    for (let i = 0; i < 12; i++) {
      const r = await w.createSession({ userId: "x", email: "x@example.com" }, { admin: false, client });
      expectError(expect, r, 401, "unauthorized");
    }
  });

  it("GET /sessions/current keeps its limit of 10 per client", async () => {
    const { id } = await w.mintSession({ userId: "reader", email: "r@example.com" });
    const client = w.newClient();
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await w.getCurrentSession(id, { client })).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses[10]).toBe(429);
  });
});
