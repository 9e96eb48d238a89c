//! Typed errors of the face pipeline. Every failure on user input maps to one
//! of these; nothing in `face-core` panics on bad bytes.

use thiserror::Error;

/// Why an image could not be turned into pixels.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty input: 0 bytes")]
    Empty,
    #[error("encoded image is {size_bytes} bytes, over the limit of {limit_bytes} bytes")]
    EncodedTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("image is {width}x{height} ({pixels} pixels), over the limit of {limit_pixels} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit_pixels: u64,
    },
    #[error("unsupported format: {0} (JPEG, PNG and WebP are supported)")]
    UnsupportedFormat(String),
    #[error("corrupt or truncated {format} image: {reason}")]
    Corrupt {
        format: &'static str,
        reason: String,
    },
    #[error("image has a zero dimension ({width}x{height})")]
    ZeroSized { width: u32, height: u32 },
}

/// Why a model could not be loaded or run.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("cannot load the {model} model: {reason}")]
    Load { model: &'static str, reason: String },
    #[error("the {model} model failed to run: {reason}")]
    Run { model: &'static str, reason: String },
    #[error("the {model} model returned an unexpected output: {reason}")]
    Output { model: &'static str, reason: String },
}

/// Why a configuration value was refused.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("invalid configuration: {field} = {value}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Any failure of the pipeline.
#[derive(Debug, Error)]
pub enum FaceError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("collection error: {0}")]
    Collection(#[from] crate::collection::CollectionError),
}

impl FaceError {
    /// True when retrying with the same input cannot succeed (bad input or
    /// configuration), as opposed to an internal model failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            FaceError::Decode(_) | FaceError::Config(_) | FaceError::Collection(_)
        )
    }
}
