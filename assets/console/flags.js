// The flags of the Config panel. The list is searched by name and shown a page at a time, so
// that thousands of flags cost one page of rows. A flag's editor holds its variants as typed
// values, its default variant, its prerequisites (other flags and the variants they must
// answer), its targeting rules (attribute, operator, values), its rollout, its enabled state
// and its schedule (switches by the clock, entered in the browser's time zone), checked on
// the page before anything is sent; a "try it" box
// evaluates the flag over OFREP for a context typed in; and the flag's history lists the
// versions that changed it, each with a diff and a revert. Every save is config.js's PATCH of
// the one flag, conditional on the version shown (`If-Match`).

import { call, complain, problem } from "./api.js";
import * as config from "./config.js";
import { $, alarm, clearErrors, confirmed, fieldError, h, say, time } from "./dom.js";
import { ABSENT, documents, known, same, shown } from "./history.js";

const PAGE = 50;
const HISTORY_PAGE = 100;
/** Flag, variant and attribute names (the API's rule). */
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const NAME_RULE = "1 to 64 letters, digits and _ . : -";
const MAX_VARIANTS = 16;
const MAX_RULES = 32;
const MAX_CONDITIONS = 8;
const MAX_VALUES = 100;
const MAX_PREREQUISITES = 8;
const MAX_SCHEDULE = 16;
const VARIANTS_TEMPLATE = { variants: { on: true, off: false }, defaultVariant: "off", enabled: true };

const TYPES = [
  ["boolean", "Boolean"],
  ["string", "String"],
  ["number", "Number"],
  ["object", "Object (JSON)"],
];
const OPERATORS = [
  ["in", "is one of (in)"],
  ["notIn", "is none of (notIn)"],
  ["equals", "equals"],
];
const KINDS = [
  ["text", "text"],
  ["number", "numbers"],
  ["boolean", "true/false"],
  ["json", "JSON"],
];

let query = ""; // the search: part of a name, any case
let page = 0;
/** GET /admin/flags/usage's answer (null: not loaded). */
let usage = null;
const DAY_MS = 86_400_000;

/** Keeps when each flag was last evaluated, for the stale badges. */
export function usageLoaded(body) {
  usage = body;
}

/** When `name` was last evaluated (ms), 0 for never; null when unknown (no usage loaded). */
function lastEvaluated(name) {
  if (!usage) return null;
  return Math.max(usage.evaluatedAt?.[name] ?? 0, usage.bulkEvaluatedAt ?? 0);
}

/** The badge of a flag not evaluated for the chosen number of days, or null. */
function staleBadge(name) {
  const last = lastEvaluated(name);
  const days = Number($("flag-stale-days").value);
  if (last === null || !(days >= 1)) return null;
  if (last && Date.now() - last < days * DAY_MS) return null;
  const since = last ? `not evaluated since ${new Date(last).toISOString().slice(0, 10)}` : "never evaluated";
  return h("span", { class: "badge stale", title: since }, "stale", h("span", { class: "sr-only" }, ` (${since})`));
}

const flagsOf = () => config.doc()?.featureFlags ?? {};
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** An id for a flag's controls: its name with everything but letters, digits and - escaped. */
const idOf = (name) => `flag-${name.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
const errorOf = (id) => h("p", { id: `${id}-error`, class: "field-error" });
/** A labelled control with its error element beneath. */
const field = (id, label, control, extra = "") =>
  h("div", { class: `field ${extra}`.trim() }, h("label", { for: id }, label), control, errorOf(id));
function select(id, options, value, onchange, props = {}) {
  return h(
    "select",
    { id, "aria-describedby": `${id}-error`, onchange: (e) => onchange(e.target.value), ...props },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

// ---------------------------------------------------------------------------------------
// The list: a page of the flags whose name contains the search.

const byName = (a, b) => {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  if (x !== y) return x < y ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
};

function matching() {
  const q = query.toLowerCase();
  const names = Object.keys(flagsOf());
  return (q ? names.filter((n) => n.toLowerCase().includes(q)) : names).sort(byName);
}

/** Shows the current page of the list (after a load, a write, a search or a page turn). */
export function render() {
  const all = flagsOf();
  const total = Object.keys(all).length;
  const names = matching();
  const pages = Math.max(1, Math.ceil(names.length / PAGE));
  page = Math.min(page, pages - 1);
  const first = page * PAGE;
  const rows = names.slice(first, first + PAGE).map((n) => row(n, all[n]));
  if (!rows.length) {
    const none = total ? `No flag name contains “${query}”.` : "No flags yet.";
    rows.push(h("tr", {}, h("td", { colspan: 5, class: "empty" }, none)));
  }
  $("flags").replaceChildren(...rows);
  let summary = "No flags yet.";
  if (names.length) {
    const range = `${first + 1}–${first + Math.min(PAGE, names.length - first)}`;
    const of = query ? `${names.length} whose name contains “${query}” (of ${total})` : `${total}`;
    summary = `Flags ${range} of ${of}; page ${page + 1} of ${pages}.`;
  } else if (total) summary = `No flag of ${total} has a name containing “${query}”.`;
  $("flags-summary").textContent = summary;
  $("flags-prev").disabled = page === 0;
  $("flags-next").disabled = page >= pages - 1;
  refreshEditor();
}

/** What a flag with variants is, in a few words. */
function definitionOf(flag) {
  const parts = [`default ${flag.defaultVariant}`];
  const needs = Object.keys(flag.prerequisites ?? {});
  if (needs.length) parts.push(`needs ${needs.join(", ")}`);
  if (flag.schedule?.length) parts.push(plural(flag.schedule.length, "scheduled switch", "scheduled switches"));
  if (flag.rules?.length) parts.push(plural(flag.rules.length, "rule"));
  const shares = Object.entries(flag.rollout ?? {});
  if (shares.length > 4) parts.push(`rollout over ${shares.length} variants`);
  else if (shares.length) parts.push(`rollout ${shares.map(([v, p]) => `${v} ${p} %`).join(", ")}`);
  return parts.join(" · ");
}

function row(name, flag) {
  const id = idOf(name);
  const variants = isObject(flag);
  const on = variants ? flag.enabled !== false : flag === true;
  const flip = (event) => {
    event.preventDefault(); // the switch moves only once the API has the change
    const value = variants ? { ...flag, enabled: !on } : !on;
    config.write({ featureFlags: { [name]: value } }, event.target);
  };
  const count = variants ? Object.keys(flag.variants ?? {}).length : 0;
  const kind = variants ? `${plural(count, "variant")} (${typeOf(Object.values(flag.variants)[0])})` : "on/off";
  return h(
    "tr",
    { dataset: { flag: name } },
    h("th", { scope: "row" }, h("code", {}, name), staleBadge(name)),
    h("td", {}, kind),
    h(
      "td",
      {},
      h(
        "span",
        { class: "switch" },
        h("input", {
          type: "checkbox",
          role: "switch",
          id,
          checked: on,
          "aria-label": variants ? `${name} enabled` : name,
          "data-path": variants ? `featureFlags.${name}.enabled` : `featureFlags.${name}`,
          "aria-describedby": `${id}-error`,
          onclick: flip,
        }),
        h("span", { class: "state", "aria-hidden": "true" }, on ? "on" : "off"),
      ),
      errorOf(id),
    ),
    h("td", { class: "long" }, variants ? definitionOf(flag) : on ? "on for everyone" : "off for everyone"),
    h(
      "td",
      { class: "actions" },
      h("button", { type: "button", id: `${id}-edit`, class: "quiet", onclick: () => openEditor(name), "aria-label": `Edit flag ${name}` }, "Edit"),
      " ",
      removeButton(name),
    ),
  );
}

function removeButton(name) {
  const remove = async () => {
    const effect = `GET /flags/${name} will answer disabled, and OFREP FLAG_NOT_FOUND.`;
    if (await confirmed(`Remove flag ${name}?`, effect, "Remove")) {
      if (await config.write({ featureFlags: { [name]: null } })) {
        say(`Removed flag ${name}: saved as version ${config.versionShown()}.`);
        $("flag-search").focus(); // its row is gone
      }
    }
  };
  return h("button", { type: "button", class: "quiet", onclick: remove, "aria-label": `Remove flag ${name}` }, "Remove");
}

async function addFlag(event) {
  event.preventDefault();
  const input = $("flag-name");
  clearErrors(document.querySelector('[data-panel="config"]'));
  const name = input.value.trim();
  if (!name) return fieldError(input, "Name the flag first.");
  if (Object.hasOwn(flagsOf(), name)) return fieldError(input, `Flag ${name} exists already.`);
  const variants = $("flag-kind").value === "variants";
  if (await config.write({ featureFlags: { [name]: variants ? VARIANTS_TEMPLATE : false } }, input)) {
    input.value = "";
    say(`Added flag ${name} as version ${config.versionShown()}.`);
    if (variants) openEditor(name);
  }
}

function search() {
  query = $("flag-search").value.trim();
  page = 0;
  render();
}

function turn(by) {
  page += by;
  render();
  // The button stays focused unless it is now disabled; then the other one.
  const other = by > 0 ? "flags-prev" : "flags-next";
  if (document.activeElement?.disabled) $(other).focus();
}

// ---------------------------------------------------------------------------------------
// Typed values.

/** A variant value's type, as the editor offers it. */
function typeOf(value) {
  if (typeof value === "boolean" || typeof value === "string" || typeof value === "number") return typeof value;
  return "object";
}

/** A value as typed into its control. */
function rawOf(type, value) {
  if (type === "object") return JSON.stringify(value, null, 2);
  return String(value);
}

/** A decimal number as typed (not hex, not Infinity), or null. */
const decimal = (raw) => (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : null);

/** A typed value from its control: `{value}` or `{problem}`. */
function parseValue(type, raw) {
  if (type === "boolean") return raw === "true" || raw === "false" ? { value: raw === "true" } : { problem: "Choose true or false." };
  if (type === "string") return { value: raw };
  if (type === "number") {
    const n = decimal(raw);
    return n !== null && Number.isFinite(n) ? { value: n } : { problem: `Not a number: “${raw}”. Type digits, such as 3, -1 or 0.25.` };
  }
  try {
    const value = JSON.parse(raw);
    if (isObject(value)) return { value };
  } catch (e) {
    return { problem: `Not valid JSON (${e.message}). Type an object, such as {"color": "red"}.` };
  }
  return { problem: 'Type a JSON object, such as {"color": "red"}.' };
}

/** A condition's values as its control shows them, and how they are read. */
function conditionDraft(attr, condition) {
  const op = Object.keys(condition)[0];
  const arg = condition[op];
  const list = op === "equals" ? [arg] : arg;
  const text = (v) => typeof v === "string" && v !== "" && v.trim() === v && (op === "equals" || !v.includes(","));
  let kind = "json";
  if (list.every((v) => typeof v === "number")) kind = "number";
  else if (list.every((v) => typeof v === "boolean")) kind = "boolean";
  else if (list.every(text)) kind = "text";
  const raw = kind === "json" ? JSON.stringify(arg) : list.map(String).join(", ");
  return { k: nextKey(), attr, op, kind, raw };
}

const scalar = (v) => typeof v === "string" || typeof v === "number" || typeof v === "boolean";

/** A condition's values from its control: `{value}` (the operator's argument) or `{problem}`. */
function parseCondition(c) {
  const list = c.op !== "equals";
  if (c.kind === "json") {
    let value;
    try {
      value = JSON.parse(c.raw);
    } catch (e) {
      return { problem: `Not valid JSON (${e.message}).` };
    }
    if (list && !(Array.isArray(value) && value.length && value.every(scalar))) {
      return { problem: 'Type a JSON array of strings, numbers or booleans, such as ["NL", 2].' };
    }
    if (!list && !scalar(value)) return { problem: 'Type one JSON string, number or boolean, such as "NL".' };
    if (list && value.length > MAX_VALUES) return { problem: `At most ${MAX_VALUES} values.` };
    return { value };
  }
  const parts = list ? c.raw.split(",").map((s) => s.trim()) : [c.raw.trim()];
  if (parts.some((s) => s === "")) {
    return { problem: list ? "Type the values, separated by commas (none empty)." : "Type the value." };
  }
  if (parts.length > MAX_VALUES) return { problem: `At most ${MAX_VALUES} values.` };
  const values = [];
  for (const s of parts) {
    if (c.kind === "number") {
      const n = decimal(s);
      if (n === null || !Number.isFinite(n)) return { problem: `Not a number: “${s}”.` };
      values.push(n);
    } else if (c.kind === "boolean") {
      if (s !== "true" && s !== "false") return { problem: `Not true or false: “${s}”.` };
      values.push(s === "true");
    } else values.push(s);
  }
  return { value: list ? values : values[0] };
}

// ---------------------------------------------------------------------------------------
// The editor: a draft of one flag, rendered as a form and read back on save.

let keys = 0;
const nextKey = () => ++keys;
let draft = null; // the flag in the editor; null when closed
let loaded = null; // its definition when the draft was made
let dirty = false; // edited since

/** The draft of a flag: variants, rules and rollout refer to variants by a key of their own. */
function toDraft(name, flag) {
  if (!isObject(flag)) return { name, boolean: flag === true };
  const type = typeOf(Object.values(flag.variants)[0]);
  const variants = Object.entries(flag.variants).map(([n, v]) => ({ k: nextKey(), name: n, raw: rawOf(type, v) }));
  const keyOf = (n) => variants.find((v) => v.name === n)?.k ?? null;
  return {
    name,
    enabled: flag.enabled !== false,
    type,
    variants,
    defaultK: keyOf(flag.defaultVariant),
    rules: (flag.rules ?? []).map((r) => ({
      k: nextKey(),
      variantK: keyOf(r.variant),
      conditions: Object.entries(r.when).map(([attr, c]) => conditionDraft(attr, c)),
    })),
    rollout: flag.rollout ? Object.fromEntries(Object.entries(flag.rollout).map(([n, p]) => [keyOf(n), String(p)])) : null,
    // Other flags' variants, by name: they are not the draft's to rename.
    prerequisites: Object.entries(flag.prerequisites ?? {}).map(([f, vs]) => ({ k: nextKey(), flag: f, variants: [...vs] })),
    // `at` as stored until its time is edited: a local time read back may be the other
    // instance of an hour that a change of clocks repeats.
    // A switch may also set a new definition (`set`): kept as it is, shown, not edited here.
    schedule: (flag.schedule ?? []).map((s) => ({ k: nextKey(), at: s.at, raw: localInput(s.at), enabled: s.enabled, set: s.set })),
  };
}

function touched() {
  dirty = true;
}

function openEditor(name) {
  draft = toDraft(name, flagsOf()[name]);
  loaded = flagsOf()[name];
  dirty = false;
  $("flag-editor").hidden = false;
  renderEditor();
  $("try-result").hidden = true;
  $("try-result").replaceChildren();
  clearErrors($("flag-try"));
  $("flag-editor-title").focus();
  loadHistory();
}

function closeEditor() {
  const name = draft?.name;
  draft = loaded = null;
  dirty = false;
  shownHistory = null;
  $("flag-editor").hidden = true;
  $("flag-form-area").replaceChildren();
  $("flag-history").replaceChildren();
  const edit = name && $(`${idOf(name)}-edit`);
  (edit ?? $("flag-search")).focus();
}

/** After the list is redrawn: an editor left untouched shows the flag as stored now. */
function refreshEditor() {
  if (!draft) return;
  const flag = flagsOf()[draft.name];
  if (flag === undefined) {
    say(`Flag ${draft.name} was removed; its editor is closed.`);
    return closeEditor();
  }
  if (!dirty && !same(flag, loaded)) {
    draft = toDraft(draft.name, flag);
    loaded = flag;
    renderEditor();
  }
}

/** Redraws the editor's form (after a change of its shape), then focuses `focus` (an id). */
function renderEditor(focus) {
  $("flag-editor-title").replaceChildren("Flag ", h("code", {}, draft.name));
  $("flag-form-area").replaceChildren(...(draft.boolean === undefined ? variantsForm() : booleanNote()));
  if (focus) $(focus)?.focus();
}

function booleanNote() {
  const convert = () => {
    const on = draft.boolean;
    draft = toDraft(draft.name, { variants: { on: true, off: false }, defaultVariant: on ? "on" : "off", enabled: true });
    dirty = true;
    renderEditor("fe-type");
    say(`Flag ${draft.name} has variants in the editor now; save to keep them.`);
  };
  return [
    h(
      "p",
      { class: "hint" },
      `An on/off flag: ${draft.boolean ? "on" : "off"} for everyone. Its switch in the list saves at once. Give it variants to serve values, prerequisites, rules, a rollout or a schedule.`,
    ),
    h("button", { type: "button", id: "fe-convert", onclick: convert }, "Give it variants"),
  ];
}

const pathOf = (...parts) => [`featureFlags.${draft.name}`, ...parts].join(".");
const variantName = (k) => draft.variants.find((v) => v.k === k)?.name;

/** A select of the draft's variants (kept up to date as they are renamed). */
function variantSelect(id, chosen, onchange, props = {}) {
  const control = h("select", {
    id,
    class: "variant-choice",
    "aria-describedby": `${id}-error`,
    onchange: (e) => {
      onchange(e.target.value === "" ? null : Number(e.target.value));
      touched();
    },
    ...props,
  });
  fillChoices(control, chosen);
  return control;
}

function fillChoices(control, chosen) {
  const options = draft.variants.map((v, i) => h("option", { value: v.k, selected: v.k === chosen }, v.name || `(variant ${i + 1}, unnamed)`));
  if (!draft.variants.some((v) => v.k === chosen)) options.unshift(h("option", { value: "", selected: true }, "— choose a variant —"));
  control.replaceChildren(...options);
}

/** A variant was renamed: the selects and rollout labels that name it follow. */
function renamed() {
  for (const control of $("flag-form-area").querySelectorAll("select.variant-choice")) {
    const chosen = control.value === "" ? null : Number(control.value);
    fillChoices(control, chosen);
  }
  for (const label of $("flag-form-area").querySelectorAll("label[data-variant]")) {
    label.textContent = `${variantName(Number(label.dataset.variant)) || "(unnamed)"} (%)`;
  }
}

function variantsForm() {
  const enabled = h(
    "label",
    { class: "switch" },
    h("input", {
      type: "checkbox",
      role: "switch",
      id: "fe-enabled",
      checked: draft.enabled,
      "data-path": pathOf(),
      "aria-describedby": "fe-enabled-hint fe-enabled-error",
      onchange: (e) => {
        draft.enabled = e.target.checked;
        touched();
      },
    }),
    "Enabled",
  );
  return [
    h(
      "form",
      { id: "flag-form", novalidate: true, onsubmit: save },
      h(
        "div",
        { class: "field" },
        enabled,
        h("p", { id: "fe-enabled-hint", class: "hint" }, "Disabled, the flag answers its default variant to everyone (reason DISABLED)."),
        errorOf("fe-enabled"),
      ),
      variantsFieldset(),
      prerequisitesFieldset(),
      rulesFieldset(),
      rolloutFieldset(),
      scheduleFieldset(),
      h(
        "div",
        { class: "inline" },
        h("button", { type: "submit", id: "fe-save" }, `Save ${draft.name}`),
        h("button", { type: "button", class: "quiet", onclick: closeEditor }, "Close the editor"),
      ),
    ),
  ];
}

function variantsFieldset() {
  const retype = (type) => {
    const was = draft.type;
    draft.type = type;
    draft.variants.forEach((v, i) => {
      if (type === "boolean") v.raw = was === "boolean" ? v.raw : String(i === 0);
      else if (type === "number") v.raw = parseValue("number", v.raw).problem ? String(i) : v.raw;
      else if (type === "object") v.raw = parseValue("object", v.raw).problem ? "{}" : v.raw;
      else if (was === "object") v.raw = v.name;
    });
    touched();
    renderEditor("fe-type");
  };
  const add = () => {
    let n = draft.variants.length + 1;
    while (draft.variants.some((v) => v.name === `variant${n}`)) n++;
    const raw = { boolean: "false", string: "", number: "0", object: "{}" }[draft.type];
    const v = { k: nextKey(), name: `variant${n}`, raw };
    draft.variants.push(v);
    touched();
    renderEditor(`fe-v-${v.k}-name`);
  };
  const rows = draft.variants.map((v, i) => variantRow(v, i));
  return h(
    "fieldset",
    { class: "group" },
    h("legend", {}, "Variants"),
    h("p", { class: "hint" }, `1 to ${MAX_VARIANTS} named values, all of one type. Names: ${NAME_RULE}.`),
    field("fe-type", "Type of the values", select("fe-type", TYPES, draft.type, retype), "narrow-field"),
    h(
      "table",
      { class: "fit rows variants" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Remove")))),
      h("tbody", {}, rows),
    ),
    h("button", { type: "button", id: "fe-add-variant", class: "quiet", onclick: add, disabled: draft.variants.length >= MAX_VARIANTS }, "Add a variant"),
    field(
      "fe-default",
      "Default variant",
      variantSelect("fe-default", draft.defaultK, (k) => (draft.defaultK = k), { "data-path": pathOf("defaultVariant") }),
      "narrow-field",
    ),
  );
}

function variantRow(v, i) {
  const nameId = `fe-v-${v.k}-name`;
  const valueId = `fe-v-${v.k}-value`;
  const setValue = (e) => {
    v.raw = e.target.value;
    touched();
  };
  const common = { id: valueId, "aria-label": `Value of variant ${i + 1}`, "aria-describedby": `${valueId}-error`, "data-path": pathOf("variants", v.name) };
  let value;
  if (draft.type === "boolean") {
    value = select(valueId, [["true", "true"], ["false", "false"]], v.raw, (x) => setValue({ target: { value: x } }), common);
  } else if (draft.type === "object") {
    const rows = Math.min(6, v.raw.split("\n").length + 1);
    value = h("textarea", { ...common, rows, spellcheck: "false", oninput: setValue }, v.raw);
  } else {
    value = h("input", { ...common, value: v.raw, autocomplete: "off", spellcheck: "false", inputmode: draft.type === "number" ? "decimal" : undefined, oninput: setValue });
  }
  const rename = (e) => {
    v.name = e.target.value.trim();
    $(valueId).dataset.path = pathOf("variants", v.name);
    touched();
    renamed();
  };
  const remove = () => {
    draft.variants = draft.variants.filter((x) => x !== v);
    if (draft.defaultK === v.k) draft.defaultK = null;
    for (const r of draft.rules) if (r.variantK === v.k) r.variantK = null;
    if (draft.rollout) delete draft.rollout[v.k];
    touched();
    renderEditor("fe-add-variant");
    say(`Variant ${v.name || i + 1} removed from the editor; save to keep the change.`);
  };
  return h(
    "tr",
    {},
    h(
      "td",
      {},
      h("input", { id: nameId, value: v.name, autocomplete: "off", spellcheck: "false", "aria-label": `Name of variant ${i + 1}`, "aria-describedby": `${nameId}-error`, oninput: rename }),
      errorOf(nameId),
    ),
    h("td", {}, value, errorOf(valueId)),
    h(
      "td",
      {},
      h(
        "button",
        { type: "button", class: "quiet", onclick: remove, disabled: draft.variants.length <= 1, "aria-label": `Remove variant ${i + 1}${v.name ? ` (${v.name})` : ""}` },
        "Remove",
      ),
    ),
  );
}

function rulesFieldset() {
  const add = () => {
    const c = { k: nextKey(), attr: "", op: "in", kind: "text", raw: "" };
    const rule = { k: nextKey(), variantK: null, conditions: [c] };
    draft.rules.push(rule);
    touched();
    renderEditor(`fe-c-${c.k}-attr`);
  };
  return h(
    "fieldset",
    { class: "group" },
    h("legend", {}, "Targeting rules"),
    h(
      "p",
      { class: "hint" },
      "In order: the first rule whose conditions all hold serves its variant (reason TARGETING_MATCH). A context without the attribute holds none of its conditions. Values are separated by commas; as JSON, a list is an array. targetingKey is an attribute too.",
    ),
    draft.rules.length ? draft.rules.map(ruleFieldset) : h("p", { class: "empty" }, "No rules."),
    h("button", { type: "button", id: "fe-add-rule", class: "quiet", onclick: add, disabled: draft.rules.length >= MAX_RULES }, "Add a rule"),
  );
}

function ruleFieldset(rule, ri) {
  const n = ri + 1;
  const addCondition = () => {
    const c = { k: nextKey(), attr: "", op: "in", kind: "text", raw: "" };
    rule.conditions.push(c);
    touched();
    renderEditor(`fe-c-${c.k}-attr`);
  };
  const up = () => {
    draft.rules.splice(ri - 1, 2, rule, draft.rules[ri - 1]);
    touched();
    renderEditor(`fe-r-${rule.k}-up`);
    if (!$(`fe-r-${rule.k}-up`)) $(`fe-r-${rule.k}-variant`).focus();
    say(`Rule ${n} is rule ${n - 1} now.`);
  };
  const remove = () => {
    draft.rules = draft.rules.filter((r) => r !== rule);
    touched();
    renderEditor("fe-add-rule");
    say(`Rule ${n} removed from the editor; save to keep the change.`);
  };
  return h(
    "fieldset",
    { class: "rule" },
    h("legend", {}, `Rule ${n}`),
    rule.conditions.map((c, ci) => conditionRow(rule, ri, c, ci)),
    h(
      "button",
      { type: "button", class: "quiet", onclick: addCondition, disabled: rule.conditions.length >= MAX_CONDITIONS, "aria-label": `Add a condition to rule ${n}` },
      "Add a condition",
    ),
    field(
      `fe-r-${rule.k}-variant`,
      "Then serve",
      variantSelect(`fe-r-${rule.k}-variant`, rule.variantK, (k) => (rule.variantK = k), { "data-path": pathOf(`rules[${ri}]`) }),
      "narrow-field",
    ),
    h(
      "div",
      { class: "inline" },
      ri > 0 ? h("button", { type: "button", id: `fe-r-${rule.k}-up`, class: "quiet", onclick: up, "aria-label": `Move rule ${n} up` }, "Move up") : null,
      h("button", { type: "button", class: "quiet", onclick: remove, "aria-label": `Remove rule ${n}` }, "Remove rule"),
    ),
  );
}

function conditionRow(rule, ri, c, ci) {
  const base = `fe-c-${c.k}`;
  const valuesPath = () => pathOf(`rules[${ri}]`, "when", c.attr);
  const set = (key) => (value) => {
    c[key] = value;
    touched();
  };
  const remove = () => {
    rule.conditions = rule.conditions.filter((x) => x !== c);
    touched();
    renderEditor(`fe-c-${rule.conditions[0].k}-attr`);
  };
  return h(
    "div",
    { class: "condition", role: "group", "aria-label": `Rule ${ri + 1}, condition ${ci + 1}` },
    field(
      `${base}-attr`,
      "Attribute",
      h("input", {
        id: `${base}-attr`,
        value: c.attr,
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": `${base}-attr-error`,
        oninput: (e) => {
          c.attr = e.target.value.trim();
          $(`${base}-values`).dataset.path = valuesPath();
          touched();
        },
      }),
    ),
    field(`${base}-op`, "Operator", select(`${base}-op`, OPERATORS, c.op, set("op"))),
    field(`${base}-kind`, "Values as", select(`${base}-kind`, KINDS, c.kind, set("kind"))),
    field(
      `${base}-values`,
      "Values",
      h("input", {
        id: `${base}-values`,
        value: c.raw,
        autocomplete: "off",
        spellcheck: "false",
        "data-path": valuesPath(),
        "aria-describedby": `${base}-values-error`,
        oninput: (e) => set("raw")(e.target.value),
      }),
      "wide",
    ),
    h(
      "button",
      { type: "button", class: "quiet", onclick: remove, disabled: rule.conditions.length <= 1, "aria-label": `Remove condition ${ci + 1} of rule ${ri + 1}` },
      "Remove",
    ),
  );
}

function rolloutFieldset() {
  const toggle = (e) => {
    draft.rollout = e.target.checked ? {} : null;
    touched();
    renderEditor("fe-rollout-on");
  };
  const parts = [
    h("legend", {}, "Rollout"),
    h(
      "label",
      { class: "switch" },
      h("input", { type: "checkbox", id: "fe-rollout-on", checked: draft.rollout !== null, onchange: toggle, "aria-describedby": "fe-rollout-hint" }),
      "Split by percentage",
    ),
    h(
      "p",
      { id: "fe-rollout-hint", class: "hint" },
      "Whom no rule matched gets a variant by sticky bucketing of its targetingKey (reason SPLIT). Whole percentages that total 100; an empty one is left out.",
    ),
  ];
  if (draft.rollout !== null) {
    const shares = draft.variants.map((v, i) => {
      const id = `fe-share-${v.k}`;
      return h(
        "div",
        { class: "field share" },
        h("label", { for: id, "data-variant": v.k }, `${v.name || "(unnamed)"} (%)`),
        h("input", {
          id,
          type: "number",
          min: 0,
          max: 100,
          step: 1,
          inputmode: "numeric",
          value: draft.rollout[v.k] ?? "",
          class: "share-input",
          "aria-describedby": "fe-rollout-total fe-rollout-error",
          // The rollout's own errors (its total, from the page or the API) show beneath all shares.
          "data-error": "fe-rollout-error",
          "data-path": i === 0 ? pathOf("rollout") : undefined,
          oninput: (e) => {
            draft.rollout[v.k] = e.target.value;
            touched();
            showTotal();
          },
        }),
      );
    });
    parts.push(h("div", { class: "shares" }, shares), h("p", { id: "fe-rollout-total", class: "total" }), h("p", { id: "fe-rollout-error", class: "field-error" }));
  }
  const set = h("fieldset", { class: "group" }, parts);
  queueMicrotask(showTotal);
  return set;
}

/** The rollout's total, or null when a share is not a whole percentage. */
function rolloutTotal() {
  let total = 0;
  for (const v of draft.variants) {
    const raw = (draft.rollout?.[v.k] ?? "").trim();
    if (raw === "") continue;
    if (!/^\d+$/.test(raw)) return null;
    total += Number(raw);
  }
  return total;
}

function showTotal() {
  const out = $("fe-rollout-total");
  if (!out || !draft?.rollout) return;
  const total = rolloutTotal();
  out.textContent = total === null ? "Total: — (every share is a whole number)" : `Total: ${total} %${total === 100 ? "" : ` (${total < 100 ? 100 - total : total - 100} ${total < 100 ? "short of" : "over"} 100)`}`;
}

// ---------------------------------------------------------------------------------------
// Prerequisites: other flags, each with the variants it must answer. They name flags of the
// whole config, so the page checks that they exist; a cycle through other flags is the
// API's to find (400, shown at this section).

/** The variants a prerequisite may name for flag `name` (an on/off flag answers on or off), or null for no such flag. */
function answersOf(name) {
  const flag = flagsOf()[name];
  if (flag === undefined || name === draft.name) return null;
  return isObject(flag) ? Object.keys(flag.variants ?? {}) : ["on", "off"];
}

/** The flags a prerequisite may name, as suggestions for its input (a datalist filters thousands as typed). */
function flagSuggestions() {
  const names = Object.keys(flagsOf())
    .filter((n) => n !== draft.name)
    .sort(byName);
  const kind = (flag) => (isObject(flag) ? plural(Object.keys(flag.variants ?? {}).length, "variant") : "on/off");
  return h("datalist", { id: "fe-prereq-flags" }, names.map((n) => h("option", { value: n, label: kind(flagsOf()[n]) })));
}

/** The section: `data-path` catches the API's messages about this flag's prerequisites as a whole (a cycle). */
function prerequisitesFieldset() {
  const add = () => {
    const p = { k: nextKey(), flag: "", variants: [] };
    draft.prerequisites.push(p);
    touched();
    renderEditor(`fe-p-${p.k}-flag`);
  };
  const rows = draft.prerequisites.map(prerequisiteRow);
  return h(
    "fieldset",
    {
      class: "group",
      id: "fe-prereqs",
      tabindex: -1, // focused with a refusal that names no row (a cycle through other flags)
      "data-path": pathOf("prerequisites"),
      "data-error": "fe-prereqs-error",
      "aria-describedby": "fe-prereqs-hint fe-prereqs-error",
    },
    h("legend", {}, "Prerequisites"),
    h(
      "p",
      { id: "fe-prereqs-hint", class: "hint" },
      `Before its rules and rollout, each flag listed here is evaluated for the same context, in name order: if one answers none of the variants chosen, this flag serves its default variant (reason DEFAULT). At most ${MAX_PREREQUISITES}; an on/off flag answers on or off. No chain of prerequisites may lead back to this flag.`,
    ),
    h("p", { id: "fe-prereqs-error", class: "field-error" }),
    rows.length
      ? h(
          "table",
          { class: "fit rows prereqs" },
          h(
            "thead",
            {},
            h("tr", {}, h("th", { scope: "col" }, "Flag"), h("th", { scope: "col" }, "Must answer one of"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Remove"))),
          ),
          h("tbody", {}, rows),
        )
      : h("p", { class: "empty" }, "No prerequisites."),
    rows.length ? flagSuggestions() : null,
    h("button", { type: "button", id: "fe-add-prereq", class: "quiet", onclick: add, disabled: draft.prerequisites.length >= MAX_PREREQUISITES }, "Add a prerequisite"),
  );
}

function prerequisiteRow(p, i) {
  const n = i + 1;
  const flagId = `fe-p-${p.k}-flag`;
  const choose = (e) => {
    p.flag = e.target.value.trim();
    e.target.dataset.path = pathOf("prerequisites", p.flag);
    $(`fe-p-${p.k}-remove`).setAttribute("aria-label", removeLabel());
    touched();
    // The choices follow once the name is a flag's (typed or picked from the suggestions).
    const cell = $(`fe-p-${p.k}-choices`);
    const shows = answersOf(p.flag) ? p.flag : "";
    if (cell.dataset.flag !== shows) {
      const answers = answersOf(p.flag) ?? [];
      p.variants = p.variants.filter((v) => answers.includes(v));
      cell.dataset.flag = shows;
      cell.replaceChildren(...prerequisiteChoices(p, n));
    }
  };
  const removeLabel = () => `Remove prerequisite ${n}${p.flag ? ` (${p.flag})` : ""}`;
  const remove = () => {
    draft.prerequisites = draft.prerequisites.filter((x) => x !== p);
    touched();
    renderEditor("fe-add-prereq");
    say(`Prerequisite ${p.flag || n} removed from the editor; save to keep the change.`);
  };
  return h(
    "tr",
    {},
    h(
      "td",
      {},
      h("input", {
        id: flagId,
        value: p.flag,
        list: "fe-prereq-flags",
        autocomplete: "off",
        spellcheck: "false",
        "aria-label": `Flag of prerequisite ${n}`,
        "aria-describedby": `${flagId}-error`,
        "data-path": pathOf("prerequisites", p.flag),
        oninput: choose,
      }),
      errorOf(flagId),
    ),
    h("td", { id: `fe-p-${p.k}-choices`, dataset: { flag: answersOf(p.flag) ? p.flag : "" } }, prerequisiteChoices(p, n)),
    h(
      "td",
      {},
      h("button", { type: "button", id: `fe-p-${p.k}-remove`, class: "quiet", onclick: remove, "aria-label": removeLabel() }, "Remove"),
    ),
  );
}

/** A checkbox per variant of the prerequisite's flag (and any chosen that it no longer has, so that none is dropped unseen). */
function prerequisiteChoices(p, n) {
  const errorId = `fe-p-${p.k}-variants-error`;
  const answers = answersOf(p.flag);
  if (!answers) return [h("p", { class: "hint" }, "Choose a flag to list its variants."), h("p", { id: errorId, class: "field-error" })];
  const choices = [...answers, ...p.variants.filter((v) => !answers.includes(v))];
  const pick = () => {
    // In the order of the flag's variants, whatever the order of the clicks.
    p.variants = choices.filter((v, j) => $(`fe-p-${p.k}-v-${j}`).checked);
    touched();
  };
  const boxes = choices.map((v, j) => {
    const id = `fe-p-${p.k}-v-${j}`;
    const box = h("input", { type: "checkbox", id, checked: p.variants.includes(v), "data-error": errorId, "aria-describedby": errorId, onchange: pick });
    return h("label", { for: id }, box, answers.includes(v) ? v : `${v} (not a variant of ${p.flag})`);
  });
  return [h("div", { class: "choices", role: "group", "aria-label": `Variants prerequisite ${n} must answer` }, boxes), h("p", { id: errorId, class: "field-error" })];
}

/** The prerequisites the form holds, in name order (the API's), or problems through `bad`. */
function prerequisitesOf(bad) {
  const out = {};
  draft.prerequisites.forEach((p, i) => {
    const id = `fe-p-${p.k}-flag`;
    if (!p.flag) bad(id, `Choose the flag of prerequisite ${i + 1}.`);
    else if (p.flag === draft.name) bad(id, "A flag cannot be its own prerequisite.");
    else if (!answersOf(p.flag)) bad(id, `No flag is named ${p.flag}.`);
    else if (Object.hasOwn(out, p.flag)) bad(id, `${p.flag} is listed twice: list it once, with every variant it may answer.`);
    else if (!p.variants.length) bad(`fe-p-${p.k}-v-0`, `Choose at least one variant ${p.flag} must answer.`);
    else out[p.flag] = p.variants;
  });
  return Object.fromEntries(Object.keys(out).sort().map((f) => [f, out[f]]));
}

// ---------------------------------------------------------------------------------------
// The schedule: switches on or off by the clock. The API takes milliseconds since the epoch;
// the page shows and reads them as this browser's local time, naming its time zone.

const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "local";
const two = (n) => String(n).padStart(2, "0");

/** A time (ms) as a datetime-local value: local time, with seconds and milliseconds only when it has them. */
function localInput(ms) {
  const d = new Date(ms);
  let out = `${String(d.getFullYear()).padStart(4, "0")}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
  if (ms % 60_000) out += `:${two(d.getSeconds())}`;
  if (ms % 1000) out += `.${String(d.getMilliseconds()).padStart(3, "0")}`;
  return out;
}

/** A datetime-local value as ms since the epoch, or null. Without an offset, Date reads a date and time as local time. */
function fromLocalInput(raw) {
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?$/.test(raw)) return null;
  const ms = new Date(raw).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/** The same time in UTC, so that what is sent is plain to someone in another zone. */
function utcText(ms) {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, ms % 1000 ? 23 : ms % 60_000 ? 19 : 16).replace("T", " ")} UTC`;
}

/** The line beneath a switch's time: the time in UTC, unless local time is UTC then. */
const utcLine = (ms) => (ms === null || new Date(ms).getTimezoneOffset() === 0 ? "" : utcText(ms));

/** Whether a switch has taken effect, by this browser's clock (the Worker's decides). */
function switchState(s) {
  if (s.at === null) return "";
  return s.at <= Date.now() ? "Past: applied" : "Upcoming";
}

/** The section: `data-path` catches the API's messages about the schedule (its rows are sorted on save). */
function scheduleFieldset() {
  const add = () => {
    // The next whole hour after the last switch (or now), switching the other way.
    const last = draft.schedule.at(-1);
    const next = new Date(Math.max(Date.now(), ...draft.schedule.map((s) => s.at ?? 0)));
    next.setMinutes(60, 0, 0);
    const s = { k: nextKey(), at: next.getTime(), raw: localInput(next.getTime()), enabled: last ? !last.enabled : true };
    draft.schedule.push(s);
    touched();
    renderEditor(`fe-s-${s.k}-at`);
  };
  const rows = draft.schedule.map(switchRow);
  return h(
    "fieldset",
    {
      class: "group",
      id: "fe-schedule",
      tabindex: -1,
      "data-path": pathOf("schedule"),
      "data-error": "fe-schedule-error",
      "aria-describedby": "fe-schedule-hint fe-schedule-error",
    },
    h("legend", {}, "Schedule"),
    h(
      "p",
      { id: "fe-schedule-hint", class: "hint" },
      `Switches the flag on or off from a time on, applied when it is evaluated (no new version is written then). Before the first switch the flag is the opposite of it; Enabled off (above) wins over every switch. At most ${MAX_SCHEDULE}, saved in time order. Times are in this browser's time zone, ${TIME_ZONE}.`,
    ),
    h("p", { id: "fe-schedule-error", class: "field-error" }),
    rows.length
      ? h(
          "table",
          { class: "fit rows schedule" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, `When (${TIME_ZONE})`),
              h("th", { scope: "col" }, "Turns the flag"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Remove")),
            ),
          ),
          h("tbody", {}, rows),
        )
      : h("p", { class: "empty" }, "No scheduled switches."),
    h("button", { type: "button", id: "fe-add-switch", class: "quiet", onclick: add, disabled: draft.schedule.length >= MAX_SCHEDULE }, "Add a switch"),
  );
}

function switchRow(s, i) {
  const n = i + 1;
  const atId = `fe-s-${s.k}-at`;
  const shown = () => {
    $(`${atId}-utc`).textContent = utcLine(s.at);
    $(`fe-s-${s.k}-state`).textContent = switchState(s);
    $(`fe-s-${s.k}-state`).closest("tr").classList.toggle("past", switchState(s).startsWith("Past"));
  };
  const retime = (e) => {
    s.raw = e.target.value;
    s.at = fromLocalInput(s.raw);
    touched();
    shown();
  };
  const remove = () => {
    draft.schedule = draft.schedule.filter((x) => x !== s);
    touched();
    renderEditor("fe-add-switch");
    say(`Switch ${n} removed from the editor; save to keep the change.`);
  };
  const state = switchState(s);
  return h(
    "tr",
    { class: state.startsWith("Past") ? "past" : null },
    h(
      "td",
      {},
      h("input", {
        id: atId,
        type: "datetime-local",
        value: s.raw,
        // Seconds only for a time that has them.
        step: s.at !== null && s.at % 1000 ? 0.001 : s.at !== null && s.at % 60_000 ? 1 : null,
        "aria-label": `Time of switch ${n} (${TIME_ZONE})`,
        "aria-describedby": `${atId}-utc ${atId}-error`,
        oninput: retime,
      }),
      h("p", { id: `${atId}-utc`, class: "hint" }, utcLine(s.at)),
      errorOf(atId),
    ),
    h(
      "td",
      {},
      select(`fe-s-${s.k}-on`, [["true", "on"], ["false", "off"], ...(s.set ? [["", "leaves on/off"]] : [])], s.enabled === undefined ? "" : String(s.enabled), (v) => {
        s.enabled = v === "" ? undefined : v === "true";
        touched();
      }, { "aria-label": `Switch ${n} turns the flag`, "aria-describedby": null }),
      s.set ? h("p", { class: "hint" }, `and answers from a new definition: variants ${Object.keys(s.set.variants ?? {}).join(", ")}, default ${s.set.defaultVariant}`) : null,
    ),
    h("td", { id: `fe-s-${s.k}-state` }, state),
    h("td", {}, h("button", { type: "button", class: "quiet", onclick: remove, "aria-label": `Remove switch ${n}` }, "Remove")),
  );
}

/** The schedule the form holds, in time order (the API wants each `at` later than the one before), or problems through `bad`. */
function scheduleOf(bad) {
  const out = [];
  draft.schedule.forEach((s, i) => {
    const id = `fe-s-${s.k}-at`;
    if (s.at === null) bad(id, `Choose the date and time of switch ${i + 1}.`);
    else if (s.at < 0) bad(id, "Choose a time after 1 January 1970.");
    else if (out.some((x) => x.at === s.at)) bad(id, `Two switches at ${utcText(s.at)}: one per time.`);
    else out.push({ at: s.at, ...(s.enabled === undefined ? {} : { enabled: s.enabled }), ...(s.set ? { set: s.set } : {}) });
  });
  return out.sort((a, b) => a.at - b.at);
}

/** The definition the form holds: `{def}`, or `{problems: [[control, message, others?]]}`. */
function fromDraft() {
  const problems = [];
  const bad = (id, message, others = []) => problems.push([$(id), message, others]);
  const variants = {};
  for (const v of draft.variants) {
    const parsed = parseValue(draft.type, v.raw);
    if (!NAME.test(v.name)) bad(`fe-v-${v.k}-name`, v.name ? `Not a valid name: ${NAME_RULE}.` : "Name the variant.");
    else if (Object.hasOwn(variants, v.name)) bad(`fe-v-${v.k}-name`, `Two variants are named ${v.name}.`);
    if (parsed.problem) bad(`fe-v-${v.k}-value`, parsed.problem);
    else variants[v.name] = parsed.value;
  }
  const named = (k) => draft.variants.some((v) => v.k === k);
  if (!named(draft.defaultK)) bad("fe-default", "Choose the default variant.");
  const prerequisites = prerequisitesOf(bad);
  const rules = draft.rules.map((rule, ri) => {
    if (!named(rule.variantK)) bad(`fe-r-${rule.k}-variant`, `Choose the variant rule ${ri + 1} serves.`);
    const when = {};
    for (const c of rule.conditions) {
      if (!NAME.test(c.attr)) bad(`fe-c-${c.k}-attr`, c.attr ? `Not a valid attribute name: ${NAME_RULE}.` : "Name the attribute.");
      else if (Object.hasOwn(when, c.attr)) bad(`fe-c-${c.k}-attr`, `Rule ${ri + 1} has two conditions on ${c.attr}: one per attribute.`);
      const parsed = parseCondition(c);
      if (parsed.problem) bad(`fe-c-${c.k}-values`, parsed.problem);
      else when[c.attr] = { [c.op]: parsed.value };
    }
    return { when, variant: variantName(rule.variantK) };
  });
  let rollout;
  if (draft.rollout !== null) {
    rollout = {};
    const inputs = draft.variants.map((v) => `fe-share-${v.k}`);
    for (const v of draft.variants) {
      const raw = (draft.rollout[v.k] ?? "").trim();
      if (raw === "") continue;
      if (!/^\d+$/.test(raw) || Number(raw) > 100) bad(`fe-share-${v.k}`, `The share of ${v.name || "a variant"} must be a whole percentage from 0 to 100.`);
      else rollout[v.name] = Number(raw);
    }
    const total = rolloutTotal();
    if (total !== null && total !== 100) {
      bad(inputs[0], `Rollout percentages must total 100; they total ${total}.`, inputs.slice(1));
    }
  }
  const schedule = scheduleOf(bad);
  if (problems.length) return { problems };
  const def = { variants, defaultVariant: variantName(draft.defaultK), rules };
  if (rollout) def.rollout = rollout;
  if (Object.keys(prerequisites).length) def.prerequisites = prerequisites;
  def.enabled = draft.enabled;
  if (schedule.length) def.schedule = schedule;
  return { def };
}

/**
 * Where a refusal goes that names no control of the editor: a problem with another flag's
 * prerequisites as a whole (a cycle through this flag, a chain too deep) at this flag's
 * prerequisites, anything else at the flag's switch.
 */
const refusedAt = (path) => (/^featureFlags\..+\.prerequisites$/.test(path) ? $("fe-prereqs") : $("fe-enabled"));

async function save(event) {
  event.preventDefault();
  clearErrors($("flag-editor"));
  const name = draft.name;
  if (!same(flagsOf()[name], loaded)) {
    const message = `Not saved: flag ${name} changed since its editor was opened (the config is at version ${config.versionShown()}). Nothing was overwritten: close the editor and open it again to edit the new definition.`;
    return alarm(message);
  }
  const { def, problems } = fromDraft();
  if (problems) {
    // Every problem at its field, the focus on the first.
    for (const [control, message, others] of [...problems].reverse()) {
      fieldError(control, message);
      for (const id of others) $(id)?.setAttribute("aria-invalid", "true");
    }
    problems[0][0].focus();
    return alarm(`Not saved: ${problems[0][1]}${problems.length > 1 ? ` (and ${plural(problems.length - 1, "other problem")})` : ""}`);
  }
  if (await config.write({ featureFlags: { [name]: def } }, refusedAt)) {
    draft = toDraft(name, flagsOf()[name]);
    loaded = flagsOf()[name];
    dirty = false;
    renderEditor("fe-save");
    say(`Saved flag ${name} as version ${config.versionShown()}.`);
    loadHistory();
  }
}

// ---------------------------------------------------------------------------------------
// Try it: the flag evaluated over OFREP, as an SDK would, for a context typed in.

async function tryIt(event) {
  event.preventDefault();
  clearErrors($("flag-try"));
  const name = draft.name;
  const attrs = $("try-attrs");
  let context = {};
  if (attrs.value.trim()) {
    try {
      context = JSON.parse(attrs.value);
    } catch (e) {
      fieldError(attrs, `Not valid JSON (${e.message}).`);
      return alarm("Not evaluated: the attributes are not valid JSON.");
    }
    if (!isObject(context)) {
      fieldError(attrs, 'Type a JSON object, such as {"country": "NL"}.');
      return alarm("Not evaluated: the attributes are not a JSON object.");
    }
  }
  const key = $("try-key").value;
  if (key !== "") context = { ...context, targetingKey: key };
  // A public route: no admin token goes with it.
  const answer = await call("POST", `/ofrep/v1/evaluate/flags/${name}`, { body: { context }, admin: false });
  if (draft?.name !== name) return;
  const result = $("try-result");
  const fact = (term, ...value) => [h("dt", {}, term), h("dd", {}, ...value)];
  const body = answer.body ?? {};
  if (answer.ok) {
    const facts = [
      ...fact("Value", h("code", {}, JSON.stringify(body.value))),
      ...fact("Variant", h("code", {}, String(body.variant))),
      ...fact("Reason", h("code", {}, String(body.reason))),
    ];
    const rule = body.metadata?.ruleIndex;
    if (Number.isInteger(rule)) facts.push(...fact("Rule", `rule ${rule + 1}`));
    const seen = body.metadata?.configVersion;
    const shownVersion = config.versionShown();
    const lag = Number.isInteger(seen) && seen < shownVersion ? ` (this page shows version ${shownVersion}: the edge serves a write within seconds)` : "";
    facts.push(...fact("Config version", `${seen}${lag}`));
    result.replaceChildren(h("h4", {}, "Answer"), h("dl", { class: "facts" }, facts));
    say(`${name}: value ${JSON.stringify(body.value)}, variant ${body.variant}, reason ${body.reason}.`);
  } else if (body.errorCode) {
    result.replaceChildren(
      h("h4", {}, "Answer"),
      h("dl", { class: "facts" }, ...fact("Error", h("code", {}, body.errorCode)), ...fact("Details", String(body.errorDetails ?? ""))),
    );
    say(`${name}: error ${body.errorCode} (HTTP ${answer.status}).`);
  } else {
    result.replaceChildren();
    result.hidden = true;
    return alarm(`Not evaluated: ${problem(answer)}`);
  }
  result.hidden = false;
}

// ---------------------------------------------------------------------------------------
// The flag's history: the versions that changed it, with a diff and a revert.

let shownHistory = null; // the flag's loaded history: {name, entries, cursor, current: {doc, version}}

async function loadHistory() {
  const name = draft.name;
  shownHistory = { name, entries: [], cursor: null, current: null };
  $("flag-history-summary").textContent = "Loading the history…";
  $("flag-history").replaceChildren();
  $("flag-history-more").hidden = true;
  const answer = await call("GET", "/admin/config");
  if (shownHistory?.name !== name) return;
  if (!answer.ok) return complain(answer, "Could not load the current config");
  shownHistory.current = { doc: answer.body, version: answer.version };
  await moreHistory();
}

async function moreHistory() {
  const mine = shownHistory;
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (mine.cursor) query.set("cursor", mine.cursor);
  const answer = await call("GET", `/admin/config/history?${query}`);
  if (shownHistory !== mine) return;
  if (!answer.ok) return complain(answer, "Could not load the history");
  mine.entries.push(...answer.body.entries);
  mine.cursor = answer.body.listComplete ? null : answer.body.cursor;
  renderHistory();
}

const flagPath = (name) => `featureFlags.${name}`;

/**
 * A definition as the API stores it (defaults filled in, its fields in the API's order,
 * prerequisites by name), so that diffs show only real changes and a restore keeps every field.
 */
function normal(flag) {
  if (!isObject(flag)) return flag;
  const { variants, defaultVariant, prerequisites = {}, rules = [], rollout, enabled = true, schedule = [] } = flag;
  const out = { variants, defaultVariant };
  const needs = Object.keys(prerequisites).sort();
  if (needs.length) out.prerequisites = Object.fromEntries(needs.map((n) => [n, prerequisites[n]]));
  out.rules = rules;
  if (rollout !== undefined) out.rollout = rollout;
  out.enabled = enabled;
  if (schedule.length) out.schedule = schedule;
  return out;
}

/** The leaves of a flag's definition: path within it → value. */
function leaves(value, prefix = "", out = new Map()) {
  const at = (k) => (prefix ? `${prefix}.${k}` : k);
  if (isObject(value) && Object.keys(value).length) for (const [k, v] of Object.entries(value)) leaves(v, at(k), out);
  else if (Array.isArray(value) && value.some(isObject)) value.forEach((v, i) => leaves(v, `${prefix}[${i}]`, out));
  else out.set(prefix, value);
  return out;
}

/** A diff of two definitions of flag `name`, as list items. */
function flagDiff(name, before, after) {
  const path = flagPath(name);
  if (!isObject(before) || !isObject(after)) {
    return [h("li", {}, h("code", {}, name), ": ", shown(before, path), " → ", shown(after, path))];
  }
  const [a, b] = [leaves(before), leaves(after)];
  const lines = [];
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    const [x, y] = [a.has(p) ? a.get(p) : ABSENT, b.has(p) ? b.get(p) : ABSENT];
    if (!same(x, y)) lines.push(h("li", {}, h("code", {}, p), ": ", shown(x, `${path}.${p}`), " → ", shown(y, `${path}.${p}`)));
  }
  return lines.length ? lines : [h("li", { class: "empty" }, "No change.")];
}

function renderHistory() {
  const { name, entries, current } = shownHistory;
  const path = flagPath(name);
  const { docAt } = documents(entries, current);
  const now = normal(current.doc.featureFlags?.[name] ?? ABSENT);
  const changes = entries
    .filter((e) => e.version !== null && e.version <= current.version)
    .map((e) => ({ e, before: normal(docAt(e.version - 1)(path)), after: normal(docAt(e.version)(path)) }))
    .filter(({ before, after }) => !same(before, after) && (known(before) || known(after)));
  $("flag-history").replaceChildren(...changes.map((c) => historyItem(name, c, now)));
  const read = plural(entries.length, "version");
  $("flag-history-summary").textContent = changes.length
    ? `${plural(changes.length, "version")} changed ${name}, of the newest ${read}${shownHistory.cursor === null ? " (the whole history)" : ""}.`
    : `No version changed ${name}, of the newest ${read}${shownHistory.cursor === null ? " (the whole history)" : ""}.`;
  $("flag-history-more").hidden = shownHistory.cursor === null;
}

function historyItem(name, { e, before, after }, now) {
  const v = e.version;
  const what = e.action === "rollback" ? `rollback to version ${e.change?.version}` : e.action;
  const restorable = known(before) && !same(before, now);
  return h(
    "li",
    { class: "version" },
    h("h4", {}, `Version ${v}`),
    h("p", { class: "meta" }, `${what} · `, time(e.at), " · by ", h("code", {}, e.actor)),
    h("ul", { class: "diff", "aria-label": `Changes to ${name} in version ${v}` }, flagDiff(name, before, after)),
    restorable
      ? h("button", { type: "button", class: "quiet", onclick: () => revert(name, v, before) }, `Restore ${name} as before version ${v}`)
      : null,
  );
}

/** Restores flag `name` as it was before version `v`: a PATCH of it alone, asked first. */
async function revert(name, v, before) {
  const answer = await call("GET", "/admin/config");
  if (!answer.ok) return complain(answer, "Could not load the current config");
  if (answer.version !== shownHistory.current.version) {
    config.show(answer, ["flags"]);
    alarm(`The config changed since this history was loaded (it is now version ${answer.version}). The history of ${name} is reloaded; try again.`);
    return loadHistory();
  }
  const now = normal(answer.body.featureFlags?.[name] ?? ABSENT);
  const details = [
    before === ABSENT
      ? h("p", {}, `It removes flag ${name}, which did not exist before version ${v}.`)
      : h("p", {}, `It sets flag ${name} to its definition before version ${v}:`),
    // It may scroll: focusable, so that the keyboard can scroll it too.
    before === ABSENT
      ? null
      : h("pre", { class: "json", tabindex: 0, role: "region", "aria-label": `Definition of ${name} before version ${v}` }, h("code", {}, JSON.stringify(before, null, 2))),
    h("p", { id: "revert-diff-title" }, "What changes, from its current definition:"),
    h("ul", { class: "diff", "aria-labelledby": "revert-diff-title" }, flagDiff(name, now, before)),
  ].filter(Boolean);
  const unsaved = dirty ? " Unsaved edits in the editor are discarded." : "";
  const sure = await confirmed(
    `Restore ${name} as before version ${v}?`,
    `This writes version ${answer.version + 1}, changing this flag only, if the config is still version ${answer.version}.${unsaved}`,
    "Restore",
    details,
  );
  if (!sure) return say(`Flag ${name} left as it is.`);
  config.show(answer, ["flags"]);
  dirty = false;
  if (await config.write({ featureFlags: { [name]: before === ABSENT ? null : before } })) {
    say(`Restored ${name} as before version ${v}: saved as version ${config.versionShown()}.`);
    if (draft?.name === name) {
      draft = toDraft(name, flagsOf()[name]);
      loaded = flagsOf()[name];
      renderEditor();
      loadHistory();
      $("flag-editor-title").focus(); // the restore button is gone with the list it was in
    }
  }
}

// ---------------------------------------------------------------------------------------

export function reset() {
  query = "";
  page = 0;
  usage = null;
  draft = loaded = shownHistory = null;
  dirty = false;
  $("flag-search").value = "";
  $("flags").replaceChildren();
  $("flags-summary").textContent = "";
  $("flag-editor").hidden = true;
  $("flag-form-area").replaceChildren();
  $("flag-history").replaceChildren();
  $("try-result").replaceChildren();
}

export function init() {
  $("flag-add").addEventListener("submit", addFlag);
  $("flag-search").addEventListener("input", search);
  $("flag-stale-days").addEventListener("input", () => render());
  $("flags-prev").addEventListener("click", () => turn(-1));
  $("flags-next").addEventListener("click", () => turn(1));
  $("flag-try").addEventListener("submit", tryIt);
  $("flag-history-more").addEventListener("click", moreHistory);
}
