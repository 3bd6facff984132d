// The contract, checked on every response the integration suite receives: `boot()` (in
// helpers.js) routes every request through `checkResponse`, which finds the operation of
// docs/openapi.json the request is for and fails the test unless the response has a status
// documented for it, a body that validates against its schema (JSON Schema 2020-12, ajv),
// and every header the document requires, with a value its schema allows. A path no
// operation declares must be the document's NotFound answer; a declared path with another
// method its MethodNotAllowed answer, with `Allow` listing exactly the path's methods. While
// CORS is configured, an `OPTIONS` on a declared path may instead be a preflight: the
// document's Preflight answer (204, `Access-Control-Allow-Methods` listing exactly the path's
// methods) or PreflightRefused (403).
//
// The request goes through the same document (`request`: its headers and body, as helpers.js
// passes them): its path, query and header parameters and its body are judged against the
// operation (`judgeRequest`), and the Worker's answer must agree with that judgement. Tests
// send invalid requests on purpose, so this is an agreement check, not a refusal: a request
// the document calls valid must not be refused as malformed (400 `invalid_json` or
// `invalid_request`, OFREP's `PARSE_ERROR` or `INVALID_CONTEXT`, 413, 415); one it calls
// invalid must get a 4xx (or 503: the maintenance gate, a strict rate-limit counter and a
// session lookup all answer before the body or the parameters are read), never a success.
// A request body's `x-edgestate` gives its size limit, whether its Content-Type is checked,
// and `furtherChecks`: rules JSON Schema cannot state, under which a body the schema allows
// may still be refused, with a 400 `invalid_request` naming one of the rule's fields. What
// the check cannot see (a streamed body, the query of a request sent without it) or JSON
// whose meaning RFC 8259 leaves to the parser (nesting depth, unpaired surrogates, numbers
// out of range) leaves the judgement "unknown", and the answer is not held to it.
//
// `exampleProblems` checks that every `example`, `examples` and `default` in the document
// validates against its schema (scripts/lint-openapi.sh runs it).
import Ajv2020 from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const REGENERATE = "npm run openapi";

/** docs/openapi.json, parsed. */
export const OPENAPI = JSON.parse(readFileSync(join(ROOT, "docs/openapi.json"), "utf8"));

const ajv = new Ajv2020({ strict: false, allErrors: true });
// The component schemas as one JSON Schema document ("contract"), so `$ref`s resolve.
ajv.addSchema({
  $id: "contract",
  $defs: JSON.parse(JSON.stringify(OPENAPI.components.schemas).replaceAll("#/components/schemas/", "contract#/$defs/")),
});
const compiled = new Map();
function validator(schema) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) {
    compiled.set(key, ajv.compile(JSON.parse(key.replaceAll("#/components/schemas/", "contract#/$defs/"))));
  }
  return compiled.get(key);
}

/** A `$ref` into the document, resolved (other values as they are). */
function resolve(value) {
  if (!value?.$ref) return value;
  return value.$ref
    .slice(2)
    .split("/")
    .reduce((node, key) => node[key], OPENAPI);
}

const METHODS = ["get", "put", "post", "delete", "patch"];
const templates = Object.keys(OPENAPI.paths).map((template) => ({ template, parts: template.slice(1).split("/") }));

/**
 * The operation a request is for, as the Worker's router picks it: the path template whose
 * literal segments all match, most literal segments winning; `HEAD` means `GET`.
 */
export function operationFor(method, pathname) {
  const segments = pathname.slice(1).split("/");
  let best = null;
  for (const t of templates) {
    if (!pathname.startsWith("/") || t.parts.length !== segments.length) continue;
    let literals = 0;
    const fits = t.parts.every((p, i) => p.startsWith("{") || (literals++, p === segments[i]));
    if (fits && (!best || literals > best.literals)) best = { ...t, literals };
  }
  if (!best) return { kind: "unknown path" };
  const item = OPENAPI.paths[best.template];
  const m = method === "HEAD" ? "get" : method.toLowerCase();
  const allow = METHODS.filter((x) => item[x]).map((x) => x.toUpperCase());
  if (!METHODS.includes(m) || !item[m]) return { kind: "other method", template: best.template, allow };
  return { kind: "operation", template: best.template, operation: item[m], name: `${method} ${best.template}` };
}

function coerce(schema, value) {
  const s = resolve(schema);
  return s?.type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
}

function checkHeaders(declared = {}, header, problems) {
  for (const [name, ref] of Object.entries(declared)) {
    const h = resolve(ref);
    const value = header(name);
    if (value == null) {
      if (h.required) problems.push(`header ${name} is required but absent`);
      continue;
    }
    const validate = validator(h.schema);
    if (!validate(coerce(h.schema, value))) problems.push(`header ${name}: ${JSON.stringify(value)} ${ajv.errorsText(validate.errors)}`);
  }
}

function checkBody(response, { method, status, contentType, text }, problems) {
  const content = response.content?.["application/json"];
  if (method === "HEAD" || !content) {
    if (text !== "") problems.push(`expected no body, got ${JSON.stringify(text.slice(0, 200))}`);
    return;
  }
  if (!/^application\/json/.test(contentType ?? "")) problems.push(`content-type ${contentType} is not application/json`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push(`body is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
    return;
  }
  const validate = validator(content.schema);
  if (!validate(body)) problems.push(`body ${ajv.errorsText(validate.errors)}: ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------
// Examples: every `example`, `examples` and `default` the document gives validates against
// the schema it illustrates.

/** The keywords of a Schema Object whose values are schemas, maps of schemas or lists of them. */
const SUBSCHEMA = new Set(["items", "additionalProperties", "propertyNames", "not", "contains", "if", "then", "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema"]);
const SUBSCHEMA_MAPS = new Set(["properties", "patternProperties", "dependentSchemas", "$defs"]);
const SUBSCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);

/**
 * Every example in docs/openapi.json that its schema refuses, as "where: why" lines (empty when all
 * validate): a Schema Object's `examples` (each item), `example` and `default`, and the
 * `example` and `examples` (their `value`) of parameters, headers and media types.
 */
export function exampleProblems() {
  const doc = OPENAPI;
  const problems = [];
  const at = (where, key) => `${where}/${String(key).replaceAll("~", "~0").replaceAll("/", "~1")}`;
  const check = (schema, value, where) => {
    const validate = validator(schema);
    if (!validate(value)) problems.push(`${where}: ${JSON.stringify(value).slice(0, 120)} ${ajv.errorsText(validate.errors)}`);
  };
  const inSchema = (schema, where) => {
    if (schema === null || typeof schema !== "object") return;
    if (Array.isArray(schema.examples)) schema.examples.forEach((v, i) => check(schema, v, at(`${where}/examples`, i)));
    if ("example" in schema) check(schema, schema.example, `${where}/example`);
    if ("default" in schema) check(schema, schema.default, `${where}/default`);
    for (const [key, value] of Object.entries(schema)) {
      if (SUBSCHEMA.has(key)) inSchema(value, at(where, key));
      else if (SUBSCHEMA_MAPS.has(key)) for (const [k, v] of Object.entries(value)) inSchema(v, at(at(where, key), k));
      else if (SUBSCHEMA_LISTS.has(key)) value.forEach((v, i) => inSchema(v, at(at(where, key), i)));
    }
  };
  // Outside schemas: any object with a `schema` (a parameter, header or media type) and what
  // it holds; `schema` values are walked as schemas.
  const outside = (node, where) => {
    if (node === null || typeof node !== "object") return;
    if (node.schema && typeof node.schema === "object") {
      if ("example" in node) check(node.schema, node.example, `${where}/example`);
      for (const [name, example] of Object.entries(node.examples ?? {})) {
        const value = resolve(example)?.value;
        if (value !== undefined) check(node.schema, value, at(`${where}/examples`, name));
      }
      inSchema(node.schema, `${where}/schema`);
    }
    for (const [key, value] of Object.entries(node)) {
      if (key !== "schema" && key !== "examples" && key !== "example" && !key.startsWith("x-")) outside(value, at(where, key));
    }
  };
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) inSchema(schema, `#/components/schemas/${name}`);
  const { schemas: _walked, ...rest } = doc.components ?? {};
  outside({ ...doc, components: rest }, "#");
  return problems;
}

// ---------------------------------------------------------------------------------------
// Requests: what the document says of one, and whether the Worker's answer agrees.

/** `%XX` escapes decoded once, as the Worker's router and query reader do (a malformed escape
 * stays as it is; bytes that are not UTF-8 become U+FFFD); `form`: `+` is a space. */
export function percentDecode(s, form = false) {
  const bytes = [];
  const utf8 = new TextEncoder();
  for (let i = 0; i < s.length; ) {
    if (s[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
      continue;
    }
    const ch = String.fromCodePoint(s.codePointAt(i));
    bytes.push(...utf8.encode(form && ch === "+" ? " " : ch));
    i += ch.length;
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The query's pairs, decoded as a form, as the Worker reads them (`a` alone is `a=`). */
function queryPairs(search) {
  return search
    .replace(/^\?/, "")
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf("=");
      const [k, v] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
      return [percentDecode(k, true), percentDecode(v, true)];
    });
}

/** Whether a parameter's text value is one its schema allows: as text, or (digits only) as the
 * integer it spells, the form an integer takes in a path, query or header. */
function paramAllows(schema, text) {
  const validate = validator(schema);
  return validate(text) || (/^-?[0-9]+$/.test(text) && validate(Number(text)));
}

const quote = (v) => JSON.stringify(v).slice(0, 120);

/** JSON text whose meaning RFC 8259 leaves to the parser (§8.2 unpaired surrogates, §9 nesting
 * depth and the range of numbers): the document cannot call it valid or invalid. serde_json,
 * the Worker's reader, refuses nesting past 128 levels, unpaired surrogates and numbers out of
 * a double's range. */
function implementationDefined(text, value) {
  if (/\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]/.test(text)) {
    return "an unpaired surrogate escape";
  }
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") deepest = Math.max(deepest, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  if (deepest > 128) return `nesting ${deepest} levels deep`;
  const infinite = (v) => (typeof v === "number" ? !Number.isFinite(v) : v !== null && typeof v === "object" && Object.values(v).some(infinite));
  if (infinite(value)) return "a number out of range";
  return null;
}

/** Whether media type `type` (a Content-Type value) is one `key` (a type, or a `*` range) names. */
function mediaMatches(key, type) {
  const [k, t] = [key, type.split(";")[0].trim()].map((x) => x.toLowerCase().split("/"));
  return (k[0] === "*" || k[0] === t[0]) && (k[1] === "*" || k[1] === t[1]);
}

/**
 * What docs/openapi.json says of a request for operation `found`: `{ verdict, reasons }`, the
 * verdict "invalid" (with what breaks it), "valid", or "unknown" (something the check cannot
 * see, such as a streamed body, or the document leaves open). `search` is the query string
 * (undefined: not known); `request` is `{ headers, body }`.
 */
export function judgeRequest(found, pathname, search, request) {
  const op = found.operation;
  const invalid = [];
  const unknown = [];
  const params = (op.parameters ?? []).map(resolve);
  // Path parameters: decoded once, as the router does.
  const parts = found.template.slice(1).split("/");
  const segments = pathname.slice(1).split("/");
  parts.forEach((part, i) => {
    if (!part.startsWith("{")) return;
    const name = part.slice(1, -1);
    const p = params.find((x) => x.in === "path" && x.name === name);
    const value = percentDecode(segments[i] ?? "");
    if (p && !paramAllows(p.schema, value)) invalid.push(`path parameter ${name} ${quote(value)} fails its schema`);
  });
  // Query parameters: every occurrence of a named one; an exploded object takes the rest.
  const inQuery = params.filter((p) => p.in === "query");
  if (inQuery.length && search === undefined) {
    unknown.push("the query string was not passed to the check");
  } else if (inQuery.length) {
    const pairs = queryPairs(search);
    const named = new Set(inQuery.filter((p) => resolve(p.schema)?.type !== "object").map((p) => p.name));
    for (const p of inQuery) {
      if (named.has(p.name)) {
        const values = pairs.filter(([k]) => k === p.name).map(([, v]) => v);
        if (!values.length && p.required) invalid.push(`query parameter ${p.name} is required`);
        for (const v of values) {
          if (!paramAllows(p.schema, v)) invalid.push(`query parameter ${p.name}=${quote(v)} fails its schema`);
        }
      } else {
        const object = Object.fromEntries(pairs.filter(([k]) => !named.has(k)));
        const validate = validator(p.schema);
        if (!validate(object)) invalid.push(`query ${quote(object)} (${p.name}) ${ajv.errorsText(validate.errors)}`);
      }
    }
  }
  // Header parameters.
  for (const p of params.filter((x) => x.in === "header")) {
    const value = request.headers.get(p.name);
    if (value === null) {
      if (p.required) invalid.push(`header ${p.name} is required`);
    } else if (!paramAllows(p.schema, value)) {
      invalid.push(`header ${p.name}: ${quote(value)} fails its schema`);
    }
  }
  judgeBody(resolve(op.requestBody), request, invalid, unknown);
  const verdict = invalid.length ? "invalid" : unknown.length ? "unknown" : "valid";
  return { verdict, reasons: invalid.length ? invalid : unknown };
}

function judgeBody(declared, { headers, body }, invalid, unknown) {
  if (!declared) return;
  const rules = declared["x-edgestate"] ?? {};
  let bytes;
  if (body === null || body === undefined) bytes = new Uint8Array(0);
  else if (typeof body === "string") bytes = new TextEncoder().encode(body);
  else if (body instanceof Uint8Array) bytes = body;
  else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body);
  else return unknown.push(`the body is a ${body?.constructor?.name ?? typeof body}, not bytes the check can read`);
  const declaredLength = Number(headers.get("content-length") ?? bytes.length);
  const size = Math.max(bytes.length, Number.isFinite(declaredLength) ? declaredLength : 0);
  if (rules.maxBytes !== undefined && size > rules.maxBytes) {
    return invalid.push(`the body is ${size} bytes, over the ${rules.maxBytes} the document allows`);
  }
  if (bytes.length === 0) {
    if (declared.required) invalid.push("the request body is required but absent");
    return;
  }
  const types = Object.keys(declared.content);
  let type = types.find((t) => /json/.test(t)) ?? types[0];
  if (rules.contentTypeChecked !== false) {
    const sent = headers.get("content-type");
    const matching = sent === null ? [] : types.filter((t) => mediaMatches(t, sent));
    if (!matching.length) return invalid.push(`Content-Type ${sent ?? "(absent)"} is none of ${types.join(", ")}`);
    // The most specific key applies (fewest wildcards).
    type = matching.sort((a, b) => (a.match(/\*/g) ?? []).length - (b.match(/\*/g) ?? []).length)[0];
  }
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return invalid.push("the body is not UTF-8, so not JSON");
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return invalid.push(`the body is not JSON (${e.message})`);
  }
  const validate = validator(declared.content[type].schema);
  if (!validate(value)) return invalid.push(`body ${ajv.errorsText(validate.errors)}: ${text.slice(0, 200)}`);
  const openQuestion = implementationDefined(text, value);
  if (openQuestion) unknown.push(`the body's JSON has ${openQuestion}, which RFC 8259 leaves to the reader`);
}

/** How the Worker refused a request as malformed, if it did: "400 invalid_request", "413"… */
function refusal(method, status, text) {
  if (status === 413 || status === 415) return String(status);
  if (status !== 400) return null;
  // A HEAD answer has no body: every 400 of a GET operation is about the request.
  if (method === "HEAD") return "400";
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (["invalid_json", "invalid_request"].includes(body?.code)) return `400 ${body.code}`;
  // OFREP's shape: a body that is not JSON, or not a context (not its evaluation errors).
  if (["PARSE_ERROR", "INVALID_CONTEXT"].includes(body?.errorCode)) return `400 ${body.errorCode}`;
  return null;
}

/**
 * Whether a refusal is one the request body's `x-edgestate.furtherChecks` announce: a rule
 * JSON Schema cannot state, whose 400 `invalid_request` names one of the rule's fields (an
 * error message starts with the field it refuses, docs/API.md "Errors").
 */
function announced(operation, text) {
  const checks = resolve(operation.requestBody)?.["x-edgestate"]?.furtherChecks ?? [];
  let field;
  try {
    const body = JSON.parse(text);
    if (body.code !== "invalid_request") return null;
    field = body.error.split(": ")[0];
  } catch {
    return null;
  }
  // `*` stands for any text; everything else is literal.
  const pattern = (f) => new RegExp("^" + f.split("*").map((s) => s.replace(/[.+?^$(){}|[\]\\]/g, "\\$&")).join(".+") + "$");
  return checks.find((c) => c.fields.some((f) => pattern(f).test(field))) ?? null;
}

/** The disagreement between the document's judgement of a request and the Worker's answer. */
function disagreement(where, operation, judged, method, status, text) {
  const said = (verdict) => `docs/openapi.json says the request is ${verdict}`;
  const answered = `the Worker answered ${status} ${text.slice(0, 200)}`;
  if (judged.verdict === "valid") {
    const refused = refusal(method, status, text);
    if (refused && !announced(operation, text)) {
      return `${where}: ${said("valid")}, but the Worker refused it as malformed (${refused}): ${answered}`;
    }
  } else if (judged.verdict === "invalid" && !((status >= 400 && status < 500) || status === 503)) {
    return `${where}: ${said("invalid")} (${judged.reasons.join("; ")}), but ${answered}`;
  }
  return null;
}

/**
 * Checks one exchange. `header(name)` reads a response header; `text` is the body.
 * Options: `otherRoutes` (the Worker serves paths of its own beside edgestate's: responses
 * on paths the document does not declare are not checked), `request` (`{headers, body}` of
 * the request: its agreement with the answer is checked too), `search` (the request's query
 * string; without it, query parameters are not judged). Throws, naming every problem.
 */
export function checkExchange({ method, pathname, status, header, text, otherRoutes = false, request, search }) {
  const found = operationFor(method, pathname);
  if (found.kind === "unknown path" && otherRoutes) return;
  const problems = [];
  let response;
  let where;
  if (found.kind === "unknown path") {
    where = `${method} ${pathname} (no operation)`;
    if (status !== 404) problems.push(`status ${status}: a path no operation declares must be 404`);
    response = OPENAPI.components.responses.NotFound;
  } else if (found.kind === "other method" && method === "OPTIONS" && [204, 403].includes(status)) {
    where = `OPTIONS ${found.template} (preflight)`;
    response = OPENAPI.components.responses[status === 204 ? "Preflight" : "PreflightRefused"];
    const methods = (header("Access-Control-Allow-Methods") ?? "").split(", ").sort();
    if (status === 204 && methods.join() !== [...found.allow].sort().join()) {
      problems.push(`Access-Control-Allow-Methods ${header("Access-Control-Allow-Methods")} is not ${found.allow.join(", ")}`);
    }
  } else if (found.kind === "other method") {
    where = `${method} ${found.template} (not declared)`;
    if (status !== 405) problems.push(`status ${status}: a method the path does not declare must be 405`);
    response = OPENAPI.components.responses.MethodNotAllowed;
    const allow = (header("Allow") ?? "").split(", ").sort();
    if (allow.join() !== [...found.allow].sort().join()) problems.push(`Allow ${header("Allow")} is not ${found.allow.join(", ")}`);
  } else {
    where = found.name;
    const judged = request && judgeRequest(found, pathname, search, request);
    const disagrees = judged && disagreement(where, found.operation, judged, method, status, text);
    if (disagrees) {
      throw new Error(`${disagrees}\nIf the Worker is right (docs/API.md), fix the document in src/openapi/ and run \`${REGENERATE}\`; else the Worker has a bug.`);
    }
    response = found.operation.responses[String(status)];
    if (!response) {
      const documented = Object.keys(found.operation.responses).join(", ");
      throw new Error(`${where} answered ${status}, which docs/openapi.json does not document (it documents ${documented}): ${text.slice(0, 300)}\nIf the Worker is right, declare it in src/openapi/ and run \`${REGENERATE}\`.`);
    }
  }
  checkHeaders(response.headers, header, problems);
  checkBody(response, { method, status, contentType: header("content-type"), text }, problems);
  if (problems.length) {
    throw new Error(`${where} → ${status} breaks docs/openapi.json:\n  ${problems.join("\n  ")}\nIf the Worker is right, update src/openapi/ and run \`${REGENERATE}\`.`);
  }
}

/** Checks a fetch Response (read through a clone, so the caller can still read it). */
export async function checkResponse(method, url, res, options = {}) {
  // An event stream does not end: its events are the tests' to read; its headers are checked.
  const streaming = /^text\/event-stream/.test(res.headers.get("content-type") ?? "");
  const text = streaming ? "" : await res.clone().text();
  const { pathname, search } = new URL(url);
  checkExchange({
    method: method.toUpperCase(),
    pathname,
    search,
    status: res.status,
    header: (name) => res.headers.get(name),
    text,
    ...options,
  });
  return res;
}
