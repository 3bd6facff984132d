//! Header fields the pipeline adds by standard: the rate-limit fields of
//! draft-ietf-httpapi-ratelimit-headers-11 (with the three legacy ones behind a config
//! switch), and the `WWW-Authenticate` challenge of RFC 6750 on every 401. Pure functions
//! over values, tested here and by property.

use crate::domain::ratelimit::Decision;

/// The realm every challenge names.
pub const REALM: &str = "edgestate";

/// The rate-limit fields of a limited response, for the policy named after the route's
/// group. Per draft-ietf-httpapi-ratelimit-headers-11 both are Structured Field Lists of one
/// Item, whose value is the policy name as a String:
///
/// * `RateLimit-Policy: "<group>";q=<limit>;w=<window seconds>`
/// * `RateLimit: "<group>";r=<requests left>;t=<seconds until the window resets>`
///
/// With `legacy`, also `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the
/// 2022 draft's fields), carrying the same numbers.
pub fn rate_limit(
    group: &str,
    d: &Decision,
    window_seconds: u32,
    legacy: bool,
) -> Vec<(&'static str, String)> {
    let policy = sf_string(group);
    let mut fields = vec![
        (
            "RateLimit-Policy",
            format!("{policy};q={};w={window_seconds}", d.limit),
        ),
        (
            "RateLimit",
            format!("{policy};r={};t={}", d.remaining, d.reset_seconds),
        ),
    ];
    if legacy {
        fields.extend([
            ("RateLimit-Limit", d.limit.to_string()),
            ("RateLimit-Remaining", d.remaining.to_string()),
            ("RateLimit-Reset", d.reset_seconds.to_string()),
        ]);
    }
    fields
}

/// A Structured Field String (RFC 8941, 3.3.3): in double quotes, `"` and `\` escaped, and
/// only printable ASCII (anything else is dropped; group names never have any).
pub fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `WWW-Authenticate` for a 401 (RFC 6750, 3): the Bearer challenge of realm `edgestate`,
/// with `error="invalid_token"` when the request carried a token that was refused (and no
/// error code when it carried none).
pub fn www_authenticate(token_given: bool) -> String {
    if token_given {
        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{REALM}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(limit: u32, remaining: u32, reset_seconds: u64) -> Decision {
        Decision {
            limit,
            remaining,
            reset_seconds,
            allowed: remaining > 0,
        }
    }

    #[test]
    fn draft_11_fields_name_the_group_as_policy() {
        let fields = rate_limit("sessions", &decision(10, 4, 42), 60, false);
        assert_eq!(
            fields,
            vec![
                ("RateLimit-Policy", "\"sessions\";q=10;w=60".to_string()),
                ("RateLimit", "\"sessions\";r=4;t=42".to_string()),
            ]
        );
    }

    #[test]
    fn legacy_fields_carry_the_same_numbers() {
        let fields = rate_limit("default", &decision(100, 0, 7), 60, true);
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[2], ("RateLimit-Limit", "100".to_string()));
        assert_eq!(fields[3], ("RateLimit-Remaining", "0".to_string()));
        assert_eq!(fields[4], ("RateLimit-Reset", "7".to_string()));
    }

    #[test]
    fn sf_strings_escape_quotes_and_backslashes_and_drop_the_rest() {
        assert_eq!(sf_string("a.b:c-d_1"), "\"a.b:c-d_1\"");
        assert_eq!(sf_string("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(sf_string("tab\there\u{e9}"), "\"tabhere\"");
    }

    #[test]
    fn bearer_challenges() {
        assert_eq!(www_authenticate(false), "Bearer realm=\"edgestate\"");
        assert_eq!(
            www_authenticate(true),
            "Bearer realm=\"edgestate\", error=\"invalid_token\""
        );
    }
}
