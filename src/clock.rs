//! The wall clock. Only the pipeline (a request's `now`), deferred work and the storage
//! adapters (durations for `Server-Timing`) read it; domain code is handed `now`.

use crate::domain::time::{Clock, Millis};

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

/// The wall clock as the domain's [`Clock`] port.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        now()
    }
}
