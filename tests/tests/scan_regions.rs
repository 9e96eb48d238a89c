//! A video scan fanned out over three emulated regions, each a real
//! `scan-worker` bootstrap under the Runtime Interface Emulator, one of
//! which is killed mid-scan: no frame is lost or counted twice, and the
//! people the labels name are found where they are.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeyType;
use aws_sdk_s3::primitives::ByteStream;
use e2e::{create_table, data, start_function};
use face_video::{ChunkScan, FrameRange, VideoIndex, VideoLimits, plan_chunks};
use local_aws::{MotoServer, Rie};
use scan_coordinator::{
    LambdaTarget, LambdaWorker, Progress, Region, RetryPolicy, Worker, WorkerError, fan_out,
};
use scan_worker::ScanChunkRequest;
use serde_json::json;

const BUCKET: &str = "faces-data";
const VIDEO_KEY: &str = "videos/slideshow.mp4";

fn rie(function: &str, name: &str, dir: &std::path::Path, env: &[(String, String)]) -> Rie {
    start_function(function, name, dir, env).unwrap()
}

fn endpoint(rie: &Rie) -> String {
    let url = rie.invocations_url();
    url.split("/2015-03-31").next().unwrap().to_string()
}

/// Passes jobs to the real workers, and kills one region's emulator after
/// it has finished `kill_after` jobs.
struct KillsARegion {
    inner: LambdaWorker<ScanChunkRequest, ChunkScan>,
    victim: &'static str,
    kill_after: usize,
    victim_rie: Mutex<Option<Rie>>,
    victim_done: Mutex<usize>,
}

#[async_trait]
impl Worker<ScanChunkRequest, ChunkScan> for KillsARegion {
    async fn run(&self, region: &str, job: &ScanChunkRequest) -> Result<ChunkScan, WorkerError> {
        let result = self.inner.run(region, job).await;
        if region == self.victim && result.is_ok() {
            let mut done = self.victim_done.lock().unwrap();
            *done += 1;
            if *done == self.kill_after {
                // The process dies; its next invokes find no one listening.
                drop(self.victim_rie.lock().unwrap().take());
            }
        }
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_survives_losing_a_region_mid_scan() {
    let moto = MotoServer::start().unwrap();
    let config = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(
        &dynamo,
        "faces-people",
        &[("collection", KeyType::Hash), ("person", KeyType::Range)],
    )
    .await
    .unwrap();
    let video = data("video/slideshow_shared.mp4");
    s3.put_object()
        .bucket(BUCKET)
        .key(VIDEO_KEY)
        .body(ByteStream::from(video.clone()))
        .send()
        .await
        .unwrap();

    let mut env = moto.client_env();
    env.push(("FACE_BUCKET".into(), BUCKET.into()));
    env.push(("FACE_PEOPLE_TABLE".into(), "faces-people".into()));
    let dir = tempfile::tempdir().unwrap();

    // Enrolled from photos other than the slideshow's own.
    let enroll = rie("enroll", "enroll", dir.path(), &env);
    for (person, photo) in [
        (
            "jennifer_aniston",
            "recognition/jennifer_aniston/deepface_img12.jpg",
        ),
        ("matt_damon", "recognition/matt_damon/deepface_img30.jpg"),
        (
            "kit_harington",
            "recognition/kit_harington/face_recognition_john2.jpeg",
        ),
        (
            "guido_van_rossum",
            "recognition/guido_van_rossum/fr-pr1285_guido_van_rossum2.jpg",
        ),
        (
            "george_clooney",
            "recognition/george_clooney/deepface_img39.jpg",
        ),
        ("elon_musk", "recognition/elon_musk/deepface_img19.jpg"),
    ] {
        let key = format!("enroll/{person}.jpg");
        s3.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(data(photo)))
            .send()
            .await
            .unwrap();
        let reply = enroll
            .invoke(&json!({"action": "enroll", "collection": "slides", "person": person, "images": [key]}))
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(reply["indexed"].as_array().unwrap().len(), 1, "{reply}");
    }

    // Three regions of one worker each; the third dies after one chunk.
    let regions = ["us-east-1", "eu-west-1", "ap-south-1"];
    let workers: Vec<Rie> = regions
        .iter()
        .map(|r| rie("scan-worker", &format!("scan-worker-{r}"), dir.path(), &env))
        .collect();
    let targets: Vec<LambdaTarget> = regions
        .iter()
        .zip(&workers)
        .map(|(region, rie)| LambdaTarget {
            region: region.to_string(),
            function_name: "function".into(),
            endpoint_url: Some(endpoint(rie)),
        })
        .collect();
    let mut workers = workers;
    let victim_rie = workers.pop();
    let worker = Arc::new(KillsARegion {
        inner: LambdaWorker::new(&config, &targets),
        victim: "ap-south-1",
        kill_after: 1,
        victim_rie: Mutex::new(victim_rie),
        victim_done: Mutex::new(0),
    });

    let index = VideoIndex::from_bytes(&video, &VideoLimits::default()).unwrap();
    let fps = index.info().fps;
    // Half-second chunks: plenty left when the region dies.
    let chunks = plan_chunks(&index, (fps / 2.0).round() as u64).unwrap();
    assert!(chunks.len() >= 20, "{} chunks", chunks.len());
    let jobs: Vec<(u64, ScanChunkRequest)> = chunks
        .iter()
        .map(|c| {
            (
                u64::from(c.chunk),
                ScanChunkRequest {
                    bucket: None,
                    key: VIDEO_KEY.into(),
                    collection: "slides".into(),
                    frames: c.frames,
                    config: Default::default(),
                },
            )
        })
        .collect();
    let plan: Vec<Region> = regions
        .iter()
        .map(|r| Region {
            name: r.to_string(),
            max_in_flight: 1,
        })
        .collect();
    let policy = RetryPolicy {
        backoff_base: std::time::Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let report = fan_out(jobs, &plan, worker, policy, Arc::new(|_: Progress| {}))
        .await
        .unwrap();

    let lost = &report.regions["ap-south-1"];
    assert!(lost.lost, "{:?}", report.regions);
    assert_eq!(lost.jobs_done, 1);
    assert_eq!(report.results.len(), chunks.len());

    // Every frame exactly once, in order.
    let mut frames: Vec<&face_video::FrameMatches> = report
        .results
        .values()
        .flat_map(|r| r.result.matches.iter())
        .collect();
    frames.sort_by_key(|f| f.frame);
    let numbers: Vec<u64> = frames.iter().map(|f| f.frame).collect();
    assert_eq!(numbers, (0..index.frames()).collect::<Vec<u64>>());

    // Who is on screen, against the labels (the middle of each second).
    let labels = String::from_utf8(data("video_slideshow_shared.csv")).unwrap();
    for line in labels.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (start_s, end_s): (f64, f64) = (cols[1].parse().unwrap(), cols[2].parse().unwrap());
        let middle = FrameRange {
            start: ((start_s + 0.2) * fps) as u64,
            end: ((end_s - 0.2) * fps) as u64,
        };
        let mut seen: Vec<String> = frames
            .iter()
            .filter(|f| middle.contains(f.frame))
            .flat_map(|f| f.faces.iter().filter_map(|face| face.person.clone()))
            .collect();
        seen.sort();
        seen.dedup();
        match cols[4] {
            "" => assert!(seen.is_empty(), "{line}: saw {seen:?}"),
            who => assert!(seen.contains(&who.to_string()), "{line}: saw {seen:?}"),
        }
    }
}
