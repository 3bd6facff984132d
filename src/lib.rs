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
//! The layers point one way: `routes → domain ← storage`. See docs/architecture.md for a code tour.

#![warn(missing_docs)]
// The size rules (clippy.toml, `string_slice`) guard the Wasm; unit tests compare against the
// standard library and index freely.
#![cfg_attr(
    test,
    allow(
        clippy::disallowed_types,
        clippy::disallowed_methods,
        clippy::string_slice
    )
)]

mod clock;
mod ctx;
pub mod domain;
mod embed;
pub mod error;
mod isolate;
mod log;
#[cfg(feature = "openapi")]
pub mod openapi;
mod origins;
mod pipeline;
pub mod routes;
pub mod storage;
mod text;

pub use embed::{Edgestate, CACHE_PREFIX};
pub use pipeline::handle;

/// The Worker's `fetch` entry: every request goes through the pipeline, which answers with
/// the `Response` itself when no storage round trip is pending and with a `Promise` of it
/// otherwise (both are what the runtime accepts from a fetch handler). Written out rather
/// than with `#[worker::event(fetch)]`, whose glue always builds a `worker::Request` (reading
/// `request.cf`, which the runtime rebuilds for every read) and always returns a `Promise`.
/// A panic is reported by `worker`'s own hook, which also re-creates the Wasm instance.
#[cfg(feature = "entry")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(
    req: worker::web_sys::Request,
    env: worker::Env,
    ctx: worker::worker_sys::Context,
) -> wasm_bindgen::JsValue {
    pipeline::respond(req, env, worker::Context::new(ctx))
}
