// @ts-check
// The OpenFeature project's own OFREP providers against the built Worker in workerd: the
// server provider (@openfeature/ofrep-provider, one POST /ofrep/v1/evaluate/flags/:key per
// evaluation, through the OpenFeature server SDK) and the web provider
// (@openfeature/ofrep-web-provider, POST /ofrep/v1/evaluate/flags for every flag at once, a
// cache answered from, If-None-Match on every refetch, through the OpenFeature web SDK).
//
// No port: both providers take a `fetchImplementation`, and `fetchInto` below hands each of
// their requests to the booted app (TestApp.fetch, Miniflare's dispatchFetch), method, headers
// and body as the provider made them, so every exchange is checked against docs/openapi.json
// like any other, and recorded for the tests to read (what was sent, what was answered).
//
// The web provider runs in Node as it is: it touches browser globals only for its persisted
// cache (`localStorage`), the page's visibility (`document`, checked with typeof) and server-sent
// events (`EventSource`, when an answer offers event streams, as this Worker's do: Node has none,
// so the provider skips them, except in the one test that sets undici's, a standard
// implementation, as the global). Most tests turn the persisted cache off (`cacheMode: "disabled"`); the one test of the
// browser's default mode (`local-cache-first`) gives it an in-memory `localStorage` stand-in
// for its duration.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { OpenFeature as ServerOpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OpenFeature as WebOpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
import { EventSource as UndiciEventSource } from "undici";
import { HIGH, TestApp, spawnApp, uid } from "../app.js";

/**
 * @typedef {object} Exchange One request a provider made, and the Worker's answer.
 * @property {string} method
 * @property {string} path With the query, if any.
 * @property {Record<string, unknown> | undefined} context The `context` of the JSON body sent.
 * @property {string | null} ifNoneMatch
 * @property {number} status
 * @property {string | null} etag
 */
/**
 * @typedef {object} Recorder
 * @property {Exchange[]} log Every exchange, in the order the answers came.
 * @property {((e: Exchange) => void) | null} onExchange Called with each exchange once recorded.
 * @property {Promise<void> | null} hold While set, answers wait for it before the provider
 *   sees them (set-up only: a test holds a background refetch to look at the provider first).
 */

const FLAGS = {
  // A boolean flag: on for everyone.
  darkLaunch: true,
  // A string flag with variants and a targeting rule.
  banner: {
    variants: { basic: "Welcome", pro: "Welcome back" },
    defaultVariant: "basic",
    rules: [{ when: { plan: { in: ["pro", "team"] } }, variant: "pro" }],
  },
  // A number flag.
  maxItems: { variants: { few: 10, many: 50 }, defaultVariant: "few" },
  // An object flag.
  theme: { variants: { light: { bg: "#fff", fg: "#111" }, dark: { bg: "#111", fg: "#eee" } }, defaultVariant: "light" },
  // A rollout flag: needs a targetingKey.
  newCheckout: { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 50, off: 50 } },
  // A disabled flag: its default variant, whatever its rules say.
  retired: {
    variants: { old: "old", new: "new" },
    defaultVariant: "old",
    rules: [{ when: { plan: { in: ["pro"] } }, variant: "new" }],
    enabled: false,
  },
};
const CONFIG = { ...HIGH, featureFlags: FLAGS };

/**
 * A fetch for the providers' `fetchImplementation`: the request (a Request, or a URL and
 * init) goes to the booted app as it is (method, headers, body), never to the network; the
 * exchange joins `rec.log`.
 * @param {TestApp} app @param {Recorder} rec @param {string} client its CF-Connecting-IP
 * @returns {typeof fetch}
 */
function fetchInto(app, rec, client) {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (url.origin !== app.origin) throw new Error(`a provider asked for ${req.url}, outside the app (${app.origin})`);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.text();
    /** @type {Record<string, string>} */
    const headers = Object.fromEntries(req.headers);
    const res = await app.fetch(`${url.pathname}${url.search}`, { method: req.method, headers, body, client });
    if (rec.hold) await rec.hold;
    /** @type {Exchange} */
    const exchange = {
      method: req.method,
      path: `${url.pathname}${url.search}`,
      context: body ? JSON.parse(body).context : undefined,
      ifNoneMatch: req.headers.get("If-None-Match"),
      status: res.status,
      etag: res.headers.get("ETag"),
    };
    rec.log.push(exchange);
    rec.onExchange?.(exchange);
    return res;
  };
}

/** @returns {Recorder} */
const recorder = () => ({ log: [], onExchange: null, hold: null });

/**
 * Writes `config` through PUT /admin/config; resolves the new version (its ETag).
 * @param {TestApp} app @param {object} config
 */
async function writeConfig(app, config) {
  const r = await app.replaceConfig(config);
  expect(r.status, r.text).toBe(200);
  return Number(String(r.res.headers.get("ETag")).replaceAll('"', ""));
}

/**
 * A promise and the function that resolves it.
 * @template T
 * @returns {{ promise: Promise<T>, resolve: (v: T) => void }}
 */
function deferred() {
  /** @type {(v: T) => void} */
  let resolve = () => {};
  /** @type {Promise<T>} */
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** A minimal in-memory `localStorage` (the Web Storage API the web provider persists into). */
function memoryStorage() {
  /** @type {Map<string, string>} */
  const items = new Map();
  return {
    get length() {
      return items.size;
    },
    /** @param {number} i */
    key: (i) => [...items.keys()][i] ?? null,
    /** @param {string} k */
    getItem: (k) => items.get(k) ?? null,
    /** @param {string} k @param {string} v */
    setItem: (k, v) => void items.set(k, String(v)),
    /** @param {string} k */
    removeItem: (k) => void items.delete(k),
    clear: () => items.clear(),
  };
}

afterAll(async () => {
  await ServerOpenFeature.clearProviders();
  await WebOpenFeature.clearProviders();
});

describe("the OFREP server provider (OpenFeature server SDK)", () => {
  /** @type {TestApp} */
  let app;
  /** @type {import("@openfeature/server-sdk").Client} */
  let client;
  const rec = recorder();
  let version = 0;
  beforeAll(async () => {
    app = await spawnApp();
    version = await writeConfig(app, CONFIG);
    const domain = uid("server");
    const provider = new OFREPProvider({ baseUrl: app.origin, fetchImplementation: fetchInto(app, rec, app.newClient()) });
    await ServerOpenFeature.setProviderAndWait(domain, provider);
    client = ServerOpenFeature.getClient(domain);
  });
  afterAll(() => app?.dispose());

  it("evaluates every type with the Worker's value, variant, reason and flag metadata", async () => {
    const user = { targetingKey: "server-user-1" };
    const meta = { configVersion: version };
    expect(await client.getBooleanDetails("darkLaunch", false, user)).toEqual({
      flagKey: "darkLaunch", value: true, variant: "on", reason: "STATIC", flagMetadata: meta,
    });
    expect(await client.getStringDetails("banner", "fallback", { ...user, plan: "pro" })).toEqual({
      flagKey: "banner", value: "Welcome back", variant: "pro", reason: "TARGETING_MATCH", flagMetadata: { ...meta, ruleIndex: 0 },
    });
    expect(await client.getStringDetails("banner", "fallback", { ...user, plan: "free" })).toEqual({
      flagKey: "banner", value: "Welcome", variant: "basic", reason: "DEFAULT", flagMetadata: meta,
    });
    expect(await client.getNumberDetails("maxItems", 0, user)).toEqual({
      flagKey: "maxItems", value: 10, variant: "few", reason: "STATIC", flagMetadata: meta,
    });
    expect(await client.getObjectDetails("theme", {}, user)).toEqual({
      flagKey: "theme", value: { bg: "#fff", fg: "#111" }, variant: "light", reason: "STATIC", flagMetadata: meta,
    });
    expect(await client.getStringDetails("retired", "fallback", { ...user, plan: "pro" })).toEqual({
      flagKey: "retired", value: "old", variant: "old", reason: "DISABLED", flagMetadata: meta,
    });
    // One POST per evaluation, with the SDK's context as the body's.
    expect(rec.log.slice(-6).map((e) => [e.method, e.path, e.status])).toEqual(
      ["darkLaunch", "banner", "banner", "maxItems", "theme", "retired"].map((k) => ["POST", `/ofrep/v1/evaluate/flags/${k}`, 200]),
    );
    expect(rec.log.at(-1)?.context).toEqual({ targetingKey: "server-user-1", plan: "pro" });
  });

  it("a rollout answers SPLIT with the variant the Worker gives each targetingKey", async () => {
    /** @type {Record<string, number>} */
    const seen = { on: 0, off: 0 };
    for (let i = 0; i < 20; i++) {
      const targetingKey = `rollout-user-${i}`;
      const d = await client.getBooleanDetails("newCheckout", false, { targetingKey });
      const direct = await app.evaluateFlag("newCheckout", { context: { targetingKey } });
      expect(direct.status).toBe(200);
      expect(d).toEqual({
        flagKey: "newCheckout", value: direct.body.value, variant: direct.body.variant, reason: "SPLIT", flagMetadata: { configVersion: version },
      });
      expect(d.value).toBe(d.variant === "on");
      seen[/** @type {string} */ (d.variant)]++;
    }
    // Sticky bucketing is a function of the key: these 20 keys fall on both sides.
    expect(seen.on).toBeGreaterThan(0);
    expect(seen.off).toBeGreaterThan(0);
  });

  it("a missing flag answers the default with FLAG_NOT_FOUND", async () => {
    const d = await client.getBooleanDetails("noSuchFlag", true, { targetingKey: "server-user-2" });
    expect(d).toMatchObject({ flagKey: "noSuchFlag", value: true, reason: "ERROR", errorCode: "FLAG_NOT_FOUND" });
    expect(d.variant).toBeUndefined();
    expect(rec.log.at(-1)).toMatchObject({ path: "/ofrep/v1/evaluate/flags/noSuchFlag", status: 404 });
  });

  it("a flag of another type answers the default with TYPE_MISMATCH", async () => {
    const user = { targetingKey: "server-user-3" };
    const cases = [
      await client.getBooleanDetails("banner", false, user),
      await client.getStringDetails("maxItems", "fallback", user),
      await client.getNumberDetails("theme", 7, user),
      await client.getObjectDetails("darkLaunch", { fallback: true }, user),
    ];
    const defaults = [false, "fallback", 7, { fallback: true }];
    cases.forEach((d, i) => {
      expect(d, d.flagKey).toMatchObject({ value: defaults[i], reason: "ERROR", errorCode: "TYPE_MISMATCH" });
    });
    // The Worker answered each (200): the mismatch is the provider's judgement of the value.
    expect(rec.log.slice(-4).map((e) => e.status)).toEqual([200, 200, 200, 200]);
  });

  it("a rollout without targetingKey answers the default with TARGETING_KEY_MISSING (docs/API.md)", async () => {
    const d = await client.getBooleanDetails("newCheckout", true, { plan: "pro" });
    expect(d).toMatchObject({ flagKey: "newCheckout", value: true, reason: "ERROR", errorCode: "TARGETING_KEY_MISSING" });
    expect(rec.log.at(-1)).toMatchObject({ path: "/ofrep/v1/evaluate/flags/newCheckout", status: 400, context: { plan: "pro" } });
    // A flag that needs no targetingKey still answers without one.
    expect(await client.getNumberDetails("maxItems", 0, { plan: "pro" })).toMatchObject({ value: 10, reason: "STATIC" });
  });
});

describe("the OFREP web provider (OpenFeature web SDK, static context, bulk evaluation)", () => {
  /**
   * A web SDK client on its own domain, over a web provider whose requests go to `app`; the
   * SDK's `setProviderAndWait` has loaded the flags for `context`.
   * @param {TestApp} app
   * @param {import("@openfeature/web-sdk").EvaluationContext} context
   * @param {Partial<import("@openfeature/ofrep-web-provider").OFREPWebProviderOptions>} [options]
   */
  async function webClient(app, context, options = {}) {
    const rec = recorder();
    const domain = uid("web");
    const provider = new OFREPWebProvider({
      baseUrl: app.origin,
      fetchImplementation: fetchInto(app, rec, app.newClient()),
      cacheMode: "disabled",
      changeDetection: "none",
      disableVisibilityRefresh: true,
      ...options,
    });
    await WebOpenFeature.setProviderAndWait(domain, provider, context);
    return {
      client: WebOpenFeature.getClient(domain),
      provider,
      rec,
      /** @param {import("@openfeature/web-sdk").EvaluationContext} ctx */
      setContext: (ctx) => WebOpenFeature.setContext(domain, ctx),
    };
  }

  it("loads every flag in one bulk request and answers every type from its cache", async () => {
    const app = await spawnApp();
    try {
      const version = await writeConfig(app, CONFIG);
      const meta = { configVersion: version };
      const { client, provider, rec } = await webClient(app, { targetingKey: "web-user-1", plan: "free" });
      expect(rec.log).toHaveLength(1);
      expect(rec.log[0]).toMatchObject({
        method: "POST", path: "/ofrep/v1/evaluate/flags", status: 200, ifNoneMatch: null,
        context: { targetingKey: "web-user-1", plan: "free" },
      });
      expect(rec.log[0].etag).toMatch(/^"[^"]+"$/);
      expect(Object.keys(provider.flagCache).sort()).toEqual(Object.keys(FLAGS).sort());

      expect(client.getBooleanDetails("darkLaunch", false)).toEqual({
        flagKey: "darkLaunch", value: true, variant: "on", reason: "STATIC", flagMetadata: meta,
      });
      expect(client.getStringDetails("banner", "fallback")).toEqual({
        flagKey: "banner", value: "Welcome", variant: "basic", reason: "DEFAULT", flagMetadata: meta,
      });
      expect(client.getNumberDetails("maxItems", 0)).toEqual({
        flagKey: "maxItems", value: 10, variant: "few", reason: "STATIC", flagMetadata: meta,
      });
      expect(client.getObjectDetails("theme", {})).toEqual({
        flagKey: "theme", value: { bg: "#fff", fg: "#111" }, variant: "light", reason: "STATIC", flagMetadata: meta,
      });
      expect(client.getStringDetails("retired", "fallback")).toEqual({
        flagKey: "retired", value: "old", variant: "old", reason: "DISABLED", flagMetadata: meta,
      });
      const direct = await app.evaluateFlag("newCheckout", { context: { targetingKey: "web-user-1" } });
      expect(client.getBooleanDetails("newCheckout", !direct.body.value)).toEqual({
        flagKey: "newCheckout", value: direct.body.value, variant: direct.body.variant, reason: "SPLIT", flagMetadata: meta,
      });
      expect(client.getBooleanDetails("noSuchFlag", true)).toMatchObject({ value: true, reason: "ERROR", errorCode: "FLAG_NOT_FOUND" });
      expect(client.getNumberDetails("banner", 3)).toMatchObject({ value: 3, reason: "ERROR", errorCode: "TYPE_MISMATCH" });
      // Every answer came from the one bulk evaluation.
      expect(rec.log).toHaveLength(1);
    } finally {
      await app.dispose();
    }
  });

  it("server-sent events: the provider connects to the answer's eventStreams and sees an admin change without polling", async () => {
    const app = await spawnApp();
    // The provider builds the stream's URL on its baseUrl (the app's origin, as `fetchInto`
    // expects); undici's EventSource, a standard implementation, is pointed at the runtime's
    // own port for it. Polling is off: only an event can prompt the refetch.
    const runtime = String(await app.mf.ready).replace(/\/$/, "");
    const previous = globalThis.EventSource;
    /** @type {string[]} */
    const streams = [];
    globalThis.EventSource = /** @type {any} */ (
      class extends UndiciEventSource {
        /** @param {string | URL} url @param {any} [init] */
        constructor(url, init) {
          streams.push(new URL(url).pathname);
          super(String(url).replace(app.origin, runtime), init);
        }
      }
    );
    /** @type {OFREPWebProvider | undefined} */
    let open;
    try {
      await writeConfig(app, CONFIG);
      const { client, provider, rec } = await webClient(app, { targetingKey: "sse-user", plan: "free" }, { changeDetection: "sse", pollInterval: 0 });
      open = provider;
      expect(streams).toEqual(["/ofrep/v1/events"]);
      expect(client.getStringValue("banner", "fallback")).toBe("Welcome");
      // The stream first announces the version the provider already has: its refetch is 304.
      await vi.waitFor(() => expect(rec.log.filter((e) => e.path.includes("flagConfigEtag=")).map((e) => e.status)).toEqual([304]), { timeout: 10_000, interval: 20 });
      const changed = new Promise((resolve) => client.addHandler(ProviderEvents.ConfigurationChanged, resolve));
      const version = await writeConfig(app, { ...CONFIG, featureFlags: { ...FLAGS, banner: { ...FLAGS.banner, defaultVariant: "pro" } } });
      await changed;
      expect(client.getStringValue("banner", "fallback")).toBe("Welcome back");
      // The refetch that brought it was the event's: it named the new version.
      const prompted = rec.log.filter((e) => e.path.includes("flagConfigEtag="));
      expect(prompted.map((e) => e.status)).toEqual([304, 200]);
      expect(decodeURIComponent(String(prompted.at(-1)?.path))).toContain(`flagConfigEtag="${version}"`);
    } finally {
      await open?.onClose?.();
      globalThis.EventSource = previous;
      await app.dispose();
    }
  }, 30_000);

  it("a context without targetingKey: the rollout flag answers TARGETING_KEY_MISSING, the others their values", async () => {
    const app = await spawnApp();
    try {
      await writeConfig(app, CONFIG);
      const { client, rec } = await webClient(app, { plan: "team" });
      expect(rec.log.map((e) => e.status)).toEqual([200]);
      expect(client.getBooleanDetails("newCheckout", true)).toMatchObject({ value: true, reason: "ERROR", errorCode: "TARGETING_KEY_MISSING" });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome back", variant: "pro", reason: "TARGETING_MATCH" });
    } finally {
      await app.dispose();
    }
  });

  it("a refetch answers 304 while nothing changed, and the new values after an admin change", async () => {
    const app = await spawnApp();
    try {
      const v1 = await writeConfig(app, CONFIG);
      const context = { targetingKey: "web-user-2", plan: "free" };
      const { client, rec, setContext } = await webClient(app, context);
      const tag1 = rec.log[0].etag;

      await setContext({ ...context }); // the same context again: a refetch
      expect(rec.log[1]).toMatchObject({ ifNoneMatch: tag1, status: 304 });
      expect(client.getNumberDetails("maxItems", 0)).toMatchObject({ value: 10, variant: "few", flagMetadata: { configVersion: v1 } });

      const v2 = await writeConfig(app, {
        ...CONFIG,
        featureFlags: { ...FLAGS, darkLaunch: false, maxItems: { ...FLAGS.maxItems, defaultVariant: "many" } },
      });
      expect(v2).toBeGreaterThan(v1);
      await setContext({ ...context });
      expect(rec.log[2]).toMatchObject({ ifNoneMatch: tag1, status: 200 });
      expect(rec.log[2].etag).not.toBe(tag1);
      expect(client.getBooleanDetails("darkLaunch", true)).toEqual({
        flagKey: "darkLaunch", value: false, variant: "off", reason: "STATIC", flagMetadata: { configVersion: v2 },
      });
      expect(client.getNumberDetails("maxItems", 0)).toMatchObject({ value: 50, variant: "many", flagMetadata: { configVersion: v2 } });

      // An admin change and a new user: the provider drops its ETag and loads the new user's.
      await writeConfig(app, { ...CONFIG, featureFlags: { ...FLAGS, banner: { ...FLAGS.banner, defaultVariant: "pro" } } });
      await setContext({ targetingKey: "web-user-3", plan: "free" });
      expect(rec.log[3]).toMatchObject({ ifNoneMatch: null, status: 200, context: { targetingKey: "web-user-3" } });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome back", variant: "pro", reason: "DEFAULT" });
      expect(client.getBooleanDetails("darkLaunch", false)).toMatchObject({ value: true, variant: "on" });
    } finally {
      await app.dispose();
    }
  });

  it("same targetingKey, changed attribute, old ETag: 200 with the new values (the ETag depends on the context)", async () => {
    const app = await spawnApp();
    try {
      const version = await writeConfig(app, CONFIG);
      const { client, rec, setContext } = await webClient(app, { targetingKey: "web-user-4", plan: "free" });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome", variant: "basic", reason: "DEFAULT" });

      // The provider keeps its ETag when the targetingKey stays: it asks with the old one.
      await setContext({ targetingKey: "web-user-4", plan: "pro" });
      expect(rec.log[1]).toMatchObject({ ifNoneMatch: rec.log[0].etag, context: { targetingKey: "web-user-4", plan: "pro" } });
      expect(rec.log[1].status, "not 304: the old ETag is another context's answer").toBe(200);
      expect(client.getStringDetails("banner", "fallback")).toEqual({
        flagKey: "banner", value: "Welcome back", variant: "pro", reason: "TARGETING_MATCH", flagMetadata: { configVersion: version, ruleIndex: 0 },
      });

      await setContext({ targetingKey: "web-user-4", plan: "free" });
      expect(rec.log[2]).toMatchObject({ ifNoneMatch: rec.log[1].etag, status: 200 });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome", variant: "basic", reason: "DEFAULT" });
    } finally {
      await app.dispose();
    }
  });

  it("over HTTP: the first answer's ETag with a changed attribute is 200 with new values, not 304", async () => {
    const app = await spawnApp();
    try {
      await writeConfig(app, CONFIG);
      const free = { context: { targetingKey: "http-user-1", plan: "free" } };
      const pro = { context: { targetingKey: "http-user-1", plan: "pro" } };
      /** @param {import("../helpers.js").Answer} r @param {string} key */
      const flag = (r, key) => r.body.flags.find((/** @type {{ key: string }} */ f) => f.key === key);

      const first = await app.evaluateFlags(free);
      expect(first.status, first.text).toBe(200);
      const tag = String(first.res.headers.get("ETag"));
      expect(flag(first, "banner")).toMatchObject({ value: "Welcome", variant: "basic" });

      const second = await app.evaluateFlags(pro, { headers: { "If-None-Match": tag } });
      expect(second.status, "a changed attribute under the first answer's ETag").toBe(200);
      expect(flag(second, "banner")).toMatchObject({ value: "Welcome back", variant: "pro", reason: "TARGETING_MATCH" });
      const secondTag = String(second.res.headers.get("ETag"));
      expect(secondTag).not.toBe(tag);

      // Each context's own ETag still matches its own answer.
      expect((await app.evaluateFlags(pro, { headers: { "If-None-Match": secondTag } })).status).toBe(304);
      expect((await app.evaluateFlags(free, { headers: { "If-None-Match": tag } })).status).toBe(304);
    } finally {
      await app.dispose();
    }
  });

  it("default cache mode (local-cache-first, localStorage stand-in): the cached answer is revalidated with its ETag and replaced by the new context's values", async () => {
    vi.stubGlobal("localStorage", memoryStorage());
    const app = await spawnApp();
    try {
      await writeConfig(app, CONFIG);
      const { client, rec, setContext } = await webClient(app, { targetingKey: "web-user-5", plan: "free" }, { cacheMode: "local-cache-first" });
      expect(rec.log.map((e) => e.status)).toEqual([200]);
      expect(globalThis.localStorage.length, "the answer was persisted").toBe(1);

      // Same targetingKey, another plan: the provider's persisted cache is keyed by the
      // targetingKey, so it answers at once from the free plan's entry (CACHED) and revalidates
      // it in the background with that entry's ETag. Hold that answer to look first.
      const held = deferred();
      rec.hold = held.promise;
      /** @type {{ promise: Promise<string>, resolve: (v: string) => void }} */
      const settled = deferred();
      client.addHandler(ProviderEvents.ConfigurationChanged, () => settled.resolve("changed"));
      rec.onExchange = (e) => {
        if (e.status !== 200) settled.resolve(`status ${e.status}`);
      };
      await setContext({ targetingKey: "web-user-5", plan: "pro" });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome", variant: "basic", reason: "CACHED" });

      rec.hold = null;
      held.resolve(undefined);
      expect(await settled.promise, "a 304 here would leave the free plan's values cached for the pro plan").toBe("changed");
      expect(rec.log[1]).toMatchObject({ ifNoneMatch: rec.log[0].etag, status: 200, context: { targetingKey: "web-user-5", plan: "pro" } });
      expect(client.getStringDetails("banner", "fallback")).toMatchObject({ value: "Welcome back", variant: "pro", reason: "TARGETING_MATCH" });
    } finally {
      vi.unstubAllGlobals();
      await app.dispose();
    }
  });
});
