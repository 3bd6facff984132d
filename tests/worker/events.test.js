// @ts-check
// OFREP change notification (ADR-0008) in the built Worker in workerd with real local KV and
// D1: bulk answers name the stream, GET /ofrep/v1/events sends server-sent events, an admin
// write is announced with its version, and a bulk request prompted by an event gets the new
// values. The stream's timing (5 s ticks, 25 s keep-alive, 10 minute lifetime) is the
// domain's, unit-tested in src/domain/events.rs without waiting: here a test waits only for
// an event the Worker must send, never for time to pass.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError } from "../helpers.js";
import { HIGH, TestApp, spawnApp } from "../app.js";

const CONFIG = { ...HIGH, featureFlags: { banner: { variants: { a: "A", b: "B" }, defaultVariant: "a" } } };
/** The Done-when bound: an admin change is announced within 15 s. */
const ANNOUNCED_WITHIN_MS = 15_000;

/** @type {TestApp} */
let w;
beforeAll(async () => {
  w = await spawnApp({ seedConfig: CONFIG, vars: { ALLOWED_ORIGINS: "https://app.example" } });
});
afterAll(() => w?.dispose());

/**
 * A reader of an event stream's body: `next()` resolves with the next event (its fields) or
 * comment block, as the SSE parser of a client would split them.
 * @param {Response} res
 */
function events(res) {
  if (!res.body) throw new Error("no body");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    /** @returns {Promise<Record<string, string>>} */
    async next() {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          /** @type {Record<string, string>} */
          const fields = {};
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            const name = colon < 0 ? line : line.slice(0, colon);
            fields[name] = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          }
          return fields;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended");
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** The served config version, from GET /config's ETag. */
const served = async () => Number((await w.getConfig()).res.headers.get("ETag")?.replaceAll('"', ""));

describe("eventStreams in bulk answers", () => {
  it("name this Worker's own stream as an endpoint, with the inactivity delay", async () => {
    const r = await w.evaluateFlags({ context: { targetingKey: "u1" } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.eventStreams).toEqual([{ type: "sse", endpoint: { requestUri: "/ofrep/v1/events" }, inactivityDelaySec: 120 }]);
  });
});

describe("GET /ofrep/v1/events", () => {
  it("is an event stream that first announces the served version, with its id and etag", async () => {
    const version = await served();
    const res = await w.flagEvents();
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/event-stream");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    const stream = events(res);
    expect(await stream.next()).toEqual({ retry: "5000" });
    const first = await stream.next();
    expect(first).toMatchObject({ id: String(version), event: "message" });
    expect(JSON.parse(first.data)).toEqual({ type: "refetchEvaluation", etag: `"${version}"` });
    await stream.cancel();
  });

  it("announces an admin write, and the bulk request it prompts (flagConfigEtag) has the new values", async () => {
    const version = await served();
    const res = await w.flagEvents(String(version));
    const stream = events(res);
    expect(await stream.next()).toEqual({ retry: "5000" });
    const before = Date.now();
    const p = await w.patchConfig({ featureFlags: { banner: { variants: { a: "A", b: "B" }, defaultVariant: "b" } } });
    expect(p.status, p.text).toBe(200);
    const next = Number(p.res.headers.get("ETag")?.replaceAll('"', ""));
    expect(next).toBeGreaterThan(version);
    let event;
    do event = await stream.next();
    while (!event.id);
    expect(Date.now() - before).toBeLessThan(ANNOUNCED_WITHIN_MS);
    expect(event.id).toBe(String(next));
    const etag = JSON.parse(event.data).etag;
    expect(etag).toBe(`"${next}"`);
    const r = await w.evaluateFlags({ context: { targetingKey: "u1" } }, { query: { flagConfigEtag: etag } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.metadata.configVersion).toBe(next);
    expect(r.body.flags.find((/** @type {any} */ f) => f.key === "banner")).toMatchObject({ value: "B", variant: "b" });
    await stream.cancel();
  }, ANNOUNCED_WITHIN_MS + 5_000);

  it("announces a schedule entry taking effect: the version that records it", async () => {
    // Version 1 was written two minutes ago; its flag's new definition took effect a second ago.
    const doc = { ...HIGH, featureFlags: { banner: { variants: { a: "A" }, defaultVariant: "a", schedule: [{ at: Date.now() - 1000, set: { variants: { c: "C" }, defaultVariant: "c" } }] } } };
    const e = await spawnApp({ seedConfig: HIGH });
    try {
      await e.db.prepare("INSERT INTO config_history (version, at, actor, action, base_version, change) VALUES (1, ?1, 'admin', 'put', 0, ?2)")
        .bind(Date.now() - 120_000, JSON.stringify(doc)).run();
      await e.kv.put("config:app", JSON.stringify(doc), { metadata: { version: 1 } });
      const stream = events(await e.flagEvents("1"));
      expect(await stream.next()).toEqual({ retry: "5000" });
      let event;
      do event = await stream.next();
      while (!event.id);
      expect(event.id).toBe("2");
      const r = await e.evaluateFlags({ context: {} }, { query: { flagConfigEtag: JSON.parse(event.data).etag } });
      expect(r.body.metadata.configVersion).toBe(2);
      expect(r.body.flags.find((/** @type {any} */ f) => f.key === "banner")).toMatchObject({ value: "C", variant: "c" });
      expect((await e.getConfigHistory({ limit: 1 })).body.entries[0]).toMatchObject({ version: 2, actor: "schedule" });
      await stream.cancel();
    } finally {
      await e.dispose();
    }
  }, ANNOUNCED_WITHIN_MS + 5_000);

  it("tells a client reconnecting with the served version's id nothing at once; an unknown id is told", async () => {
    const version = await served();
    const known = events(await w.flagEvents(String(version)));
    expect(await known.next()).toEqual({ retry: "5000" });
    await known.cancel();
    const unknown = events(await w.flagEvents("not-a-version"));
    expect(await unknown.next()).toEqual({ retry: "5000" });
    expect((await unknown.next()).id).toBe(String(version));
    await unknown.cancel();
  });

  it("HEAD gets the headers and no stream; other methods are 405", async () => {
    const head = await w.fetch("/ofrep/v1/events", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Type")).toBe("text/event-stream");
    expect(await head.text()).toBe("");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await w.json("/ofrep/v1/events", { method });
      expectError(expect, r, 405, "method_not_allowed");
      expect(r.res.headers.get("Allow")).toMatch(/GET/);
    }
  });

  it("is open to browsers of an allowed origin (CORS), as EventSource asks", async () => {
    const res = await w.fetch("/ofrep/v1/events", { headers: { Origin: "https://app.example" } });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example");
    await res.body?.cancel();
  });

  it("is closed during maintenance, as the other OFREP routes are", async () => {
    const e = await spawnApp({ seedConfig: { ...CONFIG, maintenanceMode: true } });
    try {
      const r = await e.json("/ofrep/v1/events");
      expectError(expect, r, 503, "maintenance");
    } finally {
      await e.dispose();
    }
  });
});
