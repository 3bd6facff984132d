//! The domain: plain Rust for sessions, the config and its flags, preferences, user
//! profiles, the stale-while-revalidate cache, rate limiting, account deletion and the
//! self-check of the set-up.
//!
//! Every function here takes `now` ([`time::Millis`]) and the storage ports it needs
//! ([`kv::Kv`], and each module's own D1 port such as [`sessions::SessionDb`] or
//! [`versions::ConfigDb`]), and returns
//! domain results. Nothing here knows about HTTP requests, the runtime or how a request is
//! served; `storage/` implements the ports, and the HTTP handlers call in. A test
//! (`tests/architecture.rs`) keeps it so.

pub mod access;
pub mod accounts;
pub mod bucket;
pub mod config;
pub mod error;
pub mod events;
pub mod flags;
pub mod health;
pub mod ids;
pub mod ip;
pub mod json;
pub mod keymap;
pub mod kv;
pub mod named;
pub mod prefs;
pub mod ratelimit;
pub mod sessions;
pub mod swr;
pub mod time;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod versions;
