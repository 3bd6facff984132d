//! Text from bytes: UTF-8, each invalid sequence replaced by U+FFFD.
//!
//! Valid text (nearly all of it) is taken as it is. Invalid text is decoded by the runtime's
//! `TextDecoder` in the Wasm, which replaces the same bytes as `String::from_utf8_lossy`
//! (both follow the WHATWG Encoding Standard: one U+FFFD for each maximal subpart of an
//! invalid sequence; a byte-order mark is kept), so `core`'s lossy decoder, about 1 KB of
//! Wasm, is not linked for this rare path. Native builds (tests) use `from_utf8_lossy`.

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD.
pub fn from_utf8_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| lossy(e.as_bytes()))
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function decodeLossy(bytes) {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}")]
extern "C" {
    /// The runtime's UTF-8 decoder, replacing invalid sequences (not `fatal`) and keeping a
    /// byte-order mark (`ignoreBOM`), as `String::from_utf8_lossy` does.
    #[wasm_bindgen(js_name = decodeLossy)]
    fn lossy(bytes: &[u8]) -> String;
}

#[cfg(not(target_arch = "wasm32"))]
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_sequences_become_replacement_characters() {
        assert_eq!(from_utf8_lossy(b"caf\xc3\xa9".to_vec()), "café");
        assert_eq!(from_utf8_lossy(b"\xef\xbb\xbfa".to_vec()), "\u{feff}a");
        assert_eq!(
            from_utf8_lossy(b"a\xffb\xe2\x82".to_vec()),
            "a\u{fffd}b\u{fffd}"
        );
        assert_eq!(
            from_utf8_lossy(b"\xed\xa0\x80".to_vec()),
            "\u{fffd}".repeat(3)
        );
    }
}
