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
    /// What a caller needs to know beyond the summary: behaviour, consistency, limits
    /// (docs/API.md has the full prose).
    pub description: &'static str,
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
    /// (status, component schema) of the error bodies that are not the API's `Error` (the
    /// OpenFeature routes answer 400 and 404 in their protocol's shapes).
    pub error_bodies: &'static [(u16, &'static str)],
}

const NONE: Op = Op {
    method: "",
    path: "",
    tag: "",
    id: "",
    summary: "",
    description: "",
    params: &[],
    body: None,
    status: 200,
    response: None,
    headers: &[],
    errors: &[],
    error_bodies: &[],
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

/// The session listings' paging, `GET /sessions` and `GET /admin/sessions` alike.
const SESSION_CURSOR: Param = query(
    "cursor",
    "Cursor",
    "Where the previous page ended (empty: the start)",
);
const SESSION_LIMIT: Param = query("limit", "PageLimit", "Page size, 1-1000 (empty: 100)");

const IF_MATCH: Param = header(
    "If-Match",
    "IfMatch",
    "Only if the current version is one of these (`\"3\"`, or `*`); else 412 and nothing changes. A malformed value (`3`, unquoted) is 400 naming the header",
);

/// Every route's declaration, in the order of `ROUTES`.
pub static OPERATIONS: &[Op] = &[
    Op {
        method: "GET",
        path: "/",
        tag: "health",
        id: "getIndex",
        description: "What this is and where to start: the name, this build's version, the entry points and the documentation files of the source repository. Touches no storage; never gated, never rate limited. A Worker that mounts edgestate's routes as a library keeps its own `/`.",
        summary: "The API's name, version and entry points: touches no storage, never gated or limited",
        response: Some("Index"),
        ..NONE
    },
    Op {
        method: "GET",
        path: "/health",
        tag: "health",
        id: "getHealth",
        description: "Without `deep` (or with `0`, `false` or an empty value): liveness and this build's version, for anyone, touching no storage. With `deep=1` or `deep=true` and the admin token: what this location sees of the set-up now (each binding, the config in KV, the D1 schema against the one the code needs, the admin token, ignored `ALLOWED_ORIGINS` entries), always 200, with `status: degraded` when anything is wrong. Any other `deep` value is 400 before credentials are looked at. Never gated or limited; every answer is `no-store`.",
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
        description: "What a client needs of the config, for anyone: the maintenance state, the rate limits (each group's limit and the window), and each flag's value for an empty context (a boolean flag's state; a flag with variants, the value of the variant an empty context gets). Never a flag's rules, rollout, other variants or enabled state, nor the operator's settings (strict groups, cache and session lifetimes): `GET /admin/config` has the whole document. `ETag` names the config's version (0 before the first admin write). Served from the isolate's copy of KV `config:app`, re-read at most every 5 s: a write is seen at once by the isolate that made it, by other isolates within 5 s, and by other locations within 5 s plus KV's propagation (about 60 s). If KV cannot be read, the last good copy (or the defaults) is served.",
        summary: "The public view of the app config: flag values, limits, maintenance (the isolate's copy, re-read from KV every 5 s)",
        response: Some("PublicConfig"),
        headers: &["ETag"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/flags/:name",
        tag: "config",
        id: "getFlag",
        description: "Evaluates the flag against the query string as context: `targetingKey` and string attributes, each named like a flag. A boolean or unknown flag answers `enabled` only (an unknown flag is off); a flag with variants adds `value`, `variant` and `reason` (and `errorCode` with reason `ERROR`, answering the default variant). Reads only the isolate's copy of the config, as `GET /config` does.",
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
        description: "The OpenFeature Remote Evaluation Protocol's single evaluation, for OpenFeature SDKs. The body's `context` carries an optional string `targetingKey`; its other members are attributes. What the protocol defines is answered in its shapes: 400 with `PARSE_ERROR` (not JSON), `INVALID_CONTEXT` or `TARGETING_KEY_MISSING`, 404 with `FLAG_NOT_FOUND`; what the pipeline refuses first (413, 429, 503) keeps this API's `Error`. Reads only the isolate's copy of the config; a `targetingKey` gets the same variant in every isolate and location.",
        summary: "OpenFeature (OFREP): evaluate one flag against a context",
        params: &[path("key", "OfrepKey", "The flag's name")],
        body: Some("OfrepRequest"),
        response: Some("OfrepEvaluation"),
        errors: &[404],
        error_bodies: &[(400, "OfrepFailure"), (404, "OfrepNotFound")],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/ofrep/v1/evaluate/flags",
        tag: "flags",
        id: "evaluateFlags",
        description: "Every flag of the config, evaluated against one context (OFREP bulk evaluation): each entry is an evaluation or, for a flag that cannot be evaluated for this context, a failure in the protocol's shape. The answer names the change notification stream (`eventStreams`, `GET /ofrep/v1/events`) and carries an `ETag` (a hash of the answer itself), and a request whose `If-None-Match` names it gets 304 without a body. A bad body is 400 `{errorCode, errorDetails}`, the protocol's shape; so is a malformed `If-None-Match` (`GENERAL`, the details naming the header).",
        summary: "OpenFeature (OFREP): evaluate every flag against a context (ETag; 304 with If-None-Match)",
        params: &[
            header("If-None-Match", "EntityTags", "The ETag of an answer already held"),
            query("flagConfigEtag", "FlagConfigEtag", "The `etag` of the event that prompted this request: when it names a newer config version than this isolate serves, the isolate re-reads KV first (at most once a second); anything else is ignored"),
            query("flagConfigLastModified", "FlagConfigLastModified", "The `lastModified` of the event that prompted this request: accepted and ignored (events carry none)"),
        ],
        body: Some("OfrepRequest"),
        response: Some("OfrepBulk"),
        headers: &["ETag"],
        errors: &[304],
        error_bodies: &[(400, "OfrepBulkFailure")],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/ofrep/v1/events",
        tag: "flags",
        id: "flagEvents",
        description: "The change notification stream bulk answers name in `eventStreams` (OFREP ADR-0008): server-sent events telling the client to evaluate again (`refetchEvaluation`) when the served config's version changes, with that version as the event id and its entity tag as `etag` (send it back as `flagConfigEtag`). A change is announced within KV's propagation to this location plus 10 s (the isolate's 5 s config refresh and the stream's 5 s tick). Versions only go forward on a stream. The stream ends after 10 minutes; clients reconnect with `Last-Event-ID`.",
        summary: "OpenFeature (OFREP): server-sent events announcing config changes",
        params: &[header("Last-Event-ID", "LastEventId", "The last event id this client received: a config version")],
        response: Some("EventStream"),
        headers: &["Cache-Control"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/config",
        tag: "config",
        id: "getAdminConfig",
        description: "The config as D1, the authority for writes, holds it now, with `ETag` naming its version: the version the next write is based on (send it back as `If-Match`). `GET /config` may lag behind it. 503 `unavailable` when D1 fails.",
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
        description: "Writes a new version whose fields are the body's; missing fields take their defaults, so `{\"maintenanceMode\": false}` is a complete document. The Worker also checks what the schema cannot state (a flag's cross-field rules, `renewAfterSeconds` below `sessionIdleSeconds`, the stored config at most 1.9 MB of JSON) and names the field it refuses. With `If-Match` the write happens only while that version is current (else 412, recorded in the history); without it the last writer wins. The version is in D1 before the answer, then goes to KV as `GET /config` describes; a refused request changes nothing.",
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
        description: "Merges the body into the current version: in `featureFlags` and `rateLimits` each key is set, or removed by `null` (a flag is replaced whole); every other field given replaces the stored one (`strictRateLimits` as a whole). Removing `rateLimits.default` brings back 100. Without `If-Match`, a PATCH that loses a race with another write is merged again onto the newer version, so concurrent PATCHes all apply; with it the loser gets 412. Checks, history and visibility as for `PUT /admin/config`.",
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
        description: "Every config write, newest first: applied ones with their version, and refused ones (a stale `If-Match`; `version` null). `actor` is who wrote (`admin` for the admin token; nothing derived from the token is stored); `change` is the request body. Page with `cursor` (from the previous page) and `limit`; empty values mean not given. Read from D1.",
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
        method: "GET",
        path: "/admin/flags/usage",
        tag: "config",
        id: "getFlagUsage",
        description: "When each flag was last evaluated, to find stale flags: by name for flags evaluated one by one (OFREP single evaluation, `GET /flags/:name`), and the last bulk evaluation, which evaluates every flag. Evaluation touches no storage; each isolate writes what it evaluated to D1 at most once a minute, so a time may be up to `writtenEverySeconds` late. Read from D1.",
        summary: "When each flag was last evaluated (stale flags)",
        response: Some("FlagUsage"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/admin/config/rollback",
        tag: "config",
        id: "rollbackConfig",
        description: "Publishes the document of an earlier version again, as a new version with its own `ETag`; 404 when there is no such version. `If-Match` as for `PUT /admin/config`; the write is recorded in the history with action `rollback`.",
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
        description: "Mints a session for a user: 256 random bits, shown once in this answer and in the `__Host-session` cookie, never stored (D1 and KV keep only its SHA-256). The deadlines follow the config: `expiresAt` after `sessionAbsoluteSeconds`, `idleExpiresAt` after `sessionIdleSeconds`. Admin only (your backend mints every login), so not rate limited; closed by the maintenance gate. The session is in D1 before the answer; its KV copy may take up to a minute to reach other locations, where a KV miss falls back to D1.",
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
        description: "The session the caller presents (bearer token or `__Host-session` cookie; the bearer wins). Read from KV, else D1 (then written back to KV). A session past either deadline is refused, and one revoked anywhere is refused everywhere within 10 s, whatever KV holds. Using a session moves its idle deadline at most once per `renewAfterSeconds`.",
        summary: "The caller's session (KV first, D1 on a miss)",
        response: Some("Session"),
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/sessions/current",
        tag: "sessions",
        id: "logout",
        description: "Revokes the caller's session, checked in D1 (a stale KV copy cannot be used), then deletes its KV copy and clears the cookie: refused at once in this isolate, everywhere within 10 s. A session already revoked is 401. If KV still refuses the delete after a retry the answer is 503, although D1 already refuses the session.",
        summary: "Revoke the caller's session (checked in D1) and clear the cookie",
        status: 204,
        headers: &["ClearSessionCookie"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/sessions",
        tag: "sessions",
        id: "listMySessions",
        description: "The caller's own active sessions, newest first, read from D1 (the caller's session is checked there too): created, deadlines (`idleExpiresAt` moves with use, at most once per `renewAfterSeconds`), the `handle` that `DELETE /sessions/{handle}` takes, and `current: true` on the session this request was made with. Session ids and their hashes never appear. Paged as `GET /admin/sessions`; a `userId` in the query is ignored (always the caller's).",
        summary: "The caller's own sessions, the current one marked (D1)",
        params: &[SESSION_CURSOR, SESSION_LIMIT],
        response: Some("SessionPage"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/sessions",
        tag: "sessions",
        id: "endMyOtherSessions",
        description: "Ends every active session of the caller's except the one this request was made with (\"sign out everywhere else\"), after a password change, say: revoked in D1, then their KV copies deleted, refused everywhere within 10 s; answers how many it ended. The current session and other users' are untouched. If a KV delete still fails the answer is 503: D1 has revoked them all.",
        summary: "End all of the caller's other sessions",
        response: Some("Revoked"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/sessions/:handle",
        tag: "sessions",
        id: "endMySession",
        description: "Ends one of the caller's own sessions (another device, say), named by the `handle` of `GET /sessions`: revoked in D1, then its KV copy deleted, refused everywhere within 10 s. A handle that is not one of the caller's sessions is 404, whoever's it is. Ending the current session this way signs the caller out, but the cookie is cleared only by `DELETE /sessions/current`. Idempotent as `DELETE /admin/sessions/{handle}`.",
        summary: "End one of the caller's own sessions, by its handle",
        params: &[path(
            "handle",
            "SessionHandle",
            "The session's handle from `GET /sessions`",
        )],
        status: 204,
        errors: &[404, 503],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/sessions",
        tag: "sessions",
        id: "listSessions",
        description: "The sessions active now, newest first, read from D1; optionally one user's. Each carries its `handle` for `DELETE /admin/sessions/{handle}`; session ids and their hashes never appear. Paging is keyset based, so no session appears on two pages; empty query values mean not given.",
        summary: "Page through active sessions, newest first (D1)",
        params: &[
            query(
                "userId",
                "UserIdFilter",
                "Only this user's sessions (empty: all users)",
            ),
            SESSION_CURSOR,
            SESSION_LIMIT,
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
        description: "Revokes every active session of one user in D1, then deletes their KV copies (each retried once), and answers how many it revoked (sessions already revoked or expired are not counted). Refused at once in this isolate, everywhere within 10 s. If a KV delete still fails the answer is 503: D1 has revoked them all.",
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
        description: "Revokes the session the listing names by `handle` (neither its id nor its hash: those are 400). Idempotent: a repeated revocation is 204 again and keeps the first revocation time; a handle no session has is 404. Marked revoked in D1, then its KV copy deleted; if that delete fails the answer is 503 and a retry removes the copy.",
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
        description: "The caller's preferences with every field present, and the version served in `Prefs-Version` (0 before the first write). Send back the `Prefs-Version` a `PATCH` answered to be served that version or a newer one in any isolate and location (read your writes). Without it: the isolate's own newest write, else KV, else D1; other locations see a write within 2 s plus KV's propagation. D1 is read from the nearest replica, or, with `Prefs-Bookmark`, from one that has applied that write; a replica behind the `Prefs-Version` asked for is passed over for the primary.",
        summary: "The caller's preferences, defaults filled in (Prefs-Version: the version served)",
        params: &[
            header(
                "Prefs-Version",
                "PrefsVersion",
                "The `Prefs-Version` a PATCH answered: serve that version or a newer one, in any location",
            ),
            header(
                "Prefs-Bookmark",
                "PrefsBookmark",
                "The `Prefs-Bookmark` a PATCH answered: read D1 from a replica that has applied that write (or the primary), not from one that has not",
            ),
        ],
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
        description: "Changes any subset of `theme`, `language` and `notifications` (`{}` changes nothing) in one atomic D1 upsert, so concurrent PATCHes of different fields all survive and no acknowledged write is lost. Answers the full preferences, the new `Prefs-Version` and the write's D1 bookmark (`Prefs-Bookmark`, where the runtime has D1 sessions). The KV copy is refreshed after the write, at most once a second per user. A refused request changes nothing.",
        summary: "Change any subset of the caller's preferences (one atomic D1 upsert)",
        body: Some("PrefsPatch"),
        response: Some("Prefs"),
        headers: &["Prefs-Version", "Prefs-Bookmark"],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/users/:id",
        tag: "users",
        id: "getUser",
        description: "A profile through the stale-while-revalidate cache; `X-Cache` says how it was served: `HIT` (the KV copy is younger than `cacheTtlSeconds`), `STALE` (up to twice that old: served, and refreshed from D1 in the background; also when D1 fails and any copy exists) or `MISS` (read from D1 and cached). A profile is never served more than twice `cacheTtlSeconds` after it was read from D1. 404 when D1 has no such profile; an isolate remembers that for 30 s (a `PUT` or `DELETE` of the profile through it forgets it at once).",
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
        description: "Up to 100 distinct profiles in one request: one KV bulk read for all of them and at most one D1 query for the misses; copies are written back in the background. Every id asked for is in the answer, null where there is no profile. No `X-Cache`: the entries can differ. Duplicate ids are 400.",
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
        description: "Creates or renames a profile in D1, then deletes its KV copy, so the next `GET /users/{id}` in this location reads D1; other locations may serve their cached copy until it is twice `cacheTtlSeconds` old.",
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
        description: "Deletes an account, in order: D1 revokes every unexpired session of the user, their KV copies are deleted, one atomic D1 batch deletes the sessions, preferences and profile rows, then the KV copies of the preferences and profile go. Idempotent: 204 also when nothing was left to delete. A 503 means a store failed part-way: repeating the DELETE finishes it. Other locations may serve their KV copies for up to about 60 s.",
        summary: "Delete an account: its sessions (revoked), preferences and profile, in D1 and in this location's KV (idempotent)",
        params: &[path("id", "UserId", "The account's userId (also its profile id)")],
        status: 204,
        errors: &[503],
        ..NONE
    },
    Op {
        method: "GET",
        path: "/admin/tokens",
        tag: "tokens",
        id: "listTokens",
        description: "Every scoped admin token, newest first: name, scope, when and by whom it was created; never the token or its hash. Read from D1. The admin token or a Cloudflare Access identity only: a scoped token is 403.",
        summary: "The scoped admin tokens (D1)",
        response: Some("TokenList"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "POST",
        path: "/admin/tokens",
        tag: "tokens",
        id: "createToken",
        description: "Creates a scoped admin token for automation: `read` opens every admin read (config, history, session listing, deep health), `flags` also the config writes, `sessions` also minting and revoking sessions; none opens token management or profile writes (403). The token is in the answer this once; D1 keeps its SHA-256. A name already in use, or a 101st token, is 400. Every isolate knows it within 2 s of its first use. The config history names its writes `token:<name>`. The admin token or a Cloudflare Access identity only.",
        summary: "Create a scoped admin token (shown once)",
        body: Some("NewToken"),
        status: 201,
        response: Some("MintedToken"),
        errors: &[503],
        ..NONE
    },
    Op {
        method: "DELETE",
        path: "/admin/tokens/:name",
        tag: "tokens",
        id: "revokeToken",
        description: "Revokes the token of this name (deleted from D1): refused at once by the isolate that revoked it, by every other within 10 s. 404 when there is none. The admin token or a Cloudflare Access identity only.",
        summary: "Revoke a scoped admin token",
        params: &[path("name", "FlagName", "The token's name")],
        status: 204,
        errors: &[404, 503],
        ..NONE
    },
];
