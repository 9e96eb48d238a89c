//! The quality gate before matching, like Rekognition's UnsearchedFaces: a
//! face too small, too doubtful, turned too far or too blurred to be named
//! reliably is still reported (box, confidence, why) but never searched,
//! so a poor view of a stranger cannot come out as someone's name.
//!
//! Everything is measured from what the pipeline already has: the box and
//! score from the detector, the pose from the five landmarks, and the
//! sharpness from the aligned 150x150 chip the recognizer would read.
//! Defaults and how they were chosen: `core/QUALITY.md`.

use serde::{Deserialize, Serialize};

use crate::align::CHIP_SIZE;
use crate::detect::DetectedFace;
use crate::error::ConfigError;

/// Why a face is unknown: the gate's reasons (the face was not searched)
/// and the matcher's (it was searched, and no one is close enough, or two
/// people are about as close).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// Narrower than `QualityGate::min_face_px` in the source pixels.
    SmallFace,
    /// The detector's score is under `QualityGate::min_confidence`.
    LowConfidence,
    /// Turned further than `QualityGate::max_yaw_deg` or rolled further
    /// than `QualityGate::max_roll_deg`.
    Pose,
    /// The chip's sharpness is under `QualityGate::min_sharpness`.
    Blurry,
    /// Searched: no enrolled person is under the threshold.
    BelowThreshold,
    /// Searched: the best person is under the threshold but the second
    /// best is within `MatchConfig::min_margin_l2` of them.
    Ambiguous,
}

impl UnknownReason {
    /// The gate's reasons: the face was never compared with anyone.
    pub fn unsearched(self) -> bool {
        !matches!(
            self,
            UnknownReason::BelowThreshold | UnknownReason::Ambiguous
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::SmallFace => "small_face",
            UnknownReason::LowConfidence => "low_confidence",
            UnknownReason::Pose => "pose",
            UnknownReason::Blurry => "blurry",
            UnknownReason::BelowThreshold => "below_threshold",
            UnknownReason::Ambiguous => "ambiguous",
        }
    }
}

/// What the gate measured on one face.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct FaceQuality {
    /// Box width in the source image's pixels.
    pub face_px: f32,
    /// Left-right turn estimated from the landmarks; 0 is frontal, the
    /// sign says which way.
    pub yaw_deg: f32,
    /// In-plane tilt of the eye line; alignment undoes it.
    pub roll_deg: f32,
    /// Variance of the Laplacian of the chip's luma, inside the face box;
    /// `None` until the chip is cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
}

/// The gate's thresholds. A face failing any of them is unsearched.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityGate {
    /// Faces narrower than this in the source pixels (default 28): their
    /// chips are mostly upscaled blur.
    pub min_face_px: f32,
    /// Faces the detector scores lower (default 0.8; it reports from 0.7).
    pub min_confidence: f32,
    /// Faces turned further (default 45 degrees): a profile shows one eye,
    /// and the recognizer was trained on near-frontal chips.
    pub max_yaw_deg: f32,
    /// Faces tilted further (default 60 degrees).
    pub max_roll_deg: f32,
    /// Chips less sharp than this (default 10): heavy motion or focus blur.
    pub min_sharpness: f32,
}

impl Default for QualityGate {
    fn default() -> Self {
        Self {
            min_face_px: 28.0,
            min_confidence: 0.8,
            max_yaw_deg: 45.0,
            max_roll_deg: 60.0,
            min_sharpness: 10.0,
        }
    }
}

/// The landmarks' nose-tip offset from the eyes' midpoint, along the eye
/// line and in eye distances, at a 90-degree turn: the tip sits about this
/// far in front of the eye plane (anthropometric mean, ~0.45-0.5).
const NOSE_DEPTH_IN_EYE_DISTANCES: f32 = 0.5;

impl QualityGate {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: f32, reason| {
            Err(ConfigError {
                field,
                value: value.to_string(),
                reason,
            })
        };
        if self.min_face_px.is_nan() || self.min_face_px < 0.0 {
            return bad("min_face_px", self.min_face_px, "must be >= 0");
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return bad(
                "min_confidence",
                self.min_confidence,
                "must be within 0..=1",
            );
        }
        if !(0.0..=90.0).contains(&self.max_yaw_deg) {
            return bad("max_yaw_deg", self.max_yaw_deg, "must be within 0..=90");
        }
        if !(0.0..=180.0).contains(&self.max_roll_deg) {
            return bad("max_roll_deg", self.max_roll_deg, "must be within 0..=180");
        }
        if self.min_sharpness.is_nan() || self.min_sharpness < 0.0 {
            return bad("min_sharpness", self.min_sharpness, "must be >= 0");
        }
        Ok(())
    }

    /// The checks that need no chip: size, score and pose. `Err` is the
    /// first failed check with what was measured.
    pub fn check_detection(
        &self,
        face: &DetectedFace,
    ) -> Result<FaceQuality, (UnknownReason, FaceQuality)> {
        let quality = measure_detection(face);
        if quality.face_px < self.min_face_px {
            return Err((UnknownReason::SmallFace, quality));
        }
        if face.confidence < self.min_confidence {
            return Err((UnknownReason::LowConfidence, quality));
        }
        if quality.yaw_deg.abs() > self.max_yaw_deg || quality.roll_deg.abs() > self.max_roll_deg {
            return Err((UnknownReason::Pose, quality));
        }
        Ok(quality)
    }

    /// The chip check, after [`QualityGate::check_detection`] passed.
    pub fn check_chip(
        &self,
        mut quality: FaceQuality,
        chip: &[f32],
    ) -> Result<FaceQuality, (UnknownReason, FaceQuality)> {
        let sharpness = chip_sharpness(chip);
        quality.sharpness = Some(sharpness);
        if sharpness < self.min_sharpness {
            return Err((UnknownReason::Blurry, quality));
        }
        Ok(quality)
    }
}

/// Size and pose from the detection alone.
pub fn measure_detection(face: &DetectedFace) -> FaceQuality {
    let [right_eye, left_eye, nose, ..] = face.landmarks;
    let (ex, ey) = (left_eye.x - right_eye.x, left_eye.y - right_eye.y);
    let eye_distance = ex.hypot(ey);
    let (yaw_deg, roll_deg) = if eye_distance > f32::EPSILON && eye_distance.is_finite() {
        let (ux, uy) = (ex / eye_distance, ey / eye_distance);
        let (mx, my) = (
            (left_eye.x + right_eye.x) / 2.0,
            (left_eye.y + right_eye.y) / 2.0,
        );
        // Foreshortening shrinks the eye distance by cos(yaw) while the
        // nose moves sideways by depth * sin(yaw): the ratio is
        // depth * tan(yaw).
        let along = ((nose.x - mx) * ux + (nose.y - my) * uy) / eye_distance;
        let yaw = (along / NOSE_DEPTH_IN_EYE_DISTANCES).atan().to_degrees();
        (yaw, uy.atan2(ux).to_degrees())
    } else {
        // Both eyes on one point: a full profile or a bad detection.
        (90.0, 0.0)
    };
    FaceQuality {
        face_px: face.bbox.width,
        yaw_deg,
        roll_deg,
        sharpness: None,
    }
}

/// Variance of the 4-neighbour Laplacian of the chip's luma over the face
/// box (the template's padding excluded, so the background does not count).
/// `chip` is one planar RGB chip as the recognizer reads it.
pub fn chip_sharpness(chip: &[f32]) -> f32 {
    let n = CHIP_SIZE * CHIP_SIZE;
    if chip.len() < 3 * n {
        return 0.0;
    }
    let luma = |i: usize| 0.299 * chip[i] + 0.587 * chip[n + i] + 0.114 * chip[2 * n + i];
    // dlib's 0.25 padding: the face box is the middle 1/1.5 of the chip.
    let margin = CHIP_SIZE / 6;
    let (lo, hi) = (margin.max(1), (CHIP_SIZE - margin).min(CHIP_SIZE - 1));
    let (mut sum, mut sum_sq, mut count) = (0.0f64, 0.0f64, 0.0f64);
    for y in lo..hi {
        for x in lo..hi {
            let i = y * CHIP_SIZE + x;
            let laplacian = luma(i - 1) + luma(i + 1) + luma(i - CHIP_SIZE) + luma(i + CHIP_SIZE)
                - 4.0 * luma(i);
            let l = f64::from(laplacian);
            sum += l;
            sum_sq += l * l;
            count += 1.0;
        }
    }
    if count == 0.0 {
        return 0.0;
    }
    let mean = sum / count;
    (sum_sq / count - mean * mean).max(0.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{PixelBox, Point, RelativeBox};

    fn face(landmarks: [Point; 5], width: f32, confidence: f32) -> DetectedFace {
        DetectedFace {
            bbox: PixelBox {
                x: 0.0,
                y: 0.0,
                width,
                height: width * 1.2,
            },
            bounding_box: RelativeBox {
                left: 0.0,
                top: 0.0,
                width: 0.1,
                height: 0.1,
            },
            landmarks,
            confidence,
        }
    }

    fn frontal() -> [Point; 5] {
        [
            Point::new(30.0, 40.0),
            Point::new(70.0, 40.0),
            Point::new(50.0, 60.0),
            Point::new(35.0, 80.0),
            Point::new(65.0, 80.0),
        ]
    }

    #[test]
    fn a_frontal_face_passes_and_a_turned_one_is_refused_for_its_pose() {
        let gate = QualityGate::default();
        let q = gate.check_detection(&face(frontal(), 100.0, 0.95)).unwrap();
        assert!(q.yaw_deg.abs() < 1.0 && q.roll_deg.abs() < 1.0, "{q:?}");
        // Nose tip 0.6 eye distances to the side: ~50 degrees.
        let mut turned = frontal();
        turned[2].x = 50.0 + 0.6 * 40.0;
        let (reason, q) = gate
            .check_detection(&face(turned, 100.0, 0.95))
            .unwrap_err();
        assert_eq!(reason, UnknownReason::Pose);
        assert!((q.yaw_deg - 50.2).abs() < 1.0, "{q:?}");
        // A smaller turn the other way passes, with its sign.
        let mut slight = frontal();
        slight[2].x = 50.0 - 0.2 * 40.0;
        let q = gate.check_detection(&face(slight, 100.0, 0.95)).unwrap();
        assert!((q.yaw_deg + 21.8).abs() < 1.0, "{q:?}");
    }

    #[test]
    fn small_doubtful_and_rolled_faces_are_refused_in_order() {
        let gate = QualityGate::default();
        let small = gate.check_detection(&face(frontal(), 20.0, 0.5));
        assert_eq!(small.unwrap_err().0, UnknownReason::SmallFace);
        let doubtful = gate.check_detection(&face(frontal(), 100.0, 0.75));
        assert_eq!(doubtful.unwrap_err().0, UnknownReason::LowConfidence);
        // Eyes one above the other: rolled 90 degrees.
        let mut rolled = frontal();
        rolled[0] = Point::new(50.0, 20.0);
        rolled[1] = Point::new(50.0, 60.0);
        rolled[2] = Point::new(30.0, 40.0);
        let (reason, q) = gate
            .check_detection(&face(rolled, 100.0, 0.95))
            .unwrap_err();
        assert_eq!(reason, UnknownReason::Pose);
        assert!((q.roll_deg - 90.0).abs() < 1.0, "{q:?}");
    }

    #[test]
    fn a_flat_chip_is_blurry_and_a_textured_one_is_sharp() {
        let gate = QualityGate::default();
        let n = CHIP_SIZE * CHIP_SIZE;
        let flat = vec![128.0f32; 3 * n];
        assert_eq!(chip_sharpness(&flat), 0.0);
        let q = gate.check_chip(FaceQuality::default(), &flat);
        assert_eq!(q.unwrap_err().0, UnknownReason::Blurry);
        // A checkerboard of 2-pixel squares: strong edges everywhere.
        let mut textured = vec![0.0f32; 3 * n];
        for c in 0..3 {
            for y in 0..CHIP_SIZE {
                for x in 0..CHIP_SIZE {
                    textured[c * n + y * CHIP_SIZE + x] = if (x / 2 + y / 2) % 2 == 0 {
                        200.0
                    } else {
                        50.0
                    };
                }
            }
        }
        let q = gate.check_chip(FaceQuality::default(), &textured).unwrap();
        assert!(q.sharpness.unwrap() > 1000.0, "{q:?}");
        // A short chip measures nothing rather than reading out of bounds.
        assert_eq!(chip_sharpness(&textured[..n]), 0.0);
    }

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        let gate = QualityGate {
            min_confidence: 1.5,
            ..QualityGate::default()
        };
        assert_eq!(gate.validate().unwrap_err().field, "min_confidence");
        let gate = QualityGate {
            min_sharpness: f32::NAN,
            ..QualityGate::default()
        };
        assert_eq!(gate.validate().unwrap_err().field, "min_sharpness");
        QualityGate::default().validate().unwrap();
    }
}
