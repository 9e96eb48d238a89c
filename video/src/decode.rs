//! Decoding a frame range: AVCC samples to Annex B, OpenH264, YUV to RGB.
//! Frames come out in presentation order with their index and timestamp;
//! memory is one decoder plus one RGB frame at a time.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use face_core::RgbImage;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use serde::{Deserialize, Serialize};

use crate::error::VideoError;
use crate::index::VideoIndex;

/// A half-open range of frame indices (presentation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRange {
    pub start: u64,
    pub end: u64,
}

impl FrameRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, frame: u64) -> bool {
        (self.start..self.end).contains(&frame)
    }
}

/// The samples to decode (from the keyframe before the range) and the file
/// bytes they lie in: what a worker must fetch for a range of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeSpan {
    /// Decode-order sample indices, half-open.
    pub samples_start: u32,
    pub samples_end: u32,
    /// File byte range covering every sample of the span, half-open.
    pub bytes_start: u64,
    pub bytes_end: u64,
}

impl VideoIndex {
    /// What must be decoded to output `frames`.
    pub fn decode_span(&self, frames: FrameRange) -> Result<DecodeSpan, VideoError> {
        if frames.is_empty() || frames.end > self.frames() {
            return Err(VideoError::FrameRange {
                start: frames.start,
                end: frames.end,
                frames: self.frames(),
            });
        }
        let (mut lo, mut hi) = (u32::MAX, 0u32);
        for f in frames.start..frames.end {
            let s = self.sample_of_frame(f);
            lo = lo.min(s);
            hi = hi.max(s);
        }
        // Decoding starts at the last keyframe at or before the earliest
        // sample (the first sample is a keyframe, checked by the index).
        // Both lookups take time independent of the GOP's length, so a
        // plan of a one-keyframe video stays linear in its frames.
        let start = self.spans.keyframe_at_or_before(&self.samples, lo as usize) as u32;
        let (bytes_start, bytes_end) = self.spans.hull(&self.samples, start as usize, hi as usize);
        Ok(DecodeSpan {
            samples_start: start,
            samples_end: hi + 1,
            bytes_start,
            bytes_end,
        })
    }
}

/// Which frames are converted to RGB (the others are decoded only, since
/// later frames depend on them, which costs a fraction of a conversion).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Convert a frame when this many frames passed since the last
    /// converted one (1 = every frame).
    pub every_n_frames: u64,
    /// Also convert a frame whose luma histogram differs from the last
    /// converted one's by more than this (half the L1 distance, 0..1): a
    /// shot cut or a new slide is never left to stale tracks. `None`
    /// disables it.
    pub change_threshold: Option<f32>,
    /// Leave undecoded the frames of the range that no other frame
    /// references (H.264 `nal_ref_idc` 0, B-frames mostly), but its first
    /// and last: they come out without image, never converted and never
    /// compared for a cut (a cut there shows at the next decoded frame).
    /// The decoder's state stays exact, since nothing predicts from them;
    /// the street clip has 52 such frames of 105. Frames before the range
    /// that nothing references are never decoded, whatever this says.
    pub skip_non_reference: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            every_n_frames: 1,
            change_threshold: None,
            skip_non_reference: false,
        }
    }
}

/// One decoded frame. `image` is `None` for frames the sampling skipped.
#[derive(Debug, Clone)]
pub struct Frame {
    pub index: u64,
    pub pts_s: f64,
    pub image: Option<RgbImage>,
    /// The picture differs from the last converted frame by more than the
    /// sampling's change threshold (a cut): tracks from before are stale.
    pub changed: bool,
}

const BINS: usize = 32;
/// Every 4th pixel of every 4th row is counted.
const STEP: usize = 4;

/// A luma histogram over a subsample of the frame: cheap on every frame,
/// and indifferent to camera shake and people moving, unlike pixel
/// differences; a shot cut or a new slide changes it.
fn luma_signature(yuv: &DecodedYUV<'_>) -> Vec<f32> {
    let (w, h) = yuv.dimensions();
    let stride = yuv.strides().0;
    let y = yuv.y();
    let mut counts = [0u32; BINS];
    for row in (0..h).step_by(STEP) {
        let Some(line) = y.get(row * stride..row * stride + w) else {
            break;
        };
        for &v in line.iter().step_by(STEP) {
            counts[usize::from(v) * BINS / 256] += 1;
        }
    }
    let total = counts.iter().sum::<u32>().max(1) as f32;
    counts.iter().map(|&c| c as f32 / total).collect()
}

/// Half the L1 distance of two histograms: 0 same, 1 disjoint.
fn signature_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / 2.0
}

/// Iterates the frames of one range.
pub struct FrameReader<'a> {
    index: &'a VideoIndex,
    /// File bytes starting at `data_offset` (the span's bytes, or the file).
    data: &'a [u8],
    data_offset: u64,
    frames: FrameRange,
    samples: Range<u32>,
    /// Frame indices in the order the decoder will output them.
    output_order: VecDeque<u64>,
    decoder: Decoder,
    annexb: Vec<u8>,
    sampling: Sampling,
    /// The last converted frame and its signature.
    last_converted: Option<(u64, Vec<f32>)>,
    flushed: bool,
    ready: VecDeque<Frame>,
    /// Samples never given to the decoder (see [`Sampling`]).
    skipped_samples: BTreeSet<u32>,
    /// The range's frames among them, still to come out (without image)
    /// before the first decoded frame that follows them.
    skipped_frames: VecDeque<u64>,
}

impl std::fmt::Debug for FrameReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("frames", &self.frames)
            .field("samples", &self.samples)
            .field("sampling", &self.sampling)
            .finish_non_exhaustive()
    }
}

impl<'a> FrameReader<'a> {
    /// Frames `frames` of the video, from `data`: the file's bytes starting
    /// at file offset `data_offset` (0 for the whole file, or the span's
    /// `bytes_start` when only the span was fetched). The first and last
    /// frames of the range are always converted.
    pub fn new(
        index: &'a VideoIndex,
        data: &'a [u8],
        data_offset: u64,
        frames: FrameRange,
        sampling: Sampling,
    ) -> Result<Self, VideoError> {
        let span = index.decode_span(frames)?;
        let skipped_samples: BTreeSet<u32> = (span.samples_start..span.samples_end)
            .filter(|&s| {
                let frame = index.frame_of_sample(s);
                let kept = frame == frames.start || frame + 1 == frames.end;
                let skippable = !frames.contains(frame) || (sampling.skip_non_reference && !kept);
                skippable
                    && sample_in(index, data, data_offset, s)
                        .is_ok_and(|bytes| is_non_reference(bytes, index.nal_length_size))
            })
            .collect();
        let mut output_order: Vec<u64> = (span.samples_start..span.samples_end)
            .filter(|s| !skipped_samples.contains(s))
            .map(|s| index.frame_of_sample(s))
            .collect();
        output_order.sort_unstable();
        let mut skipped_frames: Vec<u64> = skipped_samples
            .iter()
            .map(|&s| index.frame_of_sample(s))
            .filter(|&f| frames.contains(f))
            .collect();
        skipped_frames.sort_unstable();
        // NoFlush: B-frames are reordered inside the decoder, and frames are
        // flushed once at the end of the span.
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(openh264::OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Decoder(e.to_string()))?;
        Ok(Self {
            index,
            data,
            data_offset,
            frames,
            samples: span.samples_start..span.samples_end,
            output_order: output_order.into(),
            decoder,
            annexb: Vec::new(),
            sampling,
            last_converted: None,
            flushed: false,
            ready: VecDeque::new(),
            skipped_samples,
            skipped_frames: skipped_frames.into(),
        })
    }

    /// How many samples of the span are never decoded (see [`Sampling`]).
    pub fn samples_skipped(&self) -> usize {
        self.skipped_samples.len()
    }

    /// Queues `frame` (decoded, or `None` once the decoder is drained)
    /// after the skipped frames that come before it.
    fn push_after_skipped(&mut self, frame: Option<Frame>) {
        let before = frame.as_ref().map_or(u64::MAX, |f| f.index);
        while let Some(index) = self.skipped_frames.pop_front() {
            if index >= before {
                self.skipped_frames.push_front(index);
                break;
            }
            self.ready.push_back(Frame {
                index,
                pts_s: self.index.pts_s(index),
                image: None,
                changed: false,
            });
        }
        self.ready.extend(frame);
    }

    /// The next frame of the range, in presentation order.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            if let Some(sample) = self.samples.next() {
                if !self.skipped_samples.contains(&sample) {
                    self.decode_sample(sample)?;
                }
            } else if !self.flushed {
                self.flushed = true;
                self.flush()?;
            } else {
                if !self.output_order.is_empty() {
                    return Err(VideoError::Decoder(format!(
                        "{} frame(s) of the range were never output",
                        self.output_order.len()
                    )));
                }
                return Ok(None);
            }
        }
    }

    fn sample_bytes(&self, sample: u32) -> Result<&'a [u8], VideoError> {
        sample_in(self.index, self.data, self.data_offset, sample)
    }

    fn decode_sample(&mut self, sample: u32) -> Result<(), VideoError> {
        let bytes = self.sample_bytes(sample)?;
        let keyframe = self.index.samples[sample as usize].keyframe;
        avcc_to_annexb(self.index, bytes, keyframe, &mut self.annexb)
            .map_err(|reason| VideoError::CorruptSample { sample, reason })?;
        // OpenH264 is C behind asserting bindings: a panic must not unwind
        // through the caller's request.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match self.decoder.decode(&self.annexb) {
                Ok(Some(yuv)) => {
                    let frame = self.output_order.pop_front();
                    emit(
                        self.index,
                        self.frames,
                        &self.sampling,
                        &mut self.last_converted,
                        frame,
                        &yuv,
                    )
                }
                Ok(None) => Ok(None),
                Err(e) => Err(VideoError::CorruptSample {
                    sample,
                    reason: e.to_string(),
                }),
            }
        }))
        .map_err(|_| VideoError::CorruptSample {
            sample,
            reason: "the decoder panicked".into(),
        })??;
        if let Some(frame) = outcome {
            self.push_after_skipped(Some(frame));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), VideoError> {
        let frames = catch_unwind(AssertUnwindSafe(|| {
            let remaining = self
                .decoder
                .flush_remaining()
                .map_err(|e| VideoError::Decoder(e.to_string()))?;
            let mut out = Vec::new();
            for yuv in &remaining {
                let frame = self.output_order.pop_front();
                out.extend(emit(
                    self.index,
                    self.frames,
                    &self.sampling,
                    &mut self.last_converted,
                    frame,
                    yuv,
                )?);
            }
            Ok::<_, VideoError>(out)
        }))
        .map_err(|_| VideoError::Decoder("the decoder panicked while flushing".into()))??;
        for frame in frames {
            self.push_after_skipped(Some(frame));
        }
        self.push_after_skipped(None);
        Ok(())
    }
}

/// The bytes of `sample` in `data` (the file's bytes from `data_offset`).
fn sample_in<'d>(
    index: &VideoIndex,
    data: &'d [u8],
    data_offset: u64,
    sample: u32,
) -> Result<&'d [u8], VideoError> {
    let s = &index.samples[sample as usize];
    let out = |reason: &str| VideoError::SampleOutOfRange {
        sample,
        reason: reason.into(),
    };
    let start = s
        .offset
        .checked_sub(data_offset)
        .ok_or_else(|| out("starts before them"))?;
    let end = start + u64::from(s.size);
    if end > data.len() as u64 {
        return Err(out("ends after them"));
    }
    Ok(&data[start as usize..end as usize])
}

/// Whether no frame predicts from this sample: it holds a coded slice and
/// every slice has `nal_ref_idc` 0. Anything unreadable answers `false`,
/// so the decoder sees it and reports what is wrong.
fn is_non_reference(sample: &[u8], nal_length_size: u8) -> bool {
    let mut slices = 0;
    for nal in nal_units(sample, nal_length_size) {
        let Ok(&[header, ..]) = nal else {
            return false;
        };
        // Coded slices: 1 (non-IDR), 2-4 (data partitions), 5 (IDR).
        if (1..=5).contains(&(header & 0x1f)) {
            if header & 0x60 != 0 {
                return false;
            }
            slices += 1;
        }
    }
    slices > 0
}

/// The NAL units of an MP4 sample, each behind its big-endian length of
/// `nal_length_size` bytes; an error ends the walk where the lengths stop
/// adding up.
fn nal_units(
    mut sample: &[u8],
    nal_length_size: u8,
) -> impl Iterator<Item = Result<&[u8], String>> {
    let n = usize::from(nal_length_size);
    std::iter::from_fn(move || {
        if sample.is_empty() {
            return None;
        }
        if sample.len() < n {
            sample = &[];
            return Some(Err("truncated NAL length".into()));
        }
        let len = sample[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let rest = &sample[n..];
        if len == 0 || len > rest.len() {
            sample = &[];
            return Some(Err(format!(
                "NAL of {len} bytes with {} left in the sample",
                rest.len()
            )));
        }
        let (nal, after) = rest.split_at(len);
        sample = after;
        Some(Ok(nal))
    })
}

/// Turns the decoder's next picture into the frame it is (`frame`, the
/// next in presentation order), converting it when the sampling says so.
fn emit(
    index: &VideoIndex,
    range: FrameRange,
    sampling: &Sampling,
    last_converted: &mut Option<(u64, Vec<f32>)>,
    frame: Option<u64>,
    yuv: &DecodedYUV<'_>,
) -> Result<Option<Frame>, VideoError> {
    let Some(frame) = frame else {
        return Err(VideoError::Decoder(
            "the decoder output more frames than samples".into(),
        ));
    };
    if !range.contains(frame) {
        return Ok(None);
    }
    let (w, h) = yuv.dimensions();
    if (w as u64, h as u64) != (u64::from(index.width), u64::from(index.height)) {
        return Err(VideoError::DimensionMismatch {
            width: index.width,
            height: index.height,
            found_width: w as u32,
            found_height: h as u32,
        });
    }
    let scheduled = match last_converted {
        None => true,
        Some((last, _)) => frame - *last >= sampling.every_n_frames.max(1),
    } || frame + 1 == range.end;
    let mut changed = false;
    let mut signature = None;
    if let Some(threshold) = sampling.change_threshold {
        let sig = luma_signature(yuv);
        changed = last_converted
            .as_ref()
            .is_some_and(|(_, last)| signature_distance(last, &sig) > threshold);
        signature = Some(sig);
    }
    let image = if scheduled || changed {
        *last_converted = Some((frame, signature.unwrap_or_default()));
        let mut rgb = vec![0u8; w * h * 3];
        yuv.write_rgb8(&mut rgb);
        RgbImage::from_raw(index.width, index.height, rgb).map(|img| index.rotation.apply(img))
    } else {
        None
    };
    Ok(Some(Frame {
        index: frame,
        pts_s: index.pts_s(frame),
        image,
        changed,
    }))
}

/// Length-prefixed NAL units (MP4) to start-code NAL units (Annex B), with
/// the parameter sets in front of every keyframe so that a range can start
/// at any keyframe.
fn avcc_to_annexb(
    index: &VideoIndex,
    sample: &[u8],
    keyframe: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    if keyframe {
        for ps in index.sps.iter().chain(&index.pps) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(ps);
        }
    }
    for nal in nal_units(sample, index.nal_length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal?);
    }
    Ok(())
}
