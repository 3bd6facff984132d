//! edgestate: sessions, an app config with feature flags and a maintenance gate, user
//! preferences, a stale-while-revalidate cache and rate limiting, on Workers KV (fast,
//! eventually consistent reads) and D1 (the consistent authority).
//!
//! As a Worker, this crate's `fetch` entry (feature `entry`, on by default) serves the whole
//! API. As a library (`default-features = false`), another workers-rs Worker can:
//!
//! * mount every edgestate route beside its own with [`handle`] (and [`routes::serves`] to
//!   decide which requests are edgestate's);
//! * verify sessions, read the config and flags, rate-limit and cache through
//!   [`Edgestate`];
//! * use the plain-Rust [`domain`] directly with its own ports, and the [`storage`] adapters.
//!
//! The layers point one way: `routes → domain ← storage`. See README.md for a code tour.

#![warn(missing_docs)]

mod clock;
mod ctx;
pub mod domain;
mod embed;
pub mod error;
mod isolate;
mod log;
#[cfg(feature = "openapi")]
pub mod openapi;
mod pipeline;
pub mod routes;
pub mod storage;

pub use embed::{Edgestate, CACHE_PREFIX};
pub use pipeline::handle;

/// The Worker's entry: every request goes through the pipeline.
#[cfg(feature = "entry")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<worker::Response> {
    console_error_panic_hook::set_once();
    handle(req, env, ctx).await
}
