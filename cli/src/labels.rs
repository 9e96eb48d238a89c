//! The labelled development-set layout (see shared/data/SOURCES.md):
//! `labels_recognition.csv` and `labels_detection.csv`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct RecognitionLabel {
    pub path: String,
    pub identity: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DetectionLabel {
    pub path: String,
    pub face_count: u32,
    pub min_faces: u32,
    pub max_faces: u32,
    #[serde(default)]
    pub known_identities: String,
    #[serde(default)]
    pub notes: String,
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

pub fn recognition_labels(data: &Path) -> Result<Vec<RecognitionLabel>> {
    read_csv(&data.join("labels_recognition.csv"))
}

pub fn detection_labels(data: &Path) -> Result<Vec<DetectionLabel>> {
    read_csv(&data.join("labels_detection.csv"))
}
