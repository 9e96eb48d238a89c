//! Typed failures of demuxing and decoding untrusted video.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum VideoError {
    #[error("not an MP4 file: {0}")]
    NotMp4(String),
    #[error("the MP4 file has no video track")]
    NoVideoTrack,
    #[error("{0} is not supported (only H.264/AVC video is)")]
    UnsupportedCodec(String),
    #[error("{0} is not supported (only 8-bit 4:2:0 H.264 is)")]
    UnsupportedFormat(String),
    #[error("fragmented MP4 is not supported")]
    Fragmented,
    #[error("video is {width}x{height}, more than the limit of {max_pixels} pixels per frame")]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("video has {frames} frames, more than the limit of {max_frames}")]
    TooManyFrames { frames: u64, max_frames: u64 },
    #[error("sample {sample} is {bytes} bytes, more than the limit of {max_bytes}")]
    SampleTooLarge {
        sample: u32,
        bytes: u64,
        max_bytes: u64,
    },
    #[error("invalid sample table: {0}")]
    SampleTable(String),
    #[error("frame range {start}..{end} is not within the video's {frames} frames")]
    FrameRange { start: u64, end: u64, frames: u64 },
    #[error("sample {sample} lies outside the bytes given ({reason})")]
    SampleOutOfRange { sample: u32, reason: String },
    #[error("corrupt sample {sample}: {reason}")]
    CorruptSample { sample: u32, reason: String },
    #[error("H.264 decoder: {0}")]
    Decoder(String),
    #[error("invalid montage setting {field}: {reason}")]
    MontageConfig {
        field: &'static str,
        reason: &'static str,
    },
    #[error("H.264 encoder: {0}")]
    Encoder(String),
    #[error("the montage has {frames} frames, more than the limit of {max_frames}")]
    MontageTooManyFrames { frames: u64, max_frames: u64 },
    #[error("the montage is larger than the limit of {max_bytes} bytes")]
    MontageTooLarge { max_bytes: u64 },
    #[error("writing MP4: {0}")]
    Mp4Write(String),
    #[error("no montage segments to concatenate")]
    NoSegments,
    #[error("montage segment {segment} is unusable: {reason}")]
    BadSegment { segment: usize, reason: String },
    #[error(
        "montage segment {segment} differs from the first in its {what} (segments must be of one video, encoded with the same settings)"
    )]
    SegmentMismatch { segment: usize, what: &'static str },
    /// The caller's `stop` asked for it (its deadline passed): not the
    /// video's fault.
    #[error("stopped by the caller before the end")]
    Cancelled,
    #[error("decoded frame is {found_width}x{found_height}, the header says {width}x{height}")]
    DimensionMismatch {
        width: u32,
        height: u32,
        found_width: u32,
        found_height: u32,
    },
}
