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

/**
 * Checks one exchange. `header(name)` reads a response header; `text` is the body.
 * Options: `otherRoutes` (the Worker serves paths of its own beside edgestate's: responses
 * on paths the document does not declare are not checked). Throws, naming every problem.
 */
export function checkExchange({ method, pathname, status, header, text, otherRoutes = false }) {
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
  const text = await res.clone().text();
  checkExchange({
    method: method.toUpperCase(),
    pathname: new URL(url).pathname,
    status: res.status,
    header: (name) => res.headers.get(name),
    text,
    ...options,
  });
  return res;
}
