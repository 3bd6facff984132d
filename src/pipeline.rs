//! The request pipeline, in order: (the isolate's first request: the self-check) → CORS
//! preflight, or route table → media type (a body must be declared JSON: 415) →
//! maintenance gate → access check (the cross-site cookie rule,
//! then credentials; a client with too many failed authentications is refused first) →
//! rate limit (and its `RateLimit` fields) → body → handler → the headers every response
//! carries (CORS included; `WWW-Authenticate` on a 401) → a log line at `info`.
//!
//! Access comes before the rate limit so that a request refused for access never costs a
//! rate-limit write (a strict group's lease is a D1 write): floods without valid
//! credentials are refused by the access check alone, and past
//! [`ratelimit::MAX_FAILURES`] a minute per client without even looking the credentials up.
//!
//! This is the only place that reads a platform request or builds a platform response;
//! below it, handlers get an [`Input`] and return a [`Reply`]. It works on the runtime's own
//! `Request` and `Response` objects and reads only what a request needs (method, URL, the
//! headers its route and the CORS set-up ask for, the body of routes that take one): no
//! `request.cf`, no copies.

use crate::clock::{self, RuntimeTimer};
use crate::ctx::Ctx;
use crate::domain::access::{self, AccessPolicy};
use crate::domain::config::AppConfig;
use crate::domain::error::DomainError;
use crate::domain::events::{self, EventStream, Step};
use crate::domain::health::{self, SchemaDb};
use crate::domain::ids::SessionId;
use crate::domain::ratelimit::{self, Decision};
use crate::domain::sessions::{self, Check, FeedAge, SessionView};
use crate::domain::time::Millis;
use crate::domain::time::Timer;
use crate::domain::tokens::{self, Scope};
use crate::error::{ApiError, ApiResult};
use crate::log::{self, Field, Level};
use crate::routes::input::{query_flag, Caller, HeaderSource, Input};
use crate::routes::reply::Reply;
use crate::routes::{self, auth, cors, fields, Access, Found, Limit};
use crate::storage::access::AccessCerts;
use crate::storage::d1::{self, SCHEMA_VERSION};
use crate::storage::meter::{KvOp, Meter};
use std::cell::OnceCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;
use worker::{Context, Env, Request, Response};

/// A request's headers, read on demand: each read is one call into JS, and a request that
/// needs none reads none.
#[derive(Clone)]
struct RequestHeaders {
    req: web_sys::Request,
}

impl RequestHeaders {
    fn of(req: &web_sys::Request) -> Self {
        RequestHeaders {
            req: Clone::clone(req),
        }
    }
}

#[wasm_bindgen(inline_js = "
export function requestHeader(request, name) {
  try {
    return request.headers.get(name);
  } catch {
    return null;
  }
}")]
extern "C" {
    /// `request.headers.get(name)`: the value, or `null` (also where `Headers.get` throws,
    /// on a name that is not a header name: caught in JS, without `catch` glue).
    #[wasm_bindgen(js_name = requestHeader)]
    fn request_header(request: &web_sys::Request, name: &str) -> Option<String>;
}

impl HeaderSource for RequestHeaders {
    fn header(&self, name: &str) -> Option<String> {
        request_header(&self.req, name)
    }
}

/// The request line: the method as sent (not mapped to a known one), path and query.
struct RequestLine {
    method: String,
    path: String,
    query: String,
}

impl RequestLine {
    fn of(req: &web_sys::Request) -> Self {
        let url = req.url();
        let (path, query) = split_url(&url);
        RequestLine {
            method: req.method(),
            path: path.to_string(),
            query: query.to_string(),
        }
    }
}

/// Splits an absolute URL into its path and query (without `?`); the fragment is dropped.
fn split_url(url: &str) -> (&str, &str) {
    let scheme_end = url.as_bytes().windows(3).position(|w| w == b"://");
    // `get`, not indexing: an index into a `str` links `core`'s slicing panic and its
    // `Debug` formatting of chars (Unicode tables).
    let after_scheme = scheme_end.and_then(|i| url.get(i + 3..)).unwrap_or(url);
    let target = after_scheme
        .find('/')
        .and_then(|i| after_scheme.get(i..))
        .unwrap_or("/");
    let target = target.split('#').next().unwrap_or(target);
    target.split_once('?').unwrap_or((target, ""))
}

/// Serves one request: the whole Worker, for another workers-rs Worker that mounts
/// edgestate's routes beside its own.
pub async fn handle(req: Request, env: Env, runtime: Context) -> worker::Result<Response> {
    // `Clone::clone` copies the handle; `web_sys::Request::clone` would tee the body.
    let raw = Clone::clone(req.inner());
    let response = answer(raw, env, runtime).await?;
    Ok(Response::from(response))
}

/// The `fetch` entry's answer: the `Response` itself when the request needed no storage
/// round trip (health, config and flags from the isolate's copy, refusals), else a
/// `Promise` of it. Polling once before handing the rest to the promise executor spares
/// those requests a promise, a microtask queue and a closure. A response that could not be
/// built becomes a rejected promise, which the runtime reports and answers with a 500.
#[cfg(feature = "entry")]
pub fn respond(req: web_sys::Request, env: Env, runtime: Context) -> JsValue {
    use std::future::Future;
    use std::task::{Poll, Waker};
    let mut response = Box::pin(answer(req, env, runtime));
    let mut cx = std::task::Context::from_waker(Waker::noop());
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => response.into(),
        Poll::Ready(Err(e)) => js_sys::Promise::reject(&e).into(),
        Poll::Pending => {
            crate::ctx::promise(Box::pin(async move { response.await.map(JsValue::from) })).into()
        }
    }
}

/// The pipeline from the runtime's request to its response.
async fn answer(
    req: web_sys::Request,
    env: Env,
    runtime: Context,
) -> Result<web_sys::Response, JsValue> {
    let started = clock::now();
    log::init(|| crate::ctx::text_var(&env, "LOG_LEVEL"));
    let meter = Rc::new(Meter::default());
    let line = RequestLine::of(&req);
    #[cfg(feature = "panic-probe")]
    panic_probe(&line.path);
    let ctx = Ctx::new(env, runtime, meter.clone(), started);
    #[cfg(feature = "panic-probe")]
    panic_probe_after_await(&ctx, &line.path).await;
    if ctx.isolate.first_request() {
        self_check(&ctx);
    }
    let headers = RequestHeaders::of(&req);
    // With CORS off (no ALLOWED_ORIGINS) the `Origin` header changes nothing: not read.
    let origin = match ctx.origins().is_empty() {
        true => None,
        false => headers.header("origin"),
    };
    let kept = Clone::clone(&req);
    let (mut reply, route) = route_reply(&ctx, req, headers, &line, origin.as_deref()).await;
    discard_unread_body(&kept).await;
    reply
        .headers
        .append(&mut cors::headers(ctx.origins(), origin.as_deref()));
    if log::enabled(Level::Info) {
        log_request(&line, route.map(|r| r.path), reply.status, started, &meter);
    }
    let private = route.is_some_and(|r| r.is_private());
    let head = line.method == "HEAD";
    let stream = match reply.events.take() {
        Some(events) if !head => {
            let pipe = event_pipe(reply.body.as_deref().unwrap_or_default());
            let writer = js_sys::Reflect::get_u32(&pipe, 1).unwrap_or_default();
            ctx.defer(|d| stream_events(d, writer, events));
            js_sys::Reflect::get_u32(&pipe, 0).ok()
        }
        _ => None,
    };
    to_response(reply, &meter, private, head, stream)
}

/// Sends an event stream's events until its lifetime ends or its client has gone (a write
/// fails): each tick, at the same instant for every stream of the isolate, reads the
/// isolate's config copy (KV at most every 5 s per isolate, by one stream of the tick).
async fn stream_events(d: crate::ctx::Deferred, writer: JsValue, mut events: EventStream) {
    loop {
        RuntimeTimer
            .sleep(events::until_next_tick(clock::now()))
            .await;
        let now = events::tick_of(clock::now());
        let mut config = match d.isolate.config.settled(now) {
            Some(config) => config,
            None => crate::domain::config::current(&d.kv, &d.isolate.config, now).await,
        };
        if d.isolate.config.settle_due(&config, now) {
            // A schedule entry took effect: recorded as a version, then announced.
            crate::domain::versions::settle(&d.config_stores(), now).await;
            config = crate::domain::config::current(&d.kv, &d.isolate.config, now).await;
        }
        match events.tick(config.version, now) {
            Step::End => break,
            Step::Send(text) if text.is_empty() => {}
            Step::Send(text) => {
                if JsFuture::from(send_events(&writer, &text)).await.is_err() {
                    return;
                }
            }
        }
    }
    end_events(&writer);
}

#[wasm_bindgen(inline_js = "
const encoder = new TextEncoder();
export function eventPipe(first) {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  writer.write(encoder.encode(first)).catch(() => {});
  return [readable, writer];
}
export function sendEvents(writer, text) { return writer.write(encoder.encode(text)); }
export function endEvents(writer) { writer.close().catch(() => {}); }")]
extern "C" {
    /// A stream for an event-stream response, `first` written to it: `[readable, writer]`.
    #[wasm_bindgen(js_name = eventPipe)]
    fn event_pipe(first: &str) -> JsValue;
    /// Writes `text`; the promise rejects once the client has gone.
    #[wasm_bindgen(js_name = sendEvents)]
    fn send_events(writer: &JsValue, text: &str) -> js_sys::Promise;
    /// Ends the stream.
    #[wasm_bindgen(js_name = endEvents)]
    fn end_events(writer: &JsValue);
}

#[wasm_bindgen(inline_js = "
export function bodyDeclaredJson(request) {
  const type = request.headers.get('content-type');
  if (type === null) {
    const length = request.headers.get('content-length');
    return length === null || length.trim() === '0';
  }
  return /^\\s*application\\/(?:json|[^\\s;]+\\+json)\\s*(?:;|$)/i.test(type);
}")]
extern "C" {
    /// Whether a request's body is declared JSON, as every body this API reads must be (else
    /// 415 `unsupported_media_type`, before any storage work): `Content-Type` is
    /// `application/json` or an `application/*+json` type (`application/merge-patch+json`),
    /// parameters allowed (`; charset=utf-8`), in any case. `text/plain` and the form types
    /// are what a page on another site can send without a CORS preflight, so they never reach
    /// a handler. Without `Content-Type`, only a request without a body passes (no
    /// `Content-Length`, or `0`). Read in JS, where the headers are: one call, no strings
    /// copied into the Wasm.
    #[wasm_bindgen(js_name = bodyDeclaredJson)]
    fn body_declared_json(request: &web_sys::Request) -> bool;
}

#[wasm_bindgen(inline_js = "
export function discardBody(request) {
  return request.body && !request.bodyUsed ? request.body.cancel().catch(() => {}) : null;
}")]
extern "C" {
    /// Cancels a request body nothing read: a promise, or `null` when there is none.
    #[wasm_bindgen(js_name = discardBody)]
    fn discard_body(request: &web_sys::Request) -> JsValue;
}

/// A request answered without reading its body (a 401, 413, 429 or 503 before the body is
/// read) has it cancelled before the answer goes out: otherwise workerd may close the
/// connection while the client is still sending, and the client sees a reset instead of the
/// answer. Requests without a body, or whose body was read, pay one property check.
async fn discard_unread_body(req: &web_sys::Request) {
    let pending = discard_body(req);
    if !pending.is_null() {
        let _ = JsFuture::from(js_sys::Promise::from(pending)).await;
    }
}

/// `GET /__panic/after-await` panics in a build with the `panic-probe` feature (tests only)
/// once a KV read has come back: in a future the runtime resumed from its microtask queue,
/// not in the call the runtime made into the Wasm.
#[cfg(feature = "panic-probe")]
#[allow(clippy::panic)]
async fn panic_probe_after_await(ctx: &Ctx, path: &str) {
    if path == "/__panic/after-await" {
        let key = crate::domain::kv::KvKey::new("panic:", "probe");
        if let Ok(key) = key {
            let _ = crate::domain::kv::Kv::get(ctx.kv(), &key).await;
        }
        panic!("panic probe after an await");
    }
}

/// `GET /__panic` panics in a build with the `panic-probe` feature (tests only).
#[cfg(feature = "panic-probe")]
#[allow(clippy::panic)]
fn panic_probe(path: &str) {
    if path == "/__panic" {
        panic!("panic probe");
    }
}

/// The reply, and the route that made it: a CORS preflight's (no route), else the route's.
async fn route_reply(
    ctx: &Ctx,
    req: web_sys::Request,
    headers: RequestHeaders,
    line: &RequestLine,
    origin: Option<&str>,
) -> (Reply, Option<&'static routes::Route>) {
    if line.method == "OPTIONS" && origin.is_some() {
        let asked = headers.header("access-control-request-method");
        if cors::is_preflight(ctx.origins(), &line.method, origin, asked.as_deref()) {
            return (preflight(ctx, &line.path, origin), None);
        }
    }
    match routes::find(&line.method, &line.path) {
        Ok(found) => {
            let route = found.route;
            let query = line.query.clone();
            (serve(ctx, found, req, headers, query).await, Some(route))
        }
        Err(e) => (Reply::error(&e), None),
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

/// The `info` line of a request: its route, status, time and storage work.
fn log_request(
    line: &RequestLine,
    route: Option<&str>,
    status: u16,
    started: Millis,
    meter: &Meter,
) {
    let took = clock::now().ms_since(started);
    // The path's first 200 characters.
    let end: usize = line.path.chars().take(200).map(char::len_utf8).sum();
    let path = line.path.get(..end).unwrap_or_default();
    let count = |n: u32| Field::Int(i64::from(n));
    let fields = [
        ("method", Field::Text(&line.method)),
        ("route", route.map_or(Field::Null, Field::Text)),
        ("path", Field::Text(path)),
        ("status", Field::Int(i64::from(status))),
        ("ms", Field::Int(took)),
        ("kvReads", count(meter.kv_count(KvOp::Read))),
        ("kvWrites", count(meter.kv_count(KvOp::Write))),
        ("kvDeletes", count(meter.kv_count(KvOp::Delete))),
        ("d1Queries", count(meter.d1_count())),
    ];
    let msg = format!("{} {} {status}", line.method, route.unwrap_or(&line.path));
    log::event(Level::Info, &msg, &fields);
}

/// Runs a found route; every failure becomes the contract's error reply (5xx causes logged).
async fn serve(
    ctx: &Ctx,
    found: Found,
    req: web_sys::Request,
    headers: RequestHeaders,
    query: String,
) -> Reply {
    let mut limit_headers = Vec::new();
    let (path, route) = (found.route.path, found.route);
    let kept = headers.clone();
    let result = Box::pin(run(ctx, found, req, headers, query, &mut limit_headers)).await;
    let mut reply = result.unwrap_or_else(|e| {
        if let Some(cause) = e.log_cause() {
            let fields = [
                ("code", Field::Text(e.code())),
                ("route", Field::Text(path)),
            ];
            log::event(
                Level::Error,
                &format!("{} {path}: {cause}", e.code()),
                &fields,
            );
        }
        Reply::error(&e)
    });
    reply.headers.append(&mut limit_headers);
    if reply.status == 401 {
        let cookies_count = matches!(route.access, Access::Session(_));
        let (authorization, cookie) = (kept.header("authorization"), kept.header("cookie"));
        let token_given =
            auth::token_given(authorization.as_deref(), cookie.as_deref(), cookies_count);
        let challenge = fields::www_authenticate(token_given);
        reply.headers.push(("WWW-Authenticate", challenge));
    }
    reply
}

async fn run(
    ctx: &Ctx,
    found: Found,
    req: web_sys::Request,
    headers: RequestHeaders,
    query: String,
    limit_headers: &mut Vec<(&'static str, String)>,
) -> ApiResult<Reply> {
    let route = found.route;
    if route.has_body() && !body_declared_json(&req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    if route.gated && ctx.config().await.maintenance_mode {
        return Err(ApiError::Maintenance);
    }
    let client = OnceCell::new();
    let client = || {
        client
            .get_or_init(|| ratelimit::client(headers.header("cf-connecting-ip").as_deref()))
            .as_str()
    };
    let admitted = Box::pin(check_access(ctx, (route, &req), &headers, &query, client)).await?;
    if let Limit::Group(group) = route.limit {
        let config = ctx.config().await;
        let decision = Box::pin(rate_limit(ctx, &config, group, client())).await?;
        let (window, legacy) = (
            config.rate_limit_window_seconds,
            config.legacy_rate_limit_headers,
        );
        *limit_headers = fields::rate_limit(group, &decision, window, legacy);
        decision.into_result()?;
    }
    let body = match route.has_body() {
        true => Some(read_body(&req, &headers, route.body_limit()).await?),
        false => None,
    };
    let input = Input {
        params: found.params,
        query,
        body,
        caller: admitted.caller,
        admin: admitted.admin,
        headers: Box::new(headers),
    };
    (route.handler)(ctx, input).await
}

/// Counts the request in its group: strict groups by leases from D1, the others
/// approximately in KV.
async fn rate_limit(
    ctx: &Ctx,
    config: &AppConfig,
    group: &str,
    client: &str,
) -> ApiResult<Decision> {
    if !config.is_strict(group) {
        let st = ctx.isolate.approx_state();
        return Ok(ratelimit::check_approx(ctx.kv(), st, config, group, client, ctx.now).await?);
    }
    let leases = &ctx.isolate.leases;
    let strict = ratelimit::check_strict(ctx.d1(), leases, config, group, client, ctx.now).await?;
    if let Some(before) = strict.prune_before {
        ctx.defer(move |d| async move { ratelimit::prune(&d.d1, before).await });
    }
    Ok(strict.decision)
}

/// Enforces the route's access before any body is read: first the cross-site rule (an
/// unsafe request resting on the session cookie from another site: 403), then the admin
/// token (always, or when the query sets the route's flag), or a session. Headers are read
/// only where they decide something (the cross-site rule only concerns unsafe methods).
async fn check_access<'c>(
    ctx: &Ctx,
    (route, req): (&routes::Route, &web_sys::Request),
    headers: &RequestHeaders,
    query: &str,
    client: impl Fn() -> &'c str,
) -> ApiResult<Admitted> {
    let authorization = || headers.header("authorization");
    let unsafe_method = matches!(route.method, "POST" | "PUT" | "PATCH" | "DELETE");
    if route.access != Access::Public && unsafe_method {
        let (cookie, site) = (headers.header("cookie"), headers.header("sec-fetch-site"));
        let (a, c) = (authorization(), cookie);
        // This Worker's own origin: the request URL's scheme and authority.
        let foreign_origin = || {
            let Some(origin) = headers.header("origin") else {
                return false;
            };
            let (origin, url) = (origin.trim(), req.url());
            let own = url
                .get(..origin.len())
                .is_some_and(|o| o.eq_ignore_ascii_case(origin))
                && url.as_bytes().get(origin.len()) == Some(&b'/');
            !own && !ctx.origins().allows(origin)
        };
        let (method, site) = (route.method, site.as_deref());
        if auth::cross_site_cookie_write(method, a.as_deref(), c.as_deref(), site, foreign_origin) {
            return Err(ApiError::Forbidden);
        }
    }
    let access = match route.access {
        Access::AdminIf(flag) if query_flag(query, flag)? => Access::Admin(Scope::Read),
        Access::AdminIf(_) => Access::Public,
        other => other,
    };
    match access {
        Access::Public | Access::AdminIf(_) => Ok(NOBODY),
        Access::Admin(needed) => {
            let admin = check_admin(ctx, headers, needed, client).await?;
            Ok(Admitted { admin, ..NOBODY })
        }
        Access::Session(check) => {
            let (authorization, cookie) = (authorization(), headers.header("cookie"));
            let id = auth::session_id(authorization.as_deref(), cookie.as_deref())?;
            let session = check_session(ctx, &id, check, client()).await?;
            refresh_revocations(ctx);
            let caller = Caller {
                session_id: id,
                session,
            };
            Ok(Admitted {
                caller: Some(caller),
                ..NOBODY
            })
        }
    }
}

/// Who a request was admitted as.
struct Admitted {
    /// The session, on session routes.
    caller: Option<Caller>,
    /// The Cloudflare Access identity, on admin routes entered through Access.
    admin: Option<String>,
}

const NOBODY: Admitted = Admitted {
    caller: None,
    admin: None,
};

/// An admin request from `client` to a route that needs `needed`: the admin token; a scoped
/// token (its name returned as `token:<name>`; 403 when its scope does not allow the route);
/// or where Cloudflare Access is configured and the request has no `Authorization`, an Access
/// assertion (its identity returned). A refused credential counts as a failed authentication
/// (see [`refused_admin`]).
async fn check_admin<'c>(
    ctx: &Ctx,
    headers: &RequestHeaders,
    needed: Scope,
    client: impl Fn() -> &'c str,
) -> ApiResult<Option<String>> {
    let given = headers.header("authorization");
    if given.is_none() {
        let assertion = headers.header("cf-access-jwt-assertion");
        if let (Some(jwt), Some(policy)) = (assertion, ctx.access_policy()) {
            return check_access_jwt(ctx, &policy, &jwt, client).await.map(Some);
        }
    }
    let checked = auth::require_admin(given.as_deref(), ctx.admin_token().as_deref());
    let scoped = auth::bearer(given.as_deref()).filter(|t| t.starts_with(tokens::PREFIX));
    match (checked, scoped) {
        (Ok(()), _) => return Ok(None),
        (Err(_), Some(token)) => {
            let cache = &ctx.isolate.tokens;
            match tokens::identify(ctx.d1(), cache, token, ctx.now).await {
                Ok((name, scope)) if scope.allows(needed) => {
                    return Ok(Some(String::from("token:") + &name))
                }
                Ok(_) => return Err(ApiError::Forbidden),
                Err(DomainError::Unauthorized) => {}
                Err(e) => return Err(e.into()),
            }
        }
        (Err(e), None) if given.is_none() => return Err(e),
        (Err(_), None) => {}
    }
    Err(refused_admin(ctx, "admin token refused", client()))
}

/// A Cloudflare Access assertion, from `client`: the identity it proves. A refused one counts
/// as a failed authentication, as a wrong admin token does.
async fn check_access_jwt<'c>(
    ctx: &Ctx,
    policy: &AccessPolicy,
    jwt: &str,
    client: impl Fn() -> &'c str,
) -> ApiResult<String> {
    let keys = AccessCerts {
        url: policy.certs_url(),
    };
    match access::identify(&keys, policy, jwt, ctx.now).await {
        Err(DomainError::Unauthorized) => {
            Err(refused_admin(ctx, "Access assertion refused", client()))
        }
        found => Ok(found?),
    }
}

/// A refused admin credential counts as a failed authentication and is logged at the default
/// level with the client, never the credential: at most [`ratelimit::MAX_FAILURES`] lines a
/// minute per client and isolate (then 429, not logged).
fn refused_admin(ctx: &Ctx, what: &str, client: &str) -> ApiError {
    let refusal = failed_authentication(ctx, client, ApiError::Unauthorized);
    if matches!(refusal, ApiError::Unauthorized) {
        log::event(Level::Warn, what, &[("client", Field::Text(client))]);
    }
    refusal
}

/// Resolves a session id for `client`. The lookup counts as a failed authentication until
/// it succeeds, so that concurrent guesses are counted as they arrive rather than as D1
/// answers them; a client over its allowance is still served on a session KV holds, but
/// nothing it presents is looked up in D1.
async fn check_session(
    ctx: &Ctx,
    id: &SessionId,
    check: Check,
    client: &str,
) -> ApiResult<SessionView> {
    let failures = &ctx.isolate.failures;
    let blocked = failures.blocked(client, ctx.now);
    let check = match (blocked, check) {
        (Some(retry_after), Check::Authoritative) => {
            return Err(ApiError::RateLimited { retry_after })
        }
        (Some(_), _) => Check::CopyOnly,
        (None, check) => {
            failures.note(client, ctx.now);
            check
        }
    };
    let found = sessions::authenticate(&ctx.sessions().await, ctx.now, id, check).await;
    if blocked.is_none() && !matches!(found, Err(DomainError::Unauthorized)) {
        failures.forgive(client, ctx.now);
    }
    match (found, blocked) {
        (Ok(session), _) => Ok(session),
        (Err(DomainError::Unauthorized), Some(retry_after)) => {
            Err(ApiError::RateLimited { retry_after })
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// Counts a failed authentication of `client` (credentials given, not accepted): past
/// [`ratelimit::MAX_FAILURES`] in a minute it is refused with 429 until the minute ends.
fn failed_authentication(ctx: &Ctx, client: &str, refusal: ApiError) -> ApiError {
    let failures = &ctx.isolate.failures;
    if let Some(retry_after) = failures.blocked(client, ctx.now) {
        return ApiError::RateLimited { retry_after };
    }
    failures.note(client, ctx.now);
    refusal
}

/// Reads the revocation feed in the background once this isolate's last read is due for
/// renewal, so that requests in steady traffic never wait for it (one read at a time).
fn refresh_revocations(ctx: &Ctx) {
    if ctx.isolate.sessions.feed_age(ctx.now) != FeedAge::Due {
        return;
    }
    ctx.defer_once("sessions:revocation-feed", |d| async move {
        let (checks, now) = (&d.isolate.sessions, clock::now());
        if let Err(e) = sessions::read_feed(&d.d1, checks, now).await {
            crate::log::warn_cause("revocation feed read failed", &e.0);
            return;
        }
        if let Err(e) = sessions::prune(&d.d1, checks, now).await {
            crate::log::warn_cause("pruning sessions failed", &e.0);
        }
    });
}

#[wasm_bindgen(inline_js = "
export async function readBody(request, limit, declared) {
  if (!request.body) return new Uint8Array(0);
  if (declared) {
    const body = new Uint8Array(await request.arrayBuffer());
    return body.byteLength > limit ? null : body;
  }
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}")]
extern "C" {
    /// The request body as one `Uint8Array` (`null` past `limit` bytes): one call and one
    /// promise. With a `Content-Length` within the limit (`declared`), the runtime's HTTP
    /// parser reads exactly that many bytes, so one `arrayBuffer()` takes it whole; without
    /// one, it is read chunk by chunk and given up as soon as it passes the limit.
    #[wasm_bindgen(js_name = readBody)]
    fn read_body_js(request: &web_sys::Request, limit: u32, declared: bool) -> js_sys::Promise;
}

/// Reads a body of at most `limit` bytes (64 KiB but for config writes). A `Content-Length`
/// over the limit is refused before reading; one within it is read in one piece; a body
/// without one is read chunk by chunk and refused as soon as it passes the limit.
async fn read_body(
    req: &web_sys::Request,
    headers: &RequestHeaders,
    limit: usize,
) -> ApiResult<Vec<u8>> {
    let declared = headers
        .header("content-length")
        .and_then(|v| crate::domain::json::decimal(v.trim()));
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let body = JsFuture::from(read_body_js(req, limit as u32, declared.is_some()))
        .await
        .map_err(|_| ApiError::InvalidJson("unreadable body".into()))?;
    // `readBody` answers a `Uint8Array`, or `null` past the limit.
    match body.is_null() {
        true => Err(ApiError::PayloadTooLarge),
        false => Ok(body.unchecked_into::<Uint8Array>().to_vec()),
    }
}

#[wasm_bindgen(inline_js = "
export function response(status, text, flags, stream) {
  const end = text.indexOf('\\n\\n');
  let at = text.indexOf('\\n');
  const headers = { 'Server-Timing': text.slice(0, at), 'X-Content-Type-Options': 'nosniff' };
  if (flags & 1) headers['Content-Type'] = 'application/json';
  if (flags & 2) headers['Cache-Control'] = 'no-store';
  let repeated;
  while (at < end) {
    const next = text.indexOf('\\n', at + 1);
    const colon = text.indexOf(':', at);
    const name = text.slice(at + 1, colon), value = text.slice(colon + 1, next);
    if (name in headers) (repeated ??= []).push([name, value]);
    else headers[name] = value;
    at = next;
  }
  const body = flags & 8 ? stream : flags & 4 ? text.slice(end + 2) : null;
  const response = new Response(body, { status, headers });
  for (const [name, value] of repeated ?? []) response.headers.append(name, value);
  return response;
}")]
extern "C" {
    /// `new Response(body, {status, headers})` in one call into JS. `text` is the
    /// `Server-Timing` value, the route's own headers as `name:value` lines, a blank line and
    /// the body; `flags` adds `Content-Type: application/json` (1), `Cache-Control: no-store`
    /// (2) and the body (4), or makes `stream` the body (8). Headers go in as a plain object,
    /// which the runtime reads fastest; a repeated name is appended after.
    #[wasm_bindgen(catch)]
    fn response(
        status: u16,
        text: &str,
        flags: u8,
        stream: Option<JsValue>,
    ) -> Result<web_sys::Response, JsValue>;
}

/// The platform response, with `Server-Timing`, `X-Content-Type-Options` and, on private
/// routes, `Cache-Control: no-store`, and `Content-Type: application/json` unless the reply
/// names its own. A `HEAD` gets the headers without the body; an event stream's body is
/// `stream`.
fn to_response(
    reply: Reply,
    meter: &Meter,
    private: bool,
    head: bool,
    stream: Option<JsValue>,
) -> Result<web_sys::Response, JsValue> {
    let body = if head || stream.is_some() {
        None
    } else {
        reply.body
    };
    let mut text = meter.server_timing();
    for (name, value) in &reply.headers {
        text.push('\n');
        text.push_str(name);
        text.push(':');
        text.push_str(value);
    }
    text.push_str("\n\n");
    text.push_str(body.as_deref().unwrap_or_default());
    let own_type = reply
        .headers
        .iter()
        .any(|(name, _)| *name == "Content-Type");
    let flags = u8::from(!matches!(reply.status, 204 | 304) && !own_type)
        | u8::from(private) << 1
        | u8::from(body.is_some()) << 2
        | u8::from(stream.is_some()) << 3;
    response(reply.status, &text, flags, stream)
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
