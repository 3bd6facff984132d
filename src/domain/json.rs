//! Reading JSON into domain values: request bodies (the body must parse, be an object where
//! one is required, and name no field the contract does not know; errors name the field),
//! and what the Worker stored itself (KV copies, D1 rows, the runtime's answers).
//!
//! Everything is parsed into a [`Value`] by one reader and picked apart by hand, never by a
//! derived `Deserialize` running on the parser: serde's typed decoding brings a second set of
//! parser entry points per type and error messages that format floats (`core`'s float
//! printing alone is ~14 KB of Wasm). The public types keep their `Deserialize` for library
//! users; the Worker decodes them with their `from_json`. One reader goes further for size:
//! a stored config document is read member by member and flag by flag
//! (`config::read_document`, a hand-written visitor on the same parser), so that no `Value`
//! of the whole document is ever held.

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::time::Millis;
use serde_json::{Map, Value};

/// Parses a request body as JSON (`invalid_json` otherwise, including an empty body).
pub fn parse(body: &[u8]) -> DomainResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::InvalidJson("the body is empty".into()));
    }
    serde_json::from_slice(body).map_err(|e| DomainError::InvalidJson(e.to_string()))
}

/// Parses JSON text (a stored copy, rows or a runtime answer): the same reader as bodies.
pub fn read(text: &str) -> serde_json::Result<Value> {
    serde_json::from_slice(text.as_bytes())
}

/// A non-negative decimal integer written with digits only (no sign, no space, no
/// fraction), at most 19 of them: the one number reader of query values, headers and
/// cursors (one parser in the Wasm, not one per integer type).
pub fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// A non-negative whole number, also when written with a zero fraction (`60.0` is 60), as
/// JSON Schema's `integer` has it; `None` for any other value (a fraction, a negative number,
/// anything not a number).
pub fn whole_number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(f))
            .map(|f| f as u64)
    })
}

/// `v` as compact JSON text. (`Value`'s `Display` would link a second serializer.)
pub fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `s` in double quotes, escaped as a JSON string, for messages that quote input: the same
/// as `{s:?}` for printable text, without `Debug`'s escaping tables.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The path of member `name` of the field at path `field`: `field.name` (a message names
/// it). One function, not a `format!` per path written.
pub fn member(field: &str, name: &str) -> String {
    let mut path = String::with_capacity(field.len() + 1 + name.len());
    path.push_str(field);
    path.push('.');
    path.push_str(name);
    path
}

/// The string field `name` of the object `v`, if it is one.
pub fn text_of(v: &Value, name: &str) -> Option<String> {
    v.get(name)?.as_str().map(str::to_owned)
}

/// The integer field `name` of the object `v` as an instant, if it is one.
pub fn millis_of(v: &Value, name: &str) -> Option<Millis> {
    v.get(name)?.as_i64().map(Millis)
}

/// The body as a JSON object (`invalid_request` for any other JSON value).
pub fn object(v: &Value) -> DomainResult<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| DomainError::invalid("body", "must be a JSON object"))
}

/// Refuses any key of `obj` not in `allowed`, naming it (after `prefix`).
pub fn deny_unknown(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> DomainResult<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(DomainError::invalid(
            &format!("{prefix}{k}"),
            "unknown field",
        )),
        None => Ok(()),
    }
}

/// The string field `name` of `obj`: required, and a string.
pub fn required_str<'a>(obj: &'a Map<String, Value>, name: &str) -> DomainResult<&'a str> {
    obj.get(name)
        .ok_or_else(|| DomainError::invalid(name, "is required"))?
        .as_str()
        .ok_or_else(|| DomainError::invalid(name, "must be a string"))
}

/// Matches JSON text laid out exactly as the Worker writes it (`serde_json`'s compact form of
/// one type) against `template`, in which `$` stands for the contents of a string (no escape
/// or control character) and `#` for an integer (no leading zero, not `-0`, which
/// `serde_json` reads as a float; the caller's `parse` refuses one past its type, as [`read`]
/// does); returns what they matched, in order. No [`Value`] is built: the fast reader of the
/// copies a batch reads ten at a time. `None` decides nothing (another layout, an escaped
/// character, a fraction): the caller then asks [`read`]. What it accepts is JSON and means
/// what [`read`] finds in it.
#[inline(never)]
pub fn exact<'a, const N: usize>(template: &str, text: &'a str) -> Option<[&'a str; N]> {
    let bytes = text.as_bytes();
    let (mut out, mut n, mut at) = ([""; N], 0, 0);
    for &t in template.as_bytes() {
        let rest = bytes.get(at..)?;
        let len = match t {
            b'$' => rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < b' ')?,
            b'#' => {
                let sign = usize::from(rest.starts_with(b"-"));
                let digits = rest.get(sign..)?;
                let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                if n == 0 || (digits.starts_with(b"0") && sign + n > 1) {
                    return None;
                }
                sign + n
            }
            c if rest.starts_with(&[c]) => {
                at += 1;
                continue;
            }
            _ => return None,
        };
        *out.get_mut(n)? = text.get(at..at + len)?;
        (n, at) = (n + 1, at + len);
    }
    (at == bytes.len() && n == N).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reading_follows_the_template_and_nothing_else() {
        const T: &str = r#"{"a":"$","n":#,"z":#}"#;
        assert_eq!(
            exact(T, r#"{"a":"x y","n":-12,"z":0}"#),
            Some(["x y", "-12", "0"])
        );
        assert_eq!(
            exact(T, r#"{"a":"","n":123456789012345678,"z":0}"#),
            Some(["", "123456789012345678", "0"])
        );
        for text in [
            r#"{"a":"x\"y","n":1,"z":0}"#,
            r#"{"a":"x\ny","n":1,"z":0}"#,
            "{\"a\":\"x\ty\",\"n\":1,\"z\":0}",
            r#"{"a": "x","n":1,"z":0}"#,
            r#"{"a":"x","n":1,"z":0} "#,
            r#"{"a":"x","n":1,"z":0"#,
            r#"{"a":"x","n":1.5,"z":0}"#,
            r#"{"a":"x","n":1e3,"z":0}"#,
            r#"{"a":"x","n":-0,"z":0}"#,
            r#"{"a":"x","n":01,"z":0}"#,
            r#"{"a":"x","n":-,"z":0}"#,
            r#"{"a":"x","n":"1","z":0}"#,
            "",
        ] {
            assert_eq!(exact::<3>(T, text), None, "{text}");
        }
        assert_eq!(
            exact::<2>(T, r#"{"a":"x","n":1,"z":0}"#),
            None,
            "more fields than asked"
        );
    }

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(decimal("0"), Some(0));
        assert_eq!(decimal("007"), Some(7));
        assert_eq!(
            decimal("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            "",
            "+5",
            "-1",
            " 5",
            "5 ",
            "1.5",
            "1e3",
            "x",
            "99999999999999999999",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn json_parsing() {
        assert!(matches!(parse(b""), Err(DomainError::InvalidJson(_))));
        assert!(matches!(parse(b"  \n"), Err(DomainError::InvalidJson(_))));
        assert!(matches!(parse(b"{"), Err(DomainError::InvalidJson(_))));
        assert!(matches!(
            parse(b"{'a':1}"),
            Err(DomainError::InvalidJson(_))
        ));
        assert_eq!(parse(b"{\"a\":1}").unwrap()["a"], 1);
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(DomainError::InvalidJson(_))
        ));
    }

    #[test]
    fn objects_and_unknown_fields() {
        assert!(object(&serde_json::json!([1])).is_err());
        let v = serde_json::json!({"a": 1, "zz": 2});
        let o = object(&v).unwrap();
        assert!(deny_unknown(o, &["a", "zz"], "").is_ok());
        assert_eq!(
            deny_unknown(o, &["a"], "x."),
            Err(DomainError::Invalid("x.zz: unknown field".into()))
        );
    }

    #[test]
    fn required_strings() {
        let v = serde_json::json!({"a": "x", "n": 1});
        let o = object(&v).unwrap();
        assert_eq!(required_str(o, "a"), Ok("x"));
        assert_eq!(
            required_str(o, "n"),
            Err(DomainError::Invalid("n: must be a string".into()))
        );
        assert_eq!(
            required_str(o, "b"),
            Err(DomainError::Invalid("b: is required".into()))
        );
    }
}
