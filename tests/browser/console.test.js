// @ts-check
// The admin console at /console, in Debian's headless Chromium, against the Worker as
// `npm run dev` serves it (tests/browser/harness.js): the console is Workers Static Assets
// with its own security headers, shows nothing but the sign-in form until the admin API
// accepts the token, and each panel does what it says against the real local KV and D1:
// flags, maintenance, refused values at their field, conflicts, history and rollback,
// sessions and revocation, scoped admin tokens (shown once, used, refused once revoked),
// profiles and their cache state, the storage cost of requests.
// It passes axe-core, works from the keyboard and at 375 and 1440 px, shows every column of
// its wide tables at 1280, 1440 and 1920 px, and leaves a screenshot of each panel at 1440 px
// in .edgestate/screenshots/.
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, devServerTurn, eventually } from "../helpers.js";
import { BASE, SHOTS, browser, serve } from "./harness.js";

/** @typedef {import("playwright-core").Page} Page */

const PANELS = ["config", "history", "sessions", "users", "tokens", "cost"];
const ASSETS = join(ROOT, "assets/console");
const AXE = readFileSync(join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8");

/** @type {Awaited<ReturnType<typeof serve>>} */
let dev;
/** @type {Awaited<ReturnType<typeof browser>>} */
let chrome;
let release = () => {};
beforeAll(async () => {
  release = await devServerTurn();
  dev = await serve();
  chrome = await browser();
  mkdirSync(SHOTS, { recursive: true });
}, 300_000);
afterAll(async () => {
  await chrome?.close();
  await dev?.stop();
  release();
});

/** The config's current document and version, from the admin API. */
async function configNow() {
  const r = await dev.app.getAdminConfig();
  expect(r.status).toBe(200);
  return { doc: r.body, version: Number(String(r.res.headers.get("ETag")).replaceAll('"', "")) };
}

/** @param {string} name */
const flagOn = async (name) => (await dev.app.getFlag(name)).body?.enabled;

/**
 * A fresh tab (its sessionStorage empty) on the console; `timeZone` (an IANA name) is the
 * browser's, as for a user there, instead of the machine's.
 * @param {number} [width] @param {number} [height] @param {string} [timeZone]
 */
async function open(width = 1440, height = 900, timeZone) {
  const page = await chrome.context.newPage();
  page.setDefaultTimeout(10_000);
  await page.setViewportSize({ width, height });
  if (timeZone) await (await chrome.context.newCDPSession(page)).send("Emulation.setTimezoneOverride", { timezoneId: timeZone });
  await page.goto(`${BASE}/console`);
  return page;
}

/**
 * A fresh tab, signed in with the token from .dev.vars.
 * @param {number} [width] @param {number} [height] @param {string} [timeZone]
 */
async function signedIn(width, height, timeZone) {
  const page = await open(width, height, timeZone);
  await page.getByLabel("Admin token").fill(dev.token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#app").waitFor({ state: "visible" });
  return page;
}

/** @param {Page} page @param {string} name */
async function panel(page, name) {
  await page.getByRole("link", { name: name[0].toUpperCase() + name.slice(1), exact: true }).click();
  await page.locator(`[data-panel="${name}"]`).waitFor({ state: "visible" });
}

/**
 * Does `action`, then waits until the polite status region (`said`) or the alert region
 * (`alarmed`) says `text`. Both regions are emptied first, so an earlier message with the
 * same words cannot answer for this action.
 * @param {string} region @param {Page} page @param {string | RegExp} text @param {() => Promise<unknown>} action
 */
async function announced(region, page, text, action) {
  await page.evaluate(() => {
    /** @type {HTMLElement} */ (document.getElementById("status")).textContent = "";
    /** @type {HTMLElement} */ (document.getElementById("alert")).textContent = "";
  });
  await action();
  await page.locator(region).filter({ hasText: text }).waitFor();
}
/** @param {Page} page @param {string | RegExp} text @param {() => Promise<unknown>} action */
const said = (page, text, action) => announced("#status", page, text, action);
/** @param {Page} page @param {string | RegExp} text @param {() => Promise<unknown>} action */
const alarmed = (page, text, action) => announced("#alert", page, text, action);

/**
 * Waits until a panel has shown what it loads when opened.
 * @param {Page} page @param {string} name
 */
async function ready(page, name) {
  /** @type {Record<string, string>} */
  const loaded = {
    config: "#flags > tr",
    history: "#history-list > li",
    sessions: "#session-rows > tr",
    users: "#user-form",
    tokens: "#token-rows > tr",
    cost: "#cost-rows > tr",
  };
  await page.locator(loaded[name]).first().waitFor();
}

/**
 * Opens the editor of flag `name` from the list, found by the search.
 * @param {Page} page @param {string} name
 */
async function editFlag(page, name) {
  await page.getByLabel("Search flags by name").fill(name);
  await page.getByRole("button", { name: `Edit flag ${name}`, exact: true }).click();
  await page.getByRole("heading", { name: `Flag ${name}`, exact: true }).waitFor();
}

/**
 * The writes to the config the page sends from now on, as "METHOD path".
 * @param {Page} page
 */
function watchWrites(page) {
  /** @type {string[]} */
  const sent = [];
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (r.method() !== "GET" && path.startsWith("/admin/config")) sent.push(`${r.method()} ${path}`);
  });
  return sent;
}

/**
 * A flag evaluated over OFREP from outside the browser: [status, value, variant, reason, ruleIndex].
 * @param {string} key @param {Record<string, unknown>} context
 */
async function evaluated(key, context) {
  const r = await dev.app.evaluateFlag(key, { context });
  return [r.status, r.body.value, r.body.variant, r.body.reason ?? r.body.errorCode, r.body.metadata?.ruleIndex];
}

/**
 * Mints a session through the admin API.
 * @param {string} userId @param {string} email
 */
async function mint(userId, email) {
  return (await dev.app.mintSession({ userId, email })).id;
}
/** @param {string} id */
const sessionStatus = async (id) => (await dev.app.getCurrentSession(id)).status;

/** The address scoped-token requests come from: a refused token counts against its sender. */
let tokenClient = "";
/**
 * A request to the admin API with `bearer` as its token, by plain fetch from an address of
 * its own (not the browser's). Plain: the exchange is not held to docs/openapi.json; these
 * tests judge the console and what a token it made can do, the contract tests the document.
 * @param {string} bearer @param {string} method @param {string} path
 * @param {{ body?: unknown, headers?: Record<string, string> }} [opts]
 * @returns {Promise<{ status: number, body: any }>}
 */
async function withToken(bearer, method, path, { body, headers = {} } = {}) {
  tokenClient ||= dev.app.newClient();
  /** @type {Record<string, string>} */
  const sent = { Authorization: `Bearer ${bearer}`, "CF-Connecting-IP": tokenClient, ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const res = await fetch(`${BASE}${path}`, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/**
 * The scoped tokens as the admin API lists them (with the admin token).
 * @returns {Promise<{ name: string, scope: string, createdAt: number, createdBy: string }[]>}
 */
async function tokensListed() {
  const r = await withToken(dev.token, "GET", "/admin/tokens");
  expect(r.status).toBe(200);
  return r.body.tokens;
}

/**
 * Creates a token in the Tokens panel; resolves the token as the panel shows it.
 * @param {Page} page @param {string} name @param {"read" | "flags" | "sessions"} scope
 */
async function createToken(page, name, scope) {
  await page.getByLabel("Token name").fill(name);
  await page.getByRole("radio", { name: scope, exact: true }).check();
  await said(page, `Created token ${name} with scope ${scope}.`, () => page.getByRole("button", { name: "Create token" }).click());
  return page.getByLabel("New token", { exact: true }).inputValue();
}

const TOKEN = /^est_[A-Za-z0-9_-]{43}$/;
const FORBIDDEN = "Only the full admin token (or Cloudflare Access) can manage tokens.";

describe("GET /console", () => {
  it("is the console's HTML from Workers Static Assets, with a strict CSP, nosniff and no-referrer", async () => {
    const res = await fetch(`${BASE}/console`); // static assets, not the Worker: a plain request
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy");
    const directives = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "frame-ancestors 'none'",
      "form-action 'none'",
      "require-trusted-types-for 'script'",
    ];
    for (const directive of directives) expect(csp).toContain(directive);
    expect(csp).not.toMatch(/unsafe-|\*|https?:/);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    // Served by Static Assets, not by the Worker (whose answers carry Server-Timing).
    expect(res.headers.get("server-timing")).toBeNull();
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/console/app.js"></script>');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i);
  });

  it("serves every console file with the same headers and its own type", async () => {
    /** @type {Record<string, RegExp>} */
    const types = { js: /^text\/javascript/, css: /^text\/css/, svg: /^image\/svg\+xml/, html: /^text\/html/ };
    for (const file of readdirSync(ASSETS).filter((f) => f !== "index.html")) {
      const res = await fetch(`${BASE}/console/${file}`); // static assets, not the Worker
      expect(res.status, file).toBe(200);
      expect(res.headers.get("content-type"), file).toMatch(types[String(file.split(".").pop())]);
      expect(res.headers.get("content-security-policy"), file).toContain("default-src 'self'");
      expect(res.headers.get("x-content-type-options"), file).toBe("nosniff");
      expect(await res.text(), file).toBe(readFileSync(join(ASSETS, file), "utf8"));
    }
    const slash = await fetch(`${BASE}/console/`, { redirect: "manual" }); // static assets' redirect
    expect([slash.status, slash.headers.get("location")]).toEqual([307, "/console"]);
  });

  it("leaves every other path to the Worker: the index, health, the API and unknown paths", async () => {
    const index = await dev.app.getIndex();
    expect(index.status).toBe(200);
    expect(index.body.name).toBe("edgestate");
    expect(index.res.headers.get("server-timing")).toMatch(/^kv;/);
    expect((await dev.app.getHealth()).body.status).toBe("ok");
    for (const path of ["/console/missing.js", "/consoles", "/assets/console/index.html", "/_headers"]) {
      const r = await dev.app.json(path); // no operation: whoever answers the path
      expect([r.status, r.body?.code], path).toEqual([404, "not_found"]);
      expect(r.res.headers.get("server-timing"), path).toMatch(/^kv;/);
    }
  });

  it("inserts API values only as text and never logs: no HTML sink and no console call in its code", () => {
    for (const file of readdirSync(ASSETS).filter((f) => f.endsWith(".js"))) {
      const code = readFileSync(join(ASSETS, file), "utf8");
      expect(code, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
      expect(code, file).not.toMatch(/\bconsole\.|localStorage|document\.cookie/);
    }
  });
});

describe("signing in", () => {
  it("shows nothing but the sign-in form without a token, and refuses a wrong one", async () => {
    const page = await open();
    await page.goto(`${BASE}/console#sessions`);
    expect(await page.locator("#login").isVisible()).toBe(true);
    expect(await page.locator("#app").isVisible()).toBe(false);
    expect(await page.locator("#flags > tr, #session-rows > tr, #history-list > li").count()).toBe(0);

    await page.getByLabel("Admin token").fill("not-the-admin-token");
    await alarmed(page, "This token was refused", () => page.getByLabel("Admin token").press("Enter"));
    expect(await page.locator("#token").getAttribute("aria-invalid")).toBe("true");
    expect(await page.locator("#token-error").textContent()).toMatch(/refused/);
    expect(await page.locator("#app").isVisible()).toBe(false);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator("body").textContent()).not.toMatch(/darkLaunch|newCheckout/);
    await page.close();
  });

  it("keeps the token in sessionStorage only: never in a URL, a cookie, localStorage or a log", async () => {
    const page = await open();
    /** @type {string[]} */
    const urls = [];
    /** @type {string[]} */
    const logged = [];
    /** @type {string[]} */
    const authorized = [];
    page.on("request", (r) => {
      urls.push(r.url());
      if (r.headers().authorization) authorized.push(new URL(r.url()).pathname);
    });
    page.on("console", (m) => logged.push(m.text()));
    // From the keyboard: the token field has the focus when the page opens (once the console
    // has asked the admin API and been refused, which a loaded machine can make take a while).
    await page.locator("#token").waitFor();
    await page.waitForFunction(() => document.activeElement?.id === "token");
    await page.keyboard.type(dev.token);
    await page.keyboard.press("Enter");
    await page.locator("#app").waitFor({ state: "visible" });
    const { doc } = await configNow();
    for (const [name, on] of Object.entries(doc.featureFlags).filter(([, f]) => typeof f === "boolean")) {
      expect(await page.getByRole("switch", { name, exact: true }).isChecked(), name).toBe(on);
    }
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(["edgestate.adminToken"]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await chrome.context.cookies(BASE)).toEqual([]);
    expect(page.url()).not.toContain(dev.token);
    expect(urls.filter((u) => u.includes(dev.token))).toEqual([]);
    expect(authorized.length).toBeGreaterThan(0);
    expect(authorized.filter((p) => !p.startsWith("/admin/"))).toEqual([]);
    expect(logged.filter((l) => l.includes(dev.token))).toEqual([]);
    expect(dev.output()).not.toContain(dev.token);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator("#flags > tr").count()).toBe(0);
    await page.close();
  });
});

describe("Config panel", () => {
  it("flips a boolean flag, and GET /flags/:name follows", async () => {
    const page = await signedIn();
    const before = await flagOn("darkLaunch");
    const { version } = await configNow();
    const toggle = page.getByRole("switch", { name: "darkLaunch", exact: true });
    expect(await toggle.isChecked()).toBe(before);
    await said(page, `Saved as version ${version + 1}.`, () => toggle.click());
    expect(await flagOn("darkLaunch")).toBe(!before);
    expect(await toggle.isChecked()).toBe(!before);
    await said(page, `Saved as version ${version + 2}.`, () => toggle.click());
    expect(await flagOn("darkLaunch")).toBe(before);
    await page.close();
  });

  it("switches maintenance on and off, asking first; cancelling changes nothing", async () => {
    const page = await signedIn();
    const toggle = page.getByRole("switch", { name: "Maintenance mode" });
    const dialog = page.getByRole("dialog", { name: "Switch maintenance mode on?" });

    await toggle.click();
    await dialog.waitFor();
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await toggle.isChecked()).toBe(false);
    expect((await configNow()).doc.maintenanceMode).toBe(false);

    await toggle.click();
    await said(page, "Saved as version", () => dialog.getByRole("button", { name: "Switch on" }).click());
    expect(await toggle.isChecked()).toBe(true);
    const closed = await dev.app.getFlag("newCheckout");
    expect([closed.status, closed.body.code]).toEqual([503, "maintenance"]);

    await toggle.click();
    const off = page.getByRole("dialog", { name: "Switch maintenance mode off?" }).getByRole("button", { name: "Switch off" });
    await said(page, "Saved as version", () => off.click());
    expect(await toggle.isChecked()).toBe(false);
    expect((await dev.app.getFlag("newCheckout")).status).toBe(200);
    await page.close();
  });

  it("shows a refused value at the field the API names, and changes nothing", async () => {
    const flag = { variants: { short: "s", long: "l" }, defaultVariant: "short" };
    expect((await dev.app.patchConfig({ featureFlags: { checkout: flag } })).status).toBe(200);
    const page = await signedIn();
    const before = await configNow();
    await editFlag(page, "checkout");
    // A value the form takes but the API refuses (over 1 KiB): shown at that variant's value.
    // Variants are listed by name: long, then short.
    const value = page.getByRole("textbox", { name: "Value of variant 1" });
    await value.fill("x".repeat(1100));
    const message = "featureFlags.checkout.variants.long: must be at most 1024 bytes of JSON";
    await alarmed(page, message, () => page.getByRole("button", { name: "Save checkout" }).click());
    const errorId = String(await value.getAttribute("aria-describedby")).split(" ")[0];
    expect(await page.locator(`#${errorId}`).textContent()).toBe(message);
    expect(await value.getAttribute("aria-invalid")).toBe("true");
    expect(await value.evaluate((el) => el === document.activeElement)).toBe(true);

    // A rate limit the API refuses: shown at that group's input.
    const limit = page.getByRole("spinbutton", { name: "Limit of default" });
    await limit.fill("0");
    const save = page.getByRole("button", { name: "Save limits and settings" });
    await alarmed(page, "rateLimits.default: must be an integer from 1 to 1000000", () => save.click());
    expect(await limit.getAttribute("aria-invalid")).toBe("true");
    const limitError = String(await limit.getAttribute("aria-describedby")).split(" ")[0];
    expect(await page.locator(`#${limitError}`).textContent()).toMatch(/^rateLimits\.default: /);

    // An object value that does not parse is caught on the page, before any request.
    await page.getByLabel("Type of the values").selectOption("object");
    const object = page.getByRole("textbox", { name: "Value of variant 1" });
    await object.fill("{ not json");
    const patches = watchWrites(page);
    await alarmed(page, /^Not saved: Not valid JSON/, () => page.getByRole("button", { name: "Save checkout" }).click());
    expect(await object.getAttribute("aria-invalid")).toBe("true");
    expect(patches).toEqual([]);

    expect(await configNow()).toEqual(before);
    await page.close();
  });

  it("shows a conflict instead of overwriting another admin's write, then saves after a reload", async () => {
    const page = await signedIn();
    const { version, doc } = await configNow();
    // Another admin writes after this page loaded the config.
    const other = await dev.app.patchConfig({ featureFlags: { otherAdmin: true } });
    expect(other.status).toBe(200);
    const toggle = page.getByRole("switch", { name: "newCheckout", exact: true });
    await alarmed(page, `since you loaded version ${version} (it is now version ${version + 1})`, () => toggle.click());
    expect(await page.locator("#config-conflict").isVisible()).toBe(true);
    const after = await configNow();
    expect(after.version).toBe(version + 1);
    expect(after.doc.featureFlags.newCheckout).toBe(doc.featureFlags.newCheckout);
    expect(after.doc.featureFlags.otherAdmin).toBe(true);
    const refused = (await dev.app.getConfigHistory({ limit: 1 })).body.entries[0];
    expect([refused.version, refused.outcome, refused.baseVersion]).toEqual([null, "refused", version + 1]);

    await said(page, `Reloaded: version ${version + 1}.`, () => page.getByRole("button", { name: "Reload the config" }).click());
    expect(await page.locator("#config-conflict").isVisible()).toBe(false);
    await said(page, `Saved as version ${version + 2}.`, () => toggle.click());
    expect((await configNow()).doc.featureFlags.newCheckout).toBe(!doc.featureFlags.newCheckout);
    await page.close();
  });

  it("adds and removes a flag, and saves a new rate-limit group as strict", async () => {
    const page = await signedIn();
    await page.getByLabel("New flag").fill("fromConsole");
    await said(page, "Added flag fromConsole", () => page.getByRole("button", { name: "Add flag" }).click());
    expect((await configNow()).doc.featureFlags.fromConsole).toBe(false);

    await page.getByLabel("New group").fill("search");
    await page.getByRole("button", { name: "Add group" }).click();
    await page.getByRole("spinbutton", { name: "Limit of search" }).fill("25");
    await page.getByRole("checkbox", { name: "Count search strictly (D1)" }).check();
    await page.getByLabel("Profile cache freshness, cacheTtlSeconds (s)").fill("120");
    await said(page, "Saved as version", () => page.getByRole("button", { name: "Save limits and settings" }).click());
    const saved = (await configNow()).doc;
    expect(saved.rateLimits.search).toBe(25);
    expect(saved.strictRateLimits).toContain("search");
    expect(saved.cacheTtlSeconds).toBe(120);

    await page.getByRole("button", { name: "Remove flag fromConsole" }).click();
    const remove = page.getByRole("dialog", { name: "Remove flag fromConsole?" }).getByRole("button", { name: "Remove" });
    await said(page, "Removed flag fromConsole", () => remove.click());
    expect((await configNow()).doc.featureFlags).not.toHaveProperty("fromConsole");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("flag-search");
    await page.close();
  });
});

describe("Stale flags", () => {
  it("marks each flag not evaluated within the chosen days, as GET /admin/flags/usage tells, and a new flag as never evaluated", async () => {
    const name = `staleCheck${Date.now() % 100000}`;
    const added = await dev.app.patchConfig({ featureFlags: { [name]: false } });
    expect(added.status, added.text).toBe(200);
    const page = await signedIn();
    await page.getByLabel("Search flags by name").fill(name);
    const cell = page.locator("#flags tr").first().locator("th");
    await expect.poll(() => cell.textContent()).toContain(name);
    // The badges come with GET /admin/flags/usage, which may answer after the list is drawn.
    // A bulk evaluation counts for every flag, the new one included.
    const { bulkEvaluatedAt } = (await dev.app.getFlagUsage()).body;
    const never = bulkEvaluatedAt === null;
    const fresh = !never && Date.now() - bulkEvaluatedAt < 30 * 86_400_000;
    await expect.poll(() => cell.locator(".badge.stale").count()).toBe(fresh ? 0 : 1);
    if (never) expect(await cell.locator(".badge.stale").textContent()).toBe("stale (never evaluated)");

    // Every flag on the first page: a badge exactly when the API's times say so.
    await page.getByLabel("Search flags by name").fill("");
    const usage = (await dev.app.getFlagUsage()).body;
    const rows = page.locator("#flags tr");
    await expect.poll(() => rows.count()).toBeGreaterThan(1);
    for (let i = 0; i < (await rows.count()); i++) {
      const th = rows.nth(i).locator("th");
      const flag = String(await th.locator("code").textContent());
      const last = Math.max(usage.evaluatedAt[flag] ?? 0, usage.bulkEvaluatedAt ?? 0);
      const stale = last === 0 || Date.now() - last >= 30 * 86_400_000;
      expect(await th.locator(".badge.stale").count(), flag).toBe(stale ? 1 : 0);
    }
    await dev.app.patchConfig({ featureFlags: { [name]: null } });
    await page.close();
  });
});

describe("Flag editor", () => {
  /** @param {Page} page */
  const editor = (page) => page.locator("#flag-editor");
  /** @param {Page} page @param {number} i */
  const variantName = (page, i) => editor(page).getByRole("textbox", { name: `Name of variant ${i}`, exact: true });
  /** @param {Page} page @param {number} i */
  const variantValue = (page, i) => editor(page).getByRole("textbox", { name: `Value of variant ${i}`, exact: true });
  /** @param {Page} page @param {string} name */
  const addVariantsFlag = async (page, name) => {
    await page.getByLabel("New flag").fill(name);
    await page.getByLabel("Kind").selectOption("variants");
    await said(page, `Added flag ${name}`, () => page.getByRole("button", { name: "Add flag" }).click());
    await page.getByRole("heading", { name: `Flag ${name}`, exact: true }).waitFor();
  };

  it("saves variants as typed values (string, number, object), refuses a value that is not its type, and reads them back", async () => {
    const page = await signedIn();
    await addVariantsFlag(page, "typedColor");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("flag-editor-title");
    // The template's variants, by name: off, on.
    await page.getByLabel("Type of the values").selectOption("string");
    await variantName(page, 1).fill("red");
    await variantValue(page, 1).fill("#f00");
    await variantName(page, 2).fill("blue");
    await variantValue(page, 2).fill("#00f");
    await editor(page).getByRole("button", { name: "Add a variant" }).click();
    await variantName(page, 3).fill("spaced");
    await variantValue(page, 3).fill("  two words ");
    // The default is chosen from the variants, named as just typed.
    expect(await page.locator("#fe-default option").allTextContents()).toEqual(["red", "blue", "spaced"]);
    await page.getByLabel("Default variant").selectOption({ label: "blue" });
    await said(page, "Saved flag typedColor as version", () => editor(page).getByRole("button", { name: "Save typedColor" }).click());
    expect((await configNow()).doc.featureFlags.typedColor).toEqual({
      variants: { red: "#f00", blue: "#00f", spaced: "  two words " },
      defaultVariant: "blue",
      rules: [],
      enabled: true,
    });

    await addVariantsFlag(page, "typedLimit");
    await page.getByLabel("Type of the values").selectOption("number");
    await variantName(page, 1).fill("low");
    await variantValue(page, 1).fill("twelve");
    await variantName(page, 2).fill("high");
    await variantValue(page, 2).fill("-3");
    await editor(page).getByRole("button", { name: "Add a variant" }).click();
    await variantName(page, 3).fill("big");
    await variantValue(page, 3).fill("1000");
    const writes = watchWrites(page);
    await alarmed(page, "Not saved: Not a number: “twelve”.", () => editor(page).getByRole("button", { name: "Save typedLimit" }).click());
    expect(await variantValue(page, 1).getAttribute("aria-invalid")).toBe("true");
    expect(await variantValue(page, 1).evaluate((el) => el === document.activeElement)).toBe(true);
    // Decimal numbers only: not hex, not Infinity.
    for (const typed of ["0x10", "Infinity"]) {
      await variantValue(page, 1).fill(typed);
      await alarmed(page, `Not saved: Not a number: “${typed}”.`, () => editor(page).getByRole("button", { name: "Save typedLimit" }).click());
    }
    expect(writes).toEqual([]);
    await variantValue(page, 1).fill("2.5");
    await page.getByLabel("Default variant").selectOption({ label: "low" });
    await said(page, "Saved flag typedLimit as version", () => editor(page).getByRole("button", { name: "Save typedLimit" }).click());
    expect(writes).toEqual(["PATCH /admin/config"]);
    const limit = (await configNow()).doc.featureFlags.typedLimit;
    expect(limit.variants).toEqual({ low: 2.5, high: -3, big: 1000 });
    expect(Object.values(limit.variants).map((v) => typeof v)).toEqual(["number", "number", "number"]);

    // Written through the API, read back in a fresh tab: object values, disabled.
    const theme = { variants: { dark: { bg: "#000", sizes: [1, 2] }, light: { bg: "#fff", sizes: [] } }, defaultVariant: "light", enabled: false };
    expect((await dev.app.patchConfig({ featureFlags: { typedTheme: theme } })).status).toBe(200);
    const fresh = await signedIn();
    await editFlag(fresh, "typedTheme");
    expect(await fresh.getByLabel("Type of the values").inputValue()).toBe("object");
    expect(JSON.parse(await variantValue(fresh, 1).inputValue())).toEqual(theme.variants.dark);
    expect(JSON.parse(await variantValue(fresh, 2).inputValue())).toEqual(theme.variants.light);
    expect(await fresh.locator("#fe-default option:checked").textContent()).toBe("light");
    expect(await fresh.getByRole("switch", { name: "Enabled", exact: true }).isChecked()).toBe(false);
    await editFlag(fresh, "typedLimit");
    expect(await fresh.getByLabel("Type of the values").inputValue()).toBe("number");
    const shownValues = [];
    for (const i of [1, 2, 3]) shownValues.push([await variantName(fresh, i).inputValue(), await variantValue(fresh, i).inputValue()]);
    expect(shownValues).toEqual([["big", "1000"], ["high", "-3"], ["low", "2.5"]]);
    await fresh.close();
    await page.close();
  });

  it("builds targeting rules from attribute, operator and values, which the API evaluates as built", async () => {
    expect((await dev.app.patchConfig({ featureFlags: { ruleFlag: { variants: { a: "A", b: "B", c: "C" }, defaultVariant: "a" } } })).status).toBe(200);
    const page = await signedIn();
    await editFlag(page, "ruleFlag");
    const form = editor(page);
    await form.getByRole("button", { name: "Add a rule" }).click();
    const c1 = form.getByRole("group", { name: "Rule 1, condition 1" });
    expect(await c1.getByLabel("Attribute").evaluate((el) => el === document.activeElement)).toBe(true);
    // The operators the API knows.
    expect(await c1.locator("select").first().locator("option").evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).value))).toEqual([
      "in",
      "notIn",
      "equals",
    ]);
    await c1.getByLabel("Attribute").fill("country");
    await c1.getByLabel("Values", { exact: true }).fill("NL, BE");
    await form.getByRole("button", { name: "Add a condition to rule 1" }).click();
    const c2 = form.getByRole("group", { name: "Rule 1, condition 2" });
    await c2.getByLabel("Attribute").fill("tier");
    await c2.getByLabel("Values as").selectOption("number");
    await c2.getByLabel("Values", { exact: true }).fill("2, 3");
    await form.getByRole("group", { name: "Rule 1", exact: true }).getByLabel("Then serve").selectOption({ label: "b" });
    await form.getByRole("button", { name: "Add a rule" }).click();
    const c3 = form.getByRole("group", { name: "Rule 2, condition 1" });
    await c3.getByLabel("Attribute").fill("plan");
    await c3.getByLabel("Operator").selectOption("equals");
    await c3.getByLabel("Values", { exact: true }).fill("pro");
    await form.getByRole("group", { name: "Rule 2", exact: true }).getByLabel("Then serve").selectOption({ label: "c" });
    await said(page, "Saved flag ruleFlag", () => form.getByRole("button", { name: "Save ruleFlag" }).click());
    expect((await configNow()).doc.featureFlags.ruleFlag.rules).toEqual([
      { when: { country: { in: ["NL", "BE"] }, tier: { in: [2, 3] } }, variant: "b" },
      { when: { plan: { equals: "pro" } }, variant: "c" },
    ]);
    // [status, value, variant, reason, ruleIndex]
    expect(await evaluated("ruleFlag", { country: "NL", tier: 2 })).toEqual([200, "B", "b", "TARGETING_MATCH", 0]);
    // The tier is a number: the string "2" is not one of [2, 3].
    expect(await evaluated("ruleFlag", { country: "BE", tier: "2" })).toEqual([200, "A", "a", "DEFAULT", undefined]);
    expect(await evaluated("ruleFlag", { country: "DE", plan: "pro" })).toEqual([200, "C", "c", "TARGETING_MATCH", 1]);
    expect(await evaluated("ruleFlag", { country: "DE" })).toEqual([200, "A", "a", "DEFAULT", undefined]);

    // Rules are in order: moved up, the plan rule decides first.
    await form.getByRole("button", { name: "Move rule 2 up" }).click();
    await said(page, "Saved flag ruleFlag", () => form.getByRole("button", { name: "Save ruleFlag" }).click());
    expect(await evaluated("ruleFlag", { country: "NL", tier: 3, plan: "pro" })).toEqual([200, "C", "c", "TARGETING_MATCH", 0]);
    // A condition with no values is refused on the page.
    await form.getByRole("group", { name: "Rule 1, condition 1" }).getByLabel("Values", { exact: true }).fill(" ");
    await alarmed(page, "Not saved: Type the value.", () => form.getByRole("button", { name: "Save ruleFlag" }).click());
    await page.close();
  });

  it("refuses a rollout that does not total 100 at its field, without a request, then saves one that does", async () => {
    const split = { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 30, off: 70 } };
    expect((await dev.app.patchConfig({ featureFlags: { splitFlag: split } })).status).toBe(200);
    const before = await configNow();
    const page = await signedIn();
    await editFlag(page, "splitFlag");
    const off = page.getByRole("spinbutton", { name: "off (%)" });
    const on = page.getByRole("spinbutton", { name: "on (%)" });
    expect([await off.inputValue(), await on.inputValue()]).toEqual(["70", "30"]);
    await off.fill("60");
    await page.locator("#fe-rollout-total").filter({ hasText: "Total: 90 % (10 short of 100)" }).waitFor();
    const writes = watchWrites(page);
    const message = "Rollout percentages must total 100; they total 90.";
    await alarmed(page, `Not saved: ${message}`, () => editor(page).getByRole("button", { name: "Save splitFlag" }).click());
    // At the field: the message beneath the shares, both marked, the first focused.
    expect(await page.locator("#fe-rollout-error").textContent()).toBe(message);
    expect(await off.getAttribute("aria-describedby")).toContain("fe-rollout-error");
    expect([await off.getAttribute("aria-invalid"), await on.getAttribute("aria-invalid")]).toEqual(["true", "true"]);
    expect(await off.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(writes).toEqual([]);
    expect(await configNow()).toEqual(before);

    await off.fill("55");
    await on.fill("45");
    await said(page, "Saved flag splitFlag", () => editor(page).getByRole("button", { name: "Save splitFlag" }).click());
    expect(writes).toEqual(["PATCH /admin/config"]);
    expect((await configNow()).doc.featureFlags.splitFlag.rollout).toEqual({ on: 45, off: 55 });
    expect((await evaluated("splitFlag", { targetingKey: "user-1" }))[3]).toBe("SPLIT");
    await page.close();
  });

  it("tries a flag for a typed context over OFREP and shows its value, variant and reason", async () => {
    const flag = {
      variants: { on: true, off: false },
      defaultVariant: "off",
      rules: [{ when: { country: { in: ["NL"] } }, variant: "on" }],
      rollout: { on: 50, off: 50 },
    };
    expect((await dev.app.patchConfig({ featureFlags: { tryFlag: flag } })).status).toBe(200);
    const { version } = await configNow();
    const page = await signedIn();
    /** @type {{ url: string, auth: string | undefined }[]} */
    const asked = [];
    page.on("request", (r) => {
      if (r.url().includes("/ofrep/")) asked.push({ url: new URL(r.url()).pathname, auth: r.headers().authorization });
    });
    await editFlag(page, "tryFlag");
    const form = page.locator("#flag-try");
    const facts = () =>
      form.locator("#try-result dl").evaluate((dl) => Object.fromEntries([...dl.querySelectorAll("dt")].map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    const evaluate = form.getByRole("button", { name: "Evaluate" });

    await form.getByLabel("targetingKey").fill("user-7");
    await form.getByLabel("Attributes (a JSON object)").fill('{"country": "NL"}');
    await said(page, "tryFlag: value true, variant on, reason TARGETING_MATCH.", () => evaluate.click());
    expect(await facts()).toEqual({ Value: "true", Variant: "on", Reason: "TARGETING_MATCH", Rule: "rule 1", "Config version": String(version) });

    // Another country: the rollout, with the variant the API gives this key.
    await form.getByLabel("Attributes (a JSON object)").fill('{"country": "DE"}');
    const api = (await dev.app.evaluateFlag("tryFlag", { context: { targetingKey: "user-7", country: "DE" } })).body;
    expect(api.reason).toBe("SPLIT");
    await said(page, `tryFlag: value ${api.value}, variant ${api.variant}, reason SPLIT.`, () => evaluate.click());
    expect(await facts()).toEqual({ Value: String(api.value), Variant: api.variant, Reason: "SPLIT", "Config version": String(version) });

    await editor(page).screenshot({ path: join(SHOTS, "flag-editor-1440.png") });
    // The Config panel down to the answer (docs/console.png).
    const bottom = await page.locator("#flag-try").evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
    await page.screenshot({ path: join(SHOTS, "config-editor-1440.png"), fullPage: true, clip: { x: 0, y: 0, width: 1440, height: Math.ceil(bottom) + 16 } });
    // No targetingKey: the rollout cannot decide, and the answer says why.
    await form.getByLabel("targetingKey").fill("");
    await said(page, "tryFlag: error TARGETING_KEY_MISSING (HTTP 400).", () => evaluate.click());
    expect(await facts()).toEqual({ Error: "TARGETING_KEY_MISSING", Details: "the flag's rollout needs a targetingKey in the context" });

    // Attributes that are not JSON: refused on the page, nothing sent.
    const sent = asked.length;
    expect(sent).toBe(3);
    await form.getByLabel("Attributes (a JSON object)").fill("{country");
    await alarmed(page, "Not evaluated: the attributes are not valid JSON.", () => evaluate.click());
    expect(await form.getByLabel("Attributes (a JSON object)").getAttribute("aria-invalid")).toBe("true");
    expect(asked.length).toBe(sent);
    // The public route, without the admin token.
    expect(asked.map((a) => a.url)).toEqual(Array(3).fill("/ofrep/v1/evaluate/flags/tryFlag"));
    expect(asked.filter((a) => a.auth !== undefined)).toEqual([]);
    await page.close();
  });

  it("lists the versions that changed a flag with their diff, and restores an earlier definition with If-Match", async () => {
    const v1 = { variants: { on: true, off: false }, defaultVariant: "off" };
    const v2 = { ...v1, rollout: { on: 20, off: 80 } };
    const v3 = { ...v2, enabled: false };
    for (const change of [{ histFlag: v1 }, { histFlag: v2 }, { histOther: true }, { histFlag: v3 }]) {
      expect((await dev.app.patchConfig({ featureFlags: change })).status).toBe(200);
    }
    const { version } = await configNow();
    const page = await signedIn();
    await editFlag(page, "histFlag");
    const items = page.locator("#flag-history > li");
    await items.first().getByRole("heading", { name: `Version ${version}`, exact: true }).waitFor();
    // Its three versions, newest first; histOther's is not one of them.
    expect(await items.locator("h4").allTextContents()).toEqual([`Version ${version}`, `Version ${version - 2}`, `Version ${version - 3}`]);
    expect(await items.nth(0).locator(".diff li").allTextContents()).toEqual(["enabled: true → false"]);
    expect((await items.nth(1).locator(".diff li").allTextContents()).sort()).toEqual(["rollout.off: (none) → 80", "rollout.on: (none) → 20"]);
    const [added] = await items.nth(2).locator(".diff li").allTextContents();
    // Before its first version the history cannot tell (the seed is not in it): "earlier".
    expect(added).toMatch(/^histFlag: (\(none\)|earlier) → \{/);
    expect(JSON.parse(added.slice(added.indexOf("{")))).toEqual({ ...v1, rules: [], enabled: true });

    const restore = page.getByRole("button", { name: `Restore histFlag as before version ${version}`, exact: true });
    const dialog = page.getByRole("dialog", { name: `Restore histFlag as before version ${version}?` });
    // Cancelled: nothing written.
    const writes = watchWrites(page);
    await restore.click();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect(writes).toEqual([]);

    await restore.click();
    await dialog.waitFor();
    const expected = { ...v2, rules: [], enabled: true };
    expect(JSON.parse(String(await dialog.locator("pre").textContent()))).toEqual(expected);
    expect(await dialog.locator(".diff li").allTextContents()).toEqual(["enabled: false → true"]);
    const sentPatch = page.waitForRequest((r) => r.method() === "PATCH");
    await said(page, `Restored histFlag as before version ${version}: saved as version ${version + 1}.`, () =>
      dialog.getByRole("button", { name: "Restore" }).click(),
    );
    const request = await sentPatch;
    expect(request.headers()["if-match"]).toBe(`"${version}"`);
    expect(request.postDataJSON()).toEqual({ featureFlags: { histFlag: { ...v2, rules: [], enabled: true } } });
    expect((await configNow()).doc.featureFlags.histFlag).toEqual(expected);
    const [entry] = (await dev.app.getConfigHistory({ limit: 1 })).body.entries;
    expect([entry.version, entry.action, entry.baseVersion]).toEqual([version + 1, "patch", version]);

    // The history shows the restore; the version it undid offers no restore of what is current.
    await items.first().getByRole("heading", { name: `Version ${version + 1}`, exact: true }).waitFor();
    expect(await items.nth(0).locator(".diff li").allTextContents()).toEqual(["enabled: false → true"]);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("flag-editor-title");
    expect(await items.nth(1).getByRole("button").count()).toBe(0);
    await page.close();
  });

  it("never overwrites another admin's change to the flag being edited", async () => {
    const mine = { variants: { a: 1, b: 2 }, defaultVariant: "a" };
    expect((await dev.app.patchConfig({ featureFlags: { raceFlag: mine } })).status).toBe(200);
    const page = await signedIn();
    await editFlag(page, "raceFlag");
    await page.getByLabel("Default variant").selectOption({ label: "b" });
    // Another admin changes the flag meanwhile.
    const theirs = { variants: { a: 1, b: 2, c: 3 }, defaultVariant: "c" };
    expect((await dev.app.patchConfig({ featureFlags: { raceFlag: theirs } })).status).toBe(200);
    const { version } = await configNow();
    const save = editor(page).getByRole("button", { name: "Save raceFlag" });
    await alarmed(page, `(it is now version ${version})`, () => save.click());
    // Reloaded, the config is newer, but the editor still holds the old definition: refused on the page.
    await said(page, `Reloaded: version ${version}.`, () => page.getByRole("button", { name: "Reload the config" }).click());
    const writes = watchWrites(page);
    await alarmed(page, "Not saved: flag raceFlag changed since its editor was opened", () => save.click());
    expect(writes).toEqual([]);
    expect((await configNow()).doc.featureFlags.raceFlag).toMatchObject(theirs);
    // Opened again, the editor shows their definition.
    await editor(page).getByRole("button", { name: "Close the editor" }).click();
    await editFlag(page, "raceFlag");
    expect(await page.locator("#fe-default option:checked").textContent()).toBe("c");
    await page.close();
  });

  it("makes a flag need other flags' variants, picked by name, saves them with If-Match, and shows the API's cycle at the prerequisites", async () => {
    const onOff = { variants: { on: true, off: false }, defaultVariant: "off" };
    const flags = {
      prqBeta: false,
      prqColor: { variants: { red: "#f00", green: "#0f0", blue: "#00f" }, defaultVariant: "red" },
      prqMain: { ...onOff, rollout: { on: 100 } },
    };
    expect((await dev.app.patchConfig({ featureFlags: flags })).status).toBe(200);
    const page = await signedIn();
    await editFlag(page, "prqMain");
    const form = editor(page);
    const section = form.getByRole("group", { name: "Prerequisites", exact: true });
    await section.getByText("No prerequisites.").waitFor();
    // The suggestions are the other flags, by name: never the flag itself.
    await form.getByRole("button", { name: "Add a prerequisite" }).click();
    const flag1 = form.getByRole("combobox", { name: "Flag of prerequisite 1", exact: true });
    expect(await flag1.evaluate((el) => el === document.activeElement)).toBe(true);
    const suggested = await page.locator("#fe-prereq-flags option").evaluateAll((os) => os.map((o) => /** @type {HTMLOptionElement} */ (o).value));
    expect(suggested).toEqual(expect.arrayContaining(["prqBeta", "prqColor"]));
    expect(suggested).not.toContain("prqMain");
    await section.getByText("Choose a flag to list its variants.").waitFor();
    // Named, the flag's variants are the choices (an on/off flag's are on and off).
    await flag1.fill("prqColor");
    const choices1 = form.getByRole("group", { name: "Variants prerequisite 1 must answer" });
    expect(await choices1.getByRole("checkbox").evaluateAll((bs) => bs.map((b) => b.parentElement?.textContent))).toEqual(["blue", "green", "red"]);
    await choices1.getByRole("checkbox", { name: "green", exact: true }).check();
    await choices1.getByRole("checkbox", { name: "blue", exact: true }).check();
    await form.getByRole("button", { name: "Add a prerequisite" }).click();
    const flag2 = form.getByRole("combobox", { name: "Flag of prerequisite 2", exact: true });
    // Checked on the page, nothing sent: an unknown flag, then no variant chosen.
    const writes = watchWrites(page);
    await flag2.fill("prqNope");
    const save = form.getByRole("button", { name: "Save prqMain" });
    await alarmed(page, "Not saved: No flag is named prqNope.", () => save.click());
    expect(await flag2.getAttribute("aria-invalid")).toBe("true");
    await flag2.fill("prqBeta");
    const choices2 = form.getByRole("group", { name: "Variants prerequisite 2 must answer" });
    expect(await choices2.getByRole("checkbox").evaluateAll((bs) => bs.map((b) => b.parentElement?.textContent))).toEqual(["on", "off"]);
    await alarmed(page, "Not saved: Choose at least one variant prqBeta must answer.", () => save.click());
    expect(writes).toEqual([]);
    await choices2.getByRole("checkbox", { name: "on", exact: true }).check();

    const { version } = await configNow();
    const sentPatch = page.waitForRequest((r) => r.method() === "PATCH");
    await said(page, `Saved flag prqMain as version ${version + 1}.`, () => save.click());
    expect((await sentPatch).headers()["if-match"]).toBe(`"${version}"`);
    expect((await configNow()).doc.featureFlags.prqMain.prerequisites).toEqual({ prqBeta: ["on"], prqColor: ["blue", "green"] });
    // The API evaluates them: prqBeta is off, so prqMain serves its default.
    expect((await dev.app.evaluateFlag("prqMain", { context: { targetingKey: "u1" } })).body).toMatchObject({
      value: false,
      reason: "DEFAULT",
      metadata: { unmetPrerequisite: "prqBeta" },
    });
    // Read back, in name order, with their choices.
    const rows = async () =>
      form.locator(".prereqs tbody tr").evaluateAll((trs) =>
        trs.map((tr) => [
          /** @type {HTMLInputElement} */ (tr.querySelector("input:not([type])")).value,
          [...tr.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.parentElement?.textContent),
        ]),
      );
    expect(await rows()).toEqual([["prqBeta", ["on"]], ["prqColor", ["blue", "green"]]]);
    // The list says what the flag needs.
    await page.locator('#flags tr[data-flag="prqMain"]').getByText("needs prqBeta, prqColor").waitFor();

    // A cycle closed through the flag edited is named at its own prerequisites.
    const save2 = form.getByRole("button", { name: "Save prqColor" });
    await form.getByRole("button", { name: "Close the editor" }).click();
    await editFlag(page, "prqColor");
    await form.getByRole("button", { name: "Add a prerequisite" }).click();
    await form.getByRole("combobox", { name: "Flag of prerequisite 1", exact: true }).fill("prqMain");
    await form.getByRole("group", { name: "Variants prerequisite 1 must answer" }).getByRole("checkbox", { name: "on", exact: true }).check();
    let before = await configNow();
    const own = "featureFlags.prqColor.prerequisites: cycle prqColor → prqMain → prqColor";
    await alarmed(page, `Not saved: ${own}`, () => save2.click());
    expect(await page.locator("#fe-prereqs-error").textContent()).toBe(own);
    expect(await section.getAttribute("aria-invalid")).toBe("true");
    expect(await section.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await configNow()).toEqual(before);

    // One the API names from another flag (the first in name order) is shown there too.
    await form.getByRole("button", { name: "Close the editor" }).click();
    expect((await dev.app.patchConfig({ featureFlags: { prqAlpha: { ...onOff, prerequisites: { prqMain: ["on"] } } } })).status).toBe(200);
    // The tab learns of the new flag when it loads the config again.
    await page.reload();
    await ready(page, "config");
    await editFlag(page, "prqMain");
    await form.getByRole("button", { name: "Add a prerequisite" }).click();
    await form.getByRole("combobox", { name: "Flag of prerequisite 3", exact: true }).fill("prqAlpha");
    await form.getByRole("group", { name: "Variants prerequisite 3 must answer" }).getByRole("checkbox", { name: "on", exact: true }).check();
    before = await configNow();
    const cycle = "featureFlags.prqAlpha.prerequisites: cycle prqAlpha → prqMain → prqAlpha";
    await alarmed(page, `Not saved: ${cycle}`, () => save.click());
    expect(await page.locator("#fe-prereqs-error").textContent()).toBe(cycle);
    expect(await section.getAttribute("aria-invalid")).toBe("true");
    expect(await section.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await configNow()).toEqual(before);

    // Removed, and saved: gone from the config.
    await form.getByRole("button", { name: "Remove prerequisite 3 (prqAlpha)" }).click();
    await form.getByRole("button", { name: "Remove prerequisite 2 (prqColor)" }).click();
    await said(page, "Saved flag prqMain", () => save.click());
    expect((await configNow()).doc.featureFlags.prqMain.prerequisites).toEqual({ prqBeta: ["on"] });
    // The flag's history shows the change, and a restore sets the prerequisites as they were.
    const { version: now } = await configNow();
    const items = page.locator("#flag-history > li");
    await items.first().getByRole("heading", { name: `Version ${now}`, exact: true }).waitFor();
    expect(await items.first().locator(".diff li").allTextContents()).toEqual(['prerequisites.prqColor: ["blue","green"] → (none)']);
    await page.getByRole("button", { name: `Restore prqMain as before version ${now}`, exact: true }).click();
    const dialog = page.getByRole("dialog", { name: `Restore prqMain as before version ${now}?` });
    await said(page, `Restored prqMain as before version ${now}`, () => dialog.getByRole("button", { name: "Restore" }).click());
    expect((await configNow()).doc.featureFlags.prqMain.prerequisites).toEqual({ prqBeta: ["on"], prqColor: ["blue", "green"] });
    await page.close();
  });

  it("keeps a switch that sets a new definition, says what it sets, and saves it unchanged with the flag's other edits", async () => {
    const later = Date.UTC(2099, 5, 1);
    const set = { variants: { big: 10, small: 1 }, defaultVariant: "small", rules: [], rollout: { big: 50, small: 50 } };
    const stagedFlag = { variants: { a: 1, b: 2 }, defaultVariant: "a", schedule: [{ at: later, set }] };
    expect((await dev.app.patchConfig({ featureFlags: { stagedFlag } })).status).toBe(200);
    const page = await signedIn(1440, 900);
    await editFlag(page, "stagedFlag");
    const form = editor(page);
    const section = form.getByRole("group", { name: "Schedule", exact: true });
    await section.getByText("and answers from a new definition: variants big, small, default small").waitFor();
    expect(await form.getByLabel("Switch 1 turns the flag").inputValue()).toBe("");
    // Another switch beside it, and a save: the definition goes back as it was.
    await form.getByRole("button", { name: "Add a switch" }).click();
    await form.getByLabel(/^Time of switch 2 /).fill("2098-01-01T00:00");
    await form.getByLabel("Switch 2 turns the flag").selectOption("on");
    await said(page, "Saved flag stagedFlag", () => form.getByRole("button", { name: "Save stagedFlag" }).click());
    const schedule = (await configNow()).doc.featureFlags.stagedFlag.schedule;
    expect(schedule).toHaveLength(2);
    expect(schedule[1]).toEqual({ at: later, set });
    expect(schedule[0]).toMatchObject({ enabled: true });
    await page.close();
  });

  it("schedules switches in the browser's time zone, sends milliseconds since the epoch, and shows past switches as applied", async () => {
    // On from 2001-09-09T01:46:40Z (past when written: applied at once, not kept), off from 2100-01-01T00:00Z.
    const [from, until] = [1_000_000_000_000, Date.UTC(2100, 0, 1)];
    const schedFlag = { variants: { on: true, off: false }, defaultVariant: "off", rollout: { on: 100 }, schedule: [{ at: from, enabled: true }, { at: until, enabled: false }] };
    expect((await dev.app.patchConfig({ featureFlags: { schedFlag } })).status).toBe(200);
    expect((await configNow()).doc.featureFlags.schedFlag.schedule).toEqual([{ at: until, enabled: false }]);
    // India: UTC+05:30 all year, so local times are half an hour off any UTC hour.
    const page = await signedIn(1440, 900, "Asia/Kolkata");
    // As the browser names it (Chromium's ICU: Asia/Calcutta).
    const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(["Asia/Kolkata", "Asia/Calcutta"]).toContain(zone);
    await editFlag(page, "schedFlag");
    const form = editor(page);
    const section = form.getByRole("group", { name: "Schedule", exact: true });
    await section.getByText(`Times are in this browser's time zone, ${zone}.`).waitFor();
    expect(await section.getByRole("columnheader").allTextContents()).toEqual([`When (${zone})`, "Turns the flag", "Status", "Remove"]);
    /** [time as shown, turns the flag, status] of every row. */
    const rows = async () =>
      section.locator("tbody tr").evaluateAll((trs) =>
        trs.map((tr) => [
          /** @type {HTMLInputElement} */ (tr.querySelector("input")).value,
          /** @type {HTMLSelectElement} */ (tr.querySelector("select")).value === "true" ? "on" : "off",
          tr.children[2].textContent,
        ]),
      );
    expect(await rows()).toEqual([["2100-01-01T05:30", "off", "Upcoming"]]);

    // A new switch, entered as local time: what is sent is that instant in milliseconds.
    await form.getByRole("button", { name: "Add a switch" }).click();
    const time2 = form.getByLabel(`Time of switch 2 (${zone})`);
    expect(await time2.evaluate((el) => el === document.activeElement)).toBe(true);
    await time2.fill("2031-03-04T05:06");
    await section.getByText("2031-03-03 23:36 UTC").waitFor();
    await form.getByLabel("Switch 2 turns the flag").selectOption("off");
    const sentPatch = page.waitForRequest((r) => r.method() === "PATCH");
    await said(page, "Saved flag schedFlag", () => form.getByRole("button", { name: "Save schedFlag" }).click());
    const at = Date.UTC(2031, 2, 3, 23, 36);
    const stored = [{ at, enabled: false }, { at: until, enabled: false }];
    expect((await sentPatch).postDataJSON().featureFlags.schedFlag.schedule).toEqual(stored);
    expect((await configNow()).doc.featureFlags.schedFlag.schedule).toEqual(stored);
    // Shown again in time order.
    expect(await rows()).toEqual([
      ["2031-03-04T05:06", "off", "Upcoming"],
      ["2100-01-01T05:30", "off", "Upcoming"],
    ]);
    // On until the first switch, as the opposite of it.
    expect(await evaluated("schedFlag", { targetingKey: "u1" })).toEqual([200, true, "on", "SPLIT", undefined]);

    // A switch entered in the past is shown as applied; the API applies it at once and keeps
    // what is still to come (nothing here: the later switches would only keep it off).
    await form.getByRole("button", { name: "Add a switch" }).click();
    await form.getByLabel(`Time of switch 3 (${zone})`).fill("2020-01-01T00:00");
    await form.getByLabel("Switch 3 turns the flag").selectOption("off");
    await section.locator("tbody tr.past").first().getByText("Past: applied").waitFor();
    expect(await page.locator(".schedule tbody tr.past").count()).toBe(1);
    await said(page, "Saved flag schedFlag", () => form.getByRole("button", { name: "Save schedFlag" }).click());
    const applied = (await configNow()).doc.featureFlags.schedFlag;
    expect(applied.enabled).toBe(false);
    expect(applied).not.toHaveProperty("schedule");
    expect(await evaluated("schedFlag", { targetingKey: "u1" })).toEqual([200, false, "off", "DISABLED", undefined]);
    await section.getByText("No scheduled switches.").waitFor();

    // Two switches at one time: refused on the page, nothing sent.
    await form.getByRole("button", { name: "Add a switch" }).click();
    await form.getByRole("button", { name: "Add a switch" }).click();
    await form.getByLabel(`Time of switch 1 (${zone})`).fill("2040-01-01T00:00");
    await form.getByLabel(`Time of switch 2 (${zone})`).fill("2040-01-01T00:00");
    const writes = watchWrites(page);
    await alarmed(page, "Not saved: Two switches at 2039-12-31 18:30 UTC: one per time.", () => form.getByRole("button", { name: "Save schedFlag" }).click());
    expect(writes).toEqual([]);
    // Removed: the editor holds no switch again.
    for (let n = 2; n >= 1; n--) await form.getByRole("button", { name: `Remove switch ${n}`, exact: true }).click();
    await section.getByText("No scheduled switches.").waitFor();
    await page.close();
  });

  it("finds flags by name and shows them 50 at a time, with 120 flags", async () => {
    /** @type {Record<string, boolean | null>} */
    const many = {};
    for (let i = 0; i < 120; i++) many[`page-${String(i).padStart(3, "0")}`] = i % 2 === 0;
    expect((await dev.app.patchConfig({ featureFlags: many })).status).toBe(200);
    const total = Object.keys((await configNow()).doc.featureFlags).length;
    const page = await signedIn();
    try {
      const names = () => page.locator("#flags > tr > th > code").allTextContents();
      const summary = page.locator("#flags-summary");
      const next = page.getByRole("button", { name: "Next page" }).first();
      const prev = page.getByRole("button", { name: "Previous page" }).first();
      // Unsearched: one page of rows, never all of them.
      expect(await page.locator("#flags > tr").count()).toBe(50);
      await summary.filter({ hasText: `Flags 1–50 of ${total}; page 1 of ${Math.ceil(total / 50)}.` }).waitFor();

      await page.getByLabel("Search flags by name").fill("page-");
      await summary.filter({ hasText: `Flags 1–50 of 120 whose name contains “page-” (of ${total}); page 1 of 3.` }).waitFor();
      const pad = (/** @type {number} */ i) => `page-${String(i).padStart(3, "0")}`;
      const range = (/** @type {number} */ from, /** @type {number} */ to) => Array.from({ length: to - from }, (_, i) => pad(from + i));
      expect(await names()).toEqual(range(0, 50));
      expect(await prev.isDisabled()).toBe(true);
      await next.click();
      await summary.filter({ hasText: "Flags 51–100 of 120" }).waitFor();
      expect(await names()).toEqual(range(50, 100));
      await next.click();
      await summary.filter({ hasText: "Flags 101–120 of 120" }).waitFor();
      expect(await names()).toEqual(range(100, 120));
      expect(await next.isDisabled()).toBe(true);
      // The focus moved to the page turn still possible.
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Previous page");

      // A switch on the third page saves, and the list stays on that page.
      const before = await flagOn("page-101");
      await said(page, "Saved as version", () => page.getByRole("switch", { name: "page-101", exact: true }).click());
      expect(await flagOn("page-101")).toBe(!before);
      await summary.filter({ hasText: "Flags 101–120 of 120" }).waitFor();
      await prev.click();
      await summary.filter({ hasText: "Flags 51–100 of 120" }).waitFor();

      // Any case, any part of the name; a new search starts at its first page.
      await page.getByLabel("Search flags by name").fill("PAGE-11");
      await summary.filter({ hasText: "Flags 1–10 of 10 whose name contains “PAGE-11”" }).waitFor();
      expect(await names()).toEqual(range(110, 120));
      await page.getByLabel("Search flags by name").fill("no-such-flag");
      await summary.filter({ hasText: `No flag of ${total} has a name containing “no-such-flag”.` }).waitFor();
      expect(await page.locator("#flags > tr").allTextContents()).toEqual(["No flag name contains “no-such-flag”."]);
    } finally {
      for (const name of Object.keys(many)) many[name] = null;
      expect((await dev.app.patchConfig({ featureFlags: many })).status).toBe(200);
      await page.close();
    }
  });
});

describe("History panel", () => {
  it("shows each version's diff against the one before, and rolls back to an older version", async () => {
    for (const on of [true, false]) {
      const r = await dev.app.patchConfig({ featureFlags: { historyFlag: on } });
      expect(r.status).toBe(200);
    }
    const { version } = await configNow();
    const page = await signedIn();
    await panel(page, "history");
    const newest = page.locator("#history-list > li").first();
    await newest.getByRole("heading", { name: `Version ${version} current` }).waitFor();
    expect(await newest.locator(".diff").textContent()).toBe("featureFlags.historyFlag: true → false");
    const [entry] = (await dev.app.getConfigHistory({ limit: 1 })).body.entries;
    expect(await newest.locator(".meta").textContent()).toMatch(new RegExp(`^patch · applied · .+ · by ${entry.actor} · based on version ${version - 1}$`));
    expect(await newest.locator(".meta time").getAttribute("datetime")).toBe(new Date(entry.at).toISOString());
    // The refused attempt of the conflict test is listed, and changed nothing.
    await page.getByRole("heading", { name: "Refused attempt" }).first().waitFor();

    await page.getByRole("button", { name: `Roll back to version ${version - 1}` }).click();
    const confirm = page.getByRole("dialog", { name: `Roll back to version ${version - 1}?` }).getByRole("button", { name: "Roll back" });
    await said(page, `Rolled back: version ${version + 1} equals version ${version - 1}.`, () => confirm.click());
    expect(await flagOn("historyFlag")).toBe(true);
    const rolled = page.locator("#history-list > li").first();
    await rolled.getByRole("heading", { name: `Version ${version + 1} current` }).waitFor();
    expect(await rolled.locator(".meta").textContent()).toMatch(`rollback to version ${version - 1} · applied`);
    expect(await rolled.locator(".diff").textContent()).toBe("featureFlags.historyFlag: false → true");
    await page.screenshot({ path: join(SHOTS, "history-1440.png"), fullPage: true });
    await page.close();
  });

  it("previews what a rollback changes before it is confirmed, and names the restored version in the history", async () => {
    const patch = async (/** @type {object} */ change) => expect((await dev.app.patchConfig(change)).status).toBe(200);
    await patch({ featureFlags: { previewFlag: true }, rateLimits: { preview: 40 } });
    const target = (await configNow()).version;
    await patch({ featureFlags: { previewFlag: false, previewExtra: true }, rateLimits: { preview: 55 } });
    const { version } = await configNow();
    const page = await signedIn();
    await panel(page, "history");
    await page.locator("#history-list > li").first().getByRole("heading", { name: `Version ${version} current` }).waitFor();

    await page.getByRole("button", { name: `Roll back to version ${target}`, exact: true }).click();
    const dialog = page.getByRole("dialog", { name: `Roll back to version ${target}?` });
    await dialog.waitFor();
    // Each value that changes, from the current one to version `target`'s. previewExtra was
    // not set by any write before `target`: the history cannot tell whether the seed had it.
    const lines = await dialog.locator(".diff li").allTextContents();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^featureFlags\.previewExtra: true → (unknown|\(none\))$/);
    expect(lines.slice(1)).toEqual(["featureFlags.previewFlag: false → true", "rateLimits.preview: 55 → 40"]);
    const hint = String(await dialog.locator(".hint").textContent());
    expect(hint).toContain("worked out from the loaded history and the current config");
    if (lines[0].endsWith("unknown")) expect(hint).toMatch(/1 value marked unknown was set (before the oldest loaded version or )?by the seed/);
    // Nothing is written while the preview is shown.
    expect((await configNow()).version).toBe(version);
    await page.screenshot({ path: join(SHOTS, "rollback-preview-1440.png") });

    await said(page, `Rolled back: version ${version + 1} equals version ${target}.`, () =>
      dialog.getByRole("button", { name: "Roll back" }).click(),
    );
    const { doc } = await configNow();
    expect([doc.featureFlags.previewFlag, doc.featureFlags.previewExtra, doc.rateLimits.preview]).toEqual([true, undefined, 40]);
    const rolled = page.locator("#history-list > li").first();
    await rolled.getByRole("heading", { name: `Version ${version + 1} current` }).waitFor();
    expect(await rolled.locator(".meta").textContent()).toMatch(`rollback to version ${target} · applied`);
    // The current config tells what the rollback restored: nothing is left as "earlier".
    expect(await rolled.locator(".diff li").allTextContents()).toEqual([
      "featureFlags.previewExtra: true → (none)",
      "featureFlags.previewFlag: false → true",
      "rateLimits.preview: 55 → 40",
    ]);
    await page.close();
  });

  it("previews the values a rollback sets even when they were written before the loaded versions", async () => {
    const patch = async (/** @type {object} */ change) => expect((await dev.app.patchConfig(change)).status).toBe(200);
    const deep = { variants: { x: "X", y: "Y" }, defaultVariant: "x" };
    await patch({ featureFlags: { deepFlag: deep }, rateLimits: { deep: 7 } });
    const set = (await configNow()).version;
    for (let i = 0; i < 50; i++) await patch({ featureFlags: { noise: i % 2 === 0 } });
    const target = (await configNow()).version;
    for (let i = 0; i < 50; i++) await patch({ featureFlags: { noise: i % 2 === 1 } });
    await patch({ featureFlags: { deepFlag: { ...deep, defaultVariant: "y" } }, rateLimits: { deep: 9 } });
    const { version } = await configNow();
    const page = await signedIn();
    await panel(page, "history");
    await page.locator("#history-list > li").first().getByRole("heading", { name: `Version ${version} current` }).waitFor();
    // The target is on the second page; what it restores was written on a later one.
    await page.getByRole("button", { name: "Load older versions" }).click();
    const button = page.getByRole("button", { name: `Roll back to version ${target}`, exact: true });
    expect(await page.getByRole("heading", { name: `Version ${set}`, exact: true }).count()).toBe(0);

    await button.click();
    const dialog = page.getByRole("dialog", { name: `Roll back to version ${target}?` });
    await dialog.waitFor();
    const lines = await dialog.locator(".diff li").allTextContents();
    const flagLine = String(lines.find((l) => l.startsWith("featureFlags.deepFlag: ")));
    const [from, to] = flagLine.slice("featureFlags.deepFlag: ".length).split(" → ").map((side) => JSON.parse(side));
    expect(from).toMatchObject({ ...deep, defaultVariant: "y" });
    expect(to).toMatchObject(deep);
    expect(lines).toContain("rateLimits.deep: 9 → 7");
    expect(lines.filter((l) => /unknown|earlier/.test(l))).toEqual([]);
    // The versions it read to tell them are listed now.
    expect(await page.getByRole("heading", { name: `Version ${set}`, exact: true }).count()).toBe(1);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect((await configNow()).version).toBe(version);
    await page.close();
  });
});

describe("Sessions panel", () => {
  it("lists a user's sessions page by page, revokes one by its handle, then all, and the API refuses them", async () => {
    const ids = [];
    for (let i = 0; i < 11; i++) ids.push(await mint("pat", `pat${i}@example.com`));
    await mint("quinn", "quinn@example.com");
    const page = await signedIn();
    await panel(page, "sessions");
    await page.getByLabel("User id").fill("pat");
    await page.getByLabel("Per page").selectOption("10");
    await page.getByRole("button", { name: "List sessions" }).click();
    await page.locator("#sessions-summary").filter({ hasText: "Page 1: 10 active sessions of pat; more on the next page." }).waitFor();
    expect(await page.locator("#session-rows > tr").count()).toBe(10);
    // Each row shows what the API lists: user, e-mail, the three times, the handle.
    const listed = (await dev.app.listSessions({ userId: "pat", limit: 10 })).body.sessions;
    const shown = await page.locator("#session-rows > tr").evaluateAll((rows) =>
      rows.map((r) => [.../** @type {HTMLTableRowElement} */ (r).cells].slice(0, 6).map((c) => c.querySelector("time")?.dateTime ?? c.textContent)),
    );
    const iso = (/** @type {number} */ ms) => new Date(ms).toISOString();
    /** @type {{ userId: string, email: string, createdAt: number, idleExpiresAt: number, expiresAt: number, handle: string }[]} */
    const rows = listed;
    expect(shown).toEqual(rows.map((l) => [l.userId, l.email, iso(l.createdAt), iso(l.idleExpiresAt), iso(l.expiresAt), l.handle]));
    await page.getByRole("button", { name: "Next page" }).click();
    await page.locator("#sessions-summary").filter({ hasText: "Page 2: 1 active session of pat." }).waitFor();
    expect(await page.getByRole("button", { name: "Next page" }).isDisabled()).toBe(true);

    // The one session on page 2, by its e-mail: revoked by its handle.
    const email = String(await page.locator("#session-rows > tr > td").nth(1).textContent());
    const one = Number(/** @type {RegExpExecArray} */ (/^pat(\d+)@/.exec(email))[1]);
    const other = (one + 1) % ids.length;
    const revoke = page.getByRole("button", { name: new RegExp(`^Revoke session \\S+ of pat \\(${email.replace(".", "\\.")}\\)$`) });
    await said(page, "Revoked the session", () => revoke.click());
    await page.locator("#sessions-summary").filter({ hasText: "Page 2: 0 active sessions of pat." }).waitFor();
    expect(await sessionStatus(ids[one])).toBe(401);
    expect(await sessionStatus(ids[other])).toBe(200);

    await page.getByRole("button", { name: "Revoke all sessions of pat" }).click();
    const all = page.getByRole("dialog", { name: "Revoke every session of pat?" }).getByRole("button", { name: "Revoke all" });
    await said(page, "Revoked 10 sessions of pat.", () => all.click());
    await page.locator("#sessions-summary").filter({ hasText: "Page 1: 0 active sessions of pat." }).waitFor();
    expect(await sessionStatus(ids[other])).toBe(401);
    expect(await sessionStatus(ids[(other + 1) % ids.length])).toBe(401);
    const quinn = await dev.app.listSessions({ userId: "quinn" });
    expect(quinn.body.sessions).toHaveLength(1);
    await page.close();
  });
});

describe("Users panel", () => {
  it("looks up a profile, tells an uncached, a fresh and a stale copy apart, and saves a new name", async () => {
    expect((await dev.app.putUser("ursula", { name: "Ursula" })).status).toBe(200);
    const page = await signedIn();
    await panel(page, "users");
    const lookUp = async (/** @type {string} */ id) => {
      await page.getByLabel("Profile id").fill(id);
      await said(page, `Profile ${id}`, () => page.getByRole("button", { name: "Look up" }).click());
    };
    const cache = () => page.locator("#user-cache").getAttribute("data-state");

    await lookUp("ursula");
    expect(await page.locator("#user-shown-name").textContent()).toBe("Ursula");
    const profile = (await dev.app.getUser("ursula")).body;
    expect(await page.locator("#user-shown-updated time").getAttribute("datetime")).toBe(new Date(profile.updatedAt).toISOString());
    expect([await cache(), await page.locator("#user-cache").textContent()]).toEqual([
      "not cached",
      "not cached (X-Cache: MISS): read from D1 (no usable KV copy); it is cached now",
    ]);
    await lookUp("ursula");
    expect(await cache()).toBe("fresh");

    // A copy cached 1.5 TTLs ago (the profile TTL is cacheTtlSeconds: 120 s by now).
    expect((await dev.app.putUser("stella", { name: "Stella" })).status).toBe(200);
    const ttl = (await configNow()).doc.cacheTtlSeconds;
    const cachedAt = Date.now() - ttl * 1500;
    dev.kvPut("user:stella", JSON.stringify({ data: { id: "stella", name: "Stella (old copy)", updatedAt: cachedAt }, cachedAt, ttl }));
    await lookUp("stella");
    expect(await cache()).toBe("stale");
    expect(await page.locator("#user-shown-name").textContent()).toBe("Stella (old copy)");

    await lookUp("ursula");
    await page.getByLabel("Name", { exact: true }).fill("Ursula K.");
    await said(page, "Saved the name of ursula.", () => page.getByRole("button", { name: "Save name" }).click());
    expect(await page.locator("#user-shown-name").textContent()).toBe("Ursula K.");
    expect(await cache()).toBe("not cached");
    expect((await dev.app.getUser("ursula")).body.name).toBe("Ursula K.");

    // Markup from the API stays text.
    const markup = '<img src="/x" id="injected"><b>bold</b>';
    await page.getByLabel("Name", { exact: true }).fill(markup);
    await said(page, "Saved the name of ursula.", () => page.getByRole("button", { name: "Save name" }).click());
    expect(await page.locator("#user-shown-name").textContent()).toBe(markup);
    expect(await page.locator("#injected, #user-shown-name b").count()).toBe(0);

    await page.getByLabel("Profile id").fill("nobody-here");
    await said(page, "No profile with id nobody-here.", () => page.getByRole("button", { name: "Look up" }).click());
    expect(await page.getByRole("button", { name: "Create profile" }).isVisible()).toBe(true);
    await page.close();
  });
});

describe("Cost panel", () => {
  it("shows each request's KV and D1 work from its Server-Timing", async () => {
    const page = await signedIn();
    await panel(page, "users");
    await page.getByLabel("Profile id").fill("ursula");
    await said(page, "Profile ursula", () => page.getByRole("button", { name: "Look up" }).click());
    await panel(page, "cost");
    await said(page, "Sent 8 sample requests", () => page.getByRole("button", { name: "Send sample requests" }).click());
    const row = async (/** @type {string} */ request) => {
      const cells = page.locator("#cost-rows tr").filter({ has: page.getByRole("rowheader", { name: request, exact: true }) }).first().locator("td");
      return cells.allTextContents();
    };
    // [status, KV reads, writes, lists, deletes, KV ms, D1 queries, D1 ms]
    const health = await row("GET /health");
    expect(health.slice(0, 5).concat(health[6])).toEqual(["200", "0", "0", "0", "0", "0"]);
    const history = await row("GET /admin/config/history?limit=20");
    expect([history[0], history[1], history[6]]).toEqual(["200", "0", "1"]);
    // The second of two reads finds the copy the first one left in KV: no D1.
    const user = await row("GET /users/ursula");
    expect([user[0], user[6]]).toEqual(["200", "0"]);
    expect(Number(user[1])).toBeGreaterThanOrEqual(1);
    for (const cells of [health, history, user]) {
      expect(cells[5]).toMatch(/^\d+\.\d$/);
      expect(cells[7]).toMatch(/^\d+\.\d$/);
    }
    // The page's own earlier requests are listed too, newest first.
    expect(await page.locator("#cost-rows tr").last().textContent()).toMatch(/^GET \/admin\/config200/);
    await page.close();
  });
});

describe("Tokens panel", () => {
  /** @param {Page} page @param {string} name */
  const rowOf = (page, name) => page.locator("#token-rows > tr").filter({ has: page.getByRole("rowheader", { name, exact: true }) });

  it("creates a token of a scope, shows it once, lists it, and the API takes it for what its scope covers only", async () => {
    const page = await signedIn();
    await panel(page, "tokens");
    await ready(page, "tokens");
    const reader = await createToken(page, "console-reader", "read");
    expect(reader).toMatch(TOKEN);
    expect(await page.locator("#tokens-new").isVisible()).toBe(true);
    expect(await page.locator("#tokens-new-hint").textContent()).toContain("it will not be shown again");
    expect(await page.locator("#tokens-new-value").getAttribute("readonly")).not.toBeNull();
    // The field has the focus, its token selected, ready to be copied.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("tokens-new-value");

    // Listed, newest first, with its scope, its time and its creator as the API has them.
    await page.locator("#token-rows > tr").first().getByRole("rowheader", { name: "console-reader", exact: true }).waitFor();
    const listed = await tokensListed();
    const mine = listed.find((t) => t.name === "console-reader");
    expect(mine?.scope).toBe("read");
    const cells = rowOf(page, "console-reader").locator("td");
    expect(await cells.nth(0).textContent()).toBe("read");
    expect(await cells.nth(1).locator("time").getAttribute("datetime")).toBe(new Date(Number(mine?.createdAt)).toISOString());
    expect(await cells.nth(2).textContent()).toBe(mine?.createdBy);
    // The token itself is in the one field only: not in the list, the API's list, or storage.
    expect(JSON.stringify(listed)).not.toContain(reader);
    expect(await page.locator("#token-rows").textContent()).not.toContain(reader);
    expect(await page.evaluate(() => JSON.stringify(sessionStorage))).not.toContain(reader);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    // A read token reads the admin API and writes nothing, tokens included.
    expect((await withToken(reader, "GET", "/admin/config")).status).toBe(200);
    const { version } = await configNow();
    const ifMatch = { "If-Match": `"${version}"` };
    const patch = await withToken(reader, "PATCH", "/admin/config", { body: { featureFlags: { readerFlag: true } }, headers: ifMatch });
    expect([patch.status, patch.body?.code]).toEqual([403, "forbidden"]);
    const made = await withToken(reader, "POST", "/admin/tokens", { body: { name: "from-reader", scope: "read" } });
    expect([made.status, made.body?.code]).toEqual([403, "forbidden"]);
    expect((await configNow()).version).toBe(version);

    // Another token takes the field's place; a flags token writes the config, as token:<name>.
    const writer = await createToken(page, "console-writer", "flags");
    expect(writer).toMatch(TOKEN);
    expect(writer).not.toBe(reader);
    await page.locator("#token-rows > tr").first().getByRole("rowheader", { name: "console-writer", exact: true }).waitFor();
    expect(await rowOf(page, "console-writer").locator("td").first().textContent()).toBe("flags");
    const write = await withToken(writer, "PATCH", "/admin/config", { body: { featureFlags: { writerFlag: true } }, headers: ifMatch });
    expect(write.status).toBe(200);
    expect((await configNow()).doc.featureFlags.writerFlag).toBe(true);
    const [entry] = (await dev.app.getConfigHistory({ limit: 1 })).body.entries;
    expect([entry.version, entry.actor]).toEqual([version + 1, "token:console-writer"]);

    // Shown once: back on the panel, the token is gone from the page.
    await panel(page, "config");
    await panel(page, "tokens");
    await ready(page, "tokens");
    expect(await page.locator("#tokens-new").isVisible()).toBe(false);
    expect(await page.locator("#tokens-new-value").inputValue()).toBe("");
    const values = await page.evaluate(() => [...document.querySelectorAll("input")].map((i) => i.value).join(" "));
    expect(`${values} ${await page.locator("body").textContent()}`).not.toContain(writer);
    await page.screenshot({ path: join(SHOTS, "tokens-1440.png"), fullPage: true });
    await page.close();
  });

  it("asks before revoking a token, removes its row, and the API refuses the token from then on", async () => {
    const page = await signedIn();
    await panel(page, "tokens");
    await ready(page, "tokens");
    const doomed = await createToken(page, "console-revoked", "sessions");
    expect((await withToken(doomed, "GET", "/admin/config")).status).toBe(200);
    const revoke = page.getByRole("button", { name: "Revoke token console-revoked", exact: true });
    const dialog = page.getByRole("dialog", { name: "Revoke token console-revoked?" });

    // Cancelled: nothing changes, and the focus is back on the button.
    await revoke.click();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Revoke token console-revoked");
    expect((await tokensListed()).map((t) => t.name)).toContain("console-revoked");
    expect((await withToken(doomed, "GET", "/admin/config")).status).toBe(200);

    await revoke.click();
    await said(page, "Revoked token console-revoked.", () => dialog.getByRole("button", { name: "Revoke", exact: true }).click());
    await page.getByRole("rowheader", { name: "console-revoked", exact: true }).waitFor({ state: "detached" });
    // The revoked token is no longer shown; the focus is on the form.
    expect(await page.locator("#tokens-new").isVisible()).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("tokens-name");
    expect((await tokensListed()).map((t) => t.name)).not.toContain("console-revoked");
    // Refused through this Worker at once in dev; polled once a second (each refusal counts
    // against the sender's address) within the documented propagation bound.
    let status = 0;
    await eventually(async () => (status = (await withToken(doomed, "GET", "/admin/config")).status) === 401, 12_000, 1000);
    expect(status).toBe(401);
    expect((await withToken(dev.token, "DELETE", "/admin/tokens/console-revoked")).status).toBe(404);
    await page.close();
  });

  it("shows a refused name at its field: none, an invalid one, one in use", async () => {
    const page = await signedIn();
    await panel(page, "tokens");
    await ready(page, "tokens");
    const name = page.getByLabel("Token name");
    const create = () => page.getByRole("button", { name: "Create token" }).click();

    await name.fill("");
    await create();
    await page.locator("#tokens-name-error").filter({ hasText: "Name the token first." }).waitFor();
    expect(await name.getAttribute("aria-invalid")).toBe("true");

    for (const bad of ["not a valid name!", "x".repeat(65), "é-token"]) {
      await name.fill(bad);
      await alarmed(page, /^Not created: name: /, create);
      expect(await page.locator("#tokens-name-error").textContent(), bad).toMatch(/^name: /);
      expect(await name.getAttribute("aria-invalid"), bad).toBe("true");
      expect(await page.evaluate(() => document.activeElement?.id), bad).toBe("tokens-name");
    }
    expect(await page.locator("#tokens-new").isVisible()).toBe(false);
    expect((await tokensListed()).map((t) => t.name)).not.toContain("not a valid name!");

    const first = await createToken(page, "console-twice", "sessions");
    await rowOf(page, "console-twice").waitFor();
    expect(await name.getAttribute("aria-invalid")).toBeNull();
    await name.fill("console-twice");
    await page.getByRole("radio", { name: "read", exact: true }).check();
    await alarmed(page, "Not created: name: is already in use", create);
    expect(await page.locator("#tokens-name-error").textContent()).toBe("name: is already in use, or 100 tokens exist");
    expect(await name.getAttribute("aria-invalid")).toBe("true");
    // The first token of that name is listed once, with its own scope, and still works.
    expect(await rowOf(page, "console-twice").count()).toBe(1);
    expect(await rowOf(page, "console-twice").locator("td").first().textContent()).toBe("sessions");
    expect((await tokensListed()).filter((t) => t.name === "console-twice").map((t) => t.scope)).toEqual(["sessions"]);
    expect((await withToken(first, "GET", "/admin/config")).status).toBe(200);
    await page.close();
  });

  it("tells a tab signed in with a scoped token that only the full admin token can manage tokens", async () => {
    expect((await dev.app.patchConfig({ featureFlags: { scopedFlag: false } })).status).toBe(200);
    const made = await withToken(dev.token, "POST", "/admin/tokens", { body: { name: "console-flags", scope: "flags" } });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: "console-flags", scope: "flags" });
    expect(made.body.token).toMatch(TOKEN);

    // A scoped token signs in (every scope reads the config) and writes what its scope covers.
    const page = await open();
    await page.getByLabel("Admin token").fill(made.body.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#app").waitFor({ state: "visible" });
    await ready(page, "config");
    await said(page, "Saved as version", () => page.getByRole("switch", { name: "scopedFlag", exact: true }).click());
    expect((await configNow()).doc.featureFlags.scopedFlag).toBe(true);
    await panel(page, "history");
    const newest = page.locator("#history-list > li").first();
    await newest.locator(".meta").filter({ hasText: "by token:console-flags" }).waitFor();

    await panel(page, "tokens");
    await page.getByLabel("Token name").fill("from-flags");
    await alarmed(page, FORBIDDEN, () => page.getByRole("button", { name: "Create token" }).click());
    expect(await page.locator("#tokens-forbidden").isVisible()).toBe(true);
    expect(await page.locator("#tokens-new").isVisible()).toBe(false);
    expect((await tokensListed()).map((t) => t.name)).not.toContain("from-flags");
    // Still signed in: a 403 is not a refused token.
    expect(await page.locator("#app").isVisible()).toBe(true);
    await page.close();
  });
});

describe("accessibility and layout", () => {
  /**
   * axe-core's violations of impact serious or critical on the page as it is.
   * @param {Page} page
   */
  async function seriousViolations(page) {
    await page.evaluate(AXE); // through the debugging protocol: the page's CSP does not apply
    /** @type {{ violations: { id: string, impact: string, nodes: { target: string[] }[] }[] }} */
    const result = await page.evaluate(() => /** @type {any} */ (window).axe.run(document, { resultTypes: ["violations"] }));
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  }

  it("passes axe-core with no serious or critical violation on the sign-in form and every panel", async () => {
    const page = await open();
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel("Admin token").fill(dev.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#app").waitFor({ state: "visible" });
    await panel(page, "users");
    await page.getByLabel("Profile id").fill("ursula");
    await said(page, "Profile ursula", () => page.getByRole("button", { name: "Look up" }).click());
    for (const name of PANELS) {
      await panel(page, name);
      if (name === "cost") await said(page, "Sent", () => page.getByRole("button", { name: "Send sample requests" }).click());
      // The Tokens panel with a new token shown, and a field error.
      if (name === "tokens") {
        await createToken(page, "axe-check", "flags");
        await page.getByLabel("Token name").fill("axe-check");
        await alarmed(page, "Not created: name: is already in use", () => page.getByRole("button", { name: "Create token" }).click());
      }
      await ready(page, name);
      expect(await seriousViolations(page), name).toEqual([]);
    }
    await page.close();
  });

  it("passes axe-core with no serious or critical violation on the flag editor, its answers, errors, history and restore dialog", async () => {
    const flag = {
      variants: { red: "#f00", blue: "#00f" },
      defaultVariant: "red",
      rules: [{ when: { country: { in: ["NL"] }, tier: { equals: 2 } }, variant: "blue" }],
      rollout: { red: 50, blue: 50 },
    };
    for (const axeFlag of [flag, { ...flag, enabled: false }]) {
      expect((await dev.app.patchConfig({ featureFlags: { axeFlag } })).status).toBe(200);
    }
    const page = await signedIn();
    await editFlag(page, "axeFlag");
    await page.locator("#flag-history > li").first().waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.locator("#flag-try").getByLabel("targetingKey").fill("user-1");
    await said(page, "axeFlag: value", () => page.locator("#flag-try").getByRole("button", { name: "Evaluate" }).click());
    await page.getByRole("spinbutton", { name: "red (%)" }).fill("10");
    await alarmed(page, "Not saved: Rollout percentages must total 100", () => page.getByRole("button", { name: "Save axeFlag" }).click());
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole("button", { name: /^Restore axeFlag as before version / }).first().click();
    await page.getByRole("dialog", { name: /^Restore axeFlag as before version / }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.keyboard.press("Escape");
    await page.close();
  });

  it("passes axe-core with no serious or critical violation on the flag editor's prerequisites and schedule, with new rows and refusals", async () => {
    const onOff = { variants: { on: true, off: false }, defaultVariant: "off" };
    const axeNeeds = { ...onOff, prerequisites: { axeGate: ["on"] }, schedule: [{ at: 1_000_000_000_000, enabled: true }, { at: Date.UTC(2100, 0, 1), enabled: false }] };
    const change = { axeGate: true, axeNeeds, axeLoop: { ...onOff, prerequisites: { axeNeeds: ["on"] } } };
    expect((await dev.app.patchConfig({ featureFlags: change })).status).toBe(200);
    const page = await signedIn();
    await editFlag(page, "axeNeeds");
    const form = page.locator("#flag-editor");
    // A row of each just added (one with no flag named yet), and the stored ones.
    await form.getByRole("button", { name: "Add a prerequisite" }).click();
    await form.getByRole("button", { name: "Add a switch" }).click();
    await page.locator("#flag-history > li").first().waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    // Refused on the page, at a row.
    await form.getByRole("combobox", { name: "Flag of prerequisite 2", exact: true }).fill("axeNope");
    await alarmed(page, "Not saved: No flag is named axeNope.", () => form.getByRole("button", { name: "Save axeNeeds" }).click());
    expect(await seriousViolations(page)).toEqual([]);
    // Refused by the API, at the section.
    await form.getByRole("combobox", { name: "Flag of prerequisite 2", exact: true }).fill("axeLoop");
    await form.getByRole("group", { name: "Variants prerequisite 2 must answer" }).getByRole("checkbox", { name: "on", exact: true }).check();
    await alarmed(page, "Not saved: featureFlags.axeLoop.prerequisites: cycle", () => form.getByRole("button", { name: "Save axeNeeds" }).click());
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  });

  it("edits a flag from the keyboard alone: search, open its editor, add a rule, save, try it", async () => {
    const kbdFlag = { variants: { on: true, off: false }, defaultVariant: "off" };
    expect((await dev.app.patchConfig({ featureFlags: { kbdFlag } })).status).toBe(200);
    const page = await signedIn();
    await ready(page, "config");
    const focused = () => page.evaluate(() => document.activeElement?.id ?? "");
    const tabTo = async (/** @type {string} */ selector) => {
      for (let i = 0; i < 120; i++) {
        if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
        await page.keyboard.press("Tab");
      }
      throw new Error(`Tab never reached ${selector}`);
    };
    await tabTo("#flag-search");
    await page.keyboard.type("kbdFlag");
    await page.locator("#flags-summary").filter({ hasText: "Flags 1–1 of 1 whose name contains “kbdFlag”" }).waitFor();
    await tabTo('[aria-label="Edit flag kbdFlag"]');
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Flag kbdFlag", exact: true }).waitFor();
    expect(await focused()).toBe("flag-editor-title");

    await tabTo("#fe-add-rule");
    await page.keyboard.press("Enter");
    expect(await focused()).toMatch(/^fe-c-\d+-attr$/);
    await page.keyboard.type("country");
    await tabTo('[id$="-values"]');
    await page.keyboard.type("NL, BE");
    await tabTo('select[id^="fe-r-"]');
    // The choices: none yet, then the variants by name (off, on).
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    expect(await page.locator('select[id^="fe-r-"] option:checked').textContent()).toBe("on");
    await tabTo("#fe-save");
    await said(page, "Saved flag kbdFlag", () => page.keyboard.press("Enter"));
    expect((await configNow()).doc.featureFlags.kbdFlag.rules).toEqual([{ when: { country: { in: ["NL", "BE"] } }, variant: "on" }]);
    expect(await focused()).toBe("fe-save");

    await tabTo("#try-attrs");
    await page.keyboard.type('{"country": "BE"}');
    await tabTo('#flag-try button[type="submit"]');
    await said(page, "kbdFlag: value true, variant on, reason TARGETING_MATCH.", () => page.keyboard.press("Enter"));
    await page.close();
  });

  it("works from the keyboard alone: the panels, a flag switch and the maintenance dialog", async () => {
    const page = await signedIn();
    // A page of flags is up to 50 rows of three controls each.
    const tabTo = async (/** @type {string} */ selector) => {
      for (let i = 0; i < 250; i++) {
        if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
        await page.keyboard.press("Tab");
      }
      throw new Error(`Tab never reached ${selector}`);
    };
    await tabTo('nav a[href="#sessions"]');
    await page.keyboard.press("Enter");
    await page.locator('[data-panel="sessions"]').waitFor({ state: "visible" });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("sessions-title");

    // Reloading the tab keeps the sign-in (sessionStorage) and opens the fragment's panel.
    await page.goto(`${BASE}/console#config`);
    await ready(page, "config");
    await tabTo("#maintenance");
    await page.keyboard.press("Space");
    const dialog = page.getByRole("dialog", { name: "Switch maintenance mode on?" });
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("maintenance");
    expect((await configNow()).doc.maintenanceMode).toBe(false);

    const before = await flagOn("darkLaunch");
    await tabTo('[role="switch"][data-path="featureFlags.darkLaunch"]');
    await said(page, "Saved as version", () => page.keyboard.press("Space"));
    expect(await flagOn("darkLaunch")).toBe(!before);
    // The switch keeps the focus after the list is redrawn.
    expect(await page.evaluate(() => /** @type {HTMLElement | null} */ (document.activeElement)?.dataset.path)).toBe("featureFlags.darkLaunch");
    await page.close();
  });

  /**
   * Where the elements `selector` finds lie against the table container they are in and the
   * viewport, and whether that container scrolls sideways.
   * @param {Page} page @param {string} selector
   */
  async function placement(page, selector) {
    // A list drawn again (the stale badges arrive after it) is measured once it is in place.
    await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].every((el) => el.closest(".table-wrap")), selector);
    return page.locator(selector).evaluateAll((els) =>
      els.map((el) => {
        const wrap = /** @type {HTMLElement} */ (el.closest(".table-wrap"));
        const box = el.getBoundingClientRect();
        const frame = wrap.getBoundingClientRect();
        return {
          text: el.textContent,
          inside: box.left >= frame.left && box.right <= frame.right,
          inView: box.left >= 0 && box.right <= window.innerWidth,
          scrolls: wrap.scrollWidth > wrap.clientWidth,
        };
      }),
    );
  }
  /** @param {{ text: string | null, inside: boolean, inView: boolean, scrolls: boolean }[]} found */
  const unclipped = (found) => found.map(({ text }) => ({ text, inside: true, inView: true, scrolls: false }));

  describe("wide screens", () => {
    beforeAll(async () => {
      for (let i = 0; i < 11; i++) await mint("wren", `wren.layout-check-${i}@example.com`);
      // Flags with the longest names there are (64 characters), one with 16 long variants.
      /** @type {Record<string, unknown>} */
      const flags = {};
      for (let i = 0; i < 3; i++) flags[`layout-flag-${i}-${"x".repeat(50)}`] = i === 1;
      /** @type {Record<string, number>} */
      const variants = {};
      for (let i = 0; i < 16; i++) variants[`v${String(i).padStart(2, "0")}-${"y".repeat(60)}`] = i;
      const rollout = Object.fromEntries(Object.keys(variants).map((v, i) => [v, i === 0 ? 10 : 6]));
      // Prerequisites with every one of 16 long variants, and a schedule.
      const need = `layout-need-${"x".repeat(52)}`;
      flags[need] = { variants, defaultVariant: Object.keys(variants)[0] };
      const prerequisites = { [need]: Object.keys(variants), [`layout-flag-1-${"x".repeat(50)}`]: ["on"] };
      const schedule = [{ at: Date.UTC(2099, 0, 1) + 123, enabled: true }, { at: Date.UTC(2100, 0, 1), enabled: false }];
      flags[`layout-flag-3-${"x".repeat(50)}`] = { variants, defaultVariant: Object.keys(variants)[0], rollout, prerequisites, schedule };
      expect((await dev.app.patchConfig({ featureFlags: flags })).status).toBe(200);
      // Tokens with the longest names there are (64 characters).
      for (let i = 0; i < 3; i++) {
        const body = { name: `layout-check-${i}-${"x".repeat(49)}`, scope: "sessions" };
        expect((await withToken(dev.token, "POST", "/admin/tokens", { body })).status).toBe(201);
      }
    });

    for (const [width, height] of [[1280, 800], [1440, 900], [1920, 1080]]) {
      it(`at ${width}x${height} shows every column of the Sessions and Cost tables without sideways scrolling`, async () => {
        const page = await signedIn(width, height);
        await panel(page, "sessions");
        await page.getByLabel("User id").fill("wren");
        await page.getByLabel("Per page").selectOption("10");
        await page.getByRole("button", { name: "List sessions" }).click();
        await page.locator("#sessions-summary").filter({ hasText: "Page 1: 10 active sessions of wren" }).waitFor();
        const headers = await placement(page, "[data-panel=sessions] thead th");
        expect(headers).toHaveLength(7);
        expect(headers).toEqual(unclipped(headers));
        let found = await placement(page, "#session-rows button");
        expect(found.map((f) => f.text)).toEqual(Array(10).fill("Revoke"));
        expect(found).toEqual(unclipped(found));
        await page.screenshot({ path: join(SHOTS, `sessions-${width}x${height}.png`), fullPage: true });
        // The next page's request carries a long cursor: the Cost table's widest request.
        await page.getByRole("button", { name: "Next page" }).click();
        await page.locator("#sessions-summary").filter({ hasText: "Page 2: 1 active session of wren." }).waitFor();
        found = await placement(page, "#session-rows button");
        expect(found.map((f) => f.text)).toEqual(["Revoke"]);
        expect(found).toEqual(unclipped(found));

        await panel(page, "cost");
        await ready(page, "cost");
        await page.getByRole("rowheader", { name: /^GET \/admin\/sessions\?limit=10&userId=wren&cursor=/ }).first().waitFor();
        // The last column (D1 ms) of every row, and every header.
        found = await placement(page, "#cost-rows > tr > :last-child, [data-panel=cost] thead th");
        expect(found.filter((f) => f.text === "D1 ms")).toHaveLength(1);
        expect(found.length).toBeGreaterThan(9);
        expect(found).toEqual(unclipped(found));
        await page.screenshot({ path: join(SHOTS, `cost-${width}x${height}.png`), fullPage: true });
        await page.close();
      });

      it(`at ${width}x${height} shows every column of the flags list and the flag editor without sideways scrolling`, async () => {
        const page = await signedIn(width, height);
        await ready(page, "config");
        await page.getByLabel("Search flags by name").fill("layout-flag-");
        await page.locator("#flags-summary").filter({ hasText: "Flags 1–4 of 4" }).waitFor();
        const headers = await placement(page, ".flag-list thead th");
        expect(headers).toHaveLength(5);
        expect(headers).toEqual(unclipped(headers));
        const found = await placement(page, "#flags button, #flags [role=switch]");
        expect(found.filter((f) => f.text === "Edit")).toHaveLength(4);
        expect(found).toEqual(unclipped(found));
        // The rate-limit groups beneath: every column too.
        const limits = await placement(page, "#limits thead th, #limit-rows > tr > :last-child");
        expect(limits.length).toBeGreaterThan(4);
        expect(limits).toEqual(unclipped(limits));
        await page.screenshot({ path: join(SHOTS, `flags-${width}x${height}.png`), fullPage: true });
        await page.getByRole("button", { name: /^Edit flag layout-flag-3-/ }).click();
        await page.getByRole("spinbutton", { name: /^v15-/ }).waitFor();
        const layout = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
        expect(layout.page).toBeLessThanOrEqual(layout.viewport);
        // The tables of variants, prerequisites and switches, and every cell of them, within their section.
        const cells = await page.locator(".editor .rows, .editor .rows td").evaluateAll((els) =>
          els.map((el) => el.getBoundingClientRect().right <= /** @type {HTMLElement} */ (el.closest("fieldset")).getBoundingClientRect().right),
        );
        expect(cells.length).toBe(3 + 16 * 3 + 2 * 3 + 2 * 4);
        expect(cells.every(Boolean)).toBe(true);
        await page.screenshot({ path: join(SHOTS, `flag-editor-${width}x${height}.png`), fullPage: true });
        await page.close();
      });

      it(`at ${width}x${height} shows every column of the Tokens table without sideways scrolling`, async () => {
        const page = await signedIn(width, height);
        await panel(page, "tokens");
        await page.getByRole("rowheader", { name: /^layout-check-2-/ }).waitFor();
        const headers = await placement(page, "[data-panel=tokens] thead th");
        expect(headers).toHaveLength(5);
        expect(headers).toEqual(unclipped(headers));
        const found = await placement(page, "#token-rows button");
        expect(found.length).toBeGreaterThanOrEqual(3);
        expect(found.every((f) => f.text === "Revoke")).toBe(true);
        expect(found).toEqual(unclipped(found));
        await page.screenshot({ path: join(SHOTS, `tokens-${width}x${height}.png`), fullPage: true });
        await page.close();
      });
    }
  });

  for (const width of [375, 1440]) {
    it(`fits ${width} px wide: no sideways scrolling of the page, every tab in view; a screenshot of each panel`, async () => {
      const page = await signedIn(width);
      for (const name of PANELS) {
        await panel(page, name);
        if (name === "cost") await said(page, "Sent", () => page.getByRole("button", { name: "Send sample requests" }).click());
        if (name === "tokens") await createToken(page, `fit-${width}`, "read");
        await ready(page, name);
        const layout = await page.evaluate(() => ({
          page: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
          tabs: [...document.querySelectorAll("nav a")].map((a) => a.getBoundingClientRect().right),
        }));
        expect(layout.page, name).toBeLessThanOrEqual(layout.viewport);
        expect(Math.max(...layout.tabs), name).toBeLessThanOrEqual(layout.viewport);
        await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
      }
      // A flag's editor with rules, a rollout, a try-it answer and its history (axeFlag, of the axe test).
      await panel(page, "config");
      await editFlag(page, "axeFlag");
      await page.locator("#flag-history > li").first().waitFor();
      await page.locator("#flag-try").getByLabel("targetingKey").fill("user-1");
      await said(page, "axeFlag: value", () => page.locator("#flag-try").getByRole("button", { name: "Evaluate" }).click());
      const editorLayout = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
      expect(editorLayout.page).toBeLessThanOrEqual(editorLayout.viewport);
      await page.screenshot({ path: join(SHOTS, `flag-editor-${width}.png`), fullPage: true });
      // One with prerequisites and a schedule (axeNeeds, of the axe test), a row of each added.
      await editFlag(page, "axeNeeds");
      await page.getByRole("button", { name: "Add a prerequisite" }).click();
      await page.getByRole("button", { name: "Add a switch" }).click();
      const sectionsLayout = await page.evaluate(() => ({ page: document.documentElement.scrollWidth, viewport: window.innerWidth }));
      expect(sectionsLayout.page).toBeLessThanOrEqual(sectionsLayout.viewport);
      await page.locator("#flag-form-area").screenshot({ path: join(SHOTS, `flag-editor-prerequisites-schedule-${width}.png`) });
      await page.close();
    });
  }
});
