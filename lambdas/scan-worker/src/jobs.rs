//! Server-side video scan jobs: the scan queue's messages, handled by this
//! function through its event source mapping.
//!
//! - `plan`: read the video's header, plan keyframe-aligned chunks
//!   (`face_video::plan_chunks`), queue one `chunk` message each, record
//!   the plan (the job becomes `running`).
//! - `chunk`: scan the chunk, write its frames to
//!   `scans/<job>/chunks/<n>.json` and its montage segment to
//!   `scans/<job>/montage/<n>.mp4` (overwriting is harmless: a retry writes
//!   the same), then add `n` to the job's done set. A chunk scanned twice (a
//!   worker killed after writing) is counted once: the set holds numbers.
//! - The worker whose `ADD` completes the set finishes the job: it merges
//!   the chunks' frames (every frame exactly once) into the timeline, joins
//!   the montage, writes the result (results table, keyed by the video's
//!   result id) and delivers it to the results FIFO queue and the topic.
//!   Finishing again (a retry, or two workers seeing the set complete)
//!   finds the result written and only completes an interrupted delivery.
//!
//! Failures: a video that cannot be read fails its job at once with the
//! reason (and a `bad_input` result); a chunk that fails on its last
//! receive (`FACE_SCAN_MAX_RECEIVE_COUNT`, the queue's `maxReceiveCount`)
//! fails the job naming the chunk, then goes to the dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use face_api::jobs::{JobStatus, JobUsage, SHORT_CLIP_MAX_S, ScanJobResponse};
use face_contracts::layout;
use face_contracts::messages::{ScanMessage, job_ended_subject};
use face_service::error::{ErrorKind, ServiceError};
use face_service::events::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use face_service::jobs::job_view;
use face_service::recognize::ResultMessage;
use face_service::storage::{
    JobPlan, JobRecord, JobsTable, Notifier, ObjectStore, PeopleTable, ResultRecord, ResultStatus,
    ResultsQueue, ResultsTable, WorkSender, now_rfc3339,
};
use face_video::{
    ChunkScan, FrameMatches, FrameRange, MontageConfig, ScanChunkRequest, ScanConfig, Timeline,
    TimelineConfig, concat_montage, frame_interval_s, merge_chunk_frames, montage_chunk,
    plan_chunks,
};
use serde::{Deserialize, Serialize};

use crate::handler::ScanWorker;

/// Frames per chunk of a server-side job, as `facectl scan-video --stack`
/// sends them (10 s at 30 fps: a few seconds of work, so a six-hour video
/// spreads over about 2,000 workers).
pub const DEFAULT_FRAMES_PER_CHUNK: u64 = 300;
/// Largest chunk result object read back when finishing (a chunk's frames
/// as JSON).
const MAX_CHUNK_RESULT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest montage segment read back.
const MAX_SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
/// Queue and topic messages stay under SNS's 256 KiB limit; larger results
/// leave `timeline` and `frames_matched` to `result_key`.
const MAX_MESSAGE_BYTES: usize = 240 * 1024;
/// Chunk messages sent at once while planning.
const PLAN_SEND_CONCURRENCY: usize = 16;

/// What a chunk's object holds: its frames and what scanning it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub chunk: u32,
    pub scan: ChunkScan,
    /// The worker's measured time on the chunk, scan and writes included.
    pub worker_ms: f64,
    pub gb_s: f64,
}

/// The stores the job flow writes to.
#[derive(Clone)]
pub struct JobStores {
    pub jobs: Arc<dyn JobsTable>,
    pub scan_queue: Arc<dyn WorkSender>,
    pub people: Arc<dyn PeopleTable>,
    pub results: Arc<dyn ResultsTable>,
    pub results_queue: Arc<dyn ResultsQueue>,
    pub topic: Option<Arc<dyn Notifier>>,
}

/// How jobs run.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub frames_per_chunk: u64,
    pub scan: ScanConfig,
    pub timeline: TimelineConfig,
    pub montage: MontageConfig,
    /// The scan queue's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// The function's memory, for GB-s.
    pub memory_mib: u32,
    pub arm64: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            frames_per_chunk: DEFAULT_FRAMES_PER_CHUNK,
            scan: ScanConfig::default(),
            timeline: TimelineConfig::default(),
            montage: MontageConfig::default(),
            max_receive_count: face_contracts::env::defaults::SCAN_MAX_RECEIVE_COUNT,
            memory_mib: 1024,
            arm64: cfg!(target_arch = "aarch64"),
        }
    }
}

pub struct JobRunner<O> {
    worker: Arc<ScanWorker<O>>,
    stores: JobStores,
    settings: JobSettings,
}

impl std::fmt::Debug for JobStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobStores")
    }
}

impl<O> std::fmt::Debug for JobRunner<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<O: ObjectStore + 'static> JobRunner<O> {
    pub fn new(worker: Arc<ScanWorker<O>>, stores: JobStores, settings: JobSettings) -> Self {
        Self {
            worker,
            stores,
            settings,
        }
    }

    /// A batch of the scan queue: each message on its own; only those to
    /// retry are reported.
    pub async fn sqs_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for message in &event.records {
            if !self.message(message).await {
                failures.push(BatchItemFailure {
                    item_identifier: message.message_id.clone(),
                });
            }
        }
        SqsBatchResponse {
            batch_item_failures: failures,
        }
    }

    /// Handles one message; returns whether it may be deleted.
    async fn message(&self, message: &SqsMessage) -> bool {
        let parsed: ScanMessage = match serde_json::from_str(&message.body) {
            Ok(m) => m,
            Err(e) => {
                // Nothing to retry and no job to fail: drop it, loudly.
                tracing::error!(message_id = %message.message_id, error = %e, "unreadable scan message dropped");
                return true;
            }
        };
        let outcome = match &parsed {
            ScanMessage::Plan { job_id } => self.plan(job_id).await,
            ScanMessage::Chunk {
                job_id,
                chunk,
                start_frame,
                end_frame,
            } => {
                let frames = FrameRange {
                    start: *start_frame,
                    end: *end_frame,
                };
                self.chunk(job_id, *chunk, frames).await
            }
        };
        let Err(error) = outcome else {
            return true;
        };
        let job_id = parsed.job_id();
        let chunk = match parsed {
            ScanMessage::Chunk { chunk, .. } => Some(chunk),
            ScanMessage::Plan { .. } => None,
        };
        let last_attempt = message.receive_count() >= self.settings.max_receive_count;
        tracing::warn!(%job_id, ?chunk, error = %error, kind = ?error.kind(), receive_count = message.receive_count(), "scan message failed");
        if error.kind() == ErrorKind::BadInput || last_attempt {
            let reason = match chunk {
                Some(c) if error.kind() != ErrorKind::BadInput => format!(
                    "chunk {c} failed {} times (now in the dead-letter queue): {error}",
                    message.receive_count()
                ),
                Some(c) => format!("chunk {c}: {error}"),
                None => error.to_string(),
            };
            if let Err(e) = self.fail(job_id, chunk, &reason, error.kind()).await {
                tracing::error!(%job_id, error = %e, "could not record the job's failure");
                return false;
            }
            // Bad input is recorded once and deleted; anything else goes on
            // to the dead-letter queue next to other real failures.
            return error.kind() == ErrorKind::BadInput;
        }
        false
    }

    /// Plans a queued job: one chunk message per keyframe-aligned chunk.
    pub async fn plan(&self, job_id: &str) -> Result<(), ServiceError> {
        let Some(job) = self.stores.jobs.get(job_id).await? else {
            tracing::warn!(%job_id, "plan for an unknown job dropped");
            return Ok(());
        };
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            return Ok(());
        }
        let index = self
            .worker
            .video_index(&job.bucket, &job.key, &job.read_pin())
            .await?;
        let chunks = plan_chunks(&index, self.settings.frames_per_chunk)
            .map_err(|e| ServiceError::BadRequest(format!("{}: {e}", job.key)))?;
        if chunks.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "{}: the video has no frames",
                job.key
            )));
        }
        let info = index.info();
        // Planned before any chunk is sent, so the last chunk always knows
        // `chunks_total`. A redelivered plan (a send failed part way) resends
        // the chunks not yet done; chunk scans are idempotent (the done set).
        self.stores
            .jobs
            .set_planned(
                job_id,
                &JobPlan {
                    chunks_total: chunks.len() as u32,
                    frames: info.frames,
                    fps: info.fps,
                    duration_s: info.duration_s,
                },
            )
            .await?;
        let mut sends = tokio::task::JoinSet::new();
        for c in chunks
            .iter()
            .filter(|c| !job.chunks_done.contains(&c.chunk))
        {
            if sends.len() >= PLAN_SEND_CONCURRENCY
                && let Some(sent) = sends.join_next().await
            {
                sent.map_err(|e| ServiceError::Internal(format!("send task: {e}")))??;
            }
            let queue = Arc::clone(&self.stores.scan_queue);
            let body = ScanMessage::Chunk {
                job_id: job_id.to_string(),
                chunk: c.chunk,
                start_frame: c.frames.start,
                end_frame: c.frames.end,
            }
            .to_body();
            sends.spawn(async move { queue.send(&body).await });
        }
        while let Some(sent) = sends.join_next().await {
            sent.map_err(|e| ServiceError::Internal(format!("send task: {e}")))??;
        }
        tracing::info!(%job_id, chunks = chunks.len(), frames = info.frames, "job planned");
        Ok(())
    }

    /// Scans one chunk of a running job and, if it was the last, finishes it.
    pub async fn chunk(
        &self,
        job_id: &str,
        chunk: u32,
        frames: FrameRange,
    ) -> Result<(), ServiceError> {
        let started = Instant::now();
        let Some(job) = self.stores.jobs.get(job_id).await? else {
            tracing::warn!(%job_id, chunk, "chunk of an unknown job dropped");
            return Ok(());
        };
        if job.status.is_final() {
            return Ok(());
        }
        let bucket = job.bucket.clone();
        if !job.chunks_done.contains(&chunk) {
            let scanned = self
                .worker
                .scan_pinned(
                    ScanChunkRequest {
                        bucket: Some(bucket.clone()),
                        key: job.key.clone(),
                        collection: job.collection.clone(),
                        frames,
                        config: self.settings.scan,
                    },
                    &job.read_pin(),
                )
                .await?;
            let montage = self.settings.montage.clone();
            let task = scanned.clone();
            let segment = tokio::task::spawn_blocking(move || {
                montage_chunk(
                    &task.index,
                    &task.data,
                    task.data_offset,
                    task.scan.frames,
                    &task.scan.matches,
                    &montage,
                )
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("montage task: {e}")))?
            .map_err(|e| ServiceError::BadRequest(format!("{}: montage: {e}", job.key)))?;
            let objects = self.worker.objects();
            if let Some(segment) = segment {
                objects
                    .put(
                        &bucket,
                        &layout::montage_segment_key(job_id, chunk),
                        segment,
                    )
                    .await?;
            }
            let worker_ms = started.elapsed().as_secs_f64() * 1000.0;
            let record = ChunkRecord {
                chunk,
                scan: scanned.scan,
                worker_ms,
                gb_s: face_api::pricing::gb_s(worker_ms, self.settings.memory_mib),
            };
            let body = serde_json::to_vec(&record)
                .map_err(|e| ServiceError::Internal(format!("serializing chunk {chunk}: {e}")))?;
            objects
                .put(&bucket, &layout::chunk_result_key(job_id, chunk), body)
                .await?;
        }
        let after = self.stores.jobs.chunk_done(job_id, chunk).await?;
        if after.status == JobStatus::Running
            && after.chunks_total == Some(after.chunks_done.len() as u32)
        {
            self.finish(&after).await?;
        }
        Ok(())
    }

    /// Merges a job whose every chunk is done, writes and delivers its result.
    async fn finish(&self, job: &JobRecord) -> Result<(), ServiceError> {
        let objects = self.worker.objects();
        let total = job.chunks_total.unwrap_or(0);
        let mut frames: Vec<FrameMatches> = Vec::new();
        let mut usage = JobUsage::default();
        for chunk in 0..total {
            let key = layout::chunk_result_key(&job.job_id, chunk);
            let object = objects
                .get(&job.bucket, &key, None, MAX_CHUNK_RESULT_BYTES)
                .await?;
            let record: ChunkRecord =
                serde_json::from_slice(&object.bytes).map_err(|e| ServiceError::CorruptStore {
                    location: key.clone(),
                    message: e.to_string(),
                })?;
            usage.invocations += 1;
            usage.gb_s += record.gb_s;
            frames.extend(record.scan.matches);
        }
        usage.usd = face_api::pricing::usd(usage.gb_s, usage.invocations, self.settings.arm64);
        let frames = merge_chunk_frames(frames, job.frames.unwrap_or(0))
            .map_err(|e| ServiceError::Internal(format!("job {}: {e}", job.job_id)))?;
        let interval = frame_interval_s(job.fps.unwrap_or(0.0));
        let timeline = Timeline::build(&frames, interval, &self.settings.timeline);

        let montage_key = self.join_montage(job).await?;
        let mut people = BTreeMap::new();
        for person in timeline.people() {
            if let Some(record) = self.stores.people.get(&job.collection, person).await? {
                people.insert(
                    person.to_string(),
                    serde_json::json!({"attributes": record.attributes, "face_count": record.face_count}),
                );
            }
        }
        let short_clip = job.duration_s.unwrap_or(f64::MAX) <= SHORT_CLIP_MAX_S;
        let mut view = ScanJobResponse {
            status: JobStatus::Done,
            chunks_done: total,
            finished_at: Some(now_rfc3339()),
            timeline: Some(to_json(&timeline.appearances)?),
            montage_key,
            result_key: Some(layout::result_key(&job.job_id)),
            usage: Some(usage),
            frames_matched: if short_clip {
                let matched: Vec<&FrameMatches> = frames
                    .iter()
                    .filter(|f| f.faces.iter().any(|face| face.person.is_some()))
                    .collect();
                Some(to_json(&matched)?)
            } else {
                None
            },
            people,
            ..job_view(job)
        };
        let full = serde_json::to_vec(&view)
            .map_err(|e| ServiceError::Internal(format!("serializing the job: {e}")))?;
        objects
            .put(&job.bucket, &layout::result_key(&job.job_id), full)
            .await?;
        let mut message = self.message_for(job, ResultStatus::Ok, None, view.clone());
        if serde_json::to_string(&message).map_or(0, |m| m.len()) > MAX_MESSAGE_BYTES {
            view.frames_matched = None;
            view.timeline = None;
            message = self.message_for(job, ResultStatus::Ok, None, view);
        }
        self.record_and_deliver(job, &message).await?;
        self.stores
            .jobs
            .finish(&job.job_id, JobStatus::Done, None)
            .await?;
        tracing::info!(job_id = %job.job_id, frames = frames.len(), appearances = timeline.appearances.len(), gb_s = usage.gb_s, "job done");
        Ok(())
    }

    /// The chunks' montage segments, in order, joined into `montage.mp4`.
    async fn join_montage(&self, job: &JobRecord) -> Result<Option<String>, ServiceError> {
        let objects = self.worker.objects();
        let prefix = layout::montage_segments_prefix(&job.job_id);
        let mut listed = objects.list(&job.bucket, &prefix).await?;
        if listed.is_empty() {
            return Ok(None);
        }
        // Six-digit chunk numbers: key order is chunk order.
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        let mut segments = Vec::with_capacity(listed.len());
        for l in &listed {
            segments.push(
                objects
                    .get(&job.bucket, &l.key, None, MAX_SEGMENT_BYTES)
                    .await?
                    .bytes,
            );
        }
        let joined = tokio::task::spawn_blocking(move || {
            let parts: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
            concat_montage(&parts)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("montage task: {e}")))?
        .map_err(|e| ServiceError::Internal(format!("joining the montage: {e}")))?;
        let key = layout::montage_key(&job.job_id);
        objects.put(&job.bucket, &key, joined).await?;
        Ok(Some(key))
    }

    fn message_for(
        &self,
        job: &JobRecord,
        status: ResultStatus,
        error: Option<String>,
        view: ScanJobResponse,
    ) -> ResultMessage {
        ResultMessage {
            result_id: job.video_result_id.clone(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            collection: job.collection.clone(),
            status,
            error,
            result: None,
            job: Some(view),
            uploaded_at: job.uploaded_at.clone(),
            finished_at: Some(now_rfc3339()),
        }
    }

    /// Writes the job's result once, then delivers it (queue, topic),
    /// finishing an interrupted delivery of an earlier attempt.
    async fn record_and_deliver(
        &self,
        job: &JobRecord,
        message: &ResultMessage,
    ) -> Result<(), ServiceError> {
        let body = serde_json::to_string(message)
            .map_err(|e| ServiceError::Internal(format!("serializing the result: {e}")))?;
        let record = ResultRecord {
            result_id: job.video_result_id.clone(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            collection: job.collection.clone(),
            status: message.status,
            message: body,
            delivered: false,
            created_at: now_rfc3339(),
        };
        let record = if self.stores.results.put_if_absent(&record).await? {
            record
        } else {
            match self.stores.results.get(&record.result_id).await? {
                Some(existing) if existing.delivered => return Ok(()),
                Some(existing) => existing,
                None => record,
            }
        };
        if let Some(topic) = &self.stores.topic {
            let subject = job_ended_subject(&job.job_id, record.status.as_str());
            topic.publish(&subject, &record.message).await?;
        }
        face_service::recognize::deliver_result(
            self.stores.results.as_ref(),
            self.stores.results_queue.as_ref(),
            &record,
        )
        .await
    }

    /// Fails the job (naming the chunk, if one failed) and delivers the
    /// failure.
    async fn fail(
        &self,
        job_id: &str,
        chunk: Option<u32>,
        reason: &str,
        kind: ErrorKind,
    ) -> Result<(), ServiceError> {
        match chunk {
            Some(c) => self.stores.jobs.chunk_failed(job_id, c, reason).await?,
            None => {
                self.stores
                    .jobs
                    .finish(job_id, JobStatus::Failed, Some(reason))
                    .await?;
            }
        }
        let Some(job) = self.stores.jobs.get(job_id).await? else {
            return Ok(());
        };
        if job.status != JobStatus::Failed {
            return Ok(());
        }
        let status = if kind == ErrorKind::BadInput {
            ResultStatus::BadInput
        } else {
            ResultStatus::Failed
        };
        let message = self.message_for(&job, status, job.error.clone(), job_view(&job));
        self.record_and_deliver(&job, &message).await
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(value).map_err(|e| ServiceError::Internal(format!("serializing: {e}")))
}
