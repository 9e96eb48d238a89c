//! Loading the pipeline once per container, from the model files shipped
//! in the function's own artifact (never from S3 per call: that is what
//! made the old system take seconds).

use std::path::Path;
use std::time::Instant;

use face_contracts::env;
use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};
use face_core::{Embedder, FacePipeline, ModelBytes, PipelineConfig};

use crate::error::ServiceError;

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, ServiceError> {
    let path = dir.join(file);
    std::fs::read(&path)
        .map_err(|e| ServiceError::Config(format!("reading model {}: {e}", path.display())))
}

/// How Lambda started this execution environment, from
/// `AWS_LAMBDA_INITIALIZATION_TYPE` (set by Lambda; `local-aws` sets it on
/// the RIE, which does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitType {
    /// `on-demand`: a request is already waiting for this init to end.
    OnDemand,
    /// `provisioned-concurrency`, `snap-start`, any other value, or none
    /// (a run outside Lambda): the environment may be frozen as soon as
    /// init ends, long before its first request.
    Ahead,
}

impl InitType {
    pub fn from_value(value: Option<&str>) -> Self {
        match value {
            Some(env::ON_DEMAND) => Self::OnDemand,
            _ => Self::Ahead,
        }
    }

    pub fn from_env() -> Self {
        Self::from_value(
            std::env::var(env::LAMBDA_INITIALIZATION_TYPE)
                .ok()
                .as_deref(),
        )
    }
}

/// The photo size whose detector plan init builds (on a thread of its own
/// when on demand): 4:3 landscape, the common case. A photo of another
/// shape has its plan reshaped from that one while it decodes (a few ms
/// against about 20 for the first plan, [`FacePipeline::decode`]).
const AHEAD_PHOTO_SIZE: (u32, u32) = (640, 480);

/// Reads both models from `dir` and builds the pipeline, with every plan a
/// typical first request needs built before it returns (each model on its
/// own thread).
pub fn load_pipeline(dir: &Path) -> Result<FacePipeline, ServiceError> {
    load_pipeline_for(dir, InitType::Ahead)
}

/// [`load_pipeline`] as `init` calls for. On demand, the first request
/// is already waiting, so this parses the detector and returns: the
/// recognizer is read, parsed and planned on a thread of its own meanwhile
/// (the first embedding waits for it), the detector's first plan on
/// another, and the detector's plan for the request's photo starts as soon
/// as its headers are read, overlapping the decoding (figures: the
/// README's cold start). A recognizer file that is missing still fails
/// init; one that cannot be read or parsed fails every embedding with the
/// reason.
/// Ahead of requests, an init that returned early would be frozen with its
/// plans half built, so it builds them all, guessing the detector's photo
/// shape.
pub fn load_pipeline_for(dir: &Path, init: InitType) -> Result<FacePipeline, ServiceError> {
    let start = Instant::now();
    let version = face_model_version(DEFAULT_DETECTOR);
    let detector = read(dir, DEFAULT_DETECTOR)?;
    let (pipeline, read_ms) = match init {
        InitType::OnDemand => {
            let recognizer = dir.join(RECOGNIZER);
            std::fs::metadata(&recognizer).map_err(|e| {
                ServiceError::Config(format!("model {}: {e}", recognizer.display()))
            })?;
            let read_ms = start.elapsed().as_secs_f64() * 1e3;
            let embedder = Embedder::load_in_background(move || {
                std::fs::read(&recognizer)
                    .map_err(|e| format!("reading {}: {e}", recognizer.display()))
            });
            embedder.prepare_in_background(1);
            let pipeline = FacePipeline::with_embedder(
                &detector,
                embedder,
                &version,
                PipelineConfig::default(),
            )?;
            pipeline
                .detector()
                .prepare_in_background(AHEAD_PHOTO_SIZE.0, AHEAD_PHOTO_SIZE.1);
            (pipeline, read_ms)
        }
        InitType::Ahead => {
            let recognizer = read(dir, RECOGNIZER)?;
            let read_ms = start.elapsed().as_secs_f64() * 1e3;
            let models = ModelBytes {
                detector_onnx: &detector,
                recognizer_onnx: &recognizer,
                face_model_version: &version,
            };
            let pipeline = FacePipeline::new_prepared(
                models,
                PipelineConfig::default(),
                AHEAD_PHOTO_SIZE.0,
                AHEAD_PHOTO_SIZE.1,
            )?;
            (pipeline, read_ms)
        }
    };
    tracing::info!(
        read_ms,
        ready_ms = start.elapsed().as_secs_f64() * 1e3,
        ?init,
        face_model_version = %version,
        "models loaded"
    );
    Ok(pipeline)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use face_core::embed::CHIP_VALUES;
    use face_core::{FaceError, ModelError};

    use super::*;

    #[test]
    fn only_an_on_demand_init_leaves_plans_to_the_first_request() {
        assert_eq!(InitType::from_value(Some("on-demand")), InitType::OnDemand);
        for ahead in [
            Some("provisioned-concurrency"),
            Some("snap-start"),
            Some(""),
            None,
        ] {
            assert_eq!(InitType::from_value(ahead), InitType::Ahead, "{ahead:?}");
        }
    }

    fn blobs() -> PathBuf {
        std::env::var_os("FACECTL_MODELS").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../blobs"),
            PathBuf::from,
        )
    }

    #[test]
    fn an_on_demand_init_fails_on_a_missing_recognizer_and_each_embedding_on_a_broken_one() {
        let dir = std::env::temp_dir().join(format!("face-service-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::copy(blobs().join(DEFAULT_DETECTOR), dir.join(DEFAULT_DETECTOR))
            .expect("the detector (cargo xtask fetch-blobs)");

        match load_pipeline_for(&dir, InitType::OnDemand) {
            Err(ServiceError::Config(message)) => {
                assert!(message.contains(RECOGNIZER), "{message}")
            }
            other => panic!("a missing recognizer fails init, got {other:?}"),
        }

        std::fs::write(dir.join(RECOGNIZER), b"not an ONNX file").expect("write");
        let pipeline = load_pipeline_for(&dir, InitType::OnDemand).expect("init ends");
        for _ in 0..2 {
            match pipeline.embed(&vec![0.0; CHIP_VALUES]) {
                Err(FaceError::Model(ModelError::Load { model, .. })) => {
                    assert!(model.contains("recognizer"), "{model}")
                }
                other => panic!("expected the recognizer's load error, got {other:?}"),
            }
        }
        // Ahead of requests, init parses it, and fails.
        assert!(load_pipeline_for(&dir, InitType::Ahead).is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
