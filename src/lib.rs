//! edgestate: sessions, app config and feature flags, user preferences, a
//! stale-while-revalidate cache and rate limiting, on Workers KV (fast, eventually
//! consistent reads) and D1 (the consistent authority). See README.md for a code tour.

mod app;
pub mod auth;
mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod isolate;
mod log;
pub mod meter;
pub mod prefs;
pub mod ratelimit;
pub mod reply;
pub mod router;
pub mod sessions;
pub mod storage;
pub mod swr;
pub mod types;
pub mod users;

use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    app::handle(req, env, ctx).await
}
