//! The domain's own error type: what a domain operation can end in, in the domain's words.
//! It names no protocol: the layer that serves a request maps each variant to its answer.

use std::fmt;

/// Every way a domain operation can fail.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainError {
    /// Input that is not JSON (or not a JSON object where one is required).
    InvalidJson(String),
    /// A field is missing, has the wrong type or is out of range: `"<field>: <problem>"`.
    Invalid(String),
    /// The credentials presented do not name a usable session or identity.
    Unauthorized,
    /// No such resource.
    NotFound,
    /// A conditional write named a version that is not the current one.
    VersionConflict {
        /// The current version.
        current: u64,
    },
    /// Over a rate limit.
    RateLimited {
        /// Seconds until the window that refused it ends.
        retry_after_seconds: u64,
    },
    /// A store (KV or D1) failed and nothing stale could be served. The cause is for logs.
    Unavailable(String),
    /// A bug or an impossible state. The cause is for logs.
    Internal(String),
}

impl DomainError {
    /// [`DomainError::Invalid`] naming the field: `"<field>: <problem>"`.
    pub fn invalid(field: &str, problem: &str) -> Self {
        DomainError::Invalid(format!("{field}: {problem}"))
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::InvalidJson(m) => write!(f, "not JSON: {m}"),
            DomainError::Invalid(m) => f.write_str(m),
            DomainError::Unauthorized => f.write_str("unauthorized"),
            DomainError::NotFound => f.write_str("not found"),
            DomainError::VersionConflict { current } => write!(f, "version conflict ({current})"),
            DomainError::RateLimited {
                retry_after_seconds,
            } => write!(f, "rate limited ({retry_after_seconds} s)"),
            DomainError::Unavailable(c) => write!(f, "unavailable: {c}"),
            DomainError::Internal(c) => write!(f, "internal: {c}"),
        }
    }
}

/// A storage call failed. The message is for logs only.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageError(pub String);

impl StorageError {
    /// A storage error with this description.
    pub fn new(what: impl Into<String>) -> Self {
        StorageError(what.into())
    }
}

impl From<StorageError> for DomainError {
    fn from(e: StorageError) -> Self {
        DomainError::Unavailable(e.0)
    }
}

/// A result that fails as a [`DomainError`].
pub type DomainResult<T> = Result<T, DomainError>;
/// A result of a storage call.
pub type StoreResult<T> = Result<T, StorageError>;
