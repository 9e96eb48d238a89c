//! One error type for the whole harness: every variant names what failed.

use std::path::PathBuf;

/// What went wrong while provisioning tools or running moto / the RIE.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A provisioning command (python, pip, ...) failed.
    #[error("{what} failed ({status}): {command}\n{output}")]
    Command {
        what: String,
        command: String,
        status: String,
        /// The tail of the command's stderr/stdout.
        output: String,
    },
    /// The wheel or a tool inside it is not where it should be.
    #[error("{0}")]
    MissingTool(String),
    /// A server process exited, or never answered, while starting.
    #[error("{what} did not start: {reason}; log {log}:\n{log_tail}")]
    StartFailed {
        what: &'static str,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    /// An HTTP request to moto or the RIE failed (not a function error).
    #[error("{what}: {message}")]
    Http { what: String, message: String },
    /// The RIE answered with something that is not JSON.
    #[error("the RIE answered with a body that is not JSON ({reason}): {body}")]
    NotJson { reason: String, body: String },
    /// The function returned an error (the RIE's 200 with `errorType`).
    #[error("function error {error_type}: {error_message}")]
    Function {
        error_type: String,
        error_message: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
