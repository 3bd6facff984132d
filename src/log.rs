//! Logging that works in the Worker (console, picked up by Workers Logs) and natively.
//! Never pass a session id or the admin token here.

/// An informational line.
#[cfg(target_arch = "wasm32")]
pub fn info(msg: &str) {
    worker::console_log!("{msg}");
}

/// A warning: something degraded and was handled.
#[cfg(target_arch = "wasm32")]
pub fn warn(msg: &str) {
    worker::console_warn!("{msg}");
}

/// An error: a request failed because of it.
#[cfg(target_arch = "wasm32")]
pub fn error(msg: &str) {
    worker::console_error!("{msg}");
}

/// An informational line.
#[cfg(not(target_arch = "wasm32"))]
pub fn info(msg: &str) {
    eprintln!("{msg}");
}

/// A warning: something degraded and was handled.
#[cfg(not(target_arch = "wasm32"))]
pub fn warn(msg: &str) {
    eprintln!("warn: {msg}");
}

/// An error: a request failed because of it.
#[cfg(not(target_arch = "wasm32"))]
pub fn error(msg: &str) {
    eprintln!("error: {msg}");
}
