//! An MP4 file seen through the few byte ranges its index needs: the
//! top-level box headers (16-byte ranged GETs), then `ftyp` and `moov`
//! whole. `mdat` is never read: the MP4 parser seeks over it. What the
//! header boxes add up to is checked against a budget before any of them
//! is downloaded.

use std::io::{Read, Seek, SeekFrom};

use face_service::ServiceError;
use face_service::StorageError;
use face_service::storage::{ObjectStore, RangeRead};
use thiserror::Error;

/// One read per top-level box header: its size, type and a 64-bit size.
pub const BOX_HEADER_READ_BYTES: u64 = 16;
/// The header boxes (`ftyp` + `moov` + `emsg`) of one video together: the
/// sample table of `VideoLimits::max_frames` (4M frames, 37 h at 30 fps)
/// is ~60 MB.
pub const MAX_HEADER_BYTES: u64 = 96 * 1024 * 1024;
/// Top-level boxes walked at most (a plain MP4 has 3-5).
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// Why a video's header could not be fetched.
#[derive(Debug, Error)]
pub enum HeaderError {
    #[error(
        "{key}: the MP4 header boxes (ftyp, moov) are {header_bytes} bytes, over the budget of {budget_bytes}"
    )]
    OverBudget {
        key: String,
        header_bytes: u64,
        budget_bytes: u64,
    },
    #[error("{key}: not a usable MP4: {why}")]
    Malformed { key: String, why: String },
    /// Overwritten between two reads: the ranges would mix two videos.
    #[error("{key} changed while its header was read (ETag {before} then {after}): retry")]
    Changed {
        key: String,
        before: String,
        after: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<HeaderError> for ServiceError {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::OverBudget { .. } | HeaderError::Malformed { .. } => {
                ServiceError::BadRequest(error.to_string())
            }
            HeaderError::Changed { .. } => ServiceError::Storage(StorageError::Transient {
                operation: "s3:GetObject".into(),
                message: error.to_string(),
            }),
            HeaderError::Storage(e) => ServiceError::Storage(e),
        }
    }
}

/// Byte regions of a file of `size` bytes; reading elsewhere is an error.
#[derive(Debug, Clone, Default)]
pub struct SparseFile {
    regions: Vec<(u64, Vec<u8>)>,
    size: u64,
    pos: u64,
    etag: Option<String>,
}

impl SparseFile {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The ETag every region was read at (S3 always sends one).
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Bytes held: what was downloaded.
    pub fn fetched_bytes(&self) -> u64 {
        self.regions.iter().map(|(_, b)| b.len() as u64).sum()
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

/// Reads bytes `[start, end)` of `key` (of `version_id` when given),
/// refusing a read of another version than the first one's.
struct Reader<'a, O> {
    objects: &'a O,
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    file: SparseFile,
}

impl<O: ObjectStore> Reader<'_, O> {
    async fn read(&mut self, start: u64, end: u64) -> Result<(), HeaderError> {
        let read = self
            .objects
            .get_range(self.bucket, self.key, self.version_id, start, end)
            .await?;
        if read.etag != self.file.etag || read.object_size != self.file.size {
            return Err(HeaderError::Changed {
                key: self.key.into(),
                before: self.file.etag.clone().unwrap_or_default(),
                after: read.etag.unwrap_or_default(),
            });
        }
        self.file.regions.push((start, read.bytes));
        Ok(())
    }

    fn malformed(&self, why: impl Into<String>) -> HeaderError {
        HeaderError::Malformed {
            key: self.key.into(),
            why: why.into(),
        }
    }
}

/// The first read of a video (of `version_id` when given, else the
/// current one): its first box header, and the size and ETag every later
/// read must match (the index cache's key).
pub async fn first_read<O: ObjectStore>(
    objects: &O,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<RangeRead, HeaderError> {
    Ok(objects
        .get_range(bucket, key, version_id, 0, BOX_HEADER_READ_BYTES)
        .await?)
}

/// Fetches what the MP4 parser needs of `key`, given its [`first_read`]:
/// every top-level box header, then all of `ftyp`, `moov` and `emsg` (the
/// boxes the parser reads), only once their sizes together are within
/// `budget_bytes`.
pub async fn fetch_header<O: ObjectStore>(
    objects: &O,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    first: RangeRead,
    budget_bytes: u64,
) -> Result<SparseFile, HeaderError> {
    let mut reader = Reader {
        objects,
        bucket,
        key,
        version_id,
        file: SparseFile {
            regions: vec![(0, first.bytes)],
            size: first.object_size,
            pos: 0,
            etag: first.etag,
        },
    };
    let size = reader.file.size;
    let mut wanted: Vec<(u64, u64)> = Vec::new();
    let mut header_bytes = 0u64;
    let mut pos = 0u64;
    let mut boxes = 0usize;
    // The parser stops at fewer than 8 bytes left.
    while pos + 8 <= size {
        boxes += 1;
        if boxes > MAX_TOP_LEVEL_BOXES {
            return Err(
                reader.malformed(format!("more than {MAX_TOP_LEVEL_BOXES} top-level boxes"))
            );
        }
        if reader.file.slice(pos, 8).is_none() {
            reader
                .read(pos, (pos + BOX_HEADER_READ_BYTES).min(size))
                .await?;
        }
        let header = reader
            .file
            .slice(pos, 8)
            .ok_or_else(|| reader.malformed(format!("box header at byte {pos} is cut short")))?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let box_size = match size32 {
            0 => size - pos,
            1 => {
                if reader.file.slice(pos + 8, 8).is_none() && pos + 16 <= size {
                    reader.read(pos, pos + BOX_HEADER_READ_BYTES).await?;
                }
                let large = reader
                    .file
                    .slice(pos + 8, 8)
                    .ok_or_else(|| reader.malformed("64-bit box size is cut short"))?;
                let mut be = [0u8; 8];
                be.copy_from_slice(large);
                u64::from_be_bytes(be)
            }
            n => u64::from(n),
        };
        let name = String::from_utf8_lossy(&kind).into_owned();
        if box_size < 8 || box_size > size - pos {
            return Err(reader.malformed(format!("box {name:?} of {box_size} bytes at {pos}")));
        }
        match &kind {
            b"ftyp" | b"moov" | b"emsg" => {
                header_bytes += box_size;
                // Before anything is downloaded: the sizes come from headers.
                if header_bytes > budget_bytes {
                    return Err(HeaderError::OverBudget {
                        key: key.into(),
                        header_bytes,
                        budget_bytes,
                    });
                }
                wanted.push((pos, pos + box_size));
            }
            // The index refuses fragmented MP4 anyway: say so without
            // fetching its fragments.
            b"moof" => return Err(reader.malformed("fragmented MP4 (moof) is not supported")),
            _ => {}
        }
        pos += box_size;
    }
    // Adjacent boxes (a "fast start" ftyp + moov) in one request.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (start, end) in wanted {
        match ranges.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => ranges.push((start, end)),
        }
    }
    for (start, end) in ranges {
        if reader.file.slice(start, end - start).is_none() {
            reader.read(start, end).await?;
        }
    }
    Ok(reader.file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fetched_regions_can_be_read() {
        let mut file = SparseFile {
            regions: vec![(0, vec![1, 2, 3, 4]), (10, vec![5, 6])],
            size: 12,
            pos: 0,
            etag: None,
        };
        let mut buf = [0u8; 4];
        file.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        file.seek(SeekFrom::Start(10)).unwrap();
        let mut two = [0u8; 2];
        file.read_exact(&mut two).unwrap();
        assert_eq!(two, [5, 6]);
        file.seek(SeekFrom::Start(5)).unwrap();
        assert!(file.read(&mut two).is_err(), "byte 5 was never fetched");
        assert_eq!(file.fetched_bytes(), 6);
    }
}
