//! The MP4 header turned into a sample table: where each H.264 sample
//! lies in the file, its presentation time, and whether it is a keyframe.
//! Built once from the header (the `moov` box), it lets any worker decode
//! any frame range from just the bytes of that range.

use std::io::{Cursor, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::error::VideoError;
use crate::format::{Rotation, check_header_boxes, check_sps, codec_name, sample_entry_type};

/// Bounds checked before anything proportional to them is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoLimits {
    /// Largest frame accepted, width x height (default 4096x2304, 4K UHD
    /// fits).
    pub max_pixels: u64,
    /// Most frames in one video (default 4,000,000: 37 h at 30 fps).
    pub max_frames: u64,
    /// Largest compressed sample (default 16 MiB).
    pub max_sample_bytes: u64,
}

impl Default for VideoLimits {
    fn default() -> Self {
        Self {
            max_pixels: 4096 * 2304,
            max_frames: 4_000_000,
            max_sample_bytes: 16 << 20,
        }
    }
}

/// One compressed H.264 access unit, in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Byte offset in the file.
    pub offset: u64,
    pub size: u32,
    /// Presentation time in track ticks, edit list applied.
    pub pts_ticks: i64,
    /// Decode duration in track ticks (the `stts` entry).
    #[serde(default)]
    pub duration_ticks: u32,
    pub keyframe: bool,
}

/// What a video is, for people and planners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// As displayed (after the header's rotation), like the frames.
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees the stored frames are turned to be upright.
    #[serde(default)]
    pub rotation_deg: u16,
    pub frames: u64,
    pub duration_s: f64,
    pub fps: f64,
    pub keyframes: u64,
}

/// The H.264 track's sample table and decoder configuration.
#[derive(Debug, Clone)]
pub struct VideoIndex {
    /// As stored (what the decoder outputs); see [`Self::display_size`].
    pub width: u32,
    pub height: u32,
    /// Applied to every decoded frame, so frames, boxes and reports are
    /// upright.
    pub rotation: Rotation,
    pub timescale: u32,
    /// AVCC NAL length prefix size (1, 2 or 4).
    pub nal_length_size: u8,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    /// In decode order.
    pub samples: Vec<Sample>,
    /// Presentation rank of each sample: its frame index.
    frame_of_sample: Vec<u32>,
    /// The sample shown as frame i.
    sample_of_frame: Vec<u32>,
    /// Keyframes and byte hulls by block of samples, for
    /// [`Self::decode_span`].
    pub(crate) spans: SpanIndex,
}

impl VideoIndex {
    /// Reads the header of a whole MP4 file held in memory.
    pub fn from_bytes(bytes: &[u8], limits: &VideoLimits) -> Result<Self, VideoError> {
        Self::from_reader(Cursor::new(bytes), bytes.len() as u64, limits)
    }

    /// Reads the header from any seekable source of `size` bytes; the
    /// media data (`mdat`) is skipped, not read.
    pub fn from_reader<R: Read + Seek>(
        mut reader: R,
        size: u64,
        limits: &VideoLimits,
    ) -> Result<Self, VideoError> {
        // The mp4 crate sizes some buffers by a box's declared size alone:
        // the header's boxes are checked to fit in their parents first. A
        // parser of untrusted input may still panic: that must become an
        // error. It may also loop (a box of size 0 inside a container): its
        // reads are bounded too.
        check_header_boxes(&mut reader, size).map_err(VideoError::NotMp4)?;
        let bounded = RereadBudget::new(&mut reader);
        let parsed = catch_unwind(AssertUnwindSafe(move || {
            mp4::Mp4Reader::read_header(bounded, size)
        }))
        .map_err(|_| VideoError::NotMp4("the MP4 parser gave up on this file".into()))?
        .map_err(|e| VideoError::NotMp4(e.to_string()))?;
        if !parsed.moofs.is_empty() {
            return Err(VideoError::Fragmented);
        }
        // The lowest-numbered video track, so the choice is deterministic.
        let video = parsed
            .tracks()
            .values()
            .filter(|t| t.trak.mdia.hdlr.handler_type.value == *b"vide")
            .min_by_key(|t| t.track_id())
            .ok_or(VideoError::NoVideoTrack)?;
        if video.trak.mdia.minf.stbl.stsd.avc1.is_some() {
            return Self::from_track(video, limits);
        }
        // The crate keeps only the sample entries it models: name the codec
        // from the raw one.
        let track_id = video.track_id();
        drop(parsed);
        let codec = sample_entry_type(&mut reader, size, track_id)
            .map_or_else(|| "this video codec".to_string(), codec_name);
        Err(VideoError::UnsupportedCodec(codec))
    }

    fn from_track(track: &mp4::Mp4Track, limits: &VideoLimits) -> Result<Self, VideoError> {
        let trak = &track.trak;
        let stbl = &trak.mdia.minf.stbl;
        let Some(avc1) = &stbl.stsd.avc1 else {
            return Err(VideoError::UnsupportedCodec("this video codec".into()));
        };
        for sps in &avc1.avcc.sequence_parameter_sets {
            check_sps(&sps.bytes)?;
        }
        let matrix = &trak.tkhd.matrix;
        let rotation = Rotation::from_matrix(matrix.a, matrix.b, matrix.c, matrix.d);
        let (width, height) = (u32::from(avc1.width), u32::from(avc1.height));
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > limits.max_pixels {
            return Err(VideoError::TooManyPixels {
                width,
                height,
                max_pixels: limits.max_pixels,
            });
        }
        let nal_length_size = avc1.avcc.length_size_minus_one.wrapping_add(1) & 0x7;
        if !matches!(nal_length_size, 1 | 2 | 4) {
            return Err(VideoError::SampleTable(format!(
                "NAL length size {nal_length_size}"
            )));
        }
        let count = u64::from(stbl.stsz.sample_count);
        if count > limits.max_frames {
            return Err(VideoError::TooManyFrames {
                frames: count,
                max_frames: limits.max_frames,
            });
        }
        let timescale = trak.mdia.mdhd.timescale;
        if timescale == 0 {
            return Err(VideoError::SampleTable("timescale 0".into()));
        }
        let samples = sample_table(track, limits)?;
        let mut order: Vec<u32> = (0..samples.len() as u32).collect();
        order.sort_by_key(|&i| (samples[i as usize].pts_ticks, i));
        let mut frame_of_sample = vec![0u32; samples.len()];
        for (frame, &sample) in order.iter().enumerate() {
            frame_of_sample[sample as usize] = frame as u32;
        }
        Ok(Self {
            width,
            height,
            rotation,
            timescale,
            nal_length_size,
            sps: avc1
                .avcc
                .sequence_parameter_sets
                .iter()
                .map(|n| n.bytes.clone())
                .collect(),
            pps: avc1
                .avcc
                .picture_parameter_sets
                .iter()
                .map(|n| n.bytes.clone())
                .collect(),
            spans: SpanIndex::new(&samples),
            samples,
            frame_of_sample,
            sample_of_frame: order,
        })
    }

    /// The frame size as displayed: what [`crate::FrameReader`] outputs.
    pub fn display_size(&self) -> (u32, u32) {
        self.rotation.display_size(self.width, self.height)
    }

    pub fn frames(&self) -> u64 {
        self.samples.len() as u64
    }

    /// Heap bytes this index holds (capacities, not lengths): what a
    /// cache of indexes weighs it by.
    pub fn heap_bytes(&self) -> usize {
        let nal_units = |units: &Vec<Vec<u8>>| -> usize {
            units.capacity() * std::mem::size_of::<Vec<u8>>()
                + units.iter().map(Vec::capacity).sum::<usize>()
        };
        self.samples.capacity() * std::mem::size_of::<Sample>()
            + (self.frame_of_sample.capacity() + self.sample_of_frame.capacity())
                * std::mem::size_of::<u32>()
            + nal_units(&self.sps)
            + nal_units(&self.pps)
            + self.spans.heap_bytes()
    }

    /// Presentation time of frame `frame`, in seconds.
    pub fn pts_s(&self, frame: u64) -> f64 {
        self.sample_of_frame.get(frame as usize).map_or(0.0, |&s| {
            self.ticks_to_s(self.samples[s as usize].pts_ticks)
        })
    }

    fn ticks_to_s(&self, ticks: i64) -> f64 {
        ticks as f64 / f64::from(self.timescale)
    }

    pub fn frame_of_sample(&self, sample: u32) -> u64 {
        u64::from(self.frame_of_sample[sample as usize])
    }

    pub fn sample_of_frame(&self, frame: u64) -> u32 {
        self.sample_of_frame[frame as usize]
    }

    pub fn is_keyframe_start(&self, frame: u64) -> bool {
        let s = self.sample_of_frame(frame) as usize;
        self.samples[s].keyframe
    }

    pub fn info(&self) -> VideoInfo {
        let frames = self.frames();
        let duration_s = match (self.samples.first(), frames) {
            (Some(_), n) if n > 1 => {
                let first = self.pts_s(0);
                let last = self.pts_s(n - 1);
                // One more frame interval past the last frame's start.
                (last - first) * n as f64 / (n - 1) as f64
            }
            _ => 0.0,
        };
        Self::info_from(self, duration_s)
    }

    fn info_from(&self, duration_s: f64) -> VideoInfo {
        let frames = self.frames();
        let (width, height) = self.display_size();
        VideoInfo {
            width,
            height,
            rotation_deg: self.rotation.degrees(),
            frames,
            duration_s,
            fps: if duration_s > 0.0 {
                frames as f64 / duration_s
            } else {
                0.0
            },
            keyframes: self.samples.iter().filter(|s| s.keyframe).count() as u64,
        }
    }
}

/// Samples (decode order) per block of [`SpanIndex`].
const SPAN_BLOCK: usize = 64;

/// What a decode span needs, found in time independent of the GOP's
/// length: per block of [`SPAN_BLOCK`] samples the last keyframe at or
/// before its end, and a segment tree over the blocks' byte hulls (the
/// lowest offset and highest end of their samples). Scanning instead
/// made planning a one-keyframe video quadratic in its frames (each
/// chunk walked back to frame 0); this costs about one byte per sample.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanIndex {
    /// Per block, the last keyframe at or before its last sample
    /// (`u32::MAX`: none).
    keyframe_by_block: Vec<u32>,
    /// Hulls `(start, end)`; node 1 is the root, leaf `i` is node
    /// `leaves + i`, empty leaves are `(u64::MAX, 0)`.
    hulls: Vec<(u64, u64)>,
    leaves: usize,
    /// Samples indexed, to notice a table changed after.
    samples: usize,
}

const EMPTY_HULL: (u64, u64) = (u64::MAX, 0);

fn merge(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
    (a.0.min(b.0), a.1.max(b.1))
}

fn hull_of(samples: &[Sample]) -> (u64, u64) {
    samples.iter().fold(EMPTY_HULL, |acc, s| {
        merge(acc, (s.offset, s.offset.saturating_add(u64::from(s.size))))
    })
}

impl SpanIndex {
    pub(crate) fn new(samples: &[Sample]) -> Self {
        let blocks = samples.len().div_ceil(SPAN_BLOCK);
        let leaves = blocks.next_power_of_two();
        let mut hulls = vec![EMPTY_HULL; 2 * leaves];
        let mut keyframe_by_block = Vec::with_capacity(blocks);
        let mut last_keyframe = u32::MAX;
        for (b, block) in samples.chunks(SPAN_BLOCK).enumerate() {
            for (i, sample) in block.iter().enumerate() {
                if sample.keyframe {
                    last_keyframe = (b * SPAN_BLOCK + i) as u32;
                }
            }
            keyframe_by_block.push(last_keyframe);
            hulls[leaves + b] = hull_of(block);
        }
        for node in (1..leaves).rev() {
            hulls[node] = merge(hulls[2 * node], hulls[2 * node + 1]);
        }
        Self {
            keyframe_by_block,
            hulls,
            leaves,
            samples: samples.len(),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.keyframe_by_block.capacity() * std::mem::size_of::<u32>()
            + self.hulls.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// The last keyframe at or before sample `s` (0 if none).
    pub(crate) fn keyframe_at_or_before(&self, samples: &[Sample], s: usize) -> usize {
        if samples.is_empty() {
            return 0;
        }
        let s = s.min(samples.len() - 1);
        let block_start = s - s % SPAN_BLOCK;
        if let Some(k) = (block_start..=s).rev().find(|&i| samples[i].keyframe) {
            return k;
        }
        let indexed = self.samples == samples.len();
        match (block_start / SPAN_BLOCK).checked_sub(1) {
            Some(previous) if indexed => match self.keyframe_by_block[previous] {
                u32::MAX => 0,
                k => k as usize,
            },
            Some(_) => (0..block_start)
                .rev()
                .find(|&i| samples[i].keyframe)
                .unwrap_or(0),
            None => 0,
        }
    }

    /// The byte hull of samples `first..=last`.
    pub(crate) fn hull(&self, samples: &[Sample], first: usize, last: usize) -> (u64, u64) {
        let last = last.min(samples.len().saturating_sub(1));
        if first > last {
            return (0, 0);
        }
        let (b_first, b_last) = (first / SPAN_BLOCK, last / SPAN_BLOCK);
        let hull = if self.samples != samples.len() || b_last - b_first < 2 {
            hull_of(&samples[first..=last])
        } else {
            let head = hull_of(&samples[first..(b_first + 1) * SPAN_BLOCK]);
            let tail = hull_of(&samples[b_last * SPAN_BLOCK..=last]);
            merge(merge(head, tail), self.blocks_hull(b_first + 1, b_last))
        };
        if hull == EMPTY_HULL { (0, 0) } else { hull }
    }

    /// The hull of blocks `from..to`.
    fn blocks_hull(&self, from: usize, to: usize) -> (u64, u64) {
        let (mut l, mut r) = (from + self.leaves, to + self.leaves);
        let mut acc = EMPTY_HULL;
        while l < r {
            if l & 1 == 1 {
                acc = merge(acc, self.hulls[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                acc = merge(acc, self.hulls[r]);
            }
            l >>= 1;
            r >>= 1;
        }
        acc
    }
}

/// Bytes the MP4 parser may read again beyond those it read for the first
/// time.
const REREAD_SLACK_BYTES: u64 = 64 * 1024;

/// The MP4 parser's reader, with its work bounded. mp4 0.14 reads each
/// header byte once, apart from short look-backs (a QuickTime `meta`);
/// but a box inside a container whose size field is 0 sends it back to
/// that box's start, to read the same header forever. Here bytes read
/// again count against a budget (as many as were read for the first time,
/// plus a slack), and once it is spent every read fails: the loop ends as
/// an error, after work proportional to the header. (Bounded by the
/// furthest offset read instead, a `moov` after a large `mdat` had a
/// budget of the file's size: 164 s of seeks and reads on a 1 GB file.)
struct RereadBudget<R> {
    inner: R,
    pos: u64,
    furthest: u64,
    fresh: u64,
    reread: u64,
}

impl<R: Seek> RereadBudget<R> {
    fn new(mut inner: R) -> Self {
        let pos = inner.stream_position().unwrap_or(0);
        Self {
            inner,
            pos,
            furthest: pos,
            fresh: 0,
            reread: 0,
        }
    }
}

impl<R> RereadBudget<R> {
    fn spent(&self) -> bool {
        self.reread > self.fresh.saturating_add(REREAD_SLACK_BYTES)
    }
}

impl<R: Read> Read for RereadBudget<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.spent() {
            // The parser's error is this message (`VideoError::NotMp4`).
            return Err(std::io::Error::other(format!(
                "the header makes the MP4 parser read the same bytes over and over \
                 (a box of size 0 inside another?): stopped after {} bytes read again",
                self.reread
            )));
        }
        let n = self.inner.read(buf)?;
        let end = self.pos + n as u64;
        self.reread += end.min(self.furthest).saturating_sub(self.pos);
        self.fresh += end.saturating_sub(self.pos.max(self.furthest));
        self.furthest = self.furthest.max(end);
        self.pos = end;
        Ok(n)
    }
}

impl<R: Seek> Seek for RereadBudget<R> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// Expands the compact MP4 tables (stsz, stco/co64, stsc, stts, ctts, stss,
/// elst) into one entry per sample.
fn sample_table(track: &mp4::Mp4Track, limits: &VideoLimits) -> Result<Vec<Sample>, VideoError> {
    let trak = &track.trak;
    let stbl = &trak.mdia.minf.stbl;
    let bad = |s: &str| VideoError::SampleTable(s.to_string());
    let count = stbl.stsz.sample_count as usize;
    let size_of = |i: usize| -> Result<u32, VideoError> {
        if stbl.stsz.sample_size != 0 {
            Ok(stbl.stsz.sample_size)
        } else {
            stbl.stsz
                .sample_sizes
                .get(i)
                .copied()
                .ok_or_else(|| bad("stsz has fewer sizes than samples"))
        }
    };
    let chunk_offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, Some(co64)) => co64.entries.clone(),
        (None, None) => return Err(bad("no chunk offsets (stco/co64)")),
    };

    // Offsets: walk chunks, each holding samples_per_chunk samples per stsc.
    let mut samples = Vec::with_capacity(count);
    let stsc = &stbl.stsc.entries;
    for (e, entry) in stsc.iter().enumerate() {
        let first = entry.first_chunk as usize;
        let last = stsc
            .get(e + 1)
            .map_or(chunk_offsets.len() + 1, |n| n.first_chunk as usize);
        if first == 0 || last < first {
            return Err(bad("stsc chunk numbers out of order"));
        }
        for chunk in first..last {
            let mut offset = *chunk_offsets
                .get(chunk - 1)
                .ok_or_else(|| bad("stsc refers to a missing chunk"))?;
            for _ in 0..entry.samples_per_chunk {
                if samples.len() == count {
                    break;
                }
                let size = size_of(samples.len())?;
                if u64::from(size) > limits.max_sample_bytes {
                    return Err(VideoError::SampleTooLarge {
                        sample: samples.len() as u32,
                        bytes: u64::from(size),
                        max_bytes: limits.max_sample_bytes,
                    });
                }
                samples.push(Sample {
                    offset,
                    size,
                    pts_ticks: 0,
                    duration_ticks: 0,
                    keyframe: stbl.stss.is_none(),
                });
                offset = offset
                    .checked_add(u64::from(size))
                    .ok_or_else(|| bad("sample offset overflows"))?;
            }
        }
    }
    if samples.len() != count {
        return Err(bad("stsc describes fewer samples than stsz"));
    }

    // Decode times (stts) plus composition offsets (ctts).
    let mut dts: i64 = 0;
    let mut i = 0usize;
    for entry in &stbl.stts.entries {
        for _ in 0..entry.sample_count {
            if i == count {
                break;
            }
            samples[i].pts_ticks = dts;
            samples[i].duration_ticks = entry.sample_delta;
            dts = dts.saturating_add(i64::from(entry.sample_delta));
            i += 1;
        }
    }
    if i != count {
        return Err(bad("stts describes fewer samples than stsz"));
    }
    if let Some(ctts) = &stbl.ctts {
        let mut i = 0usize;
        'outer: for entry in &ctts.entries {
            for _ in 0..entry.sample_count {
                if i == count {
                    break 'outer;
                }
                samples[i].pts_ticks = samples[i]
                    .pts_ticks
                    .saturating_add(i64::from(entry.sample_offset));
                i += 1;
            }
        }
    }
    // The edit list's media_time is where presentation starts (encoders
    // with B-frames delay it by the reorder depth): frame 0 is at 0 s.
    let shift = trak
        .edts
        .as_ref()
        .and_then(|e| e.elst.as_ref())
        .and_then(|l| {
            l.entries
                .iter()
                .find(|e| e.media_time != u64::MAX && e.media_time != u64::from(u32::MAX))
        })
        .map_or(0, |e| e.media_time as i64);
    for s in &mut samples {
        s.pts_ticks = s.pts_ticks.saturating_sub(shift);
    }
    if let Some(stss) = &stbl.stss {
        for &n in &stss.entries {
            if let Some(s) = (n as usize).checked_sub(1).and_then(|i| samples.get_mut(i)) {
                s.keyframe = true;
            }
        }
    }
    if samples.first().is_some_and(|s| !s.keyframe) {
        return Err(bad("the first sample is not a keyframe"));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples with offsets out of order and keyframes far apart, from a
    /// fixed pseudo-random sequence.
    fn samples(n: usize) -> Vec<Sample> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|i| Sample {
                offset: next() % 1_000_000,
                size: (next() % 5000) as u32,
                pts_ticks: i as i64,
                duration_ticks: 1,
                keyframe: i == 0 || next() % 300 == 0,
            })
            .collect()
    }

    #[test]
    fn span_lookups_equal_a_scan() {
        for n in [1, 2, 63, 64, 65, 200, 1000, 4097] {
            let samples = samples(n);
            let spans = SpanIndex::new(&samples);
            for first in (0..n).step_by(7).chain([n - 1]) {
                let keyframe = (0..=first).rev().find(|&i| samples[i].keyframe).unwrap();
                assert_eq!(spans.keyframe_at_or_before(&samples, first), keyframe);
                for last in (first..n).step_by(13).chain([n - 1]) {
                    assert_eq!(
                        spans.hull(&samples, first, last),
                        hull_of(&samples[first..=last]),
                        "n {n}, samples {first}..={last}"
                    );
                }
            }
            // A table changed after indexing is scanned, not misread.
            let mut changed = samples.clone();
            changed.truncate(n.div_ceil(2));
            let last = changed.len() - 1;
            assert_eq!(spans.hull(&changed, 0, last), hull_of(&changed));
        }
    }
}
