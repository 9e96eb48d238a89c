//! Splitting a video into chunks of frames that workers scan
//! independently: cut at keyframes so no worker decodes frames it does
//! not report.

use serde::{Deserialize, Serialize};

use crate::decode::{DecodeSpan, FrameRange};
use crate::error::VideoError;
use crate::index::VideoIndex;
use crate::scan::FrameMatches;

/// One unit of work: a frame range, and what decoding it takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub chunk: u32,
    pub frames: FrameRange,
    pub span: DecodeSpan,
    pub start_s: f64,
    pub end_s: f64,
}

/// Chunks of about `target_frames` frames. A chunk ends at the first
/// keyframe at or after `target_frames`, unless that is more than twice the
/// target away (long GOPs): then it ends at the target and the next chunk
/// decodes from the previous keyframe.
pub fn plan_chunks(index: &VideoIndex, target_frames: u64) -> Result<Vec<Chunk>, VideoError> {
    let total = index.frames();
    let target = target_frames.max(1);
    let mut chunks = Vec::new();
    let mut start = 0u64;
    while start < total {
        // Saturating: a target near u64::MAX (from a flag) means "one
        // chunk", not an overflow.
        let min_end = start.saturating_add(target).min(total);
        let max_end = start.saturating_add(target.saturating_mul(2)).min(total);
        let end = (min_end..max_end)
            .find(|&f| index.is_keyframe_start(f))
            .unwrap_or(min_end);
        let frames = FrameRange { start, end };
        chunks.push(Chunk {
            chunk: chunks.len() as u32,
            frames,
            span: index.decode_span(frames)?,
            start_s: index.pts_s(start),
            end_s: if end < total {
                index.pts_s(end)
            } else {
                index.info().duration_s
            },
        });
        start = end;
    }
    Ok(chunks)
}

/// Checks that `frames` (sorted by frame) are 0, 1, ..., `total` - 1: what
/// the chunks of a scan must add up to, so no frame is lost or counted
/// twice. Says which frame is wrong.
pub fn check_every_frame_once(frames: &[FrameMatches], total: u64) -> Result<(), String> {
    if frames.len() as u64 != total {
        return Err(format!(
            "{} frames back for a video of {total}",
            frames.len()
        ));
    }
    match frames.iter().zip(0u64..).find(|(f, i)| f.frame != *i) {
        Some((f, i)) => Err(format!(
            "frame {i} missing or doubled (found {} there)",
            f.frame
        )),
        None => Ok(()),
    }
}

/// The frames of a scan's chunks, gathered in any order, as one list:
/// sorted by frame and checked to be every frame of a `total`-frame video
/// once ([`check_every_frame_once`]). The client-side coordinator and the
/// server-side job both merge with this.
pub fn merge_chunk_frames(
    mut frames: Vec<FrameMatches>,
    total: u64,
) -> Result<Vec<FrameMatches>, String> {
    frames.sort_by_key(|f| f.frame);
    check_every_frame_once(&frames, total)?;
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncodeSettings, VideoLimits, encode_images};

    /// A target too large to double (a `--frames-per-chunk` flag) is one
    /// chunk of the whole video, not an overflow.
    #[test]
    fn a_huge_target_is_one_chunk() {
        let frames =
            (0..12u8).map(|i| image::RgbImage::from_pixel(32, 32, image::Rgb([i * 20; 3])));
        let settings = EncodeSettings {
            keyframe_interval_s: 0.5,
            ..EncodeSettings::default()
        };
        let video = encode_images(frames, 10, &settings).expect("encode");
        let index = VideoIndex::from_bytes(&video, &VideoLimits::default()).expect("index");
        assert_eq!(index.frames(), 12);
        for target in [u64::MAX, u64::MAX / 2 + 1, 1 << 63] {
            let chunks = plan_chunks(&index, target).expect("plan");
            assert_eq!(chunks.len(), 1, "target {target}: {chunks:?}");
            assert_eq!(chunks[0].frames, FrameRange { start: 0, end: 12 });
        }
        // An ordinary target still cuts at the keyframes (every 5 frames).
        let chunks = plan_chunks(&index, 4).expect("plan");
        let ends: Vec<u64> = chunks.iter().map(|c| c.frames.end).collect();
        assert_eq!(ends, [5, 10, 12]);
    }
}
