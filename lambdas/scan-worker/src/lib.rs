//! The scan worker: one chunk (a frame range) of a video in S3, scanned for
//! the people of a collection.
//!
//! Nothing is extracted ahead of time: the worker reads the MP4 header
//! (`ftyp` + `moov`, found by walking the top-level box headers with
//! 16-byte ranged GETs, within a budget checked before they are fetched;
//! `mdat` is never read) and then only the compressed bytes of its chunk,
//! and decodes H.264 itself. Compared with splitting the video into JPEG
//! frames first (the CSE546 frame extractor), no frame is encoded twice and
//! S3 holds no copies: a 75-frame chunk of 1080p H.264 is a few MB instead
//! of ~75 JPEGs.

pub mod handler;
pub mod indexes;
pub mod jobs;
pub mod sparse;

pub use face_video::ScanChunkRequest;
pub use handler::ScanWorker;
