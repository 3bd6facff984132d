//! Requests parsed into the domain's values: query strings, request bodies and the headers
//! handlers read. Each parser checks the shape HTTP gives the input (JSON objects, unknown
//! fields, query pairs, entity tags) and leaves the values' own rules to the domain's types
//! (`UserId::parse`, `Email::parse`, `is_language_tag`, ...). Errors name the field.

use crate::domain::flags::EvalContext;
use crate::domain::ids::{Email, FlagName, ProfileId, UserId};
use crate::domain::json::{decimal, deny_unknown, object, required_str};
use crate::domain::prefs::{is_language_tag, PrefsPatch};
use crate::domain::sessions::{self, Cursor, ListQuery, NewSession};
use crate::domain::tokens::Scope;
use crate::domain::users::{MAX_BATCH, MAX_NAME_CHARS};
use crate::domain::versions::{HistoryQuery, Precondition, DEFAULT_PAGE, MAX_PAGE};
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// A `POST /sessions` body: `{"userId", "email"}`.
pub fn new_session(body: &Value) -> ApiResult<NewSession> {
    let obj = object(body)?;
    deny_unknown(obj, &["userId", "email"], "")?;
    Ok(NewSession {
        user: UserId::parse("userId", required_str(obj, "userId")?)?,
        email: Email::parse("email", required_str(obj, "email")?)?,
    })
}

/// `POST /admin/tokens`' body: `{"name", "scope"}`. A name of dots only is refused: `.` and
/// `..` are path segments a browser or client resolves away, so the token could not be
/// revoked by name.
pub fn new_token(body: &Value) -> ApiResult<(FlagName, Scope)> {
    let obj = object(body)?;
    deny_unknown(obj, &["name", "scope"], "")?;
    let name = FlagName::parse("name", required_str(obj, "name")?)?;
    if name.as_str().bytes().all(|b| b == b'.') {
        return Err(ApiError::invalid("name", "must not be only dots"));
    }
    Ok((name, Scope::parse("scope", required_str(obj, "scope")?)?))
}

/// The admin session listing's query: `userId`, `cursor` and `limit`; others are ignored,
/// and an empty value (`?userId=&cursor=&limit=`) means "not given".
pub fn session_list_query<K: AsRef<str>, V: AsRef<str>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> ApiResult<ListQuery> {
    let mut q = ListQuery {
        user: None,
        cursor: None,
        limit: sessions::DEFAULT_PAGE,
    };
    for (k, v) in pairs {
        let (k, v) = (k.as_ref(), v.as_ref());
        match k {
            _ if v.is_empty() => {}
            "userId" => q.user = Some(UserId::parse("userId", v)?),
            "cursor" => q.cursor = Some(Cursor::parse(v)?),
            "limit" => q.limit = session_page_limit(v)?,
            _ => {}
        }
    }
    Ok(q)
}

fn session_page_limit(v: &str) -> ApiResult<u32> {
    decimal(v)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=sessions::MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 1000"))
}

/// A `PATCH /prefs` body: any subset of the three fields, nothing else.
pub fn prefs_patch(body: &Value) -> ApiResult<PrefsPatch> {
    let obj = object(body)?;
    deny_unknown(obj, &["theme", "language", "notifications"], "")?;
    let field = |name: &str| obj.get(name);
    Ok(PrefsPatch {
        theme: field("theme").map(theme).transpose()?,
        language: field("language").map(language).transpose()?,
        notifications: field("notifications")
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| ApiError::invalid("notifications", "must be a boolean"))
            })
            .transpose()?,
    })
}

fn theme(v: &Value) -> ApiResult<String> {
    v.as_str()
        .filter(|t| *t == "light" || *t == "dark")
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid("theme", "must be \"light\" or \"dark\""))
}

fn language(v: &Value) -> ApiResult<String> {
    v.as_str()
        .filter(|l| is_language_tag(l))
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid("language", "must be a BCP 47 language tag"))
}

/// A `PUT /admin/users/:id` body: `{"name"}`, 1-100 characters, no control characters.
pub fn profile_name(body: &Value) -> ApiResult<String> {
    let obj = object(body)?;
    deny_unknown(obj, &["name"], "")?;
    let name = required_str(obj, "name")?;
    // Characters are the bytes that do not continue a UTF-8 sequence (`chars().count()`
    // would link core's wide counting routine for this one use).
    let chars = name.bytes().filter(|b| b & 0xc0 != 0x80).count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "must be 1-100 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// A `POST /users/batch` body: `{"ids": [...]}`, 1 to 100 distinct valid ids.
pub fn profile_ids(body: &Value) -> ApiResult<Vec<ProfileId>> {
    let obj = object(body)?;
    deny_unknown(obj, &["ids"], "")?;
    let ids = obj
        .get("ids")
        .ok_or_else(|| ApiError::invalid("ids", "is required"))?
        .as_array()
        .ok_or_else(|| ApiError::invalid("ids", "must be an array"))?;
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(ApiError::invalid("ids", "must hold 1 to 100 ids"));
    }
    let mut out: Vec<ProfileId> = Vec::with_capacity(ids.len());
    for (i, v) in ids.iter().enumerate() {
        let field = format!("ids[{i}]");
        let s = v
            .as_str()
            .ok_or_else(|| ApiError::invalid(&field, "must be a string"))?;
        let id = ProfileId::parse(&field, s)?;
        // At most 100 short ids: a scan costs less than hashing them (and a set's code).
        if out.contains(&id) {
            return Err(ApiError::invalid(&field, "is a duplicate"));
        }
        out.push(id);
    }
    Ok(out)
}

/// A D1 bookmark the client got back from a write: 1-256 of `[A-Za-z0-9._:-]` (D1's own are
/// hex digits and dashes); `header` names it in the error.
pub fn bookmark(header: &str, value: &str) -> ApiResult<String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._:-".contains(&b);
    match (1..=256).contains(&value.len()) && value.bytes().all(ok) {
        true => Ok(value.to_string()),
        false => Err(ApiError::invalid(
            header,
            "must be a bookmark this API returned",
        )),
    }
}

/// A flag evaluation context from query parameters: `targetingKey` and string attributes.
pub fn flag_context(pairs: Vec<(String, String)>) -> ApiResult<EvalContext> {
    let mut context = EvalContext::default();
    for (k, v) in pairs {
        FlagName::parse(&format!("query.{k}"), &k)?;
        if k == "targetingKey" {
            context.targeting_key = Some(v);
        } else {
            context.attributes.insert(k, Value::String(v));
        }
    }
    Ok(context)
}

/// Whether an `If-Match` or `If-None-Match` value is well formed (RFC 9110 8.8.3, 13.1.1):
/// `*`, or a list of `"…"` or `W/"…"` tags, empty list elements allowed as the `#` rule
/// has it; else 400 `invalid_request` naming the header. So `If-Match: 8` (unquoted) is a
/// header written wrong, not a tag that fails to match.
pub fn entity_tags(header: &str, value: &str) -> ApiResult<()> {
    // States: 0 before a tag, 1 after `W`, 2 after `W/`, 3 inside the quotes, 4 after a tag.
    let (mut state, mut tags) = (0u8, 0u32);
    for &b in value.trim().as_bytes() {
        state = match (state, b) {
            (0 | 4, b' ' | b'\t') => state,
            (0 | 4, b',') => 0,
            (0, b'W') => 1,
            (1, b'/') => 2,
            (0 | 2, b'"') => 3,
            (3, b'"') => {
                tags += 1;
                4
            }
            (3, b'!' | b'#'..=b'~' | 0x80..) => 3,
            _ => 9,
        };
        if state == 9 {
            break;
        }
    }
    let ended = matches!(state, 0 | 4) && tags > 0;
    match ended || value.trim() == "*" {
        true => Ok(()),
        false => Err(ApiError::invalid(
            header,
            "must be * or a list of quoted entity tags such as \"3\"",
        )),
    }
}

/// What an `If-Match` header asks for: `*`, or a list of entity tags compared strongly
/// (`W/` tags, and tags that are not a version this API sent, never match); a malformed
/// header is 400 (see [`entity_tags`]).
pub fn precondition(if_match: &str) -> ApiResult<Precondition> {
    entity_tags("If-Match", if_match)?;
    if if_match.trim() == "*" {
        return Ok(Precondition::Any);
    }
    let mut versions = Vec::new();
    for tag in if_match.split(',') {
        let quoted = tag
            .trim()
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'));
        if let Some(version) = quoted.and_then(decimal) {
            versions.push(version);
        }
    }
    Ok(Precondition::OneOf(versions))
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, as RFC 9110 asks for
/// `If-None-Match`), or is `*`; a malformed value is 400 (see [`entity_tags`]).
pub fn none_match(if_none_match: &str, tag: &str) -> ApiResult<bool> {
    entity_tags("If-None-Match", if_none_match)?;
    Ok(if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .map(str::trim)
            .any(|t| t.strip_prefix("W/").unwrap_or(t) == tag))
}

/// The history's query: `limit` (1 to 100) and `cursor` (a position this API returned);
/// other parameters are ignored, and an empty value means "not given".
pub fn history_query(pairs: &[(String, String)]) -> ApiResult<HistoryQuery> {
    let mut q = HistoryQuery {
        before: None,
        limit: DEFAULT_PAGE,
    };
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        match k.as_str() {
            "limit" => {
                let n = decimal(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=MAX_PAGE).contains(n));
                let problem = format!("must be an integer from 1 to {MAX_PAGE}");
                q.limit = n.ok_or_else(|| ApiError::invalid("limit", &problem))?;
            }
            "cursor" => {
                let n = decimal(v).filter(|n| *n >= 1);
                let bad = || ApiError::invalid("cursor", "is not a cursor this API returned");
                q.before = Some(n.ok_or_else(bad)?);
            }
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_queries() {
        let q = |pairs: &[(&str, &str)]| {
            let v: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            history_query(&v)
        };
        assert_eq!(
            q(&[]).unwrap(),
            HistoryQuery {
                before: None,
                limit: DEFAULT_PAGE
            }
        );
        assert_eq!(
            q(&[("limit", ""), ("cursor", "")]).unwrap().limit,
            DEFAULT_PAGE
        );
        assert_eq!(
            q(&[("limit", "100"), ("cursor", "7")]).unwrap(),
            HistoryQuery {
                before: Some(7),
                limit: 100
            }
        );
        for bad in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "x"),
            ("cursor", "0"),
            ("cursor", "-1"),
            ("cursor", "1e3"),
        ] {
            assert!(q(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn if_match_and_etags() {
        assert_eq!(precondition(" * ").unwrap(), Precondition::Any);
        assert_eq!(
            precondition("\"3\", W/\"4\", \"x\",, \"\" ,\"5\"").unwrap(),
            Precondition::OneOf(vec![3, 5])
        );
        for never in [
            "W/\"2\"",
            "\"x\"",
            "\"\"",
            "\"99999999999999999999999\"",
            "\"a,b\"",
        ] {
            assert_eq!(
                precondition(never).unwrap(),
                Precondition::OneOf(vec![]),
                "{never}"
            );
        }
    }

    #[test]
    fn malformed_entity_tags_are_refused_naming_the_header() {
        for bad in [
            "8",
            "",
            " ",
            ",",
            "\"8",
            "8\"",
            "\"8\" \"9\"",
            "\"8\"x",
            "w/\"8\"",
            "W/8",
            "\"a b\"",
            "**",
            "*, \"1\"",
            "\"8\",9",
        ] {
            match precondition(bad) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with("If-Match: "), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
            match none_match(bad, "\"8\"") {
                Err(ApiError::InvalidRequest(m)) => {
                    assert!(m.starts_with("If-None-Match: "), "{m}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let tag = "\"00ff\"";
        for hit in [
            "\"00ff\"",
            "W/\"00ff\"",
            "*",
            "\"a\", \"00ff\"",
            " \"00ff\" ",
        ] {
            assert!(none_match(hit, tag).unwrap(), "{hit}");
        }
        for miss in ["\"00fe\"", "W/\"00FF\"", "\"00ff \""] {
            assert!(!none_match(miss, tag).unwrap_or(false), "{miss}");
        }
    }

    #[test]
    fn list_query_validation() {
        let parse = |pairs: &[(&str, &str)]| session_list_query(pairs.iter().copied());
        assert_eq!(parse(&[]).unwrap().limit, 100);
        assert_eq!(parse(&[("limit", "1000")]).unwrap().limit, 1000);
        let empty = parse(&[("userId", ""), ("cursor", ""), ("limit", "")]).unwrap();
        assert_eq!((empty.user, empty.cursor, empty.limit), (None, None, 100));
        for bad in ["0", "1001", "-1", "abc", "1.5", " 5"] {
            assert!(parse(&[("limit", bad)]).is_err(), "{bad}");
        }
        assert!(parse(&[("cursor", "garbage")]).is_err());
        assert!(parse(&[("userId", "bad id")]).is_err());
    }

    #[test]
    fn new_session_body_validation() {
        assert!(new_session(&json!({"userId": "u", "email": "a@b.co"})).is_ok());
        for (body, field) in [
            (json!({"email": "a@b.co"}), "userId"),
            (json!({"userId": 1, "email": "a@b.co"}), "userId"),
            (json!({"userId": "u", "email": "nope"}), "email"),
            (
                json!({"userId": "u", "email": "a@b.co", "admin": true}),
                "admin",
            ),
            (
                json!({"userId": "x".repeat(129), "email": "a@b.co"}),
                "userId",
            ),
        ] {
            match new_session(&body) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn patch_validation() {
        assert_eq!(prefs_patch(&json!({})).unwrap(), PrefsPatch::default());
        let p = prefs_patch(&json!({"theme": "dark", "language": "nl-BE", "notifications": false}))
            .unwrap();
        assert_eq!(p.theme.as_deref(), Some("dark"));
        for (body, field) in [
            (json!({"theme": "blue"}), "theme"),
            (json!({"theme": null}), "theme"),
            (json!({"language": 5}), "language"),
            (json!({"language": "not a tag"}), "language"),
            (json!({"notifications": "yes"}), "notifications"),
            (json!({"fontSize": 3}), "fontSize"),
        ] {
            match prefs_patch(&body) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn batch_validation() {
        assert_eq!(profile_ids(&json!({"ids": ["a", "b"]})).unwrap().len(), 2);
        let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        assert!(profile_ids(&json!({ "ids": hundred })).is_ok());
        let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        for body in [
            json!({ "ids": too_many }),
            json!({"ids": []}),
            json!({"ids": ["a", "a"]}),
            json!({"ids": ["a", 1]}),
            json!({"ids": ["bad id"]}),
            json!({"ids": "a"}),
            json!({}),
            json!({"ids": ["a"], "more": 1}),
        ] {
            assert!(
                matches!(profile_ids(&body), Err(ApiError::InvalidRequest(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn profile_validation() {
        assert_eq!(profile_name(&json!({"name": "Ada"})).unwrap(), "Ada");
        assert!(profile_name(&json!({"name": "é".repeat(100)})).is_ok());
        for body in [
            json!({"name": ""}),
            json!({"name": "x".repeat(101)}),
            json!({"name": 5}),
            json!({}),
            json!({"name": "a\u{0}"}),
            json!({"name": "a", "x": 1}),
        ] {
            assert!(profile_name(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn flag_contexts_from_query_pairs() {
        let q = flag_context(vec![
            ("targetingKey".into(), "k".into()),
            ("country".into(), "NL".into()),
        ])
        .unwrap();
        assert_eq!(q.targeting_key.as_deref(), Some("k"));
        assert_eq!(q.attributes["country"], json!("NL"));
        assert!(matches!(flag_context(vec![("a b".into(), "1".into())]),
            Err(ApiError::InvalidRequest(m)) if m.starts_with("query.a b:")));
    }
}
