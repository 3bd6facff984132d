//! The request pipeline: route → maintenance gate → rate limit → resource handler, then the
//! headers every response carries (`Server-Timing`, `X-Content-Type-Options`, `Cache-Control`
//! on private routes) and one log line. Everything `worker`-specific about a request lives
//! here or in `http.rs`.

use crate::clock::now_ms;
use crate::config::{self, AppConfig};
use crate::error::{ApiError, ApiResult};
use crate::http::header;
use crate::meter::Meter;
use crate::ratelimit::{self, Decision, Window};
use crate::reply::Reply;
use crate::router::{self, Route};
use crate::sessions::{self, Check, SessionView};
use crate::storage::d1::D1;
use crate::storage::kv::WorkersKv;
use crate::types::SessionId;
use crate::{auth, prefs, users};
use std::future::Future;
use std::rc::Rc;
use worker::{Context, Env, Request, Response};

/// Everything a handler needs for one request.
pub struct App {
    pub kv: WorkersKv,
    pub d1: D1,
    pub config: Rc<AppConfig>,
    /// Milliseconds since the epoch at the start of the request.
    pub now: i64,
    ctx: Context,
    admin_token: Option<String>,
}

impl App {
    pub fn now_f64(&self) -> f64 {
        self.now as f64
    }

    pub fn require_admin(&self, req: &Request) -> ApiResult<()> {
        auth::require_admin(
            header(req, "authorization").as_deref(),
            self.admin_token.as_deref(),
        )
    }

    pub fn session_id(&self, req: &Request) -> ApiResult<SessionId> {
        auth::session_id(
            header(req, "authorization").as_deref(),
            header(req, "cookie").as_deref(),
        )
    }

    /// The caller's session, through the fast (KV-first) path.
    pub async fn session(&self, req: &Request) -> ApiResult<SessionView> {
        let id = self.session_id(req)?;
        sessions::authenticate(&self.kv, &self.d1, self.now, &id, Check::Fast).await
    }

    /// Runs work after the response (`waitUntil`). It is not counted in `Server-Timing`.
    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        self.ctx.wait_until(work);
    }
}

/// Sleeps inside `waitUntil` work.
pub async fn sleep_ms(ms: f64) {
    worker::Delay::from(std::time::Duration::from_millis(ms.max(0.0) as u64)).await;
}

fn admin_token(env: &Env) -> Option<String> {
    env.secret("ADMIN_TOKEN")
        .map(|s| s.to_string())
        .or_else(|_| env.var("ADMIN_TOKEN").map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.is_empty())
}

pub async fn handle(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = now_ms();
    let meter = Rc::new(Meter::default());
    let method = req.method().to_string();
    let path = req.path();
    let (reply, private) = match router::resolve(&method, &path) {
        Ok(route) => {
            let private = route.is_private();
            (
                run(route, &mut req, &env, ctx, meter.clone(), &path, started).await,
                private,
            )
        }
        Err(e) => (Reply::error(&e), false),
    };
    let status = reply.status;
    let response = to_response(reply, &meter, private);
    crate::log::info(&format!(
        "{method} {path} {status} {:.0}ms",
        now_ms() - started
    ));
    response
}

async fn run(
    route: Route,
    req: &mut Request,
    env: &Env,
    ctx: Context,
    meter: Rc<Meter>,
    path: &str,
    now: f64,
) -> Reply {
    if route == Route::Health {
        // Before any binding is touched: /health does no storage work.
        return health();
    }
    let kv = WorkersKv::from_env(env, meter.clone());
    let config = config::current(&kv, now).await;
    let app = App {
        d1: D1::from_env(env, meter),
        kv,
        config,
        now: now as i64,
        ctx,
        admin_token: admin_token(env),
    };
    let mut limit_headers = Vec::new();
    let result = async {
        if route.behind_middleware(path) {
            if app.config.maintenance_mode {
                return Err(ApiError::Maintenance);
            }
            if let Some(group) = route.rate_limit_group(path) {
                let client = ratelimit::client(header(req, "cf-connecting-ip").as_deref());
                let decision = rate_limit(&app, &group, &client).await?;
                limit_headers = decision.headers();
                decision.into_result()?;
            }
        }
        dispatch(&app, route, req).await
    }
    .await;
    let mut reply = result.unwrap_or_else(|e| {
        if let Some(cause) = e.log_cause() {
            crate::log::error(&format!("{} {path}: {cause}", e.code()));
        }
        Reply::error(&e)
    });
    reply.headers.extend(limit_headers);
    reply
}

fn health() -> Reply {
    Reply::ok(&serde_json::json!({ "status": "ok" }))
}

async fn rate_limit(app: &App, group: &str, client: &str) -> ApiResult<Decision> {
    if !app.config.is_strict(group) {
        return ratelimit::check_approx(&app.kv, &app.config, group, client, app.now).await;
    }
    let (decision, prune) =
        ratelimit::check_strict(&app.d1, &app.config, group, client, app.now).await?;
    if prune {
        let before = Window::containing(app.now, app.config.rate_limit_window_seconds).start_ms;
        let d1 = app.d1.detached();
        app.spawn(async move {
            if let Err(e) = ratelimit::CounterDb::prune(&d1, before).await {
                crate::log::warn(&format!("pruning rate-limit counters failed: {}", e.0));
            }
        });
    }
    Ok(decision)
}

async fn dispatch(app: &App, route: Route, req: &mut Request) -> ApiResult<Reply> {
    match route {
        Route::Health => Ok(health()),
        Route::Config(ep) => config::serve(app, ep, req).await,
        Route::Sessions(ep) => sessions::serve(app, ep, req).await,
        Route::Prefs(ep) => prefs::serve(app, ep, req).await,
        Route::Users(ep) => users::serve(app, ep, req).await,
    }
}

fn to_response(reply: Reply, meter: &Meter, private: bool) -> worker::Result<Response> {
    let mut response = match reply.body {
        Some(body) => Response::ok(body)?,
        None => Response::empty()?,
    }
    .with_status(reply.status);
    let headers = response.headers_mut();
    if reply.status != 204 {
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
