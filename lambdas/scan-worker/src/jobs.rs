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
//! Work that would outlive the invocation (its deadline, less a margin) is
//! stopped (a scan or montage on its blocking thread at its next frame:
//! `StopOnDrop`) and counts as such a failure, so a chunk that always
//! times out still ends its job. A failure after the job's `ok` result was
//! written ends it done, not failed. A montage that cannot be joined (over
//! its memory budget, or unusable) leaves the job done without one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    TimelineConfig, concat_montage, frame_interval_s, merge_chunk_frames, montage_chunk_until,
    plan_chunks,
};
use serde::{Deserialize, Serialize};

use crate::handler::{ScanWorker, StopOnDrop, check_chunk_span, video_error};

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
/// leave `timeline` and `frames_matched`, then `people`, to `result_key`.
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;
/// Montage segments joined at most, together: they and the joined MP4 are
/// held in memory at once.
pub const DEFAULT_MAX_MONTAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Time kept back from a message's work before the invocation's deadline,
/// to record its failure: at most a quarter of the time the invocation has
/// left, so that a short timeout still leaves the work most of it.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(5);
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
    /// Montage segments joined at most, together; a longer montage is left
    /// out of the result (the job is still done).
    pub max_montage_bytes: u64,
    /// Kept back from each message's work before the invocation's
    /// deadline, to record a failure before the function is killed.
    pub deadline_margin: Duration,
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
            max_montage_bytes: DEFAULT_MAX_MONTAGE_BYTES,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
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
    /// retry are reported. No deadline: see [`Self::sqs_batch_until`].
    pub async fn sqs_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.sqs_batch_until(event, None).await
    }

    /// [`Self::sqs_batch`] within an invocation that ends at `deadline`:
    /// each message's work is stopped `deadline_margin` before it (at most
    /// a quarter of the time left), and
    /// counts as a failure of that message (retried; on its last receive
    /// the job fails saying so), instead of the function being killed with
    /// nothing recorded.
    pub async fn sqs_batch_until(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        let stop_at = deadline.map(|deadline| {
            let left = deadline.saturating_duration_since(Instant::now());
            deadline - self.settings.deadline_margin.min(left / 4)
        });
        let mut failures = Vec::new();
        for message in &event.records {
            if !self.message(message, stop_at).await {
                failures.push(BatchItemFailure {
                    item_identifier: message.message_id.clone(),
                });
            }
        }
        SqsBatchResponse {
            batch_item_failures: failures,
        }
    }

    /// Handles one message, its work stopped at `stop_at`; returns whether
    /// it may be deleted.
    async fn message(&self, message: &SqsMessage, stop_at: Option<Instant>) -> bool {
        let parsed: ScanMessage = match serde_json::from_str(&message.body) {
            Ok(m) => m,
            Err(e) => {
                // Nothing to retry and no job to fail: drop it, loudly.
                tracing::error!(message_id = %message.message_id, error = %e, "unreadable scan message dropped");
                return true;
            }
        };
        let chunk = match parsed {
            ScanMessage::Chunk { chunk, .. } => Some(chunk),
            ScanMessage::Plan { .. } => None,
        };
        let work = async {
            match &parsed {
                ScanMessage::Plan { job_id } => self.plan(job_id, &message.message_id).await,
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
            }
        };
        let outcome = match stop_at {
            None => work.await,
            Some(stop_at) => {
                let budget = stop_at.saturating_duration_since(Instant::now());
                let timed_out = || ServiceError::TimedOut {
                    what: chunk.map_or_else(|| "the plan".to_string(), |c| format!("chunk {c}")),
                    budget_ms: budget.as_millis() as u64,
                };
                if budget.is_zero() {
                    // Not even started: no time left to do it in.
                    Err(timed_out())
                } else {
                    // Dropping the work stops it at its next await, and a
                    // scan or montage on a blocking thread at its next
                    // frame (`StopOnDrop`).
                    tokio::time::timeout(budget, work)
                        .await
                        .unwrap_or_else(|_| Err(timed_out()))
                }
            }
        };
        let Err(error) = outcome else {
            return true;
        };
        let job_id = parsed.job_id();
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
            match self.fail(job_id, chunk, &reason, error.kind()).await {
                // Done after all (its result was delivered before the
                // failure): nothing left to retry.
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(%job_id, error = %e, "could not record the job's failure");
                    return false;
                }
            }
            // Bad input is recorded once and deleted; anything else goes on
            // to the dead-letter queue next to other real failures.
            return error.kind() == ErrorKind::BadInput;
        }
        false
    }

    /// Plans a queued job: one chunk message per keyframe-aligned chunk.
    /// Only the plan message (`message_id`, its SQS id) that moves the job
    /// from `queued` to `running` sends them, and that same message again
    /// (a retried update, or redelivered: SQS keeps its id, and its sends
    /// may have failed part way) sends again those not done; any other plan
    /// message for the job (a duplicate) sends nothing.
    pub async fn plan(&self, job_id: &str, message_id: &str) -> Result<(), ServiceError> {
        let Some(job) = self.stores.jobs.get(job_id).await? else {
            tracing::warn!(%job_id, "plan for an unknown job dropped");
            return Ok(());
        };
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            return Ok(());
        }
        let read = self
            .worker
            .video_read(&job.bucket, &job.key, &job.read_pin())
            .await?;
        let index = read.index;
        let chunks = plan_chunks(&index, self.settings.frames_per_chunk)
            .map_err(|e| video_error(&job.key, e))?;
        if chunks.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "{}: the video has no frames",
                job.key
            )));
        }
        // What each chunk's worker would refuse, refused once here: bytes
        // outside the object (S3 would answer 416, retried to the DLQ) or
        // too many of them, and GOPs too long to decode in time.
        for c in &chunks {
            check_chunk_span(&job.key, &index, c.frames, &c.span, read.size)?;
        }
        let info = index.info();
        // Planned before any chunk is sent, so the last chunk always knows
        // `chunks_total`. A redelivered plan (a send failed part way) resends
        // the chunks not yet done; chunk scans are idempotent (the done set).
        let won = self
            .stores
            .jobs
            .set_planned(
                job_id,
                &JobPlan {
                    chunks_total: chunks.len() as u32,
                    frames: info.frames,
                    fps: info.fps,
                    duration_s: info.duration_s,
                },
                message_id,
            )
            .await?;
        if !won {
            tracing::info!(%job_id, status = job.status.as_str(), "job already planned: duplicate plan dropped");
            return Ok(());
        }
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
            let cancel = StopOnDrop::default();
            let stop = cancel.stop();
            let segment = tokio::task::spawn_blocking(move || {
                montage_chunk_until(
                    &task.index,
                    &task.data,
                    task.data_offset,
                    task.scan.frames,
                    &task.scan.matches,
                    &montage,
                    &stop,
                )
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("montage task: {e}")))?
            .map_err(|e| video_error(&format!("{} (montage)", job.key), e))?;
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

        // The timeline is the result: a montage that cannot be made leaves
        // the job done without one. Only a transient failure is retried.
        let montage_key = match self.join_montage(job).await {
            Ok(key) => key,
            Err(e) if e.kind() == ErrorKind::Retryable => return Err(e),
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %e, "job done without its montage");
                None
            }
        };
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
        let view = ScanJobResponse {
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
        let message = fit_message(|v| self.message_for(job, ResultStatus::Ok, None, v), view)?;
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
        // The segments and the joined copy are all in memory at once:
        // budgeted from the listing, before any download.
        let total: u64 = listed.iter().map(|l| l.size).sum();
        if total > self.settings.max_montage_bytes {
            return Err(ServiceError::BadRequest(format!(
                "the montage's {} segments are {total} bytes, over the budget of {}: no montage",
                listed.len(),
                self.settings.max_montage_bytes
            )));
        }
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
        .map_err(|e| video_error("joining the montage", e))?;
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
        self.deliver(job, &record).await
    }

    /// Delivers a written result: topic, then queue (which marks it
    /// delivered).
    async fn deliver(&self, job: &JobRecord, record: &ResultRecord) -> Result<(), ServiceError> {
        if let Some(topic) = &self.stores.topic {
            let subject = job_ended_subject(&job.job_id, record.status.as_str());
            topic.publish(&subject, &record.message).await?;
        }
        face_service::recognize::deliver_result(
            self.stores.results.as_ref(),
            self.stores.results_queue.as_ref(),
            record,
        )
        .await
    }

    /// Fails the job (naming the chunk, if one failed) and delivers the
    /// failure; returns `true`, failing nothing, when the job is done
    /// instead (see below).
    async fn fail(
        &self,
        job_id: &str,
        chunk: Option<u32>,
        reason: &str,
        kind: ErrorKind,
    ) -> Result<bool, ServiceError> {
        // `finish` writes and delivers the OK result before it marks the
        // job done: a failure between the two (a timeout, the jobs table's
        // update) must not fail a job whose result consumers already have.
        // It is done; its delivery is completed if it was cut short.
        if let Some(job) = self.stores.jobs.get(job_id).await?
            && job.status != JobStatus::Failed
            && let Some(result) = self.stores.results.get(&job.video_result_id).await?
            && result.status == ResultStatus::Ok
        {
            self.stores
                .jobs
                .finish(job_id, JobStatus::Done, None)
                .await?;
            if !result.delivered {
                self.deliver(&job, &result).await?;
            }
            tracing::warn!(%job_id, ?chunk, error = reason, "failed after its result was delivered: the job is done");
            return Ok(true);
        }
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
            return Ok(false);
        };
        if job.status != JobStatus::Failed {
            return Ok(false);
        }
        let status = if kind == ErrorKind::BadInput {
            ResultStatus::BadInput
        } else {
            ResultStatus::Failed
        };
        let message = self.message_for(&job, status, job.error.clone(), job_view(&job));
        self.record_and_deliver(&job, &message).await?;
        Ok(false)
    }
}

/// The result message of `view` (`message_of`), within
/// [`MAX_MESSAGE_BYTES`]: without `timeline` and `frames_matched` when it
/// is over, then without `people` too (all three are in the result object,
/// `result_key`); an error if it is over even then, since a queue or topic
/// would refuse it.
pub fn fit_message(
    message_of: impl Fn(ScanJobResponse) -> ResultMessage,
    mut view: ScanJobResponse,
) -> Result<ResultMessage, ServiceError> {
    let size = |m: &ResultMessage| {
        serde_json::to_string(m)
            .map(|s| s.len())
            .map_err(|e| ServiceError::Internal(format!("serializing the result: {e}")))
    };
    let message = message_of(view.clone());
    if size(&message)? <= MAX_MESSAGE_BYTES {
        return Ok(message);
    }
    view.frames_matched = None;
    view.timeline = None;
    let message = message_of(view.clone());
    if size(&message)? <= MAX_MESSAGE_BYTES {
        return Ok(message);
    }
    view.people.clear();
    let message = message_of(view);
    let bytes = size(&message)?;
    if bytes > MAX_MESSAGE_BYTES {
        return Err(ServiceError::Internal(format!(
            "the result message is {bytes} bytes without its timeline and people, over the limit of {MAX_MESSAGE_BYTES}"
        )));
    }
    Ok(message)
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(value).map_err(|e| ServiceError::Internal(format!("serializing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_of(view: ScanJobResponse) -> ResultMessage {
        ResultMessage {
            result_id: view.video_result_id.clone(),
            bucket: "b".into(),
            key: view.video_key.clone(),
            collection: view.collection.clone(),
            status: ResultStatus::Ok,
            error: None,
            result: None,
            job: Some(view),
            uploaded_at: None,
            finished_at: None,
        }
    }

    fn done_view(people: usize, attribute_bytes: usize) -> ScanJobResponse {
        let job = JobRecord::queued("b", "uploads/c/v.mp4", "\"e1\"", "c", None);
        ScanJobResponse {
            status: JobStatus::Done,
            timeline: Some(serde_json::json!([{"person": "p0", "start_s": 0.0}])),
            frames_matched: Some(serde_json::json!([])),
            people: (0..people)
                .map(|i| {
                    (
                        format!("p{i}"),
                        serde_json::json!({"attributes": {"bio": "x".repeat(attribute_bytes)}, "face_count": 1}),
                    )
                })
                .collect(),
            ..job_view(&job)
        }
    }

    fn size(message: &ResultMessage) -> usize {
        serde_json::to_string(message).unwrap().len()
    }

    #[test]
    fn a_result_that_fits_is_sent_whole() {
        let message = fit_message(message_of, done_view(3, 100)).unwrap();
        let view = message.job.unwrap();
        assert!(view.timeline.is_some() && view.frames_matched.is_some());
        assert_eq!(view.people.len(), 3);
    }

    #[test]
    fn a_result_whose_people_alone_are_over_the_limit_leaves_them_out_too() {
        // Three people of 100 KB of attributes each: over the limit
        // without the timeline too.
        let view = done_view(3, 100_000);
        let message = fit_message(message_of, view).unwrap();
        assert!(size(&message) <= MAX_MESSAGE_BYTES, "{}", size(&message));
        let view = message.job.unwrap();
        assert!(view.people.is_empty());
        assert_eq!(view.timeline, None);
        assert_eq!(view.status, JobStatus::Done);

        // Under the limit once the timeline is out: the people stay.
        let mut view = done_view(1, 1000);
        view.timeline = Some(serde_json::json!("t".repeat(MAX_MESSAGE_BYTES)));
        let view = fit_message(message_of, view).unwrap().job.unwrap();
        assert_eq!(view.timeline, None);
        assert_eq!(view.people.len(), 1);
    }

    #[test]
    fn a_result_over_the_limit_without_its_people_is_never_sent() {
        let mut view = done_view(0, 0);
        view.error = Some("e".repeat(MAX_MESSAGE_BYTES));
        let err = fit_message(message_of, view).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
    }
}
