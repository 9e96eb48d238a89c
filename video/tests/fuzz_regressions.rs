//! Inputs the fuzz targets (`fuzz/`, `cargo xtask fuzz`) found, each now
//! ending in a typed error, in bounded time.

use std::sync::mpsc;
use std::time::Duration;

use face_video::{VideoError, VideoIndex, VideoLimits};

/// The index of `bytes`, or a failure if it takes longer than a generous
/// bound (the parser looping forever was the bug).
fn index_within_10_s(bytes: Vec<u8>) -> Result<VideoIndex, VideoError> {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(VideoIndex::from_bytes(&bytes, &VideoLimits::default()));
    });
    result
        .recv_timeout(Duration::from_secs(10))
        .expect("the index never finished: the MP4 parser loops")
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn ftyp() -> Vec<u8> {
    mp4_box(b"ftyp", b"isom\0\0\x02\0isomavc1")
}

fn assert_refused_as_a_loop(bytes: Vec<u8>) {
    match index_within_10_s(bytes) {
        Err(VideoError::NotMp4(why)) => assert!(why.contains("over and over"), "{why}"),
        other => panic!("expected NotMp4, got {other:?}"),
    }
}

/// `mp4-index`, hang id:000000 (a 1.2 KB clip whose `trak` held a box with
/// size 0): mp4 0.14 seeks back to such a box's start and reads its header
/// again, forever. The same bytes reached the scan worker's header read.
#[test]
fn a_box_of_size_0_inside_a_container_is_refused_not_looped_on() {
    let zero_sized = [0, 0, 0, 0, b'f', b'r', b'e', b'e'];
    let trak = mp4_box(b"trak", &zero_sized);
    let mut mp4 = ftyp();
    mp4.extend(mp4_box(b"moov", &trak));
    assert_refused_as_a_loop(mp4);

    // Deeper, after a well-formed sibling: still the loop, still refused.
    let mdia = mp4_box(
        b"mdia",
        &[mp4_box(b"free", b"1234"), zero_sized.to_vec()].concat(),
    );
    let mut mp4 = ftyp();
    mp4.extend(mp4_box(b"moov", &mp4_box(b"trak", &mdia)));
    assert_refused_as_a_loop(mp4);
}

/// The same loop through a 64-bit size of 0 (`size == 1`, then
/// `largesize == 0`), which the parser also reads as 0.
#[test]
fn a_64_bit_size_of_0_inside_a_container_is_refused_not_looped_on() {
    let mut large_zero = vec![0, 0, 0, 1];
    large_zero.extend_from_slice(b"skip");
    large_zero.extend_from_slice(&0u64.to_be_bytes());
    let mut mp4 = ftyp();
    mp4.extend(mp4_box(b"moov", &mp4_box(b"trak", &large_zero)));
    assert_refused_as_a_loop(mp4);
}

/// The big-endian u32 at `at` bytes into the body of the first `kind` box.
fn patch_u32(mp4: &mut [u8], kind: &[u8; 4], at: usize, value: u32) {
    let name = mp4
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind)));
    let field = name + 4 + at;
    mp4[field..field + 4].copy_from_slice(&value.to_be_bytes());
}

/// `mp4-index`, hang id:000000 of the second run (676 bytes, kept in
/// `tests/fuzz/`): a table of 65,793 samples of one size whose last
/// keyframe is sample 5. Every chunk of the plan decodes from there, and
/// each chunk's span was found by walking back to that keyframe and over
/// every sample since: planning took time quadratic in the frames (40 s
/// for this file at 4 frames a chunk, hours at the 4M-frame limit). Here
/// the same table claims a million samples: the plan must still be quick.
#[test]
fn planning_a_one_keyframe_video_is_linear_in_its_frames() {
    let mut mp4 = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/one-gop-plan.bin"),
    )
    .expect("the fuzz input");
    const FRAMES: u32 = 1_000_000;
    patch_u32(&mut mp4, b"stsz", 8, FRAMES); // sample_count
    patch_u32(&mut mp4, b"stsc", 12, FRAMES); // samples_per_chunk
    let index = index_within_10_s(mp4).expect("a valid (if absurd) index");
    assert_eq!(index.frames(), u64::from(FRAMES));
    assert_eq!(index.info().keyframes, 3);

    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(face_video::plan_chunks(&index, 4).map(|chunks| (index, chunks)));
    });
    let (index, chunks) = result
        .recv_timeout(Duration::from_secs(30))
        .expect("planning a one-keyframe video took more than 30 s")
        .expect("a plan");
    let frames: u64 = chunks.iter().map(|c| c.frames.len()).sum();
    assert_eq!(frames, index.frames());
    let last = chunks.last().expect("chunks");
    assert_eq!(last.span.samples_start, 4, "decoded from the last keyframe");
    assert_eq!(last.span.samples_end, FRAMES);
    let (first, end) = (&index.samples[4], &index.samples[FRAMES as usize - 1]);
    assert_eq!(last.span.bytes_start, first.offset);
    assert_eq!(last.span.bytes_end, end.offset + u64::from(end.size));
}
