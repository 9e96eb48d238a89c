//! The arm64 bootstraps, which the dev and prod stacks deploy, under QEMU's
//! user-mode emulator (RIE and bootstrap both arm64), answer the same
//! requests as the x86_64 ones: `recognize` on photos, `scan-worker` on a
//! chunk of the slideshow. Same faces, same names, numbers within a
//! tolerance (the two builds run different tract kernels, so descriptors
//! differ in their last bits).
//!
//! Ignored in the default run: it needs the arm64 artifacts, a second musl
//! build of every dependency. `cargo xtask test --arm64` builds them and
//! runs it; so does `cargo test -p e2e --test arm64 -- --ignored` after
//! `cargo xtask build --arch arm64 --profile ci --function recognize
//! --function scan-worker`.

use e2e::{BUCKET, FunctionResources, data, start_function_for};
use face_contracts::Architecture;
use local_aws::{MotoServer, Rie};
use serde_json::{Value, json};

/// Photos both architectures recognize: a group photo of two enrolled
/// people and a face-free image. Few and small: emulated, a photo takes
/// tens of seconds.
const PHOTOS: [&str; 2] = [
    "detection/face_recognition_kit_with_rose.jpg",
    "detection/skimage_brick.png",
];

/// Frames of the slideshow chunk both scan-workers scan.
const CHUNK_FRAMES: u64 = 4;

/// Reply fields that measure time or name a request, not the result.
const NOT_COMPARED: [&str; 3] = ["timings_ms", "stats", "request_id"];

/// The largest difference allowed between the architectures' numbers: an
/// absolute one for numbers up to 1 (confidences, distances) and a
/// relative one above (pixel coordinates, similarities on 0..100). Half a
/// percent: under a pixel on a face's box, far under what would change a
/// name. Measured: 2.2e-3 at most (0.13 px of a slideshow face's box; the
/// photos' numbers under 1e-3); the test prints the largest it saw.
const TOLERANCE: f64 = 5e-3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the arm64 artifacts and qemu-user: cargo xtask test --arm64"]
async fn arm64_bootstraps_answer_as_the_x86_64_ones() {
    let moto = MotoServer::start().unwrap();
    let aws = FunctionResources::provision(&moto).await.unwrap();
    let put = |key: String, bytes: Vec<u8>| {
        let aws = &aws;
        async move { aws.put(&key, bytes).await.unwrap() }
    };
    let env = aws.function_env(&moto);
    let dir = tempfile::tempdir().unwrap();
    let start = |arch: Architecture, function: &str| -> Rie {
        let name = format!("{function}-{arch}");
        start_function_for(arch, function, &name, dir.path(), &env).unwrap()
    };

    // The slideshow's six people and the group photo's two, enrolled once
    // (natively: emulated, enrolling is minutes per person) into the
    // collection both architectures search.
    let slides = devset::slideshow_labels(&e2e::data_dir()).unwrap();
    let labels = devset::recognition_labels(&e2e::data_dir()).unwrap();
    let mut people = devset::slideshow_enrollment(&slides, &labels);
    for (person, photo) in [
        (
            "kit_harington",
            "recognition/kit_harington/face_recognition_john2.jpeg",
        ),
        (
            "rose_leslie",
            "recognition/rose_leslie/face_recognition_img1.jpg",
        ),
    ] {
        people.push(devset::Enrollment {
            person: person.into(),
            photos: vec![photo.into()],
        });
    }
    let enroll = start(Architecture::X86_64, "enroll");
    for devset::Enrollment { person, photos } in &people {
        let mut keys = Vec::new();
        for (i, photo) in photos.iter().enumerate() {
            let key = format!("enroll/{person}/{i}.jpg");
            put(key.clone(), data(photo)).await;
            keys.push(key);
        }
        let reply = invoke(
            &enroll,
            &json!({"action": "enroll", "collection": "slides", "person": person, "images": keys}),
        );
        assert_eq!(
            reply["indexed"].as_array().map(Vec::len),
            Some(photos.len()),
            "{reply:#}"
        );
    }
    drop(enroll);

    let mut largest = Difference::default();
    let recognizers = Architecture::ALL.map(|arch| start(arch, "recognize"));
    let mut group_reply = Value::Null;
    for photo in PHOTOS {
        let key = format!("inbox/{}", photo.rsplit('/').next().unwrap());
        put(key.clone(), data(photo)).await;
        let event = json!({"collection": "slides", "image": {"bucket": BUCKET, "key": key}});
        let [x86, arm] = recognizers.each_ref().map(|rie| invoke(rie, &event));
        compare(&x86, &arm, photo, &mut largest);
        if photo == PHOTOS[0] {
            group_reply = arm;
        }
    }
    drop(recognizers);
    // Not vacuous: arm64 named the group photo's two people.
    let names: Vec<&str> = group_reply["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["Match"]["Person"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{group_reply:#}");
    for person in ["kit_harington", "rose_leslie"] {
        assert!(names.contains(&person), "{person} in {group_reply:#}");
    }

    // A chunk of the slideshow where an enrolled person is on screen.
    let video = &slides[0].video;
    let bytes = data(video);
    let index = face_video::VideoIndex::from_bytes(&bytes, &Default::default()).unwrap();
    let slide = slides
        .iter()
        .find(|s| !s.identities.is_empty())
        .expect("a slide with people");
    let on_screen: Vec<u64> = (0..index.frames())
        .filter(|&f| (slide.start_s..slide.end_s).contains(&index.pts_s(f)))
        .collect();
    assert!(
        on_screen.len() as u64 >= 2 * CHUNK_FRAMES,
        "{} frames",
        on_screen.len()
    );
    let first = on_screen[on_screen.len() / 2];
    put("videos/slideshow.mp4".into(), bytes).await;
    let request = json!({
        "key": "videos/slideshow.mp4",
        "collection": "slides",
        "frames": {"start": first, "end": first + CHUNK_FRAMES},
    });
    let workers = Architecture::ALL.map(|arch| start(arch, "scan-worker"));
    let [x86, arm] = workers.each_ref().map(|rie| invoke(rie, &request));
    compare(&x86, &arm, "slideshow chunk", &mut largest);
    let matched = arm["matches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["faces"].as_array().unwrap())
        .filter(|f| {
            f.to_string()
                .contains(slide.identities.split(';').next().unwrap())
        })
        .count();
    assert!(matched > 0, "{slide:?} not found in {arm:#}");

    println!(
        "arm64 vs x86_64: {} numbers compared, largest scaled difference {:.2e} at {}",
        largest.numbers, largest.largest, largest.at
    );
    assert!(
        largest.past_tolerance.is_empty(),
        "past {TOLERANCE:e}:\n{}",
        largest.past_tolerance.join("\n")
    );
}

fn invoke(rie: &Rie, event: &Value) -> Value {
    let invocation = rie.invoke(event).unwrap();
    match invocation.result {
        Ok(v) => v,
        Err(e) => panic!("function error {e:?}\n{}", rie.log_tail(40)),
    }
}

/// What [`compare`] saw: how many numbers, the largest scaled difference
/// and where, and every one past [`TOLERANCE`].
#[derive(Debug, Default)]
struct Difference {
    numbers: usize,
    largest: f64,
    at: String,
    past_tolerance: Vec<String>,
}

/// `x86` and `arm` are the same JSON but for [`NOT_COMPARED`] fields and
/// numbers, whose differences are recorded in `seen`.
fn compare(x86: &Value, arm: &Value, at: &str, seen: &mut Difference) {
    match (x86, arm) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &serde_json::Map<String, Value>| {
                m.keys()
                    .filter(|k| !NOT_COMPARED.contains(&k.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(a), keys(b), "fields at {at}");
            for key in keys(a) {
                compare(&a[&key], &b[&key], &format!("{at}.{key}"), seen);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "lengths at {at}:\n{x86:#}\n{arm:#}");
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                compare(a, b, &format!("{at}[{i}]"), seen);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let scaled = (a - b).abs() / a.abs().max(b.abs()).max(1.0);
            seen.numbers += 1;
            if scaled > seen.largest {
                seen.largest = scaled;
                seen.at = at.to_string();
            }
            if scaled > TOLERANCE {
                seen.past_tolerance.push(format!(
                    "{at}: x86_64 {a}, arm64 {b} (scaled difference {scaled:.2e})"
                ));
            }
        }
        _ => assert_eq!(x86, arm, "at {at}"),
    }
}
