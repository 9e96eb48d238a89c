//! The worker's one job: `{video, collection, frames}` in, the chunk's
//! per-frame matches out.

use std::sync::Arc;

use face_contracts::metrics::Metric;
use face_core::FacePipeline;
use face_service::collections::{CollectionCache, validate_collection_name};
use face_service::metrics::Metrics;
use face_service::storage::{ObjectStore, ReadPin};
use face_service::{ServiceError, StorageError};
use face_video::{ChunkScan, ScanChunkRequest, VideoIndex, scan_chunk};
use serde_json::Value;

use crate::indexes::VideoIndexes;

/// Compressed bytes one chunk may span (a 300-frame 4K chunk at 50 Mbit/s
/// is ~60 MB).
pub const MAX_CHUNK_BYTES: u64 = 256 * 1024 * 1024;

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
        Ok(self
            .indexes
            .get(&self.objects, bucket, key, pin)
            .await?
            .index)
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
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let span_bytes = span.bytes_end - span.bytes_start;
        if span_bytes > MAX_CHUNK_BYTES {
            return Err(ServiceError::BadRequest(format!(
                "frames {}..{} span {span_bytes} bytes, over {MAX_CHUNK_BYTES}: send smaller chunks",
                request.frames.start, request.frames.end
            )));
        }
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
        let scan = tokio::task::spawn_blocking(move || {
            scan_chunk(
                &pipeline,
                &collection,
                &task_index,
                &task_data,
                span.bytes_start,
                request.frames,
                &request.config,
                &mut |_, _| {},
            )
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("scan task: {e}")))?
        .map_err(|e| ServiceError::BadRequest(format!("{}: {e}", request.key)))?;
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
