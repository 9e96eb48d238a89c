//! `facectl scan-video` on the shared videos: the slideshow's labelled
//! people are found on their slides (enrolled from *other* photos of
//! them), no one on the face-free slides, and the street clip's crowd of
//! strangers is detected and no one in it is named, at default settings.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{data_dir, facectl, json, stderr};
use serde_json::Value;

fn slides() -> Vec<devset::SlideLabel> {
    devset::slideshow_labels(&data_dir()).expect("slideshow labels")
}

/// Enrolls everyone named on the slides from their photos that are not
/// slides; returns who was enrolled.
fn enroll_all(store: &std::path::Path) -> BTreeSet<String> {
    let slides = slides();
    let labels = devset::recognition_labels(&data_dir()).expect("recognition labels");
    let people = devset::slideshow_enrollment(&slides, &labels);
    assert!(!people.is_empty(), "no one to enroll for the slideshow");
    let shown: BTreeSet<&str> = slides.iter().map(|s| s.source_image.as_str()).collect();
    for devset::Enrollment { person, photos } in &people {
        let paths: Vec<String> = photos
            .iter()
            .inspect(|rel| assert!(!shown.contains(rel.as_str()), "{rel} is a slide"))
            .map(|rel| data_dir().join(rel).display().to_string())
            .collect();
        let mut args = vec!["enroll", "--collection", "video", "--person", person];
        args.extend(paths.iter().map(String::as_str));
        let out = facectl(store, &args);
        assert!(out.status.success(), "enroll {person}: {}", stderr(&out));
    }
    people.into_iter().map(|e| e.person).collect()
}

fn scan(store: &std::path::Path, video: &str, extra: &[&str]) -> Value {
    let path = data_dir().join("video").join(video);
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["scan-video", path, "--collection", "video", "--json"];
    args.extend(extra);
    let out = facectl(store, &args);
    assert!(out.status.success(), "scan-video failed: {}", stderr(&out));
    json(&out)
}

/// frame -> (faces, people named) from the report's frames.
fn per_frame(report: &Value) -> BTreeMap<u64, (usize, BTreeSet<String>)> {
    report["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            let faces = f["faces"].as_array().expect("faces");
            let people = faces
                .iter()
                .filter_map(|x| x["person"].as_str().map(str::to_string))
                .collect();
            (f["frame"].as_u64().expect("frame"), (faces.len(), people))
        })
        .collect()
}

#[test]
fn slideshow_people_are_found_on_their_slides_and_no_one_elsewhere() {
    let store = tempfile::tempdir().expect("tempdir");
    let enrolled = enroll_all(store.path());
    let html = store.path().join("report.html");
    let report = scan(
        store.path(),
        "slideshow_shared.mp4",
        &["--report", html.to_str().expect("utf-8"), "--compare-naive"],
    );
    let fps = report["info"]["fps"].as_f64().expect("fps");
    assert!((fps - 10.0).abs() < 1e-6);
    let frames = per_frame(&report);

    // Per enrolled person: labelled slides where they are named on at
    // least 90% of the slide's frames, and frames named of frames shown.
    let mut found: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut frames_found: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for slide in slides() {
        let range = (slide.start_s * fps).round() as u64..(slide.end_s * fps).round() as u64;
        let len = range.end - range.start;
        for person in slide.people().filter(|p| enrolled.contains(*p)) {
            let seen = range
                .clone()
                .filter(|f| frames.get(f).is_some_and(|(_, p)| p.contains(person)))
                .count() as u64;
            let f = frames_found.entry(person.to_string()).or_default();
            f.0 += seen;
            f.1 += len;
            let e = found.entry(person.to_string()).or_default();
            e.1 += 1;
            if seen * 10 >= len * 9 {
                e.0 += 1;
            }
        }
        for f in range {
            let (faces, people) = frames.get(&f).cloned().unwrap_or_default();
            if slide.min_faces == 0 {
                assert_eq!(
                    faces, 0,
                    "face(s) on face-free slide {} (frame {f})",
                    slide.source_image
                );
            }
            // No one is named where they are not labelled.
            for p in &people {
                assert!(
                    slide.people().any(|q| q == p),
                    "{p} claimed on frame {f} showing {}",
                    slide.source_image
                );
            }
        }
    }
    assert_eq!(found.len(), enrolled.len(), "{found:?}");
    for (person, (seen, shown)) in &frames_found {
        assert!(
            *seen as f64 >= 0.95 * *shown as f64,
            "{person} named on {seen} of the {shown} frames showing them"
        );
    }
    // The tracked scan names on (nearly) every frame the every-frame
    // baseline does.
    let recall = report["comparison"]["sighting_recall"]
        .as_f64()
        .expect("sighting recall");
    assert!(
        recall >= 0.95,
        "sighting recall {recall}: {:#}",
        report["comparison"]["names"]
    );
    for (person, (hit, total)) in &found {
        assert!(
            f64::from(*hit) >= 0.95 * f64::from(*total),
            "{person} found on {hit} of {total} labelled slides"
        );
    }

    // The timeline has one appearance per labelled slide of an enrolled
    // person (neighbouring slides hold different people).
    let appearances = report["timeline"].as_array().expect("timeline");
    let labelled: usize = found.values().map(|v| v.1 as usize).sum();
    assert_eq!(appearances.len(), labelled, "{appearances:#?}");

    // The tracked scan ran the recognizer on far fewer faces than it saw.
    let stats = &report["tracked"]["stats"];
    let n = |v: &Value| v.as_u64().expect("count");
    assert!(
        n(&stats["faces_recognized"]) * 2 < n(&stats["faces_detected"]),
        "{stats}"
    );
    assert_eq!(n(&stats["frames"]), 120);

    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(page.contains("data:image/jpeg;base64,"));
    for p in &enrolled {
        assert!(page.contains(p), "{p} missing from the HTML report");
    }
    let usd = report["lambda_estimate"]["usd"].as_f64().expect("usd");
    assert!(usd > 0.0 && usd < 0.01, "{usd}");
}

#[test]
fn street_crowd_is_detected_without_confident_claims() {
    let store = tempfile::tempdir().expect("tempdir");
    enroll_all(store.path());
    let report = scan(
        store.path(),
        "facenet-pytorch_video.mp4",
        &["--compare-naive"],
    );
    let frames = per_frame(&report);
    // video_segments.csv: 3-8 near-frontal faces in each of 105 frames.
    assert_eq!(frames.len(), 105);
    for (f, (faces, _)) in &frames {
        assert!((3..=8).contains(faces), "frame {f}: {faces} faces");
    }
    // None of these strangers is enrolled: no one is named, on any frame,
    // each face decided alone, the every-frame baseline may name some.
    let named: Vec<&Value> = report["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .flat_map(|f| f["faces"].as_array().expect("faces"))
        .filter(|face| face["person"].is_string())
        .collect();
    assert!(
        named.is_empty(),
        "strangers named: {named:#?}; by path: {:#}",
        report["comparison"]["names"]
    );
    assert!(
        report["timeline"].as_array().is_some_and(|t| t.is_empty()),
        "a stranger was named: {:#}",
        report["timeline"]
    );
    // Every face left unknown says why.
    for f in report["frames"].as_array().expect("frames") {
        for face in f["faces"].as_array().expect("faces") {
            assert!(face["unknown_reason"].is_string(), "{face}");
        }
    }
    // The work tracking saves, counted (timings belong to `cargo xtask
    // bench-scan`): fewer detector runs and far fewer recognizer runs.
    let stats = |run: &serde_json::Value, key: &str| run["stats"][key].as_u64().expect(key);
    let (tracked, naive) = (&report["tracked"], &report["comparison"]["naive"]);
    assert!(stats(tracked, "frames_detected") < stats(naive, "frames_detected"));
    assert!(
        stats(tracked, "faces_recognized") * 2 < stats(naive, "faces_recognized"),
        "tracked {} vs naive {} recognitions",
        stats(tracked, "faces_recognized"),
        stats(naive, "faces_recognized")
    );
}

#[test]
fn montage_holds_the_padded_moments_of_the_scan() {
    let store = tempfile::tempdir().expect("tempdir");
    let enrolled = enroll_all(store.path());
    let person = enrolled.iter().next().expect("someone enrolled").clone();
    let out = store.path().join("montage.mp4");
    let out_s = out.to_str().expect("utf-8 path");
    let report = scan(
        store.path(),
        "slideshow_shared.mp4",
        &[
            "--frames-per-chunk",
            "30",
            "--montage",
            out_s,
            "--montage-person",
            &person,
        ],
    );
    // Expected: every frame within a second of a frame naming the person,
    // within the scan's chunks (padding never crosses a chunk's edge).
    let bytes = std::fs::read(data_dir().join("video/slideshow_shared.mp4")).expect("video");
    let limits = face_video::VideoLimits::default();
    let index = face_video::VideoIndex::from_bytes(&bytes, &limits).expect("index");
    let plan = face_video::plan_chunks(&index, 30).expect("plan");
    assert_eq!(report["chunks"].as_u64(), Some(plan.len() as u64));
    let hits: Vec<u64> = per_frame(&report)
        .into_iter()
        .filter(|(_, (_, people))| people.contains(&person))
        .map(|(f, _)| f)
        .collect();
    assert!(!hits.is_empty(), "{person} was found");
    let expected = plan
        .iter()
        .flat_map(|c| {
            let hits = &hits;
            let index = &index;
            (c.frames.start..c.frames.end).filter(move |&f| {
                hits.iter().any(|&h| {
                    c.frames.contains(h) && (index.pts_s(h) - index.pts_s(f)).abs() <= 1.0 + 1e-6
                })
            })
        })
        .count() as u64;
    let montage = std::fs::read(&out).expect("montage written");
    let m = face_video::VideoIndex::from_bytes(&montage, &limits).expect("montage index");
    assert_eq!(m.frames(), expected);
    assert_eq!((m.width, m.height), (index.width, index.height));
}

/// Enrolls everyone, then picks a slide of one enrolled person: the
/// person and the slide's photo. Slides are never enrolled, so the photo
/// is new to the collection.
fn enroll_all_and_pick_a_new_photo(store: &std::path::Path) -> (String, image::RgbImage) {
    let enrolled = enroll_all(store);
    let slide = slides()
        .into_iter()
        .find(|s| s.people().count() == 1 && s.people().all(|p| enrolled.contains(p)))
        .expect("a slide of one enrolled person");
    let person = slide.people().next().expect("one person").to_string();
    let photo = image::open(data_dir().join(&slide.source_image))
        .expect("the slide's photo")
        .to_rgb8();
    (person, photo)
}

/// A held-out photo of an enrolled person filmed badly: panned across the
/// frame, zoomed out and in, its lower third covered, then dimmed.
fn handheld_clip(photo: &image::RgbImage) -> Vec<image::RgbImage> {
    use image::imageops::{FilterType, overlay, resize};
    let (w, h) = (640u32, 360u32);
    (0..60u32)
        .map(|i| {
            let height = match i {
                20..40 => 300 - (i - 20).min(39 - i) * 12,
                _ => 300,
            };
            let width = (photo.width() * height / photo.height()).max(1);
            let mut shot = resize(photo, width, height, FilterType::Triangle);
            if (40..50).contains(&i) {
                for y in height * 2 / 3..height {
                    for x in 0..width {
                        shot.put_pixel(x, y, image::Rgb([90, 90, 90]));
                    }
                }
            }
            if i >= 50 {
                for p in shot.pixels_mut() {
                    p.0 = p.0.map(|v| (f32::from(v) * 0.45) as u8);
                }
            }
            let x = if i < 20 { 10 + i * 14 } else { 180 };
            let mut frame = image::RgbImage::from_pixel(w, h, image::Rgb([40, 40, 40]));
            overlay(&mut frame, &shot, i64::from(x), i64::from((h - height) / 2));
            frame
        })
        .collect()
}

#[test]
fn a_badly_filmed_person_is_named_by_the_tracked_scan_where_the_baseline_names_them() {
    let store = tempfile::tempdir().expect("tempdir");
    let (person, photo) = enroll_all_and_pick_a_new_photo(store.path());
    let video = face_video::encode_images(
        handheld_clip(&photo),
        10,
        &face_video::EncodeSettings::default(),
    )
    .expect("encoded");
    let path = store.path().join("handheld.mp4");
    std::fs::write(&path, video).expect("written");
    let out = facectl(
        store.path(),
        &[
            "scan-video",
            path.to_str().expect("utf-8 path"),
            "--collection",
            "video",
            "--compare-naive",
            "--json",
        ],
    );
    assert!(out.status.success(), "scan-video failed: {}", stderr(&out));
    let report = json(&out);
    let comparison = &report["comparison"];
    eprintln!("{person}: {:#}", comparison["names"]);
    let frames = per_frame(&report);
    assert_eq!(frames.len(), 60);
    let named: Vec<u64> = frames
        .iter()
        .filter(|(_, (_, people))| people.contains(&person))
        .map(|(f, _)| *f)
        .collect();
    for (f, (_, people)) in &frames {
        assert!(
            people.iter().all(|p| *p == person),
            "frame {f}: {people:?} named on a photo of {person}"
        );
    }
    assert!(named.len() >= 45, "{person} named on frames {named:?}");
    let recall = comparison["sighting_recall"].as_f64().expect("recall");
    assert!(recall >= 0.95, "sighting recall {recall}: {comparison:#}");
}

/// Boxes per frame, `[x, y, width, height]`, from a report.
fn boxes(report: &Value) -> Vec<Vec<[f64; 4]>> {
    report["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            f["faces"]
                .as_array()
                .expect("faces")
                .iter()
                .map(|x| ["x", "y", "width", "height"].map(|k| x["bbox"][k].as_f64().expect(k)))
                .collect()
        })
        .collect()
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

#[test]
fn a_portrait_phone_video_scans_upright() {
    let store = tempfile::tempdir().expect("tempdir");
    let (person, photo) = enroll_all_and_pick_a_new_photo(store.path());
    // What the camera saw, upright: a portrait frame, the photo drifting down.
    let shot = image::imageops::resize(
        &photo,
        320,
        (320 * photo.height() / photo.width()).min(560),
        image::imageops::FilterType::Triangle,
    );
    let seen: Vec<image::RgbImage> = (0..20u32)
        .map(|i| {
            let mut frame = image::RgbImage::from_pixel(360, 640, image::Rgb([40, 40, 40]));
            image::imageops::overlay(&mut frame, &shot, 20, i64::from(10 + 2 * i));
            frame
        })
        .collect();
    let settings = face_video::EncodeSettings::default();
    let scan_file = |name: &str, bytes: Vec<u8>| {
        let path = store.path().join(name);
        std::fs::write(&path, bytes).expect("written");
        let path = path.to_str().expect("utf-8 path");
        let args = ["scan-video", path, "--collection", "video", "--json"];
        let out = facectl(store.path(), &args);
        assert!(out.status.success(), "scan-video {name}: {}", stderr(&out));
        json(&out)
    };
    let upright = scan_file(
        "upright.mp4",
        face_video::encode_images(seen.clone(), 10, &settings).expect("encoded"),
    );
    // The phone stores the sensor's landscape picture and a 90-degree turn.
    let stored = seen.iter().map(image::imageops::rotate270);
    let mut phone = face_video::encode_images(stored, 10, &settings).expect("encoded");
    face_video::set_display_rotation(&mut phone, face_video::Rotation::Clockwise90)
        .expect("rotation set");
    let phone = scan_file("phone.mp4", phone);

    let info = &phone["info"];
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(360), Some(640))
    );
    assert_eq!(info["rotation_deg"].as_u64(), Some(90));
    let (want, got) = (boxes(&upright), boxes(&phone));
    assert_eq!(got.len(), 20);
    for (f, (want, got)) in want.iter().zip(&got).enumerate() {
        assert_eq!(want.len(), 1, "frame {f}: {want:?} in the upright clip");
        assert_eq!(got.len(), 1, "frame {f}: {got:?} in the phone clip");
        let (w, g) = (want[0], got[0]);
        // Two encodes of one picture move a box by a few pixels.
        let overlap = iou(w, g);
        assert!(
            overlap >= 0.85,
            "frame {f}: upright box {w:?}, phone box {g:?}, IoU {overlap:.2}"
        );
        // An upright face is taller than wide and lies within the photo.
        assert!(
            g[3] > g[2] * 0.9 && g[0] >= 20.0 && g[0] + g[2] <= 340.0,
            "{g:?}"
        );
    }
    let named = per_frame(&phone)
        .values()
        .filter(|(_, people)| people.len() == 1 && people.contains(&person))
        .count();
    assert!(
        named >= 18,
        "{person} named on {named} of 20 upright frames"
    );
}

/// A `--report` or `--montage` path that cannot be written is refused
/// before the scan when its folder is missing, and when writing still
/// fails after the scan, the results are printed first, not lost.
#[test]
fn outputs_that_cannot_be_written_never_cost_the_results() {
    let store = tempfile::tempdir().expect("tempdir");
    let video = data_dir().join("video/slideshow_shared.mp4");
    let video = video.to_str().expect("utf-8 path");
    let nowhere = store.path().join("missing/report.html");
    for flag in ["--report", "--montage"] {
        let out = facectl(
            store.path(),
            &[
                "scan-video",
                video,
                "--collection",
                "video",
                flag,
                nowhere.to_str().expect("utf-8 path"),
            ],
        );
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert!(
            err.contains(flag) && err.contains("does not exist"),
            "{err}"
        );
    }

    let photo = data_dir().join("recognition/matt_damon/deepface_img30.jpg");
    let out = facectl(
        store.path(),
        &[
            "enroll",
            "--collection",
            "video",
            "--person",
            "matt",
            photo.to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // /proc is a folder, but no file can be created in it.
    let out = facectl(
        store.path(),
        &[
            "scan-video",
            video,
            "--collection",
            "video",
            "--json",
            "--report",
            "/proc/facectl-report.html",
        ],
    );
    assert!(!out.status.success(), "the failed write fails the command");
    let err = stderr(&out);
    assert!(err.contains("/proc/facectl-report.html"), "{err}");
    let report = json(&out);
    assert!(report["tracked"]["stats"].is_object(), "{report:#}");
}

/// A reader of stdout gone (`scan-video --json ... --report r.html | head`)
/// still gets the report written: the scan's results are not lost to the
/// closed pipe, and facectl then ends quietly with 141.
#[test]
fn a_closed_stdout_still_gets_the_report_written() {
    let store = tempfile::tempdir().expect("tempdir");
    let photo = data_dir().join("recognition/matt_damon/deepface_img30.jpg");
    let out = facectl(
        store.path(),
        &[
            "enroll",
            "--collection",
            "video",
            "--person",
            "matt",
            photo.to_str().expect("utf-8 path"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let video = data_dir().join("video/slideshow_shared.mp4");
    let html = store.path().join("report.html");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facectl"))
        .arg("--models")
        .arg(common::models_dir())
        .arg("--store")
        .arg(store.path())
        .args(["scan-video", "--collection", "video", "--json"])
        .arg(&video)
        .arg("--report")
        .arg(&html)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("facectl runs");
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let page = std::fs::read_to_string(&html).expect("the report was written");
    assert!(page.contains("<html"), "{page}");
}
