//! Property tests over every parser and validator that takes request data. For each:
//! it never panics, it accepts exactly the valid set (checked against an independent
//! reference predicate written from the contract), and an accepted value round-trips. And
//! the standard header fields the Worker writes parse as what their specifications say.
//! Language tags are checked against RFC 5646's ABNF written out as a regular expression
//! ([`bcp47`]), never against the code under test.

// Native test code: the Wasm size rules (clippy.toml, string_slice) do not apply.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::string_slice
)]
// Test code: a bad oracle or strategy should fail loudly.
#![allow(clippy::unwrap_used)]

use edgestate::domain::config::{read_document, AppConfig};
use edgestate::domain::error::DomainError;
use edgestate::domain::flags::{EvalContext, Flag};
use edgestate::domain::ids::{Email, FlagName, ProfileId, SessionHandle, SessionId, UserId};
use edgestate::domain::json::parse as parse_json;
use edgestate::domain::prefs::is_language_tag;
use edgestate::domain::ratelimit::{client, Decision};
use edgestate::domain::sessions::{Cursor, Lifetime, SessionView};
use edgestate::domain::time::Millis;
use edgestate::error::ApiError;
use edgestate::routes::auth::{
    bearer, cookie, cross_site_cookie_write, require_admin, session_id, SESSION_COOKIE,
};
use edgestate::routes::cors::AllowedOrigins;
use edgestate::routes::fields::{rate_limit, sf_string};
use edgestate::routes::find;
use edgestate::routes::input::{query_flag, query_pairs};
use edgestate::routes::parse::{
    new_session, prefs_patch, profile_ids, profile_name, session_list_query,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// RFC 5646 §2.1 `Language-Tag`, transcribed from its ABNF (ASCII case-insensitive, §2.1.1):
/// `langtag / privateuse / grandfathered`.
const LANGUAGE_TAG_ABNF: &str = concat!(
    "(?i-u)^(?:",
    // langtag: language ["-" script] ["-" region] *("-" variant) *("-" extension) ["-" privateuse]
    "(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})",
    "(?:-[a-z]{4})?",
    "(?:-(?:[a-z]{2}|[0-9]{3}))?",
    "(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*",
    "(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*",
    "(?:-x(?:-[a-z0-9]{1,8})+)?",
    // privateuse
    "|x(?:-[a-z0-9]{1,8})+",
    // grandfathered: irregular, then regular
    "|en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo",
    "|i-pwn|i-tao|i-tay|i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de",
    "|art-lojban|cel-gaulish|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang",
    ")$",
);

/// The oracle: well-formed per RFC 5646, and within the 35 characters edgestate stores.
fn bcp47(tag: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(LANGUAGE_TAG_ABNF).unwrap());
    tag.len() <= 35 && re.is_match(tag)
}

/// Strings that follow the grammar (short repetitions, so most fit in 35 characters).
fn grammatical_tag() -> impl Strategy<Value = String> {
    let langtag = concat!(
        "([a-zA-Z]{2,3}(-[a-zA-Z]{3}){0,3}|[a-zA-Z]{4}|[a-zA-Z]{5,8})",
        "(-[a-zA-Z]{4})?(-([a-zA-Z]{2}|[0-9]{3}))?",
        "(-([a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3})){0,2}",
        "(-[0-9a-wyzA-WYZ](-[a-zA-Z0-9]{2,8}){1,2}){0,2}",
        "(-[xX](-[a-zA-Z0-9]{1,8}){1,2})?",
    );
    prop_oneof![
        4 => proptest::string::string_regex(langtag).unwrap(),
        1 => proptest::string::string_regex("[xX](-[a-zA-Z0-9]{1,8}){1,3}").unwrap(),
        1 => prop::sample::select(vec![
            "i-klingon", "I-KLINGON", "en-GB-oed", "i-default", "sgn-CH-DE", "zh-min-nan",
            "art-lojban", "zh-yue", "x-private",
        ]).prop_map(str::to_string),
    ]
}

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
        (0u64..200_000).prop_map(|n| json!(n as f64)),
        prop::collection::vec("[a-z]{1,8}", 0..4).prop_map(|v| json!(v)),
    ];
    prop::collection::btree_map(field, value, 0..7)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// A JSON Schema `integer`: a whole number, whether or not it is written with `.0`.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        (f.fract() == 0.0 && (0.0..1e15).contains(&f)).then_some(f as u64)
    })
}

/// Flag objects built from the valid grammar: variants of one type, rules on a few
/// attributes, and a rollout whose integer percentages sum to 100.
fn flag_def() -> impl Strategy<Value = Value> {
    let names = prop::collection::btree_set("[a-z]{1,6}", 1..5)
        .prop_map(|s| s.into_iter().collect::<Vec<String>>());
    names
        .prop_flat_map(|names| {
            let n = names.len();
            let rule = (
                0..n,
                "(country|plan|targetingKey)",
                prop::collection::vec("[A-Z]{2}", 1..4),
                0u8..3,
            );
            (
                Just(names),
                prop::collection::vec(0u32..=100, n),
                prop::collection::vec(rule, 0..4),
                prop::option::of(any::<bool>()),
                0..n,
                any::<bool>(),
            )
        })
        .prop_map(|(names, raw, rules, enabled, default, with_rollout)| {
            let variants: serde_json::Map<String, Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), json!(i * 10)))
                .collect();
            let rules: Vec<Value> = rules
                .into_iter()
                .map(|(v, attr, values, op)| {
                    let cond = match op {
                        0 => json!({ "in": values }),
                        1 => json!({ "notIn": values }),
                        _ => json!({ "equals": values[0] }),
                    };
                    json!({ "when": { attr: cond }, "variant": names[v] })
                })
                .collect();
            let mut def =
                json!({ "variants": variants, "defaultVariant": names[default], "rules": rules });
            if with_rollout {
                let total: u32 = raw.iter().sum::<u32>().max(1);
                let mut shares: Vec<u32> = raw.iter().map(|r| r * 100 / total).collect();
                let given: u32 = shares.iter().sum();
                shares[0] += 100 - given;
                let rollout: serde_json::Map<String, Value> = names
                    .iter()
                    .zip(shares)
                    .map(|(n, s)| (n.clone(), json!(s)))
                    .collect();
                def["rollout"] = Value::Object(rollout);
            }
            if let Some(e) = enabled {
                def["enabled"] = json!(e);
            }
            def
        })
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
                in_set(n, 1, 64, "_.:-") && whole(l).is_some_and(|l| (1..=1_000_000).contains(&l))
            })
        }),
        "maintenanceMode" => v.is_boolean(),
        "strictRateLimits" => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|g| g.as_str().is_some_and(|g| in_set(g, 1, 64, "_.:-")))
        }),
        "rateLimitWindowSeconds" | "cacheTtlSeconds" => {
            whole(v).is_some_and(|n| (1..=86_400).contains(&n))
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
        // Stored text, read flag by flag: the same config or the same refusal.
        prop_assert_eq!(&read_document(&doc.to_string()).unwrap(), &parsed, "{}", doc);
        if let Ok(cfg) = parsed {
            let again = AppConfig::from_document(&serde_json::to_value(&cfg).unwrap()).unwrap();
            prop_assert_eq!(again, cfg);
        } else {
            prop_assert!(matches!(parsed, Err(DomainError::Invalid(_))));
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
        let parsed = AppConfig::from_document(&v);
        prop_assert_eq!(read_document(&v.to_string()).unwrap(), parsed, "{}", v);
        let _ = prefs_patch(&v);
        let _ = new_session(&v);
        let _ = profile_ids(&v);
        let _ = profile_name(&v);
    }

    #[test]
    fn flag_definitions_from_the_grammar_are_accepted_round_trip_and_evaluate(
        def in flag_def(), context in json_value(), key in prop::option::of("\\PC{0,20}"),
    ) {
        let doc = json!({ "featureFlags": { "f": def } });
        let cfg = AppConfig::from_document(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        prop_assert_eq!(AppConfig::from_document(&serde_json::to_value(&cfg).unwrap()).unwrap(), cfg.clone());
        let flag = cfg.feature_flags.get("f").unwrap();
        let Flag::Variants(d) = flag else { panic!("not an object flag") };
        let mut attributes = context.as_object().cloned().unwrap_or_default();
        attributes.remove("targetingKey");
        let context = EvalContext { targeting_key: key, attributes, ..EvalContext::default() };
        match flag.evaluate(&cfg.feature_flags, &context) {
            Ok(e) => prop_assert!(d.variants.get(e.variant) == Some(e.value)),
            Err(_) => prop_assert!(context.targeting_key.is_none() && d.rollout.is_some()),
        }
    }

    #[test]
    fn prerequisite_graphs_are_accepted_iff_acyclic_and_evaluate_as_their_chains(
        edges in prop::collection::vec((0usize..6, 0usize..6), 0..10),
        off in prop::collection::vec(any::<bool>(), 6),
    ) {
        // Flags f0 … f5: f_i needs each f_j of its edges to be `on`; a flag of `off` is
        // disabled (its default is `off`).
        let mut needs = vec![Vec::new(); 6];
        for (a, b) in &edges {
            if !needs[*a].contains(b) {
                needs[*a].push(*b);
            }
        }
        let flags: serde_json::Map<String, Value> = (0..6).map(|i| {
            let pre: serde_json::Map<String, Value> = needs[i].iter().map(|j| (format!("f{j}"), json!(["on"]))).collect();
            (format!("f{i}"), json!({"variants": {"on": true, "off": false}, "defaultVariant": "off",
                "rollout": {"on": 100}, "enabled": !off[i], "prerequisites": pre}))
        }).collect();
        fn reaches(needs: &[Vec<usize>], from: usize, to: usize, seen: &mut Vec<usize>) -> bool {
            needs[from].iter().any(|&j| j == to || (!seen.contains(&j) && { seen.push(j); reaches(needs, j, to, seen) }))
        }
        let cyclic = (0..6).any(|i| reaches(&needs, i, i, &mut Vec::new()));
        let cfg = AppConfig::from_document(&json!({ "featureFlags": flags }));
        prop_assert_eq!(cfg.is_err(), cyclic, "{:?}", cfg.as_ref().err());
        if let Err(e) = &cfg {
            prop_assert!(matches!(e, DomainError::Invalid(m) if m.contains(".prerequisites: cycle f")), "{:?}", e);
        }
        if let Ok(cfg) = cfg {
            fn on(needs: &[Vec<usize>], off: &[bool], i: usize) -> bool {
                !off[i] && needs[i].iter().all(|&j| on(needs, off, j))
            }
            for i in 0..6 {
                let e = cfg.feature_flags.get(&format!("f{i}")).unwrap().evaluate(&cfg.feature_flags, &EvalContext::default()).unwrap();
                prop_assert_eq!(e.variant == "on", on(&needs, &off, i), "f{}", i);
                prop_assert_eq!(e.unmet.is_some(), !off[i] && !on(&needs, &off, i));
            }
        }
    }

    #[test]
    fn evaluation_contexts(v in json_value(), key in json_value()) {
        let mut with_key = v.clone();
        if let Some(o) = with_key.as_object_mut() {
            o.insert("targetingKey".into(), key.clone());
        }
        for candidate in [&v, &with_key] {
            let ok = candidate.as_object().is_some_and(|o| o.get("targetingKey").is_none_or(Value::is_string));
            let parsed = EvalContext::from_json(candidate);
            prop_assert_eq!(parsed.is_ok(), ok, "{}", candidate);
            if let Ok(c) = parsed {
                prop_assert_eq!(c.targeting_key.as_deref(), candidate.get("targetingKey").and_then(Value::as_str));
            }
        }
    }

    #[test]
    fn raw_bytes_never_panic_the_json_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match parse_json(&bytes) {
            Ok(v) => prop_assert_eq!(parse_json(v.to_string().as_bytes()).unwrap(), v),
            Err(e) => prop_assert!(matches!(e, DomainError::InvalidJson(_))),
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
    fn profile_ids_from_the_alphabet(s in "[A-Za-z0-9_.:-]{0,70}") {
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
        let header = format!("theme=dark; __Host-session={sid}; other=1");
        prop_assert_eq!(session_id(None, Some(&header)).unwrap(), sid);
    }

    #[test]
    fn limit_and_cursor_query_values(limit in "\\PC{0,8}", n in 0u32..2000, cursor in "\\PC{0,80}") {
        // Digits only: `str::parse` also takes a leading `+`, which the API refuses.
        let digits = limit.bytes().all(|b| b.is_ascii_digit());
        let ok = limit.is_empty() || (digits && limit.parse::<u32>().is_ok_and(|l| (1..=1000).contains(&l)));
        prop_assert_eq!(session_list_query([("limit", limit.as_str())].into_iter()).is_ok(), ok);
        let s = n.to_string();
        let q = session_list_query([("limit", s.as_str())].into_iter());
        prop_assert_eq!(q.is_ok(), (1..=1000).contains(&n));
        if let Ok(q) = q { prop_assert_eq!(q.limit, n); }
        let _ = session_list_query([("cursor", cursor.as_str())].into_iter());
    }

    #[test]
    fn cursors_round_trip(at in 0i64..10_000_000_000_000, handle in "[0-9a-f]{32}") {
        let handle = edgestate::domain::ids::SessionHandle::parse("handle", &handle).unwrap();
        let c = Cursor { created_at: edgestate::domain::time::Millis(at), handle };
        prop_assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn preference_patches(theme in prop::option::of("[a-z]{0,6}"), lang in prop::option::of("[a-zA-Z0-9-]{0,12}"), notif in prop::option::of(any::<bool>())) {
        let mut body = serde_json::Map::new();
        if let Some(t) = &theme { body.insert("theme".into(), json!(t)); }
        if let Some(l) = &lang { body.insert("language".into(), json!(l)); }
        if let Some(n) = notif { body.insert("notifications".into(), json!(n)); }
        let valid = theme.as_deref().is_none_or(|t| t == "light" || t == "dark")
            && lang.as_deref().is_none_or(bcp47);
        let parsed = prefs_patch(&Value::Object(body));
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(p) = parsed {
            prop_assert_eq!(p.theme, theme);
            prop_assert_eq!(p.language, lang);
            prop_assert_eq!(p.notifications, notif);
        }
    }

    #[test]
    fn language_tags_are_exactly_the_rfc_5646_grammar(s in "\\PC{0,40}", t in "[a-zA-Z0-9xX-]{0,40}") {
        prop_assert_eq!(is_language_tag(&s), bcp47(&s), "{:?}", s);
        prop_assert_eq!(is_language_tag(&t), bcp47(&t), "{:?}", t);
    }

    #[test]
    fn every_grammatical_tag_of_35_characters_or_less_is_accepted(tag in grammatical_tag()) {
        prop_assert_eq!(is_language_tag(&tag), tag.len() <= 35, "{:?}", tag);
        let body = json!({ "language": tag });
        prop_assert_eq!(prefs_patch(&body).is_ok(), tag.len() <= 35);
    }

    #[test]
    fn client_addresses_stay_short(h in "\\PC{0,600}") {
        let c = client(Some(&h));
        prop_assert!(c.len() <= 45);
        let address = c.strip_suffix("/64").unwrap_or(&c);
        prop_assert!(c == "anonymous" || address.parse::<std::net::IpAddr>().is_ok());
    }

    #[test]
    fn client_addresses_are_what_std_net_makes_of_them(h in "[0-9a-fA-F:.]{0,45}|[0-9.]{0,16}|(::)?[0-9a-f:]{0,20}(:[0-9.]{0,15})?") {
        // IPv4 as itself, IPv6 by its /64 (an IPv4-mapped one as itself).
        let expected = match h.parse::<std::net::IpAddr>() {
            Err(_) => "anonymous".to_string(),
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let mut s = v6.segments();
                s[4..].fill(0);
                format!("{}/64", std::net::Ipv6Addr::from(s))
            }
            Ok(ip) => ip.to_string(),
        };
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
    fn session_handles(s in "[0-9a-fA-G%]{0,34}") {
        let valid = s.len() == 32 && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        let parsed = SessionHandle::parse("handle", &s);
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(h) = parsed {
            prop_assert_eq!(h.as_str(), s.as_str());
        }
    }

    #[test]
    fn minted_session_handles_always_parse(bytes in prop::array::uniform16(any::<u8>())) {
        let h = SessionHandle::from_random(&bytes);
        prop_assert!(SessionHandle::parse("handle", h.as_str()).is_ok());
    }

    #[test]
    fn query_flags(query in "(&?(deep|x|d)(=(1|0|true|false|yes|)?)?){0,4}", junk in "\\PC{0,20}") {
        let values: Vec<String> = query
            .split('&')
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k == "deep").then(|| v.to_string())
            })
            .collect();
        let valid = values.iter().all(|v| ["", "0", "1", "true", "false"].contains(&v.as_str()));
        let set = values.iter().any(|v| v == "1" || v == "true");
        match query_flag(&query, "deep") {
            Ok(on) => prop_assert!(valid && on == set),
            Err(e) => prop_assert!(!valid && matches!(e, ApiError::InvalidRequest(_))),
        }
        let _ = query_flag(&junk, "deep");
    }

    #[test]
    fn allowed_origins_never_panic_and_never_allow_a_wildcard(list in "\\PC{0,80}", origin in "\\PC{0,40}") {
        let allowed = AllowedOrigins::parse(&list);
        prop_assert!(!allowed.allows("*"));
        prop_assert!(allowed.origins().iter().all(|o| !o.contains('*') && !o.ends_with('/')));
        prop_assert!(!allowed.allows(&origin) || allowed.origins().contains(&origin));
    }

    #[test]
    fn batches(ids in prop::collection::vec("[a-z0-9.]{0,4}", 0..110)) {
        let body = json!({ "ids": ids });
        let mut seen = std::collections::HashSet::new();
        let valid = !ids.is_empty() && ids.len() <= 100
            && ids.iter().all(|id| in_set(id, 1, 64, "_-") && seen.insert(id.clone()));
        let parsed = profile_ids(&body);
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(p) = parsed {
            prop_assert_eq!(p.iter().map(|i| i.as_str().to_string()).collect::<Vec<_>>(), ids);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Session lifetime settings, the cross-site rule, and the standard header fields.

/// The session settings the README states: timeouts of 60 s to a year, renewal of 1 s to a
/// day and more often than the idle timeout.
fn valid_session_settings(idle: u64, absolute: u64, renew: u64) -> bool {
    let year = 365 * 86_400;
    (60..=year).contains(&idle)
        && (60..=year).contains(&absolute)
        && (1..=86_400).contains(&renew)
        && renew < idle
}

/// A Structured Field List of one Item whose value is a String, with Integer parameters
/// (RFC 8941, 4.2, for the subset these fields use): the string and the parameters.
fn sf_string_item(field: &str) -> Option<(String, Vec<(String, i64)>)> {
    let rest = field.strip_prefix('"')?;
    let (mut name, mut chars) = (String::new(), rest.char_indices());
    let end = loop {
        match chars.next()? {
            (i, '"') => break i + 1,
            (_, '\\') => name.push(chars.next().filter(|(_, c)| *c == '"' || *c == '\\')?.1),
            (_, c) if (' '..='~').contains(&c) => name.push(c),
            _ => return None,
        }
    };
    let mut params = Vec::new();
    for param in rest[end..].split(';').skip(1) {
        let (k, v) = param.split_once('=')?;
        let key_ok = k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c));
        let int_ok = !v.is_empty() && v.len() <= 15 && v.chars().all(|c| c.is_ascii_digit());
        if !key_ok || !int_ok {
            return None;
        }
        params.push((k.to_string(), v.parse().ok()?));
    }
    (rest[end..].is_empty() || rest[end..].starts_with(';')).then_some((name, params))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn session_settings_accept_exactly_their_ranges(
        idle in 0u64..40_000_000, absolute in 0u64..40_000_000, renew in 0u64..100_000
    ) {
        let doc = json!({"sessionIdleSeconds": idle, "sessionAbsoluteSeconds": absolute, "renewAfterSeconds": renew});
        let parsed = AppConfig::from_document(&doc);
        prop_assert_eq!(parsed.is_ok(), valid_session_settings(idle, absolute, renew), "{}", doc);
        if let Ok(cfg) = parsed {
            let l = Lifetime::of(&cfg);
            prop_assert_eq!((l.idle_seconds, l.absolute_seconds, l.renew_after_seconds), (idle, absolute, renew));
        }
    }

    #[test]
    fn idle_deadlines_never_pass_the_absolute_one(
        idle in 60u64..1_000_000, renew_frac in 0.0f64..1.0, now in 0i64..4_000_000_000_000, left in -1_000_000i64..1_000_000_000
    ) {
        let renew = ((idle as f64 * renew_frac) as u64).clamp(1, idle - 1);
        let l = Lifetime { idle_seconds: idle, absolute_seconds: 604_800, renew_after_seconds: renew };
        let (now, expires_at) = (Millis(now), Millis(now + left));
        let deadline = l.idle_deadline(now, expires_at);
        prop_assert!(deadline <= expires_at);
        prop_assert!(deadline == expires_at || deadline == now.plus_seconds(idle));
        // Just renewed: not due again before renewAfterSeconds.
        let view = SessionView { user_id: "u".into(), email: "e@x.co".into(), created_at: now, expires_at, idle_expires_at: deadline };
        prop_assert!(!l.renewal_due(&view, now.plus_ms(renew as i64 * 1000 - 1)));
    }

    #[test]
    fn rate_limit_fields_are_structured_field_lists(
        group in "[A-Za-z0-9_.:-]{1,64}", limit in 1u32..=1_000_000, used in 0u32..=1_000_001,
        reset in 1u64..=86_400, window in 1u32..=86_400, legacy in any::<bool>()
    ) {
        let d = Decision { limit, remaining: limit.saturating_sub(used), reset_seconds: reset, allowed: used <= limit };
        let fields = rate_limit(&group, &d, window, legacy);
        prop_assert_eq!(fields.len(), if legacy { 5 } else { 2 });
        let (policy, p) = sf_string_item(&fields[0].1).expect("RateLimit-Policy parses");
        let (name, r) = sf_string_item(&fields[1].1).expect("RateLimit parses");
        prop_assert_eq!((fields[0].0, fields[1].0), ("RateLimit-Policy", "RateLimit"));
        prop_assert_eq!(&policy, &group);
        prop_assert_eq!(&name, &group);
        prop_assert_eq!(p, vec![("q".to_string(), i64::from(limit)), ("w".to_string(), i64::from(window))]);
        prop_assert_eq!(r, vec![("r".to_string(), i64::from(d.remaining)), ("t".to_string(), reset as i64)]);
    }

    #[test]
    fn sf_strings_round_trip_any_printable_name(name in "[ -~]{0,40}") {
        let (parsed, params) = sf_string_item(&sf_string(&name)).expect("an sf-string");
        prop_assert_eq!(parsed, name);
        prop_assert!(params.is_empty());
    }

    #[test]
    fn only_cookie_writes_from_another_site_are_refused(
        method in prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE"), Just("OPTIONS")],
        authorization in prop::option::of(prop_oneof![Just("Bearer tok".to_string()), "\\PC{0,20}"]),
        cookie_header in prop::option::of(prop_oneof![Just("__Host-session=abc".to_string()), Just("a=1; __Host-session=x".to_string()), "\\PC{0,20}"]),
        site in prop::option::of(prop_oneof![Just("cross-site"), Just("same-site"), Just("same-origin"), Just("none"), Just("CROSS-SITE")]),
        foreign_origin in any::<bool>(),
    ) {
        let refused = cross_site_cookie_write(method, authorization.as_deref(), cookie_header.as_deref(), site, || foreign_origin);
        let expected = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
            && bearer(authorization.as_deref()).is_none()
            && cookie(cookie_header.as_deref(), SESSION_COOKIE).is_some_and(|v| !v.is_empty())
            && site.map_or(foreign_origin, |s| s.eq_ignore_ascii_case("cross-site"));
        prop_assert_eq!(refused, expected);
        // A bearer token or a safe method is never refused.
        if bearer(authorization.as_deref()).is_some() || matches!(method, "GET" | "HEAD" | "OPTIONS") {
            prop_assert!(!refused);
        }
    }
}
