//! A response as plain data, built by handlers and turned into a platform response only in
//! the pipeline, so handlers stay testable natively.

use crate::domain::events::EventStream;
use crate::error::ApiError;
use serde::Serialize;

/// A response: status, JSON body and the headers particular to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// JSON text; `None` for 204.
    pub body: Option<String>,
    /// Headers beyond the ones the pipeline adds to every response.
    pub headers: Vec<(&'static str, String)>,
    /// An event stream instead of a body: the pipeline streams what it sends.
    pub events: Option<EventStream>,
}

impl Reply {
    /// `value` as JSON with `status`.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        Reply::serialised(status, serde_json::to_string(value))
    }

    /// The reply of a serialisation: the one copy of this code, not one per type replied.
    #[inline(never)]
    fn serialised(status: u16, body: serde_json::Result<String>) -> Self {
        match body {
            Ok(body) => Reply {
                status,
                body: Some(body),
                headers: Vec::new(),
                events: None,
            },
            Err(e) => Reply::error(&ApiError::Internal(format!("serialising a response: {e}"))),
        }
    }

    /// 200 with `value` as JSON.
    pub fn ok<T: Serialize>(value: &T) -> Self {
        Reply::json(200, value)
    }

    /// 204 without a body.
    pub fn no_content() -> Self {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
            events: None,
        }
    }

    /// The contract's error response.
    pub fn error(err: &ApiError) -> Self {
        Reply {
            status: err.status(),
            body: Some(err.body()),
            headers: err.headers(),
            events: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
