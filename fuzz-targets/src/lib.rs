//! The fuzz targets' bodies: each takes arbitrary bytes to the project's
//! real entry point for them, the way the functions call it, and returns
//! nothing. A typed error is a pass; a panic that escapes (the bins run
//! these under `afl::fuzz_nohook!`, which aborts on it) is a crash, while a
//! panic the project itself catches (its `catch_unwind` around the MP4
//! parser and OpenH264) is handled as in production. Each bin is one line
//! around one of these, so a crashing input replays without AFL too.
//!
//! This crate is a member of the main workspace (the AFL workspace in
//! `fuzz/` depends on it): `tests/corpus.rs` runs every target on its seed
//! corpus and on the inputs fuzzing found, in the gate.
//!
//! No bound is added here that the entry point does not have: the limits
//! are the functions' defaults.

use face_core::{DecodeLimits, decode_image};
use face_video::{FrameReader, ScanConfig, VideoIndex, VideoLimits};

/// Frames per chunk when planning: small, so a seed clip of a few frames
/// is cut into several chunks and every path between them is exercised.
const FRAMES_PER_CHUNK: u64 = 4;

/// The one key the authorizer's table knows in the `events` target (a
/// seed sends it), so the authorizer's found-key path is reached too.
pub const KNOWN_KEY: &str = "fk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// An uploaded image, as `FacePipeline::decode` (every function, the API,
/// `facectl`) decodes it: content sniffing, size and pixel limits, EXIF
/// orientation, RGB.
pub fn image_decode(data: &[u8]) {
    if let Ok(decoded) = decode_image(data, &DecodeLimits::default()) {
        let (width, height) = decoded.rgb.dimensions();
        assert!(width > 0 && height > 0, "decoded an empty image");
        assert!(
            u64::from(width) * u64::from(height) <= DecodeLimits::default().max_pixels,
            "decoded {width}x{height}, over the pixel limit"
        );
    }
}

/// A whole MP4 in memory, as `facectl scan-video` and the job planner read
/// it: the index, its summary and the chunk plan (every chunk's decode
/// span).
pub fn mp4_index(data: &[u8]) {
    let Ok(index) = VideoIndex::from_bytes(data, &VideoLimits::default()) else {
        return;
    };
    let info = index.info();
    assert_eq!(info.frames, index.frames());
    let _ = index.heap_bytes();
    if let Ok(chunks) = face_video::plan_chunks(&index, FRAMES_PER_CHUNK) {
        let frames: u64 = chunks.iter().map(|c| c.frames.len()).sum();
        assert_eq!(frames, index.frames(), "the plan covers every frame once");
    }
}

/// The frames of each chunk of an MP4, decoded from just the chunk's byte
/// span as the scan worker fetches it, with the worker's default sampling
/// (what `scan_chunk` runs before detection).
pub fn h264_chunk(data: &[u8]) {
    let Ok(index) = VideoIndex::from_bytes(data, &VideoLimits::default()) else {
        return;
    };
    let Ok(chunks) = face_video::plan_chunks(&index, FRAMES_PER_CHUNK) else {
        return;
    };
    let sampling = ScanConfig::default().sampling();
    for chunk in chunks {
        // A ranged GET past the object's end returns what there is.
        let len = data.len() as u64;
        let (start, end) = (
            chunk.span.bytes_start.min(len),
            chunk.span.bytes_end.min(len),
        );
        let bytes = &data[start as usize..end.max(start) as usize];
        let Ok(mut reader) = FrameReader::new(&index, bytes, start, chunk.frames, sampling) else {
            continue;
        };
        let mut previous = None;
        while let Ok(Some(frame)) = reader.next_frame() {
            assert!(
                chunk.frames.contains(frame.index),
                "a frame outside the chunk"
            );
            assert!(previous < Some(frame.index), "frames out of order");
            previous = Some(frame.index);
            if let Some(image) = &frame.image {
                assert_eq!(image.dimensions(), index.display_size());
            }
        }
    }
}

mod service;
pub use service::{events, mp4_sparse_header};
