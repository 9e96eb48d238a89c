//! The worker's one job: `{video, collection, frames}` in, the chunk's
//! per-frame matches out.

use std::collections::HashMap;
use std::sync::Arc;

use face_core::FacePipeline;
use face_service::ServiceError;
use face_service::collections::{CollectionCache, validate_collection_name};
use face_service::storage::ObjectStore;
use face_video::{ChunkScan, ScanChunkRequest, VideoIndex, VideoLimits, scan_chunk};
use serde_json::Value;
use tokio::sync::Mutex;

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
    /// Headers already read by this container, by bucket/key/etag: chunks
    /// of the same video often land on the same warm environment.
    indexes: Mutex<HashMap<String, Arc<VideoIndex>>>,
    limits: VideoLimits,
}

impl<O: ObjectStore> ScanWorker<O> {
    pub fn new(pipeline: Arc<FacePipeline>, objects: O, bucket: String) -> Self {
        Self {
            pipeline,
            objects,
            bucket,
            collections: CollectionCache::default(),
            indexes: Mutex::default(),
            limits: VideoLimits::default(),
        }
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

    /// The MP4 header of `bucket/key`, read once per container and version.
    pub async fn video_index(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Arc<VideoIndex>, ServiceError> {
        self.index(bucket, key).await
    }

    /// Scans one chunk; also hands back what was decoded (the chunk's
    /// compressed bytes and the header), for its montage.
    pub async fn scan(&self, request: ScanChunkRequest) -> Result<ScannedChunk, ServiceError> {
        validate_collection_name(&request.collection)?;
        request
            .config
            .validate()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let bucket = request
            .bucket
            .clone()
            .unwrap_or_else(|| self.bucket.clone());
        let index = self.index(&bucket, &request.key).await?;
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
        let data = Arc::new(
            self.objects
                .get_range(&bucket, &request.key, span.bytes_start, span.bytes_end)
                .await?
                .bytes,
        );
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
        Ok(ScannedChunk {
            scan,
            index,
            data,
            data_offset: span.bytes_start,
        })
    }

    async fn index(&self, bucket: &str, key: &str) -> Result<Arc<VideoIndex>, ServiceError> {
        let header = crate::sparse::fetch_header(&self.objects, bucket, key).await?;
        // Keyed by size too: a re-upload under the same key is re-read.
        let cache_key = format!("{bucket}/{key}#{}", header.size());
        if let Some(index) = self.indexes.lock().await.get(&cache_key) {
            return Ok(index.clone());
        }
        let size = header.size();
        let limits = self.limits;
        let index =
            tokio::task::spawn_blocking(move || VideoIndex::from_reader(header, size, &limits))
                .await
                .map_err(|e| ServiceError::Internal(format!("index task: {e}")))?
                .map_err(|e| ServiceError::BadRequest(format!("{key}: {e}")))?;
        let index = Arc::new(index);
        self.indexes.lock().await.insert(cache_key, index.clone());
        Ok(index)
    }
}
