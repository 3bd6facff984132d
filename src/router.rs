//! Path matching shared by the resource modules. Each module owns its routes (a `resolve`
//! function from path segments to its own `Endpoint` enum); this file only splits the path,
//! asks each module in turn, and turns "known path, other method" into 405 with `Allow`.

use crate::error::{ApiError, ApiResult};
use crate::{config, prefs, sessions, users};

/// Every route of the API, grouped by the module that serves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Health,
    Config(config::Endpoint),
    Sessions(sessions::Endpoint),
    Prefs(prefs::Endpoint),
    Users(users::Endpoint),
}

impl Route {
    /// The rate-limit group: the first path segment, for every route but `/health` and
    /// `/admin/*`.
    pub fn rate_limit_group(&self, path: &str) -> Option<String> {
        if !self.behind_middleware(path) {
            return None;
        }
        path.trim_start_matches('/')
            .split('/')
            .next()
            .map(str::to_string)
    }

    /// The maintenance gate and rate limiting apply to every route but `/health` and
    /// `/admin/*` (so operators can switch maintenance off while it is on).
    pub fn behind_middleware(&self, path: &str) -> bool {
        !matches!(self, Route::Health) && !path.starts_with("/admin/")
    }

    /// Routes that require the admin token.
    pub fn is_admin(&self) -> bool {
        match self {
            Route::Health | Route::Prefs(_) => false,
            Route::Config(e) => e.is_admin(),
            Route::Sessions(e) => e.is_admin(),
            Route::Users(e) => e.is_admin(),
        }
    }

    /// Responses that carry per-user or admin data and must never be cached.
    pub fn is_private(&self) -> bool {
        self.is_admin() || matches!(self, Route::Sessions(_) | Route::Prefs(_))
    }
}

/// Picks the endpoint for `method` among those a path allows, or 405 with `Allow`.
pub fn pick<E>(method: &str, allow: &'static str, options: Vec<(&str, E)>) -> ApiResult<E> {
    options
        .into_iter()
        .find(|(m, _)| *m == method)
        .map(|(_, e)| e)
        .ok_or(ApiError::MethodNotAllowed(allow))
}

/// Resolves a request line to a route: 404 for an unknown path, 405 for a known path with
/// another method.
pub fn resolve(method: &str, path: &str) -> ApiResult<Route> {
    let segs: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if segs == ["health"] {
        return pick(method, "GET", vec![("GET", Route::Health)]);
    }
    if let Some(r) = config::resolve(method, &segs) {
        return r.map(Route::Config);
    }
    if let Some(r) = sessions::resolve(method, &segs) {
        return r.map(Route::Sessions);
    }
    if let Some(r) = prefs::resolve(method, &segs) {
        return r.map(Route::Prefs);
    }
    if let Some(r) = users::resolve(method, &segs) {
        return r.map(Route::Users);
    }
    Err(ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_unknown_paths() {
        assert_eq!(resolve("GET", "/health"), Ok(Route::Health));
        assert_eq!(
            resolve("POST", "/health"),
            Err(ApiError::MethodNotAllowed("GET"))
        );
        assert_eq!(resolve("GET", "/nope"), Err(ApiError::NotFound));
        assert_eq!(resolve("GET", "/"), Err(ApiError::NotFound));
        assert_eq!(resolve("GET", "/health/"), Err(ApiError::NotFound));
        assert_eq!(resolve("GET", "/config/extra"), Err(ApiError::NotFound));
    }

    #[test]
    fn every_contract_route_resolves() {
        let routes = [
            ("GET", "/config"),
            ("GET", "/flags/newCheckout"),
            ("PUT", "/admin/config"),
            ("PATCH", "/admin/config"),
            ("POST", "/sessions"),
            ("GET", "/sessions/current"),
            ("DELETE", "/sessions/current"),
            ("GET", "/admin/sessions"),
            ("DELETE", "/admin/users/u1/sessions"),
            ("GET", "/prefs"),
            ("PATCH", "/prefs"),
            ("GET", "/users/u1"),
            ("POST", "/users/batch"),
            ("PUT", "/admin/users/u1"),
        ];
        for (m, p) in routes {
            assert!(resolve(m, p).is_ok(), "{m} {p}");
        }
    }

    #[test]
    fn wrong_method_gives_allow() {
        assert_eq!(
            resolve("DELETE", "/config").unwrap_err().headers()[0].1,
            "GET"
        );
        assert_eq!(
            resolve("GET", "/admin/config").unwrap_err().headers()[0].1,
            "PUT, PATCH"
        );
        assert_eq!(
            resolve("PUT", "/sessions/current").unwrap_err().headers()[0].1,
            "GET, DELETE"
        );
        assert_eq!(
            resolve("GET", "/users/batch").unwrap_err().headers()[0].1,
            "POST"
        );
    }

    #[test]
    fn groups_and_privacy() {
        let g = |m, p| resolve(m, p).unwrap().rate_limit_group(p);
        assert_eq!(g("GET", "/health"), None);
        assert_eq!(g("GET", "/config"), Some("config".into()));
        assert_eq!(g("GET", "/flags/x"), Some("flags".into()));
        assert_eq!(g("GET", "/sessions/current"), Some("sessions".into()));
        assert_eq!(
            g("POST", "/sessions"),
            Some("sessions".into()),
            "admin-authenticated, but not under /admin/"
        );
        assert_eq!(g("PATCH", "/admin/config"), None);
        assert_eq!(g("POST", "/users/batch"), Some("users".into()));
        assert!(resolve("GET", "/prefs").unwrap().is_private());
        assert!(!resolve("GET", "/config").unwrap().is_private());
    }
}
