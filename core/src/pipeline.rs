//! The whole pipeline behind one handle: decode, detect, align, embed,
//! match, enroll. Models are loaded once; the handle is `Send + Sync` and
//! meant to be shared (`Arc`) by every thread and every trigger.

use std::time::{Duration, Instant};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::{Jitter, extract_chip};
use crate::collection::{Collection, EnrolledFace, FaceMatch, MatchConfig, similarity};
use crate::decode::{DecodeLimits, decode_image_with};
use crate::detect::{DetectedFace, Detector, DetectorConfig};
use crate::embed::{CHIP_VALUES, Embedder, Embedding, l2_distance, mean_embedding};
use crate::enroll::{EnrollPolicy, UnindexedReason};
use crate::error::{FaceError, ModelError};
use crate::quality::{self, FaceQuality, QualityGate, UnknownReason};

/// Everything tunable, with the calibrated defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub matching: MatchConfig,
    /// Which faces are searched at all (see [`crate::quality`]).
    pub quality: QualityGate,
    pub enroll: EnrollPolicy,
    pub decode_limits: DecodeLimits,
}

/// The model files, as bytes: `face-core` reads no files itself.
#[derive(Debug, Clone, Copy)]
pub struct ModelBytes<'a> {
    /// A YuNet ONNX file (fixed or dynamic input).
    pub detector_onnx: &'a [u8],
    /// The dlib ResNet recognizer ONNX file.
    pub recognizer_onnx: &'a [u8],
    /// Names the model pair; stored with collections so that embeddings
    /// from different models are never compared.
    pub face_model_version: &'a str,
}

/// Milliseconds spent per stage for one image.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StageTimings {
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub align_ms: f64,
    pub embed_ms: f64,
    pub match_ms: f64,
}

/// A detected face with its descriptor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyzedFace {
    #[serde(flatten)]
    pub face: DetectedFace,
    #[serde(skip)]
    pub embedding: Embedding,
}

/// A detected face with its open-set match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognizedFace {
    #[serde(flatten)]
    pub face: DetectedFace,
    #[serde(rename = "match")]
    pub face_match: FaceMatch,
    /// What the quality gate measured.
    #[serde(default)]
    pub quality: FaceQuality,
}

/// Two faces compared (`facectl compare`, `POST /v1/compare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FaceComparison {
    /// L2 distance between the descriptors.
    pub distance: f32,
    /// 0..100, 50 at the threshold.
    pub similarity: f32,
    /// `distance` is under the matching threshold.
    pub same_person: bool,
    pub source_face: DetectedFace,
    pub target_face: DetectedFace,
}

/// The outcome of enrolling one photo.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, never stored in bulk
pub enum EnrollOutcome {
    Indexed {
        face: DetectedFace,
        embedding: Embedding,
        augmentations: u32,
    },
    Unindexed(UnindexedReason),
}

#[derive(Debug)]
pub struct FacePipeline {
    detector: Detector,
    embedder: Embedder,
    config: PipelineConfig,
    face_model_version: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl FacePipeline {
    /// Parses both models, the recognizer on a thread of its own (11 ms
    /// against the detector's 2, `ci` build); plans are built on first use
    /// or ahead of it ([`Detector::prepare_in_background`],
    /// [`Embedder::prepare_in_background`]).
    pub fn new(models: ModelBytes<'_>, config: PipelineConfig) -> Result<Self, FaceError> {
        config.detector.validate()?;
        config.quality.validate()?;
        let (detector, embedder) = std::thread::scope(|scope| {
            let recognizer = scope.spawn(|| Embedder::from_onnx_bytes(models.recognizer_onnx));
            let detector = Detector::from_onnx_bytes(models.detector_onnx, config.detector);
            // A panic there is tract's own bug: it surfaces here as it
            // would have on this thread.
            let embedder = recognizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (detector, embedder)
        });
        Ok(Self {
            detector: detector?,
            embedder: embedder?,
            config,
            face_model_version: models.face_model_version.to_string(),
        })
    }

    /// [`FacePipeline::new`] with a recognizer loaded elsewhere, such as
    /// one still parsing on a thread of its own
    /// ([`Embedder::load_in_background`]): only the detector is parsed
    /// here (2 ms against the recognizer's 11, `ci` build, plus reading its
    /// 22 MB), so an on-demand cold start can serve its first request
    /// while the recognizer is still loading, meanwhile decoding the photo
    /// and finding its faces.
    pub fn with_embedder(
        detector_onnx: &[u8],
        embedder: Embedder,
        face_model_version: &str,
        config: PipelineConfig,
    ) -> Result<Self, FaceError> {
        config.detector.validate()?;
        config.quality.validate()?;
        Ok(Self {
            detector: Detector::from_onnx_bytes(detector_onnx, config.detector)?,
            embedder,
            config,
            face_model_version: face_model_version.to_string(),
        })
    }

    /// [`FacePipeline::new`] with the plans a first request needs already
    /// built (the detector's for a `width` x `height` photo, the
    /// recognizer's for one chip), the recognizer's on a thread of its own:
    /// the two are independent, so with two cores a cold start waits for
    /// the longer of them instead of their sum. Lambda shows two vCPUs at
    /// every memory size but gives CPU time in proportion to memory (one
    /// vCPU's worth at 1,769 MB), so there the gain grows with the
    /// function's memory; with one core's worth it costs a spawn.
    pub fn new_prepared(
        models: ModelBytes<'_>,
        config: PipelineConfig,
        width: u32,
        height: u32,
    ) -> Result<Self, FaceError> {
        let pipeline = Self::new(models, config)?;
        pipeline.embedder.prepare_in_background(1);
        pipeline.detector.prepare_for(width, height)?;
        // Waits for that build, and reports its error.
        pipeline.embedder.prepare(1)?;
        Ok(pipeline)
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn face_model_version(&self) -> &str {
        &self.face_model_version
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Decodes a photo. When the detector has no plan for the photo's
    /// shape yet, it starts building one on another thread as soon as the
    /// headers give the shape, so the two overlap (a plan takes about as
    /// long as a detection; a cold start's first photo would otherwise
    /// wait for both in turn).
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, FaceError> {
        let decoded = decode_image_with(bytes, &self.config.decode_limits, |width, height| {
            self.detector.prepare_in_background(width, height);
        })?;
        Ok(decoded.rgb)
    }

    pub fn detect(&self, image: &RgbImage) -> Result<Vec<DetectedFace>, FaceError> {
        Ok(self.detector.detect(image)?)
    }

    /// Aligns each face with each jitter into one batch of chips.
    pub fn chips(&self, image: &RgbImage, faces: &[DetectedFace], jitters: &[Jitter]) -> Vec<f32> {
        let mut chips = vec![0.0f32; faces.len() * jitters.len() * CHIP_VALUES];
        let mut slots = chips.chunks_exact_mut(CHIP_VALUES);
        for face in faces {
            for jitter in jitters {
                if let Some(slot) = slots.next() {
                    // Degenerate landmarks leave a black chip: its
                    // embedding matches no one rather than failing the batch.
                    extract_chip(image, &face.landmarks, jitter, slot);
                }
            }
        }
        chips
    }

    /// Detects and embeds every face of a decoded image.
    pub fn analyze_image(
        &self,
        image: &RgbImage,
        timings: &mut StageTimings,
    ) -> Result<Vec<AnalyzedFace>, FaceError> {
        let start = Instant::now();
        let faces = self.detect(image)?;
        let detected = Instant::now();
        let chips = self.chips(image, &faces, &[Jitter::NONE]);
        let aligned = Instant::now();
        let embeddings = self.embed(&chips)?;
        timings.detect_ms += ms(detected - start);
        timings.align_ms += ms(aligned - detected);
        timings.embed_ms += ms(aligned.elapsed());
        Ok(faces
            .into_iter()
            .zip(embeddings)
            .map(|(face, embedding)| AnalyzedFace { face, embedding })
            .collect())
    }

    /// Embeds chips one model run per chip. In tract 0.23 a batch of N
    /// switches the convolutions from the fused lazy im2col to an explicit
    /// Im2col copy: measured 13 ms for one chip but 83 ms for a batch of 4
    /// (`cargo run -p face-core --example profile_model`), so per-chip runs
    /// are the fast path. [`Embedder::embed_chips`] still takes batches.
    pub fn embed(&self, chips: &[f32]) -> Result<Vec<Embedding>, FaceError> {
        let mut out = Vec::with_capacity(chips.len() / CHIP_VALUES);
        for chip in chips.chunks_exact(CHIP_VALUES) {
            out.extend(self.embedder.embed_chips(chip)?);
        }
        Ok(out)
    }

    /// Decodes, detects and embeds.
    pub fn analyze(
        &self,
        bytes: &[u8],
        timings: &mut StageTimings,
    ) -> Result<(RgbImage, Vec<AnalyzedFace>), FaceError> {
        let start = Instant::now();
        let image = self.decode(bytes)?;
        timings.decode_ms += ms(start.elapsed());
        let faces = self.analyze_image(&image, timings)?;
        Ok((image, faces))
    }

    /// Every face of `faces` with who it is, or why it is unknown: the
    /// quality gate first (only the faces that pass are cut, measured for
    /// sharpness and embedded), then open-set matching under `matching`
    /// (usually `self.config().matching`). In `faces`' order.
    pub fn recognize_detected(
        &self,
        image: &RgbImage,
        faces: Vec<DetectedFace>,
        collection: &Collection,
        matching: &MatchConfig,
        timings: &mut StageTimings,
    ) -> Result<Vec<RecognizedFace>, FaceError> {
        let start = Instant::now();
        let gate = &self.config.quality;
        let mut verdicts: Vec<Result<FaceQuality, (UnknownReason, FaceQuality)>> =
            faces.iter().map(|f| gate.check_detection(f)).collect();
        let mut chip = vec![0.0f32; CHIP_VALUES];
        let mut chips = Vec::new();
        for (face, verdict) in faces.iter().zip(verdicts.iter_mut()) {
            if let Ok(quality) = *verdict {
                chip.fill(0.0);
                extract_chip(image, &face.landmarks, &Jitter::NONE, &mut chip);
                *verdict = gate.check_chip(quality, &chip);
                if verdict.is_ok() {
                    chips.extend_from_slice(&chip);
                }
            }
        }
        let aligned = Instant::now();
        let mut embeddings = self.embed(&chips)?.into_iter();
        let embedded = Instant::now();
        let out = faces
            .into_iter()
            .zip(verdicts)
            .map(|(face, verdict)| match verdict {
                Ok(quality) => RecognizedFace {
                    // One embedding per chip that passed, in order; the
                    // fallback cannot happen.
                    face_match: embeddings.next().map_or_else(
                        || FaceMatch::unsearched(UnknownReason::Blurry),
                        |e| collection.match_embedding(&e, matching),
                    ),
                    face,
                    quality,
                },
                Err((reason, quality)) => RecognizedFace {
                    face_match: FaceMatch::unsearched(reason),
                    face,
                    quality,
                },
            })
            .collect();
        timings.align_ms += ms(aligned - start);
        timings.embed_ms += ms(embedded - aligned);
        timings.match_ms += ms(embedded.elapsed());
        Ok(out)
    }

    /// Detects and recognizes every face of a decoded image, largest first.
    pub fn recognize_image(
        &self,
        image: &RgbImage,
        collection: &Collection,
        timings: &mut StageTimings,
    ) -> Result<Vec<RecognizedFace>, FaceError> {
        collection.check_compatible(&self.face_model_version)?;
        let faces = self.detect_largest_first(image, timings)?;
        self.recognize_detected(image, faces, collection, &self.config.matching, timings)
    }

    fn detect_largest_first(
        &self,
        image: &RgbImage,
        timings: &mut StageTimings,
    ) -> Result<Vec<DetectedFace>, FaceError> {
        let start = Instant::now();
        let mut faces = self.detect(image)?;
        timings.detect_ms += ms(start.elapsed());
        DetectedFace::largest_first(&mut faces);
        Ok(faces)
    }

    /// Matches analyzed faces against a collection, ungated: every face is
    /// searched (the benchmark's and the evaluation's raw figures).
    pub fn match_faces(
        &self,
        faces: Vec<AnalyzedFace>,
        collection: &Collection,
        timings: &mut StageTimings,
    ) -> Vec<RecognizedFace> {
        let start = Instant::now();
        let out = faces
            .into_iter()
            .map(|f| RecognizedFace {
                face_match: collection.match_embedding(&f.embedding, &self.config.matching),
                quality: quality::measure_detection(&f.face),
                face: f.face,
            })
            .collect();
        timings.match_ms += ms(start.elapsed());
        out
    }

    /// Every face of the image, largest first, with who it is, or why it
    /// is unknown.
    pub fn recognize(
        &self,
        bytes: &[u8],
        collection: &Collection,
        timings: &mut StageTimings,
    ) -> Result<(RgbImage, Vec<RecognizedFace>), FaceError> {
        collection.check_compatible(&self.face_model_version)?;
        let (image, faces) = self.decode_and_detect(bytes, timings)?;
        let faces = self.recognize_faces(&image, faces, collection, timings)?;
        Ok((image, faces))
    }

    /// The first half of [`Self::recognize`], which needs no collection
    /// (a caller can fetch one meanwhile): the image and its faces,
    /// largest first.
    pub fn decode_and_detect(
        &self,
        bytes: &[u8],
        timings: &mut StageTimings,
    ) -> Result<(RgbImage, Vec<DetectedFace>), FaceError> {
        let start = Instant::now();
        let image = self.decode(bytes)?;
        timings.decode_ms += ms(start.elapsed());
        let faces = self.detect_largest_first(&image, timings)?;
        Ok((image, faces))
    }

    /// The second half of [`Self::recognize`]: who each face of
    /// [`Self::decode_and_detect`] is, or why it is unknown.
    pub fn recognize_faces(
        &self,
        image: &RgbImage,
        faces: Vec<DetectedFace>,
        collection: &Collection,
        timings: &mut StageTimings,
    ) -> Result<Vec<RecognizedFace>, FaceError> {
        collection.check_compatible(&self.face_model_version)?;
        self.recognize_detected(image, faces, collection, &self.config.matching, timings)
    }

    /// The enrollment embedding of a photo's main face: the mean over the
    /// policy's augmentations, or the reason the photo is refused.
    pub fn enroll_image(&self, image: &RgbImage) -> Result<EnrollOutcome, FaceError> {
        let faces = self.detect(image)?;
        self.enroll_detected(image, &faces)
    }

    /// [`Self::enroll_image`] for a caller that already has the image's
    /// detections, so the detector does not run twice.
    pub fn enroll_detected(
        &self,
        image: &RgbImage,
        faces: &[DetectedFace],
    ) -> Result<EnrollOutcome, FaceError> {
        let face = match self.config.enroll.select(faces) {
            Ok(face) => face.clone(),
            Err(reason) => return Ok(EnrollOutcome::Unindexed(reason)),
        };
        let jitters = if self.config.enroll.augmentations.is_empty() {
            vec![Jitter::NONE]
        } else {
            self.config.enroll.augmentations.clone()
        };
        let chips = self.chips(image, std::slice::from_ref(&face), &jitters);
        let embeddings = self.embed(&chips)?;
        let embedding = mean_embedding(&embeddings).ok_or_else(|| ModelError::Output {
            model: "dlib ResNet recognizer",
            reason: "no embedding".into(),
        })?;
        Ok(EnrollOutcome::Indexed {
            face,
            embedding,
            augmentations: jitters.len() as u32,
        })
    }

    /// The largest face of the image with its descriptor, or `None` when
    /// it has no face: what `compare` compares. Only that face is embedded.
    pub fn largest_face(&self, image: &RgbImage) -> Result<Option<AnalyzedFace>, FaceError> {
        let faces = self.detect(image)?;
        let Some(face) = faces
            .into_iter()
            .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
        else {
            return Ok(None);
        };
        let chips = self.chips(image, std::slice::from_ref(&face), &[Jitter::NONE]);
        let embedding = self
            .embed(&chips)?
            .pop()
            .ok_or_else(|| ModelError::Output {
                model: "dlib ResNet recognizer",
                reason: "no embedding".into(),
            })?;
        Ok(Some(AnalyzedFace { face, embedding }))
    }

    /// Whether two faces are the same person, by this pipeline's threshold.
    pub fn compare_faces(&self, source: &AnalyzedFace, target: &AnalyzedFace) -> FaceComparison {
        let distance = l2_distance(&source.embedding, &target.embedding);
        let threshold = self.config.matching.threshold_l2;
        FaceComparison {
            distance,
            similarity: similarity(distance, threshold),
            same_person: distance < threshold,
            source_face: source.face.clone(),
            target_face: target.face.clone(),
        }
    }

    /// Builds the stored record for an indexed face.
    pub fn enrolled_face(
        source: &str,
        content_id: &str,
        embedding: Embedding,
        augmentations: u32,
    ) -> EnrolledFace {
        EnrolledFace {
            face_id: content_id.to_string(),
            source: source.to_string(),
            augmentations,
            embedding,
        }
    }
}
