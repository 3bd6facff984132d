// @ts-check
// A parser for Structured Field Lists (RFC 8941, section 4.2), strict as the RFC is: the
// whole value must parse, or it throws. Items are returned as {value, params}; bare items
// are numbers (Integer, Decimal), strings ({string}), tokens ({token}), byte sequences
// ({bytes}, base64) and booleans. Inner lists are {inner: [items], params}.

/**
 * @typedef {{ s: string, i: number }} Parser The text and the position reached.
 * @typedef {number | boolean | { string: string } | { bytes: string } | { token: string }} BareItem
 * @typedef {Record<string, BareItem>} Params
 * @typedef {{ value: BareItem, params: Params }} Item
 * @typedef {{ inner: Item[], params: Params }} InnerList
 */

/**
 * @param {string} text
 * @returns {(Item | InnerList)[]}
 */
export function parseList(text) {
  const p = { s: text, i: 0 };
  skip(p, " ");
  /** @type {(Item | InnerList)[]} */
  const members = [];
  while (p.i < p.s.length) {
    members.push(p.s[p.i] === "(" ? innerList(p) : item(p));
    skip(p, " \t");
    if (p.i >= p.s.length) return members;
    expect(p, ",");
    skip(p, " \t");
    if (p.i >= p.s.length) fail(p, "trailing comma");
  }
  return members;
}

/** @param {Parser} p @param {string} why @returns {never} */
function fail(p, why) {
  throw new Error(`not a Structured Field List (${why} at ${p.i}): ${JSON.stringify(p.s)}`);
}

/** @param {Parser} p @param {string} chars */
function skip(p, chars) {
  while (p.i < p.s.length && chars.includes(p.s[p.i])) p.i++;
}

/** @param {Parser} p @param {string} c */
function expect(p, c) {
  if (p.s[p.i] !== c) fail(p, `expected ${c}`);
  p.i++;
}

/** @param {Parser} p @returns {Item} */
function item(p) {
  const value = bareItem(p);
  return { value, params: params(p) };
}

/** @param {Parser} p @returns {InnerList} */
function innerList(p) {
  expect(p, "(");
  /** @type {Item[]} */
  const inner = [];
  for (;;) {
    skip(p, " ");
    if (p.s[p.i] === ")") break;
    inner.push(item(p));
    if (p.s[p.i] !== " " && p.s[p.i] !== ")") fail(p, "inner list");
  }
  p.i++;
  return { inner, params: params(p) };
}

/** @param {Parser} p @returns {Params} */
function params(p) {
  /** @type {Params} */
  const out = {};
  while (p.s[p.i] === ";") {
    p.i++;
    skip(p, " ");
    const k = key(p);
    /** @type {BareItem} */
    let v = true;
    if (p.s[p.i] === "=") {
      p.i++;
      v = bareItem(p);
    }
    out[k] = v;
  }
  return out;
}

/** @param {Parser} p */
function key(p) {
  const m = /^[a-z*][a-z0-9_\-.*]*/.exec(p.s.slice(p.i));
  if (!m) fail(p, "key");
  p.i += m[0].length;
  return m[0];
}

/** @param {Parser} p @returns {BareItem} */
function bareItem(p) {
  const c = p.s[p.i];
  if (c === "-" || (c >= "0" && c <= "9")) return number(p);
  if (c === '"') return { string: string(p) };
  if (c === ":") return { bytes: bytes(p) };
  if (c === "?") return boolean(p);
  if (c === "*" || /[A-Za-z]/.test(c ?? "")) return { token: token(p) };
  return fail(p, "bare item");
}

/** @param {Parser} p */
function number(p) {
  const m = /^-?\d+(\.\d+)?/.exec(p.s.slice(p.i));
  if (!m) fail(p, "number");
  const [int, frac] = m[0].replace("-", "").split(".");
  if (frac === undefined ? int.length > 15 : int.length > 12 || frac.length > 3) fail(p, "number too long");
  p.i += m[0].length;
  return Number(m[0]);
}

/** @param {Parser} p @returns {string} */
function string(p) {
  p.i++;
  let out = "";
  for (;;) {
    const c = p.s[p.i++];
    if (c === undefined) fail(p, "unterminated string");
    if (c === '"') return out;
    if (c === "\\") {
      const next = p.s[p.i++];
      if (next !== '"' && next !== "\\") fail(p, "escape");
      out += next;
    } else if (c < " " || c > "~") {
      fail(p, "string character");
    } else {
      out += c;
    }
  }
}

/** @param {Parser} p */
function token(p) {
  const m = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(p.s.slice(p.i));
  if (!m) return fail(p, "token");
  p.i += m[0].length;
  return m[0];
}

/** @param {Parser} p */
function bytes(p) {
  const end = p.s.indexOf(":", p.i + 1);
  if (end < 0) fail(p, "byte sequence");
  const b64 = p.s.slice(p.i + 1, end);
  if (!/^[A-Za-z0-9+/=]*$/.test(b64)) fail(p, "base64");
  p.i = end + 1;
  return b64;
}

/** @param {Parser} p */
function boolean(p) {
  const v = p.s[p.i + 1];
  if (v !== "0" && v !== "1") fail(p, "boolean");
  p.i += 2;
  return v === "1";
}
