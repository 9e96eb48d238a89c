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

/// A review, not the fuzzer: with the same loop after a large `mdat` (the
/// usual layout, `moov` last), the budget of bytes read again grew with the
/// offset of the furthest read, the file's size (164 s on a 1 GB file).
/// It now follows the bytes of the header read for the first time.
#[test]
fn the_loop_after_a_large_mdat_is_refused_after_work_bounded_by_the_header() {
    let mut mp4 = ftyp();
    mp4.extend(mp4_box(b"mdat", &vec![0; 8 << 20]));
    let zero_sized = [0, 0, 0, 0, b'f', b'r', b'e', b'e'];
    mp4.extend(mp4_box(b"moov", &mp4_box(b"trak", &zero_sized)));
    match index_within_10_s(mp4) {
        Err(VideoError::NotMp4(why)) => {
            let reread: u64 = why
                .rsplit("stopped after ")
                .next()
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in {why:?}"));
            assert!(reread < 1 << 20, "{reread} bytes read again: {why}");
        }
        other => panic!("expected NotMp4, got {other:?}"),
    }
}

/// A review, not the fuzzer: mp4 0.14 reads each child of a `meta` box it
/// does not model (handler other than `mdir`) into a buffer of the child's
/// declared size, unchecked against the `meta` box's: a child declaring
/// 2^48 bytes aborted the process on the failed allocation (no
/// `catch_unwind` stops an abort). Every box of the header must now end
/// within the file, and those outside the sample tables be at most 16 MiB.
#[test]
fn a_header_box_larger_than_its_parent_or_the_limit_is_refused_before_parsing() {
    let hdlr = mp4_box(b"hdlr", &[&[0u8; 8][..], b"xxxx", &[0; 13]].concat());
    let huge_child = [&[0, 0, 0, 1][..], b"blob", &(1u64 << 48).to_be_bytes()].concat();
    for version in [&[0u8; 4][..], &[]] {
        // ISO's meta (version and flags first) and QuickTime's (hdlr first).
        let meta = mp4_box(b"meta", &[version, &hdlr, &huge_child].concat());
        let mut mp4 = ftyp();
        mp4.extend(mp4_box(b"moov", &mp4_box(b"udta", &meta)));
        match index_within_10_s(mp4) {
            Err(VideoError::NotMp4(why)) => assert!(why.contains("'blob' box"), "{why}"),
            other => panic!("expected NotMp4, got {other:?}"),
        }
    }
    // Within the file, but a 17 MiB box of user data.
    let mut mp4 = ftyp();
    mp4.extend(mp4_box(
        b"moov",
        &mp4_box(b"udta", &mp4_box(b"blob", &vec![0; 17 << 20])),
    ));
    match index_within_10_s(mp4) {
        Err(VideoError::NotMp4(why)) => assert!(why.contains("over the limit"), "{why}"),
        other => panic!("expected NotMp4, got {other:?}"),
    }
}

/// A review, not the fuzzer: a track whose `stsd` is shorter than its
/// version, flags and entry count made the codec lookup subtract past zero
/// (a panic where overflow is checked, as in the fuzz builds). The real
/// slideshow with its `stsd` cut to its version and flags, then an empty
/// box: the crate finds no `avc1` in it, and the file is refused as a codec
/// that cannot be named, without a panic.
#[test]
fn a_short_sample_description_names_no_codec_and_does_not_panic() {
    let mut mp4 = slideshow();
    let stsd = mp4
        .windows(4)
        .position(|w| w == b"stsd")
        .expect("the slideshow has an stsd")
        - 4;
    let size = u32::from_be_bytes(mp4[stsd..stsd + 4].try_into().unwrap()) as usize;
    let mut short = mp4_box(b"stsd", &[0; 4]);
    short.extend_from_slice(&16u32.to_be_bytes());
    short.extend_from_slice(&[0; 12]);
    // The boxes around it shrink by as much.
    for parent in [b"moov", b"trak", b"mdia", b"minf", b"stbl"] {
        let at = mp4[..stsd]
            .windows(4)
            .rposition(|w| w == parent)
            .expect("the stsd's parents")
            - 4;
        let parent_size = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap());
        let shrunk = parent_size - (size - short.len()) as u32;
        mp4[at..at + 4].copy_from_slice(&shrunk.to_be_bytes());
    }
    mp4.splice(stsd..stsd + size, short);
    match index_within_10_s(mp4) {
        Err(VideoError::UnsupportedCodec(codec)) => assert_eq!(codec, "this video codec"),
        other => panic!("expected UnsupportedCodec, got {other:?}"),
    }
}

fn slideshow() -> Vec<u8> {
    let data = std::env::var_os("FACE_DATA_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        std::path::PathBuf::from,
    );
    std::fs::read(data.join("video/slideshow_shared.mp4")).expect("the shared slideshow")
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
