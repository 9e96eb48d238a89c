//! The error body every route answers with, and the HTTP status of each
//! error code.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What went wrong, machine-readable. Each code has one HTTP status
/// ([`ErrorCode::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorCode {
    /// 400: malformed JSON (the message names the field), an invalid name,
    /// an image that cannot be read or has no face where one is needed.
    BadInput,
    /// 404: unknown route, collection, person, face or result (a result is
    /// 404 until the upload's recognition wrote it).
    NotFound,
    /// 403: no API key, an unknown or a revoked one.
    Unauthorized,
    /// 413: the body is over [`crate::limits::MAX_INLINE_BODY_BYTES`]; use
    /// `POST /v1/uploads`.
    TooLarge,
    /// 429: the key's rate per minute or quota per day is spent.
    Throttled,
    /// 500: the service failed; retrying may help.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::BadInput,
        ErrorCode::NotFound,
        ErrorCode::Unauthorized,
        ErrorCode::TooLarge,
        ErrorCode::Throttled,
        ErrorCode::Internal,
    ];

    /// The HTTP status this code is sent with.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadInput => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized => 403,
            ErrorCode::TooLarge => 413,
            ErrorCode::Throttled => 429,
            ErrorCode::Internal => 500,
        }
    }

    /// The code's name as it appears in the body.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadInput => "BadInput",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::Throttled => "Throttled",
            ErrorCode::Internal => "Internal",
        }
    }

    /// The code an HTTP status stands for (what a client maps a bare
    /// gateway error to); None for a success or an unknown status.
    pub fn from_status(status: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.status() == status)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people: what was wrong and what to do.
    pub message: String,
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    pub error: ErrorBody,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }

    pub fn status(&self) -> u16 {
        self.error.code.status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_statuses_and_names() {
        let statuses: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.status()).collect();
        assert_eq!(statuses, [400, 404, 403, 413, 429, 500]);
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_status(code.status()), Some(code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
        assert_eq!(ErrorCode::from_status(200), None);
    }

    #[test]
    fn body_shape() {
        let e = ApiError::new(ErrorCode::Throttled, "slow down");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": {"code": "Throttled", "message": "slow down"}})
        );
        assert_eq!(e.status(), 429);
    }
}
