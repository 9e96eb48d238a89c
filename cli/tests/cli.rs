//! The facectl commands end to end on real photos: detect, annotate,
//! enroll, people, recognize, forget, and bad input handling.

mod common;

use common::{facectl, json, photo, stderr, stdout};

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The names of the faces of one image result that matched someone.
fn identified(image: &serde_json::Value) -> Vec<&str> {
    image["faces"]
        .as_array()
        .expect("faces")
        .iter()
        .filter_map(|f| f["match"]["identity"]["person"].as_str())
        .collect()
}

#[test]
fn detect_reports_faces_and_annotates() {
    let store = tempfile::tempdir().expect("tempdir");
    let group = photo("detection/insightface_t1.jpg");
    let out_png = store.path().join("annotated.png");
    let out = facectl(
        store.path(),
        &["detect", s(&group), "--json", "--annotate", s(&out_png)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let faces = v[0]["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 6);
    for f in faces {
        let b = &f["bounding_box"];
        for k in ["Left", "Top", "Width", "Height"] {
            let x = b[k].as_f64().expect("ratio");
            assert!((0.0..=1.0).contains(&x), "{k} = {x}");
        }
        assert_eq!(f["landmarks"].as_array().map(Vec::len), Some(5));
        assert!(f["confidence"].as_f64().expect("confidence") >= 0.7);
    }
    let annotated = image::open(&out_png).expect("annotated png");
    assert_eq!(
        (annotated.width(), annotated.height()),
        (
            v[0]["width"].as_u64().expect("w") as u32,
            v[0]["height"].as_u64().expect("h") as u32
        )
    );
}

#[test]
fn bad_inputs_fail_one_line_each_and_the_batch_goes_on() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = store.path();
    let truncated = dir.join("truncated.jpg");
    let jpeg = std::fs::read(photo("recognition/matt_damon/deepface_img29.jpg")).expect("read");
    std::fs::write(&truncated, &jpeg[..jpeg.len() / 3]).expect("write");
    let text = dir.join("notes.png");
    std::fs::write(&text, "just some text").expect("write");
    let missing = dir.join("missing.jpg");
    let video = photo("video/slideshow_shared.mp4");
    let good = photo("recognition/matt_damon/deepface_img30.jpg");

    let out = facectl(
        dir,
        &[
            "detect",
            s(&truncated),
            s(&text),
            s(&missing),
            s(&video),
            s(&good),
        ],
    );
    assert!(
        !out.status.success(),
        "a failed file must make the exit code non-zero"
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "one line per bad file:\n{err}");
    assert!(
        lines[0].contains("truncated.jpg") && lines[0].contains("corrupt or truncated"),
        "{err}"
    );
    assert!(
        lines[1].contains("notes.png") && lines[1].contains("unsupported format"),
        "{err}"
    );
    assert!(
        lines[2].contains("missing.jpg") && lines[2].contains("cannot read"),
        "{err}"
    );
    assert!(
        lines[3].contains("slideshow_shared.mp4") && lines[3].contains("video"),
        "{err}"
    );
    let printed = stdout(&out);
    assert!(
        printed.contains("deepface_img30.jpg: 1 face(s)"),
        "good image still processed: {printed}"
    );
}

#[test]
fn enroll_recognize_forget_round_trip() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = store.path();
    let enroll = |person: &str, photos: &[&str], extra: &[&str]| {
        let paths: Vec<String> = photos
            .iter()
            .map(|p| photo(p).display().to_string())
            .collect();
        let mut args = vec![
            "enroll",
            "--collection",
            "friends",
            "--person",
            person,
            "--json",
        ];
        args.extend_from_slice(extra);
        args.extend(paths.iter().map(String::as_str));
        facectl(dir, &args)
    };
    let out = enroll(
        "matt_damon",
        &[
            "recognition/matt_damon/deepface_img29.jpg",
            "recognition/matt_damon/deepface_img30.jpg",
        ],
        &["--attr", "major=acting", "--attr", "year=1970"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert!(
        v.as_array()
            .expect("list")
            .iter()
            .all(|r| r["status"] == "indexed"),
        "{v:#}"
    );

    // A face-free photo is refused with a reason, and nothing else is lost.
    let out = enroll(
        "jennifer_aniston",
        &[
            "recognition/jennifer_aniston/deepface_img3.jpg",
            "detection/skimage_brick.png",
            "recognition/jennifer_aniston/deepface_img12.jpg",
            "recognition/jennifer_aniston/deepface_img53.jpg",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    let statuses: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        vec!["indexed", "unindexed", "indexed", "indexed"],
        "{v:#}"
    );
    assert_eq!(v[1]["reason"], "NO_FACE");

    let out = facectl(dir, &["people", "--collection", "friends", "--json"]);
    let people = json(&out);
    assert_eq!(people.as_array().map(Vec::len), Some(2));
    assert_eq!(people[1]["person"], "matt_damon");
    assert_eq!(people[1]["faces"], 2);
    assert_eq!(people[1]["attributes"]["major"], "acting");

    let recognize = |p: &str| {
        let out = facectl(
            dir,
            &[
                "recognize",
                "--collection",
                "friends",
                "--json",
                s(&photo(p)),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)
    };
    let matt = recognize("recognition/matt_damon/deepface_img31.jpg");
    assert_eq!(
        matt[0]["faces"][0]["match"]["identity"]["person"], "matt_damon",
        "{matt:#}"
    );
    let sim = matt[0]["faces"][0]["match"]["identity"]["similarity"]
        .as_f64()
        .expect("similarity");
    assert!((50.0..=100.0).contains(&sim));
    let stranger = recognize("recognition/kate_siegel/facenet-pytorch_kate_siegel_1.jpg");
    assert!(
        stranger[0]["faces"][0]["match"]["identity"].is_null(),
        "{stranger:#}"
    );
    // Both group photos show Jennifer Aniston among strangers.
    for group_photo in [
        "detection/facenet-pytorch_multiface.jpg",
        "detection/insightface_t1.jpg",
    ] {
        let group = recognize(group_photo);
        assert_eq!(identified(&group[0]), vec!["jennifer_aniston"], "{group:#}");
    }

    let forget_matt = |extra: &[&str]| {
        let mut args = vec![
            "forget",
            "--collection",
            "friends",
            "--person",
            "matt_damon",
        ];
        args.extend_from_slice(extra);
        facectl(dir, &args)
    };
    let out = forget_matt(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The API's answer to the same DELETE.
    assert_eq!(
        json(&out),
        serde_json::json!({ "collection": "friends", "person": "matt_damon", "removed_faces": 2 })
    );
    let after = recognize("recognition/matt_damon/deepface_img31.jpg");
    assert!(
        after[0]["faces"][0]["match"]["identity"].is_null(),
        "{after:#}"
    );
    let out = forget_matt(&[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no person named"), "{}", stderr(&out));
}

/// facectl as installed: no `--models`, no `$FACECTL_MODELS` or
/// `$FACECTL_STORE`, its data folder in `data_home` (`$XDG_DATA_HOME`).
fn installed_facectl(
    data_home: &std::path::Path,
    env: &[(&str, &std::path::Path)],
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_facectl"))
        .env_remove("FACECTL_MODELS")
        .env_remove("FACECTL_STORE")
        .env("XDG_DATA_HOME", data_home)
        .env("HOME", data_home.join("home"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("facectl runs")
}

#[cfg(unix)]
#[test]
fn an_installed_facectl_finds_its_models_in_the_xdg_data_folder() {
    use facectl::models::{DEFAULT_DETECTOR, RECOGNIZER};
    let data_home = tempfile::tempdir().expect("tempdir");
    let models = data_home.path().join("facectl/models");
    std::fs::create_dir_all(&models).expect("mkdir");
    // The detector under a name no checkout's blobs/ has: only this folder
    // can be where it was found.
    let fetched = common::models_dir();
    std::os::unix::fs::symlink(
        fetched.join(DEFAULT_DETECTOR),
        models.join("installed_yunet.onnx"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(fetched.join(RECOGNIZER), models.join(RECOGNIZER)).expect("symlink");
    let matt = photo("recognition/matt_damon/deepface_img30.jpg");
    let out = installed_facectl(
        data_home.path(),
        &[],
        &[
            "--detector",
            "installed_yunet.onnx",
            "detect",
            "--json",
            s(&matt),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)[0]["faces"].as_array().map(Vec::len), Some(1));
}

#[test]
fn without_models_the_error_names_every_place_looked_at() {
    let data_home = tempfile::tempdir().expect("tempdir");
    let matt = photo("recognition/matt_damon/deepface_img30.jpg");
    let args = ["--detector", "no_such_yunet.onnx", "detect", s(&matt)];
    let out = installed_facectl(data_home.path(), &[], &args);
    assert!(!out.status.success());
    let err = stderr(&out);
    let data = data_home.path().join("facectl/models");
    for place in [
        "--models / $FACECTL_MODELS: not set".to_string(),
        format!("{} ($XDG_DATA_HOME", data.display()),
        "blobs (blobs/ of the checkout facectl was built from)".to_string(),
    ] {
        assert!(err.contains(&place), "{place:?} not in:\n{err}");
    }
    // `$FACECTL_MODELS` is the flag's: that folder alone is used.
    let out = installed_facectl(
        data_home.path(),
        &[("FACECTL_MODELS", data_home.path())],
        &args,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "model file {} not found",
            data_home.path().join("no_such_yunet.onnx").display()
        )),
        "{err}"
    );
}

#[cfg(feature = "cloud")]
#[test]
fn with_cloud_the_stack_commands_are_offered() {
    let out = installed_facectl(std::path::Path::new("/nonexistent"), &[], &["--help"]);
    let help = stdout(&out);
    for command in ["scan-status", "results"] {
        assert!(help.contains(command), "{command} not in:\n{help}");
    }
}

#[cfg(not(feature = "cloud"))]
#[test]
fn without_cloud_the_stack_commands_are_not_offered_and_their_flags_refused() {
    let nowhere = std::path::Path::new("/nonexistent");
    let out = installed_facectl(nowhere, &[], &["--help"]);
    let help = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    for command in ["scan-status", "results"] {
        assert!(!help.contains(command), "{command} in:\n{help}");
    }
    let out = installed_facectl(nowhere, &[], &["results", "--stack", "local"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unrecognized subcommand"),
        "{}",
        stderr(&out)
    );
    let out = installed_facectl(nowhere, &[], &["detect", "--help"]);
    assert!(
        !stdout(&out).contains("--endpoint"),
        "hidden: {}",
        stdout(&out)
    );
    for args in [
        &["detect", "--stack", "dev", "a.jpg"][..],
        &["compare", "--endpoint", "https://x/live", "a.jpg", "b.jpg"],
        &["scan-video", "v.mp4", "--collection", "c", "--stack", "dev"],
    ] {
        let out = installed_facectl(nowhere, &[], args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("built without the `cloud` feature")
                && err.contains("cargo install --path cli --features cloud"),
            "{args:?}: {err}"
        );
    }
}

/// A `facectl` process, not yet waited for, with the test models and store.
fn spawn_facectl(store: &std::path::Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_facectl"))
        .arg("--models")
        .arg(common::models_dir())
        .arg("--store")
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("facectl starts")
}

/// `enroll` arguments: `person`'s photos into collection `team`.
fn enroll_args(person: &str, folder: &str) -> Vec<String> {
    let mut args: Vec<String> = ["enroll", "--collection", "team", "--person", person]
        .map(String::from)
        .into();
    let mut photos: Vec<String> = std::fs::read_dir(photo(&format!("recognition/{folder}")))
        .expect("photos")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    photos.sort();
    args.extend(photos);
    args
}

fn people_of(store: &std::path::Path) -> Vec<String> {
    let out = facectl(store, &["people", "--collection", "team", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)
        .as_array()
        .expect("people")
        .iter()
        .map(|p| p["person"].as_str().expect("name").to_string())
        .collect()
}

/// Two enrolls into one collection at once: each loads the collection
/// before its photos and saves after them, so without the collection's lock
/// and the reload under it the later save dropped the other's person.
#[test]
fn concurrent_enrolls_into_one_collection_keep_both_people() {
    let store = tempfile::tempdir().expect("tempdir");
    let george = enroll_args("george", "george_clooney");
    let jen = enroll_args("jen", "jennifer_aniston");
    let a = spawn_facectl(
        store.path(),
        &george.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b = spawn_facectl(
        store.path(),
        &jen.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for child in [a, b] {
        let out = child.wait_with_output().expect("enroll ends");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(people_of(store.path()), ["george", "jen"]);
}

/// `forget` while an enroll processes its photos: the enroll's save must
/// not bring the forgotten person back. The enroll's debug line says when
/// it has read the collection and started on the photos; forget runs then,
/// and must not wait for the enroll (the lock is not held meanwhile).
#[test]
fn forget_during_an_enroll_is_not_undone_by_its_save() {
    use std::io::BufRead;

    let store = tempfile::tempdir().expect("tempdir");
    let elon = enroll_args("elon", "elon_musk");
    let out = facectl(
        store.path(),
        &elon.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let jen = enroll_args("jen", "jennifer_aniston");
    let mut enroll = std::process::Command::new(env!("CARGO_BIN_EXE_facectl"))
        .env("RUST_LOG", "facectl=debug")
        .arg("--models")
        .arg(common::models_dir())
        .arg("--store")
        .arg(store.path())
        .args(&jen)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("enroll starts");
    let mut lines = std::io::BufReader::new(enroll.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("enroll ended before its photos: {seen:#?}"))
            .expect("stderr line");
        let started = line.contains("indexing photos");
        seen.push(line);
        if started {
            break;
        }
    }
    let out = facectl(
        store.path(),
        &["forget", "--collection", "team", "--person", "elon"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("forgot elon"), "{}", stdout(&out));
    // The rest of stderr, so the enroll never blocks on a full pipe.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = enroll.wait().expect("enroll ends");
    assert!(status.success(), "{seen:#?}\n{rest:#?}");
    assert_eq!(people_of(store.path()), ["jen"]);
}

/// `facectl detect ... | head -1`: the reader goes away; facectl stops
/// quietly with 141 (128 + SIGPIPE), no panic and no message. The pipe's
/// read end is closed before facectl starts, so every write fails.
#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let store = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facectl"))
        .arg("--models")
        .arg(common::models_dir())
        .arg("--store")
        .arg(store.path())
        .arg("detect")
        .arg(photo("recognition/matt_damon/deepface_img30.jpg"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("facectl runs");
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

/// Files that are not photos of a sane size are refused before they are
/// read: a 1 GiB sparse file (once read whole into memory), a FIFO (once
/// blocked on forever); the batch goes on.
#[test]
fn huge_files_and_fifos_are_refused_unread() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = store.path();
    let sparse = dir.join("sparse.jpg");
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    let fifo = dir.join("fifo.jpg");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let good = photo("recognition/matt_damon/deepface_img30.jpg");
    let out = facectl(dir, &["detect", s(&sparse), s(&fifo), s(&good)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("sparse.jpg") && lines[0].contains("over the limit"),
        "{err}"
    );
    assert!(
        lines[1].contains("fifo.jpg") && lines[1].contains("not a regular file"),
        "{err}"
    );
    assert!(stdout(&out).contains("deepface_img30.jpg: 1 face(s)"));

    // compare names the photo it could not read or decode.
    let text = dir.join("notes.jpg");
    std::fs::write(&text, "just some text").expect("write");
    for (a, b, bad) in [(&sparse, &good, "sparse.jpg"), (&good, &text, "notes.jpg")] {
        let out = facectl(dir, &["compare", s(a), s(b)]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(bad), "{}", stderr(&out));
    }
}

/// Flags that would overflow or make no sense are refused by the command
/// line, before any work.
#[test]
fn out_of_range_flags_are_refused() {
    let store = tempfile::tempdir().expect("tempdir");
    let video = photo("video/slideshow_shared.mp4");
    for (flag, value) in [
        ("--max-gap-s", "NaN"),
        ("--max-gap-s", "-1"),
        ("--max-gap-s", "inf"),
        ("--frames-per-chunk", "0"),
        ("--frames-per-chunk", "18446744073709551615"),
        ("--lambda-frames-per-chunk", "0"),
        ("--threads", "0"),
        ("--threads", "4611686018427387904"),
    ] {
        let flag_value = format!("{flag}={value}");
        let out = facectl(
            store.path(),
            &["scan-video", s(&video), "--collection", "team", &flag_value],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(flag),
            "{flag} {value}: {}",
            stderr(&out)
        );
    }
}
