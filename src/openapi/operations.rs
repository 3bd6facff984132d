//! One declaration per route: what the route table cannot say about it (its parameters'
//! and bodies' schemas, its success status and headers, the errors only it can answer).
//! Method, path, access, gating and rate limiting come from [`ROUTES`](crate::routes::ROUTES).
//!
//! **Adding a route?** Add its `Op` here (same method and path as in `ROUTES`), any new
//! schema to `schemas.rs`, then run `npm run openapi` to rewrite `docs/openapi.json`.

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A `:name` segment of the path.
    Path,
    /// A query-string parameter.
    Query,
    /// A request header.
    Header,
    /// Query-string parameters of any name (an object of name → value, exploded).
    QueryObject,
}

/// A path or query parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, as in the path pattern or the query.
    pub name: &'static str,
    /// Path or query.
    pub place: Place,
    /// The component schema of its value (`schemas.rs`).
    pub schema: &'static str,
    /// What it means.
    pub description: &'static str,
}

/// The declaration of one route.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// The route's method, as in `ROUTES`.
    pub method: &'static str,
    /// The route's path pattern, as in `ROUTES`.
    pub path: &'static str,
    /// The tag it is listed under.
    pub tag: &'static str,
    /// A unique `operationId`.
    pub id: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its path and query parameters.
    pub params: &'static [Param],
    /// The component schema of the JSON request body, if it takes one.
    pub body: Option<&'static str>,
    /// The success status.
    pub status: u16,
    /// The component schema of the success body (`None`: no body, as with 204).
    pub response: Option<&'static str>,
    /// Component headers of the success response beyond those every response carries.
    pub headers: &'static [&'static str],
    /// Statuses beyond those its access, body, gating and limit imply (304 and 412 carry
    /// `ETag`).
    pub errors: &'static [u16],
    /// The component schema of its 400 and 404 bodies when they are not the API's `Error`
    /// (the OpenFeature routes answer in their protocol's shape).
    pub error_schema: Option<&'static str>,
}

const NONE: Op = Op {
    method: "",
    path: "",
    tag: "",
    id: "",
    summary: "",
    params: &[],
    body: None,
    status: 200,
    response: None,
    headers: &[],
    errors: &[],
    error_schema: None,
};

const fn path(name: &'static str, schema: &'static str, description: &'static str) -> Param {
    Param {
        name,
        place: Place::Path,
        schema,
        description,
    }
}

const fn query(name: &'static str, schema: &'static str, description: &'static str) -> Param {
    Param {
        name,
        place: Place::Query,
        schema,
        description,
    }
}

const fn header(name: &'static str, schema: &'static str, description: &'static str) -> Param {
    Param {
        name,
        place: Place::Header,
        schema,
        description,
    }
}

const IF_MATCH: Param = header(
    "If-Match",
    "IfMatch",
    "Only if the current version is one of these (`\"3\"`, or `*`); else 412 and nothing changes",
);

/// Every route's declaration, in the order of `ROUTES`.
pub static OPERATIONS: &[Op] = &[
    Op {
        method: "GET",
        path: "/",
        tag: "health",
        id: "getIndex",
        summary: "The API's name, version and entry points: touches no storage, never gated or limited",
        response: Some("Index"),
        ..NONE
    },
    Op {
        method: "GET",
        path: "/health",
        tag: "health",
        id: "getHealth",
        summary: "Liveness and version (no storage, never gated or limited); `deep=1`: the admin's set-up report",
        params: &[query(
            "deep",
            "DeepFlag",
            "`1` or `true`: report the bindings, the config in KV and the D1 schema (admin token required); `0`, `false` or empty: plain liveness",
        )],
        response: Some("HealthAnswer"),
        ..NONE
    },
    Op {
        method: "GET",
        path: "/config",
        tag: "config",
        id: "getConfig",
        summary:
            "The app config, defaults filled in (the isolate's copy, re-read from KV every 5 s)",
        response: Some("Config"),
        headers: &["ETag"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/flags/:name",
        tag: "config",
        id: "getFlag",
        summary: "One feature flag, evaluated against the query as context; an unknown flag is off",
        params: &[
            path("name", "FlagName", "The flag's name"),
            Param {
                name: "context",
                place: Place::QueryObject,
                schema: "QueryContext",
                description: "`targetingKey` and string attributes to evaluate against",
            },
        ],
        response: Some("FlagView"),
        ..NONE
    },
    Op {
        method: "POST",
        path: "/ofrep/v1/evaluate/flags/:key",
        tag: "flags",
        id: "evaluateFlag",
        summary: "OpenFeature (OFREP): evaluate one flag against a context",
        params: &[path("key", "OfrepKey", "The flag's name")],
        body: Some("OfrepRequest"),
        response: Some("OfrepEvaluation"),
        errors: &[404],
        error_schema: Some("OfrepFailure"),
        ..NONE
    },
    Op {
        method: "POST",
        path: "/ofrep/v1/evaluate/flags",
        tag: "flags",
        id: "evaluateFlags",
        summary: "OpenFeature (OFREP): evaluate every flag against a context (ETag; 304 with If-None-Match)",
        params: &[header("If-None-Match", "EntityTags", "The ETag of an answer already held")],
        body: Some("OfrepRequest"),
        response: Some("OfrepBulk"),
        headers: &["ETag"],
        errors: &[304],
        error_schema: Some("OfrepFailure"),
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/config",
        tag: "config",
        id: "getAdminConfig",
        summary: "The current config version, read from D1 (ETag: its version)",
        response: Some("Config"),
        headers: &["ETag"],
        errors: &[503],
        ..NONE
    },
    Op {
        method: "PUT",
        path: "/admin/config",
        tag: "config",
        id: "replaceConfig",
        summary: "Replace the whole config (missing fields take their defaults): a new version",
        params: &[IF_MATCH],
        body: Some("ConfigDocument"),
        response: Some("Config"),
        headers: &["ETag"],
        errors: &[412, 503],
        ..NONE
    },
    Op {
        method: "PATCH",
        path: "/admin/config",
        tag: "config",
        id: "patchConfig",
        summary:
            "Merge into the stored config: maps key by key (null removes a key), the rest replaces",
        params: &[IF_MATCH],
        body: Some("ConfigPatch"),
        response: Some("Config"),
        headers: &["ETag"],
        errors: &[412, 503],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/config/history",
        tag: "config",
        id: "getConfigHistory",
        summary: "The audit trail of config writes, newest first (applied and refused)",
        params: &[
            query("cursor", "HistoryCursor", "Where the previous page ended (empty: the start)"),
            query("limit", "HistoryLimit", "Page size, 1-100 (empty: 20)"),
        ],
        response: Some("ConfigHistoryPage"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/admin/config/rollback",
        tag: "config",
        id: "rollbackConfig",
        summary: "Publish an earlier version's document again, as a new version",
        params: &[IF_MATCH],
        body: Some("Rollback"),
        response: Some("Config"),
        headers: &["ETag"],
        errors: &[404, 412, 503],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/sessions",
        tag: "sessions",
        id: "createSession",
        summary: "Mint a session for a user (deadlines from the config's session fields); the id is shown once and never stored",
        body: Some("NewSession"),
        status: 201,
        response: Some("MintedSession"),
        headers: &["SetSessionCookie"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/sessions/current",
        tag: "sessions",
        id: "getCurrentSession",
        summary: "The caller's session (KV first, D1 on a miss)",
        response: Some("Session"),
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/sessions/current",
        tag: "sessions",
        id: "logout",
        summary: "Revoke the caller's session (checked in D1) and clear the cookie",
        status: 204,
        headers: &["ClearSessionCookie"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/sessions",
        tag: "sessions",
        id: "listSessions",
        summary: "Page through active sessions, newest first (D1)",
        params: &[
            query(
                "userId",
                "UserIdFilter",
                "Only this user's sessions (empty: all users)",
            ),
            query(
                "cursor",
                "Cursor",
                "Where the previous page ended (empty: the start)",
            ),
            query("limit", "PageLimit", "Page size, 1-1000 (empty: 100)"),
        ],
        response: Some("SessionPage"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/admin/users/:userId/sessions",
        tag: "sessions",
        id: "revokeUserSessions",
        summary: "Revoke every active session of one user",
        params: &[path("userId", "UserId", "Whose sessions to revoke")],
        response: Some("Revoked"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/admin/sessions/:handle",
        tag: "sessions",
        id: "revokeSession",
        summary: "Revoke one session, named by its handle from the listing (idempotent)",
        params: &[path(
            "handle",
            "SessionHandle",
            "The session's handle from `GET /admin/sessions`",
        )],
        status: 204,
        errors: &[404, 503],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/prefs",
        tag: "prefs",
        id: "getPrefs",
        summary: "The caller's preferences, defaults filled in (Prefs-Version: the version served)",
        params: &[header(
            "Prefs-Version",
            "PrefsVersion",
            "The `Prefs-Version` a PATCH answered: serve that version or a newer one, in any location",
        )],
        response: Some("Prefs"),
        headers: &["Prefs-Version"],
        errors: &[400],
        ..NONE
    },
    Op {
        method: "PATCH",
        path: "/prefs",
        tag: "prefs",
        id: "patchPrefs",
        summary: "Change any subset of the caller's preferences (one atomic D1 upsert)",
        body: Some("PrefsPatch"),
        response: Some("Prefs"),
        headers: &["Prefs-Version"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/users/:id",
        tag: "users",
        id: "getUser",
        summary: "A profile through the stale-while-revalidate cache",
        params: &[path("id", "ProfileId", "The profile's id")],
        response: Some("User"),
        headers: &["X-Cache"],
        errors: &[404],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/users/batch",
        tag: "users",
        id: "getUsers",
        summary: "Up to 100 profiles: one KV bulk read, one D1 query for the misses",
        body: Some("UserBatchRequest"),
        response: Some("UserBatch"),
        ..NONE
    },
    Op {
        method: "PUT",
        path: "/admin/users/:id",
        tag: "users",
        id: "putUser",
        summary: "Create or rename a profile in D1 and drop its cached copy",
        params: &[path("id", "ProfileId", "The profile's id")],
        body: Some("ProfileWrite"),
        response: Some("User"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/admin/users/:id",
        tag: "users",
        id: "deleteUser",
        summary: "Delete an account: its sessions (revoked), preferences and profile, in D1 and in this location's KV (idempotent)",
        params: &[path("id", "UserId", "The account's userId (also its profile id)")],
        status: 204,
        errors: &[503],
        ..NONE
    },
];
