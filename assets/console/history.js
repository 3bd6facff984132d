// The History panel: every version, what it changed, and a rollback to it.
//
// The history holds each write's request (`change`): a PATCH's merge patch, a PUT's whole
// document, a rollback's `{"version"}`. Replaying the loaded entries oldest first gives each
// version's document as far as they tell (a PUT tells all of it; a PATCH changes the paths
// it names; a rollback equals its target), so a version's diff is its document against the
// one before. A value set before the oldest loaded entry, or by the seed, shows as
// "earlier".

import { call, complain } from "./api.js";
import * as config from "./config.js";
import { $, alarm, confirmed, h, say, time } from "./dom.js";

const PAGE = 50;
let entries = []; // newest first, as the API lists them
let cursor = null; // the next (older) page, if any

const ABSENT = Symbol("absent");
const EARLIER = Symbol("earlier");
// The maps a PATCH merges key by key; every other field is replaced whole.
const MAPS = new Set(["featureFlags", "rateLimits"]);

/** A document or a change as path → value, at the grain a PATCH merges at. */
function paths(doc) {
  const out = new Map();
  for (const [key, value] of Object.entries(doc ?? {})) {
    if (MAPS.has(key) && value && typeof value === "object" && !Array.isArray(value)) {
      for (const [name, v] of Object.entries(value)) out.set(`${key}.${name}`, v);
    } else out.set(key, value);
  }
  return out;
}

/** version → its document as far as the loaded entries tell: `{values, complete}`. */
function documents() {
  const byVersion = new Map(entries.filter((e) => e.version !== null).map((e) => [e.version, e]));
  const docs = new Map();
  const unknown = { values: new Map(), complete: false };
  const docAt = (v) => {
    if (docs.has(v)) return docs.get(v);
    const e = byVersion.get(v);
    let doc = unknown;
    if (e?.action === "put") doc = { values: paths(e.change), complete: true };
    else if (e?.action === "rollback" && e.change?.version < v) doc = docAt(e.change.version);
    else if (e?.action === "patch") {
      const before = docAt(v - 1);
      doc = { values: new Map(before.values), complete: before.complete };
      for (const [p, x] of paths(e.change)) doc.values.set(p, x === null ? ABSENT : x);
    }
    docs.set(v, doc);
    return doc;
  };
  return docAt;
}

const valueAt = (doc, p) => (doc.values.has(p) ? doc.values.get(p) : doc.complete ? ABSENT : EARLIER);
const same = (a, b) => a === b || (typeof a !== "symbol" && typeof b !== "symbol" && JSON.stringify(a) === JSON.stringify(b));

function shown(value, path) {
  if (value === EARLIER) return h("span", { class: "earlier" }, "earlier");
  if (value === ABSENT) return h("span", { class: "absent" }, path.includes(".") ? "(none)" : "(default)");
  return h("code", {}, JSON.stringify(value));
}

/** The lines of a version's diff: path, before, after. */
function diffOf(entry, docAt) {
  if (entry.version === null) {
    const attempted = ([p, x]) => h("li", {}, h("code", {}, p), " would have been ", shown(x === null ? ABSENT : x, p));
    return [...paths(entry.change)].map(attempted);
  }
  const before = docAt(entry.version - 1);
  const after = docAt(entry.version);
  // A PATCH names what it touched; a PUT or a rollback may have touched anything.
  const touched =
    entry.action === "patch"
      ? [...paths(entry.change).keys()]
      : [...new Set([...before.values.keys(), ...after.values.keys()])];
  const lines = touched
    .filter((p) => !same(valueAt(before, p), valueAt(after, p)))
    .sort()
    .map((p) => h("li", {}, h("code", {}, p), ": ", shown(valueAt(before, p), p), " → ", shown(valueAt(after, p), p)));
  return lines.length ? lines : [h("li", { class: "empty" }, "No change to the document.")];
}

function item(entry, docAt, head) {
  const applied = entry.version !== null;
  const title = applied ? `Version ${entry.version}` : "Refused attempt";
  const what = entry.action === "rollback" ? `rollback to version ${entry.change?.version}` : entry.action;
  return h(
    "li",
    { class: applied ? "version" : "version refused" },
    h("h2", {}, title, applied && entry.version === head ? [" ", h("span", { class: "badge" }, "current")] : null),
    h(
      "p",
      { class: "meta" },
      `${what} · ${entry.outcome} · `,
      time(entry.at),
      " · by ",
      h("code", {}, entry.actor),
      // A refused attempt names the version that was current when it was refused.
      applied ? ` · based on version ${entry.baseVersion}` : ` · the config was at version ${entry.baseVersion}`,
    ),
    h("ul", { class: "diff", "aria-label": `Changes of ${title.toLowerCase()}` }, diffOf(entry, docAt)),
    applied && entry.version !== head
      ? h("button", { type: "button", onclick: () => rollback(entry.version, head) }, `Roll back to version ${entry.version}`)
      : null,
  );
}

function render() {
  const docAt = documents();
  const head = Math.max(0, ...entries.map((e) => e.version ?? 0));
  $("history-list").replaceChildren(...entries.map((e) => item(e, docAt, head)));
  if (!entries.length) $("history-list").append(h("li", { class: "empty" }, "No admin writes yet: the config is the seed (version 0)."));
  $("history-more").hidden = cursor === null;
}

async function more() {
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) query.set("cursor", cursor);
  const answer = await call("GET", `/admin/config/history?${query}`);
  if (!answer.ok) return complain(answer, "Could not load the history");
  entries.push(...answer.body.entries);
  cursor = answer.body.listComplete ? null : answer.body.cursor;
  render();
}

async function rollback(target, head) {
  const sure = await confirmed(
    `Roll back to version ${target}?`,
    `This writes version ${head + 1}, whose document equals version ${target}'s. Nothing is lost: every version stays in the history.`,
    "Roll back",
  );
  if (!sure) return;
  const answer = await call("POST", "/admin/config/rollback", { body: { version: target }, ifMatch: head });
  if (answer.ok) {
    config.show(answer);
    say(`Rolled back: version ${answer.version} equals version ${target}.`);
  } else if (answer.status === 412) {
    const now = answer.version;
    alarm(`Not rolled back: the config changed since this history was loaded (it is now version ${now}). The history is reloaded; try again.`);
  } else return complain(answer, "Not rolled back");
  await open();
}

/** (Re)loads the newest page. */
export async function open() {
  entries = [];
  cursor = null;
  await more();
}

export function reset() {
  entries = [];
  cursor = null;
  $("history-list").replaceChildren();
}

export function init() {
  $("history-more").addEventListener("click", more);
}
