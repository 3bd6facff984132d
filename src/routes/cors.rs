//! CORS as configuration. `ALLOWED_ORIGINS` lists exact origins, comma-separated
//! (`https://app.example.com,http://localhost:5173`). A request whose `Origin` is listed
//! gets `Access-Control-Allow-Origin: <that origin>` and
//! `Access-Control-Allow-Credentials: true` (cookies and `Authorization` may be sent); any
//! other origin gets no CORS header, so browsers keep its scripts from reading the answer.
//! A wildcard is never sent: with credentials, `*` would let every site act as the user.
//!
//! Preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) are answered by
//! the pipeline from the route table alone: no storage, no rate limit. While the list is
//! not empty, every response carries `Vary: Origin`, because its headers depend on it.
//! With the list empty, CORS is off and nothing changes: no CORS header, no `Vary`, and an
//! `OPTIONS` is an ordinary request (405 with `Allow`). Pure functions over header values.

use crate::error::ApiError;
pub use crate::origins::AllowedOrigins;
use crate::routes::reply::Reply;

/// Response headers a browser script may read besides the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str = "RateLimit-Policy, RateLimit, RateLimit-Limit, \
    RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Cache, Server-Timing, ETag, \
    Prefs-Version, Prefs-Bookmark, WWW-Authenticate";
/// Request headers a preflight may ask for.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Prefs-Version, Prefs-Bookmark";
/// How long a browser may reuse a preflight's answer (seconds).
pub const MAX_AGE_SECONDS: u32 = 600;

/// Whether a request is a CORS preflight to answer: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method` while CORS is on. Any other `OPTIONS` is routed as usual
/// (405 + `Allow`).
pub fn is_preflight(
    allowed: &AllowedOrigins,
    method: &str,
    origin: Option<&str>,
    request_method: Option<&str>,
) -> bool {
    !allowed.is_empty() && method == "OPTIONS" && origin.is_some() && request_method.is_some()
}

/// The CORS headers of a response to a request from `origin`: nothing while the list is
/// empty; else `Vary: Origin`, and for a listed origin the allow and expose headers.
pub fn headers(allowed: &AllowedOrigins, origin: Option<&str>) -> Vec<(&'static str, String)> {
    if allowed.is_empty() {
        return Vec::new();
    }
    let mut out = vec![("Vary", "Origin".to_string())];
    if let Some(origin) = origin.filter(|o| allowed.allows(o)) {
        out.push(("Access-Control-Allow-Origin", origin.to_string()));
        out.push(("Access-Control-Allow-Credentials", "true".to_string()));
        out.push(("Access-Control-Expose-Headers", EXPOSED_HEADERS.to_string()));
    }
    out
}

/// The answer to a preflight for a path whose declared methods are `methods` (an `Allow`
/// value): 204 with the methods and headers a listed origin may use, else 403 `forbidden`
/// without any CORS header. [`headers`] adds the origin's own headers to either.
pub fn preflight(allowed: &AllowedOrigins, origin: Option<&str>, methods: &str) -> Reply {
    if !origin.is_some_and(|o| allowed.allows(o)) {
        return Reply::error(&ApiError::Forbidden);
    }
    Reply::no_content()
        .with_header("Access-Control-Allow-Methods", methods)
        .with_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        .with_header("Access-Control-Max-Age", MAX_AGE_SECONDS.to_string())
        .with_header(
            "Vary",
            "Access-Control-Request-Method, Access-Control-Request-Headers",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "https://app.example.com";

    fn list(s: &str) -> AllowedOrigins {
        AllowedOrigins::parse(s)
    }

    fn get<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn listed_origins_get_credentials_others_nothing_and_all_vary() {
        let l = list(APP);
        let h = headers(&l, Some(APP));
        assert_eq!(get(&h, "Access-Control-Allow-Origin"), Some(APP));
        assert_eq!(get(&h, "Access-Control-Allow-Credentials"), Some("true"));
        assert_eq!(get(&h, "Vary"), Some("Origin"));
        assert!(get(&h, "Access-Control-Expose-Headers")
            .unwrap()
            .contains("RateLimit-Remaining"));
        for other in [Some("https://evil.example"), None] {
            let h = headers(&l, other);
            assert_eq!(h, vec![("Vary", "Origin".to_string())], "{other:?}");
        }
        assert!(headers(&AllowedOrigins::default(), Some(APP)).is_empty());
    }

    #[test]
    fn preflights() {
        let l = list(APP);
        assert!(is_preflight(&l, "OPTIONS", Some(APP), Some("PATCH")));
        assert!(is_preflight(
            &l,
            "OPTIONS",
            Some("https://x.io"),
            Some("GET")
        ));
        assert!(!is_preflight(&l, "OPTIONS", None, Some("PATCH")));
        assert!(!is_preflight(&l, "OPTIONS", Some(APP), None));
        assert!(!is_preflight(&l, "GET", Some(APP), Some("PATCH")));
        let off = AllowedOrigins::default();
        assert!(
            !is_preflight(&off, "OPTIONS", Some(APP), Some("PATCH")),
            "CORS off"
        );
        let ok = preflight(&l, Some(APP), "GET, PATCH");
        assert_eq!(ok.status, 204);
        assert_eq!(
            get(&ok.headers, "Access-Control-Allow-Methods"),
            Some("GET, PATCH")
        );
        assert_eq!(
            get(&ok.headers, "Access-Control-Allow-Headers"),
            Some(ALLOWED_HEADERS)
        );
        assert_eq!(get(&ok.headers, "Access-Control-Max-Age"), Some("600"));
        let refused = preflight(&l, Some("https://evil.example"), "GET");
        assert_eq!(refused.status, 403);
        assert!(get(&refused.headers, "Access-Control-Allow-Methods").is_none());
    }
}
