//! Errors of the converter.

/// Everything that can go wrong while reading a dlib network or converting it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream ended before a value was complete.
    #[error("dlib data truncated at byte {offset}: {what} needs {needed} more byte(s)")]
    Truncated {
        offset: usize,
        what: String,
        needed: usize,
    },

    /// A value is present but not what dlib would have written.
    #[error("bad dlib data at byte {offset} ({what}): {reason}")]
    Malformed {
        offset: usize,
        what: String,
        reason: String,
    },

    /// A layer could not be read; `layer` names its position in the network.
    #[error("layer {index} ({layer}): {source}")]
    Layer {
        index: usize,
        layer: String,
        #[source]
        source: Box<Error>,
    },

    /// The stream does not start like a dlib network with a loss layer.
    #[error("not a dlib DNN file with a loss layer: {0}")]
    NotDnn(#[source] Box<Error>),

    /// The stream holds more bytes after the complete network.
    #[error("{count} unexpected byte(s) after the network, starting at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },

    /// The layers read do not fit together (shapes, sizes, parameters).
    #[error("inconsistent network: {0}")]
    Network(String),

    /// tract failed to load, transform or serialize the converted model.
    #[error("tract: {0}")]
    Tract(String),
}

impl Error {
    pub(crate) fn tract(e: impl std::fmt::Display) -> Self {
        // `{:#}` on anyhow-style errors prints the whole context chain.
        Error::Tract(format!("{e:#}"))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
