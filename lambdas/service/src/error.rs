//! Errors, classified by what the caller should do about them.

use face_core::FaceError;
use thiserror::Error;

/// A storage call that failed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StorageError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} is {size_bytes} bytes, over the limit of {limit_bytes}")]
    TooLarge {
        what: String,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// Throttling, 5xx, timeouts, connection failures: worth retrying.
    #[error("{operation} failed (retryable): {message}")]
    Transient { operation: String, message: String },
    /// Access denied, missing table, malformed request: retrying will not help.
    #[error("{operation} failed: {message}")]
    Permanent { operation: String, message: String },
}

/// What the caller should do with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or the image is wrong: do not retry.
    BadInput,
    /// A transient AWS failure: retry.
    Retryable,
    /// The deployment is broken (permissions, missing resources, models):
    /// retrying will not help, an operator must look.
    Fatal,
}

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A collection, person, face or result that does not exist (the
    /// API's 404).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Face(#[from] FaceError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored data at {location} is unreadable: {message}")]
    CorruptStore { location: String, message: String },
    /// A person's object (their faces) past the cap of one person: an
    /// enrollment refused, nothing written.
    #[error(
        "person {person:?} of collection {collection:?} needs {size_bytes} bytes, over the cap of {limit_bytes} per person: forget them or delete some of their faces before enrolling more"
    )]
    PersonTooLarge {
        collection: String,
        person: String,
        size_bytes: u64,
        limit_bytes: u64,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Work that did not finish within the time its invocation had left
    /// (the function would have been killed): worth another attempt.
    #[error(
        "{what} did not finish within the function's timeout ({budget_ms} ms were left for it)"
    )]
    TimedOut { what: String, budget_ms: u64 },
}

impl ServiceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::BadRequest(_)
            | ServiceError::NotFound(_)
            | ServiceError::PersonTooLarge { .. } => ErrorKind::BadInput,
            ServiceError::Face(e) if e.is_bad_input() => ErrorKind::BadInput,
            ServiceError::Face(_) => ErrorKind::Fatal,
            ServiceError::Storage(StorageError::NotFound { .. })
            | ServiceError::Storage(StorageError::TooLarge { .. }) => ErrorKind::BadInput,
            ServiceError::Storage(StorageError::Transient { .. })
            | ServiceError::TimedOut { .. } => ErrorKind::Retryable,
            ServiceError::Storage(StorageError::Permanent { .. })
            | ServiceError::CorruptStore { .. }
            | ServiceError::Config(_)
            | ServiceError::Internal(_) => ErrorKind::Fatal,
        }
    }

    /// The `errorType` a Lambda caller sees: stable, machine-readable.
    pub fn error_type(&self) -> &'static str {
        match self.kind() {
            ErrorKind::BadInput => "FaceService.BadInput",
            ErrorKind::Retryable => "FaceService.Retryable",
            ErrorKind::Fatal => "FaceService.Fatal",
        }
    }
}

impl From<ServiceError> for lambda_runtime::Diagnostic {
    fn from(error: ServiceError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use face_core::DecodeError;

    #[test]
    fn kinds_follow_the_cause() {
        let bad_image = ServiceError::Face(FaceError::Decode(DecodeError::Empty));
        assert_eq!(bad_image.kind(), ErrorKind::BadInput);
        let throttled = ServiceError::Storage(StorageError::Transient {
            operation: "s3:GetObject".into(),
            message: "SlowDown".into(),
        });
        assert_eq!(throttled.kind(), ErrorKind::Retryable);
        assert_eq!(throttled.error_type(), "FaceService.Retryable");
        let denied = ServiceError::Storage(StorageError::Permanent {
            operation: "dynamodb:PutItem".into(),
            message: "AccessDenied".into(),
        });
        assert_eq!(denied.kind(), ErrorKind::Fatal);
        let timed_out = ServiceError::TimedOut {
            what: "chunk 3".into(),
            budget_ms: 55_000,
        };
        assert_eq!(timed_out.kind(), ErrorKind::Retryable);
        assert_eq!(
            timed_out.to_string(),
            "chunk 3 did not finish within the function's timeout (55000 ms were left for it)"
        );
    }
}
