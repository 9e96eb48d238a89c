//! Enrollment policy: which detected face of a photo may be indexed, why a
//! photo is refused (like Rekognition's UnindexedFaces), and the explicit,
//! deterministic augmentation averaged into each enrolled embedding.

use serde::{Deserialize, Serialize};

use crate::align::Jitter;
use crate::detect::DetectedFace;

/// Why a photo was not indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnindexedReason {
    #[error("no face found")]
    NoFace,
    #[error("{count} faces of similar size: cannot tell whose photo it is")]
    ExceedsMaxFaces { count: usize },
    #[error("face is {width_px:.0} px wide, under the minimum of {min_px:.0} px")]
    SmallBoundingBox { width_px: f32, min_px: f32 },
    #[error("face confidence {confidence:.2} is under the minimum of {min:.2}")]
    LowConfidence { confidence: f32, min: f32 },
}

impl UnindexedReason {
    /// Rekognition's name of the reason (`NO_FACE`, ...), as serialized.
    pub fn code(&self) -> &'static str {
        match self {
            UnindexedReason::NoFace => "NO_FACE",
            UnindexedReason::ExceedsMaxFaces { .. } => "EXCEEDS_MAX_FACES",
            UnindexedReason::SmallBoundingBox { .. } => "SMALL_BOUNDING_BOX",
            UnindexedReason::LowConfidence { .. } => "LOW_CONFIDENCE",
        }
    }
}

/// Quality rules and augmentation for enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollPolicy {
    /// Faces narrower than this (pixels of the photo) are refused: their
    /// chips are upscaled blur.
    pub min_face_px: f32,
    /// Faces the detector is less sure of are refused.
    pub min_confidence: f32,
    /// With several faces, the largest is enrolled only when its area is at
    /// least this many times that of the next confident face (a portrait
    /// with people in the background); otherwise the photo is ambiguous and
    /// refused.
    pub dominance_ratio: f32,
    /// Chips embedded per face and averaged (dlib's "jitter").
    pub augmentations: Vec<Jitter>,
}

impl Default for EnrollPolicy {
    fn default() -> Self {
        Self {
            min_face_px: 40.0,
            min_confidence: 0.8,
            dominance_ratio: 2.0,
            augmentations: default_augmentations(),
        }
    }
}

/// The original chip, its mirror image, and small rotations, zooms and
/// shifts of both: 8 chips, the same every time.
pub fn default_augmentations() -> Vec<Jitter> {
    let base = [
        Jitter::NONE,
        Jitter {
            rotate_deg: 4.0,
            ..Jitter::NONE
        },
        Jitter {
            rotate_deg: -4.0,
            scale: 1.04,
            ..Jitter::NONE
        },
        Jitter {
            scale: 0.96,
            shift_x_px: 2.0,
            shift_y_px: -2.0,
            ..Jitter::NONE
        },
    ];
    base.iter()
        .flat_map(|j| [*j, Jitter { mirror: true, ..*j }])
        .collect()
}

impl EnrollPolicy {
    /// Picks the face to enroll from a photo's detections (best first, as
    /// the detector returns them), or says why none qualifies.
    pub fn select<'a>(
        &self,
        faces: &'a [DetectedFace],
    ) -> Result<&'a DetectedFace, UnindexedReason> {
        let mut by_area: Vec<&DetectedFace> = faces.iter().collect();
        by_area.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let Some(largest) = by_area.first().copied() else {
            return Err(UnindexedReason::NoFace);
        };
        // Only confident faces compete: a blurred passer-by the detector
        // barely believes in does not make a portrait ambiguous.
        let rival = by_area[1..]
            .iter()
            .find(|f| f.confidence >= self.min_confidence);
        if let Some(rival) = rival
            && largest.bbox.area() < self.dominance_ratio * rival.bbox.area()
        {
            return Err(UnindexedReason::ExceedsMaxFaces { count: faces.len() });
        }
        if largest.bbox.width < self.min_face_px {
            return Err(UnindexedReason::SmallBoundingBox {
                width_px: largest.bbox.width,
                min_px: self.min_face_px,
            });
        }
        if largest.confidence < self.min_confidence {
            return Err(UnindexedReason::LowConfidence {
                confidence: largest.confidence,
                min: self.min_confidence,
            });
        }
        Ok(largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{PixelBox, Point, RelativeBox};

    fn face(size: f32, confidence: f32) -> DetectedFace {
        DetectedFace {
            bbox: PixelBox {
                x: 0.0,
                y: 0.0,
                width: size,
                height: size,
            },
            bounding_box: RelativeBox::default(),
            landmarks: [Point::default(); 5],
            confidence,
        }
    }

    #[test]
    fn quality_rules_give_reasons() {
        let p = EnrollPolicy::default();
        assert_eq!(p.select(&[]), Err(UnindexedReason::NoFace));
        assert!(matches!(
            p.select(&[face(100.0, 0.9), face(90.0, 0.95)]),
            Err(UnindexedReason::ExceedsMaxFaces { count: 2 })
        ));
        assert_eq!(
            p.select(&[face(50.0, 0.95), face(200.0, 0.9)])
                .map(|f| f.bbox.width),
            Ok(200.0)
        );
        assert!(matches!(
            p.select(&[face(20.0, 0.9)]),
            Err(UnindexedReason::SmallBoundingBox { .. })
        ));
        assert!(matches!(
            p.select(&[face(100.0, 0.75)]),
            Err(UnindexedReason::LowConfidence { .. })
        ));
    }

    #[test]
    fn augmentation_is_deterministic_and_includes_mirror() {
        let a = default_augmentations();
        assert_eq!(a, default_augmentations());
        assert_eq!(a[0], Jitter::NONE);
        assert!(a.iter().any(|j| j.mirror) && a.iter().any(|j| j.rotate_deg != 0.0));
    }
}
