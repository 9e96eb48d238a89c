//! Server-side video jobs on in-memory stores: the slideshow uploaded,
//! planned, scanned chunk by chunk (one chunk delivered twice, as SQS does
//! after a worker dies), merged once, delivered once; a video that cannot
//! be read fails its job at once; and a video overwritten while its job
//! runs is still read at the job's version (or, unversioned, fails it).

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use face_api::jobs::JobStatus;
use face_contracts::messages::ScanMessage;
use face_service::StorageError;
use face_service::enroll::Enroller;
use face_service::events::SqsEvent;
use face_service::jobs::VideoIntake;
use face_service::memory::{
    MemoryJobs, MemoryObjects, MemoryPeople, MemoryQueue, MemoryResults, MemoryTopic, MemoryWork,
};
use face_service::recognize::ResultMessage;
use face_service::storage::{JobPlan, JobRecord, JobsTable, ResultStatus};
use face_video::{FrameMatches, ScanConfig, Timeline, TimelineConfig, VideoIndex, VideoLimits};
use scan_worker::ScanWorker;
use scan_worker::jobs::{JobRunner, JobSettings, JobStores};
use serde_json::json;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("FACE_DATA_DIR")
        .map_or_else(|| workspace().join("../shared/data"), PathBuf::from);
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e} (set FACE_DATA_DIR)"))
}

struct Harness {
    runner: JobRunner<MemoryObjects>,
    worker: Arc<ScanWorker<MemoryObjects>>,
    objects: MemoryObjects,
    jobs: MemoryJobs,
    work: MemoryWork,
    results_queue: MemoryQueue,
    topic: MemoryTopic,
    intake: VideoIntake,
}

/// Jobs on a versioned bucket, as the stacks' data bucket is.
async fn harness(frames_per_chunk: u64) -> Harness {
    harness_on(frames_per_chunk, MemoryObjects::versioned()).await
}

async fn harness_on(frames_per_chunk: u64, objects: MemoryObjects) -> Harness {
    let settings = JobSettings {
        frames_per_chunk,
        ..JobSettings::default()
    };
    harness_with(settings, objects).await
}

async fn harness_with(settings: JobSettings, objects: MemoryObjects) -> Harness {
    let jobs = MemoryJobs::default();
    harness_with_jobs(settings, objects, jobs.clone(), Arc::new(jobs)).await
}

/// With `table` as the runner's jobs table, over `jobs` (what the harness
/// inspects and the intake writes).
async fn harness_with_jobs(
    settings: JobSettings,
    objects: MemoryObjects,
    jobs: MemoryJobs,
    table: Arc<dyn JobsTable>,
) -> Harness {
    let dir =
        std::env::var_os("FACECTL_MODELS").map_or_else(|| workspace().join("blobs"), PathBuf::from);
    let pipeline = Arc::new(face_service::models::load_pipeline(&dir).unwrap());
    let people = MemoryPeople::default();
    let enroller = Enroller::new(
        pipeline.clone(),
        objects.clone(),
        people.clone(),
        "data".into(),
    );
    for (person, photo) in [
        (
            "jennifer_aniston",
            "recognition/jennifer_aniston/deepface_img12.jpg",
        ),
        ("matt_damon", "recognition/matt_damon/deepface_img30.jpg"),
    ] {
        enroller
            .handle(json!({"action": "enroll", "collection": "slides", "person": person,
                "attributes": {"role": "actor"},
                "images": [{"base64": base64::engine::general_purpose::STANDARD.encode(data(photo))}]}))
            .await
            .unwrap();
    }
    let worker = Arc::new(ScanWorker::new(pipeline, objects.clone(), "data".into()));
    let (work, results_queue, topic) = (
        MemoryWork::default(),
        MemoryQueue::default(),
        MemoryTopic::default(),
    );
    let stores = JobStores {
        jobs: table,
        scan_queue: Arc::new(work.clone()),
        people: Arc::new(people),
        results: Arc::new(MemoryResults::default()),
        results_queue: Arc::new(results_queue.clone()),
        topic: Some(Arc::new(topic.clone())),
    };
    Harness {
        runner: JobRunner::new(worker.clone(), stores, settings),
        worker,
        intake: VideoIntake {
            jobs: Arc::new(jobs.clone()),
            queue: Arc::new(work.clone()),
        },
        objects,
        jobs,
        work,
        results_queue,
        topic,
    }
}

/// The job `recognize` starts for the upload of `key` at S3 version
/// `version`: tagged and read at that version.
fn job_at(key: &str, version: &str, uploaded_at: Option<String>) -> JobRecord {
    JobRecord::queued("data", key, version, "slides", uploaded_at)
        .with_version_id(Some(version.into()))
}

/// A batch of `bodies`, message ids `m0`, `m1`, ... (a message keeps its
/// id when redelivered).
fn batch(bodies: &[String], receive_count: u32) -> SqsEvent {
    let ids: Vec<String> = (0..bodies.len()).map(|i| format!("m{i}")).collect();
    batch_of(bodies, &ids, receive_count)
}

fn batch_of(bodies: &[String], ids: &[String], receive_count: u32) -> SqsEvent {
    serde_json::from_value(
        json!({"Records": bodies.iter().zip(ids).map(|(b, id)| json!({
        "messageId": id, "body": b, "eventSource": "aws:sqs",
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
    })).collect::<Vec<_>>()}),
    )
    .unwrap()
}

/// The jobs table in memory with a real one's faults over the network.
#[derive(Clone, Default)]
struct FlakyJobs {
    inner: MemoryJobs,
    /// Every `set_planned` is applied, its answer lost and the same update
    /// sent again (the SDK's retry); the caller sees the second answer.
    retry_set_planned: bool,
    /// `finish(Done)` fails (transient) this many more times.
    fail_done: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl JobsTable for FlakyJobs {
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StorageError> {
        self.inner.get(job_id).await
    }
    async fn create_if_absent(&self, record: &JobRecord) -> Result<bool, StorageError> {
        self.inner.create_if_absent(record).await
    }
    async fn set_planned(
        &self,
        job_id: &str,
        plan: &JobPlan,
        planned_by: &str,
    ) -> Result<bool, StorageError> {
        let first = self.inner.set_planned(job_id, plan, planned_by).await?;
        if self.retry_set_planned {
            return self.inner.set_planned(job_id, plan, planned_by).await;
        }
        Ok(first)
    }
    async fn chunk_done(&self, job_id: &str, chunk: u32) -> Result<JobRecord, StorageError> {
        self.inner.chunk_done(job_id, chunk).await
    }
    async fn chunk_failed(
        &self,
        job_id: &str,
        chunk: u32,
        error: &str,
    ) -> Result<(), StorageError> {
        self.inner.chunk_failed(job_id, chunk, error).await
    }
    async fn finish(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<bool, StorageError> {
        use std::sync::atomic::Ordering;
        if status == JobStatus::Done
            && self
                .fail_done
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StorageError::Transient {
                operation: "dynamodb:UpdateItem".into(),
                message: "connection reset".into(),
            });
        }
        self.inner.finish(job_id, status, error).await
    }
}

#[tokio::test]
async fn an_uploaded_video_becomes_one_timeline_delivered_once() {
    let h = harness(30).await;
    let video = data("video/slideshow_shared.mp4");
    let version = h
        .objects
        .insert("data", "uploads/slides/show.mp4", video.clone())
        .unwrap();
    let job = h
        .intake
        .start(job_at(
            "uploads/slides/show.mp4",
            &version,
            Some("2026-11-30T00:00:00Z".into()),
        ))
        .await
        .unwrap();

    // The plan message fans out one chunk message per chunk.
    let plan = h.work.take();
    assert_eq!(plan.len(), 1);
    let reply = h.runner.sqs_batch(batch(&plan, 1)).await;
    assert!(reply.batch_item_failures.is_empty());
    let chunks = h.work.take();
    let index = VideoIndex::from_bytes(&video, &VideoLimits::default()).unwrap();
    let planned = face_video::plan_chunks(&index, 30).unwrap();
    assert_eq!(chunks.len(), planned.len());
    assert!(chunks.len() >= 2, "the slideshow spans several chunks");
    // A repeated plan message (a send failed part way) queues again the
    // chunks not done yet, here all of them, the same messages.
    h.runner.sqs_batch(batch(&plan, 2)).await;
    let mut again = h.work.take();
    let mut first = chunks.clone();
    again.sort();
    first.sort();
    assert_eq!(again, first);
    assert_eq!(h.jobs.all()[0].status, JobStatus::Running);

    // The first chunk twice (a worker that died after scanning), in reverse
    // order otherwise: counted once, finished once.
    let mut order: Vec<String> = chunks.iter().rev().cloned().collect();
    order.insert(0, chunks[0].clone());
    for body in &order {
        let reply = h
            .runner
            .sqs_batch(batch(std::slice::from_ref(body), 1))
            .await;
        assert!(reply.batch_item_failures.is_empty(), "{body}");
    }
    // And again after the job ended: nothing changes.
    h.runner.sqs_batch(batch(&chunks[..1], 2)).await;

    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Done);
    assert_eq!(record.chunks_done.len(), chunks.len());
    let sent = h.results_queue.messages();
    assert_eq!(sent.len(), 1, "one result message per job");
    assert_eq!(h.topic.published().len(), 1);
    let message: ResultMessage = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(message.status, ResultStatus::Ok);
    assert_eq!(message.uploaded_at.as_deref(), Some("2026-11-30T00:00:00Z"));
    let view = message.job.unwrap();
    assert_eq!(view.job_id, job.job_id);
    assert_eq!(view.chunks_done as usize, chunks.len());

    // The same timeline as scanning the same chunks directly.
    let mut frames: Vec<FrameMatches> = Vec::new();
    for c in &planned {
        let scan = h
            .worker
            .handle(
                json!({"key": "uploads/slides/show.mp4", "collection": "slides",
                "frames": c.frames, "config": ScanConfig::default()}),
            )
            .await
            .unwrap();
        frames.extend(scan.matches);
    }
    let expected = Timeline::build(&frames, 1.0 / index.info().fps, &TimelineConfig::default());
    assert!(!expected.appearances.is_empty());
    assert_eq!(
        view.timeline.unwrap(),
        serde_json::to_value(&expected.appearances).unwrap()
    );
    assert_eq!(view.people["matt_damon"]["attributes"]["role"], "actor");
    let usage = view.usage.unwrap();
    assert_eq!(usage.invocations as usize, chunks.len());
    assert!(usage.gb_s > 0.0 && usage.usd > 0.0);

    // The montage: one MP4 of the moments, decodable.
    let montage_key = view.montage_key.unwrap();
    let montage = h
        .objects
        .keys("data")
        .into_iter()
        .find(|k| *k == montage_key)
        .expect("montage written");
    let bytes =
        face_service::storage::ObjectStore::get(&h.objects, "data", &montage, None, u64::MAX)
            .await
            .unwrap()
            .bytes;
    let montage_index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).unwrap();
    let kept: u64 = planned
        .iter()
        .map(|c| {
            let in_chunk: Vec<FrameMatches> = frames
                .iter()
                .filter(|f| c.frames.contains(f.frame))
                .cloned()
                .collect();
            face_video::montage_moments(&index, c.frames, &in_chunk, &Default::default())
                .unwrap()
                .iter()
                .map(|m| m.len())
                .sum::<u64>()
        })
        .sum();
    assert!(kept > 0);
    assert_eq!(
        montage_index.frames(),
        kept,
        "the padded moments, each frame once"
    );
}

#[tokio::test]
async fn an_unreadable_video_fails_its_job_once_with_the_reason() {
    let h = harness(120).await;
    // An ftyp box and then garbage: it looks like an MP4 until it is read.
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend_from_slice(&[0xAB; 4096]);
    let version = h
        .objects
        .insert("data", "uploads/slides/bad.mp4", bytes)
        .unwrap();
    h.intake
        .start(job_at("uploads/slides/bad.mp4", &version, None))
        .await
        .unwrap();
    let plan = h.work.take();
    let reply = h.runner.sqs_batch(batch(&plan, 1)).await;
    assert!(
        reply.batch_item_failures.is_empty(),
        "bad input is recorded and deleted, not retried"
    );
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Failed);
    assert!(
        record.error.as_deref().unwrap().contains("bad.mp4"),
        "{record:?}"
    );
    let sent = h.results_queue.messages();
    assert_eq!(sent.len(), 1);
    let message: ResultMessage = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(message.status, ResultStatus::BadInput);
    assert_eq!(message.job.unwrap().status, JobStatus::Failed);
}

#[tokio::test]
async fn a_chunk_failing_its_last_receive_fails_the_job_naming_it() {
    let h = harness(120).await;
    let job = started(&h).await;
    h.runner.sqs_batch(batch(&h.work.take(), 1)).await;
    let _ = h.work.take();
    // The video vanishes (a transient-looking failure every time).
    h.objects.fail_next.set(100);
    let chunk = ScanMessage::Chunk {
        job_id: job.job_id.clone(),
        chunk: 1,
        start_frame: 0,
        end_frame: 1,
    }
    .to_body();
    let first = h
        .runner
        .sqs_batch(batch(std::slice::from_ref(&chunk), 1))
        .await;
    assert_eq!(first.batch_item_failures.len(), 1, "retried by SQS");
    assert_eq!(h.jobs.all()[0].status, JobStatus::Running);
    let last = h
        .runner
        .sqs_batch(batch(std::slice::from_ref(&chunk), 3))
        .await;
    assert_eq!(last.batch_item_failures.len(), 1, "then to the DLQ");
    h.objects.fail_next.set(0);
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Failed);
    assert!(record.chunks_failed.contains(&1));
    assert!(
        record.error.as_deref().unwrap().contains("chunk 1"),
        "{record:?}"
    );
}

/// Plans the job of `key` (the slideshow, as uploaded), then puts another
/// video at the same key before any chunk runs; returns the chunk messages.
async fn planned_then_overwritten(h: &Harness, job: JobRecord) -> Vec<String> {
    h.intake.start(job).await.unwrap();
    let reply = h.runner.sqs_batch(batch(&h.work.take(), 1)).await;
    assert!(reply.batch_item_failures.is_empty());
    let chunks = h.work.take();
    assert!(!chunks.is_empty());
    h.objects.insert(
        "data",
        "uploads/slides/show.mp4",
        data("video/facenet-pytorch_video.mp4"),
    );
    chunks
}

#[tokio::test]
async fn a_job_scans_the_version_uploaded_though_the_key_was_overwritten_since() {
    let h = harness(120).await;
    let slideshow = data("video/slideshow_shared.mp4");
    let version = h
        .objects
        .insert("data", "uploads/slides/show.mp4", slideshow.clone())
        .unwrap();
    let chunks =
        planned_then_overwritten(&h, job_at("uploads/slides/show.mp4", &version, None)).await;
    let reply = h.runner.sqs_batch(batch(&chunks, 1)).await;
    assert!(reply.batch_item_failures.is_empty());

    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Done, "{record:?}");
    let index = VideoIndex::from_bytes(&slideshow, &VideoLimits::default()).unwrap();
    assert_eq!(record.frames, Some(index.info().frames));
    let sent = h.results_queue.messages();
    let message: ResultMessage = serde_json::from_str(&sent[0].1).unwrap();
    let view = message.job.unwrap();
    // The slideshow's people, found in the slideshow's frames: not a scan
    // of the street clip now at the key (it names no one of them).
    assert!(view.people.contains_key("matt_damon"), "{:?}", view.people);
    let timeline = view.timeline.unwrap();
    assert!(
        timeline.as_array().is_some_and(|a| !a.is_empty()),
        "{timeline}"
    );
}

#[tokio::test]
async fn an_unversioned_video_overwritten_mid_job_fails_it_once_saying_so() {
    let h = harness_on(120, MemoryObjects::default()).await;
    h.objects.insert(
        "data",
        "uploads/slides/show.mp4",
        data("video/slideshow_shared.mp4"),
    );
    // No version id: the job is keyed by the ETag, which every read must match.
    let etag =
        face_service::storage::ObjectStore::head(&h.objects, "data", "uploads/slides/show.mp4")
            .await
            .unwrap()
            .etag
            .unwrap();
    let job = JobRecord::queued("data", "uploads/slides/show.mp4", &etag, "slides", None);
    assert_eq!(job.version_id, None);
    let chunks = planned_then_overwritten(&h, job).await;
    let reply = h.runner.sqs_batch(batch(&chunks, 1)).await;
    assert!(
        reply.batch_item_failures.is_empty(),
        "a permanent failure: recorded and deleted, not retried"
    );
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Failed);
    let error = record.error.as_deref().unwrap();
    assert!(error.contains("overwritten"), "{error}");
    assert!(error.contains(&etag), "{error}");
    let sent = h.results_queue.messages();
    assert_eq!(sent.len(), 1);
    let message: ResultMessage = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(message.status, ResultStatus::BadInput);
}

/// Uploads `bytes` as `uploads/slides/<name>`, starts its job and runs its
/// plan message (first receive); returns the job as it is after and the
/// planner's reply.
async fn planned(h: &Harness, name: &str, bytes: Vec<u8>) -> (JobRecord, usize) {
    let key = format!("uploads/slides/{name}");
    let version = h.objects.insert("data", &key, bytes).unwrap();
    let job = h.intake.start(job_at(&key, &version, None)).await.unwrap();
    let reply = h.runner.sqs_batch(batch(&h.work.take(), 1)).await;
    let after = h.jobs.all().into_iter().find(|j| j.job_id == job.job_id);
    (after.unwrap(), reply.batch_item_failures.len())
}

/// The slideshow uploaded as `uploads/slides/show.mp4`, and the job its
/// upload asks for.
fn uploaded(h: &Harness) -> JobRecord {
    let version = h
        .objects
        .insert(
            "data",
            "uploads/slides/show.mp4",
            data("video/slideshow_shared.mp4"),
        )
        .unwrap();
    job_at("uploads/slides/show.mp4", &version, None)
}

/// [`uploaded`], its job started: its plan message is in `h.work`, not
/// yet run.
async fn started(h: &Harness) -> JobRecord {
    h.intake.start(uploaded(h)).await.unwrap()
}

/// The one result message sent, and its status.
fn only_result(h: &Harness) -> ResultMessage {
    let sent = h.results_queue.messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    serde_json::from_str(&sent[0].1).unwrap()
}

#[tokio::test]
async fn a_sample_table_past_the_end_of_the_file_is_bad_input_when_planned() {
    let h = harness(120).await;
    // ftyp 0..32, free 32..40, mdat 40..415684, moov 415684..417891: mdat
    // cut to its first half (its size field says so), moov kept, so the
    // sample table points past the end of the file for the later samples.
    let whole = data("video/slideshow_shared.mp4");
    assert_eq!(&whole[44..48], b"mdat");
    let kept = (415_684 - 48) / 2;
    let mut cut = whole[..40].to_vec();
    cut.extend_from_slice(&(8 + kept as u32).to_be_bytes());
    cut.extend_from_slice(b"mdat");
    cut.extend_from_slice(&whole[48..48 + kept]);
    cut.extend_from_slice(&whole[415_684..]);
    let size = cut.len();
    let (job, retried) = planned(&h, "cut.mp4", cut).await;
    assert_eq!(retried, 0, "bad input is recorded and deleted, not retried");
    assert!(h.work.take().is_empty(), "no chunk was queued");
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert!(error.contains("past the end"), "{error}");
    assert!(error.contains(&format!("{size}-byte file")), "{error}");
    assert_eq!(only_result(&h).status, ResultStatus::BadInput);

    // A direct invoke of a chunk there: refused before the ranged read (S3
    // would answer 416, an infrastructure error).
    let index =
        VideoIndex::from_bytes(&data("video/slideshow_shared.mp4"), &Default::default()).unwrap();
    let frames = index.frames();
    let err = h
        .worker
        .handle(
            json!({"key": "uploads/slides/cut.mp4", "collection": "slides",
            "frames": {"start": frames - 1, "end": frames}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FaceService.BadInput", "{err}");
    assert!(err.to_string().contains("past the end"), "{err}");
}

#[tokio::test]
async fn a_video_with_keyframes_too_far_apart_is_bad_input_when_planned() {
    let h = harness(300).await;
    // 1,500 frames at 30 fps with one IDR (at most one a minute; the
    // picture changes slowly, so no scene cut adds one): chunk k would
    // decode 300 * (k + 1) frames.
    let images = (0..1500u32).map(|i| {
        let pixels = (0..32 * 32)
            .flat_map(|p| [(p % 32 * 8) as u8, (p / 32 * 8) as u8, (i / 6) as u8])
            .collect();
        face_core::RgbImage::from_raw(32, 32, pixels).unwrap()
    });
    let settings = face_video::EncodeSettings {
        keyframe_interval_s: 60.0,
        ..Default::default()
    };
    let video = face_video::encode_images(images, 30, &settings).unwrap();
    let index = VideoIndex::from_bytes(&video, &VideoLimits::default()).unwrap();
    assert_eq!(index.info().keyframes, 1);
    let (job, retried) = planned(&h, "long-gop.mp4", video).await;
    assert_eq!(retried, 0);
    assert!(h.work.take().is_empty(), "no chunk was queued");
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert!(
        error.contains("keyframes every 1500 frames; at most 900 supported"),
        "{error}"
    );
    assert_eq!(only_result(&h).status, ResultStatus::BadInput);

    // A direct invoke of the last 300 frames: the same refusal.
    let err = h
        .worker
        .handle(
            json!({"key": "uploads/slides/long-gop.mp4", "collection": "slides",
            "frames": {"start": 1200, "end": 1500}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FaceService.BadInput", "{err}");
    assert!(err.to_string().contains("keyframes every"), "{err}");
}

#[tokio::test]
async fn a_montage_failure_of_the_worker_is_retried_and_fails_the_job_as_failed_not_bad_input() {
    // Settings the encoder refuses: the function's fault, not the video's.
    let settings = JobSettings {
        frames_per_chunk: 120,
        montage: face_video::MontageConfig {
            pad_s: -1.0,
            ..Default::default()
        },
        ..JobSettings::default()
    };
    let h = harness_with(settings, MemoryObjects::versioned()).await;
    let (job, _) = planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    let chunk = h.work.take().remove(0);
    let first = h
        .runner
        .sqs_batch(batch(std::slice::from_ref(&chunk), 1))
        .await;
    assert_eq!(first.batch_item_failures.len(), 1, "retried by SQS");
    assert_eq!(h.jobs.all()[0].status, JobStatus::Running);
    assert!(h.results_queue.messages().is_empty());
    let last = h
        .runner
        .sqs_batch(batch(std::slice::from_ref(&chunk), 3))
        .await;
    assert_eq!(last.batch_item_failures.len(), 1, "then to the DLQ");
    let record = &h.jobs.all()[0];
    assert_eq!(record.job_id, job.job_id);
    assert_eq!(record.status, JobStatus::Failed);
    let error = record.error.as_deref().unwrap();
    assert!(
        error.contains("chunk 0") && error.contains("pad_s"),
        "{error}"
    );
    assert_eq!(only_result(&h).status, ResultStatus::Failed);
}

#[tokio::test]
async fn a_timeout_shorter_than_the_margin_still_leaves_the_work_time() {
    // Two seconds left, the default 5 s margin: a quarter of them is kept
    // back, and the plan (milliseconds) is made, not failed untried.
    let h = harness(120).await;
    started(&h).await;
    let two_seconds = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let reply = h
        .runner
        .sqs_batch_until(batch(&h.work.take(), 1), Some(two_seconds))
        .await;
    assert!(reply.batch_item_failures.is_empty(), "{reply:?}");
    assert_eq!(h.jobs.all()[0].status, JobStatus::Running);
    assert!(!h.work.take().is_empty(), "the chunks were queued");
}

#[tokio::test]
async fn a_chunk_that_outlives_its_invocation_fails_the_job_on_its_last_receive() {
    let settings = JobSettings {
        frames_per_chunk: 120,
        deadline_margin: std::time::Duration::ZERO,
        ..JobSettings::default()
    };
    let h = harness_with(settings, MemoryObjects::versioned()).await;
    planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    let chunk = h.work.take().remove(0);
    // A millisecond left: the index alone takes longer to parse.
    let soon = || Some(std::time::Instant::now() + std::time::Duration::from_millis(1));
    let first = h
        .runner
        .sqs_batch_until(batch(std::slice::from_ref(&chunk), 1), soon())
        .await;
    assert_eq!(first.batch_item_failures.len(), 1, "retried by SQS");
    assert_eq!(h.jobs.all()[0].status, JobStatus::Running);
    assert!(h.jobs.all()[0].chunks_done.is_empty());
    let last = h
        .runner
        .sqs_batch_until(batch(std::slice::from_ref(&chunk), 3), soon())
        .await;
    assert_eq!(last.batch_item_failures.len(), 1, "then to the DLQ");
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Failed, "{record:?}");
    let error = record.error.as_deref().unwrap();
    assert!(
        error.contains("chunk 0 did not finish within the function's timeout"),
        "{error}"
    );
    assert_eq!(only_result(&h).status, ResultStatus::Failed);

    // No time left at all: the work is not started, and still counts.
    let h = harness_with(JobSettings::default(), MemoryObjects::versioned()).await;
    started(&h).await;
    let reply = h
        .runner
        .sqs_batch_until(batch(&h.work.take(), 3), Some(std::time::Instant::now()))
        .await;
    assert_eq!(reply.batch_item_failures.len(), 1);
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Failed);
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .contains("the plan did not finish within the function's timeout"),
        "{record:?}"
    );
}

/// Runs every chunk message of a planned job, in order, first receive.
async fn run_chunks(h: &Harness, chunks: &[String]) {
    for body in chunks {
        let reply = h
            .runner
            .sqs_batch(batch(std::slice::from_ref(body), 1))
            .await;
        assert!(reply.batch_item_failures.is_empty(), "{body}");
    }
}

#[tokio::test]
async fn a_montage_over_its_memory_budget_leaves_the_job_done_without_one() {
    let settings = JobSettings {
        frames_per_chunk: 120,
        max_montage_bytes: 1,
        ..JobSettings::default()
    };
    let h = harness_with(settings, MemoryObjects::versioned()).await;
    let (job, _) = planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    run_chunks(&h, &h.work.take()).await;
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Done, "{record:?}");
    let keys = h.objects.keys("data");
    let segments = face_contracts::layout::montage_segments_prefix(&job.job_id);
    assert!(keys.iter().any(|k| k.starts_with(&segments)), "{keys:?}");
    let montage = face_contracts::layout::montage_key(&job.job_id);
    assert!(!keys.contains(&montage), "no montage joined");
    let message = only_result(&h);
    assert_eq!(message.status, ResultStatus::Ok);
    let view = message.job.unwrap();
    assert_eq!(view.montage_key, None);
    assert!(
        view.timeline
            .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    );
}

#[tokio::test]
async fn an_unusable_montage_segment_leaves_the_job_done_without_a_montage() {
    let h = harness(30).await;
    let (job, _) = planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    let chunks = h.work.take();
    assert!(chunks.len() >= 2);
    run_chunks(&h, &chunks[..chunks.len() - 1]).await;
    // A segment that is not an MP4 (as a bad write would leave it).
    let segment = face_contracts::layout::montage_segment_key(&job.job_id, 0);
    h.objects.insert("data", &segment, b"not an mp4".to_vec());
    run_chunks(&h, &chunks[chunks.len() - 1..]).await;
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Done, "{record:?}");
    let view = only_result(&h).job.unwrap();
    assert_eq!(view.montage_key, None);
    assert!(view.timeline.is_some());
}

#[tokio::test]
async fn a_duplicate_plan_message_queues_no_chunks_but_the_plan_redelivered_does() {
    let h = harness(120).await;
    let record = uploaded(&h);
    // Two starts while queued (an S3 event delivered twice): two plans,
    // two messages.
    h.intake.start(record.clone()).await.unwrap();
    h.intake.start(record).await.unwrap();
    let plans = h.work.take();
    assert_eq!(plans.len(), 2);
    let ids = ["plan-1".to_string(), "plan-2".to_string()];
    h.runner
        .sqs_batch(batch_of(&plans[..1], &ids[..1], 1))
        .await;
    let chunks = h.work.take();
    assert!(!chunks.is_empty());
    let planned = h.jobs.all()[0].clone();
    assert_eq!(planned.status, JobStatus::Running);
    // The duplicate, on its first receive: the job is planned, nothing sent.
    let reply = h
        .runner
        .sqs_batch(batch_of(&plans[1..], &ids[1..], 1))
        .await;
    assert!(reply.batch_item_failures.is_empty());
    assert!(h.work.take().is_empty(), "a duplicate plan sent chunks");
    assert_eq!(h.jobs.all()[0], planned);
    // ... nor on a later receive: it is still not the job's plan.
    h.runner
        .sqs_batch(batch_of(&plans[1..], &ids[1..], 2))
        .await;
    assert!(
        h.work.take().is_empty(),
        "a redelivered duplicate plan sent chunks"
    );
    // A redelivered plan (its sends may have failed part way) sends again
    // the chunks not done.
    h.runner
        .sqs_batch(batch_of(&plans[..1], &ids[..1], 2))
        .await;
    assert_eq!(h.work.take().len(), chunks.len());
}

#[tokio::test]
async fn a_plan_whose_applied_update_is_retried_still_queues_its_chunks() {
    // DynamoDB applies the plan's update, its answer is lost, and the SDK
    // sends the update again: the plan message must not take itself for a
    // duplicate (first receive, so no redelivery to fall back on).
    let jobs = MemoryJobs::default();
    let table = FlakyJobs {
        inner: jobs.clone(),
        retry_set_planned: true,
        ..FlakyJobs::default()
    };
    let settings = JobSettings {
        frames_per_chunk: 120,
        ..JobSettings::default()
    };
    let h = harness_with_jobs(settings, MemoryObjects::versioned(), jobs, Arc::new(table)).await;
    let (job, retried) = planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    assert_eq!(retried, 0);
    assert_eq!(job.status, JobStatus::Running);
    let chunks = h.work.take();
    assert!(!chunks.is_empty(), "the job's chunks were queued");
    run_chunks(&h, &chunks).await;
    assert_eq!(h.jobs.all()[0].status, JobStatus::Done);
    assert_eq!(only_result(&h).status, ResultStatus::Ok);
}

#[tokio::test]
async fn a_job_whose_result_was_delivered_is_done_though_marking_it_failed_on_the_last_receive() {
    // The last chunk, on its last receive: the result is written and
    // delivered, then marking the job done fails (as a timeout there would
    // stop it). The job is done, not failed, and the message deleted.
    let jobs = MemoryJobs::default();
    let table = FlakyJobs {
        inner: jobs.clone(),
        ..FlakyJobs::default()
    };
    let settings = JobSettings {
        frames_per_chunk: 120,
        ..JobSettings::default()
    };
    let h = harness_with_jobs(
        settings,
        MemoryObjects::versioned(),
        jobs,
        Arc::new(table.clone()),
    )
    .await;
    planned(&h, "show.mp4", data("video/slideshow_shared.mp4")).await;
    let chunks = h.work.take();
    let (last, rest) = chunks.split_last().unwrap();
    run_chunks(&h, rest).await;
    table
        .fail_done
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let reply = h
        .runner
        .sqs_batch(batch(std::slice::from_ref(last), 3))
        .await;
    assert!(
        reply.batch_item_failures.is_empty(),
        "done: not sent to the DLQ"
    );
    let record = &h.jobs.all()[0];
    assert_eq!(record.status, JobStatus::Done, "{record:?}");
    assert!(record.chunks_failed.is_empty(), "{record:?}");
    assert_eq!(record.error, None);
    assert_eq!(only_result(&h).status, ResultStatus::Ok);
    assert_eq!(h.topic.published().len(), 1);
}

#[tokio::test]
async fn a_scan_or_montage_told_to_stop_ends_at_its_next_frame() {
    // What a timed-out worker's blocking thread runs: `StopOnDrop`'s check
    // asked before each frame, so it ends instead of running on into the
    // next invocation.
    use face_video::{ScanError, VideoError};
    let h = harness(300).await;
    let video = data("video/slideshow_shared.mp4");
    let index = VideoIndex::from_bytes(&video, &VideoLimits::default()).unwrap();
    let dir =
        std::env::var_os("FACECTL_MODELS").map_or_else(|| workspace().join("blobs"), PathBuf::from);
    let pipeline = face_service::models::load_pipeline(&dir).unwrap();
    let collection = face_core::Collection::new(pipeline.face_model_version());
    let frames = face_video::FrameRange {
        start: 0,
        end: index.frames(),
    };
    let config = ScanConfig {
        mode: face_video::ScanMode::EveryFrame,
        ..ScanConfig::default()
    };
    let asked = std::cell::Cell::new(0u64);
    let mut analyzed = 0u64;
    let scanned = face_video::scan_chunk_until(
        &pipeline,
        &collection,
        &index,
        &video,
        0,
        frames,
        &config,
        &mut |_, _| analyzed += 1,
        &|| {
            asked.set(asked.get() + 1);
            asked.get() > 3
        },
    );
    assert!(
        matches!(scanned, Err(ScanError::Video(VideoError::Cancelled))),
        "{scanned:?}"
    );
    assert!(analyzed <= 3, "{analyzed} frames analyzed after the stop");
    assert!(index.frames() > 3);

    // Who is where, for the montage: the whole video, the people enrolled.
    h.objects
        .insert("data", "uploads/slides/show.mp4", video.clone())
        .unwrap();
    let full = h
        .worker
        .handle(
            json!({"key": "uploads/slides/show.mp4", "collection": "slides",
            "frames": frames}),
        )
        .await
        .unwrap();
    assert!(
        full.matches
            .iter()
            .any(|m| m.faces.iter().any(|f| f.person.is_some()))
    );
    let montage = face_video::montage_chunk_until(
        &index,
        &video,
        0,
        frames,
        &full.matches,
        &face_video::MontageConfig::default(),
        &|| true,
    );
    assert_eq!(montage, Err(VideoError::Cancelled));
}
