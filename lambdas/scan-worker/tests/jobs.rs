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
use face_service::enroll::Enroller;
use face_service::events::SqsEvent;
use face_service::jobs::VideoIntake;
use face_service::memory::{
    MemoryJobs, MemoryObjects, MemoryPeople, MemoryQueue, MemoryResults, MemoryTopic, MemoryWork,
};
use face_service::recognize::ResultMessage;
use face_service::storage::{JobRecord, ResultStatus};
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
    let (jobs, work, results_queue, topic) = (
        MemoryJobs::default(),
        MemoryWork::default(),
        MemoryQueue::default(),
        MemoryTopic::default(),
    );
    let stores = JobStores {
        jobs: Arc::new(jobs.clone()),
        scan_queue: Arc::new(work.clone()),
        people: Arc::new(people),
        results: Arc::new(MemoryResults::default()),
        results_queue: Arc::new(results_queue.clone()),
        topic: Some(Arc::new(topic.clone())),
    };
    let settings = JobSettings {
        frames_per_chunk,
        ..JobSettings::default()
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

fn batch(bodies: &[String], receive_count: u32) -> SqsEvent {
    serde_json::from_value(
        json!({"Records": bodies.iter().enumerate().map(|(i, b)| json!({
        "messageId": format!("m{i}"), "body": b, "eventSource": "aws:sqs",
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
    })).collect::<Vec<_>>()}),
    )
    .unwrap()
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
    let version = h
        .objects
        .insert(
            "data",
            "uploads/slides/show.mp4",
            data("video/slideshow_shared.mp4"),
        )
        .unwrap();
    let job = h
        .intake
        .start(job_at("uploads/slides/show.mp4", &version, None))
        .await
        .unwrap();
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
