//! Loading the pipeline once per container, from the model files shipped
//! in the function's own artifact (never from S3 per call: that is what
//! made the old system take seconds).

use std::path::Path;
use std::time::Instant;

use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};
use face_core::{FacePipeline, ModelBytes, PipelineConfig};

use crate::error::ServiceError;

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, ServiceError> {
    let path = dir.join(file);
    std::fs::read(&path)
        .map_err(|e| ServiceError::Config(format!("reading model {}: {e}", path.display())))
}

/// The photo size whose detector plan init builds: 4:3 landscape, the
/// common case. A photo of another shape waits for its plan on its first
/// request (about 18 ms). Planning 3:4 and square ones too (three detector
/// plans over two threads) made init 19 ms longer for 13 ms off a square
/// first request (bench-lambda, 2 cores).
const FIRST_REQUEST_PHOTO_SIZE: (u32, u32) = (640, 480);

/// Reads both models from `dir` and builds the pipeline with the plans of a
/// typical first request, each model on its own thread, so that request
/// does not pay for them.
pub fn load_pipeline(dir: &Path) -> Result<FacePipeline, ServiceError> {
    let start = Instant::now();
    let detector = read(dir, DEFAULT_DETECTOR)?;
    let recognizer = read(dir, RECOGNIZER)?;
    let read_ms = start.elapsed().as_secs_f64() * 1e3;
    let version = face_model_version(DEFAULT_DETECTOR);
    let pipeline = FacePipeline::new_prepared(
        ModelBytes {
            detector_onnx: &detector,
            recognizer_onnx: &recognizer,
            face_model_version: &version,
        },
        PipelineConfig::default(),
        FIRST_REQUEST_PHOTO_SIZE.0,
        FIRST_REQUEST_PHOTO_SIZE.1,
    )?;
    tracing::info!(
        read_ms,
        ready_ms = start.elapsed().as_secs_f64() * 1e3,
        face_model_version = %version,
        "models loaded"
    );
    Ok(pipeline)
}
