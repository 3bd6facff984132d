//! The component schemas: one per request or response type, each named after the Rust type
//! it describes, with the same limits its parser enforces. `tests/openapi.rs` serialises a
//! value of each response type and parses each request example with the type's own parser,
//! so a field added to a type without its schema fails there.

use serde_json::{json, Value};

/// A `$ref` to a component schema.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Every component schema, by name.
pub fn all() -> Vec<(&'static str, Value)> {
    let mut out = common();
    out.extend(config());
    out.extend(sessions());
    out.extend(session_listing());
    out.extend(prefs_and_users());
    out.extend(flags());
    out.extend(versions());
    out.extend(tokens());
    out
}

/// Scoped admin tokens.
fn tokens() -> Vec<(&'static str, Value)> {
    let scope = json!({ "enum": ["read", "flags", "sessions"],
        "description": "`read`: every admin read; `flags`: also config writes; `sessions`: also minting and revoking sessions" });
    let fields = || {
        json!({
            "name": reference("FlagName"), "scope": scope.clone(), "createdAt": reference("Millis"),
            "createdBy": { "type": "string", "description": "Who created it: `admin`, or a Cloudflare Access identity" },
        })
    };
    let mut minted = fields();
    minted["token"] = json!({ "type": "string", "pattern": "^est_[A-Za-z0-9_-]{43}$",
        "description": "The credential (`Authorization: Bearer <token>`), shown this once: D1 keeps only its SHA-256" });
    let name = json!({ "allOf": [reference("FlagName"), { "not": { "pattern": "^\\.+$" } }],
        "description": "Not only dots (`.` and `..` are path segments clients resolve away)" });
    let mut new = object(
        &["name", "scope"],
        json!({ "name": name, "scope": scope.clone() }),
    );
    new["examples"] = json!([{ "name": "ci-deploy", "scope": "flags" }]);
    let listed = object(&["name", "scope", "createdAt", "createdBy"], fields());
    vec![
        ("NewToken", new),
        (
            "MintedToken",
            object(
                &["token", "name", "scope", "createdAt", "createdBy"],
                minted,
            ),
        ),
        ("Token", listed),
        (
            "TokenList",
            object(
                &["tokens"],
                json!({ "tokens": { "type": "array", "items": reference("Token"), "maxItems": 100 } }),
            ),
        ),
    ]
}

/// What the Worker checks in the request body `name` beyond its schema, because JSON Schema
/// cannot state it: each rule, with the fields a refusal under it names (`*` stands for any
/// text). A body its schema allows may still be refused under one of these: 400
/// `invalid_request` whose message names one of those fields (`"featureFlags.beta.rollout: …"`).
pub fn further_checks(name: &str) -> Value {
    const FLAG: &str = "A flag's `defaultVariant`, each rule's `variant` and each `rollout` key \
        name one of its variants; its variant values share one JSON type, each at most 1,024 bytes \
        of JSON; its `rollout` shares sum to 100; its `schedule` entries are in increasing `at`, each with \
        `enabled`, `set` or both, a `set` checked as a flag's definition is";
    const FLAG_FIELDS: [&str; 7] = [
        "featureFlags.*.defaultVariant",
        "featureFlags.*.rules[*].variant",
        "featureFlags.*.rollout",
        "featureFlags.*.rollout.*",
        "featureFlags.*.variants.*",
        "featureFlags.*.schedule[*]",
        "featureFlags.*.schedule[*].set.*",
    ];
    const PREREQUISITES: &str = "Each prerequisite names a flag of the config and variants of \
        it (`on` and `off` for a boolean flag); no flag is its own prerequisite through any \
        chain (the refusal names the cycle: `featureFlags.a.prerequisites: cycle a → b → a`); \
        chains of prerequisites have at most 8 links, and one flag's evaluation evaluates at \
        most 100 flags. Checked on the whole set of flags after the write, so removing or \
        changing a flag another requires is refused under the flag that requires it";
    const PREREQUISITE_FIELDS: [&str; 3] = [
        "featureFlags.*.prerequisites",
        "featureFlags.*.prerequisites.*",
        "featureFlags.*.prerequisites.*[*]",
    ];
    let (after, merged) = match name {
        "ConfigDocument" => ("a field not given takes its default", "defaults filled in"),
        "ConfigPatch" => ("a field not given keeps its stored value", "merged"),
        "NewToken" => {
            return json!([{ "rule": "No token has this name yet, and fewer than 100 tokens exist",
                "fields": ["name"] }])
        }
        _ => return json!([]),
    };
    json!([
        { "rule": FLAG, "fields": FLAG_FIELDS },
        { "rule": PREREQUISITES, "fields": PREREQUISITE_FIELDS },
        { "rule": format!("`renewAfterSeconds` is less than `sessionIdleSeconds` ({after})"),
          "fields": ["renewAfterSeconds"] },
        { "rule": format!("The stored config ({merged}) is at most 1.9 MB (1,900,000 bytes) of JSON"),
          "fields": ["config"] },
    ])
}

/// Every error code the API answers with.
pub const ERROR_CODES: [&str; 13] = [
    "invalid_json",
    "invalid_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "precondition_failed",
    "rate_limited",
    "maintenance",
    "unavailable",
    "internal",
];

/// RFC 5646 `Language-Tag` (well-formed; ASCII letters in either case), as `prefs.rs` reads it.
pub const LANGUAGE_TAG_PATTERN: &str = concat!(
    "^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})",
    "(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?",
    "(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*",
    "(?:-[0-9A-WYZa-wyz](?:-[A-Za-z0-9]{2,8})+)*",
    "(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?",
    "|[Xx](?:-[A-Za-z0-9]{1,8})+",
    "|[Ee][Nn]-[Gg][Bb]-[Oo][Ee][Dd]",
    "|[Ii]-(?:[Aa][Mm][Ii]|[Bb][Nn][Nn]|[Dd][Ee][Ff][Aa][Uu][Ll][Tt]|[Ee][Nn][Oo][Cc][Hh][Ii][Aa][Nn]",
    "|[Hh][Aa][Kk]|[Kk][Ll][Ii][Nn][Gg][Oo][Nn]|[Ll][Uu][Xx]|[Mm][Ii][Nn][Gg][Oo]|[Nn][Aa][Vv][Aa][Jj][Oo]",
    "|[Pp][Ww][Nn]|[Tt][Aa][Oo]|[Tt][Aa][Yy]|[Tt][Ss][Uu])",
    "|[Ss][Gg][Nn]-(?:[Bb][Ee]-[Ff][Rr]|[Bb][Ee]-[Nn][Ll]|[Cc][Hh]-[Dd][Ee]))$",
);

/// `If-Match` and `If-None-Match` as RFC 9110 writes them: `*`, or a list of `"…"` or
/// `W/"…"` tags (empty list elements allowed); `routes::parse::entity_tags` is the same rule.
/// Each repetition takes exactly one comma, so a failing match cannot backtrack
/// exponentially.
const ENTITY_TAGS: &str = r#"^[ \t]*(?:\*|(?:,[ \t]*)*(?:W/)?"[!#-~\u0080-\uffff]*"(?:[ \t]*,[ \t]*(?:(?:W/)?"[!#-~\u0080-\uffff]*")?)*)[ \t]*$"#;

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn common() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Error",
            json!({
                "type": "object", "additionalProperties": false, "required": ["error", "code"],
                "description": "Every error. A 5xx body is opaque: its cause is only logged.",
                "properties": {
                    "error": { "type": "string", "minLength": 1, "description": "For people" },
                    "code": { "enum": ERROR_CODES, "description": "For programs" },
                },
            }),
        ),
        ("Health", health()),
        ("HealthReport", health_report()),
        (
            "HealthAnswer",
            json!({ "anyOf": [reference("Health"), reference("HealthReport")] }),
        ),
        ("Index", index()),
    ]
    .into_iter()
    .chain(identifiers())
    .collect()
}

/// The identifiers and scalars every resource shares.
fn identifiers() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Millis",
            json!({ "type": "integer", "minimum": 0, "description": "Milliseconds since the Unix epoch" }),
        ),
        (
            "FlagName",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
            "description": "A flag or rate-limit group name" }),
        ),
        (
            "UserId",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,128}$" }),
        ),
        (
            "ProfileId",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" }),
        ),
        (
            "Email",
            json!({
                "type": "string", "maxLength": 254,
                "pattern": "^[!-?A-~]{1,64}@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+$",
                "description": "A plausible address of at most 254 bytes. The schema shows ASCII addresses; the Worker also takes UTF-8 ones within the same byte limits.",
            }),
        ),
        (
            "DeepFlag",
            json!({ "enum": ["1", "true", "0", "false", ""],
            "description": "Any other value is 400 `invalid_request`" }),
        ),
        (
            "Version",
            json!({ "type": "string", "minLength": 1, "description": "This build's version (Cargo.toml)" }),
        ),
        (
            "SessionId",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{43}$",
            "description": "256 random bits, base64url without padding; shown once, stored only as its SHA-256" }),
        ),
    ]
}

fn health() -> Value {
    let mut plain = object(
        &["status", "version"],
        json!({ "status": { "const": "ok" }, "version": reference("Version") }),
    );
    plain["description"] = json!("`GET /health`: the Worker answers; nothing is checked");
    plain
}

/// What `GET /health?deep=1` reports: what this location sees of the set-up now.
fn health_report() -> Value {
    let names = json!({ "type": "array", "items": { "type": "string" } });
    let binding = |extra: Value| {
        let mut p = json!({ "binding": { "type": "string" }, "bound": { "type": "boolean" },
            "ok": { "type": "boolean" } });
        for (k, v) in extra.as_object().into_iter().flatten() {
            p[k] = v.clone();
        }
        p
    };
    let version = json!({ "type": ["integer", "null"], "minimum": 0 });
    let kv = binding(
        json!({ "config": { "enum": ["stored", "absent", "invalid", null],
        "description": "What KV holds as `config:app` (null: KV did not answer or is not bound)" },
        "configVersion": { "type": ["integer", "null"], "minimum": 0,
        "description": "The config version KV's copy names (0: none, as written from outside the Worker; null: no copy read)" } }),
    );
    let d1 = binding(json!({
        "schemaVersion": version, "expectedSchemaVersion": { "type": "integer", "minimum": 0 },
        "latestMigration": { "type": ["string", "null"] }, "missingTables": names,
        "configVersion": { "type": ["integer", "null"], "minimum": 1,
        "description": "The config history's newest version (null: no history, or D1 did not answer)" },
    }));
    let mut report = object(
        &[
            "status",
            "version",
            "adminToken",
            "adminTokenStrong",
            "kv",
            "d1",
            "ignoredOrigins",
            "configInSync",
        ],
        json!({
            "status": { "enum": ["ok", "degraded"] },
            "version": reference("Version"),
            "adminToken": { "type": "boolean" },
            "adminTokenStrong": { "type": "boolean", "description": "`ADMIN_TOKEN` is at least 43 characters (32 random bytes in base64url); a shorter one is warned of but does not make the status `degraded`" },
            "kv": object(&["binding", "bound", "ok", "config", "configVersion"], kv),
            "d1": object(&["binding", "bound", "ok", "schemaVersion", "expectedSchemaVersion",
                "latestMigration", "missingTables", "configVersion"], d1),
            "ignoredOrigins": names,
            "configInSync": { "type": "boolean", "description": "KV's copy of the config is D1's newest version (true without a history); false while KV still propagates a write made elsewhere (up to 60 s) or a document written from outside the Worker awaits adoption" },
        }),
    );
    report["description"] = json!("`GET /health?deep=1`: each binding, the config in KV, the D1 schema against the one the code needs, the admin token, ignored `ALLOWED_ORIGINS` entries, whether KV's config is D1's newest version; `degraded` if any is wrong");
    report
}

fn index() -> Value {
    let links = object(
        &["health", "config", "flag"],
        json!({ "health": { "type": "string" }, "config": { "type": "string" }, "flag": { "type": "string" } }),
    );
    let docs = object(
        &["readme", "api", "changelog"],
        json!({ "readme": { "type": "string" }, "api": { "type": "string" }, "changelog": { "type": "string" } }),
    );
    object(
        &["name", "version", "description", "links", "docs"],
        json!({
            "name": { "const": "edgestate" }, "version": reference("Version"),
            "description": { "type": "string" },
            "links": links, "docs": docs,
        }),
    )
}

fn config() -> Vec<(&'static str, Value)> {
    let limit = json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000 });
    let seconds = json!({ "type": "integer", "minimum": 1, "maximum": 86_400 });
    // renewAfterSeconds < sessionIdleSeconds is checked by the Worker.
    let lifetime = json!({ "type": "integer", "minimum": 60, "maximum": 31_536_000 });
    let fields = |flag: Value, limit: Value, groups: Value| {
        json!({
            "featureFlags": { "type": "object", "propertyNames": reference("FlagName"), "additionalProperties": flag },
            "rateLimits": { "type": "object", "propertyNames": reference("FlagName"), "additionalProperties": limit },
            "maintenanceMode": { "type": "boolean" },
            "strictRateLimits": groups,
            "rateLimitWindowSeconds": seconds,
            "cacheTtlSeconds": seconds,
            "sessionIdleSeconds": lifetime,
            "sessionAbsoluteSeconds": lifetime,
            "renewAfterSeconds": seconds,
            "legacyRateLimitHeaders": { "type": "boolean",
                "description": "Also send RateLimit-Limit, -Remaining and -Reset on limited responses" },
        })
    };
    let groups = json!({ "type": "array", "items": reference("FlagName") });
    let mut stored = object(
        &FIELDS,
        fields(
            reference("Flag"),
            limit.clone(),
            json!({ "type": "array", "items": reference("FlagName"), "uniqueItems": true }),
        ),
    );
    stored["properties"]["rateLimits"]["required"] = json!(["default"]);
    stored["properties"]["rateLimits"]["properties"] = json!({ "default": limit.clone() });
    stored["examples"] = json!([example_config()]);
    let mut document = object(
        &[],
        fields(reference("Flag"), limit.clone(), groups.clone()),
    );
    document["examples"] = json!([{ "maintenanceMode": false }, example_config()]);
    let mut patch = object(
        &[],
        fields(
            json!({ "anyOf": [reference("Flag"), { "type": "null" }] }),
            json!({ "anyOf": [limit, { "type": "null" }] }),
            groups,
        ),
    );
    patch["examples"] = json!([{ "featureFlags": { "newCheckout": true, "oldBanner": null } }]);
    vec![
        ("Config", stored),
        ("PublicConfig", public_config()),
        ("ConfigDocument", document),
        ("ConfigPatch", patch),
    ]
}

/// `GET /config`: what a client needs, no flag rules, rollouts or session lifetimes.
fn public_config() -> Value {
    let seconds = json!({ "type": "integer", "minimum": 1, "maximum": 86_400 });
    let limit = json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000 });
    let value = json!({ "description": "The flag's value for an empty context: `true`/`false` for a boolean flag, else the value of the variant an empty context gets" });
    let mut public = object(
        &[
            "featureFlags",
            "rateLimits",
            "maintenanceMode",
            "rateLimitWindowSeconds",
        ],
        json!({
            "featureFlags": { "type": "object", "propertyNames": reference("FlagName"), "additionalProperties": value },
            "rateLimits": { "type": "object", "propertyNames": reference("FlagName"),
                "additionalProperties": limit.clone(), "required": ["default"],
                "properties": { "default": limit } },
            "maintenanceMode": { "type": "boolean" },
            "rateLimitWindowSeconds": seconds,
        }),
    );
    public["description"] = json!("What anyone may read of the config: the maintenance state, the rate limits (each group's limit and the window), and each flag's value for an empty context. A flag's rules, rollout, other variants and enabled state, and the operator's settings (strict groups, cache and session lifetimes), are only on the admin routes.");
    public["examples"] = json!([{
        "featureFlags": { "newCheckout": true, "checkoutColor": "#f00" },
        "rateLimits": { "default": 100, "sessions": 10 }, "maintenanceMode": false,
        "rateLimitWindowSeconds": 60,
    }]);
    public
}

const FIELDS: [&str; 10] = [
    "featureFlags",
    "rateLimits",
    "maintenanceMode",
    "strictRateLimits",
    "rateLimitWindowSeconds",
    "cacheTtlSeconds",
    "sessionIdleSeconds",
    "sessionAbsoluteSeconds",
    "renewAfterSeconds",
    "legacyRateLimitHeaders",
];

fn example_config() -> Value {
    json!({
        "featureFlags": { "newCheckout": true }, "rateLimits": { "default": 100, "sessions": 10 },
        "maintenanceMode": false, "strictRateLimits": ["sessions"],
        "rateLimitWindowSeconds": 60, "cacheTtlSeconds": 300,
        "sessionIdleSeconds": 86_400, "sessionAbsoluteSeconds": 604_800, "renewAfterSeconds": 3600,
        "legacyRateLimitHeaders": true,
    })
}

/// What the API shows of a session: its properties, and which are required (all).
fn session_view() -> (Value, [&'static str; 5]) {
    let view = json!({
        "userId": reference("UserId"), "email": { "type": "string", "maxLength": 254 },
        "createdAt": reference("Millis"), "expiresAt": reference("Millis"),
        "idleExpiresAt": reference("Millis"),
    });
    (
        view,
        ["userId", "email", "createdAt", "expiresAt", "idleExpiresAt"],
    )
}

fn sessions() -> Vec<(&'static str, Value)> {
    let (view, fields) = session_view();
    let mut minted = view.clone();
    minted["sessionId"] = reference("SessionId");
    vec![
        ("NewSession", {
            let mut s = object(
                &["userId", "email"],
                json!({ "userId": reference("UserId"), "email": reference("Email") }),
            );
            s["examples"] = json!([{ "userId": "alice", "email": "alice@example.com" }]);
            s
        }),
        ("Session", object(&fields, view)),
        (
            "MintedSession",
            object(&[&["sessionId"], &fields[..]].concat(), minted),
        ),
        (
            "Revoked",
            object(
                &["revoked"],
                json!({ "revoked": { "type": "integer", "minimum": 0 } }),
            ),
        ),
    ]
}

/// `GET /admin/sessions` and the handles it shows.
fn session_listing() -> Vec<(&'static str, Value)> {
    let (mut listed, fields) = session_view();
    listed["handle"] = json!({ "anyOf": [reference("SessionHandle"), { "type": "null" }],
        "description": "What `DELETE /admin/sessions/{handle}` takes (null only for a row no migration gave one)" });
    listed["current"] = json!({ "const": true,
        "description": "Present on the caller's own session in `GET /sessions` only" });
    vec![
        (
            "ListedSession",
            object(&[&["handle"], &fields[..]].concat(), listed),
        ),
        (
            "SessionHandle",
            json!({ "type": "string", "pattern": "^[0-9a-f]{32}$",
            "description": "An admin's name for one session (from `GET /admin/sessions`): neither its id nor its hash" }),
        ),
        (
            "SessionPage",
            object(
                &["sessions", "cursor", "listComplete"],
                json!({
                    "sessions": { "type": "array", "items": reference("ListedSession"), "maxItems": 1000 },
                    "cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last" },
                    "listComplete": { "type": "boolean" },
                }),
            ),
        ),
        (
            "UserIdFilter",
            json!({ "anyOf": [reference("UserId"), { "const": "" }] }),
        ),
        (
            "Cursor",
            json!({ "type": "string", "pattern": "^(?:[0-9]{1,16}\\.[0-9a-f]{32})?$",
            "description": "Opaque: the `cursor` of the previous page" }),
        ),
        (
            "PageLimit",
            json!({ "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 1000 }, { "const": "" }] }),
        ),
    ]
}

fn prefs_and_users() -> Vec<(&'static str, Value)> {
    let theme = json!({ "enum": ["light", "dark"] });
    let language = json!({ "type": "string", "maxLength": 35, "pattern": LANGUAGE_TAG_PATTERN,
        "description": "A well-formed BCP 47 (RFC 5646) tag of at most 35 characters" });
    let prefs =
        json!({ "theme": theme, "language": language, "notifications": { "type": "boolean" } });
    let mut patch = object(&[], prefs.clone());
    patch["examples"] =
        json!([{ "theme": "dark" }, { "language": "zh-yue", "notifications": false }]);
    let user = object(
        &["id", "name", "updatedAt"],
        json!({
            "id": reference("ProfileId"), "name": { "type": "string", "minLength": 1, "maxLength": 100 },
            "updatedAt": reference("Millis"),
        }),
    );
    let mut write = object(
        &["name"],
        json!({ "name": {
        "type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,100}$",
        "description": "1-100 characters, no control characters" } }),
    );
    write["examples"] = json!([{ "name": "Ada Lovelace" }]);
    let mut batch = object(
        &["ids"],
        json!({ "ids": {
        "type": "array", "items": reference("ProfileId"), "minItems": 1, "maxItems": 100, "uniqueItems": true } }),
    );
    batch["examples"] = json!([{ "ids": ["ada", "grace"] }]);
    vec![
        (
            "PrefsVersion",
            json!({ "type": "string", "pattern": "^[0-9]{1,15}$",
            "description": "A `Prefs-Version` an answer carried: serve that version or a newer one" }),
        ),
        (
            "PrefsBookmark",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,256}$",
            "description": "A `Prefs-Bookmark` an answer carried: read D1 where that write has been applied" }),
        ),
        (
            "Prefs",
            object(&["theme", "language", "notifications"], prefs),
        ),
        ("PrefsPatch", patch),
        ("User", user),
        ("ProfileWrite", write),
        ("UserBatchRequest", batch),
        (
            "UserBatch",
            object(
                &["users"],
                json!({ "users": {
            "type": "object", "propertyNames": reference("ProfileId"),
            "additionalProperties": { "anyOf": [reference("User"), { "type": "null" }] },
            "description": "Every id asked for: its profile, or null if there is none" } }),
            ),
        ),
    ]
}

fn flag_definition() -> Value {
    let value = json!({ "type": ["boolean", "string", "number", "object"] });
    // What a condition compares the context's attribute with.
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let list = json!({ "type": "array", "minItems": 1, "maxItems": 100, "items": scalar });
    let condition = json!({ "oneOf": [
        object(&["in"], json!({ "in": list })),
        object(&["notIn"], json!({ "notIn": list })),
        object(&["equals"], json!({ "equals": scalar })),
    ] });
    let rule = object(
        &["when", "variant"],
        json!({
            "when": { "type": "object", "minProperties": 1, "maxProperties": 8,
                "propertyNames": reference("FlagName"), "additionalProperties": condition,
                "description": "Context attribute → condition; the rule matches when all hold (an attribute the context lacks holds none)" },
            "variant": { "type": "string", "description": "One of the variants" },
        }),
    );
    let prerequisite = json!({ "type": "array", "minItems": 1, "maxItems": 16, "items": { "type": "string" },
        "description": "Variants of that flag (`on`, `off` for a boolean flag): it must answer one of them" });
    let mut definition = object(
        &["variants", "defaultVariant"],
        json!({
            "variants": { "type": "object", "minProperties": 1, "maxProperties": 16,
                "propertyNames": reference("FlagName"), "additionalProperties": value,
                "description": "Variant name → value; every value of one type, at most 1024 bytes of JSON" },
            "defaultVariant": { "type": "string", "description": "One of the variants" },
            "prerequisites": { "type": "object", "maxProperties": 8, "propertyNames": reference("FlagName"),
                "additionalProperties": prerequisite,
                "description": "Flag name → variants: each flag, evaluated for the same context, must answer one of its variants; the first (in name order) that does not makes this flag answer its default variant (reason DEFAULT, naming it). Absent when empty" },
            "rules": { "type": "array", "maxItems": 32, "items": rule,
                "description": "The first rule whose conditions all hold picks its variant" },
            "rollout": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0, "maximum": 100 },
                "description": "Variant → percentage (summing to 100), by sticky bucketing on targetingKey" },
            "enabled": { "type": "boolean", "default": true,
                "description": "`false` is the kill switch: the flag answers its default variant (DISABLED) whatever its schedule says" },
        }),
    );
    // A scheduled definition: the answering fields of a flag, checked as a flag's are.
    let mut answering = serde_json::Map::new();
    for field in ["variants", "defaultVariant", "rules", "rollout"] {
        answering.insert(field.into(), definition["properties"][field].clone());
    }
    let mut staged = object(&["variants", "defaultVariant"], Value::Object(answering));
    staged["description"] = json!("The definition the flag answers from once the entry takes effect: its variants, defaultVariant, rules and rollout (prerequisites, enabled and the schedule stay the flag's)");
    let mut switch = object(
        &["at"],
        json!({ "at": { "type": "integer", "minimum": 0, "description": "Milliseconds since the epoch, later than the entry before" },
            "enabled": { "type": "boolean", "description": "Whether the flag is on from then" },
            "set": staged }),
    );
    switch["anyOf"] = json!([{ "required": ["enabled"] }, { "required": ["set"] }]);
    definition["properties"]["schedule"] = json!({ "type": "array", "maxItems": 16, "items": switch,
        "description": "Changes by the clock, in increasing `at`: from each entry's time the flag is enabled as it says and answers from the definition it sets; before the first `enabled` entry, the opposite of it. Applied at evaluation; the first isolate to serve an entry after its time records it as a new version (actor `schedule`) without it. Absent when empty" });
    definition["description"] = json!("A flag with variants. Cross-field rules (defaultVariant, rule and rollout variants among the variants, one value type, shares summing to 100, prerequisites naming known flags and variants without cycles) are checked by the Worker");
    definition
}

/// `GET /flags/:name`'s answer.
fn flag_view() -> Value {
    object(
        &["name", "enabled"],
        json!({
            "name": reference("FlagName"), "enabled": { "type": "boolean" },
            "value": { "description": "The variant's value (flags with variants)" },
            "variant": { "type": "string" }, "reason": reference("Reason"),
            "errorCode": { "type": "string", "description": "With reason ERROR" },
            "unmetPrerequisite": { "type": "string", "description": "With reason DEFAULT: the prerequisite flag that was not met" },
        }),
    )
}

fn flags() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Flag",
            json!({ "anyOf": [{ "type": "boolean" }, reference("FlagDefinition")] }),
        ),
        ("FlagDefinition", flag_definition()),
        ("FlagView", flag_view()),
        (
            "Reason",
            json!({ "enum": ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"] }),
        ),
        (
            "QueryContext",
            json!({ "type": "object", "propertyNames": reference("FlagName"),
            "additionalProperties": { "type": "string" } }),
        ),
        ("FlagConfigEtag", json!({ "type": "string" })),
        (
            "FlagUsage",
            object(
                &["evaluatedAt", "bulkEvaluatedAt", "writtenEverySeconds"],
                json!({
                    "evaluatedAt": { "type": "object", "propertyNames": reference("FlagName"), "additionalProperties": reference("Millis"), "description": "Flags evaluated one by one: when last (a flag never asked for alone is absent)" },
                    "bulkEvaluatedAt": { "anyOf": [reference("Millis"), { "type": "null" }], "description": "The last bulk evaluation, which evaluated every flag of the config then" },
                    "writtenEverySeconds": { "const": 60 },
                }),
            ),
        ),
        (
            "FlagConfigLastModified",
            json!({ "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string" }] }),
        ),
        (
            "LastEventId",
            json!({ "type": "string", "description": "A config version; anything else counts as no id (the stream announces the served version at once)" }),
        ),
        (
            "EntityTags",
            json!({ "type": "string", "pattern": ENTITY_TAGS,
                "description": "`*` or entity tags (`\"a1\"`, `W/\"a1\"`, a list of them); anything else is 400" }),
        ),
    ]
    .into_iter()
    .chain(ofrep())
    .chain(ofrep_events())
    .collect()
}

/// The OFREP evaluation API's request and answers. Every answer these schemas allow is one
/// the protocol's own description allows too (its value types read as `anyOf`), but for the
/// reason `DEFAULT` (docs/API.md, decision 36): they name no field and no value it leaves out.
fn ofrep() -> Vec<(&'static str, Value)> {
    // OFREP: `targetingKey` and any other members, each an attribute of any JSON value.
    let context = json!({
        "type": "object",
        "properties": { "targetingKey": { "type": "string" } },
        "additionalProperties": {},
        "description": "The evaluation context: an optional `targetingKey` (a string) and any other members as attributes, of any JSON type",
    });
    let evaluation = ofrep_evaluation();
    // Other members of the body are ignored, as the protocol leaves room for them.
    let mut request = json!({ "type": "object", "required": ["context"],
        "properties": { "context": context }, "additionalProperties": {} });
    request["examples"] = json!([{ "context": { "targetingKey": "user-1", "country": "NL" } }]);
    let mut out = ofrep_failures();
    out.extend([
        (
            "OfrepKey",
            json!({ "type": "string", "minLength": 1, "examples": ["newCheckout"] }),
        ),
        ("OfrepRequest", request),
        (
            "OfrepValue",
            json!({ "type": ["boolean", "string", "number", "object"],
                "description": "The variant's value: a boolean, string, number or object (never null or an array: the config refuses them)" }),
        ),
        (
            "OfrepReason",
            json!({ "enum": ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED"],
                "description": "Why the flag answered this value. `DEFAULT` (a flag with rules, a rollout or prerequisites that gave this context its default variant; `metadata.unmetPrerequisite` names a prerequisite that was not met) is OpenFeature's reason, not in the protocol's list: docs/API.md, decisions 36 and 42" }),
        ),
        ("OfrepEvaluation", evaluation),
        (
            "OfrepBulk",
            object(
                &["flags", "metadata", "eventStreams"],
                json!({
                    "flags": { "type": "array", "items": { "anyOf": [reference("OfrepEvaluation"), reference("OfrepFlagFailure")] } },
                    "metadata": object(&["configVersion"], json!({ "configVersion": { "type": "integer", "minimum": 0 } })),
                    "eventStreams": { "type": "array", "items": reference("OfrepEventStream"), "minItems": 1, "maxItems": 1 },
                }),
            ),
        ),
    ]);
    out
}

/// One flag evaluated over OFREP.
fn ofrep_evaluation() -> Value {
    // A flat object of numbers and strings, as the protocol's metadata (strings, numbers,
    // booleans) allows.
    let mut metadata = object(
        &["configVersion"],
        json!({
        "configVersion": { "type": "integer", "minimum": 0, "description": "The config version that answered" },
        "ruleIndex": { "type": "integer", "minimum": 0, "description": "The rule that matched (reason `TARGETING_MATCH`), counted from 0" },
        "unmetPrerequisite": { "type": "string", "description": "The prerequisite flag that was not met (reason `DEFAULT`): the flag answered its default variant" } }),
    );
    metadata["description"] = json!("Flat: each member a number or a string");
    let mut evaluation = object(
        &["key", "value", "reason", "variant", "metadata"],
        json!({
        "key": { "type": "string" }, "value": reference("OfrepValue"), "reason": reference("OfrepReason"),
        "variant": { "type": "string" }, "metadata": metadata }),
    );
    evaluation["description"] =
        json!("A flag evaluated: always with a `value` (never a deferral to the code's default)");
    evaluation
}

/// OFREP's change notification: the bulk answer's `eventStreams` entry and the stream.
fn ofrep_events() -> [(&'static str, Value); 2] {
    let mut link = object(
        &["type", "endpoint", "inactivityDelaySec"],
        json!({
            "type": { "const": "sse" },
            "endpoint": object(&["requestUri"], json!({ "requestUri": { "const": "/ofrep/v1/events" } })),
            "inactivityDelaySec": { "const": 120 },
        }),
    );
    link["description"] = json!("Where to hear of changes (OFREP ADR-0008): this Worker's own `GET /ofrep/v1/events`, as an `endpoint` on the origin the client called");
    [
        ("OfrepEventStream", link),
        (
            "EventStream",
            json!({
                "type": "string",
                "description": "Server-sent events (OFREP ADR-0008). First `retry: 5000`, then, unless `Last-Event-ID` names the served config version, an event announcing it; later an event each time a newer version is served, a `:` comment after 25 s without one, and the end of the stream after 10 minutes (the client reconnects with its last event id). Each event: `id: <version>`, `event: message`, `data: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"<version>\\\"\"}`.",
                "examples": ["retry: 5000\n\nid: 3\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"3\\\"\"}\n\n"],
            }),
        ),
    ]
}

/// OFREP's failures: the protocol's `key` (where it names a flag), `errorCode` and
/// `errorDetails`, and nothing else; one schema per status, as the official description has.
fn ofrep_failures() -> Vec<(&'static str, Value)> {
    let failure = |key: bool, codes: &[&str], description: &str| {
        let required: &[&str] = match key {
            true => &["key", "errorCode", "errorDetails"],
            false => &["errorCode", "errorDetails"],
        };
        let mut properties =
            json!({ "errorCode": { "enum": codes }, "errorDetails": { "type": "string" } });
        if key {
            properties["key"] = json!({ "type": "string" });
        }
        let mut schema = object(required, properties);
        schema["description"] = json!(description);
        schema
    };
    vec![
        (
            "OfrepFlagFailure",
            failure(true, &["TARGETING_KEY_MISSING"], "A flag of the bulk answer that cannot be evaluated for this context: its rollout needs a `targetingKey`"),
        ),
        (
            "OfrepFailure",
            failure(true, &["PARSE_ERROR", "INVALID_CONTEXT", "TARGETING_KEY_MISSING"], "The body is not JSON (`PARSE_ERROR`), has no valid `context` (`INVALID_CONTEXT`), or the flag's rollout needs a `targetingKey` the context lacks (`TARGETING_KEY_MISSING`)"),
        ),
        (
            "OfrepNotFound",
            failure(true, &["FLAG_NOT_FOUND"], "The config has no flag of this key"),
        ),
        (
            "OfrepBulkFailure",
            failure(false, &["PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"], "The whole request refused: the body is not JSON (`PARSE_ERROR`) or has no valid `context` (`INVALID_CONTEXT`), or `If-None-Match` is malformed (`GENERAL`, the details naming it)"),
        ),
    ]
}

fn versions() -> Vec<(&'static str, Value)> {
    let entry = object(
        &[
            "version",
            "outcome",
            "at",
            "actor",
            "action",
            "baseVersion",
            "change",
        ],
        json!({
            "version": { "type": ["integer", "null"], "minimum": 1, "description": "null for a refused write" },
            "outcome": { "enum": ["applied", "refused"] },
            "at": reference("Millis"),
            "actor": { "type": "string", "description": "Who wrote: `admin` for the admin token, `token:<name>` for a scoped token, the person's email (or a service token's common name) through Cloudflare Access, `seed` for `npm run seed` and for a document written to KV from outside the Worker (earlier versions stored an 8-hex-digit fingerprint of the admin token)" },
            "action": { "enum": ["put", "patch", "rollback"] },
            "baseVersion": { "type": "integer", "minimum": 0 },
            "change": { "description": "The request body" },
        }),
    );
    let mut rollback = object(
        &["version"],
        json!({ "version": { "type": "integer", "minimum": 1 } }),
    );
    rollback["examples"] = json!([{ "version": 1 }]);
    vec![
        (
            "IfMatch",
            json!({ "type": "string", "pattern": ENTITY_TAGS,
                "description": "`*` or entity tags (`\"3\", \"4\"`); anything else is 400" }),
        ),
        (
            "HistoryCursor",
            // A version number from 1, in at most 20 digits (leading zeros allowed).
            json!({ "type": "string", "maxLength": 20, "pattern": "^(?:0{0,19}[1-9][0-9]{0,18})?$",
                "description": "Opaque: the `cursor` of the previous page" }),
        ),
        (
            "HistoryLimit",
            json!({ "anyOf": [{ "type": "integer", "minimum": 1, "maximum": 100 }, { "const": "" }] }),
        ),
        ("HistoryEntry", entry),
        (
            "ConfigHistoryPage",
            object(
                &["entries", "cursor", "listComplete"],
                json!({
                    "entries": { "type": "array", "items": reference("HistoryEntry"), "maxItems": 100 },
                    "cursor": { "type": ["string", "null"] },
                    "listComplete": { "type": "boolean" },
                }),
            ),
        ),
        ("Rollback", rollback),
    ]
}
