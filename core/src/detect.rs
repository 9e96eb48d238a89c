//! Face detection with YuNet (libfacedetection / OpenCV Zoo) in tract:
//! letterbox to a multiple of 32, run, decode the anchor-free outputs, NMS.
//! Pre-processing and decoding follow `FaceDetectorYN` exactly (see
//! blobs/MODELS.md).

use image::RgbImage;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use crate::error::{ConfigError, ModelError};
use crate::geometry::{PixelBox, Point, RelativeBox};
use crate::kernels::Kernels;
use crate::plans::PlanCache;
use crate::resample::{ChannelOrder, letterbox_into_planes};

const MODEL: &str = "YuNet detector";
const STRIDES: [usize; 3] = [8, 16, 32];

/// Detector settings. Defaults are those calibrated on the development set
/// (see MODELS.md): long side 640, score 0.7, NMS IoU 0.3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// The image is scaled so that its long side becomes this many pixels
    /// (bounded by `max_upscale`), then padded to a multiple of 32.
    pub input_long_side_px: u32,
    /// Small images are enlarged at most by this factor.
    pub max_upscale: f32,
    /// Input sides are rounded up to a multiple of this (a multiple of 32).
    /// Larger steps mean fewer distinct shapes, so fewer optimized plans.
    pub shape_step_px: u32,
    /// Faces scoring below this are dropped (0..1).
    pub score_threshold: f32,
    /// Overlapping boxes above this IoU are suppressed.
    pub nms_iou_threshold: f32,
    /// At most this many candidates enter NMS.
    pub top_k: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            input_long_side_px: 640,
            max_upscale: 2.0,
            shape_step_px: 32,
            score_threshold: 0.7,
            nms_iou_threshold: 0.3,
            top_k: 5000,
        }
    }
}

impl DetectorConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, reason| {
            Err(ConfigError {
                field,
                value,
                reason,
            })
        };
        if !(32..=4096).contains(&self.input_long_side_px) {
            return bad(
                "input_long_side_px",
                self.input_long_side_px.to_string(),
                "must be within 32..=4096",
            );
        }
        if self.shape_step_px == 0 || !self.shape_step_px.is_multiple_of(32) {
            return bad(
                "shape_step_px",
                self.shape_step_px.to_string(),
                "must be a positive multiple of 32",
            );
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return bad(
                "score_threshold",
                self.score_threshold.to_string(),
                "must be within 0..=1",
            );
        }
        if !(0.0..=1.0).contains(&self.nms_iou_threshold) {
            return bad(
                "nms_iou_threshold",
                self.nms_iou_threshold.to_string(),
                "must be within 0..=1",
            );
        }
        if !(self.max_upscale >= 1.0 && self.max_upscale <= 8.0) {
            return bad(
                "max_upscale",
                self.max_upscale.to_string(),
                "must be within 1..=8",
            );
        }
        Ok(())
    }
}

/// One detected face.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedFace {
    /// Box in pixels of the (orientation-corrected) image.
    pub bbox: PixelBox,
    /// Box as ratios of the image size (Rekognition's BoundingBox).
    pub bounding_box: RelativeBox,
    /// Right eye, left eye, nose tip, right and left mouth corner (the
    /// subject's right and left), in pixels.
    pub landmarks: [Point; 5],
    /// Detector score in 0..1.
    pub confidence: f32,
}

impl DetectedFace {
    /// Orders faces largest first (by box area), the order every answer of
    /// the CLI and the API lists them in.
    pub fn largest_first(faces: &mut [DetectedFace]) {
        faces.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    }
}

/// A YuNet model, loaded once and shared between threads (`Arc`).
#[derive(Debug)]
pub struct Detector {
    plans: PlanCache,
    fixed_input: Option<(usize, usize)>,
    config: DetectorConfig,
}

impl Detector {
    /// Loads YuNet from ONNX bytes. Works with the fixed-size files (the
    /// image is letterboxed into their input) and the `*_dynamic` files.
    pub fn from_onnx_bytes(bytes: &[u8], config: DetectorConfig) -> Result<Self, ModelError> {
        Self::from_onnx_bytes_with_kernels(bytes, config, Kernels::default())
    }

    /// As [`Detector::from_onnx_bytes`], choosing who runs the depthwise
    /// convolutions and max pooling: the project's kernels (the default)
    /// or tract's stock ops, the reference tests and benches compare with.
    pub fn from_onnx_bytes_with_kernels(
        bytes: &[u8],
        config: DetectorConfig,
        kernels: Kernels,
    ) -> Result<Self, ModelError> {
        config.validate().map_err(|e| ModelError::Load {
            model: MODEL,
            reason: e.to_string(),
        })?;
        let plans = PlanCache::from_onnx_bytes(MODEL, bytes, kernels)?;
        let fixed_input = plans.fixed_input_shape().map(|[_, _, h, w]| (w, h));
        Ok(Self {
            plans,
            fixed_input,
            config,
        })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// The (width, height) of the network input and the scale applied to
    /// an image of `width` x `height`.
    pub fn input_geometry(&self, width: u32, height: u32) -> (usize, usize, f32) {
        let (width, height) = (width.max(1) as f32, height.max(1) as f32);
        if let Some((fw, fh)) = self.fixed_input {
            return (fw, fh, (fw as f32 / width).min(fh as f32 / height));
        }
        let step = self.config.shape_step_px as f32;
        let scale = (self.config.input_long_side_px as f32 / width.max(height))
            .min(self.config.max_upscale);
        let side = |v: f32| (((v * scale) / step).ceil() * step).max(32.0) as usize;
        (side(width), side(height), scale)
    }

    /// Builds the optimized plan for the input shape used for images of
    /// this size, so a caller can pay that cost before the first request.
    pub fn prepare_for(&self, width: u32, height: u32) -> Result<(), ModelError> {
        let (in_w, in_h, _) = self.input_geometry(width, height);
        self.plans.plan([1, 3, in_h, in_w]).map(|_| ())
    }

    /// [`Detector::prepare_for`] on a thread of its own, returning at once;
    /// nothing to do when that plan is built or being built. Returns
    /// whether a thread was started. A detection of that shape meanwhile
    /// waits for the plan; a failed build is reported by that detection.
    pub fn prepare_in_background(&self, width: u32, height: u32) -> bool {
        let (in_w, in_h, _) = self.input_geometry(width, height);
        self.plans.plan_in_background([1, 3, in_h, in_w])
    }

    /// Detects faces, best first.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<DetectedFace>, ModelError> {
        let (width, height) = image.dimensions();
        let (in_w, in_h, scale) = self.input_geometry(width, height);
        // Written straight into the tensor tract takes (an array converted
        // into one is copied).
        let mut input = Tensor::zero::<f32>(&[1, 3, in_h, in_w]).map_err(run_error)?;
        {
            let mut view = input.try_as_plain_ram_mut().map_err(run_error)?;
            let planes = view.as_slice_mut::<f32>().map_err(run_error)?;
            letterbox_into_planes(image, scale, in_w, in_h, ChannelOrder::Bgr, planes);
        }
        let outputs = self.plans.run(input)?;
        let candidates = decode_outputs(&outputs, in_w, in_h, self.config.score_threshold)?;
        let kept =
            non_max_suppression(candidates, self.config.nms_iou_threshold, self.config.top_k);
        Ok(kept
            .into_iter()
            .map(|c| c.into_face(scale, width, height))
            .collect())
    }
}

fn run_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Run {
        model: MODEL,
        reason: e.to_string(),
    }
}

fn output_error(reason: String) -> ModelError {
    ModelError::Output {
        model: MODEL,
        reason,
    }
}

/// A face in network-input coordinates, before un-letterboxing.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    bbox: PixelBox,
    landmarks: [Point; 5],
    score: f32,
}

impl Candidate {
    fn into_face(self, scale: f32, width: u32, height: u32) -> DetectedFace {
        let unscale = |v: f32| v / scale;
        let bbox = PixelBox {
            x: unscale(self.bbox.x),
            y: unscale(self.bbox.y),
            width: unscale(self.bbox.width),
            height: unscale(self.bbox.height),
        }
        .clipped(width, height);
        DetectedFace {
            bounding_box: bbox.relative_to(width, height),
            bbox,
            landmarks: self
                .landmarks
                .map(|p| Point::new(unscale(p.x), unscale(p.y))),
            confidence: self.score,
        }
    }
}

fn decode_outputs(
    outputs: &[TValue],
    in_w: usize,
    in_h: usize,
    score_threshold: f32,
) -> Result<Vec<Candidate>, ModelError> {
    if outputs.len() != 12 {
        return Err(output_error(format!(
            "expected 12 outputs, got {}",
            outputs.len()
        )));
    }
    let view = |i: usize, per_cell: usize, cells: usize| -> Result<&[f32], ModelError> {
        let data = outputs[i]
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(|e| output_error(e.to_string()))?;
        if data.len() != cells * per_cell {
            return Err(output_error(format!(
                "output {i} has {} values, expected {}",
                data.len(),
                cells * per_cell
            )));
        }
        Ok(data)
    };
    let mut candidates = Vec::new();
    for (level, stride) in STRIDES.into_iter().enumerate() {
        let (cols, rows) = (in_w / stride, in_h / stride);
        let cells = cols * rows;
        let cls = view(level, 1, cells)?;
        let obj = view(3 + level, 1, cells)?;
        let bbox = view(6 + level, 4, cells)?;
        let kps = view(9 + level, 10, cells)?;
        let s = stride as f32;
        for idx in 0..cells {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            if score.is_nan() || score < score_threshold {
                continue;
            }
            let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
            let b = &bbox[idx * 4..idx * 4 + 4];
            let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            if !(w.is_finite() && h.is_finite()) {
                continue;
            }
            let k = &kps[idx * 10..idx * 10 + 10];
            let landmarks =
                std::array::from_fn(|n| Point::new((k[2 * n] + c) * s, (k[2 * n + 1] + r) * s));
            candidates.push(Candidate {
                bbox: PixelBox {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    width: w,
                    height: h,
                },
                landmarks,
                score,
            });
        }
    }
    Ok(candidates)
}

/// Greedy NMS, highest score first, as OpenCV's `NMSBoxes`.
fn non_max_suppression(mut candidates: Vec<Candidate>, iou: f32, top_k: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(top_k);
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        if kept
            .iter()
            .all(|k| k.bbox.intersection_over_union(&candidate.bbox) <= iou)
        {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(x: f32, score: f32) -> Candidate {
        Candidate {
            bbox: PixelBox {
                x,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            landmarks: [Point::default(); 5],
            score,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = non_max_suppression(
            vec![
                candidate(0.0, 0.8),
                candidate(1.0, 0.9),
                candidate(50.0, 0.75),
            ],
            0.3,
            5000,
        );
        let scores: Vec<f32> = kept.iter().map(|c| c.score).collect();
        assert_eq!(scores, vec![0.9, 0.75]);
    }

    #[test]
    fn config_validation_names_the_field() {
        let bad = DetectorConfig {
            shape_step_px: 48,
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("shape_step_px"));
        assert!(DetectorConfig::default().validate().is_ok());
    }
}
