// @ts-check
// edgestate as a library: examples/embed is a second Worker that verifies edgestate sessions
// in its own handler, reads the config and a flag, rate-limits and caches through edgestate,
// and mounts edgestate's routes beside its own. Built to Wasm by the test command and run
// here in workerd with real local KV and D1.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, expectError } from "../helpers.js";
import { TestApp, spawnApp } from "../app.js";

const SCRIPT = join(ROOT, "examples/embed/build/index.js");
/** @type {TestApp} */
let w;

beforeAll(async () => {
  if (!existsSync(SCRIPT)) throw new Error("examples/embed is not built: run `npm test` (it builds it)");
  w = await spawnApp({
    scriptPath: SCRIPT,
    otherRoutes: true,
    seedConfig: { featureFlags: { newCheckout: true }, rateLimits: { default: 1000, quotes: 3 } },
  });
});
afterAll(() => w?.dispose());

describe("a second Worker embedding edgestate", () => {
  it("mounts edgestate's routes, verifies its sessions, reads its flags, limits and caches", async () => {
    expect((await w.getHealth()).body).toMatchObject({ status: "ok" });
    const minted = await w.createSession({ userId: "embedded", email: "e@example.com" });
    expect(minted.status, minted.text).toBe(201);

    // /me, /feature and /quote are the embedding Worker's own routes, not edgestate's
    // operations: plain requests.
    const me = await w.json("/me", { session: minted.body.sessionId });
    expect(me.status, me.text).toBe(200);
    expect(me.body.hello).toBe("embedded");
    expectError(expect, await w.json("/me"), 401, "unauthorized");

    const feature = await w.json("/feature");
    expect(feature.body).toEqual({ newCheckout: true, maintenanceMode: false });

    const client = w.newClient();
    const first = await w.json("/quote?symbol=ACME", { client });
    expect(first.status, first.text).toBe(200);
    expect(first.body.cache).toBe("MISS");
    const second = await w.json("/quote?symbol=ACME", { client });
    expect(second.body).toEqual({ quote: first.body.quote, cache: "HIT" });
    expect(await w.kv.get("swr:quote:ACME")).toContain('"symbol":"ACME"');
    await w.json("/quote?symbol=ACME", { client });
    expectError(expect, await w.json("/quote?symbol=ACME", { client }), 429, "rate_limited");
  });
});
