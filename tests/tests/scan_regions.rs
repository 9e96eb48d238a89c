//! `facectl scan-video --stack`, cloud mode, over three emulated regions:
//! each a bucket in moto and a real `scan-worker` bootstrap under the
//! Runtime Interface Emulator, one of which is killed mid-scan. The video
//! is staged in every bucket, the collection enrolled in the first region
//! is mirrored to the others, no frame is lost or counted twice, and the
//! people the labels name are found where they are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::KeyType;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use e2e::{create_table, data, start_function};
use face_stacks::DeployRecord;
use face_video::FrameRange;
use facectl::cloud::scan_video;
use local_aws::{MotoServer, Rie};
use scan_coordinator::Progress;
use scan_coordinator::deployment::{LambdaEndpoint, RegionSelection};
use scan_coordinator::video_scan::CloudOptions;
use serde_json::json;

const STACK_YAML: &str = "name: face-e2e
defaults:
  architecture: x86_64
  memory_mib: 1024
regions:
  us-east-1: {}
  eu-west-1: {}
  ap-south-1: {}
";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const VICTIM: &str = "ap-south-1";

fn bucket(region: &str) -> String {
    format!("faces-data-{region}")
}

fn rie(function: &str, name: &str, dir: &std::path::Path, env: &[(String, String)]) -> Rie {
    start_function(function, name, dir, env).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_survives_losing_a_region_mid_scan() {
    let moto = MotoServer::start().unwrap();
    let config = moto.sdk_config().await;
    let s3 = |region: &str| {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .region(aws_sdk_s3::config::Region::new(region.to_string()))
                .force_path_style(true)
                .build(),
        )
    };
    for region in REGIONS {
        let mut create = s3(region).create_bucket().bucket(bucket(region));
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        create.send().await.unwrap();
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(
        &dynamo,
        "faces-people",
        &[("collection", KeyType::Hash), ("person", KeyType::Range)],
    )
    .await
    .unwrap();
    let s3_home = s3(REGIONS[0]);

    let env_in = |region: &str| {
        let mut env = moto.client_env();
        env.push(("AWS_REGION".into(), region.into()));
        env.push(("FACE_BUCKET".into(), bucket(region)));
        env.push(("FACE_PEOPLE_TABLE".into(), "faces-people".into()));
        env
    };
    let dir = tempfile::tempdir().unwrap();

    // Enrolled in the first region only, from photos other than the
    // slideshow's own.
    let enroll = rie("enroll", "enroll", dir.path(), &env_in(REGIONS[0]));
    let slides = devset::slideshow_labels(&e2e::data_dir()).unwrap();
    let labels = devset::recognition_labels(&e2e::data_dir()).unwrap();
    let people = devset::slideshow_enrollment(&slides, &labels);
    assert_eq!(people.len(), 6, "{people:?}");
    for devset::Enrollment { person, photos } in &people {
        let mut images = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let key = format!("enroll/{person}/{i}.jpg");
            s3_home
                .put_object()
                .bucket(bucket(REGIONS[0]))
                .key(&key)
                .body(ByteStream::from(data(photo)))
                .send()
                .await
                .unwrap();
            images.push(key);
        }
        let reply = enroll
            .invoke(&json!({"action": "enroll", "collection": "slides", "person": person, "images": images}))
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!(
            reply["indexed"].as_array().unwrap().len(),
            photos.len(),
            "{reply}"
        );
    }

    // Three regions of one worker each; the third dies after its first
    // chunk, with most of the video still to scan.
    let workers: BTreeMap<&str, Rie> = REGIONS
        .iter()
        .map(|r| {
            let name = format!("scan-worker-{r}");
            (*r, rie("scan-worker", &name, dir.path(), &env_in(r)))
        })
        .collect();
    let lambda_endpoints = workers
        .iter()
        .map(|(r, rie)| (r.to_string(), LambdaEndpoint::parse(&rie.invocations_url())))
        .collect();
    let mut workers = workers;
    let victim = Mutex::new(workers.remove(VICTIM));
    let on_progress = Arc::new(move |p: Progress| {
        if p.done >= 3 {
            // The process dies; its next invokes find no one listening.
            drop(victim.lock().unwrap().take());
        }
    });

    // What deploy would have written, one file per region.
    let state = tempfile::tempdir().unwrap();
    let stack = state.path().join("face-e2e.yaml");
    std::fs::write(&stack, STACK_YAML).unwrap();
    for region in REGIONS {
        let record = DeployRecord {
            stack: "face-e2e".into(),
            account: "123456789012".into(),
            region: region.into(),
            outputs: [
                ("DataBucketName".to_string(), bucket(region)),
                // The deployed name; each emulator's URL names its own.
                (
                    "ScanWorkerFunctionName".to_string(),
                    "face-e2e-scan-worker".to_string(),
                ),
            ]
            .into(),
            api_url: None,
        };
        std::fs::write(
            state.path().join(DeployRecord::file_name(region)),
            record.to_json(),
        )
        .unwrap();
    }
    let video_path = e2e::data_path(&slides[0].video);
    let options = CloudOptions {
        video: video_path,
        collection: "slides".into(),
        stack: stack.display().to_string(),
        target: RegionSelection {
            outputs_dir: Some(state.path().to_path_buf()),
            regions: Vec::new(),
            lambda_endpoints,
            max_in_flight: Some(1),
            sdk: Some(config.clone()),
        },
        // Enrolled there; the stack's first region (by name) is ap-south-1.
        collection_region: Some(REGIONS[0].into()),
        // Half-second chunks (10 fps): plenty left when the region dies.
        frames_per_chunk: 5,
        config: Default::default(),
        timeline: Default::default(),
    };
    let (report, thumbs) = scan_video(&options, on_progress).await.unwrap();

    let cloud = report.cloud.as_ref().unwrap();
    assert!(report.chunks >= 20, "{} chunks", report.chunks);
    let by_region: BTreeMap<&str, _> = cloud
        .regions
        .iter()
        .map(|r| (r.region.name.as_str(), r))
        .collect();
    let lost = &by_region[VICTIM];
    assert!(lost.work.lost, "{:?}", cloud.regions);
    let done: usize = cloud.regions.iter().map(|r| r.work.jobs_done).sum();
    assert_eq!(done, report.chunks, "one result per chunk");
    assert!(
        cloud.usage.invocations as usize > done,
        "the failed invokes are metered too"
    );
    // Staged everywhere; the collection mirrored from the first region.
    for region in REGIONS {
        let r = &by_region[region];
        assert!(r.video_uploaded, "{region}");
        assert_eq!(r.collection.people, 6, "{region}");
        let expected = if region == REGIONS[0] { 0 } else { 6 };
        assert_eq!(r.collection.copied, expected, "{region}");
        let listed = s3(region)
            .list_objects_v2()
            .bucket(bucket(region))
            .prefix("collections/slides/people/")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.contents().len(), 6, "{region}");
    }

    // Who is on screen, against the labels (the middle of each second).
    let fps = report.info.fps;
    let frames = &report.frames;
    let mut named = 0;
    for slide in &slides {
        let (start_s, end_s) = (slide.start_s, slide.end_s);
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
        let on_slide: Vec<&str> = slide.people().collect();
        if on_slide.is_empty() {
            assert!(seen.is_empty(), "{slide:?}: saw {seen:?}");
        }
        for who in on_slide {
            named += 1;
            assert!(seen.iter().any(|s| s == who), "{slide:?}: saw {seen:?}");
            assert!(
                report
                    .timeline
                    .iter()
                    .any(|a| a.person == who && a.start_s < end_s && start_s < a.end_s),
                "{slide:?}: {who} not in the timeline"
            );
            assert!(thumbs.contains_key(who), "{who}: no thumbnail");
        }
    }
    assert!(named >= 6, "{named} labelled stretches with someone");
    let html = facectl::scan::render_html(&report, &thumbs);
    assert!(
        html.contains(VICTIM) && html.contains("lost"),
        "the page shows the lost region"
    );
}
