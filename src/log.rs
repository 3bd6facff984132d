//! Structured logging with a level, for Workers Logs (which indexes the fields of an object
//! logged to the console) and for `wrangler dev`. Never pass a session id or the admin token.
//!
//! The level comes from the `LOG_LEVEL` variable (`wrangler.toml` `[vars]`): `error`, `warn`
//! (the default) or `info`. At `warn` a request that goes well logs nothing, since the
//! platform already records every invocation (method, URL, status, CPU time); degraded work
//! logs a warning and every 5xx logs its cause. At `info` each request also logs one line with
//! its route, status and storage work. The level is read once per isolate (see
//! `crate::isolate`: it is kept here because the domain's warnings read it).
//!
//! Each line is an object `{"level", "msg", ...fields}` printed with the console method of
//! its level.

use crate::domain::json;
use std::cell::Cell;

/// How much is logged, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only failures that reached a client as a 5xx.
    Error,
    /// Also degraded work that was handled (fail-open, stale copies, skipped writes).
    Warn,
    /// Also one line per request.
    Info,
}

impl Level {
    /// The level a `LOG_LEVEL` value names (case-insensitive, surrounding blanks ignored).
    pub fn parse(value: &str) -> Option<Level> {
        match value.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            _ => None,
        }
    }

    /// Its name, as `LOG_LEVEL` spells it and as the `level` field shows it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
        }
    }
}

/// The level when `LOG_LEVEL` is unset or not one of the names.
pub const DEFAULT_LEVEL: Level = Level::Warn;

thread_local! {
    /// This isolate's level; `None` until the first request reads `LOG_LEVEL`.
    static LEVEL: Cell<Option<Level>> = const { Cell::new(None) };
}

/// Sets this isolate's level from the value of `LOG_LEVEL` the first time it is called;
/// later calls cost one check. An unknown value logs a warning and keeps the default.
pub fn init(read_var: impl FnOnce() -> Option<String>) {
    if current().is_some() {
        return;
    }
    let value = read_var();
    let level = value.as_deref().map(Level::parse);
    let _ = LEVEL.try_with(|l| l.set(Some(level.flatten().unwrap_or(DEFAULT_LEVEL))));
    if let (Some(value), Some(None)) = (value, level) {
        let msg = format!("LOG_LEVEL {value:.40} is not error, warn or info; using warn");
        warn(&msg);
    }
}

/// This isolate's level, if set. (`try_with` rather than `get`, which panics if the thread
/// local is torn down, never on wasm32: the panic path's code stays out of the Wasm.)
fn current() -> Option<Level> {
    LEVEL.try_with(Cell::get).ok().flatten()
}

/// This isolate's level.
pub fn level() -> Level {
    current().unwrap_or(DEFAULT_LEVEL)
}

/// Whether lines of `level` are logged.
pub fn enabled(level: Level) -> bool {
    level <= self::level()
}

/// An informational line (shown at `info` only).
pub fn info(msg: &str) {
    event(Level::Info, msg, &[]);
}

/// A warning: something degraded and was handled.
pub fn warn(msg: &str) {
    event(Level::Warn, msg, &[]);
}

/// An error: a request failed because of it.
pub fn error(msg: &str) {
    event(Level::Error, msg, &[]);
}

/// A warning `"<what>: <cause>"`: one function for every such message, where a `format!`
/// at each call site would be code of its own.
pub fn warn_cause(what: &str, cause: &str) {
    event(Level::Warn, &with_cause(what, cause), &[]);
}

/// An error `"<what>: <cause>"` (see [`warn_cause`]).
pub fn error_cause(what: &str, cause: &str) {
    event(Level::Error, &with_cause(what, cause), &[]);
}

fn with_cause(what: &str, cause: &str) -> String {
    let mut msg = String::with_capacity(what.len() + 2 + cause.len());
    msg.push_str(what);
    msg.push_str(": ");
    msg.push_str(cause);
    msg
}

/// The value of a field of a line: text, a whole number, or `null`. (Not a `Value`, which
/// a caller would build and drop for every field.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A JSON string.
    Text(&'a str),
    /// A JSON number.
    Int(i64),
    /// `null`.
    Null,
}

/// A line of `level` with `msg` and further fields, if the level is enabled.
pub fn event(level: Level, msg: &str, fields: &[(&str, Field)]) {
    if enabled(level) {
        print(level, &line(level, msg, fields));
    }
}

/// The line as JSON text: `level` and `msg` first, then the fields.
fn line(level: Level, msg: &str, fields: &[(&str, Field)]) -> String {
    // Built with push_str and `serde_json::to_string` (the writer every reply uses), not
    // `format!` over `Value`'s `Display`, which links a second JSON serializer.
    let mut text = String::from("{\"level\":\"");
    text.push_str(level.name());
    text.push_str("\",\"msg\":");
    text.push_str(&json::quoted(msg));
    for (name, value) in fields {
        text.push(',');
        text.push_str(&json::quoted(name));
        text.push(':');
        match value {
            Field::Text(s) => text.push_str(&json::quoted(s)),
            Field::Int(n) => text.push_str(&serde_json::to_string(n).unwrap_or_default()),
            Field::Null => text.push_str("null"),
        }
    }
    text.push('}');
    text
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function printLine(method, text) {
  let line;
  try {
    line = JSON.parse(text);
  } catch {
    line = text;
  }
  console[method](line);
}")]
extern "C" {
    /// `console[method]` of the line parsed as an object (the text itself if it does not
    /// parse): one call into JS for the parse and the print.
    #[wasm_bindgen(js_name = printLine)]
    fn print_line(method: &str, text: &str);
}

/// Prints through the console method of the level, as an object so that Workers Logs
/// indexes its fields.
#[cfg(target_arch = "wasm32")]
fn print(level: Level, text: &str) {
    let method = match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "log",
    };
    print_line(method, text);
}

/// Prints to standard error (native tests and tools).
#[cfg(not(target_arch = "wasm32"))]
fn print(_: Level, text: &str) {
    eprintln!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("info"), Some(Level::Info));
        assert_eq!(Level::parse(" WARN "), Some(Level::Warn));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("error"), Some(Level::Error));
        for bad in ["", "debug", "verbose", "2", "inf"] {
            assert_eq!(Level::parse(bad), None, "{bad}");
        }
        assert!(Level::Error < Level::Warn && Level::Warn < Level::Info);
        for l in [Level::Error, Level::Warn, Level::Info] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
    }

    #[test]
    fn lines_are_json_with_level_and_msg_first() {
        let text = line(
            Level::Error,
            "a \"quoted\" cause",
            &[("status", Field::Int(503))],
        );
        assert_eq!(
            text,
            r#"{"level":"error","msg":"a \"quoted\" cause","status":503}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&line(Level::Warn, "w", &[])).unwrap();
        assert_eq!(parsed, serde_json::json!({"level": "warn", "msg": "w"}));
    }

    #[test]
    fn causes_follow_a_colon() {
        assert_eq!(
            with_cause("KV read failed", "timeout"),
            "KV read failed: timeout"
        );
    }

    #[test]
    fn the_level_is_read_once_per_isolate() {
        // Each test thread is its own isolate.
        std::thread::spawn(|| {
            assert_eq!(level(), DEFAULT_LEVEL);
            init(|| Some("info".into()));
            assert!(enabled(Level::Info));
            init(|| panic!("read again"));
            assert_eq!(level(), Level::Info);
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            init(|| None);
            assert_eq!(level(), Level::Warn);
            assert!(enabled(Level::Error) && enabled(Level::Warn) && !enabled(Level::Info));
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            init(|| Some("chatty".into()));
            assert_eq!(level(), DEFAULT_LEVEL);
        })
        .join()
        .unwrap();
    }
}
