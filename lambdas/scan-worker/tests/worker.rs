//! The worker on the shared slideshow, from in-memory S3: it reads only the
//! header and its chunk's bytes, and finds who the labels say is there.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use face_service::enroll::Enroller;
use face_service::memory::{MemoryObjects, MemoryPeople};
use face_service::metrics::Metrics;
use scan_worker::ScanWorker;
use serde_json::json;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("FACE_DATA_DIR")
        .map_or_else(|| workspace().join("../shared/data"), PathBuf::from);
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e} (set FACE_DATA_DIR)"))
}

fn people_in(scan: &face_video::ChunkScan, from_s: f64, to_s: f64) -> Vec<String> {
    let mut people: Vec<String> = scan
        .matches
        .iter()
        .filter(|f| f.pts_s >= from_s && f.pts_s < to_s)
        .flat_map(|f| f.faces.iter().filter_map(|face| face.person.clone()))
        .collect();
    people.sort();
    people.dedup();
    people
}

#[tokio::test]
async fn a_chunk_of_the_slideshow_names_who_is_on_screen() {
    let dir =
        std::env::var_os("FACECTL_MODELS").map_or_else(|| workspace().join("blobs"), PathBuf::from);
    let pipeline = Arc::new(face_service::models::load_pipeline(&dir).unwrap());
    let objects = MemoryObjects::default();
    let enroller = Enroller::new(
        pipeline.clone(),
        objects.clone(),
        MemoryPeople::default(),
        "data".into(),
    );
    // Enrolled from photos other than the slideshow's own frames.
    for (person, photo) in [
        (
            "jennifer_aniston",
            "recognition/jennifer_aniston/deepface_img12.jpg",
        ),
        ("matt_damon", "recognition/matt_damon/deepface_img30.jpg"),
    ] {
        enroller
            .handle(json!({"action": "enroll", "collection": "slides", "person": person,
                "images": [{"base64": base64::engine::general_purpose::STANDARD.encode(data(photo))}]}))
            .await
            .unwrap();
    }
    objects.insert(
        "data",
        "videos/slideshow.mp4",
        data("video/slideshow_shared.mp4"),
    );
    let metrics = Metrics::in_memory("faces-scan-worker", None);
    let worker = ScanWorker::new(pipeline, objects, "data".into()).with_metrics(metrics.clone());

    // Seconds 0-4: brick wall, Jennifer Aniston, Matt Damon, no faces.
    let index = face_video::VideoIndex::from_bytes(
        &data("video/slideshow_shared.mp4"),
        &face_video::VideoLimits::default(),
    )
    .unwrap();
    let fps = index.info().fps;
    let end = (4.0 * fps).round() as u64;
    let scan = worker
        .handle(
            json!({"key": "videos/slideshow.mp4", "collection": "slides",
            "frames": {"start": 0, "end": end}}),
        )
        .await
        .unwrap();
    assert_eq!(
        scan.matches.len() as u64,
        end,
        "one entry per frame of the range"
    );
    assert!(people_in(&scan, 0.0, 0.9).is_empty());
    assert_eq!(people_in(&scan, 1.1, 1.9), ["jennifer_aniston"]);
    assert_eq!(people_in(&scan, 2.1, 2.9), ["matt_damon"]);
    assert!(people_in(&scan, 3.1, 3.9).is_empty());
    // Tracking: the recognizer ran on far fewer faces than frames shown.
    assert!(
        scan.stats.faces_recognized < scan.stats.frames / 4,
        "{:?}",
        scan.stats
    );

    // One metrics line for the chunk, its counts the scan's own.
    let lines = metrics.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["Function"], "faces-scan-worker");
    assert_eq!(line["ChunkFrames"], end as f64);
    assert_eq!(line["FramesDetected"], scan.stats.frames_detected as f64);
    assert_eq!(line["FacesFound"], scan.stats.faces_detected as f64);
    let named = scan
        .matches
        .iter()
        .flat_map(|m| &m.faces)
        .filter(|f| f.detected && f.person.is_some())
        .count();
    assert!(named > 0);
    assert_eq!(line["FacesMatched"], named as f64);
    assert!(line["ChunkTime"].as_f64().unwrap() >= line["DetectTime"].as_f64().unwrap());

    // A later chunk decodes from its own keyframe.
    let later = worker
        .handle(
            json!({"key": "videos/slideshow.mp4", "collection": "slides",
            "frames": {"start": end, "end": end + (2.0 * fps) as u64}}),
        )
        .await
        .unwrap();
    assert_eq!(later.matches[0].frame, end);

    for (request, why) in [
        (
            json!({"key": "videos/none.mp4", "collection": "slides", "frames": {"start": 0, "end": 1}}),
            "missing",
        ),
        (
            json!({"key": "videos/slideshow.mp4", "collection": "slides", "frames": {"start": 0, "end": 100000}}),
            "range",
        ),
        (
            json!({"key": "videos/slideshow.mp4", "collection": "no/such", "frames": {"start": 0, "end": 1}}),
            "name",
        ),
    ] {
        let err = worker.handle(request).await.unwrap_err();
        assert_eq!(err.error_type(), "FaceService.BadInput", "{why}: {err}");
    }
}
