//! MP4/H.264 frame extraction and face tracking for video scans.
//!
//! - [`VideoIndex`]: the MP4 header as a sample table (demux, bounded).
//! - [`FrameReader`]: decodes a frame range in presentation order.
//! - [`plan_chunks`]: splits a video into keyframe-aligned chunks.
//! - [`scan_chunk`]: detect, track, recognize one chunk (per-frame matches).
//! - [`Timeline`]: where each person appears.
//! - [`montage_chunk`], [`concat_montage`]: the moments people appear in,
//!   captioned and re-encoded to H.264 (per chunk, then joined).
//!
//! Everything here is bytes in, values out (no files, no network), so the
//! CLI and the Lambda functions call the same code.

mod caption;
mod chunk;
mod decode;
mod error;
mod format;
mod index;
mod montage;
mod scan;
mod timeline;
mod track;

pub use chunk::{Chunk, check_every_frame_once, merge_chunk_frames, plan_chunks};
pub use decode::{DecodeSpan, Frame, FrameRange, FrameReader, Sampling};
pub use error::VideoError;
pub use format::{Rotation, set_display_rotation};
pub use index::{Sample, VideoIndex, VideoInfo, VideoLimits};
pub use montage::{
    EncodeSettings, MontageConfig, concat_montage, encode_clip, encode_images, montage_chunk,
    montage_chunk_until, montage_moments,
};
pub use scan::{
    ChunkScan, FaceInFrame, FrameMatches, ScanChunkRequest, ScanConfig, ScanError, ScanMode,
    ScanStats, scan_chunk, scan_chunk_until,
};
pub use timeline::{Appearance, Timeline, TimelineConfig, frame_interval_s};
pub use track::{Association, Track, TrackPolicy, TrackVotes, Tracker, iou};
