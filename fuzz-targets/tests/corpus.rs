//! Every fuzz target run on its committed seed corpus (`fuzz/corpus/<target>/`)
//! and on the inputs fuzzing found (`video/tests/fuzz/`), without AFL: the
//! gate's brief run of each target. A target panicking on a file fails
//! with the file's name; `cargo xtask fuzz` is the long, mutating run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file of `fuzz/corpus/<name>/` and `extra`;
/// fails naming each file it panicked on.
fn replay(name: &str, extra: &[PathBuf], target: fn(&[u8])) {
    let corpus = files(&repository().join("fuzz/corpus").join(name));
    assert!(!corpus.is_empty(), "the {name} corpus is empty");
    let mut panicked = Vec::new();
    for file in corpus.iter().chain(extra) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "{name} panicked on {panicked:#?}");
}

/// The MP4s fuzzing found (each also has its own regression test in
/// `face-video`).
fn found_videos() -> Vec<PathBuf> {
    files(&repository().join("video/tests/fuzz"))
}

#[test]
fn image_decode_corpus() {
    replay("image-decode", &[], face_fuzz_targets::image_decode);
}

#[test]
fn mp4_index_corpus() {
    replay("mp4-index", &found_videos(), face_fuzz_targets::mp4_index);
}

#[test]
fn mp4_sparse_header_corpus() {
    replay(
        "mp4-sparse-header",
        &found_videos(),
        face_fuzz_targets::mp4_sparse_header,
    );
}

#[test]
fn h264_chunk_corpus() {
    replay("h264-chunk", &[], face_fuzz_targets::h264_chunk);
}

#[test]
fn events_corpus() {
    replay("events", &[], face_fuzz_targets::events);
}
