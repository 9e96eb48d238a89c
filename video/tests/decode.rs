//! Demux and decode of the shared videos: sizes, frame counts, timestamps,
//! presentation order, and typed errors on bad input.

use std::path::PathBuf;

use face_video::{
    EncodeSettings, FrameRange, FrameReader, Rotation, Sampling, VideoError, VideoIndex,
    VideoLimits, encode_images, plan_chunks, set_display_rotation,
};

fn video(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("FACE_DATA_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        PathBuf::from,
    );
    let path = dir.join("video").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set FACE_DATA_DIR)", path.display()))
}

/// Mean absolute difference of two RGB frames.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn street_clip_decodes_every_frame_in_presentation_order() {
    let bytes = video("facenet-pytorch_video.mp4");
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let info = index.info();
    assert_eq!((info.width, info.height, info.frames), (1920, 1080, 105));
    assert!((info.fps - 25.0).abs() < 0.01, "{info:?}");
    // video_segments.csv: frame 0 at 0.000 s, frame 104 at 4.160 s.
    assert!(index.pts_s(0).abs() < 1e-9);
    assert!(
        (index.pts_s(104) - 4.16).abs() < 1e-6,
        "{}",
        index.pts_s(104)
    );

    let all = FrameRange { start: 0, end: 105 };
    let mut reader = FrameReader::new(&index, &bytes, 0, all, Sampling::default()).expect("reader");
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        let img = f.image.expect("rgb asked for every frame");
        assert_eq!(img.dimensions(), (1920, 1080));
        frames.push((f.index, img.into_raw()));
    }
    let indices: Vec<u64> = frames.iter().map(|f| f.0).collect();
    assert_eq!(indices, (0..105).collect::<Vec<_>>());
    // In presentation order, neighbours are closer than frames two apart:
    // a B-frame put in decode order would break this.
    let mut out_of_order = 0;
    for w in frames.windows(3) {
        if mad(&w[0].1, &w[1].1) > mad(&w[0].1, &w[2].1) {
            out_of_order += 1;
        }
    }
    assert!(out_of_order <= 3, "{out_of_order} frames look out of order");
}

#[test]
fn a_middle_range_matches_the_same_frames_decoded_from_the_start() {
    let bytes = video("facenet-pytorch_video.mp4");
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let chunks = plan_chunks(&index, 30).expect("plan");
    assert!(chunks.len() >= 2, "{chunks:?}");
    let covered: u64 = chunks.iter().map(|c| c.frames.len()).sum();
    assert_eq!(covered, 105);
    for w in chunks.windows(2) {
        assert_eq!(w[0].frames.end, w[1].frames.start);
    }
    let c = chunks[1];
    // Only the chunk's bytes, as a worker fetching a byte range gets them.
    let span = &bytes[c.span.bytes_start as usize..c.span.bytes_end as usize];
    let target = c.frames.start + 2;
    let every = Sampling::default();
    let mut part =
        FrameReader::new(&index, span, c.span.bytes_start, c.frames, every).expect("reader");
    let mut from_span = None;
    while let Some(f) = part.next_frame().expect("decode") {
        if f.index == target {
            from_span = f.image.map(|i| i.into_raw());
        }
    }
    let all = FrameRange { start: 0, end: 105 };
    let mut whole = FrameReader::new(&index, &bytes, 0, all, every).expect("reader");
    let mut from_start = None;
    while let Some(f) = whole.next_frame().expect("decode") {
        if f.index == target {
            from_start = f.image.map(|i| i.into_raw());
        }
    }
    let (a, b) = (from_span.expect("frame"), from_start.expect("frame"));
    assert!(mad(&a, &b) < 0.5, "frame {target} differs: {}", mad(&a, &b));
}

#[test]
fn slideshow_has_ten_frames_per_second() {
    let bytes = video("slideshow_shared.mp4");
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let info = index.info();
    assert_eq!(
        (info.width, info.height, info.frames),
        (640, 360, 120),
        "{info:?}"
    );
    for f in [0u64, 10, 55, 119] {
        assert!((index.pts_s(f) - f as f64 / 10.0).abs() < 1e-6);
    }
    // What a cache weighs it by: at least each frame's sample (32 bytes)
    // and its two order entries, and not far more.
    let per_frame = std::mem::size_of::<face_video::Sample>() + 2 * 4;
    let bytes = index.heap_bytes();
    assert!(
        (120 * per_frame..2 * 120 * per_frame).contains(&bytes),
        "{bytes} bytes for 120 frames"
    );
}

/// Frames converted (index, changed) under a sampling.
fn sampled(name: &str, sampling: Sampling) -> Vec<(u64, bool)> {
    let bytes = video(name);
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let all = FrameRange {
        start: 0,
        end: index.frames(),
    };
    let mut reader = FrameReader::new(&index, &bytes, 0, all, sampling).expect("reader");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        if f.image.is_some() {
            out.push((f.index, f.changed));
        }
    }
    out
}

#[test]
fn sampling_converts_scheduled_frames_and_every_cut() {
    let sampling = Sampling {
        every_n_frames: 4,
        change_threshold: Some(0.08),
        skip_non_reference: false,
    };
    // Slides change every 10 frames: each change is caught on its first
    // frame, and the schedule restarts from there.
    let slides = sampled("slideshow_shared.mp4", sampling);
    let cuts: Vec<u64> = slides.iter().filter(|f| f.1).map(|f| f.0).collect();
    assert_eq!(
        cuts,
        (1..12).map(|s| s * 10).collect::<Vec<_>>(),
        "{slides:?}"
    );
    assert!(slides.contains(&(14, false)) && slides.contains(&(119, false)));
    // A continuous street shot never looks like a cut.
    let street = sampled("facenet-pytorch_video.mp4", sampling);
    assert!(street.iter().all(|f| !f.1), "{street:?}");
    let scheduled: Vec<u64> = street.iter().map(|f| f.0).collect();
    // Every 4th frame; the last one (104) is always converted.
    assert_eq!(scheduled, (0..105).step_by(4).collect::<Vec<u64>>());
}

#[test]
fn bad_input_gives_typed_errors() {
    let limits = VideoLimits::default();
    assert!(matches!(
        VideoIndex::from_bytes(b"\x89PNG\r\n\x1a\nnot a video at all", &limits),
        Err(VideoError::NotMp4(_))
    ));
    assert!(matches!(
        VideoIndex::from_bytes(&[], &limits),
        Err(VideoError::NotMp4(_))
    ));
    let bytes = video("slideshow_shared.mp4");
    let small = VideoLimits {
        max_pixels: 320 * 240,
        ..limits
    };
    assert!(matches!(
        VideoIndex::from_bytes(&bytes, &small),
        Err(VideoError::TooManyPixels { .. })
    ));
    let few = VideoLimits {
        max_frames: 50,
        ..limits
    };
    assert!(matches!(
        VideoIndex::from_bytes(&bytes, &few),
        Err(VideoError::TooManyFrames { .. })
    ));

    let index = VideoIndex::from_bytes(&bytes, &limits).expect("index");
    let all = FrameRange { start: 0, end: 120 };
    assert!(matches!(
        FrameReader::new(
            &index,
            &bytes,
            0,
            FrameRange {
                start: 100,
                end: 121
            },
            Sampling::default()
        ),
        Err(VideoError::FrameRange { .. })
    ));
    // Bytes cut short: the sample past the end is an error, not a panic.
    let cut = &bytes[..bytes.len() / 2];
    let mut reader = FrameReader::new(&index, cut, 0, all, Sampling::default()).expect("reader");
    let err = loop {
        match reader.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a truncated file decoded fully"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            VideoError::SampleOutOfRange { .. } | VideoError::CorruptSample { .. }
        ),
        "{err}"
    );
    // Garbage inside a sample: a corrupt-sample error or a concealed
    // picture, never a panic.
    let mut garbled = bytes.clone();
    let s = index.samples[3];
    for b in &mut garbled[s.offset as usize + 4..(s.offset + u64::from(s.size)) as usize] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let mut reader =
        FrameReader::new(&index, &garbled, 0, all, Sampling::default()).expect("reader");
    while let Ok(Some(_)) = reader.next_frame() {}
}

/// Every frame of an MP4 held in memory, decoded and converted.
fn decode_frames(bytes: &[u8]) -> (VideoIndex, Vec<image::RgbImage>) {
    let index = VideoIndex::from_bytes(bytes, &VideoLimits::default()).expect("index");
    let all = FrameRange {
        start: 0,
        end: index.frames(),
    };
    let mut reader = FrameReader::new(&index, bytes, 0, all, Sampling::default()).expect("reader");
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        frames.push(f.image.expect("rgb asked for every frame"));
    }
    (index, frames)
}

#[test]
fn a_rotated_phone_video_decodes_upright() {
    // Six slideshow frames stand in for what a camera saw, upright.
    let bytes = video("slideshow_shared.mp4");
    let (_, seen) = decode_frames(&bytes);
    let seen: Vec<image::RgbImage> = seen.into_iter().step_by(20).take(6).collect();
    let settings = EncodeSettings::default();
    let (_, upright) = decode_frames(&encode_images(seen.clone(), 10, &settings).unwrap());
    let (w, h) = upright[0].dimensions();
    for rotation in [
        Rotation::Clockwise90,
        Rotation::Half,
        Rotation::Clockwise270,
    ] {
        // A phone stores the sensor's picture, turned the other way, and
        // says in the header how to turn it back.
        let stored = seen.iter().map(|img| match rotation {
            Rotation::Clockwise90 => image::imageops::rotate270(img),
            Rotation::Half => image::imageops::rotate180(img),
            _ => image::imageops::rotate90(img),
        });
        let mut phone = encode_images(stored, 10, &settings).unwrap();
        set_display_rotation(&mut phone, rotation).unwrap();
        let (index, frames) = decode_frames(&phone);
        assert_eq!(index.rotation, rotation);
        let info = index.info();
        assert_eq!(
            (info.width, info.height, info.rotation_deg),
            (w, h, rotation.degrees())
        );
        assert_eq!(frames.len(), upright.len());
        for (i, (got, want)) in frames.iter().zip(&upright).enumerate() {
            assert_eq!(got.dimensions(), (w, h), "{rotation:?} frame {i}");
            let same = mad(got.as_raw(), want.as_raw());
            let flipped = mad(image::imageops::rotate180(got).as_raw(), want.as_raw());
            // Two encodes of one picture differ by a few levels; the same
            // picture upside down by tens.
            assert!(
                same < 4.0 && flipped > 4.0 * same,
                "{rotation:?} frame {i}: {same:.2} vs {flipped:.2} upside down"
            );
        }
    }
}

/// Each frame a reader puts out: its index and a hash of its RGB pixels,
/// `None` for a frame it did not convert; and how many samples it skipped.
fn frame_hashes(
    index: &VideoIndex,
    bytes: &[u8],
    range: FrameRange,
    sampling: Sampling,
) -> (Vec<(u64, Option<u64>)>, usize) {
    use std::hash::{Hash, Hasher};
    let mut reader = FrameReader::new(index, bytes, 0, range, sampling).expect("reader");
    let mut out = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        let hash = f.image.map(|img| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            img.as_raw().hash(&mut h);
            h.finish()
        });
        out.push((f.index, hash));
    }
    (out, reader.samples_skipped())
}

#[test]
fn frames_nothing_references_are_left_undecoded_and_the_others_decode_exactly() {
    let every = Sampling {
        every_n_frames: 1,
        change_threshold: None,
        skip_non_reference: false,
    };
    let skipping = Sampling {
        skip_non_reference: true,
        ..every
    };
    // (video, frames whose slices all have nal_ref_idc 0: counted with a
    // NAL parser outside this code)
    for (name, non_reference) in [
        ("facenet-pytorch_video.mp4", 52),
        ("slideshow_shared.mp4", 48),
    ] {
        let bytes = video(name);
        let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
        let whole = FrameRange {
            start: 0,
            end: index.frames(),
        };
        let (full, none_skipped) = frame_hashes(&index, &bytes, whole, every);
        assert_eq!(none_skipped, 0, "{name}");
        assert!(full.iter().all(|f| f.1.is_some()), "{name}");

        // Skipping: every frame still comes out once, in order; the first
        // and last are decoded; every decoded frame is bit-identical.
        for range in [whole, FrameRange { start: 37, end: 71 }] {
            let (lean, skipped) = frame_hashes(&index, &bytes, range, skipping);
            let indices: Vec<u64> = lean.iter().map(|f| f.0).collect();
            assert_eq!(
                indices,
                (range.start..range.end).collect::<Vec<_>>(),
                "{name}"
            );
            assert!(
                lean[0].1.is_some() && lean[lean.len() - 1].1.is_some(),
                "{name}"
            );
            for (frame, hash) in &lean {
                if hash.is_some() {
                    assert_eq!(*hash, full[*frame as usize].1, "{name} frame {frame}");
                }
            }
            let undecoded = lean.iter().filter(|f| f.1.is_none()).count();
            assert!(undecoded <= skipped, "{name}: {undecoded} > {skipped}");
            if range == whole {
                // All of them but the last frame, when it is one.
                assert!(
                    (non_reference - 1..=non_reference).contains(&skipped),
                    "{name}: {skipped} skipped of {non_reference}"
                );
            }
        }

        // Without skipping, a range that starts after its keyframe still
        // leaves undecoded the frames before it that nothing references.
        let middle = FrameRange { start: 37, end: 71 };
        let (frames, skipped) = frame_hashes(&index, &bytes, middle, every);
        assert!(skipped > 0, "{name}");
        for (frame, hash) in &frames {
            assert_eq!(*hash, full[*frame as usize].1, "{name} frame {frame}");
        }
    }
}
