//! The HTTP error type. Every failure a request can end in maps to the contract's error JSON
//! `{"error": "...", "code": "..."}` with its status and headers; the domain's own
//! [`DomainError`] converts into it (`?` in a handler). 5xx bodies are opaque: the cause is
//! logged, never sent.

use std::fmt;

/// Seconds a client should wait during maintenance before retrying.
pub const MAINTENANCE_RETRY_AFTER: u64 = 60;

/// Every failure a request can end in, as the contract names them.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body is not JSON (or not a JSON object where one is required).
    InvalidJson(String),
    /// A field is missing, has the wrong type or is out of range; the message names it.
    InvalidRequest(String),
    /// Missing or invalid credentials.
    Unauthorized,
    /// Credentials that do not allow this.
    Forbidden,
    /// No such path or resource.
    NotFound,
    /// A known path with another method; carries the `Allow` header value.
    MethodNotAllowed(String),
    /// A body over 64 KiB.
    PayloadTooLarge,
    /// A body that is not declared JSON (`Content-Type`).
    UnsupportedMediaType,
    /// `If-Match` names a version that is not the current one; carries the current one.
    PreconditionFailed {
        /// The current version (sent as `ETag`).
        current: u64,
    },
    /// Over the rate limit.
    RateLimited {
        /// The `Retry-After` seconds.
        retry_after: u64,
    },
    /// The maintenance gate is closed.
    Maintenance,
    /// A dependency (KV or D1) failed and nothing stale could be served. The cause is logged.
    Unavailable(String),
    /// A bug or an impossible state. The cause is logged.
    Internal(String),
}

impl ApiError {
    /// `invalid_request` naming the field: `"<field>: <problem>"`.
    pub fn invalid(field: &str, problem: &str) -> Self {
        ApiError::InvalidRequest(format!("{field}: {problem}"))
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_) | ApiError::InvalidRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge => 413,
            ApiError::UnsupportedMediaType => 415,
            ApiError::PreconditionFailed { .. } => 412,
            ApiError::RateLimited { .. } => 429,
            ApiError::Maintenance | ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Maintenance => "maintenance",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message sent to the client. Never contains the cause of a 5xx.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::InvalidJson(m) => format!("Malformed JSON body: {m}"),
            ApiError::InvalidRequest(m) => m.clone(),
            ApiError::Unauthorized => "Missing or invalid credentials".into(),
            ApiError::Forbidden => "Forbidden".into(),
            ApiError::NotFound => "Not found".into(),
            ApiError::MethodNotAllowed(_) => "Method not allowed".into(),
            ApiError::PayloadTooLarge => {
                "Request body exceeds 65536 bytes (1900000 for config writes)".into()
            }
            ApiError::UnsupportedMediaType => {
                "Content-Type must be application/json for a request body".into()
            }
            ApiError::PreconditionFailed { current } => {
                format!(
                    "If-Match does not name the current version ({current}); nothing was changed"
                )
            }
            ApiError::RateLimited { .. } => "Too many requests".into(),
            ApiError::Maintenance => "Service under maintenance".into(),
            ApiError::Unavailable(_) => "A dependency is unavailable; try again later".into(),
            ApiError::Internal(_) => "Internal error".into(),
        }
    }

    /// The cause worth logging, for server-side errors only.
    pub fn log_cause(&self) -> Option<&str> {
        match self {
            ApiError::Unavailable(c) | ApiError::Internal(c) => Some(c),
            _ => None,
        }
    }

    /// The JSON body `{"error", "code"}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.public_message(), "code": self.code() })
    }

    /// The JSON body as text: [`ApiError::json`] written out directly, keys in the order its
    /// map serialises them, without building the map.
    pub fn body(&self) -> String {
        let message = serde_json::to_string(&self.public_message()).unwrap_or_default();
        let mut body = String::with_capacity(message.len() + 48);
        body.push_str("{\"code\":\"");
        body.push_str(self.code());
        body.push_str("\",\"error\":");
        body.push_str(&message);
        body.push('}');
        body
    }

    /// Extra headers the contract requires for this error.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::MethodNotAllowed(allow) => vec![("Allow", allow.clone())],
            ApiError::RateLimited { retry_after } => vec![("Retry-After", retry_after.to_string())],
            ApiError::Maintenance => vec![("Retry-After", MAINTENANCE_RETRY_AFTER.to_string())],
            ApiError::PreconditionFailed { current } => vec![("ETag", format!("\"{current}\""))],
            _ => vec![],
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.public_message())
    }
}

use crate::domain::error::DomainError;
pub use crate::domain::error::{StorageError, StoreResult};

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidJson(m) => ApiError::InvalidJson(m),
            DomainError::Invalid(m) => ApiError::InvalidRequest(m),
            DomainError::Unauthorized => ApiError::Unauthorized,
            DomainError::NotFound => ApiError::NotFound,
            DomainError::VersionConflict { current } => ApiError::PreconditionFailed { current },
            DomainError::RateLimited {
                retry_after_seconds,
            } => ApiError::RateLimited {
                retry_after: retry_after_seconds,
            },
            DomainError::Unavailable(c) => ApiError::Unavailable(c),
            DomainError::Internal(c) => ApiError::Internal(c),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Unavailable(e.0)
    }
}

/// A result that fails as an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_the_contract_status_and_code() {
        let cases = [
            (ApiError::InvalidJson("x".into()), 400, "invalid_json"),
            (ApiError::InvalidRequest("x".into()), 400, "invalid_request"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden, 403, "forbidden"),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed("GET".into()),
                405,
                "method_not_allowed",
            ),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (
                ApiError::PreconditionFailed { current: 4 },
                412,
                "precondition_failed",
            ),
            (
                ApiError::RateLimited { retry_after: 3 },
                429,
                "rate_limited",
            ),
            (ApiError::Maintenance, 503, "maintenance"),
            (ApiError::Unavailable("d1 down".into()), 503, "unavailable"),
            (ApiError::Internal("bug".into()), 500, "internal"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status);
            assert_eq!(err.code(), code);
            let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
            assert_eq!(body["code"], code);
            assert!(body["error"].is_string());
            let as_map = serde_json::to_string(&err.json()).unwrap();
            assert_eq!(err.body(), as_map, "the same bytes as the map serialised");
        }
    }

    #[test]
    fn server_errors_are_opaque() {
        let err = ApiError::Unavailable("D1_ERROR: no such table: sessions (binding DB)".into());
        assert!(!err.body().contains("D1"));
        assert!(!err.body().contains("sessions"));
        assert_eq!(
            err.log_cause(),
            Some("D1_ERROR: no such table: sessions (binding DB)")
        );
        let err = ApiError::Internal("secret-token-123".into());
        assert!(!err.body().contains("secret"));
    }

    #[test]
    fn contract_headers() {
        assert_eq!(
            ApiError::MethodNotAllowed("GET, PUT".into()).headers(),
            vec![("Allow", "GET, PUT".to_string())]
        );
        assert_eq!(
            ApiError::RateLimited { retry_after: 7 }.headers(),
            vec![("Retry-After", "7".to_string())]
        );
        assert_eq!(ApiError::Maintenance.headers()[0].0, "Retry-After");
        assert_eq!(
            ApiError::PreconditionFailed { current: 4 }.headers(),
            vec![("ETag", "\"4\"".to_string())]
        );
        assert_eq!(
            ApiError::Maintenance.public_message(),
            "Service under maintenance"
        );
    }
}
