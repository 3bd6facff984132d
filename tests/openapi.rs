//! `docs/openapi.json` is what the route table generates (regenerate with `npm run
//! openapi`), it has exactly the operations of `ROUTES`, and its schemas describe the Rust
//! types: a value of each response type validates against its schema, and each request
//! example parses with the type's own parser. Needs feature `openapi` (the test command
//! turns it on).

// Test code: a broken document should fail loudly. Native only: the Wasm-size lints of
// clippy.toml do not concern it.
#![allow(clippy::unwrap_used, clippy::panic, clippy::disallowed_types)]

use edgestate::domain::config::AppConfig;
use edgestate::domain::flags::{EvalContext, Flag};
use edgestate::domain::health::{self, D1Check, KvCheck, Report};
use edgestate::domain::ids::{FlagName, SessionId};
use edgestate::domain::prefs::Prefs;
use edgestate::domain::sessions::{
    ListedSession, MintedSession, Revoked, SessionPage, SessionView,
};
use edgestate::domain::time::Millis;
use edgestate::domain::users::User;
use edgestate::openapi::{render, template, REGENERATE};
use edgestate::routes::parse::{new_session, prefs_patch, profile_ids, profile_name};
use edgestate::routes::ROUTES;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn committed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    std::fs::read_to_string(path).unwrap_or_default()
}

fn doc() -> Value {
    serde_json::from_str(&render().unwrap()).unwrap()
}

#[test]
fn the_committed_document_is_what_the_route_table_generates() {
    let generated = render().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        committed() == generated,
        "docs/openapi.json is out of date: run `{REGENERATE}` and commit it"
    );
}

#[test]
fn the_committed_document_has_exactly_the_operations_of_the_route_table() {
    let doc: Value = serde_json::from_str(&committed()).unwrap();
    let mut in_doc = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            in_doc.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let in_table: BTreeSet<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}", r.method, template(r.path)))
        .collect();
    assert_eq!(in_doc, in_table, "run `{REGENERATE}`");
    assert_eq!(in_doc.len(), ROUTES.len());
}

#[test]
fn every_reference_resolves() {
    let doc = doc();
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"").skip(1) {
        let target = part.split('"').next().unwrap();
        let pointer = target.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "unresolved {target}");
    }
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("no schema {name}"))
}

#[test]
fn every_response_type_validates_against_its_schema() {
    let doc = doc();
    let at = Millis(1_700_000_000_000);
    let view = SessionView {
        user_id: "alice".into(),
        email: "alice@example.com".into(),
        created_at: at,
        expires_at: Millis(at.0 + 1000),
        idle_expires_at: Millis(at.0 + 500),
    };
    let user = User {
        id: "ada".into(),
        name: "Ada".into(),
        updated_at: at,
    };
    let mut config = AppConfig::default();
    config
        .feature_flags
        .insert("newCheckout".into(), Flag::Bool(true));
    let variants = json!({ "featureFlags": { "checkout": {
        "variants": { "a": "blue", "b": "green" }, "defaultVariant": "a",
        "rules": [{ "when": { "country": { "in": ["NL"] } }, "variant": "b" }],
        "rollout": { "a": 30, "b": 70 } } } });
    let with_variants = AppConfig::from_document(&variants).unwrap();
    let checkout = FlagName::parse("f", "checkout").unwrap();
    let nl = EvalContext::from_json(&json!({ "targetingKey": "u1", "country": "NL" })).unwrap();
    config.strict_rate_limits.push("sessions".into());
    let minted = MintedSession {
        session_id: SessionId::from_random(&[7; 32]),
        view: view.clone(),
    };
    let page = SessionPage {
        sessions: vec![
            ListedSession {
                handle: Some("0123456789abcdef0123456789abcdef".into()),
                current: true,
                view: view.clone(),
            },
            ListedSession {
                handle: None,
                current: false,
                view: view.clone(),
            },
        ],
        cursor: Some(format!("{}.{}", at.0, "a".repeat(64))),
        list_complete: false,
    };
    let samples = [
        ("Config", serde_json::to_value(&config).unwrap()),
        (
            "Config",
            serde_json::to_value(AppConfig::default()).unwrap(),
        ),
        ("Config", serde_json::to_value(&with_variants).unwrap()),
        (
            "PublicConfig",
            serde_json::to_value(with_variants.public(edgestate::domain::time::Millis(0))).unwrap(),
        ),
        (
            "PublicConfig",
            serde_json::to_value(config.public(edgestate::domain::time::Millis(0))).unwrap(),
        ),
        (
            "FlagView",
            serde_json::to_value(with_variants.flag_view(&checkout, &nl)).unwrap(),
        ),
        (
            "FlagView",
            serde_json::to_value(
                config.flag_view(&FlagName::parse("f", "x").unwrap(), &EvalContext::default()),
            )
            .unwrap(),
        ),
        ("MintedSession", serde_json::to_value(&minted).unwrap()),
        ("Session", serde_json::to_value(&view).unwrap()),
        ("SessionPage", serde_json::to_value(&page).unwrap()),
        (
            "Revoked",
            serde_json::to_value(Revoked { revoked: 2 }).unwrap(),
        ),
        ("Prefs", serde_json::to_value(Prefs::default()).unwrap()),
        ("User", serde_json::to_value(&user).unwrap()),
        (
            "UserBatch",
            json!({ "users": { "ada": user, "ghost": null } }),
        ),
        (
            "HealthAnswer",
            json!({ "status": "ok", "version": health::VERSION }),
        ),
        (
            "HealthAnswer",
            serde_json::to_value(deep_report(true)).unwrap(),
        ),
        (
            "HealthAnswer",
            serde_json::to_value(deep_report(false)).unwrap(),
        ),
        ("Error", edgestate::error::ApiError::NotFound.json()),
    ];
    for (name, value) in samples {
        let errors = validate(&doc, schema(&doc, name), &value, name);
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let wrong = json!({ "theme": "light", "language": "en" });
    assert!(
        !validate(&doc, schema(&doc, "Prefs"), &wrong, "Prefs").is_empty(),
        "the validator checks required fields"
    );
}

/// A deep health report: of a complete set-up, or of one without KV and with D1 empty.
fn deep_report(complete: bool) -> Report {
    Report {
        status: if complete { "ok" } else { "degraded" },
        version: health::VERSION,
        admin_token: true,
        admin_token_strong: complete,
        kv: KvCheck {
            binding: "CACHE",
            bound: complete,
            ok: complete,
            config: complete.then_some("stored"),
            config_version: complete.then_some(3),
        },
        d1: D1Check {
            binding: "DB",
            bound: true,
            ok: complete,
            schema_version: complete.then_some(4),
            expected_schema_version: 4,
            latest_migration: complete.then(|| "0004_session_idle_timeout.sql".into()),
            missing_tables: if complete {
                vec![]
            } else {
                vec!["sessions".into()]
            },
            config_version: complete.then_some(3),
        },
        ignored_origins: if complete { vec![] } else { vec!["*".into()] },
        config_in_sync: complete,
    }
}

#[test]
fn every_request_example_parses_with_the_types_own_parser() {
    let doc = doc();
    type Parses = fn(&Value) -> bool;
    let parsers: [(&str, Parses); 7] = [
        ("ConfigDocument", |v| AppConfig::from_document(v).is_ok()),
        ("ConfigPatch", |v| AppConfig::default().patched(v).is_ok()),
        ("NewSession", |v| new_session(v).is_ok()),
        ("PrefsPatch", |v| prefs_patch(v).is_ok()),
        ("ProfileWrite", |v| profile_name(v).is_ok()),
        ("UserBatchRequest", |v| profile_ids(v).is_ok()),
        // What the OFREP routes read of the body: its `context`.
        ("OfrepRequest", |v| {
            EvalContext::from_json(&v["context"]).is_ok()
        }),
    ];
    for (name, parses) in parsers {
        let s = schema(&doc, name);
        let examples = s["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no examples"));
        for example in examples {
            assert!(parses(example), "{name}: the parser refuses {example}");
            assert!(
                validate(&doc, s, example, name).is_empty(),
                "{name}: {example}"
            );
        }
    }
}

/// Every operation as (`METHOD /path`, operation object).
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((format!("{} {path}", method.to_uppercase()), op));
        }
    }
    out
}

#[test]
fn every_operation_is_described_identified_and_tagged() {
    let doc = doc();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for (name, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{name}: no operationId");
        assert!(
            ids.insert(id.to_string()),
            "{name}: operationId {id} is taken"
        );
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{name}: no summary");
        let description = op["description"].as_str().unwrap_or_default();
        assert!(
            description.len() > summary.len(),
            "{name}: the description should say more than the summary"
        );
        for tag in op["tags"].as_array().unwrap() {
            let tag = tag.as_str().unwrap();
            assert!(tags.contains(tag), "{name}: tag {tag} is not declared");
        }
    }
}

#[test]
fn every_request_body_states_its_limit_and_what_else_the_worker_checks() {
    let doc = doc();
    for (name, op) in operations(&doc) {
        let Some(body) = op.get("requestBody") else {
            continue;
        };
        let rules = &body["x-edgestate"];
        // A whole config document for config writes (scope `flags`), 64 KiB elsewhere.
        let config_write = body["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/ConfigDocument") || r.ends_with("/ConfigPatch"))
            || name.contains("ollback");
        let limit = if config_write { 1_900_000 } else { 65_536 };
        assert_eq!(rules["maxBytes"], json!(limit), "{name}");
        assert!(
            rules.get("contentTypeChecked").is_none(),
            "{name}: the Content-Type is checked"
        );
        for check in rules["furtherChecks"].as_array().into_iter().flatten() {
            let rule = check["rule"].as_str().unwrap_or_default();
            assert!(!rule.is_empty(), "{name}: {check}");
            let fields = check["fields"].as_array();
            assert!(fields.is_some_and(|f| !f.is_empty()), "{name}: {check}");
        }
    }
    let put = &doc["paths"]["/admin/config"]["put"]["requestBody"]["x-edgestate"];
    assert_eq!(put["furtherChecks"].as_array().map(Vec::len), Some(4));
}

/// Every schema in the document, with where it is: the components and every schema inside
/// them, and the schemas of parameters, headers and bodies.
fn all_schemas(doc: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(s: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        if !s.is_object() {
            return;
        }
        out.push((at.clone(), s));
        for key in [
            "items",
            "additionalProperties",
            "propertyNames",
            "not",
            "contains",
        ] {
            if let Some(sub) = s.get(key) {
                walk(sub, format!("{at}/{key}"), out);
            }
        }
        for key in ["properties", "patternProperties", "$defs"] {
            for (k, sub) in s[key].as_object().into_iter().flatten() {
                walk(sub, format!("{at}/{key}/{k}"), out);
            }
        }
        for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
            for (i, sub) in s[key].as_array().into_iter().flatten().enumerate() {
                walk(sub, format!("{at}/{key}/{i}"), out);
            }
        }
    }
    fn outside<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                for (k, sub) in map {
                    if k == "schema" {
                        walk(sub, format!("{at}/schema"), out);
                    } else if !k.starts_with("x-") {
                        outside(sub, format!("{at}/{k}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, sub) in items.iter().enumerate() {
                    outside(sub, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, s) in doc["components"]["schemas"].as_object().unwrap() {
        walk(s, format!("#/components/schemas/{name}"), &mut out);
    }
    outside(&doc["paths"], "#/paths".into(), &mut out);
    outside(
        &doc["components"]["headers"],
        "#/components/headers".into(),
        &mut out,
    );
    out
}

#[test]
fn every_array_schema_says_what_its_items_are() {
    let doc = doc();
    for (at, s) in all_schemas(&doc) {
        let array = match &s["type"] {
            Value::String(t) => t == "array",
            Value::Array(types) => types.contains(&json!("array")),
            _ => false,
        };
        assert!(
            !array || s.get("items").is_some(),
            "{at}: an array without `items`"
        );
    }
}

#[test]
fn every_example_and_default_validates_against_its_schema() {
    let doc = doc();
    let mut seen = 0;
    for (at, s) in all_schemas(&doc) {
        let examples = s["examples"].as_array().into_iter().flatten();
        let given = examples
            .map(|v| ("example", v))
            .chain(s.get("example").map(|v| ("example", v)))
            .chain(s.get("default").map(|v| ("default", v)));
        for (what, value) in given {
            seen += 1;
            let errors = validate(&doc, s, value, &at);
            assert!(
                errors.is_empty(),
                "{at}: the {what} {value} fails: {errors:?}"
            );
        }
    }
    assert!(seen >= 10, "only {seen} examples found");
}

/// A small JSON Schema check for the keywords the document uses.
fn validate(doc: &Value, s: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let fail = |errors: &mut Vec<String>, what: &str| errors.push(format!("{at}: {what}"));
    if let Some(target) = s["$ref"].as_str() {
        let pointer = target.strip_prefix('#').unwrap();
        errors.extend(validate(doc, doc.pointer(pointer).unwrap(), v, at));
    }
    for sub in s["allOf"].as_array().into_iter().flatten() {
        errors.extend(validate(doc, sub, v, at));
    }
    if let Some(any) = s["anyOf"].as_array() {
        if !any.iter().any(|sub| validate(doc, sub, v, at).is_empty()) {
            fail(&mut errors, "matches no anyOf branch");
        }
    }
    if let Some(one) = s["oneOf"].as_array() {
        let matching = one
            .iter()
            .filter(|sub| validate(doc, sub, v, at).is_empty())
            .count();
        if matching != 1 {
            fail(&mut errors, &format!("matches {matching} oneOf branches"));
        }
    }
    if s.get("not")
        .is_some_and(|not| validate(doc, not, v, at).is_empty())
    {
        fail(&mut errors, "matches its `not`");
    }
    errors.extend(bounds(s, v, at));
    if let Some(types) = s.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            t => vec![t.as_str().unwrap()],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            fail(&mut errors, &format!("{v} is not {types:?}"));
        }
    }
    if s.get("const").is_some_and(|c| c != v)
        || s["enum"].as_array().is_some_and(|e| !e.contains(v))
    {
        fail(&mut errors, &format!("{v} is not an allowed value"));
    }
    if let (Some(pattern), Some(text)) = (s["pattern"].as_str(), v.as_str()) {
        if !regex::Regex::new(pattern).unwrap().is_match(text) {
            fail(&mut errors, &format!("{text:?} does not match {pattern}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for key in s["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(key.as_str().unwrap()) {
                fail(&mut errors, &format!("missing {key}"));
            }
        }
        for (k, item) in obj {
            let path = format!("{at}.{k}");
            match s["properties"].get(k) {
                Some(p) => errors.extend(validate(doc, p, item, &path)),
                None if s["additionalProperties"] == json!(false) => {
                    fail(&mut errors, &format!("unknown {k}"))
                }
                None => {
                    if let Some(extra) = s.get("additionalProperties") {
                        errors.extend(validate(doc, extra, item, &path));
                    }
                    if let Some(names) = s.get("propertyNames") {
                        errors.extend(validate(doc, names, &json!(k), &path));
                    }
                }
            }
        }
    }
    for (i, item) in v.as_array().into_iter().flatten().enumerate() {
        if let Some(items) = s.get("items") {
            errors.extend(validate(doc, items, item, &format!("{at}[{i}]")));
        }
    }
    errors
}

/// The size keywords: of numbers, strings (in characters), arrays and objects.
fn bounds(s: &Value, v: &Value, at: &str) -> Vec<String> {
    let size = match v {
        Value::String(text) => Some(("Length", text.chars().count())),
        Value::Array(items) => Some(("Items", items.len())),
        Value::Object(map) => Some(("Properties", map.len())),
        _ => None,
    };
    let mut errors = Vec::new();
    if let Some((kind, n)) = size {
        let n = n as u64;
        if s[format!("min{kind}")].as_u64().is_some_and(|min| n < min)
            || s[format!("max{kind}")].as_u64().is_some_and(|max| n > max)
        {
            errors.push(format!("{at}: {n} is out of the {kind} bounds"));
        }
    }
    if let Some(x) = v.as_f64() {
        if s["minimum"].as_f64().is_some_and(|min| x < min)
            || s["maximum"].as_f64().is_some_and(|max| x > max)
        {
            errors.push(format!("{at}: {x} is out of bounds"));
        }
    }
    if s["uniqueItems"] == json!(true) {
        let items = v.as_array().into_iter().flatten();
        let distinct: BTreeSet<String> = items.clone().map(Value::to_string).collect();
        if distinct.len() != items.count() {
            errors.push(format!("{at}: repeated items"));
        }
    }
    errors
}
