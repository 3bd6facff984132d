//! The request pipeline, in order: (the isolate's first request: the self-check) → CORS
//! preflight, or route table → maintenance gate → rate limit (and its `RateLimit` fields) →
//! access check (the cross-site cookie rule, then credentials) → body → handler → the
//! headers every response carries (CORS included; `WWW-Authenticate` on a 401) → one log
//! line.
//!
//! This is the only place that reads a platform request or builds a platform response;
//! below it, handlers get an [`Input`] and return a [`Reply`].

use crate::clock;
use crate::ctx::Ctx;
use crate::domain::health::{self, SchemaDb};
use crate::domain::ratelimit::{self, Decision};
use crate::domain::sessions;
use crate::error::{ApiError, ApiResult};
use crate::routes::input::{query_flag, Caller, HeaderSource, Input, MAX_BODY_BYTES};
use crate::routes::reply::Reply;
use crate::routes::{self, auth, cors, fields, Access, Found, Limit};
use crate::storage::d1::{self, SCHEMA_VERSION};
use crate::storage::meter::Meter;
use futures_util::StreamExt;
use std::rc::Rc;
use worker::{Context, Env, Headers, Request, Response};

/// A request's headers, read on demand.
struct RequestHeaders(Headers);

impl HeaderSource for RequestHeaders {
    fn header(&self, name: &str) -> Option<String> {
        self.0.get(name).ok().flatten()
    }
}

/// The request line: the method as sent (not mapped to a known one), path and query.
struct RequestLine {
    method: String,
    path: String,
    query: String,
}

impl RequestLine {
    fn of(req: &Request) -> Self {
        let url = req.inner().url();
        let (path, query) = split_url(&url);
        RequestLine {
            method: req.inner().method(),
            path: path.to_string(),
            query: query.to_string(),
        }
    }
}

/// Splits an absolute URL into its path and query (without `?`); the fragment is dropped.
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let target = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let target = target.split('#').next().unwrap_or(target);
    target.split_once('?').unwrap_or((target, ""))
}

/// Serves one request: the whole Worker.
pub async fn handle(req: Request, env: Env, runtime: Context) -> worker::Result<Response> {
    let started = clock::now();
    let meter = Rc::new(Meter::default());
    let line = RequestLine::of(&req);
    let ctx = Ctx::new(env, runtime, meter.clone(), started);
    if ctx.isolate.first_request() {
        self_check(&ctx);
    }
    let origin = req.headers().get("origin").ok().flatten();
    let (mut reply, private) = answer(&ctx, req, &line, origin.as_deref()).await;
    reply
        .headers
        .extend(cors::headers(ctx.origins(), origin.as_deref()));
    let status = reply.status;
    let response = to_response(reply, &meter, private, line.method == "HEAD");
    let took = clock::now().ms_since(started);
    crate::log::info(&format!("{} {} {status} {took}ms", line.method, line.path));
    response
}

/// The reply, and whether it is private: a CORS preflight's, else the route's.
async fn answer(
    ctx: &Ctx,
    req: Request,
    line: &RequestLine,
    origin: Option<&str>,
) -> (Reply, bool) {
    let asked = req
        .headers()
        .get("access-control-request-method")
        .ok()
        .flatten();
    if cors::is_preflight(ctx.origins(), &line.method, origin, asked.as_deref()) {
        return (preflight(ctx, &line.path, origin), false);
    }
    match routes::find(&line.method, &line.path) {
        Ok(found) => {
            let private = found.route.is_private();
            (serve(ctx, found, req, line.query.clone()).await, private)
        }
        Err(e) => (Reply::error(&e), false),
    }
}

/// A CORS preflight, answered from the route table: no storage, no rate limit.
fn preflight(ctx: &Ctx, path: &str, origin: Option<&str>) -> Reply {
    match routes::methods(path) {
        Ok(methods) => cors::preflight(ctx.origins(), origin, &methods),
        Err(e) => Reply::error(&e),
    }
}

/// The isolate's first request logs each problem of the set-up once, naming its fix. The D1
/// schema is checked after the response (one or two queries, once per isolate).
fn self_check(ctx: &Ctx) {
    let setup = ctx.setup();
    for warning in health::setup_warnings(&setup) {
        crate::log::warn(&warning);
    }
    if setup.d1.bound {
        ctx.defer(|d| async move {
            let schema = d.d1.schema().await;
            match health::schema_warning(d1::BINDING, SCHEMA_VERSION, &schema) {
                Some(warning) => crate::log::warn(&warning),
                None => crate::log::info(&format!(
                    "self-check: edgestate {}, D1 schema complete",
                    health::VERSION
                )),
            }
        });
    }
}

/// Runs a found route; every failure becomes the contract's error reply (5xx causes logged).
async fn serve(ctx: &Ctx, found: Found, req: Request, query: String) -> Reply {
    let mut limit_headers = Vec::new();
    let path = found.route.path;
    let token_given = {
        let h = RequestHeaders(req.headers().clone());
        let cookies_count = matches!(found.route.access, Access::Session(_));
        let (authorization, cookie) = (h.header("authorization"), h.header("cookie"));
        auth::token_given(authorization.as_deref(), cookie.as_deref(), cookies_count)
    };
    let result = run(ctx, found, req, query, &mut limit_headers).await;
    let mut reply = result.unwrap_or_else(|e| {
        if let Some(cause) = e.log_cause() {
            crate::log::error(&format!("{} {path}: {cause}", e.code()));
        }
        Reply::error(&e)
    });
    reply.headers.extend(limit_headers);
    if reply.status == 401 {
        let challenge = fields::www_authenticate(token_given);
        reply.headers.push(("WWW-Authenticate", challenge));
    }
    reply
}

async fn run(
    ctx: &Ctx,
    found: Found,
    mut req: Request,
    query: String,
    limit_headers: &mut Vec<(&'static str, String)>,
) -> ApiResult<Reply> {
    let route = found.route;
    let headers = RequestHeaders(req.headers().clone());
    if route.gated && ctx.config().await.maintenance_mode {
        return Err(ApiError::Maintenance);
    }
    if let Limit::Group(group) = route.limit {
        let decision = rate_limit(ctx, group, &headers).await?;
        let config = ctx.config().await;
        let (window, legacy) = (
            config.rate_limit_window_seconds,
            config.legacy_rate_limit_headers,
        );
        *limit_headers = fields::rate_limit(group, &decision, window, legacy);
        decision.into_result()?;
    }
    let caller = check_access(ctx, route, &headers, &query).await?;
    let body = match route.has_body() {
        true => Some(read_body(&mut req, &headers).await?),
        false => None,
    };
    let input = Input {
        params: found.params,
        query,
        body,
        caller,
        headers: Box::new(headers),
    };
    (route.handler)(ctx, input).await
}

/// Counts the request in its group: strict groups in D1, the others approximately in KV.
async fn rate_limit(ctx: &Ctx, group: &str, headers: &RequestHeaders) -> ApiResult<Decision> {
    let client = ratelimit::client(headers.header("cf-connecting-ip").as_deref());
    let config = ctx.config().await;
    if !config.is_strict(group) {
        let st = ctx.isolate.approx_state();
        return ratelimit::check_approx(ctx.kv(), st, &config, group, &client, ctx.now).await;
    }
    let strict = ratelimit::check_strict(ctx.d1(), &config, group, &client, ctx.now).await?;
    if let Some(before) = strict.prune_before {
        ctx.defer(move |d| async move { ratelimit::prune(&d.d1, before).await });
    }
    Ok(strict.decision)
}

/// Enforces the route's access before any body is read: first the cross-site rule (an
/// unsafe request resting on the session cookie from another site: 403), then the admin
/// token (always, or when the query sets the route's flag), or a session.
async fn check_access(
    ctx: &Ctx,
    route: &routes::Route,
    headers: &RequestHeaders,
    query: &str,
) -> ApiResult<Option<Caller>> {
    let authorization = headers.header("authorization");
    if route.access != Access::Public {
        let (cookie, site) = (headers.header("cookie"), headers.header("sec-fetch-site"));
        let (a, c) = (authorization.as_deref(), cookie.as_deref());
        if auth::cross_site_cookie_write(route.method, a, c, site.as_deref()) {
            return Err(ApiError::Forbidden);
        }
    }
    let access = match route.access {
        Access::AdminIf(flag) if query_flag(query, flag)? => Access::Admin,
        Access::AdminIf(_) => Access::Public,
        other => other,
    };
    match access {
        Access::Public | Access::AdminIf(_) => Ok(None),
        Access::Admin => {
            auth::require_admin(authorization.as_deref(), ctx.admin_token().as_deref())?;
            Ok(None)
        }
        Access::Session(check) => {
            let cookie = headers.header("cookie");
            let id = auth::session_id(authorization.as_deref(), cookie.as_deref())?;
            let session =
                sessions::authenticate(&ctx.sessions().await, ctx.now, &id, check).await?;
            Ok(Some(Caller {
                session_id: id,
                session,
            }))
        }
    }
}

/// Reads a body of at most 64 KiB. A `Content-Length` over the limit is refused before
/// reading; a body without one is read chunk by chunk and refused as soon as it passes it.
async fn read_body(req: &mut Request, headers: &RequestHeaders) -> ApiResult<Vec<u8>> {
    let declared = headers
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::InvalidJson(format!("unreadable body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
    }
    Ok(body)
}

/// The platform response, with `Server-Timing`, `X-Content-Type-Options` and, on private
/// routes, `Cache-Control: no-store`. A `HEAD` gets the headers without the body.
fn to_response(reply: Reply, meter: &Meter, private: bool, head: bool) -> worker::Result<Response> {
    let body = if head { None } else { reply.body };
    let mut response = match body {
        Some(body) => Response::ok(body)?,
        None => Response::empty()?,
    }
    .with_status(reply.status);
    let headers = response.headers_mut();
    if !matches!(reply.status, 204 | 304) {
        headers.set("Content-Type", "application/json")?;
    }
    for (name, value) in &reply.headers {
        headers.append(name, value)?;
    }
    headers.set("Server-Timing", &meter.server_timing())?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    if private {
        headers.set("Cache-Control", "no-store")?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_path_and_query() {
        assert_eq!(split_url("http://127.0.0.1/health"), ("/health", ""));
        assert_eq!(split_url("https://h:8787/a/b?x=1&y=2"), ("/a/b", "x=1&y=2"));
        assert_eq!(split_url("http://h/a?x=1#frag"), ("/a", "x=1"));
        assert_eq!(split_url("http://h/a#f?x"), ("/a", ""));
        assert_eq!(split_url("http://h"), ("/", ""));
        assert_eq!(split_url("http://h/?"), ("/", ""));
    }
}
