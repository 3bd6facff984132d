//! Wall-clock time in milliseconds since the Unix epoch. Domain code never calls this: it is
//! handed `now` so that tests control time.

#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    worker::js_sys::Date::now()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}
