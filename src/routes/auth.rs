//! Credentials: the admin bearer token (compared in constant time) and the session token
//! (cookie `__Host-session=` or `Authorization: Bearer`), and the cross-site rule for cookies.
//! Pure functions over header values.

use crate::domain::ids::SessionId;
use crate::error::{ApiError, ApiResult};
use sha2::{Digest, Sha256};

/// The token of an `Authorization: Bearer <token>` header, if that is its shape.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares two secrets in time independent of where they differ: both sides are hashed to
/// fixed-length digests first, so neither length nor content leaks through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Admin auth: `Authorization: Bearer <ADMIN_TOKEN>`. An unset or empty secret refuses
/// everyone.
pub fn require_admin(authorization: Option<&str>, secret: Option<&str>) -> ApiResult<()> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let token = bearer(authorization).ok_or(ApiError::Unauthorized)?;
    if constant_time_eq(token, secret) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The session cookie's name. The `__Host-` prefix makes browsers keep it only when it was set
/// over HTTPS with `Path=/` and no `Domain`, so a sibling subdomain cannot plant one (session
/// fixation). The cookie `session` of earlier versions is not read.
pub const SESSION_COOKIE: &str = "__Host-session";

/// The value of cookie `name` in a `Cookie` header (the first, if it is there twice).
pub fn cookie<'a>(cookie_header: Option<&'a str>, name: &'a str) -> Option<&'a str> {
    cookies(cookie_header, name).0
}

/// The first value of cookie `name` in a `Cookie` header, and whether it has another.
/// (A plain loop, not an iterator adapter: one piece of code for both questions.)
fn cookies<'a>(cookie_header: Option<&'a str>, name: &str) -> (Option<&'a str>, bool) {
    let mut first = None;
    for pair in cookie_header.unwrap_or_default().split(';') {
        let Some((k, v)) = pair.trim().split_once('=') else {
            continue;
        };
        if k.trim() == name {
            if first.is_some() {
                return (first, true);
            }
            first = Some(v.trim().trim_matches('"'));
        }
    }
    (first, false)
}

/// The caller's session id: `Authorization: Bearer` first, else the [`SESSION_COOKIE`].
/// Anything absent or not shaped like an id we mint is 401 before any storage is touched, and
/// so is a `Cookie` header that carries the cookie twice (neither is taken).
pub fn session_id(
    authorization: Option<&str>,
    cookie_header: Option<&str>,
) -> ApiResult<SessionId> {
    let from_cookie = || match cookies(cookie_header, SESSION_COOKIE) {
        (first, false) => first,
        (_, true) => None,
    };
    bearer(authorization)
        .or_else(from_cookie)
        .and_then(SessionId::parse)
        .ok_or(ApiError::Unauthorized)
}

/// Whether the request carries a non-empty session cookie.
fn has_session_cookie(cookie_header: Option<&str>) -> bool {
    cookie(cookie_header, SESSION_COOKIE).is_some_and(|v| !v.is_empty())
}

/// Whether the request presented a token: a bearer token, or where sessions are accepted
/// (`cookies_count`) a session cookie. A refused one makes the 401 say `invalid_token`.
pub fn token_given(
    authorization: Option<&str>,
    cookie_header: Option<&str>,
    cookies_count: bool,
) -> bool {
    bearer(authorization).is_some() || (cookies_count && has_session_cookie(cookie_header))
}

/// Whether an unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`) rests on the session cookie
/// (it has one and no bearer token) while the browser says it comes from another site
/// (`Sec-Fetch-Site: cross-site`): such a request is refused (403), so no other site can make
/// a signed-in browser write. Bearer tokens are never sent by a browser on its own, and
/// same-origin, same-site and user-initiated (`none`) requests pass. A browser that sends no
/// `Sec-Fetch-Site` is judged by its `Origin` instead: `foreign_origin` says whether the
/// request has one that is neither this Worker's own nor a listed CORS origin (`null`
/// included); a request with neither header (not a browser's `fetch` or form) passes.
pub fn cross_site_cookie_write(
    method: &str,
    authorization: Option<&str>,
    cookie_header: Option<&str>,
    sec_fetch_site: Option<&str>,
    foreign_origin: impl FnOnce() -> bool,
) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
        && bearer(authorization).is_none()
        && has_session_cookie(cookie_header)
        && match sec_fetch_site {
            Some(site) => site.trim().eq_ignore_ascii_case("cross-site"),
            None => foreign_origin(),
        }
}

/// `Set-Cookie` for a new session: the attributes the contract requires.
pub fn session_cookie(id: &SessionId, max_age_seconds: u64) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_seconds}"
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clearing_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn admin_requires_the_exact_secret() {
        assert!(require_admin(Some("Bearer s3cret"), Some("s3cret")).is_ok());
        assert_eq!(
            require_admin(Some("Bearer s3cre"), Some("s3cret")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            require_admin(Some("Bearer s3cret!"), Some("s3cret")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            require_admin(None, Some("s3cret")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            require_admin(Some("s3cret"), Some("s3cret")),
            Err(ApiError::Unauthorized)
        );
    }

    #[test]
    fn unset_secret_refuses_everyone() {
        assert_eq!(
            require_admin(Some("Bearer "), Some("")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            require_admin(Some("Bearer x"), Some("")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            require_admin(Some("Bearer x"), None),
            Err(ApiError::Unauthorized)
        );
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie(Some("a=1; session=xyz; b=2"), "session"),
            Some("xyz")
        );
        assert_eq!(cookie(Some("mysession=xyz"), "session"), None);
        assert_eq!(cookie(Some("session=\"q\""), "session"), Some("q"));
        assert_eq!(cookie(None, "session"), None);
    }

    #[test]
    fn session_id_sources() {
        let bearer_header = format!("Bearer {ID}");
        let cookie_header = format!("__Host-session={ID}");
        assert_eq!(session_id(Some(&bearer_header), None).unwrap().as_str(), ID);
        assert_eq!(session_id(None, Some(&cookie_header)).unwrap().as_str(), ID);
        assert_eq!(session_id(None, None), Err(ApiError::Unauthorized));
        assert_eq!(
            session_id(Some("Bearer short"), None),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            session_id(None, Some("__Host-session=../../etc")),
            Err(ApiError::Unauthorized)
        );
        let legacy = format!("session={ID}");
        assert_eq!(
            session_id(None, Some(&legacy)),
            Err(ApiError::Unauthorized),
            "the old cookie name is not read"
        );
    }

    #[test]
    fn cookie_attributes() {
        let id = SessionId::parse(ID).unwrap();
        assert_eq!(
            session_cookie(&id, 604_800),
            format!("__Host-session={ID}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=604800")
        );
        assert!(clearing_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn cross_site_writes_resting_on_the_cookie_are_refused() {
        let cookie = format!("__Host-session={ID}");
        let bearer_header = format!("Bearer {ID}");
        let c = Some(cookie.as_str());
        let write = |method, authorization, cookie, site, foreign| {
            cross_site_cookie_write(method, authorization, cookie, site, || foreign)
        };
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(write(method, None, c, Some("cross-site"), false));
            assert!(write(method, Some("Basic x"), c, Some("cross-site"), false));
            assert!(!write(
                method,
                Some(&bearer_header),
                c,
                Some("cross-site"),
                true
            ));
            for site in ["same-origin", "same-site", "none"] {
                assert!(!write(method, None, c, Some(site), true), "{site}");
            }
            assert!(
                write(method, None, c, None, true),
                "no Sec-Fetch-Site: Origin decides"
            );
            assert!(!write(method, None, c, None, false));
            assert!(!write(method, None, None, Some("cross-site"), true));
            assert!(!write(
                method,
                None,
                Some("__Host-session="),
                Some("cross-site"),
                true
            ));
        }
        for method in ["GET", "HEAD", "OPTIONS"] {
            assert!(!write(method, None, c, Some("cross-site"), true));
        }
    }

    #[test]
    fn a_second_session_cookie_is_refused() {
        let one = format!("a=1; __Host-session={ID}");
        assert!(session_id(None, Some(&one)).is_ok());
        let other = ID.replace('A', "B");
        for two in [
            format!("__Host-session={other}; __Host-session={ID}"),
            format!("__Host-session={ID}; x=1; __Host-session={ID}"),
            format!("__Host-session={ID}; __Host-session="),
        ] {
            assert_eq!(
                session_id(None, Some(&two)),
                Err(ApiError::Unauthorized),
                "{two}"
            );
            let bearer = format!("Bearer {ID}");
            assert!(
                session_id(Some(&bearer), Some(&two)).is_ok(),
                "the bearer decides"
            );
        }
    }

    #[test]
    fn tokens_given() {
        let cookie = format!("__Host-session={ID}");
        assert!(token_given(Some("Bearer x"), None, false));
        assert!(!token_given(Some("Basic x"), None, true));
        assert!(token_given(None, Some(&cookie), true));
        assert!(
            !token_given(None, Some(&cookie), false),
            "admin routes take no cookie"
        );
        assert!(!token_given(None, None, true));
    }
}
