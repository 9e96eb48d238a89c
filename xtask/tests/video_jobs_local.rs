//! Video jobs of issue 13 on the local stack (moto, `cargo xtask deploy`,
//! `cargo xtask serve`, the real `recognize` and `scan-worker` bootstraps
//! under the Runtime Interface Emulator behind their queues):
//!
//! - the slideshow uploaded through a presigned URL becomes a job whose
//!   timeline equals `facectl scan-video`'s on this machine, with a
//!   montage that decodes;
//!   A worker is killed (SIGKILL) in the middle of an invocation first: the
//!   scan queue hands its message back and the job still completes with
//!   one kept invocation per chunk and every frame once;
//! - twenty one-second clips uploaded to S3 in a burst are read back by
//!   `facectl results --follow --threads 8`: twenty results with their
//!   latencies and, on every frame, only the person the slide shows.
//!
//! It runs the `facectl` binary beside the xtask's (the workspace's test
//! build makes it, `--features facectl/cloud`; alone: `cargo build -p
//! facectl --features cloud` first) and the function zips of `cargo xtask
//! build`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Gateway, b64, call, create_key, ok, xtask};
use local_aws::MotoServer;
use serde_json::{Value, json};

#[test]
fn video_jobs_on_the_local_stack() {
    let data = devset::data_dir(None, &local_aws::workspace_root());
    let slides = devset::slideshow_labels(&data).expect("slideshow labels");
    let recognition = devset::recognition_labels(&data).expect("recognition labels");
    let enrollment = devset::slideshow_enrollment(&slides, &recognition);
    assert!(!enrollment.is_empty());
    let video_rel = slides[0].video.clone();
    let video = std::fs::read(data.join(&video_rel)).expect("the slideshow");
    let c = "video-e2e";

    let moto = MotoServer::start().expect("moto");
    ok(&xtask(&moto, &["deploy", "--stack", "local"]));
    let key = create_key(&moto, "video", &[]);
    let gateway = Gateway::start(&moto);
    let url = |path: &str| format!("{}{path}", gateway.url);
    let k = Some(key.as_str());

    // The same people, from the same photos, in the cloud and on this machine.
    let store = tempfile::tempdir().expect("tempdir");
    let store_arg = store.path().to_str().expect("utf-8");
    for e in &enrollment {
        let images: Vec<Value> = e
            .photos
            .iter()
            .map(|p| b64(&std::fs::read(data.join(p)).expect("photo")))
            .collect();
        let (status, body) = call(
            "POST",
            &url(&format!("/v1/collections/{c}/people/{}/faces", e.person)),
            k,
            Some(&json!({ "images": images })),
        );
        assert_eq!(status, 200, "{body}");
        let paths: Vec<String> = e
            .photos
            .iter()
            .map(|p| data.join(p).display().to_string())
            .collect();
        let mut args = vec![
            "--store",
            store_arg,
            "enroll",
            "--collection",
            c,
            "--person",
            &e.person,
        ];
        args.extend(paths.iter().map(String::as_str));
        assert!(common::facectl(&moto, &key, &args).status.success());
    }
    let video_path = data.join(&video_rel).display().to_string();
    let local = common::facectl(
        &moto,
        &key,
        &[
            "--store",
            store_arg,
            "scan-video",
            &video_path,
            "--collection",
            c,
            "--frames-per-chunk",
            "300",
            "--json",
        ],
    );
    assert!(local.status.success());
    let local: Value = serde_json::from_slice(&local.stdout).expect("scan-video --json");
    assert!(
        !local["timeline"].as_array().expect("timeline").is_empty(),
        "{local}"
    );

    // The slideshow through a presigned URL: a job, then its timeline.
    let (status, upload) = call(
        "POST",
        &url("/v1/uploads"),
        k,
        Some(
            &json!({ "collection": c, "content_type": "video/mp4", "content_length": video.len() }),
        ),
    );
    assert_eq!(status, 200, "{upload}");
    let mut put = ureq::put(upload["url"].as_str().unwrap());
    for (h, v) in upload["headers"].as_object().into_iter().flatten() {
        if !h.eq_ignore_ascii_case("content-length") {
            put = put.header(h, v.as_str().unwrap());
        }
    }
    put.send(&video[..]).expect("PUT to the presigned URL");
    // A worker dies while it runs (an out-of-memory kill, a lost host): its
    // message comes back after the scan queue's visibility timeout and the
    // job completes as if nothing happened.
    kill_worker_mid_invocation(&moto, Instant::now() + Duration::from_secs(120));
    let result_url = url(&format!(
        "/v1/results/{}",
        upload["result_id"].as_str().unwrap()
    ));
    let deadline = Instant::now() + Duration::from_secs(600);
    let job = loop {
        let (status, body) = call("GET", &result_url, k, None);
        if status == 200 && body["job"]["status"] == "done" {
            break body["job"].clone();
        }
        assert!(
            status == 404 || body["job"]["status"] != "failed",
            "{status} {body}"
        );
        assert!(Instant::now() < deadline, "the job did not finish: {body}");
        std::thread::sleep(Duration::from_secs(1));
    };
    // The same appearances; distances are f32s, compared as such (one side
    // went through f64 JSON).
    assert_eq!(
        same_f32s(&job["timeline"]),
        same_f32s(&local["timeline"]),
        "{job}"
    );
    assert_eq!(job["chunks_done"], job["chunks_total"]);
    // Every frame counted once: one kept invocation per chunk, the job's
    // frames the video's, and the timeline (frames seen per person) the
    // local scan's, above.
    assert_eq!(job["usage"]["invocations"], job["chunks_total"], "{job}");
    let frames = face_video::VideoIndex::from_bytes(&video, &face_video::VideoLimits::default())
        .unwrap()
        .frames();
    assert_eq!(job["frames"].as_u64(), Some(frames), "{job}");
    assert!(job["usage"]["gb_s"].as_f64().unwrap() > 0.0, "{job}");
    // The same job by its id, through facectl.
    let job_id = job["job_id"].as_str().unwrap();
    let status = common::facectl(
        &moto,
        &key,
        &["scan-status", "--stack", "local", job_id, "--json"],
    );
    assert!(status.status.success());
    let by_id: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(by_id["timeline"], job["timeline"]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let record = common::local_record(&moto);
    let bucket = record["outputs"]["DataBucketName"]
        .as_str()
        .unwrap()
        .to_string();
    let config = runtime.block_on(face_sdk_config::local_config(
        moto.endpoint_url(),
        "us-east-1",
    ));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let montage = runtime.block_on(async {
        s3.get_object()
            .bucket(&bucket)
            .key(job["montage_key"].as_str().expect("a montage"))
            .send()
            .await
            .expect("the montage")
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
    });
    let montage = face_video::VideoIndex::from_bytes(&montage, &face_video::VideoLimits::default())
        .expect("the montage decodes");
    assert!(montage.frames() > 0);

    // The camera: twenty one-second clips uploaded at once.
    let index =
        face_video::VideoIndex::from_bytes(&video, &face_video::VideoLimits::default()).unwrap();
    let fps = index.info().fps;
    let labelled: Vec<&devset::SlideLabel> =
        slides.iter().filter(|s| s.video == video_rel).collect();
    let clips: Vec<(String, Vec<u8>, &devset::SlideLabel)> = (0..20)
        .map(|i| {
            let slide = labelled[i % labelled.len()];
            let start = (slide.start_s * fps).round() as u64;
            let end = ((slide.end_s * fps).round() as u64).min(index.frames());
            let clip = face_video::encode_clip(
                &index,
                &video,
                0,
                face_video::FrameRange { start, end },
                // A camera's own quality: one re-encode at a high
                // bitrate, not the montage's 1.5 Mbit/s.
                &face_video::EncodeSettings {
                    bitrate_bps: 8_000_000,
                    ..face_video::EncodeSettings::default()
                },
            )
            .expect("a clip");
            (format!("uploads/{c}/camera/clip-{i:02}.mp4"), clip, slide)
        })
        .collect();
    runtime.block_on(async {
        let puts = clips.iter().map(|(key, bytes, _)| {
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(bytes.clone().into())
                .send()
        });
        for put in futures_util::future::join_all(puts).await {
            put.expect("a clip upload");
        }
    });
    // `facectl results --follow`: its JSON lines, the summary last.
    let aws_env = moto.client_env();
    let follow = |threads: &str, count: usize, idle_s: &str| -> Vec<Value> {
        let count = count.to_string();
        let out = common::facectl_with_env(
            &moto,
            &key,
            &aws_env,
            &[
                "results",
                "--stack",
                "local",
                "--follow",
                "--threads",
                threads,
                "--count",
                &count,
                "--idle-timeout-s",
                idle_s,
                "--json",
            ],
        );
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    let is_clip = |r: &&Value| r["key"].as_str().is_some_and(|k| k.contains("/camera/"));
    let lines = follow("8", 20, "600");
    let (summary, results) = lines.split_last().expect("a summary");
    eprintln!("facectl results: {summary}");
    // The slideshow's own result may come first (it was not read yet).
    let clip_results: Vec<&Value> = results.iter().filter(is_clip).collect();
    let late: Vec<Value> = if clip_results.len() < 20 {
        let more = follow("1", 20 - clip_results.len(), "120");
        more.split_last()
            .map(|(_, r)| r.iter().filter(is_clip).cloned().collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let all: Vec<&Value> = clip_results.into_iter().chain(late.iter()).collect();
    let keys: BTreeSet<&str> = all.iter().filter_map(|r| r["key"].as_str()).collect();
    if keys.len() != 20 {
        // Where the others are: every job's state.
        let table = record["outputs"]["ScanJobsTableName"].as_str().unwrap();
        let items = runtime.block_on(async {
            aws_sdk_dynamodb::Client::new(&config)
                .scan()
                .table_name(table)
                .send()
                .await
                .expect("jobs")
                .items
                .unwrap_or_default()
        });
        for item in items {
            eprintln!("job: {item:?}");
        }
    }
    assert_eq!(
        keys.len(),
        20,
        "every clip once: {keys:?}, summary {summary}"
    );
    assert!(summary["p50_ms"].as_f64().is_some(), "{summary}");
    for r in &all {
        let latency = r["latency_ms"].as_f64().expect("a latency");
        assert!(latency > 0.0 && latency < 600_000.0, "{r}");
        let (_, _, slide) = clips
            .iter()
            .find(|(k, _, _)| Some(k.as_str()) == r["key"].as_str())
            .unwrap();
        let shown: BTreeSet<&str> = slide.people().collect();
        let frames = r["message"]["job"]["frames_matched"]
            .as_array()
            .expect("a short clip carries its frames");
        let mut named = BTreeSet::new();
        for frame in frames {
            for face in frame["faces"].as_array().unwrap() {
                if let Some(p) = face["person"].as_str() {
                    assert!(shown.contains(p), "{p} named on a slide of {shown:?}");
                    named.insert(p.to_string());
                }
            }
        }
        // A slide of one face (not a group photo with one labelled person)
        // is named exactly.
        if shown.len() == 1 && slide.min_faces == 1 {
            assert_eq!(
                named.iter().map(String::as_str).collect::<BTreeSet<_>>(),
                shown,
                "{r}"
            );
        }
    }
}

/// `value` with every number that is not an integer rounded to f32.
fn same_f32s(value: &Value) -> Value {
    match value {
        Value::Number(n) if !n.is_u64() && !n.is_i64() => {
            json!(n.as_f64().map(|f| f as f32))
        }
        Value::Array(a) => Value::Array(a.iter().map(same_f32s).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), same_f32s(v))).collect())
        }
        other => other.clone(),
    }
}

/// The newest log of the local stack's scan-worker under the RIE.
fn scan_worker_log(moto: &MotoServer) -> Option<std::path::PathBuf> {
    let dir = common::deploy_dir(moto).join("local/functions");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("scan-worker"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// The pids of running scan-worker bootstraps (the function's own process,
/// under the RIE that plays Lambda's runtime API).
fn scan_worker_pids() -> Vec<String> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let argv0 = c.split(|&b| b == 0).next().unwrap_or_default();
                String::from_utf8_lossy(argv0).ends_with("x86_64/scan-worker/bootstrap")
            })
        })
        .filter(|e| descends_from_this_test(&e.file_name().to_string_lossy()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether process `pid` descends from this test's process: a worker that
/// another test runs beside this one is not ours to kill.
fn descends_from_this_test(pid: &str) -> bool {
    let me = std::process::id().to_string();
    let mut current = pid.to_string();
    for _ in 0..64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{current}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some(parent) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        else {
            return false;
        };
        if parent == me {
            return true;
        }
        if parent == "0" || parent == "1" {
            return false;
        }
        current = parent.to_string();
    }
    false
}

/// SIGKILLs the scan-worker's bootstrap while an invocation is in flight
/// (the RIE's log shows an `INVOKE START` not yet done) and waits for the
/// RIE to report the invocation failed with the kill.
fn kill_worker_mid_invocation(moto: &MotoServer, deadline: Instant) {
    loop {
        assert!(
            Instant::now() < deadline,
            "no scan-worker invocation was seen in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
        let Some(log) = scan_worker_log(moto) else {
            continue;
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let started = text.rfind("INVOKE START(");
        let done = text.rfind("INVOKE RTDONE(").max(text.rfind("Invoke DONE"));
        if started.is_none() || done > started {
            continue;
        }
        let pids = scan_worker_pids();
        if pids.is_empty() {
            continue;
        }
        let killed = std::process::Command::new("kill")
            .arg("-9")
            .args(&pids)
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -9 {pids:?}");
        let waited = Instant::now() + Duration::from_secs(30);
        while Instant::now() < waited {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("signal: killed") {
                eprintln!("scan-worker {pids:?} killed mid-invocation");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the RIE did not report the killed invocation: {log:?}");
    }
}
