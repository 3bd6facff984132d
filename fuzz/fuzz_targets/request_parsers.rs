//! Headers, paths and query values: everything the Worker parses before reading a body.
#![no_main]

use edgestate::domain::{ids as types, prefs, ratelimit, sessions};
use edgestate::routes::{self, auth, cors, input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mid = (0..=s.len() / 2).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    let (a, b) = s.split_at(mid);
    let _ = auth::bearer(Some(s));
    let _ = auth::cookie(Some(s), "session");
    let _ = auth::session_id(Some(a), Some(b));
    let _ = auth::require_admin(Some(a), Some(b));
    let _ = ratelimit::client(Some(s));
    let _ = routes::find(a, b);
    let _ = input::query_pairs(s);
    let _ = input::percent_decode(s, true);
    let _ = input::query_flag(s, "deep");
    let _ = routes::methods(s);
    let origins = cors::AllowedOrigins::parse(a);
    let _ = cors::headers(&origins, Some(b));
    let _ = cors::preflight(&origins, Some(b), a);
    let _ = sessions::Cursor::parse(s);
    let _ = sessions::ListQuery::parse([("limit", a), ("cursor", b), ("userId", s)].into_iter());
    let _ = types::UserId::parse("userId", s);
    let _ = types::ProfileId::parse("id", s);
    let _ = types::FlagName::parse("name", s);
    let _ = types::Email::parse("email", s);
    let _ = types::SessionId::parse(s);
    let _ = types::SessionHandle::parse("handle", s);
    let _ = prefs::is_language_tag(s);
});
