//! Montages of the shared slideshow, with the people of its labels file
//! standing in for the scan's matches: the frames kept, their order and
//! captions, per-chunk segments and their concatenation, short clips, and
//! what concatenation refuses.

use std::path::{Path, PathBuf};

use face_core::PixelBox;
use face_video::{
    EncodeSettings, FaceInFrame, FrameMatches, FrameRange, FrameReader, MontageConfig, Sampling,
    VideoError, VideoIndex, VideoLimits, concat_montage, encode_clip, montage_chunk, plan_chunks,
};

fn data_dir() -> PathBuf {
    devset::data_dir(None, &Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

struct Slideshow {
    bytes: Vec<u8>,
    index: VideoIndex,
    /// Per frame, as a scan would report it: one face per labelled person.
    matches: Vec<FrameMatches>,
}

/// The box the stand-in matches give person `i` of a slide.
fn face_box(i: usize) -> PixelBox {
    PixelBox {
        x: 40.0 + 150.0 * i as f32,
        y: 60.0,
        width: 100.0,
        height: 120.0,
    }
}

fn slideshow() -> Slideshow {
    let data = data_dir();
    let slides = devset::slideshow_labels(&data).expect("labels");
    let path = data.join(&slides[0].video);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set FACE_DATA_DIR)", path.display()));
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let matches = (0..index.frames())
        .map(|frame| {
            let pts_s = index.pts_s(frame);
            let faces = slides
                .iter()
                .filter(|s| s.start_s <= pts_s && pts_s < s.end_s)
                .flat_map(|s| s.people())
                .enumerate()
                .map(|(i, person)| FaceInFrame {
                    track: None,
                    bbox: face_box(i),
                    confidence: 0.9,
                    person: Some(person.to_string()),
                    distance: Some(0.4),
                    unknown_reason: None,
                    recognized: true,
                    detected: true,
                })
                .collect();
            FrameMatches {
                frame,
                pts_s,
                faces,
            }
        })
        .collect();
    Slideshow {
        bytes,
        index,
        matches,
    }
}

impl Slideshow {
    fn chunk_matches(&self, frames: FrameRange) -> &[FrameMatches] {
        &self.matches[frames.start as usize..frames.end as usize]
    }

    /// The frames a montage of `frames` should hold, worked out directly:
    /// every frame within `pad_s` of a frame showing a wanted person, in
    /// the chunk.
    fn expected(&self, frames: FrameRange, person: Option<&str>, pad_s: f64) -> Vec<u64> {
        let shows = |m: &FrameMatches| {
            m.faces.iter().any(|f| match (&f.person, person) {
                (Some(p), Some(q)) => p == q,
                (Some(_), None) => true,
                (None, _) => false,
            })
        };
        let hits: Vec<f64> = self
            .chunk_matches(frames)
            .iter()
            .filter(|m| shows(m))
            .map(|m| self.index.pts_s(m.frame))
            .collect();
        (frames.start..frames.end)
            .filter(|&f| {
                let t = self.index.pts_s(f);
                hits.iter().any(|h| (h - t).abs() <= pad_s + 1e-6)
            })
            .collect()
    }

    fn source_frames(&self) -> Vec<Vec<u8>> {
        let all = FrameRange {
            start: 0,
            end: self.index.frames(),
        };
        decode_all(&self.bytes, Some(all)).1
    }
}

/// Decodes every frame of an MP4 with our own demuxer and decoder: its
/// index and the frames' RGB.
fn decode_all(bytes: &[u8], range: Option<FrameRange>) -> (VideoIndex, Vec<Vec<u8>>) {
    let index = VideoIndex::from_bytes(bytes, &VideoLimits::default()).expect("montage index");
    let range = range.unwrap_or(FrameRange {
        start: 0,
        end: index.frames(),
    });
    let mut reader =
        FrameReader::new(&index, bytes, 0, range, Sampling::default()).expect("reader");
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().expect("decode") {
        assert_eq!(f.index, frames.len() as u64 + range.start);
        frames.push(f.image.expect("every frame converted").into_raw());
    }
    (index, frames)
}

/// Mean absolute difference over the rows `rows` of two 640-wide RGB frames.
fn mad_rows(a: &[u8], b: &[u8], rows: std::ops::Range<usize>) -> f64 {
    let line = 640 * 3;
    let (a, b) = (
        &a[rows.start * line..rows.end * line],
        &b[rows.start * line..rows.end * line],
    );
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn chunk_segments_hold_the_padded_moments_in_order_and_concatenate() {
    let show = slideshow();
    let info = show.index.info();
    let chunks = plan_chunks(&show.index, info.frames / 3).expect("plan");
    assert!(chunks.len() >= 2, "{chunks:?}");
    // Less padding than the default, so that the face-free slides leave
    // gaps (with a second, every frame of the slideshow is kept).
    let config = MontageConfig {
        pad_s: 0.3,
        ..MontageConfig::default()
    };
    let source = show.source_frames();

    let mut segments = Vec::new();
    let mut expected_all = Vec::new();
    for c in &chunks {
        let span = &show.bytes[c.span.bytes_start as usize..c.span.bytes_end as usize];
        let t = std::time::Instant::now();
        let segment = montage_chunk(
            &show.index,
            span,
            c.span.bytes_start,
            c.frames,
            show.chunk_matches(c.frames),
            &config,
        )
        .expect("montage");
        let expected = show.expected(c.frames, None, config.pad_s);
        eprintln!(
            "chunk {} ({:?}): {} frames kept, {:?} bytes, {:.0} ms",
            c.chunk,
            c.frames,
            expected.len(),
            segment.as_ref().map(Vec::len),
            t.elapsed().as_secs_f64() * 1000.0
        );
        let Some(segment) = segment else {
            assert!(expected.is_empty(), "chunk {} kept nothing", c.chunk);
            continue;
        };
        let (index, frames) = decode_all(&segment, None);
        assert_eq!(frames.len(), expected.len(), "chunk {}", c.chunk);
        assert_eq!((index.width, index.height), (info.width, info.height));
        assert!(index.samples[0].keyframe);
        // The source's frame rate: frame k of the segment at k / fps.
        for k in 0..index.frames() {
            assert!(
                (index.pts_s(k) - k as f64 / info.fps).abs() < 1e-3,
                "frame {k} at {} s",
                index.pts_s(k)
            );
        }
        // Each montage frame is its source frame (slides change every
        // second, so a frame out of order would show another picture)
        // below the captions, and differs where they are burned in.
        for (k, &f) in expected.iter().enumerate() {
            let src = &source[f as usize];
            let below = mad_rows(&frames[k], src, 200..360);
            assert!(below < 6.0, "montage frame {k} (frame {f}): {below}");
            let banner = mad_rows(&frames[k], src, 4..20);
            assert!(banner > 10.0, "no caption on frame {f}: {banner}");
        }
        expected_all.extend(expected);
        segments.push(segment);
    }
    assert!(segments.len() >= 2, "people appear in at least two chunks");
    assert!(
        (expected_all.len() as u64) < info.frames,
        "some frames are left out"
    );
    let parts: Vec<&[u8]> = segments.iter().map(Vec::as_slice).collect();
    let t = std::time::Instant::now();
    let whole = concat_montage(&parts).expect("concat");
    let (index, frames) = decode_all(&whole, None);
    eprintln!(
        "montage: {} frames, {} bytes (segments {:?}), concat {:.1} ms",
        frames.len(),
        whole.len(),
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(frames.len(), expected_all.len());
    // Two chunks' segments: the sum of their frames.
    let two = concat_montage(&parts[..2]).expect("concat two");
    let frames_of = |b: &[u8]| decode_all(b, None).1.len();
    assert_eq!(frames_of(&two), frames_of(parts[0]) + frames_of(parts[1]));
    for (k, &f) in expected_all.iter().enumerate() {
        let below = mad_rows(&frames[k], &source[f as usize], 200..360);
        assert!(below < 6.0, "concatenated frame {k} (frame {f}): {below}");
    }
    // Keyframes: the start of every segment at least.
    assert!(index.samples.iter().filter(|s| s.keyframe).count() >= segments.len());
}

#[test]
fn one_person_s_montage_keeps_only_their_moments() {
    let show = slideshow();
    let all = FrameRange {
        start: 0,
        end: show.index.frames(),
    };
    // The first person the labels name.
    let person = show
        .matches
        .iter()
        .find_map(|m| m.faces.first())
        .and_then(|f| f.person.clone())
        .expect("someone in the labels");
    let config = MontageConfig {
        person: Some(person.clone()),
        pad_s: 0.5,
        ..MontageConfig::default()
    };
    let segment = montage_chunk(&show.index, &show.bytes, 0, all, &show.matches, &config)
        .expect("montage")
        .expect("the person appears");
    let expected = show.expected(all, Some(&person), 0.5);
    let everyone = show.expected(all, None, 0.5);
    assert!(
        expected.len() < everyone.len(),
        "{person} is not on every slide"
    );
    let (_, frames) = decode_all(&segment, None);
    assert_eq!(frames.len(), expected.len());

    // Someone not in the video: no montage.
    let nobody = MontageConfig {
        person: Some("nobody-of-that-name".into()),
        ..MontageConfig::default()
    };
    assert_eq!(
        montage_chunk(&show.index, &show.bytes, 0, all, &show.matches, &nobody),
        Ok(None)
    );
}

#[test]
fn a_one_second_clip_has_a_second_of_frames() {
    let show = slideshow();
    let fps = show.index.info().fps;
    let n = fps.round() as u64;
    let frames = FrameRange {
        start: 25,
        end: 25 + n,
    };
    let clip = encode_clip(
        &show.index,
        &show.bytes,
        0,
        frames,
        &EncodeSettings::default(),
    )
    .expect("clip");
    let (index, decoded) = decode_all(&clip, None);
    eprintln!("1 s clip: {} frames, {} bytes", decoded.len(), clip.len());
    assert_eq!(decoded.len() as u64, n);
    assert!(
        (index.info().duration_s - 1.0).abs() < 1e-3,
        "{:?}",
        index.info()
    );
    // No captions: the whole picture is the source's.
    let source = decode_all(&show.bytes, Some(frames)).1;
    for (a, b) in decoded.iter().zip(&source) {
        let d = mad_rows(a, b, 0..360);
        assert!(d < 6.0, "{d}");
    }
}

#[test]
fn large_videos_are_scaled_down_to_720_lines() {
    let dir = data_dir().join("video");
    let name = "facenet-pytorch_video.mp4";
    let bytes = std::fs::read(dir.join(name)).expect("street clip");
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default()).expect("index");
    let frames = FrameRange { start: 0, end: 10 };
    let clip = encode_clip(&index, &bytes, 0, frames, &EncodeSettings::default()).expect("clip");
    let out = VideoIndex::from_bytes(&clip, &VideoLimits::default()).expect("clip index");
    assert_eq!((out.width, out.height, out.frames()), (1280, 720, 10));
}

#[test]
fn concatenation_refuses_mismatched_segments() {
    let show = slideshow();
    let a = FrameRange { start: 0, end: 5 };
    let b = FrameRange { start: 30, end: 35 };
    let settings = EncodeSettings::default();
    let one = encode_clip(&show.index, &show.bytes, 0, a, &settings).expect("clip");
    let two = encode_clip(&show.index, &show.bytes, 0, b, &settings).expect("clip");
    assert_eq!(
        VideoIndex::from_bytes(
            &concat_montage(&[&one, &two]).expect("concat"),
            &VideoLimits::default()
        )
        .expect("index")
        .frames(),
        10
    );
    let smaller = encode_clip(
        &show.index,
        &show.bytes,
        0,
        b,
        &EncodeSettings {
            max_height: 180,
            ..settings
        },
    )
    .expect("clip");
    assert_eq!(
        concat_montage(&[&one, &smaller]),
        Err(VideoError::SegmentMismatch {
            segment: 1,
            what: "frame size"
        })
    );
    assert_eq!(concat_montage(&[]), Err(VideoError::NoSegments));
    assert!(matches!(
        concat_montage(&[&one, b"not an mp4"]),
        Err(VideoError::BadSegment { segment: 1, .. })
    ));
    // The same size but other parameter sets: the source video itself.
    assert!(matches!(
        concat_montage(&[&one, &show.bytes]),
        Err(VideoError::SegmentMismatch { segment: 1, .. })
    ));
}

#[test]
fn oversized_montages_are_refused() {
    let show = slideshow();
    let all = FrameRange {
        start: 0,
        end: show.index.frames(),
    };
    let config = MontageConfig {
        max_frames: 5,
        ..MontageConfig::default()
    };
    assert!(matches!(
        montage_chunk(&show.index, &show.bytes, 0, all, &show.matches, &config),
        Err(VideoError::MontageTooManyFrames { max_frames: 5, .. })
    ));
    let config = MontageConfig {
        max_bytes: 1000,
        ..MontageConfig::default()
    };
    assert!(matches!(
        montage_chunk(&show.index, &show.bytes, 0, all, &show.matches, &config),
        Err(VideoError::MontageTooLarge { max_bytes: 1000 })
    ));
}
