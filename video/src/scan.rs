//! Scanning one chunk of video for known people. In tracked mode the
//! detector runs on sampled frames, detections are tied into tracks by IoU,
//! and the recognizer runs on new tracks, on a periodic re-check and when
//! a track's face grows; a track's name is decided from all of its
//! recognitions ([`crate::TrackPolicy`]) and holds on every frame of it.
//! Every-frame mode is the naive baseline: detect and recognize every face
//! of every frame, each decided alone. Both pass faces through the
//! pipeline's quality gate first ([`face_core::quality`]).

use std::time::Instant;

use std::collections::HashMap;

use face_core::{
    Collection, DetectedFace, FaceError, FacePipeline, MatchConfig, PixelBox, RecognizedFace,
    RgbImage, StageTimings, UnknownReason, collection::CollectionError,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::decode::{FrameRange, FrameReader, Sampling};
use crate::error::VideoError;
use crate::index::VideoIndex;
use crate::track::{TrackPolicy, Tracker};

#[derive(Debug, Error)]
pub enum ScanError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Face(#[from] FaceError),
    #[error(transparent)]
    Collection(#[from] CollectionError),
    #[error("invalid scan setting {field}: {reason}")]
    Config {
        field: &'static str,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScanMode {
    /// Detect on sampled frames, track, recognize new tracks only.
    Tracked,
    /// Detect and recognize every face of every frame (the baseline).
    EveryFrame,
}

/// Scan settings; the defaults were measured on the shared videos (see
/// the README's video section).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    pub mode: ScanMode,
    /// Tracked mode: run the detector on every n-th frame of a chunk
    /// (default 3); frames in between carry the tracks' last boxes.
    pub detect_every_n_frames: u32,
    /// Tracked mode: re-run the recognizer on a track after this many
    /// analyzed frames (default 10), in case the first view was poor.
    pub recheck_every_n_detections: u32,
    /// A detection continues a track when their boxes overlap this much
    /// (IoU, default 0.3).
    pub iou_threshold: f32,
    /// A track survives this many analyzed frames without a detection
    /// (default 1).
    pub max_missed_detections: u32,
    /// Tracked mode: a frame whose luma histogram differs from the last
    /// analyzed one's by more than this (0..1, see [`Sampling`]) is
    /// analyzed at once and starts new tracks (default 0.08: the shared
    /// slideshow's cuts measure 0.1-0.9, the handheld street clip stays
    /// under 0.05 for half a second).
    pub scene_change_threshold: f32,
    /// Tracked mode: when a track is named, and when it is recognized
    /// again (see [`TrackPolicy`]).
    pub track: TrackPolicy,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            mode: ScanMode::Tracked,
            detect_every_n_frames: 3,
            recheck_every_n_detections: 10,
            iou_threshold: 0.3,
            max_missed_detections: 1,
            scene_change_threshold: 0.08,
            track: TrackPolicy::default(),
        }
    }
}

impl ScanConfig {
    /// Which frames the decoder converts (and decodes at all) for this
    /// configuration: the tracked scan analyzes a frame in
    /// `detect_every_n_frames` and every cut, so the frames nothing
    /// references are left undecoded; the every-frame scan decodes all.
    pub fn sampling(&self) -> Sampling {
        match self.mode {
            ScanMode::Tracked => Sampling {
                every_n_frames: u64::from(self.detect_every_n_frames),
                change_threshold: Some(self.scene_change_threshold),
                skip_non_reference: true,
            },
            ScanMode::EveryFrame => Sampling::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ScanError> {
        let bad = |field, reason| Err(ScanError::Config { field, reason });
        if self.detect_every_n_frames == 0 {
            return bad("detect_every_n_frames", "must be at least 1");
        }
        if self.recheck_every_n_detections == 0 {
            return bad("recheck_every_n_detections", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.iou_threshold) {
            return bad("iou_threshold", "must be within 0..=1");
        }
        if !(0.0..=1.0).contains(&self.scene_change_threshold) {
            return bad("scene_change_threshold", "must be within 0..=1");
        }
        if !(0.0..1.0).contains(&self.track.min_agreement) {
            return bad("track.min_agreement", "must be within 0..1");
        }
        if self.track.vote_threshold_l2.is_nan() || self.track.vote_threshold_l2 <= 0.0 {
            return bad("track.vote_threshold_l2", "must be above 0");
        }
        if self.track.recheck_growth.is_nan() || self.track.recheck_growth < 1.0 {
            return bad("track.recheck_growth", "must be at least 1");
        }
        Ok(())
    }
}

/// One face in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceInFrame {
    /// Unique within the chunk (tracked mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<u32>,
    pub bbox: PixelBox,
    pub confidence: f32,
    /// The person, or `None` for unknown.
    pub person: Option<String>,
    /// L2 distance of the recognition that named the person (tracked: the
    /// track's best).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<f32>,
    /// Why the face is unknown (tracked: the track's last recognition's
    /// reason, or `below_threshold` when its recognitions did not agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
    /// Whether the recognizer ran on this face in this frame (otherwise
    /// the identity was carried along the track).
    pub recognized: bool,
    /// Whether the detector ran on this frame (otherwise the box is the
    /// track's last one).
    pub detected: bool,
}

/// The faces of one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameMatches {
    pub frame: u64,
    pub pts_s: f64,
    pub faces: Vec<FaceInFrame>,
}

/// Work done and time spent on a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScanStats {
    pub frames: u64,
    /// Frames decoded for the chunk, including those before its start
    /// (from the preceding keyframe).
    pub frames_decoded: u64,
    pub frames_detected: u64,
    pub faces_detected: u64,
    pub faces_recognized: u64,
    pub decode_ms: f64,
    pub detect_ms: f64,
    pub recognize_ms: f64,
    pub total_ms: f64,
}

impl ScanStats {
    pub fn add(&mut self, o: &ScanStats) {
        self.frames += o.frames;
        self.frames_decoded += o.frames_decoded;
        self.frames_detected += o.frames_detected;
        self.faces_detected += o.faces_detected;
        self.faces_recognized += o.faces_recognized;
        self.decode_ms += o.decode_ms;
        self.detect_ms += o.detect_ms;
        self.recognize_ms += o.recognize_ms;
        self.total_ms += o.total_ms;
    }
}

/// A scan worker's job: one chunk of a video in S3 (the Lambda payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanChunkRequest {
    /// Default: the function's `FACE_BUCKET`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The MP4's key.
    pub key: String,
    pub collection: String,
    /// Frames to report, presentation order, half-open.
    pub frames: FrameRange,
    #[serde(default)]
    pub config: ScanConfig,
}

/// The result of scanning one chunk: a worker's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkScan {
    pub frames: FrameRange,
    /// Every frame of the range, in order, faces or not.
    pub matches: Vec<FrameMatches>,
    pub stats: ScanStats,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Scans `frames` of the video whose file bytes from offset `data_offset`
/// are `data` (the whole file, or just the chunk's `DecodeSpan` bytes).
/// `on_analyzed` sees each frame the detector ran on, with its matches
/// (for thumbnails); it may ignore them.
#[allow(clippy::too_many_arguments)] // the worker's inputs, each needed
pub fn scan_chunk(
    pipeline: &FacePipeline,
    collection: &Collection,
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    frames: FrameRange,
    config: &ScanConfig,
    on_analyzed: &mut dyn FnMut(&RgbImage, &FrameMatches),
) -> Result<ChunkScan, ScanError> {
    scan_chunk_until(
        pipeline,
        collection,
        index,
        data,
        data_offset,
        frames,
        config,
        on_analyzed,
        &|| false,
    )
}

/// [`scan_chunk`], asking `stop` before each frame: once it says so, the
/// scan ends with [`VideoError::Cancelled`]. For a caller that gives up
/// on the scan (its deadline passed) and wants its thread back.
#[allow(clippy::too_many_arguments)] // the worker's inputs, each needed
pub fn scan_chunk_until(
    pipeline: &FacePipeline,
    collection: &Collection,
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    frames: FrameRange,
    config: &ScanConfig,
    on_analyzed: &mut dyn FnMut(&RgbImage, &FrameMatches),
    stop: &dyn Fn() -> bool,
) -> Result<ChunkScan, ScanError> {
    config.validate()?;
    collection.check_compatible(pipeline.face_model_version())?;
    let start = Instant::now();
    let span = index.decode_span(frames)?;
    let mut reader = FrameReader::new(index, data, data_offset, frames, config.sampling())?;
    let mut stats = ScanStats {
        frames_decoded: u64::from(span.samples_end - span.samples_start)
            - reader.samples_skipped() as u64,
        ..ScanStats::default()
    };
    let mut tracker = Tracker::new(config.iou_threshold, config.max_missed_detections);
    let mut decisions = TrackDecisions::new();
    let mut matches = Vec::with_capacity(frames.len() as usize);
    loop {
        if stop() {
            return Err(VideoError::Cancelled.into());
        }
        let t = Instant::now();
        let frame = reader.next_frame()?;
        stats.decode_ms += ms_since(t);
        let Some(frame) = frame else { break };
        stats.frames += 1;
        if frame.changed {
            tracker.clear();
        }
        let faces = match &frame.image {
            Some(image) => {
                stats.frames_detected += 1;
                let t = Instant::now();
                let detections = pipeline.detect(image)?;
                stats.detect_ms += ms_since(t);
                stats.faces_detected += detections.len() as u64;
                let t = Instant::now();
                let faces = match config.mode {
                    ScanMode::EveryFrame => {
                        recognize_all(pipeline, collection, image, &detections, &mut stats)?
                    }
                    ScanMode::Tracked => recognize_tracked(
                        pipeline,
                        collection,
                        image,
                        frame.index,
                        &detections,
                        &mut tracker,
                        &mut decisions,
                        config,
                        &mut stats,
                    )?,
                };
                stats.recognize_ms += ms_since(t);
                faces
            }
            None => carried(&tracker),
        };
        let m = FrameMatches {
            frame: frame.index,
            pts_s: frame.pts_s,
            faces,
        };
        if let Some(image) = &frame.image {
            on_analyzed(image, &m);
        }
        matches.push(m);
    }
    // A track's name holds on every frame of it, before it was decided too.
    for m in &mut matches {
        for face in &mut m.faces {
            if let Some(decided) = face.track.and_then(|t| decisions.get(&t)) {
                decided.apply(face);
            }
        }
    }
    stats.total_ms = ms_since(start);
    Ok(ChunkScan {
        frames,
        matches,
        stats,
    })
}

/// What the recognitions of a track decided, by track id: kept past the
/// track's end so that every frame of it can be given the final answer.
type TrackDecisions = HashMap<u32, Decision>;

#[derive(Debug, Clone, PartialEq)]
struct Decision {
    identity: Option<(String, f32)>,
    unknown_reason: Option<UnknownReason>,
}

impl Decision {
    fn of(track: &crate::track::Track) -> Self {
        Self {
            identity: track.identity.clone(),
            unknown_reason: match (&track.identity, track.votes.last_reason) {
                (Some(_), _) => None,
                (None, Some(reason)) => Some(reason),
                // Named now and then, but not agreed on.
                (None, None) => Some(UnknownReason::BelowThreshold),
            },
        }
    }

    fn apply(&self, face: &mut FaceInFrame) {
        face.person = self.identity.as_ref().map(|(p, _)| p.clone());
        face.distance = self.identity.as_ref().map(|(_, d)| *d);
        face.unknown_reason = self.unknown_reason;
    }
}

/// Gates, embeds and matches the given faces (see
/// [`FacePipeline::recognize_detected`]).
fn recognize(
    pipeline: &FacePipeline,
    collection: &Collection,
    image: &RgbImage,
    faces: &[DetectedFace],
    matching: &MatchConfig,
    stats: &mut ScanStats,
) -> Result<Vec<RecognizedFace>, ScanError> {
    if faces.is_empty() {
        return Ok(Vec::new());
    }
    let mut timings = StageTimings::default();
    let found =
        pipeline.recognize_detected(image, faces.to_vec(), collection, matching, &mut timings)?;
    stats.faces_recognized += found
        .iter()
        .filter(|f| {
            !f.face_match
                .unknown_reason
                .is_some_and(UnknownReason::unsearched)
        })
        .count() as u64;
    Ok(found)
}

fn recognize_all(
    pipeline: &FacePipeline,
    collection: &Collection,
    image: &RgbImage,
    detections: &[DetectedFace],
    stats: &mut ScanStats,
) -> Result<Vec<FaceInFrame>, ScanError> {
    let matching = &pipeline.config().matching;
    let found = recognize(pipeline, collection, image, detections, matching, stats)?;
    Ok(found
        .into_iter()
        .map(|f| FaceInFrame {
            track: None,
            bbox: f.face.bbox,
            confidence: f.face.confidence,
            distance: f.face_match.identity.as_ref().map(|c| c.distance),
            person: f.face_match.identity.map(|c| c.person),
            unknown_reason: f.face_match.unknown_reason,
            recognized: true,
            detected: true,
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn recognize_tracked(
    pipeline: &FacePipeline,
    collection: &Collection,
    image: &RgbImage,
    frame: u64,
    detections: &[DetectedFace],
    tracker: &mut Tracker,
    decisions: &mut TrackDecisions,
    config: &ScanConfig,
    stats: &mut ScanStats,
) -> Result<Vec<FaceInFrame>, ScanError> {
    let associations = tracker.update(frame, detections);
    let recheck = config.recheck_every_n_detections;
    let policy = &config.track;
    let due: Vec<usize> = associations
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            let track = &tracker.tracks[a.track];
            a.is_new || track.since_recognition >= recheck || track.improved(policy)
        })
        .map(|(d, _)| d)
        .collect();
    let due_faces: Vec<DetectedFace> = due.iter().map(|&d| detections[d].clone()).collect();
    // Votes are matched at the looser vote threshold; naming needs the
    // matching threshold (see `TrackPolicy`).
    let naming = &pipeline.config().matching;
    let voting = MatchConfig {
        threshold_l2: policy.vote_threshold_l2,
        ..*naming
    };
    let found = recognize(pipeline, collection, image, &due_faces, &voting, stats)?;
    for (&d, f) in due.iter().zip(&found) {
        let track = &mut tracker.tracks[associations[d].track];
        track.record(
            &f.face_match,
            f.face.bbox.width,
            policy,
            naming.threshold_l2,
        );
        decisions.insert(track.id, Decision::of(track));
    }
    Ok(detections
        .iter()
        .zip(&associations)
        .enumerate()
        .map(|(d, (det, a))| {
            let track = &tracker.tracks[a.track];
            let mut face = FaceInFrame {
                track: Some(track.id),
                bbox: det.bbox,
                confidence: det.confidence,
                person: None,
                distance: None,
                unknown_reason: None,
                recognized: due.contains(&d),
                detected: true,
            };
            Decision::of(track).apply(&mut face);
            face
        })
        .collect())
}

/// Frames between detections: the tracks seen at the last detection, with
/// their last boxes and identities.
fn carried(tracker: &Tracker) -> Vec<FaceInFrame> {
    tracker
        .tracks
        .iter()
        .filter(|t| t.missed == 0)
        .map(|t| {
            let mut face = FaceInFrame {
                track: Some(t.id),
                bbox: t.face.bbox,
                confidence: t.face.confidence,
                person: None,
                distance: None,
                unknown_reason: None,
                recognized: false,
                detected: false,
            };
            Decision::of(t).apply(&mut face);
            face
        })
        .collect()
}
