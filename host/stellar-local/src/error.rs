//! Errors: [`LocalError`] for the Rust API, and the crate-internal `ApiError` that becomes a
//! JSON error response of the control API or the gateway.

use std::net::SocketAddr;

use http::StatusCode;

use crate::api::ErrorKind;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source} (is the port in use?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The work directory could not be prepared (the message names the path).
    #[error("preparing the local runtime's work directory: {0}")]
    WorkDir(#[source] std::io::Error),
    /// The configured token is unusable.
    #[error("the control token must be 1 to 256 visible ASCII characters")]
    InvalidToken,
}

/// An error answered to an HTTP client as `{"error":{"kind","message"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    /// Seconds for a `Retry-After` header.
    pub(crate) retry_after_s: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Unauthorized,
            "missing or wrong `Authorization: Bearer <token>` header",
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::Invalid, message)
    }

    pub(crate) fn other(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, ErrorKind::Other, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::other(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}
