// The History panel: every version, what it changed, and a rollback to it (with a preview of
// what the rollback changes, before it is confirmed).
//
// The history holds each write's request (`change`): a PATCH's merge patch, a PUT's whole
// document, a rollback's `{"version"}`. The admin API does not return old documents, so a
// version's document is worked out from the loaded entries and the current config: a PATCH
// sets the paths it names and keeps the others from the version before; a PUT sets all of
// them; a rollback equals its target; the newest version is the current config. A value
// none of them tells (set before the oldest loaded entry, or by the seed) shows as
// "earlier". Before a rollback's preview, older pages are loaded until it can tell each value
// the rollback sets; only a value the seed set (version 0, not in the history) stays
// "unknown" there.

import { call, complain } from "./api.js";
import * as config from "./config.js";
import { $, alarm, confirmed, h, say, time } from "./dom.js";

const PAGE = 50;
// A rollback's preview reads at most this many more pages of 100 versions.
const PREVIEW_PAGES = 50;
let entries = []; // newest first, as the API lists them
let cursor = null; // the next (older) page, if any
let current = null; // the config when the history was loaded: {doc, version}

export const ABSENT = Symbol("absent");
// The maps a PATCH merges key by key; every other field is replaced whole.
const MAPS = new Set(["featureFlags", "rateLimits"]);
// Every path none of the loaded entries nor the current config names.
const OTHER = "*";

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

const applied = (list = entries) => list.filter((e) => e.version !== null);
const headOf = (list = entries) => Math.max(0, ...applied(list).map((e) => e.version));

/**
 * Every version's document as far as the loaded entries and the current config tell:
 * `{docAt(version) → (path → value), names}`, `names` the paths they name. Versions whose
 * value of a path must be equal (a PATCH that does not name it, a rollback and its target)
 * share one cell; a cell's value is the one any of its versions tells. A value this cannot
 * tell is a symbol of its own cell, so two such values are the same only in the same cell.
 */
export function documents(list = entries, now = current) {
  const versions = applied(list);
  const head = headOf(list);
  const low = Math.min(head, ...versions.map((e) => e.version)) - 1; // the version before the oldest loaded
  const names = new Set();
  for (const e of versions) if (e.action !== "rollback") for (const p of paths(e.change).keys()) names.add(p);
  const anchored = now?.version === head && head > 0;
  if (anchored) for (const p of paths(now.doc).keys()) names.add(p);
  const all = [...names, OTHER];

  const parent = new Map();
  const told = new Map(); // cell → {value, sure}; an absence a write implies is not sure (a default may fill it)
  const find = (k) => {
    let root = k;
    while (parent.has(root)) root = parent.get(root);
    while (k !== root) {
      const next = parent.get(k);
      parent.set(k, root);
      k = next;
    }
    return root;
  };
  const tell = (k, value, sure) => {
    const cell = find(k);
    const was = told.get(cell);
    if (!was || (sure && !was.sure)) told.set(cell, { value, sure });
  };
  const join = (a, b) => {
    const [ca, cb] = [find(a), find(b)];
    if (ca === cb) return;
    parent.set(cb, ca);
    if (told.has(cb)) tell(ca, told.get(cb).value, told.get(cb).sure);
  };
  const key = (v, p) => `${v} ${p}`;
  // A path is under a map a change gives whole (a PUT's featureFlags, a null in a PATCH).
  const under = (change, p) => {
    const map = p.split(".")[0];
    return p !== map && change.has(map);
  };

  for (const e of versions) {
    const v = e.version;
    const change = paths(e.change);
    for (const p of all) {
      if (e.action === "rollback") {
        const target = e.change?.version;
        if (Number.isInteger(target) && target >= low && target < v) join(key(target, p), key(v, p));
      } else if (change.has(p)) {
        const x = change.get(p);
        tell(key(v, p), x === null ? ABSENT : x, x !== null);
      } else if (e.action === "put" || under(change, p)) tell(key(v, p), ABSENT, p === OTHER);
      else if (e.action === "patch") join(key(v - 1, p), key(v, p));
    }
  }
  if (anchored) {
    const latest = paths(now.doc);
    for (const p of all) tell(key(head, p), latest.has(p) ? latest.get(p) : ABSENT, true);
  }

  const unknown = new Map(); // cell → its symbol
  const docAt = (v) => (p) => {
    const cell = find(key(v, p));
    if (told.has(cell)) return told.get(cell).value;
    if (!unknown.has(cell)) unknown.set(cell, Symbol("unknown"));
    return unknown.get(cell);
  };
  return { docAt, names: [...names].sort() };
}

export const same = (a, b) => a === b || (typeof a !== "symbol" && typeof b !== "symbol" && JSON.stringify(a) === JSON.stringify(b));
export const known = (value) => typeof value !== "symbol" || value === ABSENT;

/** A value as shown; `unknown` is the words for a value the history does not tell. */
export function shown(value, path, unknown = "earlier") {
  if (value === ABSENT) return h("span", { class: "absent" }, path.includes(".") ? "(none)" : "(default)");
  if (!known(value)) return h("span", { class: "earlier" }, unknown);
  return h("code", {}, JSON.stringify(value));
}

/** The paths whose value differs between two documents, in order. */
const differing = (names, before, after) => names.filter((p) => !same(before(p), after(p)));

/** The lines of a version's diff: path, before, after. */
function diffOf(entry, { docAt, names }) {
  if (entry.version === null) {
    const attempted = ([p, x]) => h("li", {}, h("code", {}, p), " would have been ", shown(x === null ? ABSENT : x, p));
    return entry.action === "rollback"
      ? [h("li", {}, `would have restored version ${entry.change?.version}`)]
      : [...paths(entry.change)].map(attempted);
  }
  const before = docAt(entry.version - 1);
  const after = docAt(entry.version);
  // A PATCH names what it touched; a PUT or a rollback may have touched anything.
  const touched = entry.action === "patch" ? [...paths(entry.change).keys()].sort() : names;
  // A rollback's value the history does not tell is its target's.
  const was = entry.action === "rollback" ? `as in version ${entry.change?.version}` : "earlier";
  const lines = differing(touched, before, after).map((p) =>
    h("li", {}, h("code", {}, p), ": ", shown(before(p), p), " → ", shown(after(p), p, was)),
  );
  return lines.length ? lines : [h("li", { class: "empty" }, "No change to the document.")];
}

function item(entry, docs, head) {
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
    h("ul", { class: "diff", "aria-label": `Changes of ${title.toLowerCase()}` }, diffOf(entry, docs)),
    applied && entry.version !== head
      ? h("button", { type: "button", onclick: () => rollback(entry.version, head) }, `Roll back to version ${entry.version}`)
      : null,
  );
}

function render() {
  const docs = documents();
  const head = headOf();
  $("history-list").replaceChildren(...entries.map((e) => item(e, docs, head)));
  if (!entries.length) $("history-list").append(h("li", { class: "empty" }, "No admin writes yet: the config is the seed (version 0)."));
  $("history-more").hidden = cursor === null;
}

/** Loads the next (older) page; false if it could not. */
async function more(limit = PAGE) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  const answer = await call("GET", `/admin/config/history?${query}`);
  if (!answer.ok) {
    complain(answer, "Could not load the history");
    return false;
  }
  entries.push(...answer.body.entries);
  cursor = answer.body.listComplete ? null : answer.body.cursor;
  render();
  return true;
}

/** The current config, as the newest version's document. */
async function loadCurrent() {
  const answer = await call("GET", "/admin/config");
  if (!answer.ok) {
    complain(answer, "Could not load the current config");
    return false;
  }
  current = { doc: answer.body, version: answer.version };
  return true;
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const unknownIn = (changes, then) => changes.filter((p) => !known(then(p)));

/** Whether the loaded history tells every value a rollback from `head` to `target` sets. */
function tells(target, head) {
  const { docAt, names } = documents();
  const then = docAt(target);
  return !unknownIn(differing(names, docAt(head), then), then).length;
}

/** What rolling back from `head` to `target` changes: the dialog's details. */
function preview(target, head) {
  const { docAt, names } = documents();
  const now = docAt(head);
  const then = docAt(target);
  const changes = differing(names, now, then);
  const unknown = unknownIn(changes, then);
  const kept = names.filter((p) => !changes.includes(p) && now(p) !== ABSENT).length;
  const out = [];
  if (changes.length) {
    out.push(
      h("p", { id: "rollback-preview-title" }, `What changes, from the current values (version ${head}) to version ${target}'s:`),
      h(
        "ul",
        { class: "diff", "aria-labelledby": "rollback-preview-title" },
        changes.map((p) => h("li", {}, h("code", {}, p), ": ", shown(now(p), p), " → ", shown(then(p), p, "unknown"))),
      ),
    );
    if (kept) out.push(h("p", {}, `${plural(kept, "other field or flag", "other fields and flags")} stay as they are.`));
  } else out.push(h("p", {}, `Nothing changes: version ${target}'s document equals the current one.`));
  // The admin API returns no old document: say what this preview rests on.
  const basis = "The admin API does not return old documents: this preview is worked out from the loaded history and the current config.";
  const gaps = [];
  if (unknown.length) {
    // The whole history is loaded by now, unless it is longer than the preview reads.
    const where = cursor === null ? "by the seed (version 0), which the history does not record" : "before the oldest loaded version or by the seed";
    gaps.push(
      ` ${plural(unknown.length, "value")} marked unknown ${unknown.length === 1 ? "was" : "were"} set ${where}; the rollback restores ${unknown.length === 1 ? "it" : "them"} as in version ${target}.`,
    );
  }
  if (!known(then(OTHER))) gaps.push(" Flags or fields that neither the loaded history nor the current config names may come back too.");
  if (gaps.length && cursor !== null) gaps.push(" Loading older versions can tell more.");
  out.push(h("p", { class: "hint" }, basis, ...gaps));
  return out;
}

async function rollback(target, head) {
  // The preview compares with the config as it is now.
  if (!(await loadCurrent())) return;
  if (current.version !== head) {
    alarm(`The config changed since this history was loaded (it is now version ${current.version}). The history is reloaded; try again.`);
    return open();
  }
  // Older versions, until the preview can tell every value the rollback sets (a value set
  // long ago would otherwise show as unknown), or the history ends.
  for (let pages = 0; cursor !== null && !tells(target, head) && pages < PREVIEW_PAGES; pages++) {
    if (!(await more(100))) return;
  }
  const sure = await confirmed(
    `Roll back to version ${target}?`,
    `This writes version ${head + 1}, whose document equals version ${target}'s. Nothing is lost: every version stays in the history.`,
    "Roll back",
    preview(target, head),
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

/** (Re)loads the newest page, and the current config it ends at. */
export async function open() {
  entries = [];
  cursor = null;
  current = null;
  if (await loadCurrent()) await more();
}

export function reset() {
  entries = [];
  cursor = null;
  current = null;
  $("history-list").replaceChildren();
}

export function init() {
  $("history-more").addEventListener("click", () => more());
}
