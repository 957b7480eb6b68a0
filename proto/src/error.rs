//! The restricted set of error kinds that cross the wire. Only `node::api` maps them to HTTP
//! status codes; everything else speaks `ErrorCode`.

use serde::{Deserialize, Serialize};

/// What kind of failure a request met; chosen so a client can branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Malformed input: bad JSON, bad Base64, invalid values, msgtype mismatch.
    BadRequest,
    /// Bad signature, unknown caller, or a caller without the needed role.
    Forbidden,
    /// The named object does not exist, or no process is available to assign.
    NotFound,
    /// A wait ran out (e.g. assignment while the colony is paused).
    Timeout,
    /// The object already exists.
    Conflict,
    /// The request body is larger than the node accepts.
    TooLarge,
    /// The node cannot serve the request now (not ready, no leader, shutting down).
    Unavailable,
    /// The source sends faster than the node allows, or holds too many long-polls.
    TooManyRequests,
    /// A bug or a storage failure on the node.
    Internal,
}

/// An error with its kind and a message naming what was wrong (lowercase, no period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }
}
