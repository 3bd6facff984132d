//! The route table and the handlers behind it.
//!
//! [`ROUTES`] declares every route once: method, path pattern, who may call it, whether the
//! maintenance gate closes it, its rate-limit group, and its handler. The pipeline enforces
//! all of it before a handler runs (and before any body is read), so a handler only parses,
//! calls the domain and replies, and a route cannot be added without its access check.
//! Unknown paths are 404; a known path with a method it does not declare is 405 with
//! `Allow`; `HEAD` is answered wherever `GET` is. CORS preflights are answered by the
//! pipeline from this table too ([`cors`]).

pub mod auth;
mod config;
pub mod cors;
pub mod fields;
mod health;
pub mod input;
mod ofrep;
pub mod parse;
mod prefs;
pub mod reply;
mod sessions;
mod tokens;
mod users;

use crate::ctx::Ctx;
use crate::domain::sessions::Check;
use crate::domain::tokens::Scope;
use crate::error::{ApiError, ApiResult};
use input::{percent_decode, Input};
use reply::Reply;
use std::future::Future;
use std::pin::Pin;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A caller with a valid session (cookie or bearer), checked as the [`Check`] says.
    Session(Check),
    /// An admin credential whose scope allows this one: the admin token or a Cloudflare
    /// Access identity (every scope), or a scoped token ([`Scope::allows`]).
    Admin(Scope),
    /// Anyone, but a request whose query sets this flag (`?deep=1`) needs an admin credential
    /// (scope `read`); the handler serves the admin-only form exactly when
    /// [`input::query_flag`] says so.
    AdminIf(&'static str),
}

/// Rate limiting of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never limited.
    Unlimited,
    /// Counted in this group, per client.
    Group(&'static str),
}

pub(crate) type Handled<'a> = Pin<Box<dyn Future<Output = ApiResult<Reply>> + 'a>>;
pub(crate) type Handler = for<'a> fn(&'a Ctx, Input) -> Handled<'a>;

/// One route.
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The path pattern; `:name` segments are parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Whether maintenance mode closes it (503 `maintenance`).
    pub gated: bool,
    /// Its rate limiting.
    pub limit: Limit,
    pub(crate) handler: Handler,
}

impl Route {
    /// Whether the route reads a request body.
    pub fn has_body(&self) -> bool {
        matches!(self.method, "POST" | "PUT" | "PATCH")
    }

    /// The largest body it reads: 64 KiB, or a whole config document for config writes.
    pub fn body_limit(&self) -> usize {
        match self.access {
            FLAGS => input::MAX_CONFIG_BODY_BYTES,
            _ => input::MAX_BODY_BYTES,
        }
    }

    /// Whether responses carry per-user or admin data (sent with `Cache-Control: no-store`).
    pub fn is_private(&self) -> bool {
        self.access != Access::Public
    }
}

macro_rules! to {
    ($handler:path) => {
        |ctx, input| Box::pin($handler(ctx, input))
    };
}

use Access::Public;
use Limit::{Group, Unlimited};
/// Admin reads: any admin credential.
const READ: Access = Access::Admin(Scope::Read);
/// Config writes: the `flags` scope.
const FLAGS: Access = Access::Admin(Scope::Flags);
/// Minting and revoking sessions: the `sessions` scope.
const SESSIONS: Access = Access::Admin(Scope::Sessions);
/// Token management and profile writes: the admin token or Cloudflare Access only.
const ADMIN: Access = Access::Admin(Scope::Admin);
const SESSION: Access = Access::Session(Check::Fast);
const SESSION_D1: Access = Access::Session(Check::Authoritative);
/// Public; `?deep=1` needs the admin token.
const ADMIN_DEEP: Access = Access::AdminIf("deep");
const GATED: bool = true;
const OPEN: bool = false;

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    gated: bool,
    limit: Limit,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        access,
        gated,
        limit,
        handler,
    }
}

/// Every route of the API.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    //    method    path                             access      gate   rate limit         handler
    route("GET",    "/",                             Public,     OPEN,  Unlimited,         to!(health::index)),
    route("GET",    "/health",                       ADMIN_DEEP, OPEN,  Unlimited,         to!(health::get)),
    route("GET",    "/config",                       Public,     GATED, Group("config"),   to!(config::get)),
    route("GET",    "/flags/:name",                  Public,     GATED, Group("flags"),    to!(config::flag)),
    route("POST",   "/ofrep/v1/evaluate/flags/:key", Public,     GATED, Group("flags"),    to!(ofrep::single)),
    route("POST",   "/ofrep/v1/evaluate/flags",      Public,     GATED, Group("flags"),    to!(ofrep::bulk)),
    route("GET",    "/ofrep/v1/events",              Public,     GATED, Group("flags"),    to!(ofrep::events)),
    route("GET",    "/admin/config",                 READ,       OPEN,  Unlimited,         to!(config::admin_get)),
    route("PUT",    "/admin/config",                 FLAGS,      OPEN,  Unlimited,         config::replace),
    route("PATCH",  "/admin/config",                 FLAGS,      OPEN,  Unlimited,         config::patch),
    route("GET",    "/admin/config/history",         READ,       OPEN,  Unlimited,         to!(config::history)),
    route("GET",    "/admin/flags/usage",            READ,       OPEN,  Unlimited,         to!(config::usage)),
    route("POST",   "/admin/config/rollback",        FLAGS,      OPEN,  Unlimited,         config::rollback),
    // Admin only (scope `sessions`): the backend that mints logins is one client, so it is not
    // limited per address.
    route("POST",   "/sessions",                     SESSIONS,   GATED, Unlimited,         to!(sessions::create)),
    route("GET",    "/sessions/current",             SESSION,    GATED, Group("sessions"), to!(sessions::current)),
    route("DELETE", "/sessions/current",             SESSION_D1, GATED, Group("sessions"), to!(sessions::logout)),
    route("GET",    "/sessions",                     SESSION_D1, GATED, Group("sessions"), to!(sessions::list)),
    route("DELETE", "/sessions",                     SESSION_D1, GATED, Group("sessions"), to!(sessions::revoke_user)),
    route("DELETE", "/sessions/:handle",             SESSION_D1, GATED, Group("sessions"), to!(sessions::revoke_handle)),
    route("GET",    "/admin/sessions",               READ,       OPEN,  Unlimited,         to!(sessions::list)),
    route("DELETE", "/admin/users/:userId/sessions", SESSIONS,   OPEN,  Unlimited,         to!(sessions::revoke_user)),
    route("DELETE", "/admin/sessions/:handle",       SESSIONS,   OPEN,  Unlimited,         to!(sessions::revoke_handle)),
    route("GET",    "/prefs",                        SESSION,    GATED, Group("prefs"),    to!(prefs::get)),
    route("PATCH",  "/prefs",                        SESSION,    GATED, Group("prefs"),    to!(prefs::patch)),
    route("GET",    "/users/:id",                    Public,     GATED, Group("users"),    to!(users::get)),
    route("POST",   "/users/batch",                  Public,     GATED, Group("users"),    to!(users::batch)),
    route("PUT",    "/admin/users/:id",              ADMIN,      OPEN,  Unlimited,         to!(users::put)),
    route("DELETE", "/admin/users/:id",              ADMIN,      OPEN,  Unlimited,         to!(users::delete)),
    route("GET",    "/admin/tokens",                 ADMIN,      OPEN,  Unlimited,         to!(tokens::list)),
    route("POST",   "/admin/tokens",                 ADMIN,      OPEN,  Unlimited,         to!(tokens::create)),
    route("DELETE", "/admin/tokens/:name",           ADMIN,      OPEN,  Unlimited,         to!(tokens::revoke)),
];

/// A matched route and its decoded path parameters.
pub struct Found {
    /// The route.
    pub route: &'static Route,
    /// Its parameters by name, percent-decoded once.
    pub params: Vec<(&'static str, String)>,
}

/// How well `pattern` matches the path's segments: `None` if not at all, else the number of
/// literal segments (a literal beats a parameter: `/users/batch` over `/users/:id`).
fn score(pattern: &str, segments: &[&str]) -> Option<usize> {
    let parts = pattern.trim_start_matches('/').split('/');
    if parts.clone().count() != segments.len() {
        return None;
    }
    let mut literals = 0;
    for (part, seg) in parts.zip(segments) {
        if part.starts_with(':') {
            continue;
        }
        if part != *seg {
            return None;
        }
        literals += 1;
    }
    Some(literals)
}

/// The path's segments and the pattern that matches them best; 404 if none does.
fn pattern_of(path: &str) -> ApiResult<(Vec<&str>, &'static str)> {
    let rest = path.strip_prefix('/').ok_or(ApiError::NotFound)?;
    // A loop, not `collect`: each collecting adapter is code of its own in the Wasm.
    let mut segments = Vec::new();
    for segment in rest.split('/') {
        segments.push(segment);
    }
    // The best score wins; of equal ones, the later route (as `max_by_key` would have it).
    let mut best: Option<(usize, &'static str)> = None;
    for route in ROUTES {
        if let Some(s) = score(route.path, &segments) {
            if best.is_none_or(|(b, _)| s >= b) {
                best = Some((s, route.path));
            }
        }
    }
    let (_, pattern) = best.ok_or(ApiError::NotFound)?;
    Ok((segments, pattern))
}

/// The methods declared for `pattern`, as `Allow` lists them.
fn allow_of(pattern: &str) -> String {
    let mut allow = String::new();
    for route in ROUTES.iter().filter(|r| r.path == pattern) {
        if !allow.is_empty() {
            allow.push_str(", ");
        }
        allow.push_str(route.method);
    }
    allow
}

/// The methods declared for `path` (an `Allow` value), or 404 `not_found`.
pub fn methods(path: &str) -> ApiResult<String> {
    pattern_of(path).map(|(_, pattern)| allow_of(pattern))
}

/// The route for `method` and `path`: 404 `not_found` for an unknown path, 405 with `Allow`
/// for a known path and any other method (unknown ones included). `HEAD` finds `GET`.
pub fn find(method: &str, path: &str) -> ApiResult<Found> {
    let (segments, pattern) = pattern_of(path)?;
    let wanted = if method == "HEAD" { "GET" } else { method };
    let Some(route) = ROUTES
        .iter()
        .find(|r| r.path == pattern && r.method == wanted)
    else {
        return Err(ApiError::MethodNotAllowed(allow_of(pattern)));
    };
    let mut params = Vec::new();
    for (part, seg) in pattern.trim_start_matches('/').split('/').zip(&segments) {
        if let Some(name) = part.strip_prefix(':') {
            params.push((name, percent_decode(seg, false)));
        }
    }
    Ok(Found { route, params })
}

/// Whether edgestate serves `path` (with some method): for a Worker that mounts edgestate's
/// routes beside its own. The index `/` is left out: it describes edgestate as a Worker of
/// its own, and a Worker that mounts edgestate keeps its root.
pub fn serves(path: &str) -> bool {
    path != "/" && pattern_of(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(method: &str, path: &str) -> String {
        match find(method, path) {
            Err(ApiError::MethodNotAllowed(allow)) => allow,
            Err(e) => panic!("{method} {path}: {e}"),
            Ok(_) => panic!("{method} {path} was found"),
        }
    }

    #[test]
    fn health_and_unknown_paths() {
        assert_eq!(find("GET", "/health").unwrap().route.path, "/health");
        assert_eq!(allow("POST", "/health"), "GET");
        assert_eq!(find("GET", "/").unwrap().route.path, "/");
        for path in [
            "/nope",
            "//",
            "/health/",
            "/config/extra",
            "health",
            "",
            "/HEALTH",
        ] {
            assert!(
                matches!(find("GET", path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn every_route_in_the_table_is_found_by_its_own_method() {
        for r in ROUTES {
            let path = r
                .path
                .replace(":userId", "u1")
                .replace(":handle", "h1")
                .replace(":id", "u1")
                .replace(":name", "f")
                .replace(":key", "f");
            let found =
                find(r.method, &path).unwrap_or_else(|e| panic!("{} {path}: {e}", r.method));
            assert!(std::ptr::eq(found.route, r), "{} {path}", r.method);
        }
    }

    #[test]
    fn no_two_routes_share_method_and_path() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.method != b.method || a.path != b.path,
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn other_methods_get_405_with_allow_even_unknown_ones() {
        assert_eq!(allow("DELETE", "/config"), "GET");
        assert_eq!(allow("POST", "/admin/config"), "GET, PUT, PATCH");
        assert_eq!(allow("GET", "/ofrep/v1/evaluate/flags/x"), "POST");
        assert_eq!(allow("PUT", "/sessions/current"), "GET, DELETE");
        assert_eq!(allow("GET", "/users/batch"), "POST");
        assert_eq!(allow("GET", "/admin/users/u1"), "PUT, DELETE");
        assert_eq!(allow("GET", "/admin/sessions/h1"), "DELETE");
        assert_eq!(methods("/admin/users/u1").unwrap(), "PUT, DELETE");
        assert!(matches!(methods("/nope"), Err(ApiError::NotFound)));
        for method in ["PROPFIND", "QUERY", "PURGE", "TRACE", "OPTIONS", "get"] {
            assert_eq!(allow(method, "/config"), "GET", "{method}");
        }
    }

    #[test]
    fn head_is_answered_where_get_is() {
        assert_eq!(find("HEAD", "/health").unwrap().route.method, "GET");
        assert_eq!(find("HEAD", "/").unwrap().route.path, "/");
        assert_eq!(find("HEAD", "/users/x").unwrap().route.path, "/users/:id");
        assert_eq!(allow("HEAD", "/admin/config/rollback"), "POST");
    }

    #[test]
    fn parameters_are_percent_decoded_once() {
        let f = find("DELETE", "/admin/users/alice%40example.com/sessions").unwrap();
        assert_eq!(f.params, vec![("userId", "alice@example.com".to_string())]);
        let f = find("GET", "/users/%41").unwrap();
        assert_eq!(f.params, vec![("id", "A".to_string())]);
        let f = find("GET", "/users/%2541").unwrap();
        assert_eq!(f.params, vec![("id", "%41".to_string())]);
    }

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        assert_eq!(
            find("POST", "/users/batch").unwrap().route.path,
            "/users/batch"
        );
        assert_eq!(
            find("GET", "/users/batchy").unwrap().route.path,
            "/users/:id"
        );
    }

    #[test]
    fn gating_limits_and_privacy_come_from_the_table() {
        let r = |m, p| find(m, p).unwrap().route;
        assert!(!r("GET", "/health").gated);
        assert_eq!(r("GET", "/health").limit, Limit::Unlimited);
        assert_eq!(r("GET", "/flags/x").limit, Limit::Group("flags"));
        for path in ["/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/x"] {
            let ofrep = r("POST", path);
            assert_eq!((ofrep.access, ofrep.gated), (Access::Public, true));
            assert_eq!(ofrep.limit, Limit::Group("flags"));
        }
        assert_eq!(
            r("POST", "/sessions").limit,
            Limit::Unlimited,
            "admin-only mint"
        );
        assert_eq!(
            r("GET", "/sessions/current").limit,
            Limit::Group("sessions")
        );
        assert_eq!(r("GET", "/health").access, Access::AdminIf("deep"));
        assert!(!r("GET", "/").gated && r("GET", "/").limit == Limit::Unlimited);
        for route in ROUTES.iter().filter(|r| r.path.starts_with("/admin/")) {
            assert!(matches!(route.access, Access::Admin(_)), "{}", route.path);
            assert!(
                !route.gated && route.limit == Limit::Unlimited,
                "{}",
                route.path
            );
        }
        assert!(r("GET", "/prefs").is_private());
        assert!(!r("GET", "/config").is_private());
        assert!(serves("/users/x") && !serves("/elsewhere"));
        assert!(
            serves("/health") && !serves("/"),
            "the root stays the host Worker's"
        );
    }
}
