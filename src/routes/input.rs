//! A request as the handlers see it: path parameters (percent-decoded once), the query, the
//! body bytes (read by the pipeline after the access check, at most 64 KiB), the caller's
//! session when the route needs one, and headers on demand.

use crate::domain::ids::SessionId;
use crate::domain::json;
use crate::domain::sessions::SessionView;
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// The contract's body limit: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The body limit of config writes (the routes of scope `flags`): a whole config document
/// ([`crate::domain::config::MAX_CONFIG_BYTES`]).
pub const MAX_CONFIG_BODY_BYTES: usize = crate::domain::config::MAX_CONFIG_BYTES;

/// Where headers come from: the platform's request in the Worker, a list in tests.
pub trait HeaderSource {
    /// The value of header `name` (lowercase), if present.
    fn header(&self, name: &str) -> Option<String>;
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// The session a request was authenticated with.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The id the client presented.
    pub session_id: SessionId,
    /// The session it stands for.
    pub session: SessionView,
}

/// One request, parsed.
pub struct Input {
    /// Path parameters by name, decoded.
    pub params: Vec<(&'static str, String)>,
    /// The raw query string (without `?`).
    pub query: String,
    /// The body, for methods that carry one.
    pub body: Option<Vec<u8>>,
    /// The authenticated session, on `Session` routes.
    pub caller: Option<Caller>,
    /// The Cloudflare Access identity of an admin request admitted through Access (`None`
    /// for the admin token).
    pub admin: Option<String>,
    /// The request's headers.
    pub headers: Box<dyn HeaderSource>,
}

impl Input {
    /// Path parameter `name` (empty if the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The query's pairs, decoded as a form (`+` is a space).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(&self.query)
    }

    /// The value of query parameter `name` (its first occurrence), decoded.
    pub fn query_value(&self, name: &str) -> Option<String> {
        let mut pairs = query_pairs(&self.query).into_iter();
        pairs.find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Whether the query sets flag `name` (see [`query_flag`]).
    pub fn flag(&self, name: &str) -> ApiResult<bool> {
        query_flag(&self.query, name)
    }

    /// The body as JSON (`invalid_json` if absent or malformed).
    pub fn json(&self) -> ApiResult<Value> {
        Ok(json::parse(self.body.as_deref().unwrap_or_default())?)
    }

    /// The caller's session (the pipeline sets it on every `Session` route).
    pub fn caller(&self) -> ApiResult<&Caller> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Internal("a session route ran without a caller".into()))
    }

    /// Header `name`, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.header(name)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once (and `+` as a space when `form` is set). An escape that is
/// not two hex digits stays as it is, as browsers do; bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str, form: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = (b == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? << 4 | hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(if form && b == b'+' { b' ' } else { b });
                i += 1;
            }
        }
    }
    crate::text::from_utf8_lossy(out)
}

/// Splits a query string into decoded pairs; a pair without `=` has an empty value.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((percent_decode(k, true), percent_decode(v, true)));
    }
    pairs
}

/// Whether `query` sets flag `name`: `1` or `true` set it; `0`, `false`, an empty value
/// or no such parameter leave it unset; any other value is `invalid_request`. If the
/// parameter repeats, any setting value sets it.
pub fn query_flag(query: &str, name: &str) -> ApiResult<bool> {
    let mut set = false;
    for (k, v) in query_pairs(query).iter().filter(|(k, _)| k == name) {
        set |= match v.as_str() {
            "1" | "true" => true,
            "" | "0" | "false" => false,
            _ => return Err(ApiError::invalid(k, "must be 1, true, 0 or false")),
        };
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_happens_once() {
        assert_eq!(
            percent_decode("alice%40example.com", false),
            "alice@example.com"
        );
        assert_eq!(percent_decode("%41", false), "A");
        assert_eq!(
            percent_decode("%2541", false),
            "%41",
            "decoded once, not twice"
        );
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4", "bad escapes stay");
        assert_eq!(percent_decode("%C3%A9", false), "é");
        assert_eq!(percent_decode("%FF", false), "\u{FFFD}");
    }

    #[test]
    fn query_strings() {
        assert_eq!(query_pairs(""), vec![]);
        assert_eq!(
            query_pairs("userId=a%40b&limit=&cursor"),
            vec![
                ("userId".into(), "a@b".into()),
                ("limit".into(), String::new()),
                ("cursor".into(), String::new())
            ]
        );
        assert_eq!(
            query_pairs("a=1=2&&b=x+y"),
            vec![("a".into(), "1=2".into()), ("b".into(), "x y".into())]
        );
    }

    #[test]
    fn query_flags() {
        assert_eq!(query_flag("", "deep"), Ok(false));
        assert_eq!(query_flag("deep=1", "deep"), Ok(true));
        assert_eq!(query_flag("x=2&deep=true", "deep"), Ok(true));
        for unset in [
            "deep=0",
            "deep=false",
            "deep=",
            "deep",
            "deeper=1",
            "x=deep",
        ] {
            assert_eq!(query_flag(unset, "deep"), Ok(false), "{unset}");
        }
        assert_eq!(query_flag("deep=0&deep=1", "deep"), Ok(true));
        for bad in ["deep=yes", "deep=2", "deep=TRUE", "deep=1&deep=x"] {
            assert!(
                matches!(query_flag(bad, "deep"), Err(ApiError::InvalidRequest(ref m)) if m.starts_with("deep")),
                "{bad}"
            );
        }
    }

    #[test]
    fn inputs() {
        let input = Input {
            params: vec![("id", "a b".into())],
            query: "limit=5".into(),
            body: Some(b"{\"x\":1}".to_vec()),
            caller: None,
            admin: None,
            headers: Box::new(vec![("If-Match".to_string(), "\"3\"".to_string())]),
        };
        assert_eq!(input.param("id"), "a b");
        assert_eq!(input.param("nope"), "");
        assert_eq!(input.query_pairs(), vec![("limit".into(), "5".into())]);
        assert_eq!(input.json().unwrap()["x"], 1);
        assert_eq!(input.header("if-match").as_deref(), Some("\"3\""));
        assert!(matches!(input.caller(), Err(ApiError::Internal(_))));
        let empty = Input {
            body: None,
            ..input
        };
        assert!(matches!(empty.json(), Err(ApiError::InvalidJson(_))));
    }
}
