//! Storage: the adapters that implement the domain's ports on the platform, metered for
//! `Server-Timing`, and every fake of those ports.
//!
//! * [`kv::WorkersKv`] implements [`crate::domain::kv::Kv`].
//! * [`d1::D1`] implements the D1 ports each domain module defines (`SessionDb`, `PrefsDb`,
//!   `UserDb`, `CounterDb`, `ConfigDb`).
//! * [`meter::Meter`] counts the work of one request.
//! * `fake` holds the in-memory fakes of all of them (tests, or the `fakes` feature).

pub mod d1;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod kv;
pub mod meter;

/// A thrown JS value as text for a log line: an `Error`'s message, a string as is.
pub(crate) fn describe(e: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    match e.dyn_ref::<worker::js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => e.as_string().unwrap_or_else(|| "a non-Error value".into()),
    }
}
