//! The wall clock. Only the pipeline (a request's `now`), deferred work and the storage
//! adapters (durations for `Server-Timing`) read it; domain code is handed `now`, or the
//! [`RuntimeTimer`] as its `Clock`/`Timer` port.

use crate::domain::time::{Clock, Millis, Timer};

/// Milliseconds since the Unix epoch, as a float (`Date.now()` in the Worker).
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    worker::js_sys::Date::now()
}

/// Milliseconds since the Unix epoch, as a float.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// The current instant.
pub fn now() -> Millis {
    Millis::from_js(now_ms())
}

/// The platform's clock and timers, for requests and deferred work alike (one timer type:
/// each generic domain function is compiled once), and the domain's [`Clock`] where it
/// needs to know when an awaited write finished.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeTimer;

impl Clock for RuntimeTimer {
    fn now(&self) -> Millis {
        now()
    }
}

impl Timer for RuntimeTimer {
    async fn sleep(&self, ms: i64) {
        // A promise that `setTimeout` resolves: the same future machinery as every other
        // awaited promise, where `worker::Delay` would add a closure type of its own.
        let ms = u32::try_from(ms.max(0)).unwrap_or(u32::MAX);
        let _ = worker::wasm_bindgen_futures::JsFuture::from(sleep(ms)).await;
    }
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }")]
extern "C" {
    /// A promise resolved after `ms` milliseconds.
    fn sleep(ms: u32) -> worker::js_sys::Promise;
}
