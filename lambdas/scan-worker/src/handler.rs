//! The worker's one job: `{video, collection, frames}` in, the chunk's
//! per-frame matches out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use face_contracts::metrics::Metric;
use face_core::FacePipeline;
use face_service::collections::{CollectionCache, validate_collection_name};
use face_service::metrics::Metrics;
use face_service::storage::{ObjectStore, ReadPin};
use face_service::{ServiceError, StorageError};
use face_video::{
    ChunkScan, DecodeSpan, FrameRange, ScanChunkRequest, ScanError, VideoError, VideoIndex,
    scan_chunk_until,
};
use serde_json::Value;

use crate::indexes::{ReadIndex, VideoIndexes};
use crate::jobs::DEFAULT_FRAMES_PER_CHUNK;

/// Compressed bytes one chunk may span (a 300-frame 4K chunk at 50 Mbit/s
/// is ~60 MB).
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024 * 1024;

/// A chunk decodes from the keyframe at or before its first frame, so with
/// long GOPs the k-th chunk of a GOP decodes about k chunks' frames
/// (quadratic over the GOP, and each chunk past the function's timeout).
/// Frames a chunk may decode: this many times its own frames, counted as at
/// least [`DEFAULT_FRAMES_PER_CHUNK`] (so small chunks still get 1,200: 40 s
/// at 30 fps). With 300-frame chunks that supports keyframes up to 900
/// frames apart (30 s at 30 fps; encoders default to 2-10 s).
pub const MAX_DECODE_FACTOR: u64 = 4;

/// The frames a chunk of `chunk_frames` frames may decode
/// ([`MAX_DECODE_FACTOR`]).
pub fn max_decoded_frames(chunk_frames: u64) -> u64 {
    MAX_DECODE_FACTOR.saturating_mul(chunk_frames.max(DEFAULT_FRAMES_PER_CHUNK))
}

/// Checks, before any of its bytes are read, that the chunk `frames`
/// (whose decode span is `span`) can be scanned from an object of
/// `object_size` bytes: its bytes are not empty and lie within the object
/// (S3 would refuse the ranged GET as an infrastructure error, 416 or
/// "empty range", retried to the dead-letter queue), they are at most
/// [`MAX_CHUNK_BYTES`], and it decodes at most [`max_decoded_frames`]. Each
/// failure is the video's: bad input. The planner and the worker both
/// check with it, so a job's plan refuses exactly what its workers would.
pub fn check_chunk_span(
    key: &str,
    index: &VideoIndex,
    frames: FrameRange,
    span: &DecodeSpan,
    object_size: u64,
) -> Result<(), ServiceError> {
    let (start, end) = (frames.start, frames.end);
    if span.bytes_end <= span.bytes_start {
        return Err(ServiceError::BadRequest(format!(
            "{key}: frames {start}..{end} have no bytes (the sample table gives them an empty byte range)"
        )));
    }
    if span.bytes_end > object_size {
        return Err(ServiceError::BadRequest(format!(
            "{key}: frames {start}..{end} lie at bytes {}..{}, past the end of the {object_size}-byte file (a truncated upload?)",
            span.bytes_start, span.bytes_end
        )));
    }
    // Here, not only in the worker: the planner must refuse what every
    // worker would (a long GOP at a high bitrate), not queue it to fail.
    let span_bytes = span.bytes_end - span.bytes_start;
    if span_bytes > MAX_CHUNK_BYTES {
        return Err(ServiceError::BadRequest(format!(
            "{key}: frames {start}..{end} span {span_bytes} bytes from the keyframe before them, over the limit of {MAX_CHUNK_BYTES}: send smaller chunks, or re-encode with more frequent keyframes"
        )));
    }
    let decoded = u64::from(span.samples_end.saturating_sub(span.samples_start));
    let limit = max_decoded_frames(frames.len());
    if decoded > limit {
        return Err(ServiceError::BadRequest(format!(
            "{key}: keyframes every {} frames; at most {} supported (frames {start}..{end} would decode {decoded} frames from the keyframe before them, over the limit of {limit}): re-encode with more frequent keyframes",
            max_keyframe_gap(index),
            limit - frames.len().max(DEFAULT_FRAMES_PER_CHUNK),
        )));
    }
    Ok(())
}

/// The most samples from one keyframe to the next (or to the end).
fn max_keyframe_gap(index: &VideoIndex) -> u64 {
    let mut gap = 0u64;
    let mut last = 0usize;
    for (i, sample) in index.samples.iter().enumerate() {
        if sample.keyframe {
            gap = gap.max((i - last) as u64);
            last = i;
        }
    }
    gap.max((index.samples.len() - last) as u64)
}

/// A video failure sorted by whose it is: the video's (bad input, the job
/// fails at once) or the worker's own (its encoder, its MP4 writer, its
/// montage settings and segments: internal, retried, and the job fails
/// only on the last receive). Every variant is named, so a new one is
/// sorted on purpose.
pub fn video_error(key: &str, error: VideoError) -> ServiceError {
    match error {
        VideoError::Encoder(_)
        | VideoError::Mp4Write(_)
        | VideoError::MontageConfig { .. }
        | VideoError::NoSegments
        | VideoError::BadSegment { .. }
        | VideoError::SegmentMismatch { .. }
        | VideoError::Cancelled => ServiceError::Internal(format!("{key}: {error}")),
        VideoError::NotMp4(_)
        | VideoError::NoVideoTrack
        | VideoError::UnsupportedCodec(_)
        | VideoError::UnsupportedFormat(_)
        | VideoError::Fragmented
        | VideoError::TooManyPixels { .. }
        | VideoError::TooManyFrames { .. }
        | VideoError::SampleTooLarge { .. }
        | VideoError::SampleTable(_)
        | VideoError::FrameRange { .. }
        | VideoError::SampleOutOfRange { .. }
        | VideoError::CorruptSample { .. }
        | VideoError::Decoder(_)
        | VideoError::MontageTooManyFrames { .. }
        | VideoError::MontageTooLarge { .. }
        | VideoError::DimensionMismatch { .. } => {
            ServiceError::BadRequest(format!("{key}: {error}"))
        }
    }
}

/// A scan failure sorted as [`video_error`] does; a model that failed to
/// run or gave an unexpected output is the deployment's fault (fatal), not
/// the video's.
pub fn scan_error(key: &str, error: ScanError) -> ServiceError {
    match error {
        ScanError::Video(e) => video_error(key, e),
        ScanError::Face(e) if !e.is_bad_input() => ServiceError::Face(e),
        ScanError::Face(_) | ScanError::Collection(_) | ScanError::Config { .. } => {
            ServiceError::BadRequest(format!("{key}: {error}"))
        }
    }
}

/// Tells a blocking task (a scan, a montage) to stop once the future that
/// awaits it is dropped: `tokio::time::timeout` drops only the async part,
/// and the task would run on unawaited into the environment's next
/// invocation (often the retry of the same chunk), holding its memory and
/// a core. The task asks [`Self::stop`]'s check before each frame.
#[derive(Debug, Default)]
pub struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    /// The check to hand the blocking task: true once this is dropped.
    pub fn stop(&self) -> impl Fn() -> bool + Send + 'static {
        let flag = Arc::clone(&self.0);
        move || flag.load(Ordering::Relaxed)
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A scanned chunk and what it was decoded from.
#[derive(Debug, Clone)]
pub struct ScannedChunk {
    pub scan: ChunkScan,
    pub index: Arc<VideoIndex>,
    /// The chunk's compressed bytes, from file offset `data_offset`.
    pub data: Arc<Vec<u8>>,
    pub data_offset: u64,
}

#[derive(Debug)]
pub struct ScanWorker<O> {
    pipeline: Arc<FacePipeline>,
    objects: O,
    bucket: String,
    collections: CollectionCache,
    indexes: VideoIndexes,
    metrics: Metrics,
}

impl<O: ObjectStore> ScanWorker<O> {
    pub fn new(pipeline: Arc<FacePipeline>, objects: O, bucket: String) -> Self {
        Self::with_indexes(pipeline, objects, bucket, VideoIndexes::default())
    }

    /// With other header and index cache budgets than the defaults.
    pub fn with_indexes(
        pipeline: Arc<FacePipeline>,
        objects: O,
        bucket: String,
        indexes: VideoIndexes,
    ) -> Self {
        Self {
            pipeline,
            objects,
            bucket,
            collections: CollectionCache::default(),
            indexes,
            metrics: Metrics::default(),
        }
    }

    /// Each scanned chunk writes its frame and face counts and times.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// A direct invoke (the client-side coordinator's): one chunk's request
    /// in, its scan out.
    pub async fn handle(&self, payload: Value) -> Result<ChunkScan, ServiceError> {
        let request: ScanChunkRequest = serde_json::from_value(payload)
            .map_err(|e| ServiceError::BadRequest(format!("invalid scan request: {e}")))?;
        Ok(self.scan(request).await?.scan)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn objects(&self) -> &O {
        &self.objects
    }

    pub fn indexes(&self) -> &VideoIndexes {
        &self.indexes
    }

    /// The MP4 header of `bucket/key` at the version `pin` names, read once
    /// per container and version.
    pub async fn video_index(
        &self,
        bucket: &str,
        key: &str,
        pin: &ReadPin,
    ) -> Result<Arc<VideoIndex>, ServiceError> {
        Ok(self.video_read(bucket, key, pin).await?.index)
    }

    /// [`Self::video_index`] with the ETag and size of the object it was
    /// read from.
    pub async fn video_read(
        &self,
        bucket: &str,
        key: &str,
        pin: &ReadPin,
    ) -> Result<ReadIndex, ServiceError> {
        self.indexes.get(&self.objects, bucket, key, pin).await
    }

    /// Scans one chunk of the key's current version (a direct invoke's).
    pub async fn scan(&self, request: ScanChunkRequest) -> Result<ScannedChunk, ServiceError> {
        self.scan_pinned(request, &ReadPin::Current).await
    }

    /// Scans one chunk of the version `pin` names (a job's: its upload);
    /// also hands back what was decoded (the chunk's compressed bytes and
    /// the header), for its montage.
    pub async fn scan_pinned(
        &self,
        request: ScanChunkRequest,
        pin: &ReadPin,
    ) -> Result<ScannedChunk, ServiceError> {
        validate_collection_name(&request.collection)?;
        request
            .config
            .validate()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let bucket = request
            .bucket
            .clone()
            .unwrap_or_else(|| self.bucket.clone());
        let read = self
            .indexes
            .get(&self.objects, &bucket, &request.key, pin)
            .await?;
        let index = read.index;
        let span = index
            .decode_span(request.frames)
            .map_err(|e| video_error(&request.key, e))?;
        check_chunk_span(&request.key, &index, request.frames, &span, read.size)?;
        let chunk = self
            .objects
            .get_range(
                &bucket,
                &request.key,
                pin.version_id(),
                span.bytes_start,
                span.bytes_end,
            )
            .await?;
        // Overwritten since the index was read: these bytes are not the
        // frames it describes. A job's chunk (pinned) fails for good; a
        // direct invoke's retry reads the new version's index.
        if let ReadPin::ETag(expected) = pin
            && !pin.admits(chunk.etag.as_deref())
        {
            return Err(crate::indexes::overwritten(
                &request.key,
                expected,
                chunk.etag.as_deref(),
            ));
        }
        if chunk.etag != read.etag {
            return Err(ServiceError::Storage(StorageError::Transient {
                operation: "s3:GetObject".into(),
                message: format!(
                    "{} changed while it was scanned (ETag {:?} then {:?}): retry",
                    request.key, read.etag, chunk.etag
                ),
            }));
        }
        let data = Arc::new(chunk.bytes);
        let collection = self
            .collections
            .current(
                &self.objects,
                &self.bucket,
                &request.collection,
                self.pipeline.face_model_version(),
            )
            .await?;
        let pipeline = Arc::clone(&self.pipeline);
        let (task_index, task_data) = (Arc::clone(&index), Arc::clone(&data));
        let cancel = StopOnDrop::default();
        let stop = cancel.stop();
        let scan = tokio::task::spawn_blocking(move || {
            scan_chunk_until(
                &pipeline,
                &collection,
                &task_index,
                &task_data,
                span.bytes_start,
                request.frames,
                &request.config,
                &mut |_, _| {},
                &stop,
            )
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("scan task: {e}")))?
        .map_err(|e| scan_error(&request.key, e))?;
        tracing::info!(
            key = %request.key,
            frames = scan.stats.frames,
            frames_detected = scan.stats.frames_detected,
            faces_recognized = scan.stats.faces_recognized,
            total_ms = scan.stats.total_ms,
            "chunk scanned"
        );
        let stats = &scan.stats;
        let matched = scan
            .matches
            .iter()
            .flat_map(|m| &m.faces)
            .filter(|f| f.detected && f.person.is_some())
            .count();
        self.metrics.emit(&[
            (Metric::ChunkFrames, stats.frames as f64),
            (Metric::FramesDetected, stats.frames_detected as f64),
            (Metric::FacesFound, stats.faces_detected as f64),
            (Metric::FacesMatched, matched as f64),
            (Metric::DecodeTime, stats.decode_ms),
            (Metric::DetectTime, stats.detect_ms),
            (Metric::RecognizeTime, stats.recognize_ms),
            (Metric::ChunkTime, stats.total_ms),
        ]);
        Ok(ScannedChunk {
            scan,
            index,
            data,
            data_offset: span.bytes_start,
        })
    }
}

#[cfg(test)]
mod tests {
    use face_core::{FaceError, ModelError};
    use face_service::error::ErrorKind;

    use super::*;

    /// A four-frame 32x32 MP4, its index, its frames and their span.
    fn four_frames() -> (Vec<u8>, VideoIndex, FrameRange, DecodeSpan) {
        let images = (0..4u8)
            .map(|i| face_core::RgbImage::from_raw(32, 32, vec![i * 60; 32 * 32 * 3]).unwrap());
        let video =
            face_video::encode_images(images, 10, &face_video::EncodeSettings::default()).unwrap();
        let index = VideoIndex::from_bytes(&video, &Default::default()).unwrap();
        let frames = FrameRange { start: 0, end: 4 };
        let span = index.decode_span(frames).unwrap();
        (video, index, frames, span)
    }

    #[test]
    fn a_model_or_encoder_failure_is_the_workers_and_a_bad_video_is_bad_input() {
        let model = ScanError::Face(FaceError::Model(ModelError::Run {
            model: "detector",
            reason: "out of memory".into(),
        }));
        assert_eq!(scan_error("v.mp4", model).kind(), ErrorKind::Fatal);
        let output = ScanError::Face(FaceError::Model(ModelError::Output {
            model: "recognizer",
            reason: "shape".into(),
        }));
        assert_eq!(scan_error("v.mp4", output).kind(), ErrorKind::Fatal);
        for worker in [
            VideoError::Encoder("no frames were encoded".into()),
            VideoError::Mp4Write("no samples".into()),
        ] {
            let error = video_error("v.mp4", worker.clone());
            assert_eq!(error.kind(), ErrorKind::Fatal, "{worker}");
            assert_eq!(
                scan_error("v.mp4", ScanError::Video(worker)).kind(),
                ErrorKind::Fatal
            );
        }
        let corrupt = ScanError::Video(VideoError::SampleOutOfRange {
            sample: 3,
            reason: "past the data".into(),
        });
        let error = scan_error("v.mp4", corrupt);
        assert_eq!(error.kind(), ErrorKind::BadInput);
        assert!(error.to_string().contains("v.mp4: sample 3"), "{error}");
        let decoder = ScanError::Video(VideoError::Decoder("bad slice".into()));
        assert_eq!(scan_error("v.mp4", decoder).kind(), ErrorKind::BadInput);
    }

    #[test]
    fn a_chunk_with_no_bytes_or_bytes_past_the_file_is_bad_input() {
        let (video, index, frames, span) = four_frames();
        let size = video.len() as u64;
        assert!(check_chunk_span("v.mp4", &index, frames, &span, size).is_ok());
        let empty = DecodeSpan {
            bytes_end: span.bytes_start,
            ..span
        };
        let err = check_chunk_span("v.mp4", &index, frames, &empty, size).unwrap_err();
        assert_eq!(err.kind(), face_service::error::ErrorKind::BadInput);
        assert!(err.to_string().contains("no bytes"), "{err}");
        let err = check_chunk_span("v.mp4", &index, frames, &span, span.bytes_end - 1).unwrap_err();
        assert_eq!(err.kind(), face_service::error::ErrorKind::BadInput);
        assert!(err.to_string().contains("past the end"), "{err}");
    }

    #[tokio::test]
    async fn a_blocking_task_is_told_to_stop_when_its_awaiting_future_is_dropped() {
        let cancel = StopOnDrop::default();
        let stop = cancel.stop();
        assert!(!stop());
        // What `sqs_batch_until`'s timeout does to the message's work.
        let work = async move {
            let _cancel = cancel;
            std::future::pending::<()>().await;
        };
        let timed_out = tokio::time::timeout(std::time::Duration::ZERO, work).await;
        assert!(timed_out.is_err());
        assert!(stop(), "the scan's check now says stop");
        // Not the video's fault: never bad input.
        let error = video_error("v.mp4", VideoError::Cancelled);
        assert_ne!(error.kind(), ErrorKind::BadInput);
    }

    #[test]
    fn the_span_check_the_planner_shares_refuses_a_chunk_over_the_byte_limit() {
        // What `plan` checks each chunk with: the bytes a worker would
        // refuse, within the file and the decode limit otherwise.
        let (_, index, frames, span) = four_frames();
        let at_limit = DecodeSpan {
            bytes_end: span.bytes_start + MAX_CHUNK_BYTES,
            ..span
        };
        assert!(check_chunk_span("v.mp4", &index, frames, &at_limit, u64::MAX).is_ok());
        let over = DecodeSpan {
            bytes_end: span.bytes_start + MAX_CHUNK_BYTES + 1,
            ..span
        };
        let err = check_chunk_span("v.mp4", &index, frames, &over, u64::MAX).unwrap_err();
        assert_eq!(err.kind(), face_service::error::ErrorKind::BadInput);
        assert!(
            err.to_string().contains("over the limit of 268435456"),
            "{err}"
        );
    }
}
