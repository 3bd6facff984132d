//! Property tests over every parser and validator that takes request data. For each:
//! it never panics, it accepts exactly the valid set (checked against an independent
//! reference predicate written from the contract), and an accepted value round-trips.

use edgestate::domain::config::AppConfig;
use edgestate::domain::ids::{Email, FlagName, ProfileId, SessionId, UserId};
use edgestate::domain::json::parse as parse_json;
use edgestate::domain::prefs::{is_language_tag, PrefsPatch};
use edgestate::domain::ratelimit::client;
use edgestate::domain::sessions::{Cursor, ListQuery, NewSession};
use edgestate::domain::users::{parse_batch, parse_profile};
use edgestate::error::ApiError;
use edgestate::routes::auth::{bearer, cookie, require_admin, session_id};
use edgestate::routes::find;
use edgestate::routes::input::query_pairs;
use proptest::prelude::*;
use serde_json::{json, Value};

fn in_set(s: &str, min: usize, max: usize, extra: &str) -> bool {
    (min..=max).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9 _.:@-]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,16}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Config-shaped documents: the real field names with values of every type.
fn config_doc() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("featureFlags"),
        Just("rateLimits"),
        Just("maintenanceMode"),
        Just("strictRateLimits"),
        Just("rateLimitWindowSeconds"),
        Just("cacheTtlSeconds"),
        Just("unknownField"),
    ];
    let value = prop_oneof![
        json_value(),
        prop::collection::btree_map("[a-zA-Z0-9_.:-]{1,8}", any::<bool>(), 0..4)
            .prop_map(|m| json!(m)),
        prop::collection::btree_map("[a-zA-Z0-9_.:-]{1,8}", 0u64..2_000_000, 0..4)
            .prop_map(|m| json!(m)),
        (0u64..200_000).prop_map(Value::from),
        prop::collection::vec("[a-z]{1,8}", 0..4).prop_map(|v| json!(v)),
    ];
    prop::collection::btree_map(field, value, 0..7)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn valid_config_doc(doc: &Value) -> bool {
    let Some(obj) = doc.as_object() else {
        return false;
    };
    obj.iter().all(|(k, v)| match k.as_str() {
        "featureFlags" => v.as_object().is_some_and(|m| {
            m.iter()
                .all(|(n, b)| in_set(n, 1, 64, "_.:-") && b.is_boolean())
        }),
        "rateLimits" => v.as_object().is_some_and(|m| {
            m.iter().all(|(n, l)| {
                in_set(n, 1, 64, "_.:-") && l.as_u64().is_some_and(|l| (1..=1_000_000).contains(&l))
            })
        }),
        "maintenanceMode" => v.is_boolean(),
        "strictRateLimits" => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|g| g.as_str().is_some_and(|g| in_set(g, 1, 64, "_.:-")))
        }),
        "rateLimitWindowSeconds" | "cacheTtlSeconds" => {
            v.as_u64().is_some_and(|n| (1..=86_400).contains(&n))
        }
        _ => false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn config_documents(doc in config_doc()) {
        let parsed = AppConfig::from_document(&doc);
        prop_assert_eq!(parsed.is_ok(), valid_config_doc(&doc), "{}", doc);
        if let Ok(cfg) = parsed {
            let again = AppConfig::from_document(&serde_json::to_value(&cfg).unwrap()).unwrap();
            prop_assert_eq!(again, cfg);
        } else {
            prop_assert!(matches!(parsed, Err(ApiError::InvalidRequest(_))));
        }
    }

    #[test]
    fn config_patches_never_panic_and_keep_the_base(doc in config_doc(), any_doc in json_value()) {
        let base = AppConfig::default();
        for patch in [&doc, &any_doc] {
            if let Ok(p) = base.patched(patch) {
                prop_assert_eq!(AppConfig::from_document(&serde_json::to_value(&p).unwrap()).unwrap(), p);
            }
        }
        prop_assert_eq!(base, AppConfig::default());
    }

    #[test]
    fn arbitrary_json_never_panics_any_body_parser(v in json_value()) {
        let _ = AppConfig::from_document(&v);
        let _ = PrefsPatch::parse(&v);
        let _ = NewSession::parse(&v);
        let _ = parse_batch(&v);
        let _ = parse_profile(&v);
    }

    #[test]
    fn raw_bytes_never_panic_the_json_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match parse_json(&bytes) {
            Ok(v) => prop_assert_eq!(parse_json(v.to_string().as_bytes()).unwrap(), v),
            Err(e) => prop_assert!(matches!(e, ApiError::InvalidJson(_))),
        }
    }

    #[test]
    fn user_ids(s in "\\PC{0,140}") {
        let ok = in_set(&s, 1, 128, "_.:@-");
        prop_assert_eq!(UserId::parse("userId", &s).is_ok(), ok);
        if ok { prop_assert_eq!(UserId::parse("userId", &s).unwrap().to_string(), s); }
    }

    #[test]
    fn user_ids_from_the_alphabet(s in "[A-Za-z0-9_.:@/ -]{0,130}") {
        prop_assert_eq!(UserId::parse("userId", &s).is_ok(), in_set(&s, 1, 128, "_.:@-"));
    }

    #[test]
    fn profile_ids(s in "[A-Za-z0-9_.:-]{0,70}") {
        let ok = in_set(&s, 1, 64, "_-");
        prop_assert_eq!(ProfileId::parse("id", &s).is_ok(), ok);
        if ok { prop_assert_eq!(ProfileId::parse("id", &s).unwrap().to_string(), s); }
    }

    #[test]
    fn flag_names(s in "[A-Za-z0-9_.:@ -]{0,70}") {
        let ok = in_set(&s, 1, 64, "_.:-");
        prop_assert_eq!(FlagName::parse("name", &s).is_ok(), ok);
    }

    #[test]
    fn emails(local in "[a-z0-9.+]{0,70}", domain in "[a-z0-9.-]{0,200}", junk in "\\PC{0,10}") {
        let addr = format!("{local}@{domain}");
        let valid = addr.len() <= 254
            && !local.is_empty() && local.len() <= 64
            && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains("..");
        prop_assert_eq!(Email::parse("email", &addr).is_ok(), valid, "{}", addr);
        if let Ok(e) = Email::parse("email", &addr) { prop_assert_eq!(e.as_str(), addr.as_str()); }
        let _ = Email::parse("email", &junk);
    }

    #[test]
    fn session_ids(s in "[A-Za-z0-9_=+/-]{40,46}") {
        let ok = s.len() == 43 && in_set(&s, 43, 43, "_-");
        prop_assert_eq!(SessionId::parse(&s).is_some(), ok);
    }

    #[test]
    fn minted_session_ids_always_parse(bytes in prop::array::uniform32(any::<u8>())) {
        let id = SessionId::from_random(&bytes);
        prop_assert_eq!(SessionId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn authorization_headers(h in "\\PC{0,80}", secret in "[a-z]{0,12}") {
        let _ = bearer(Some(&h));
        let _ = session_id(Some(&h), None);
        let allowed = require_admin(Some(&h), Some(&secret)).is_ok();
        let expected = !secret.is_empty() && bearer(Some(&h)) == Some(secret.as_str());
        prop_assert_eq!(allowed, expected);
        let header = format!("Bearer {secret}");
        prop_assert_eq!(require_admin(Some(&header), Some(&secret)).is_ok(), !secret.is_empty());
    }

    #[test]
    fn cookie_headers(h in "\\PC{0,120}", id in prop::array::uniform32(any::<u8>())) {
        let _ = cookie(Some(&h), "session");
        let _ = session_id(None, Some(&h));
        let sid = SessionId::from_random(&id);
        let header = format!("theme=dark; session={sid}; other=1");
        prop_assert_eq!(session_id(None, Some(&header)).unwrap(), sid);
    }

    #[test]
    fn limit_and_cursor_query_values(limit in "\\PC{0,8}", n in 0u32..2000, cursor in "\\PC{0,80}") {
        let ok = limit.is_empty() || limit.parse::<u32>().is_ok_and(|l| (1..=1000).contains(&l));
        prop_assert_eq!(ListQuery::parse([("limit", limit.as_str())].into_iter()).is_ok(), ok);
        let s = n.to_string();
        let q = ListQuery::parse([("limit", s.as_str())].into_iter());
        prop_assert_eq!(q.is_ok(), (1..=1000).contains(&n));
        if let Ok(q) = q { prop_assert_eq!(q.limit, n); }
        let _ = ListQuery::parse([("cursor", cursor.as_str())].into_iter());
    }

    #[test]
    fn cursors_round_trip(at in 0i64..10_000_000_000_000, hash in "[0-9a-f]{64}") {
        let c = Cursor { created_at: edgestate::domain::time::Millis(at), id_hash: hash };
        prop_assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn preference_patches(theme in prop::option::of("[a-z]{0,6}"), lang in prop::option::of("[a-zA-Z0-9-]{0,12}"), notif in prop::option::of(any::<bool>())) {
        let mut body = serde_json::Map::new();
        if let Some(t) = &theme { body.insert("theme".into(), json!(t)); }
        if let Some(l) = &lang { body.insert("language".into(), json!(l)); }
        if let Some(n) = notif { body.insert("notifications".into(), json!(n)); }
        let valid = theme.as_deref().is_none_or(|t| t == "light" || t == "dark")
            && lang.as_deref().is_none_or(is_language_tag);
        let parsed = PrefsPatch::parse(&Value::Object(body));
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(p) = parsed {
            prop_assert_eq!(p.theme, theme);
            prop_assert_eq!(p.language, lang);
            prop_assert_eq!(p.notifications, notif);
        }
    }

    #[test]
    fn language_tags_never_panic(s in "\\PC{0,40}") {
        let ok = is_language_tag(&s);
        if ok {
            prop_assert!(s.len() <= 35 && s.split('-').all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric())));
        }
    }

    #[test]
    fn client_addresses_stay_short(h in "\\PC{0,600}") {
        let c = client(Some(&h));
        prop_assert!(c.len() <= 45);
        prop_assert!(c == "anonymous" || c.parse::<std::net::IpAddr>().is_ok());
    }

    #[test]
    fn client_addresses_are_what_std_net_makes_of_them(h in "[0-9a-fA-F:.]{0,45}|[0-9.]{0,16}|(::)?[0-9a-f:]{0,20}(:[0-9.]{0,15})?") {
        let expected = h.parse::<std::net::IpAddr>().map_or("anonymous".to_string(), |ip| ip.to_string());
        prop_assert_eq!(client(Some(&h)), expected);
    }

    #[test]
    fn query_strings_decode_as_forms_do(q in "([a-zA-Z0-9%+=&.~_-]|%[0-9a-fA-F]{2}|%C3%A9|%FF){0,40}") {
        let reference: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        prop_assert_eq!(query_pairs(&q), reference);
    }

    #[test]
    fn paths_and_methods_never_panic(method in "[A-Z]{0,7}", path in "(/[a-z0-9%._-]{0,12}){0,5}") {
        match find(&method, &path) {
            Ok(found) => prop_assert!(method == found.route.method || method == "HEAD"),
            Err(e) => prop_assert!(matches!(e, ApiError::NotFound | ApiError::MethodNotAllowed(_))),
        }
    }

    #[test]
    fn batches(ids in prop::collection::vec("[a-z0-9.]{0,4}", 0..110)) {
        let body = json!({ "ids": ids });
        let mut seen = std::collections::HashSet::new();
        let valid = !ids.is_empty() && ids.len() <= 100
            && ids.iter().all(|id| in_set(id, 1, 64, "_-") && seen.insert(id.clone()));
        let parsed = parse_batch(&body);
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(p) = parsed {
            prop_assert_eq!(p.iter().map(|i| i.as_str().to_string()).collect::<Vec<_>>(), ids);
        }
    }
}
