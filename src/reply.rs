//! A response as plain data, built by handlers and turned into a `worker::Response` only at
//! the edge (`app.rs`), so handlers and domain code stay testable natively.

use crate::error::ApiError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// JSON text; `None` for 204.
    pub body: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Reply {
                status,
                body: Some(body),
                headers: Vec::new(),
            },
            Err(e) => Reply::error(&ApiError::Internal(format!("serialising a response: {e}"))),
        }
    }

    pub fn ok<T: Serialize>(value: &T) -> Self {
        Reply::json(200, value)
    }

    pub fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn error(err: &ApiError) -> Self {
        Reply {
            status: err.status(),
            body: Some(err.body()),
            headers: err.headers(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
