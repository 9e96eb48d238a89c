//! `face-core`: the face pipeline, pure Rust and free of I/O.
//!
//! Bytes in, faces out: [`decode`] turns untrusted image bytes into RGB
//! pixels under explicit limits, [`detect`] finds faces with YuNet,
//! [`align`] warps each onto dlib's template, [`embed`] computes the 128-d
//! dlib ResNet descriptor, [`collection`] matches it open-set, and
//! [`pipeline`] ties them together behind one shareable handle. Model files
//! come in as bytes: reading files, S3 or the network is the caller's job.

pub mod align;
pub mod collection;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod enroll;
pub mod error;
pub mod geometry;
mod kernels;
pub mod model_files;
pub mod pipeline;
mod plans;
pub mod quality;
pub mod resample;
pub mod stats;

pub use collection::{Candidate, Collection, EnrolledFace, FaceMatch, MatchConfig};
pub use decode::{DecodeLimits, DecodedImage, SourceFormat, decode_image, decode_image_with};
pub use detect::{DetectedFace, Detector, DetectorConfig};
pub use embed::{EMBEDDING_DIM, Embedder, Embedding, l2_distance};
pub use enroll::{EnrollPolicy, UnindexedReason};
pub use error::{ConfigError, DecodeError, FaceError, ModelError};
pub use geometry::{PixelBox, Point, RelativeBox};
pub use image::RgbImage;
pub use kernels::Kernels;
pub use pipeline::{
    AnalyzedFace, EnrollOutcome, FaceComparison, FacePipeline, ModelBytes, PipelineConfig,
    RecognizedFace, StageTimings,
};
pub use plans::{decluttered_model, optimized_plan, parse_onnx, reshaped_plan};
pub use quality::{FaceQuality, QualityGate, UnknownReason};
