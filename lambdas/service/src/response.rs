//! The response shapes: each face as Rekognition shapes it (PascalCase
//! `BoundingBox` ratios, `Landmarks` ratios, `Confidence` in percent), plus
//! its open-set match.

use std::collections::BTreeMap;

use face_core::{RecognizedFace, RelativeBox, StageTimings, UnknownReason};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rekognition's landmark names, in face-core's landmark order (the
/// subject's right eye first; "Left"/"Right" are the subject's own).
const LANDMARK_TYPES: [&str; 5] = ["eyeRight", "eyeLeft", "nose", "mouthRight", "mouthLeft"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Landmark {
    pub r#type: String,
    pub x: f32,
    pub y: f32,
}

/// Who a face is. Absent (`null`) means unknown: no enrolled person is
/// within the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FaceMatchResult {
    pub person: String,
    /// 0..100, 50 at the threshold.
    pub similarity: f32,
    /// L2 distance between descriptors (under 0.6 is a match).
    pub distance: f32,
}

/// The person's record from the people table, attached to matches of
/// S3-triggered results for the queue's consumers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct PersonDetails {
    pub attributes: BTreeMap<String, String>,
    pub face_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FaceResult {
    pub bounding_box: RelativeBox,
    pub landmarks: Vec<Landmark>,
    /// Detector score in percent.
    pub confidence: f32,
    pub r#match: Option<FaceMatchResult>,
    /// Why `Match` is `null` (`small_face`, `low_confidence`, `pose`,
    /// `blurry`: not searched; `below_threshold`, `ambiguous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_details: Option<PersonDetails>,
}

impl FaceResult {
    pub fn new(face: &RecognizedFace, width: u32, height: u32) -> Self {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        Self {
            bounding_box: face.face.bounding_box,
            landmarks: face
                .face
                .landmarks
                .iter()
                .zip(LANDMARK_TYPES)
                .map(|(p, t)| Landmark {
                    r#type: t.to_string(),
                    x: p.x / w,
                    y: p.y / h,
                })
                .collect(),
            confidence: face.face.confidence * 100.0,
            r#match: face.face_match.identity.as_ref().map(|c| FaceMatchResult {
                person: c.person.clone(),
                similarity: c.similarity,
                distance: c.distance,
            }),
            unknown_reason: face.face_match.unknown_reason,
            person_details: None,
        }
    }
}

/// The answer for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecognitionResult {
    pub collection: String,
    /// Detector + recognizer; embeddings only compare within one version.
    pub face_model_version: String,
    /// People in the collection when the image was matched.
    pub collection_people: usize,
    pub image_width: u32,
    pub image_height: u32,
    pub faces: Vec<FaceResult>,
    pub timings_ms: StageTimings,
}

impl RecognitionResult {
    /// The distinct people recognized, sorted.
    pub fn people(&self) -> Vec<String> {
        let mut people: Vec<String> = self
            .faces
            .iter()
            .filter_map(|f| f.r#match.as_ref().map(|m| m.person.clone()))
            .collect();
        people.sort();
        people.dedup();
        people
    }
}
