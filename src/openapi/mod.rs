//! The OpenAPI 3.1 description of the API, `docs/openapi.json`, generated from the route
//! table ([`ROUTES`]: methods, paths, access, gating, rate limiting) and one declaration per
//! route ([`operations::OPERATIONS`]: parameters, bodies, success status and headers) with
//! the schemas of the request and response types ([`schemas`]).
//!
//! Feature `openapi`, off by default: none of this reaches the Worker's Wasm. `npm run
//! openapi` (`cargo run --features openapi --bin openapi`) rewrites the file, and
//! `tests/openapi.rs` fails while the committed file differs from what this generates.
//! Object keys come out sorted (`serde_json` without `preserve_order`), so the output is
//! byte-for-byte stable.

// Native tooling behind feature `openapi`, never linked into the Worker's Wasm: the Wasm-size
// lints of clippy.toml (a second set type, the pretty printer) do not concern it.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod operations;
pub mod schemas;

use crate::domain::sessions::Check;
use crate::domain::tokens::Scope;
use crate::routes::{cors, Access, Limit, Route, ROUTES};
use operations::{Op, Place, OPERATIONS};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The command that rewrites `docs/openapi.json`.
pub const REGENERATE: &str = "npm run openapi";

/// Where a route's declaration goes.
const DECLARE: &str = "src/openapi/operations.rs (OPERATIONS)";

/// `docs/openapi.json` as text: pretty-printed, sorted keys, a final newline.
pub fn render() -> Result<String, String> {
    let doc = document()?;
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// The document; an error names a route without a declaration (or a declaration without a
/// route) and says where to fix it.
pub fn document() -> Result<Value, String> {
    let mut paths = Map::new();
    for route in ROUTES {
        let op = declaration(route)?;
        let item = paths
            .entry(template(route.path))
            .or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation(route, op)?;
    }
    if let Some(op) = OPERATIONS.iter().find(|op| {
        !ROUTES
            .iter()
            .any(|r| r.method == op.method && r.path == op.path)
    }) {
        return Err(format!(
            "{} {} is declared in {DECLARE} but is not in ROUTES: remove or fix it",
            op.method, op.path
        ));
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": info(),
        "servers": [{ "url": "http://127.0.0.1:8787", "description": "npm run dev" }],
        "tags": tags(),
        "paths": paths,
        "components": components(),
    }))
}

fn declaration(route: &Route) -> Result<&'static Op, String> {
    OPERATIONS
        .iter()
        .find(|op| op.method == route.method && op.path == route.path)
        .ok_or_else(|| {
            format!(
                "{} {} has no OpenAPI declaration: add an `Op` for it to {DECLARE} (new schemas \
                 go in src/openapi/schemas.rs), then run `{REGENERATE}`",
                route.method, route.path
            )
        })
}

/// `/users/:id` → `/users/{id}`.
pub fn template(path: &str) -> String {
    path.split('/')
        .map(|s| match s.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn operation(route: &Route, op: &Op) -> Result<Value, String> {
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "security": security(route.access),
        "responses": responses(route, op),
        "x-edgestate": {
            "access": access_name(route.access),
            "gated": route.gated,
            "rateLimitGroup": match route.limit { Limit::Group(g) => json!(g), Limit::Unlimited => Value::Null },
        },
    });
    let params = parameters(route, op)?;
    if !params.is_empty() {
        o["parameters"] = Value::Array(params);
    }
    if let Some(body) = op.body {
        let limit = route.body_limit();
        let mut rules = json!({ "maxBytes": limit });
        let further = schemas::further_checks(body);
        if further.as_array().is_some_and(|a| !a.is_empty()) {
            rules["furtherChecks"] = further;
        }
        let schema = json!({ "schema": schemas::reference(body) });
        let mut content = json!({ "application/json": schema });
        // A PATCH merges as RFC 7396 describes, so its media type is accepted by name too.
        if route.method == "PATCH" {
            content["application/merge-patch+json"] = schema;
        }
        o["requestBody"] = json!({
            "required": true,
            "description": format!("JSON, at most {} KiB ({limit} bytes; a larger body is 413 \
                before it is read whole), declared as such: `Content-Type: application/json` \
                (parameters such as `charset` allowed; any `application/*+json` type is accepted \
                too). Any other type, or a body without `Content-Type`, is 415 before anything \
                else is done.", limit / 1024),
            "content": content,
            // Machine-readable for tests/contract.js: the size limit and what the Worker checks
            // beyond the schema.
            "x-edgestate": rules,
        });
    }
    Ok(o)
}

fn access_name(access: Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::Admin(Scope::Admin) => {
            "admin (the admin token or Cloudflare Access; no scoped token)".into()
        }
        Access::Admin(scope) => format!("admin (a scoped token needs `{}`)", scope.as_str()),
        Access::AdminIf(flag) => format!("public; admin when {flag}=1 or {flag}=true"),
        Access::Session(Check::Fast | Check::CopyOnly) => "session".into(),
        Access::Session(Check::Authoritative) => "session (checked in D1)".into(),
    }
}

fn security(access: Access) -> Value {
    match access {
        Access::Public => json!([]),
        Access::Admin(Scope::Admin) => json!([{ "adminBearer": [] }, { "accessJwt": [] }]),
        Access::Admin(_) => {
            json!([{ "adminBearer": [] }, { "scopedToken": [] }, { "accessJwt": [] }])
        }
        // Anyone, or the admin (the query flag asks for the admin-only form).
        Access::AdminIf(_) => {
            json!([{}, { "adminBearer": [] }, { "scopedToken": [] }, { "accessJwt": [] }])
        }
        Access::Session(_) => json!([{ "sessionBearer": [] }, { "sessionCookie": [] }]),
    }
}

fn parameters(route: &Route, op: &Op) -> Result<Vec<Value>, String> {
    let in_path: Vec<&str> = route
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix(':'))
        .collect();
    let mut out = Vec::new();
    for name in &in_path {
        if !op
            .params
            .iter()
            .any(|p| p.place == Place::Path && p.name == *name)
        {
            return Err(format!(
                "{} {}: declare path parameter `{name}` in {DECLARE}",
                route.method, route.path
            ));
        }
    }
    for p in op.params {
        let schema = schemas::reference(p.schema);
        let (place, required, schema) = match p.place {
            Place::Path if !in_path.contains(&p.name) => {
                return Err(format!(
                    "{} {}: `{}` is not a parameter of the path",
                    route.method, route.path, p.name
                ))
            }
            // A `.` or `..` segment is resolved away by clients before it is sent.
            Place::Path => (
                "path",
                true,
                json!({ "allOf": [schema, { "not": { "enum": [".", ".."] } }] }),
            ),
            Place::Query | Place::QueryObject => ("query", false, schema),
            Place::Header => ("header", false, schema),
        };
        let mut param = json!({ "name": p.name, "in": place, "required": required,
            "description": p.description, "schema": schema });
        if p.place == Place::QueryObject {
            param["style"] = json!("form");
            param["explode"] = json!(true);
        }
        out.push(param);
    }
    Ok(out)
}

fn error_statuses(route: &Route, op: &Op) -> BTreeSet<u16> {
    let mut s: BTreeSet<u16> = op.errors.iter().copied().collect();
    s.insert(500);
    let only_headers = op.params.iter().all(|p| p.place == Place::Header);
    if !only_headers || op.body.is_some() {
        s.insert(400);
    }
    if route.access != Access::Public {
        s.insert(401);
    }
    // The cross-site rule: an unsafe request resting on the session cookie from another site.
    if route.access != Access::Public && route.method != "GET" {
        s.insert(403);
    }
    if route.has_body() {
        s.insert(413);
        s.insert(415);
    }
    // Over a group's limit, or (credentials given) too many failed authentications.
    if let Limit::Group(_) = route.limit {
        s.insert(429);
    }
    if matches!(
        route.access,
        Access::Admin(_) | Access::AdminIf(_) | Access::Session(_)
    ) {
        s.insert(429);
    }
    // A scoped token whose scope does not allow the route.
    if matches!(route.access, Access::Admin(_) | Access::AdminIf(_)) {
        s.insert(403);
    }
    // Gated; or admin, where Cloudflare Access's keys may be out of reach.
    if route.gated || matches!(route.access, Access::Admin(_) | Access::AdminIf(_)) {
        s.insert(503);
    }
    s
}

fn responses(route: &Route, op: &Op) -> Value {
    let mut out = Map::new();
    let mut ok = json!({
        "description": "Success",
        "headers": headers(route, op.status, op.headers),
    });
    if let Some(schema) = op.response {
        let media = match schema {
            "EventStream" => "text/event-stream",
            _ => "application/json",
        };
        ok["content"] = json!({ media: { "schema": schemas::reference(schema) } });
    }
    out.insert(op.status.to_string(), ok);
    for status in error_statuses(route, op) {
        let schema = match op.error_bodies.iter().find(|(s, _)| *s == status) {
            Some((_, own)) => own,
            None => error_body(route, status).0,
        };
        let etag: &[&str] = if matches!(status, 304 | 412) {
            &["ETag"]
        } else {
            &[]
        };
        let mut answer = json!({
            "description": error_description(status),
            "headers": headers(route, status, etag),
        });
        if status != 304 {
            answer["content"] =
                json!({ "application/json": { "schema": schemas::reference(schema) } });
        }
        out.insert(status.to_string(), answer);
    }
    Value::Object(out)
}

/// The component schema of an error body and the codes it allows.
fn error_body(route: &Route, status: u16) -> (&'static str, &'static [&'static str]) {
    match status {
        400 if route.has_body() => ("BadBody", &["invalid_json", "invalid_request"]),
        400 => ("BadRequest", &["invalid_request"]),
        401 => ("Unauthorized", &["unauthorized"]),
        403 => ("Forbidden", &["forbidden"]),
        404 => ("NotFound", &["not_found"]),
        405 => ("MethodNotAllowed", &["method_not_allowed"]),
        412 => ("PreconditionFailed", &["precondition_failed"]),
        413 => ("PayloadTooLarge", &["payload_too_large"]),
        415 => ("UnsupportedMediaType", &["unsupported_media_type"]),
        429 => ("RateLimited", &["rate_limited"]),
        503 if route.gated => ("UnavailableOrMaintenance", &["maintenance", "unavailable"]),
        503 => ("Unavailable", &["unavailable"]),
        _ => ("Internal", &["internal"]),
    }
}

/// The error body schemas: `Error` with `code` narrowed to what one status can carry.
fn error_schemas() -> Vec<(String, Value)> {
    let gated = ROUTES.iter().find(|r| r.gated && r.has_body());
    let plain = ROUTES.iter().find(|r| !r.gated && !r.has_body());
    let mut out = Vec::new();
    for route in [gated, plain].into_iter().flatten() {
        for status in [400, 401, 403, 404, 405, 412, 413, 415, 429, 500, 503] {
            let (name, codes) = error_body(route, status);
            out.push((name.to_string(), json!({
                "allOf": [schemas::reference("Error"), { "properties": { "code": { "enum": codes } } }],
            })));
        }
    }
    out
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed JSON (`invalid_json`), or a value missing, of the wrong type, out of range or unknown (`invalid_request`, the message names it); nothing was changed",
        401 => "Missing, malformed, unknown, expired or revoked credentials (`WWW-Authenticate` names the scheme); nothing was changed",
        403 => "An unsafe request resting on the session cookie (no bearer token) that the browser says comes from another site (`Sec-Fetch-Site: cross-site`, or without it an `Origin` that is neither this Worker's own nor listed in `ALLOWED_ORIGINS`), or on an admin route a scoped token whose scope does not allow it; nothing was changed",
        304 => "Not modified: the answer has the `ETag` sent in `If-None-Match`; no body",
        404 => "No such resource",
        412 => "`If-Match` does not name the current version (sent as `ETag`); nothing was changed",
        413 => "The body is over the route's limit, 64 KiB (1.9 MB for config writes), refused before it is read whole; nothing was changed",
        415 => "The body is not declared JSON: `Content-Type` must be `application/json` or a `+json` type (parameters such as `charset` allowed), and a body without `Content-Type` is refused too. Checked before anything else, storage included; nothing was changed",
        429 => "Over the rate limit, or too many failed authentications from this client in a minute (credentials given but not accepted): retry after `Retry-After` seconds",
        503 => "`maintenance` (gated routes while `maintenanceMode` is on, with `Retry-After`) or `unavailable` (KV or D1 failed and nothing stale could be served); opaque",
        _ => "A bug; opaque, its cause is logged",
    }
}

/// The headers of one response of `route`.
fn headers(route: &Route, status: u16, extra: &[&str]) -> Value {
    // (kind, optional)
    let mut names = vec![("Server-Timing", false), ("X-Content-Type-Options", false)];
    if route.is_private() {
        names.push(("Cache-Control", false));
    }
    if let Limit::Group(_) = route.limit {
        // The media type and access checks come before the rate limit: a request refused for
        // either (415, 401, 403, or 429 after too many failed authentications) is not counted and has no
        // fields; neither has a 5xx before the count (maintenance, a failed strict lease) or
        // after a handler's crash. The legacy three follow a config switch.
        let counted = status < 500 && !matches!(status, 401 | 403 | 415 | 429);
        names.extend([("RateLimit-Policy", !counted), ("RateLimit", !counted)]);
        names.extend(LEGACY_RATE_LIMIT.map(|kind| (kind, true)));
    }
    if status == 429 {
        names.push(("Retry-After", false));
    }
    if status == 503 && route.gated {
        // Only on `maintenance`.
        names.push(("Retry-After", true));
    }
    if status == 401 {
        names.push(("WWW-Authenticate", false));
    }
    let optional = |kind: &str| {
        HEADER_KINDS
            .iter()
            .any(|(k, p)| *k == kind && *p == Presence::Optional)
    };
    names.extend(extra.iter().map(|kind| (*kind, optional(kind))));
    names.extend(CORS.map(|kind| (kind, true)));
    header_refs(&names)
}

/// `{name: $ref}` for each (kind, optional).
fn header_refs(kinds: &[(&str, bool)]) -> Value {
    let mut out = Map::new();
    for (kind, optional) in kinds {
        let (name, _) = header(kind);
        out.insert(
            name.to_string(),
            json!({ "$ref": format!("#/components/headers/{}", header_id(kind, *optional)) }),
        );
    }
    Value::Object(out)
}

/// The 2022 draft's rate-limit fields, sent while `legacyRateLimitHeaders` is on.
const LEGACY_RATE_LIMIT: [&str; 3] = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];

/// The CORS fields: on every response while `ALLOWED_ORIGINS` lists an origin (`Vary`), and
/// the others when the request's `Origin` is one of them. Absent while CORS is off.
const CORS: [&str; 4] = [
    "Vary",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
];

/// The component name of a header kind: `RateLimit-Limit` → `RateLimitLimit`, with
/// `Optional` appended where it may be absent.
fn header_id(kind: &str, optional: bool) -> String {
    let id: String = kind.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if optional {
        id + "Optional"
    } else {
        id
    }
}

/// Whether a header kind is declared required, optional, or both (by different responses).
#[derive(Clone, Copy, PartialEq)]
enum Presence {
    Required,
    Optional,
    Both,
}

/// Every header component, in the forms some response uses.
fn header_components() -> Value {
    let mut out = Map::new();
    for (kind, presence) in HEADER_KINDS {
        for optional in [false, true] {
            let wanted = match presence {
                Presence::Required => !optional,
                Presence::Optional => optional,
                Presence::Both => true,
            };
            if !wanted {
                continue;
            }
            let (_, mut object) = header(kind);
            object["required"] = json!(!optional);
            out.insert(header_id(kind, optional), object);
        }
    }
    Value::Object(out)
}

const HEADER_KINDS: [(&str, Presence); 25] = [
    ("ETag", Presence::Required),
    ("Server-Timing", Presence::Required),
    ("X-Content-Type-Options", Presence::Required),
    ("Cache-Control", Presence::Required),
    ("RateLimit-Policy", Presence::Both),
    ("RateLimit", Presence::Both),
    ("RateLimit-Limit", Presence::Optional),
    ("RateLimit-Remaining", Presence::Optional),
    ("RateLimit-Reset", Presence::Optional),
    ("Retry-After", Presence::Both),
    ("Allow", Presence::Required),
    ("X-Cache", Presence::Required),
    ("SetSessionCookie", Presence::Required),
    ("ClearSessionCookie", Presence::Required),
    ("WWW-Authenticate", Presence::Required),
    ("Prefs-Version", Presence::Required),
    ("Prefs-Bookmark", Presence::Optional),
    ("Vary", Presence::Both),
    ("Access-Control-Allow-Origin", Presence::Both),
    ("Access-Control-Allow-Credentials", Presence::Both),
    ("Access-Control-Expose-Headers", Presence::Both),
    ("Access-Control-Allow-Methods", Presence::Required),
    ("Access-Control-Allow-Headers", Presence::Required),
    ("Access-Control-Max-Age", Presence::Required),
    ("PreflightVary", Presence::Required),
];

/// A header by its kind: the name it is sent under and its description and schema.
fn header(kind: &str) -> (&'static str, Value) {
    let integer = json!({ "type": "integer", "minimum": 0 });
    let (name, description, schema) = match kind {
        "Server-Timing" => (
            "Server-Timing",
            "KV and D1 work done before the response (deferred work not counted); `d1-primary` counts the D1 statements the primary database served (the others a replica)",
            json!({ "type": "string", "pattern": SERVER_TIMING }),
        ),
        "X-Content-Type-Options" => (
            "X-Content-Type-Options",
            "Always `nosniff`",
            json!({ "const": "nosniff" }),
        ),
        "Cache-Control" => (
            "Cache-Control",
            "Session, preference and admin responses are never stored",
            json!({ "const": "no-store" }),
        ),
        "RateLimit-Limit" => (
            "RateLimit-Limit",
            "Legacy (while `legacyRateLimitHeaders`): requests allowed per window in this route's group",
            integer,
        ),
        "RateLimit-Remaining" => (
            "RateLimit-Remaining",
            "Legacy (while `legacyRateLimitHeaders`): requests left in this window",
            integer,
        ),
        "RateLimit-Reset" => (
            "RateLimit-Reset",
            "Legacy (while `legacyRateLimitHeaders`): seconds until the window ends",
            integer,
        ),
        "Retry-After" => ("Retry-After", "Seconds to wait before retrying", integer),
        "Allow" => (
            "Allow",
            "The methods the path declares",
            json!({ "type": "string", "pattern": "^[A-Z]+(, [A-Z]+)*$" }),
        ),
        _ => response_header(kind),
    };
    (
        name,
        json!({ "description": description, "schema": schema }),
    )
}

/// The headers particular to some responses.
fn response_header(kind: &str) -> (&'static str, &'static str, Value) {
    match kind {
        "ETag" => (
            "ETag",
            "A strong entity tag: the config's version (`\"3\"`), or for OFREP bulk answers 16 hex digits of a hash of the answer then the config version in hex",
            json!({ "type": "string", "pattern": "^\"[0-9a-f]+\"$" }),
        ),
        "X-Cache" => (
            "X-Cache",
            "HIT (fresh copy), STALE (served, refreshed in the background) or MISS (read from D1)",
            json!({ "enum": ["HIT", "STALE", "MISS"] }),
        ),
        "ClearSessionCookie" => (
            "Set-Cookie",
            "Clears the session cookie",
            json!({ "const": "__Host-session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0" }),
        ),
        "SetSessionCookie" => (
            "Set-Cookie",
            "The session cookie; `Max-Age` is the session's absolute lifetime (`sessionAbsoluteSeconds`)",
            json!({ "type": "string",
            "pattern": "^__Host-session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=[0-9]+$" }),
        ),
        "Prefs-Version" => (
            "Prefs-Version",
            "The version of the preferences served (0: never written); send it back on a `GET` to read that version or newer",
            json!({ "type": "integer", "minimum": 0 }),
        ),
        "Prefs-Bookmark" => (
            "Prefs-Bookmark",
            "The D1 bookmark of this write (D1 read replication); send it back on a `GET` so that D1 is read from a replica that has applied the write (from the primary while none has)",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,256}$" }),
        ),
        _ => standard_header(kind),
    }
}

/// The fields of HTTP standards: draft-ietf-httpapi-ratelimit-headers-11 and RFC 6750.
fn standard_header(kind: &str) -> (&'static str, &'static str, Value) {
    // A Structured Field List of one Item: the policy (the route's group) as a String.
    let item = |params: &str| format!("^\"[A-Za-z0-9_.:-]{{1,64}}\"{params}$");
    match kind {
        "RateLimit-Policy" => (
            "RateLimit-Policy",
            "draft-ietf-httpapi-ratelimit-headers-11: the policy named after the group, its quota `q` per window of `w` seconds",
            json!({ "type": "string", "pattern": item(";q=[0-9]+;w=[0-9]+") }),
        ),
        "RateLimit" => (
            "RateLimit",
            "draft-ietf-httpapi-ratelimit-headers-11: `r` requests left in the policy's window, `t` seconds until it resets",
            json!({ "type": "string", "pattern": item(";r=[0-9]+;t=[0-9]+") }),
        ),
        "WWW-Authenticate" => (
            "WWW-Authenticate",
            "RFC 6750: the Bearer challenge; `error=\"invalid_token\"` when a presented token was refused",
            json!({ "type": "string", "pattern": "^Bearer realm=\"edgestate\"(, error=\"invalid_token\")?$" }),
        ),
        _ => cors_header(kind),
    }
}

/// The CORS fields ([`crate::routes::cors`]), sent only while `ALLOWED_ORIGINS` lists an origin.
fn cors_header(kind: &str) -> (&'static str, &'static str, Value) {
    match kind {
        "Vary" => (
            "Vary",
            "`Origin` while CORS is configured (the headers depend on it)",
            json!({ "const": "Origin" }),
        ),
        "Access-Control-Allow-Origin" => (
            "Access-Control-Allow-Origin",
            "The request's `Origin`, when `ALLOWED_ORIGINS` lists it (never `*`)",
            json!({ "type": "string", "pattern": "^https?://[^/*,\\s]+$" }),
        ),
        "Access-Control-Allow-Credentials" => (
            "Access-Control-Allow-Credentials",
            "With an allowed origin: cookies and `Authorization` may be sent",
            json!({ "const": "true" }),
        ),
        "Access-Control-Expose-Headers" => (
            "Access-Control-Expose-Headers",
            "With an allowed origin: the headers its scripts may read",
            json!({ "const": cors::EXPOSED_HEADERS }),
        ),
        _ => preflight_header(kind),
    }
}

/// The fields only a preflight's answer carries.
fn preflight_header(kind: &str) -> (&'static str, &'static str, Value) {
    match kind {
        "Access-Control-Allow-Methods" => (
            "Access-Control-Allow-Methods",
            "The methods the path declares (as `Allow` lists them)",
            json!({ "type": "string", "pattern": "^[A-Z]+(, [A-Z]+)*$" }),
        ),
        "Access-Control-Allow-Headers" => (
            "Access-Control-Allow-Headers",
            "The request headers a script may send",
            json!({ "const": cors::ALLOWED_HEADERS }),
        ),
        "Access-Control-Max-Age" => (
            "Access-Control-Max-Age",
            "Seconds a browser may reuse the answer",
            json!({ "type": "integer", "const": cors::MAX_AGE_SECONDS }),
        ),
        "PreflightVary" => (
            "Vary",
            "The preflight's answer depends on the origin and on what it asks for",
            json!({ "enum": [
                "Access-Control-Request-Method, Access-Control-Request-Headers, Origin",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ] }),
        ),
        _ => ("", "", Value::Null),
    }
}

const SERVER_TIMING: &str = concat!(
    "^kv;desc=\"reads=[0-9]+ writes=[0-9]+ lists=[0-9]+ deletes=[0-9]+\";dur=[0-9]+(\\.[0-9]+)?, ",
    "d1;desc=\"queries=[0-9]+\";dur=[0-9]+(\\.[0-9]+)?, ",
    "d1-primary;desc=\"queries=[0-9]+\";dur=[0-9]+(\\.[0-9]+)?(, .+)?$",
);

/// Answers to requests that match no operation: an unknown path, a method a path does not
/// declare, and (while CORS is configured) a preflight.
fn router_responses() -> Value {
    let base = |code: Option<&str>, kinds: &[(&str, bool)]| {
        let mut all = vec![("Server-Timing", false), ("X-Content-Type-Options", false)];
        all.extend_from_slice(kinds);
        let mut answer = json!({ "headers": header_refs(&all) });
        if let Some(code) = code {
            answer["content"] =
                json!({ "application/json": { "schema": schemas::reference(code) } });
        }
        answer
    };
    let cors = CORS.map(|kind| (kind, true));
    let mut not_found = base(Some("NotFound"), &cors);
    not_found["description"] = json!(
        "Any path no operation declares (matched exactly: no trailing slash, case-sensitive)"
    );
    let mut not_allowed = base(
        Some("MethodNotAllowed"),
        &[&[("Allow", false)], &cors[..]].concat(),
    );
    not_allowed["description"] = json!("A declared path with any other method, unknown ones included; `Allow` lists the path's methods. `HEAD` is answered wherever `GET` is, without a body");
    let allowed = CORS.map(|kind| (kind, false));
    let mut preflight = base(
        None,
        &[&allowed[1..], &PREFLIGHT.map(|k| (k, false))[..]].concat(),
    );
    preflight["description"] = json!("While `ALLOWED_ORIGINS` is set: an `OPTIONS` with `Origin` and `Access-Control-Request-Method` from a listed origin, on a declared path; no storage, never limited");
    let mut refused = base(Some("Forbidden"), &[("Vary", false)]);
    refused["description"] =
        json!("While `ALLOWED_ORIGINS` is set: a preflight from an origin it does not list; no CORS header");
    json!({ "NotFound": not_found, "MethodNotAllowed": not_allowed,
        "Preflight": preflight, "PreflightRefused": refused })
}

/// The preflight's own fields.
const PREFLIGHT: [&str; 4] = [
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "PreflightVary",
];

fn components() -> Value {
    let schemas: Map<String, Value> = schemas::all()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(error_schemas())
        .collect();
    json!({
        "schemas": schemas,
        "headers": header_components(),
        "responses": router_responses(),
        "securitySchemes": {
            "adminBearer": { "type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <ADMIN_TOKEN>` (a Worker secret), compared in constant time. Unset or empty: every admin request is refused" },
            "sessionBearer": { "type": "http", "scheme": "bearer", "bearerFormat": "sessionId (43 base64url characters)",
                "description": "`Authorization: Bearer <sessionId>` from `POST /sessions`; wins over the cookie" },
            "scopedToken": { "type": "http", "scheme": "bearer", "bearerFormat": "est_ and 43 base64url characters",
                "description": "`Authorization: Bearer <token>` of a scoped admin token from `POST /admin/tokens`: `read` opens every admin read, `flags` also the config writes, `sessions` also minting and revoking sessions; never token management or profile writes (403). Checked against the isolate's copy of the token table (re-read from D1 after 10 s); the history names the writer `token:<name>`" },
            "accessJwt": { "type": "apiKey", "in": "header", "name": "Cf-Access-Jwt-Assertion",
                "description": "Where `ACCESS_TEAM_DOMAIN` and `ACCESS_AUD` are set: the JWT Cloudflare Access adds to a request that passed the team's login (RS256 with a key from the team's `/cdn-cgi/access/certs`; `iss`, `aud`, `exp` and `nbf` checked). Read only when the request has no `Authorization` header. The history names the writer by the token's `email` (a service token: its `common_name`)" },
            "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "__Host-session",
                "description": "The `__Host-session` cookie that `POST /sessions` sets" },
        },
    })
}

fn info() -> Value {
    json!({
        "title": "edgestate",
        "version": env!("CARGO_PKG_VERSION"),
        "license": { "name": "MIT", "identifier": "MIT" },
        "description": concat!(
            "Sessions, an app config with feature flags and a maintenance gate, user preferences, ",
            "a stale-while-revalidate cache and rate limiting, served by one Cloudflare Worker on ",
            "Workers KV and D1. Generated from the route table (`npm run openapi`); docs/API.md is ",
            "the prose reference (consistency guarantees, limits, examples).\n\n",
            "Every response carries `Server-Timing` and `X-Content-Type-Options: nosniff`; errors are ",
            "`{\"error\",\"code\"}` (see `Error`). An unknown path is 404 (`#/components/responses/NotFound`); ",
            "a declared path with another method is 405 with `Allow` (`#/components/responses/MethodNotAllowed`); ",
            "`HEAD` is answered wherever `GET` is. Rate-limited operations (`x-edgestate.rateLimitGroup`) ",
            "count per client (an IPv4 address, an IPv6 /64) and group and answer `RateLimit-Policy` and `RateLimit` ",
            "(draft-ietf-httpapi-ratelimit-headers-11; the older `RateLimit-Limit`, `-Remaining` and `-Reset` ",
            "too while the config's `legacyRateLimitHeaders` is on); gated ones answer 503 `maintenance` ",
            "while `maintenanceMode` is on. Every 401 carries `WWW-Authenticate` (RFC 6750). ",
            "An unsafe request resting on the session cookie that the browser marks `Sec-Fetch-Site: cross-site` ",
            "is 403 `forbidden`.\n\n",
            "CORS is off unless the Worker's `ALLOWED_ORIGINS` lists origins: then every response carries ",
            "`Vary: Origin`, a listed `Origin` gets `Access-Control-Allow-Origin` (itself) with credentials, ",
            "and a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered by ",
            "`#/components/responses/Preflight` or, for another origin, `#/components/responses/PreflightRefused`.",
        ),
    })
}

fn tags() -> Value {
    json!([
        { "name": "health", "description": "The index, liveness and the admin's set-up report" },
        { "name": "config", "description": "The app config (KV `config:app`), feature flags and the maintenance gate" },
        { "name": "flags", "description": "Flag evaluation over the OpenFeature Remote Evaluation Protocol (OFREP)" },
        { "name": "sessions", "description": "Sessions: D1 is the authority, KV the read path; only hashes are stored" },
        { "name": "prefs", "description": "The caller's preferences: D1 is the authority, no acknowledged write is lost" },
        { "name": "users", "description": "Profiles in D1 behind a stale-while-revalidate KV cache" },
        { "name": "tokens", "description": "Scoped admin tokens for automation: D1 keeps their hashes, each isolate a copy of the table" },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;

    fn route(method: &'static str, path: &'static str) -> Route {
        Route {
            method,
            path,
            access: Access::Public,
            gated: true,
            limit: Limit::Group("widgets"),
            handler: ROUTES[0].handler,
        }
    }

    #[test]
    fn a_route_without_a_declaration_says_where_to_add_one() {
        let Err(e) = declaration(&route("GET", "/widgets/:id")) else {
            panic!("found a declaration for a route that has none");
        };
        assert!(e.contains("GET /widgets/:id"), "{e}");
        assert!(e.contains("src/openapi/operations.rs"), "{e}");
        assert!(e.contains(REGENERATE), "{e}");
    }

    #[test]
    fn a_path_parameter_must_be_declared() {
        let op = OPERATIONS[0];
        let Err(e) = parameters(&route("GET", "/widgets/:id"), &op) else {
            panic!("an undeclared path parameter was accepted");
        };
        assert!(e.contains("`id`") && e.contains("operations.rs"), "{e}");
    }

    #[test]
    fn every_route_has_a_declaration_and_the_output_is_stable() {
        assert_eq!(render().unwrap(), render().unwrap());
        assert_eq!(OPERATIONS.len(), ROUTES.len());
        assert_eq!(
            template("/admin/users/:userId/sessions"),
            "/admin/users/{userId}/sessions"
        );
    }
}
