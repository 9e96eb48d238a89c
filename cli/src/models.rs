//! Finding the model files on disk and loading the pipeline once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use face_core::{FacePipeline, ModelBytes, PipelineConfig};

pub use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};

/// Where models are looked for, first match wins: `--models` (or
/// `$FACECTL_MODELS`, read by the command line), `blobs/` of this source
/// checkout.
pub fn models_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../blobs")
}

fn read_model(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    if !path.is_file() {
        bail!(
            "model file {} not found: run `cargo xtask fetch-blobs`, or point --models / FACECTL_MODELS at the folder that has it",
            path.display()
        );
    }
    std::fs::read(&path).with_context(|| format!("reading model {}", path.display()))
}

/// Reads both models and builds the pipeline.
pub fn load_pipeline(
    dir: &Path,
    detector_file: &str,
    config: PipelineConfig,
) -> Result<FacePipeline> {
    let detector = read_model(dir, detector_file)?;
    let recognizer = read_model(dir, RECOGNIZER)?;
    let version = face_model_version(detector_file);
    FacePipeline::new(
        ModelBytes {
            detector_onnx: &detector,
            recognizer_onnx: &recognizer,
            face_model_version: &version,
        },
        config,
    )
    .context("loading the face models")
}
