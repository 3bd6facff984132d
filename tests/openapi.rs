//! `docs/openapi.json` is what the route table generates (regenerate with `npm run
//! openapi`), it has exactly the operations of `ROUTES`, and its schemas describe the Rust
//! types: a value of each response type validates against its schema, and each request
//! example parses with the type's own parser. Needs feature `openapi` (the test command
//! turns it on).

// Test code: a broken document should fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use edgestate::domain::config::AppConfig;
use edgestate::domain::flags::{EvalContext, Flag};
use edgestate::domain::health::{self, D1Check, KvCheck, Report};
use edgestate::domain::ids::{FlagName, SessionId};
use edgestate::domain::prefs::{Prefs, PrefsPatch};
use edgestate::domain::sessions::{
    ListedSession, MintedSession, NewSession, Revoked, SessionPage, SessionView,
};
use edgestate::domain::time::Millis;
use edgestate::domain::users::{parse_batch, parse_profile, User};
use edgestate::openapi::{render, template, REGENERATE};
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
        let target = &part[..part.find('"').unwrap()];
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
                view: view.clone(),
            },
            ListedSession {
                handle: None,
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
        kv: KvCheck {
            binding: "CACHE",
            bound: complete,
            ok: complete,
            config: complete.then_some("stored"),
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
        },
        ignored_origins: if complete { vec![] } else { vec!["*".into()] },
    }
}

#[test]
fn every_request_example_parses_with_the_types_own_parser() {
    let doc = doc();
    type Parses = fn(&Value) -> bool;
    let parsers: [(&str, Parses); 6] = [
        ("ConfigDocument", |v| AppConfig::from_document(v).is_ok()),
        ("ConfigPatch", |v| AppConfig::default().patched(v).is_ok()),
        ("NewSession", |v| NewSession::parse(v).is_ok()),
        ("PrefsPatch", |v| PrefsPatch::parse(v).is_ok()),
        ("ProfileWrite", |v| parse_profile(v).is_ok()),
        ("UserBatchRequest", |v| parse_batch(v).is_ok()),
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

/// A small JSON Schema check for the keywords the document uses.
fn validate(doc: &Value, s: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let fail = |errors: &mut Vec<String>, what: &str| errors.push(format!("{at}: {what}"));
    if let Some(target) = s["$ref"].as_str() {
        errors.extend(validate(doc, doc.pointer(&target[1..]).unwrap(), v, at));
    }
    for sub in s["allOf"].as_array().into_iter().flatten() {
        errors.extend(validate(doc, sub, v, at));
    }
    if let Some(any) = s["anyOf"].as_array() {
        if !any.iter().any(|sub| validate(doc, sub, v, at).is_empty()) {
            fail(&mut errors, "matches no anyOf branch");
        }
    }
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
