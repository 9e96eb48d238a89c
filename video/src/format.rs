//! What the `mp4` crate leaves out but a scan needs to know before it
//! decodes anything: how the track is meant to be displayed (a phone's
//! portrait video is stored sideways with a rotation in its header), which
//! codec a track we cannot decode uses (the crate drops sample entries it
//! does not model, such as Apple's `hvc1`), and whether an H.264 stream is
//! in a format OpenH264 decodes (8-bit 4:2:0 only).

use std::io::{Cursor, Read, Seek, SeekFrom};

use face_core::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::VideoError;

/// The clockwise rotation that turns a stored frame upright, from the
/// track header's display matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Rotation {
    #[default]
    None,
    Clockwise90,
    Half,
    Clockwise270,
}

/// 1.0 in the matrix's 16.16 fixed point.
const ONE: i32 = 1 << 16;

impl Rotation {
    /// Reads the `a b c d` part of a `tkhd` matrix (16.16 fixed point). Only
    /// the four right-angle rotations are recognized; a mirror, a scale or
    /// any other angle is displayed as stored (phones write only these four).
    pub fn from_matrix(a: i32, b: i32, c: i32, d: i32) -> Self {
        match (a, b, c, d) {
            (0, ONE, x, 0) if x == -ONE => Rotation::Clockwise90,
            (x, 0, 0, y) if x == -ONE && y == -ONE => Rotation::Half,
            (0, x, ONE, 0) if x == -ONE => Rotation::Clockwise270,
            _ => Rotation::None,
        }
    }

    pub fn degrees(self) -> u16 {
        match self {
            Rotation::None => 0,
            Rotation::Clockwise90 => 90,
            Rotation::Half => 180,
            Rotation::Clockwise270 => 270,
        }
    }

    /// The matrix `from_matrix` reads as this rotation (for writers).
    pub fn matrix(self) -> [i32; 4] {
        match self {
            Rotation::None => [ONE, 0, 0, ONE],
            Rotation::Clockwise90 => [0, ONE, -ONE, 0],
            Rotation::Half => [-ONE, 0, 0, -ONE],
            Rotation::Clockwise270 => [0, -ONE, ONE, 0],
        }
    }

    /// Whether width and height trade places on display.
    pub fn swaps_axes(self) -> bool {
        matches!(self, Rotation::Clockwise90 | Rotation::Clockwise270)
    }

    /// The stored `(width, height)` as displayed.
    pub fn display_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Turns a stored frame upright.
    pub fn apply(self, image: RgbImage) -> RgbImage {
        match self {
            Rotation::None => image,
            Rotation::Clockwise90 => image::imageops::rotate90(&image),
            Rotation::Half => image::imageops::rotate180(&image),
            Rotation::Clockwise270 => image::imageops::rotate270(&image),
        }
    }
}

/// The codec a sample entry's four-character code names, for the error a
/// user reads ("H.265/HEVC is not supported").
pub fn codec_name(fourcc: [u8; 4]) -> String {
    match &fourcc {
        b"hvc1" | b"hev1" | b"dvh1" | b"dvhe" => "H.265/HEVC".into(),
        b"avc3" | b"avc4" => "H.264 with in-band parameter sets (avc3)".into(),
        b"vp08" => "VP8".into(),
        b"vp09" => "VP9".into(),
        b"av01" => "AV1".into(),
        b"mp4v" => "MPEG-4 Part 2".into(),
        b"jpeg" | b"mjpa" | b"mjpb" => "Motion JPEG".into(),
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "Apple ProRes".into(),
        b"encv" => "encrypted video".into(),
        other if other.iter().all(|c| c.is_ascii_graphic() || *c == b' ') => {
            format!("'{}'", String::from_utf8_lossy(other))
        }
        _ => "an unknown codec".into(),
    }
}

/// Box nesting deeper than a real file's is not followed.
const MAX_BOXES: usize = 10_000;

/// The largest box of the header outside the sample tables (`stbl`'s):
/// names, handlers, edit lists, user data and metadata, cover art included,
/// are far smaller in real files.
pub const MAX_HEADER_LEAF_BYTES: u64 = 16 << 20;

/// The boxes under `moov` that hold only boxes, as the `mp4` crate reads
/// them (`meta`, `dref` and `ilst` are handled apart; `stbl`'s tables are
/// read by their entry counts, and are not checked).
const CONTAINERS: [&[u8; 4]; 8] = [
    b"moov", b"trak", b"edts", b"mdia", b"minf", b"dinf", b"udta", b"mvex",
];

/// Checks the boxes of every `moov` of a file of `size` bytes before the
/// `mp4` crate parses it: each one outside the sample tables that holds
/// data must end within the file and be at most [`MAX_HEADER_LEAF_BYTES`].
/// The crate sizes some buffers by such a box's declared size alone (each
/// child of a `meta` box it does not model: one declaring 2^48 bytes
/// aborted the process on the failed allocation, which no `catch_unwind`
/// stops). Boxes running past their parent's end are left to the crate,
/// which reads such files. Top-level boxes are only followed to find
/// `moov`. Leaves the reader where it found it.
pub fn check_header_boxes<R: Read + Seek>(reader: &mut R, size: u64) -> Result<(), String> {
    let position = |e: std::io::Error| format!("the file's position: {e}");
    let start = reader.stream_position().map_err(position)?;
    let mut budget = MAX_BOXES;
    let mut at = 0;
    let mut checked = Ok(());
    while at < size && checked.is_ok() && budget > 0 {
        budget -= 1;
        let Some((payload, end, fourcc)) = header(reader, at, size) else {
            break;
        };
        if &fourcc == b"moov" {
            checked = check_children(reader, (payload, end), size, false, &mut budget);
        }
        at = end;
    }
    reader.seek(SeekFrom::Start(start)).map_err(position)?;
    checked
}

/// The boxes in `at..end` of a file of `file` bytes, and theirs; `leaves`:
/// they all hold data (the items of an `ilst`).
fn check_children<R: Read + Seek>(
    reader: &mut R,
    (mut at, end): (u64, u64),
    file: u64,
    leaves: bool,
    budget: &mut usize,
) -> Result<(), String> {
    // Fewer than 8 bytes left is no box (QuickTime ends some lists with a
    // 32-bit zero).
    while end.saturating_sub(at) >= 8 {
        *budget = budget
            .checked_sub(1)
            .ok_or("too many boxes in the header")?;
        let (payload, box_end, fourcc) = child_header(reader, at, end)?;
        // Inside the file: the crate reads no further than the file.
        let inside = (payload.min(file), box_end.min(file));
        let is_container = CONTAINERS.contains(&&fourcc) && !leaves;
        match &fourcc {
            _ if is_container => check_children(reader, inside, file, false, budget)?,
            b"stbl" if !leaves => {}
            b"ilst" if !leaves => {
                // Items (`©nam`, `covr`, ...), each a box of data boxes.
                let mut item = inside.0;
                while inside.1.saturating_sub(item) >= 8 {
                    *budget = budget
                        .checked_sub(1)
                        .ok_or("too many boxes in the header")?;
                    let (payload, item_end, _) = child_header(reader, item, inside.1)?;
                    let data = (payload.min(file), item_end.min(file));
                    check_children(reader, data, file, true, budget)?;
                    item = item_end;
                }
            }
            b"meta" if !leaves => {
                if let Some(first) = meta_children(reader, inside.0, inside.1) {
                    check_children(reader, (first, inside.1), file, false, budget)?;
                }
            }
            // Version and flags, then the entry count, then the entries.
            b"dref" if !leaves && inside.1.saturating_sub(inside.0) >= 8 => {
                check_children(reader, (inside.0 + 8, inside.1), file, false, budget)?
            }
            _ => {
                let name = String::from_utf8_lossy(&fourcc);
                let bytes = box_end - at;
                if box_end > file {
                    return Err(format!(
                        "a '{name}' box at byte {at} declares {bytes} bytes: \
                         past the end of the file ({file} bytes)"
                    ));
                }
                if bytes > MAX_HEADER_LEAF_BYTES {
                    return Err(format!(
                        "a '{name}' box of {bytes} bytes in the header, \
                         over the limit of {MAX_HEADER_LEAF_BYTES}"
                    ));
                }
            }
        }
        at = box_end;
    }
    Ok(())
}

/// Where a `meta` box's children start: after its version and flags (ISO),
/// or at once where its first child is `hdlr` (QuickTime, as the crate
/// reads it); `None` for anything else, which the crate refuses.
fn meta_children<R: Read + Seek>(reader: &mut R, payload: u64, end: u64) -> Option<u64> {
    if end.checked_sub(payload)? < 8 {
        return None;
    }
    let mut head = [0u8; 8];
    reader.seek(SeekFrom::Start(payload)).ok()?;
    reader.read_exact(&mut head).ok()?;
    if head[..4] == [0; 4] {
        Some(payload + 4)
    } else {
        (&head[4..] == b"hdlr").then_some(payload)
    }
}

/// A box header at `at`, with at least 8 bytes left before its parent's
/// `end`: (payload start, box end, type). A size of 0, 32-bit or 64-bit,
/// runs to the parent's end, as the crate reads it; the box end is past
/// its start.
fn child_header<R: Read + Seek>(
    reader: &mut R,
    at: u64,
    end: u64,
) -> Result<(u64, u64, [u8; 4]), String> {
    let unreadable = |e: std::io::Error| format!("the box header at byte {at}: {e}");
    let mut head = [0u8; 8];
    reader.seek(SeekFrom::Start(at)).map_err(unreadable)?;
    reader.read_exact(&mut head).map_err(unreadable)?;
    let fourcc = [head[4], head[5], head[6], head[7]];
    let (payload, size) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (at + 8, end - at),
        1 if end - at >= 16 => {
            let mut large = [0u8; 8];
            reader.read_exact(&mut large).map_err(unreadable)?;
            match u64::from_be_bytes(large) {
                0 => (at + 16, end - at),
                large => (at + 16, large),
            }
        }
        n => (at + 8, u64::from(n)),
    };
    let box_end = at
        .checked_add(size.max(1))
        .ok_or_else(|| format!("a box at byte {at} declares {size} bytes"))?;
    Ok((payload.min(box_end), box_end, fourcc))
}

/// The four-character code of the first sample entry of track `track_id`,
/// found by walking `moov/trak/{tkhd, mdia/minf/stbl/stsd}`. `None` when
/// the header does not lead there (the caller already parsed it once, so
/// this only names what the `mp4` crate skipped).
pub fn sample_entry_type<R: Read + Seek>(
    reader: &mut R,
    size: u64,
    track_id: u32,
) -> Option<[u8; 4]> {
    let mut budget = MAX_BOXES;
    let moov = child(reader, 0, size, b"moov", &mut budget)?;
    let mut at = moov.0;
    while let Some((start, end)) = next_box(reader, at, moov.1, b"trak", &mut budget) {
        at = end;
        let tkhd = child(reader, start, end, b"tkhd", &mut budget)?;
        if track_id_of(reader, tkhd.0)? != track_id {
            continue;
        }
        let mut range = (start, end);
        for name in [b"mdia", b"minf", b"stbl", b"stsd"] {
            range = child(reader, range.0, range.1, name, &mut budget)?;
        }
        // stsd: version+flags (4), entry count (4), then the first entry.
        let (_, _, fourcc) = header(reader, range.0 + 8, range.1)?;
        return Some(fourcc);
    }
    None
}

fn track_id_of<R: Read + Seek>(reader: &mut R, tkhd: u64) -> Option<u32> {
    let mut version = [0u8; 1];
    reader.seek(SeekFrom::Start(tkhd)).ok()?;
    reader.read_exact(&mut version).ok()?;
    // version+flags (4), creation and modification times (4 or 8 each).
    let skip = if version[0] == 1 { 4 + 16 } else { 4 + 8 };
    let mut id = [0u8; 4];
    reader.seek(SeekFrom::Start(tkhd + skip)).ok()?;
    reader.read_exact(&mut id).ok()?;
    Some(u32::from_be_bytes(id))
}

/// The payload range of the first box named `name` in `start..end`.
fn child<R: Read + Seek>(
    reader: &mut R,
    start: u64,
    end: u64,
    name: &[u8; 4],
    budget: &mut usize,
) -> Option<(u64, u64)> {
    next_box(reader, start, end, name, budget)
}

fn next_box<R: Read + Seek>(
    reader: &mut R,
    mut at: u64,
    end: u64,
    name: &[u8; 4],
    budget: &mut usize,
) -> Option<(u64, u64)> {
    while at < end {
        *budget = budget.checked_sub(1)?;
        let (payload, box_end, fourcc) = header(reader, at, end)?;
        if &fourcc == name {
            return Some((payload, box_end));
        }
        at = box_end;
    }
    None
}

/// A box header at `at`: (payload start, box end, type). The box must fit
/// in `..end`.
fn header<R: Read + Seek>(reader: &mut R, at: u64, end: u64) -> Option<(u64, u64, [u8; 4])> {
    if end.checked_sub(at)? < 8 {
        return None;
    }
    let mut head = [0u8; 8];
    reader.seek(SeekFrom::Start(at)).ok()?;
    reader.read_exact(&mut head).ok()?;
    let fourcc = [head[4], head[5], head[6], head[7]];
    let (payload, size) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => (at + 8, end - at),
        1 => {
            let mut large = [0u8; 8];
            reader.read_exact(&mut large).ok()?;
            (at + 16, u64::from_be_bytes(large))
        }
        n => (at + 8, u64::from(n)),
    };
    let box_end = at.checked_add(size)?;
    (size >= payload - at && box_end <= end).then_some((payload, box_end, fourcc))
}

/// Marks every track of an MP4 held in memory to be displayed turned by
/// `rotation`, as a phone marks a portrait video: its frames stay as stored.
pub fn set_display_rotation(mp4: &mut [u8], rotation: Rotation) -> Result<(), VideoError> {
    let size = mp4.len() as u64;
    let mut reader = Cursor::new(&*mp4);
    let mut budget = MAX_BOXES;
    let no_moov = || VideoError::NotMp4("no moov box".into());
    let moov = child(&mut reader, 0, size, b"moov", &mut budget).ok_or_else(no_moov)?;
    let mut at = moov.0;
    let mut matrices = Vec::new();
    while let Some((start, end)) = next_box(&mut reader, at, moov.1, b"trak", &mut budget) {
        at = end;
        let Some((tkhd, tkhd_end)) = child(&mut reader, start, end, b"tkhd", &mut budget) else {
            continue;
        };
        // version+flags, times, track id, reserved, duration, reserved (8),
        // layer, group, volume, reserved (2 each): then the matrix.
        let version = mp4[tkhd as usize];
        let offset =
            tkhd + if version == 1 {
                4 + 16 + 8 + 8
            } else {
                4 + 8 + 8 + 4
            } + 16;
        if offset + 36 > tkhd_end {
            return Err(VideoError::NotMp4("tkhd box too short".into()));
        }
        matrices.push(offset as usize);
    }
    if matrices.is_empty() {
        return Err(VideoError::NoVideoTrack);
    }
    let [a, b, c, d] = rotation.matrix();
    for offset in matrices {
        // a b u / c d v: the u and v (2.30) and the translation stay.
        for (i, value) in [(0, a), (1, b), (3, c), (4, d)] {
            mp4[offset + 4 * i..offset + 4 * i + 4].copy_from_slice(&value.to_be_bytes());
        }
    }
    Ok(())
}

/// Refuses, with its name, an H.264 stream OpenH264 cannot decode: any
/// chroma format but 4:2:0 (monochrome, 4:2:2, 4:4:4) or more than 8 bits
/// per sample. Only the High profiles (100 and up) carry these fields;
/// the others are 8-bit 4:2:0 by definition.
pub fn check_sps(sps: &[u8]) -> Result<(), VideoError> {
    let unsupported = |what: String| VideoError::UnsupportedFormat(what);
    // NAL header (1 byte), profile_idc, constraint flags, level_idc.
    let Some(&profile_idc) = sps.get(1) else {
        return Err(VideoError::SampleTable("SPS too short".into()));
    };
    if !matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        return Ok(());
    }
    let rbsp = unescape(sps.get(4..).unwrap_or_default());
    let mut bits = Bits::new(&rbsp);
    let parse = || VideoError::SampleTable("SPS ends early".into());
    bits.ue().ok_or_else(parse)?; // seq_parameter_set_id
    let chroma_format_idc = bits.ue().ok_or_else(parse)?;
    if chroma_format_idc == 3 {
        bits.bit().ok_or_else(parse)?; // separate_colour_plane_flag
    }
    let bit_depth_luma = bits.ue().ok_or_else(parse)?.saturating_add(8);
    let bit_depth_chroma = bits.ue().ok_or_else(parse)?.saturating_add(8);
    match chroma_format_idc {
        1 => {}
        0 => return Err(unsupported("monochrome (4:0:0) H.264".into())),
        2 => return Err(unsupported("4:2:2 H.264".into())),
        3 => return Err(unsupported("4:4:4 H.264".into())),
        n => return Err(unsupported(format!("H.264 chroma format {n}"))),
    }
    if bit_depth_luma != 8 || (chroma_format_idc != 0 && bit_depth_chroma != 8) {
        return Err(unsupported(format!("{}-bit H.264", bit_depth_luma)));
    }
    Ok(())
}

/// Drops the emulation prevention bytes (00 00 03 -> 00 00).
fn unescape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut zeros = 0;
    for &b in bytes {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// An MSB-first bit reader with Exp-Golomb codes.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.bytes.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(bit))
    }

    /// ue(v): leading zeros, a one, as many bits again.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut value = 0u64;
        for _ in 0..zeros {
            value = (value << 1) | u64::from(self.bit()?);
        }
        u32::try_from((1u64 << zeros) - 1 + value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits MSB first, with Exp-Golomb codes, as an encoder would.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        len: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: u32) -> &mut Self {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b != 0 {
                *self.bytes.last_mut().unwrap() |= 0x80 >> (self.len % 8);
            }
            self.len += 1;
            self
        }

        fn ue(&mut self, v: u32) -> &mut Self {
            let code = u64::from(v) + 1;
            let n = 64 - code.leading_zeros();
            for _ in 1..n {
                self.bit(0);
            }
            for i in (0..n).rev() {
                self.bit(((code >> i) & 1) as u32);
            }
            self
        }
    }

    /// A High-profile SPS with the given chroma format and bit depth.
    fn high_sps(profile: u8, chroma: u32, bit_depth: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.ue(0).ue(chroma);
        if chroma == 3 {
            w.bit(0);
        }
        w.ue(bit_depth - 8).ue(bit_depth - 8).bit(0).bit(0);
        // frame_num, POC type 2, 1 ref, no gaps, 20x15 MBs, frame MBs only.
        w.ue(0)
            .ue(2)
            .ue(1)
            .bit(0)
            .ue(19)
            .ue(14)
            .bit(1)
            .bit(1)
            .bit(0)
            .bit(0);
        w.bit(1); // rbsp stop bit
        let mut sps = vec![0x67, profile, 0, 30];
        sps.extend(w.bytes);
        sps
    }

    /// A one-sample MP4 whose video track is described by `media`.
    fn mp4_with(media: mp4::MediaConfig) -> Vec<u8> {
        let config = mp4::Mp4Config {
            major_brand: (*b"isom").into(),
            minor_version: 512,
            compatible_brands: vec![(*b"isom").into()],
            timescale: 1000,
        };
        let mut writer = mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).unwrap();
        writer
            .add_track(&mp4::TrackConfig {
                track_type: mp4::TrackType::Video,
                timescale: 1000,
                language: "und".into(),
                media_conf: media,
            })
            .unwrap();
        let sample = mp4::Mp4Sample {
            start_time: 0,
            duration: 100,
            rendering_offset: 0,
            is_sync: true,
            bytes: mp4::Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        };
        writer.write_sample(1, &sample).unwrap();
        writer.write_end().unwrap();
        writer.into_writer().into_inner()
    }

    fn index_error(bytes: &[u8]) -> VideoError {
        crate::VideoIndex::from_bytes(bytes, &crate::VideoLimits::default()).unwrap_err()
    }

    #[test]
    fn other_codecs_are_refused_by_name() {
        let hevc = mp4_with(mp4::MediaConfig::HevcConfig(mp4::HevcConfig {
            width: 320,
            height: 240,
        }));
        let said = "H.265/HEVC is not supported (only H.264/AVC video is)";
        assert_eq!(index_error(&hevc).to_string(), said);
        // Apple's sample entry, which the mp4 crate does not model.
        let entry = hevc.windows(4).position(|w| w == b"hev1").unwrap();
        let mut apple = hevc.clone();
        apple[entry..entry + 4].copy_from_slice(b"hvc1");
        assert_eq!(index_error(&apple).to_string(), said);
        let mut av1 = hevc;
        av1[entry..entry + 4].copy_from_slice(b"av01");
        assert_eq!(
            index_error(&av1).to_string(),
            "AV1 is not supported (only H.264/AVC video is)"
        );
    }

    #[test]
    fn high_444_h264_is_refused_before_decoding() {
        let avc = |sps: Vec<u8>| {
            mp4_with(mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                width: 320,
                height: 240,
                seq_param_set: sps,
                pic_param_set: vec![0x68, 0xce, 0x38, 0x80],
            }))
        };
        assert_eq!(
            index_error(&avc(high_sps(244, 3, 8))).to_string(),
            "4:4:4 H.264 is not supported (only 8-bit 4:2:0 H.264 is)"
        );
        assert!(
            crate::VideoIndex::from_bytes(&avc(high_sps(100, 1, 8)), &Default::default()).is_ok()
        );
    }

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        for v in [0, 1, 2, 3, 7, 8, 255, 65_535] {
            w.ue(v);
        }
        let mut r = Bits::new(&w.bytes);
        for v in [0, 1, 2, 3, 7, 8, 255, 65_535] {
            assert_eq!(r.ue(), Some(v));
        }
    }

    #[test]
    fn only_8_bit_420_passes() {
        assert_eq!(check_sps(&high_sps(100, 1, 8)), Ok(()));
        // Baseline and Main have no chroma fields: 4:2:0 8-bit by definition.
        assert_eq!(check_sps(&[0x67, 66, 0xc0, 30, 0xf4]), Ok(()));
        for (profile, chroma, depth, said) in [
            (244, 3, 8, "4:4:4 H.264"),
            (100, 0, 8, "monochrome (4:0:0) H.264"),
            (122, 2, 8, "4:2:2 H.264"),
            (110, 1, 10, "10-bit H.264"),
        ] {
            let err = check_sps(&high_sps(profile, chroma, depth)).unwrap_err();
            assert_eq!(err, VideoError::UnsupportedFormat(said.into()));
            assert!(err.to_string().contains("is not supported"), "{err}");
        }
        // Truncated: an error, not a panic.
        assert!(check_sps(&[0x67, 100, 0, 30]).is_err());
        assert!(check_sps(&[0x67]).is_err());
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn right_angle_matrices_round_trip() {
        for r in [
            Rotation::None,
            Rotation::Clockwise90,
            Rotation::Half,
            Rotation::Clockwise270,
        ] {
            let [a, b, c, d] = r.matrix();
            assert_eq!(Rotation::from_matrix(a, b, c, d), r);
        }
        // A horizontal mirror is not a rotation: shown as stored.
        assert_eq!(Rotation::from_matrix(-ONE, 0, 0, ONE), Rotation::None);
    }

    #[test]
    fn rotation_turns_pixels_clockwise() {
        // 2x1: left red, right blue. Turned 90 clockwise: 1x2, red on top.
        let img = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        let turned = Rotation::Clockwise90.apply(img);
        assert_eq!(turned.dimensions(), (1, 2));
        assert_eq!(turned.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(Rotation::Clockwise90.display_size(640, 360), (360, 640));
    }

    #[test]
    fn codec_names_are_readable() {
        assert_eq!(codec_name(*b"hvc1"), "H.265/HEVC");
        assert_eq!(codec_name(*b"av01"), "AV1");
        assert_eq!(codec_name(*b"xyz1"), "'xyz1'");
        assert_eq!(codec_name([0, 1, 2, 3]), "an unknown codec");
    }
}
