//! Montages: the moments where people appear, cut out of the video,
//! captioned and re-encoded to H.264 in MP4.
//!
//! A scan worker turns its chunk into one MP4 segment
//! ([`montage_chunk`], from the same bytes and matches it scanned); the
//! segments are then joined in chunk order by copying their samples
//! ([`concat_montage`], no re-encoding). Every segment is encoded with the
//! same [`EncodeSettings`] from the same video, so their parameter sets
//! (SPS/PPS) are equal and one `avcC` describes the whole montage.
//!
//! Moments are padded by [`MontageConfig::pad_s`] within a chunk only: a
//! worker has just its chunk's frames, so padding that would cross the
//! chunk's edge is dropped (an appearance 0.5 s before a chunk ends gets
//! 0.5 s of padding after it, unless the next chunk's worker sees the
//! person too). Moments of neighbouring chunks that touch play back to back.
//!
//! The samples are H.264 as OpenH264 encodes it (constrained baseline, no
//! B-frames: decode order is presentation order), written with the `mp4`
//! crate's `Mp4Writer`, which keeps the `moov` at the end of the file.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use face_core::{PixelBox, RgbImage};
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    SpsPpsStrategy, UsageType,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};
use serde::{Deserialize, Serialize};

use crate::caption::{self, BLACK, WHITE};
use crate::decode::{FrameRange, FrameReader, Sampling};
use crate::error::VideoError;
use crate::format::{Rotation, set_display_rotation};
use crate::index::{VideoIndex, VideoLimits};
use crate::scan::FrameMatches;

/// How frames are re-encoded. Segments meant to be concatenated must use
/// the same settings (and come from the same video).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodeSettings {
    /// Frames taller than this are scaled down to it, keeping the aspect
    /// ratio (default 720). Width and height are made even (4:2:0), by
    /// dropping the last column or row of an odd-sized video.
    pub max_height: u32,
    /// Target bitrate in bits per second (default 1,500,000).
    pub bitrate_bps: u32,
    /// An IDR frame at least this often, in seconds of video (default
    /// 2.0). Every segment and every moment also starts with one.
    pub keyframe_interval_s: f64,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self {
            max_height: 720,
            bitrate_bps: 1_500_000,
            keyframe_interval_s: 2.0,
        }
    }
}

impl EncodeSettings {
    pub fn validate(&self) -> Result<(), VideoError> {
        let bad = |field, reason| Err(VideoError::MontageConfig { field, reason });
        if !(16..=2160).contains(&self.max_height) {
            return bad("max_height", "must be within 16..=2160");
        }
        if !(10_000..=100_000_000).contains(&self.bitrate_bps) {
            return bad("bitrate_bps", "must be within 10,000..=100,000,000");
        }
        if !(self.keyframe_interval_s > 0.0 && self.keyframe_interval_s <= 60.0) {
            return bad("keyframe_interval_s", "must be within 0 (excluded) ..= 60");
        }
        Ok(())
    }
}

/// What goes into a montage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MontageConfig {
    /// Seconds kept before and after each frame where a person appears
    /// (default 1.0), within the chunk (see the module's documentation).
    pub pad_s: f64,
    /// The person whose moments are kept; `None` (the default) keeps every
    /// recognized person's.
    pub person: Option<String>,
    pub encode: EncodeSettings,
    /// Most frames in one segment (default 54,000: 30 minutes at 30 fps).
    pub max_frames: u64,
    /// Largest segment in bytes (default 256 MiB).
    pub max_bytes: u64,
}

impl Default for MontageConfig {
    fn default() -> Self {
        Self {
            pad_s: 1.0,
            person: None,
            encode: EncodeSettings::default(),
            max_frames: 54_000,
            max_bytes: 256 << 20,
        }
    }
}

impl MontageConfig {
    pub fn validate(&self) -> Result<(), VideoError> {
        let bad = |field, reason| Err(VideoError::MontageConfig { field, reason });
        if !(self.pad_s >= 0.0 && self.pad_s <= 60.0) {
            return bad("pad_s", "must be within 0..=60");
        }
        if self.person.as_deref().is_some_and(str::is_empty) {
            return bad("person", "must not be empty");
        }
        if self.max_frames == 0 {
            return bad("max_frames", "must be at least 1");
        }
        if self.max_bytes == 0 {
            return bad("max_bytes", "must be at least 1");
        }
        self.encode.validate()
    }

    fn wants(&self, person: Option<&str>) -> bool {
        match (person, self.person.as_deref()) {
            (Some(p), Some(wanted)) => p == wanted,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// Frames within this of `pad_s` still count (timestamps are rationals).
const PAD_EPSILON_S: f64 = 1e-6;

/// The frames of `frames` a montage keeps, as ranges in time order: every
/// frame whose time is within `pad_s` seconds (inclusive) of a frame where
/// a wanted person appears, clipped to `frames`. `matches` are the chunk's
/// (as [`scan_chunk`](crate::scan_chunk) returns them); a match outside
/// `frames` is an error.
pub fn montage_moments(
    index: &VideoIndex,
    frames: FrameRange,
    matches: &[FrameMatches],
    config: &MontageConfig,
) -> Result<Vec<FrameRange>, VideoError> {
    config.validate()?;
    if frames.end > index.frames() {
        return Err(VideoError::FrameRange {
            start: frames.start,
            end: frames.end,
            frames: index.frames(),
        });
    }
    let mut hits = Vec::new();
    for m in matches {
        if !frames.contains(m.frame) {
            return Err(VideoError::FrameRange {
                start: m.frame,
                end: m.frame + 1,
                frames: index.frames(),
            });
        }
        if m.faces.iter().any(|f| config.wants(f.person.as_deref())) {
            hits.push(index.pts_s(m.frame));
        }
    }
    hits.sort_by(f64::total_cmp);
    let pad = config.pad_s + PAD_EPSILON_S;
    let mut moments: Vec<FrameRange> = Vec::new();
    if hits.is_empty() {
        return Ok(moments);
    }
    for f in frames.start..frames.end {
        let t = index.pts_s(f);
        let i = hits.partition_point(|&h| h < t);
        let near = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|i| hits.get(i))
            .any(|&h| (h - t).abs() <= pad);
        if !near {
            continue;
        }
        match moments.last_mut() {
            Some(last) if last.end == f => last.end = f + 1,
            _ => moments.push(FrameRange {
                start: f,
                end: f + 1,
            }),
        }
    }
    Ok(moments)
}

/// One chunk's montage segment: the frames [`montage_moments`] keeps, in
/// time order, each with the video time and the names of the wanted
/// people in it burned in, and a box around each of their faces. `data`
/// holds the file's bytes from `data_offset` (the chunk's `DecodeSpan`
/// bytes, or the whole file), as for [`scan_chunk`](crate::scan_chunk).
/// Only what the moments need is decoded. `None` when nobody wanted
/// appears in the chunk.
pub fn montage_chunk(
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    frames: FrameRange,
    matches: &[FrameMatches],
    config: &MontageConfig,
) -> Result<Option<Vec<u8>>, VideoError> {
    montage_chunk_until(index, data, data_offset, frames, matches, config, &|| false)
}

/// [`montage_chunk`], asking `stop` before each frame it decodes: once it
/// says so, it ends with [`VideoError::Cancelled`] (see
/// [`scan_chunk_until`](crate::scan_chunk_until)).
pub fn montage_chunk_until(
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    frames: FrameRange,
    matches: &[FrameMatches],
    config: &MontageConfig,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Vec<u8>>, VideoError> {
    let moments = montage_moments(index, frames, matches, config)?;
    if moments.is_empty() {
        return Ok(None);
    }
    let mut captions: BTreeMap<u64, Vec<(&str, PixelBox)>> = BTreeMap::new();
    for m in matches {
        let named: Vec<(&str, PixelBox)> = m
            .faces
            .iter()
            .filter(|f| config.wants(f.person.as_deref()))
            .filter_map(|f| f.person.as_deref().map(|p| (p, f.bbox)))
            .collect();
        if !named.is_empty() {
            captions.insert(m.frame, named);
        }
    }
    let caps = Caps {
        max_frames: config.max_frames,
        max_bytes: config.max_bytes,
    };
    encode_moments(
        index,
        data,
        data_offset,
        &moments,
        &config.encode,
        caps,
        &mut |img, frame, pts_s, scale| {
            draw_captions(
                img,
                captions.get(&frame),
                pts_s,
                scale,
                index.display_size().0,
            )
        },
        stop,
    )
    .map(Some)
}

/// `frames` of the video re-encoded as a standalone MP4, as they are (no
/// captions), downscaled per `settings`: for cutting short clips out of a
/// longer video.
pub fn encode_clip(
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    frames: FrameRange,
    settings: &EncodeSettings,
) -> Result<Vec<u8>, VideoError> {
    settings.validate()?;
    let defaults = MontageConfig::default();
    let caps = Caps {
        max_frames: defaults.max_frames,
        max_bytes: defaults.max_bytes,
    };
    encode_moments(
        index,
        data,
        data_offset,
        &[frames],
        settings,
        caps,
        &mut |_, _, _, _| {},
        &|| false,
    )
}

/// Encodes still images as an H.264 MP4 at a constant `fps`, as they are
/// (no captions), scaled per `settings`: for building test videos and
/// clips from pictures. Every image must have the first one's size.
pub fn encode_images(
    images: impl IntoIterator<Item = RgbImage>,
    fps: u32,
    settings: &EncodeSettings,
) -> Result<Vec<u8>, VideoError> {
    settings.validate()?;
    if !(1..=240).contains(&fps) {
        return Err(VideoError::MontageConfig {
            field: "fps",
            reason: "must be within 1..=240",
        });
    }
    let mut images = images.into_iter().peekable();
    let Some(first) = images.peek() else {
        return Err(VideoError::Encoder("no frames were encoded".into()));
    };
    let size = first.dimensions();
    let timing = Timing::Constant {
        timescale: fps * 1000,
        ticks: 1000,
    };
    let max_bytes = MontageConfig::default().max_bytes;
    let mut encoder =
        SegmentEncoder::with_timing(timing, size, f64::from(fps), settings, max_bytes)?;
    for (i, image) in images.enumerate() {
        if image.dimensions() != size {
            return Err(VideoError::Encoder(format!(
                "image {i} is {}x{}, the first is {}x{}",
                image.width(),
                image.height(),
                size.0,
                size.1
            )));
        }
        let frame = i as u64;
        encoder.push(
            image,
            frame,
            frame as f64 / f64::from(fps),
            false,
            &mut |_, _, _, _| {},
        )?;
    }
    encoder.finish()
}

/// Joins montage segments, in order, into one MP4 by copying their
/// encoded samples (nothing is re-encoded; the output is about the size of
/// the inputs together). Each segment must start with an IDR frame and
/// have the first segment's parameter sets (SPS/PPS), frame size and
/// timescale: segments of one video made with the same [`EncodeSettings`].
pub fn concat_montage(segments: &[&[u8]]) -> Result<Vec<u8>, VideoError> {
    if segments.is_empty() {
        return Err(VideoError::NoSegments);
    }
    let mut out: Option<Mp4Out> = None;
    let mut first_rotation = Rotation::None;
    for (i, &bytes) in segments.iter().enumerate() {
        let bad = |reason: String| VideoError::BadSegment { segment: i, reason };
        let index = VideoIndex::from_bytes(bytes, &VideoLimits::default())
            .map_err(|e| bad(e.to_string()))?;
        let (Some(sps), Some(pps)) = (index.sps.first(), index.pps.first()) else {
            return Err(bad("no SPS/PPS".into()));
        };
        if index.sps.len() != 1 || index.pps.len() != 1 {
            return Err(bad("more than one SPS or PPS".into()));
        }
        if index.nal_length_size != 4 {
            return Err(bad(format!(
                "NAL length size {}, not 4",
                index.nal_length_size
            )));
        }
        if i == 0 {
            first_rotation = index.rotation;
        }
        let out = match &mut out {
            None => out.insert(Mp4Out::new(
                index.width,
                index.height,
                index.timescale,
                sps,
                pps,
            )?),
            Some(o) => {
                let mismatch = |what| VideoError::SegmentMismatch { segment: i, what };
                if (index.width, index.height) != (o.width, o.height) {
                    return Err(mismatch("frame size"));
                }
                if index.timescale != o.timescale {
                    return Err(mismatch("timescale"));
                }
                if index.rotation != first_rotation {
                    return Err(mismatch("display rotation"));
                }
                if sps != &o.sps || pps != &o.pps {
                    return Err(mismatch("parameter sets (SPS/PPS)"));
                }
                o
            }
        };
        let mut dts: i64 = 0;
        for (s, sample) in index.samples.iter().enumerate() {
            let start = usize::try_from(sample.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(sample.size as usize);
            let data = bytes
                .get(start..end)
                .ok_or_else(|| bad(format!("sample {s} lies outside the file")))?;
            let offset = i32::try_from(sample.pts_ticks - dts)
                .map_err(|_| bad(format!("sample {s}'s composition offset")))?;
            out.push(data, sample.duration_ticks, offset, sample.keyframe)?;
            dts += i64::from(sample.duration_ticks);
        }
    }
    let mut bytes = out.ok_or(VideoError::NoSegments)?.finish()?;
    if first_rotation != Rotation::None {
        set_display_rotation(&mut bytes, first_rotation)?;
    }
    Ok(bytes)
}

/// Bounds on one encoded output.
#[derive(Debug, Clone, Copy)]
struct Caps {
    max_frames: u64,
    max_bytes: u64,
}

/// Draws on a frame before it is encoded: (image, frame, time, text scale).
type Overlay<'a> = dyn FnMut(&mut RgbImage, u64, f64, u32) + 'a;

/// Decodes, draws on and encodes the frames of `moments` (sorted, disjoint)
/// into one MP4.
#[allow(clippy::too_many_arguments)] // the encoder's inputs, each needed
fn encode_moments(
    index: &VideoIndex,
    data: &[u8],
    data_offset: u64,
    moments: &[FrameRange],
    settings: &EncodeSettings,
    caps: Caps,
    overlay: &mut Overlay<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<u8>, VideoError> {
    settings.validate()?;
    let total: u64 = moments.iter().map(FrameRange::len).sum();
    if total > caps.max_frames {
        return Err(VideoError::MontageTooManyFrames {
            frames: total,
            max_frames: caps.max_frames,
        });
    }
    let mut encoder = SegmentEncoder::new(index, settings, caps.max_bytes)?;
    for run in decode_runs(index, moments)? {
        let hull = FrameRange {
            start: run[0].start,
            end: run[run.len() - 1].end,
        };
        let mut reader = FrameReader::new(index, data, data_offset, hull, Sampling::default())?;
        let mut next = run.iter().peekable();
        loop {
            if stop() {
                return Err(VideoError::Cancelled);
            }
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            // Skip the frames between the run's moments.
            while next.peek().is_some_and(|m| m.end <= frame.index) {
                next.next();
            }
            let Some(moment) = next.peek() else { break };
            if !moment.contains(frame.index) {
                continue;
            }
            let Some(image) = frame.image else {
                return Err(VideoError::Decoder(format!(
                    "frame {} was not converted",
                    frame.index
                )));
            };
            encoder.push(
                image,
                frame.index,
                frame.pts_s,
                frame.index == moment.start,
                overlay,
            )?;
        }
    }
    encoder.finish()
}

/// Groups moments so that each group is decoded by one reader: a moment
/// joins the previous group when decoding it alone would start at a sample
/// that group decodes anyway (the frames between are decoded and dropped,
/// cheaper than decoding from the keyframe again).
fn decode_runs<'m>(
    index: &VideoIndex,
    moments: &'m [FrameRange],
) -> Result<Vec<&'m [FrameRange]>, VideoError> {
    let mut runs = Vec::new();
    let (mut first, mut decoded_to) = (0usize, 0u32);
    for (i, m) in moments.iter().enumerate() {
        let span = index.decode_span(*m)?;
        if i > first && span.samples_start >= decoded_to {
            runs.push(&moments[first..i]);
            first = i;
        }
        decoded_to = if i == first {
            span.samples_end
        } else {
            decoded_to.max(span.samples_end)
        };
    }
    if first < moments.len() {
        runs.push(&moments[first..]);
    }
    Ok(runs)
}

/// The time, and who is in the frame, top left; a named box per face.
fn draw_captions(
    img: &mut RgbImage,
    faces: Option<&Vec<(&str, PixelBox)>>,
    pts_s: f64,
    scale: u32,
    source_width: u32,
) {
    let s = i64::from(scale);
    let fx = f64::from(img.width()) / f64::from(source_width.max(1));
    let mut names: Vec<&str> = Vec::new();
    for &(name, b) in faces.into_iter().flatten() {
        if !names.contains(&name) {
            names.push(name);
        }
        let colour = caption::colour_of(name);
        let (x, y) = ((f64::from(b.x) * fx) as i64, (f64::from(b.y) * fx) as i64);
        let (w, h) = (
            (f64::from(b.width) * fx) as i64,
            (f64::from(b.height) * fx) as i64,
        );
        caption::outline(img, x, y, w, h, s.max(2), colour);
        let (_, lh) = caption::label_size(name, scale);
        let ly = if y - lh >= 0 { y - lh } else { y + h };
        caption::label(img, x, ly, name, scale, BLACK, colour);
    }
    let mut banner = names.join(", ");
    if !banner.is_empty() {
        banner.push(' ');
    }
    banner.push_str(&caption::clock(pts_s));
    caption::label(img, 2 * s, 2 * s, &banner, scale, WHITE, BLACK);
}

/// An MP4 being written: one H.264 track, samples appended in order.
struct Mp4Out {
    width: u32,
    height: u32,
    timescale: u32,
    sps: Vec<u8>,
    pps: Vec<u8>,
    writer: mp4::Mp4Writer<Cursor<Vec<u8>>>,
    start_time: u64,
    samples: u64,
}

fn mp4_error(e: mp4::Error) -> VideoError {
    VideoError::Mp4Write(e.to_string())
}

impl Mp4Out {
    fn new(
        width: u32,
        height: u32,
        timescale: u32,
        sps: &[u8],
        pps: &[u8],
    ) -> Result<Self, VideoError> {
        // The avcC box reads the profile and level from the SPS.
        if sps.len() < 4 || pps.is_empty() {
            return Err(VideoError::Mp4Write("SPS or PPS too short".into()));
        }
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(VideoError::Mp4Write(format!("{width}x{height} too large")));
        };
        let brand = |s: &[u8; 4]| mp4::FourCC::from(*s);
        let config = mp4::Mp4Config {
            major_brand: brand(b"isom"),
            minor_version: 512,
            compatible_brands: vec![
                brand(b"isom"),
                brand(b"iso2"),
                brand(b"avc1"),
                brand(b"mp41"),
            ],
            timescale: 1000,
        };
        let mut writer =
            mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).map_err(mp4_error)?;
        writer
            .add_track(&mp4::TrackConfig {
                track_type: mp4::TrackType::Video,
                timescale,
                language: "und".into(),
                media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                    width: w,
                    height: h,
                    seq_param_set: sps.to_vec(),
                    pic_param_set: pps.to_vec(),
                }),
            })
            .map_err(mp4_error)?;
        Ok(Self {
            width,
            height,
            timescale,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            writer,
            start_time: 0,
            samples: 0,
        })
    }

    /// Appends one access unit (AVCC: 4-byte NAL lengths).
    fn push(
        &mut self,
        bytes: &[u8],
        duration: u32,
        rendering_offset: i32,
        is_sync: bool,
    ) -> Result<(), VideoError> {
        let sample = mp4::Mp4Sample {
            start_time: self.start_time,
            duration,
            rendering_offset,
            is_sync,
            bytes: mp4::Bytes::copy_from_slice(bytes),
        };
        self.writer.write_sample(1, &sample).map_err(mp4_error)?;
        self.start_time += u64::from(duration);
        self.samples += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, VideoError> {
        if self.samples == 0 {
            return Err(VideoError::Mp4Write("no samples".into()));
        }
        self.writer.write_end().map_err(mp4_error)?;
        Ok(self.writer.into_writer().into_inner())
    }
}

/// Where a frame's display duration comes from.
enum Timing<'a> {
    /// The source video's own timestamps.
    Source(&'a VideoIndex),
    /// Every frame `ticks` long at `timescale` ticks per second.
    Constant { timescale: u32, ticks: u32 },
}

impl Timing<'_> {
    fn timescale(&self) -> u32 {
        match self {
            Timing::Source(index) => index.timescale,
            Timing::Constant { timescale, .. } => *timescale,
        }
    }

    fn duration_ticks(&self, frame: u64) -> u32 {
        match self {
            Timing::Source(index) => frame_duration_ticks(index, frame),
            Timing::Constant { ticks, .. } => *ticks,
        }
    }
}

/// OpenH264 fed captioned RGB frames, writing an MP4 as it goes.
struct SegmentEncoder<'a> {
    timing: Timing<'a>,
    encoder: Encoder,
    /// Output frame size (even).
    width: u32,
    height: u32,
    /// Caption text scale.
    scale: u32,
    out: Option<Mp4Out>,
    bytes: u64,
    max_bytes: u64,
    sample: Vec<u8>,
}

impl<'a> SegmentEncoder<'a> {
    fn new(
        index: &'a VideoIndex,
        settings: &EncodeSettings,
        max_bytes: u64,
    ) -> Result<Self, VideoError> {
        let fps = match index.info().fps {
            f if f.is_finite() && f > 0.0 => f,
            _ => 30.0,
        };
        Self::with_timing(
            Timing::Source(index),
            index.display_size(),
            fps,
            settings,
            max_bytes,
        )
    }

    fn with_timing(
        timing: Timing<'a>,
        (source_width, source_height): (u32, u32),
        fps: f64,
        settings: &EncodeSettings,
        max_bytes: u64,
    ) -> Result<Self, VideoError> {
        let (width, height) = output_size(source_width, source_height, settings.max_height);
        let intra = (settings.keyframe_interval_s * fps).round().max(1.0) as u32;
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // Every frame in, one frame out: the montage keeps the timing.
            .skip_frames(false)
            // OpenH264 accepts only the real-time usage types.
            .usage_type(UsageType::CameraVideoRealTime)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .intra_frame_period(IntraFramePeriod::from_num_frames(intra))
            // One thread: the same input gives the same bytes.
            .num_threads(1);
        let encoder = catch_unwind(|| Encoder::with_api_config(OpenH264API::from_source(), config))
            .map_err(|_| VideoError::Encoder("the encoder panicked".into()))?
            .map_err(|e| VideoError::Encoder(e.to_string()))?;
        Ok(Self {
            timing,
            encoder,
            width,
            height,
            scale: (height / 180).max(1),
            out: None,
            bytes: 0,
            max_bytes,
            sample: Vec::new(),
        })
    }

    /// Encodes one frame (`idr`: force an IDR frame, at a moment's start).
    fn push(
        &mut self,
        image: RgbImage,
        frame: u64,
        pts_s: f64,
        idr: bool,
        overlay: &mut Overlay<'_>,
    ) -> Result<(), VideoError> {
        let mut image = fit(image, self.width, self.height);
        overlay(&mut image, frame, pts_s, self.scale);
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(
            image.as_raw(),
            (self.width as usize, self.height as usize),
        ));
        let first = self.out.is_none();
        let encoder = &mut self.encoder;
        let sample = &mut self.sample;
        sample.clear();
        let mut sps = None;
        let mut pps = None;
        let frame_type = catch_unwind(AssertUnwindSafe(|| {
            if idr && !first {
                encoder.force_intra_frame();
            }
            let stream = encoder
                .encode(&yuv)
                .map_err(|e| VideoError::Encoder(e.to_string()))?;
            for l in 0..stream.num_layers() {
                let Some(layer) = stream.layer(l) else {
                    continue;
                };
                for n in 0..layer.nal_count() {
                    let Some(nal) = layer.nal_unit(n).map(strip_start_code) else {
                        continue;
                    };
                    match nal.first().map(|b| b & 0x1f) {
                        None | Some(9) => {} // empty, access unit delimiter
                        Some(7) => sps = Some(nal.to_vec()),
                        Some(8) => pps = Some(nal.to_vec()),
                        Some(_) => {
                            sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                            sample.extend_from_slice(nal);
                        }
                    }
                }
            }
            Ok::<_, VideoError>(stream.frame_type())
        }))
        .map_err(|_| VideoError::Encoder("the encoder panicked".into()))??;
        if self.sample.is_empty()
            || !matches!(frame_type, FrameType::IDR | FrameType::I | FrameType::P)
        {
            return Err(VideoError::Encoder(format!(
                "frame {frame} came out as {frame_type:?} with {} bytes",
                self.sample.len()
            )));
        }
        let is_sync = frame_type == FrameType::IDR;
        let out = match &mut self.out {
            Some(out) => {
                // Constant parameter set ids: a repeated SPS/PPS must be
                // the same, or the one avcC would describe it wrongly.
                if sps.as_ref().is_some_and(|s| *s != out.sps)
                    || pps.as_ref().is_some_and(|p| *p != out.pps)
                {
                    return Err(VideoError::Encoder(format!(
                        "the parameter sets changed at frame {frame}"
                    )));
                }
                out
            }
            None => {
                let (Some(sps), Some(pps), true) = (sps, pps, is_sync) else {
                    return Err(VideoError::Encoder(
                        "the first frame is not an IDR frame with SPS and PPS".into(),
                    ));
                };
                self.out.insert(Mp4Out::new(
                    self.width,
                    self.height,
                    self.timing.timescale(),
                    &sps,
                    &pps,
                )?)
            }
        };
        self.bytes += self.sample.len() as u64;
        if self.bytes > self.max_bytes {
            return Err(VideoError::MontageTooLarge {
                max_bytes: self.max_bytes,
            });
        }
        out.push(&self.sample, self.timing.duration_ticks(frame), 0, is_sync)
    }

    fn finish(self) -> Result<Vec<u8>, VideoError> {
        match self.out {
            Some(out) => out.finish(),
            None => Err(VideoError::Encoder("no frames were encoded".into())),
        }
    }
}

/// `frame`'s display time in track ticks: until the next frame, or for
/// the last frame its sample's own duration.
fn frame_duration_ticks(index: &VideoIndex, frame: u64) -> u32 {
    let pts = |f: u64| index.samples[index.sample_of_frame(f) as usize].pts_ticks;
    let delta = if frame + 1 < index.frames() {
        pts(frame + 1) - pts(frame)
    } else {
        i64::from(index.samples[index.sample_of_frame(frame) as usize].duration_ticks)
    };
    u32::try_from(delta).ok().filter(|&d| d > 0).unwrap_or(1)
}

/// The output frame size: at most `max_height` lines, aspect kept, both
/// dimensions even and at least 2.
fn output_size(width: u32, height: u32, max_height: u32) -> (u32, u32) {
    let even = |v: f64| ((v / 2.0).floor() as u32 * 2).max(2);
    if height <= max_height {
        (even(f64::from(width)), even(f64::from(height)))
    } else {
        let f = f64::from(max_height) / f64::from(height);
        (even(f64::from(width) * f), even(f64::from(max_height)))
    }
}

/// `image` at `width` x `height`: cropped by the odd row or column when
/// that is all, else resampled.
fn fit(image: RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if (w, h) == (width, height) {
        image
    } else if w >= width && h >= height && w - width <= 1 && h - height <= 1 {
        image::imageops::crop_imm(&image, 0, 0, width, height).to_image()
    } else {
        let scale = height as f32 / h as f32;
        match face_core::resample::prefilter_factor(scale) {
            1 => bilinear(&image, width, height),
            f => bilinear(
                &face_core::resample::box_downscale(&image, f),
                width,
                height,
            ),
        }
    }
}

/// Bilinear resampling in 8-bit fixed point, pixel centres aligned (the
/// `image` crate's generic filters compile unoptimized into this crate's
/// dev builds and took 300 ms per 1080p frame).
fn bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = src.dimensions();
    // Per output coordinate: the first source index and the weight (0..256)
    // of the second.
    let taps = |out: u32, len: u32| -> Vec<(usize, u32)> {
        let ratio = f64::from(len) / f64::from(out);
        (0..out)
            .map(|o| {
                let c = ((f64::from(o) + 0.5) * ratio - 0.5).clamp(0.0, f64::from(len - 1));
                let i = (c.floor() as u32).min(len.saturating_sub(2));
                let frac = ((c - f64::from(i)) * 256.0).round().clamp(0.0, 256.0) as u32;
                (i as usize, frac)
            })
            .collect()
    };
    let (xs, ys) = (taps(width, sw), taps(height, sh));
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    let next_x = usize::from(sw > 1) * 3;
    let next_y = usize::from(sh > 1) * stride;
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for &(y, fy) in &ys {
        let row = y * stride;
        for &(x, fx) in &xs {
            let p = row + x * 3;
            for c in 0..3 {
                let at = |o: usize| raw.get(p + c + o).copied().map_or(0, u32::from);
                let top = at(0) * (256 - fx) + at(next_x) * fx;
                let bottom = at(next_y) * (256 - fx) + at(next_y + next_x) * fx;
                let v = (top * (256 - fy) + bottom * fy + (1 << 15)) >> 16;
                out.push(v.min(255) as u8);
            }
        }
    }
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// A NAL unit without its Annex B start code.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    nal.strip_prefix(&[0, 0, 0, 1])
        .or_else(|| nal.strip_prefix(&[0, 0, 1]))
        .unwrap_or(nal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_flat_areas_and_halves_stripes_to_grey() {
        let flat = RgbImage::from_pixel(9, 7, image::Rgb([10, 200, 77]));
        let out = bilinear(&flat, 4, 3);
        assert!(out.pixels().all(|p| p.0 == [10, 200, 77]));
        // Columns alternating 0/255 halved: every output pixel sits between.
        let stripes = RgbImage::from_fn(8, 2, |x, _| image::Rgb([(x % 2 * 255) as u8; 3]));
        let out = bilinear(&stripes, 4, 1);
        assert!(
            out.pixels().all(|p| (120..=135).contains(&p.0[0])),
            "{out:?}"
        );
    }

    #[test]
    fn output_is_at_most_max_height_and_even() {
        assert_eq!(output_size(1920, 1080, 720), (1280, 720));
        assert_eq!(output_size(640, 360, 720), (640, 360));
        assert_eq!(output_size(641, 361, 720), (640, 360));
        assert_eq!(output_size(1000, 1001, 720), (718, 720));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let bad = MontageConfig {
            pad_s: f64::NAN,
            ..MontageConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(VideoError::MontageConfig { field: "pad_s", .. })
        ));
        let bad = MontageConfig {
            encode: EncodeSettings {
                max_height: 8,
                ..EncodeSettings::default()
            },
            ..MontageConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(VideoError::MontageConfig {
                field: "max_height",
                ..
            })
        ));
        let parsed: Result<MontageConfig, _> = serde_json::from_str(r#"{"pad":2}"#);
        assert!(parsed.is_err(), "unknown fields are refused");
        let parsed: MontageConfig =
            serde_json::from_str(r#"{"pad_s":0.5,"person":"alice"}"#).expect("parse");
        assert_eq!(parsed.encode, EncodeSettings::default());
    }
}
