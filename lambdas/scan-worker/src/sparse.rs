//! An MP4 file seen through the few byte ranges its header needs: the
//! top-level box headers, `ftyp` and `moov`. The MP4 parser seeks over
//! `mdat`, so this is all it reads.

use std::io::{Read, Seek, SeekFrom};

use face_service::ServiceError;
use face_service::storage::ObjectStore;

/// The first read: covers `ftyp` and, for "fast start" files, `moov`.
const FIRST_READ_BYTES: u64 = 64 * 1024;
/// A header (`moov`) larger than this is refused (a 37 h video's sample
/// table is ~60 MB).
pub const MAX_HEADER_BOX_BYTES: u64 = 96 * 1024 * 1024;
/// Top-level boxes walked at most.
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// Byte regions of a file of `size` bytes; reading elsewhere is an error.
#[derive(Debug, Clone, Default)]
pub struct SparseFile {
    regions: Vec<(u64, Vec<u8>)>,
    size: u64,
    pos: u64,
}

impl SparseFile {
    pub fn size(&self) -> u64 {
        self.size
    }

    fn covers(&self, start: u64, len: u64) -> bool {
        self.regions
            .iter()
            .any(|(at, bytes)| *at <= start && start + len <= at + bytes.len() as u64)
    }

    fn slice(&self, start: u64, len: u64) -> Option<&[u8]> {
        self.regions.iter().find_map(|(at, bytes)| {
            (*at <= start && start + len <= at + bytes.len() as u64)
                .then(|| &bytes[(start - at) as usize..(start - at + len) as usize])
        })
    }
}

impl Read for SparseFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size {
            return Ok(0);
        }
        let (at, bytes) = self
            .regions
            .iter()
            .find(|(at, bytes)| *at <= self.pos && self.pos < at + bytes.len() as u64)
            .ok_or_else(|| {
                std::io::Error::other(format!("byte {} of the video was not fetched", self.pos))
            })?;
        let from = (self.pos - at) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SparseFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::other("seek before the start of the video"))?;
        self.pos = pos;
        Ok(pos)
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> ServiceError {
    ServiceError::BadRequest(format!("{key}: not a usable MP4: {why}"))
}

/// Fetches what the MP4 parser needs of `key`: each top-level box header,
/// and all of `ftyp` and `moov`.
pub async fn fetch_header<O: ObjectStore>(
    objects: &O,
    bucket: &str,
    key: &str,
) -> Result<SparseFile, ServiceError> {
    let first = objects.get_range(bucket, key, 0, FIRST_READ_BYTES).await?;
    let mut file = SparseFile {
        regions: vec![(0, first.bytes)],
        size: first.object_size,
        pos: 0,
    };
    let mut pos = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if pos + 8 > file.size {
            return Ok(file);
        }
        if !file.covers(pos, 16.min(file.size - pos)) {
            let end = (pos + 16).min(file.size);
            let read = objects.get_range(bucket, key, pos, end).await?;
            file.regions.push((pos, read.bytes));
        }
        let header = file
            .slice(pos, 8)
            .ok_or_else(|| bad(key, format!("box header at byte {pos} is cut short")))?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let size = match size32 {
            0 => file.size - pos,
            1 => {
                let large = file
                    .slice(pos + 8, 8)
                    .ok_or_else(|| bad(key, "64-bit box size is cut short"))?;
                u64::from_be_bytes(large.try_into().unwrap_or_default())
            }
            n => u64::from(n),
        };
        if size < 8 || pos + size > file.size {
            return Err(bad(
                key,
                format!(
                    "box {:?} of {size} bytes at {pos}",
                    String::from_utf8_lossy(&kind)
                ),
            ));
        }
        if matches!(&kind, b"ftyp" | b"moov") && !file.covers(pos, size) {
            if size > MAX_HEADER_BOX_BYTES {
                return Err(bad(
                    key,
                    format!("header box of {size} bytes, over {MAX_HEADER_BOX_BYTES}"),
                ));
            }
            let read = objects.get_range(bucket, key, pos, pos + size).await?;
            file.regions.push((pos, read.bytes));
        }
        pos += size;
    }
    Err(bad(
        key,
        format!("more than {MAX_TOP_LEVEL_BOXES} top-level boxes"),
    ))
}
