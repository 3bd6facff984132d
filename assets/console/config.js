// The Config panel: maintenance, rate limits and settings, and the flags (flags.js). Every save is a PATCH of
// just what changed, conditional on the version shown (`If-Match`): if someone else wrote
// in between, the API refuses (412) and the panel shows the conflict instead of
// overwriting. A refused value (400) is shown at the control the API's message names
// (`featureFlags.beta.rollout: …` → the JSON of flag `beta`).

import { call, complain, problem } from "./api.js";
import { $, alarm, clearErrors, confirmed, fieldError, h, say } from "./dom.js";
import * as flags from "./flags.js";

let current = null; // the config document as the API answered it
let version = null; // its version: what every write is conditional on
let busy = false;

/** [field, label] of the numeric settings. */
const SETTINGS = [
  ["rateLimitWindowSeconds", "Rate-limit window (s)"],
  ["cacheTtlSeconds", "Profile cache freshness, cacheTtlSeconds (s)"],
  ["sessionIdleSeconds", "Session idle timeout (s)"],
  ["sessionAbsoluteSeconds", "Session lifetime (s)"],
  ["renewAfterSeconds", "Renew a session in use after (s)"],
];

const panel = () => document.querySelector('[data-panel="config"]');
/** The config document and its version, as last answered. */
export const doc = () => current;
export const versionShown = () => version;
export const flagNames = () => Object.keys(current?.featureFlags ?? {});

/** Loads the authoritative config (and its version) and shows it. */
export async function load() {
  const answer = await call("GET", "/admin/config");
  if (!answer.ok) return complain(answer, "Could not load the config");
  show(answer);
  await loadUsage();
}

/** Loads when each flag was last evaluated, for the list's stale badges (none if refused). */
export async function loadUsage() {
  const usage = await call("GET", "/admin/flags/usage");
  flags.usageLoaded(usage.ok ? usage.body : null);
  flags.render();
}

/** Shows a config answer (`GET` or a write) whole. */
export function show(answer, parts = ["maintenance", "flags", "limits"]) {
  current = answer.body;
  version = answer.version;
  $("config-conflict").hidden = true;
  $("config-version").textContent = `version ${version}`;
  const focused = document.activeElement?.id;
  if (parts.includes("maintenance")) $("maintenance").checked = current.maintenanceMode;
  if (parts.includes("flags")) flags.render();
  if (parts.includes("limits")) renderLimits();
  // Re-rendered controls keep the keyboard focus.
  if (focused && document.activeElement?.id !== focused) $(focused)?.focus();
}

export function reset() {
  current = version = null;
  for (const id of ["limit-rows", "settings"]) $(id).replaceChildren();
  flags.reset();
  $("config-version").textContent = "";
  clearErrors(panel());
}

/**
 * PATCHes `change` if the config is still the version shown. `at` is the control to show
 * a refused value at when the API's message names none on the page, or a function of the
 * message's path that chooses it (a message may name another flag's field).
 */
export async function write(change, at) {
  if (busy) return false;
  busy = true;
  clearErrors(panel());
  const answer = await call("PATCH", "/admin/config", { body: change, ifMatch: version });
  busy = false;
  if (answer.ok) {
    const parts = [];
    if ("maintenanceMode" in change) parts.push("maintenance");
    if ("featureFlags" in change) parts.push("flags");
    if (Object.keys(change).some((k) => k !== "maintenanceMode" && k !== "featureFlags")) parts.push("limits");
    show(answer, parts);
    say(`Saved as version ${version}.`);
    return true;
  }
  if (answer.status === 412) conflict(answer.version);
  else if (answer.status === 400) refused(problem(answer), at);
  else complain(answer, "Not saved");
  return false;
}

function conflict(now) {
  const text =
    `Not saved: someone changed the config since you loaded version ${version}` +
    (now === null ? "" : ` (it is now version ${now})`) +
    ". Nothing was overwritten. Reload the config, then make your change again.";
  $("config-conflict-text").textContent = text;
  $("config-conflict").hidden = false;
  alarm(text);
}

/** The API's "path: problem" message, shown at the control for that path. */
function refused(message, fallback) {
  const path = message.split(": ")[0];
  const control = controlFor(path) ?? (typeof fallback === "function" ? fallback(path) : fallback);
  if (control) fieldError(control, message);
  else $("config-error").textContent = message;
  alarm(`Not saved: ${message}`);
}

/** The control whose `data-path` is `path` or the nearest ancestor of it. */
function controlFor(path) {
  let best = null;
  for (const el of panel().querySelectorAll("[data-path]")) {
    const p = el.dataset.path;
    if (el.closest("[hidden]")) continue;
    const covers = path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`);
    if (covers && (!best || p.length > best.dataset.path.length)) best = el;
  }
  return best;
}

// ---------------------------------------------------------------------------------------
// Controls.

/** Where a control's error is shown (`fieldError` finds it by the control's id). */
export const errorOf = (id) => h("p", { id: `${id}-error`, class: "field-error" });
/** A number as typed: the API says what is wrong with it. */
const numberInput = (input) =>
  h("input", { type: "number", min: 1, inputmode: "numeric", "aria-describedby": `${input.id}-error`, ...input });

// ---------------------------------------------------------------------------------------
// Maintenance.

const MAINTENANCE_ON =
  "Every gated route (config, flags, sessions, preferences, users) answers 503 maintenance " +
  "to everyone until it is switched off. The admin API and this console stay open.";

async function toggleMaintenance(event) {
  event.preventDefault(); // the switch moves only once the API has the change
  const on = !current.maintenanceMode;
  const sure = await confirmed(
    on ? "Switch maintenance mode on?" : "Switch maintenance mode off?",
    on ? MAINTENANCE_ON : "Gated routes answer again.",
    on ? "Switch on" : "Switch off",
  );
  if (sure) await write({ maintenanceMode: on }, $("maintenance"));
  else say("Maintenance mode left as it was.");
}

// ---------------------------------------------------------------------------------------
// Rate limits and settings: edited on the page, saved together.

let rowIds = 0;
function limitRow(group, limit, strict) {
  const id = `limit-${rowIds++}`;
  const remove = (event) => {
    const row = event.target.closest("tr");
    row.hidden = true;
    row.dataset.removed = "true";
    $("group-name").focus();
    say(`Group ${group} is removed when you save.`);
  };
  return h(
    "tr",
    { dataset: { group } },
    h("th", { scope: "row" }, h("code", {}, group)),
    h(
      "td",
      {},
      numberInput({ id, value: limit ?? "", placeholder: "default", "data-path": `rateLimits.${group}`, "aria-label": `Limit of ${group}` }),
      errorOf(id),
    ),
    h("td", {}, h("input", { type: "checkbox", id: `${id}-strict`, checked: strict, "aria-label": `Count ${group} strictly (D1)` })),
    h(
      "td",
      {},
      group === "default" ? "" : h("button", { type: "button", class: "quiet", onclick: remove, "aria-label": `Remove group ${group}` }, "Remove"),
    ),
  );
}

function renderLimits() {
  const limits = current.rateLimits ?? {};
  const strict = current.strictRateLimits ?? [];
  const groups = [...new Set([...Object.keys(limits), ...strict])];
  $("limit-rows").replaceChildren(...groups.map((g) => limitRow(g, limits[g], strict.includes(g))));
  const numbers = SETTINGS.map(([field, label]) =>
    h(
      "div",
      { class: "field" },
      h("label", { for: `setting-${field}` }, label),
      numberInput({ id: `setting-${field}`, value: current[field], "data-path": field }),
      errorOf(`setting-${field}`),
    ),
  );
  const legacy = h(
    "div",
    { class: "field" },
    h(
      "label",
      { class: "switch" },
      h("input", { type: "checkbox", id: "setting-legacyRateLimitHeaders", checked: current.legacyRateLimitHeaders }),
      "Legacy RateLimit-Limit/-Remaining/-Reset headers",
    ),
  );
  $("settings").replaceChildren(...numbers, legacy);
}

function addGroup() {
  const input = $("group-name");
  const group = input.value.trim();
  clearErrors(panel());
  if (!group) return fieldError(input, "Name the group first.");
  const existing = [...$("limit-rows").rows].find((r) => r.dataset.group === group);
  if (existing && !existing.hidden) return fieldError(input, `Group ${group} is listed already.`);
  existing?.remove();
  const row = limitRow(group, undefined, false);
  $("limit-rows").append(row);
  input.value = "";
  row.querySelector("input").focus();
  say(`Group ${group} added; give it a limit, then save.`);
}

/** A number typed as digits; anything else goes to the API as typed, which names the problem. */
const typed = (raw) => (/^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw.trim());

/** The PATCH for what was edited in the limits form. */
function limitsChange() {
  const change = {};
  const limits = {};
  const strict = [];
  const had = current.rateLimits ?? {};
  for (const row of $("limit-rows").rows) {
    const group = row.dataset.group;
    if (row.dataset.removed) {
      if (Object.hasOwn(had, group)) limits[group] = null;
      continue;
    }
    const raw = row.querySelector('input[type="number"]').value;
    const value = raw.trim() === "" ? null : typed(raw);
    if (value === null ? Object.hasOwn(had, group) : value !== had[group]) limits[group] = value;
    if (row.querySelector('input[type="checkbox"]').checked) strict.push(group);
  }
  if (Object.keys(limits).length) change.rateLimits = limits;
  const before = current.strictRateLimits ?? [];
  if (strict.length !== before.length || strict.some((g) => !before.includes(g))) change.strictRateLimits = strict;
  for (const [field] of SETTINGS) {
    const value = typed($(`setting-${field}`).value);
    if (value !== current[field]) change[field] = value;
  }
  const legacy = $("setting-legacyRateLimitHeaders").checked;
  if (legacy !== current.legacyRateLimitHeaders) change.legacyRateLimitHeaders = legacy;
  return change;
}

async function saveLimits(event) {
  event.preventDefault();
  const change = limitsChange();
  if (!Object.keys(change).length) return say("Nothing to save: no limit or setting was changed.");
  await write(change);
}

export function init() {
  $("maintenance").addEventListener("click", toggleMaintenance);
  flags.init();
  $("group-add").addEventListener("click", addGroup);
  $("limits").addEventListener("submit", saveLimits);
  $("config-reload").addEventListener("click", async () => {
    await load();
    say(`Reloaded: version ${version}.`);
  });
}
