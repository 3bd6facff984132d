//! Storage: the adapters that implement the domain's ports on the platform, metered for
//! `Server-Timing`, and every fake of those ports.
//!
//! * [`kv::WorkersKv`] implements [`crate::domain::kv::Kv`].
//! * [`d1::D1`] implements the D1 ports each domain module defines (`SessionDb`, `PrefsDb`,
//!   `UserDb`, `CounterDb`, `ConfigDb`).
//! * [`access::AccessCerts`] implements [`crate::domain::access::AccessKeys`].
//! * [`meter::Meter`] counts the work of one request.
//! * `fake` holds the in-memory fakes of all of them (tests, or the `fakes` feature).

pub mod access;
pub mod d1;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod kv;
pub mod meter;

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function describe(e) {
  if (e instanceof Error) return String(e.message);
  return typeof e === 'string' ? e : 'a non-Error value';
}
export function envValue(env, name) {
  try {
    return env[name];
  } catch {
    return undefined;
  }
}")]
extern "C" {
    /// `env[name]`: a variable, secret or binding of the environment (`undefined` if absent,
    /// or if reading it throws). One call, without `Reflect` and `catch` glue.
    #[wasm_bindgen(js_name = envValue)]
    pub(crate) fn env_value(env: &wasm_bindgen::JsValue, name: &str) -> wasm_bindgen::JsValue;

    /// A thrown JS value as text for a log line: an `Error`'s message, a string as is.
    /// (In JS: one call, no `instanceof` and property bindings in the Wasm.)
    pub(crate) fn describe(e: &wasm_bindgen::JsValue) -> String;
}

/// Text the runtime handed over as bytes (an `ArrayBuffer` or a `Uint8Array`; `None` for
/// `null`), decoded as the runtime decodes text (invalid UTF-8 becomes U+FFFD). Bytes cross
/// into the Wasm in one native copy, where a JS string crosses through wasm-bindgen's glue,
/// which copies it a character at a time in JS: some 30 µs for the 1.5 KB of a batch of ten
/// cached profiles.
pub(crate) fn text_of(value: &wasm_bindgen::JsValue) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let bytes = worker::js_sys::Uint8Array::new(value).to_vec();
    Some(crate::text::from_utf8_lossy(bytes))
}
