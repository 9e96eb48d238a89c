//! Shared helpers of the facectl integration tests: where the labelled data
//! and the models are, and how to run the real binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The labelled development set: `$FACE_DATA_DIR`, else `../shared/data`
/// beside the checkout. Missing data is a test failure, never a skip.
pub fn data_dir() -> PathBuf {
    let dir = devset::data_dir(None, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    assert!(
        dir.join("labels_recognition.csv").is_file(),
        "labelled data not found at {} (set FACE_DATA_DIR)",
        dir.display()
    );
    dir
}

/// The fetched models: `$FACECTL_MODELS`, else the checkout's `blobs/`.
pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("FACECTL_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../blobs"),
        PathBuf::from,
    );
    assert!(
        dir.join("dlib_face_recognition_resnet_model_v1.onnx")
            .is_file(),
        "models not found in {}: run `cargo xtask fetch-blobs`",
        dir.display()
    );
    dir
}

pub fn photo(rel: &str) -> PathBuf {
    data_dir().join(rel)
}

/// Runs facectl with the test models and a private store.
pub fn facectl(store: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facectl"))
        .arg("--models")
        .arg(models_dir())
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("facectl runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}
