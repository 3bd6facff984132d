//! Request bodies: bytes → JSON → every body parser, and config merges on top of defaults.
#![no_main]

use edgestate::domain::{config::AppConfig, json, prefs, sessions, users};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = json::parse(data) else { return };
    if let Ok(cfg) = AppConfig::from_document(&v) {
        // An accepted document must round-trip.
        let again = AppConfig::from_document(&serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(again, cfg);
    }
    let _ = AppConfig::default().patched(&v);
    let _ = prefs::PrefsPatch::parse(&v);
    let _ = sessions::NewSession::parse(&v);
    let _ = users::parse_batch(&v);
    let _ = users::parse_profile(&v);
});
