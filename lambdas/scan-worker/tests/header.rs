//! The worker's header reads and index cache on in-memory S3, with every
//! ranged GET recorded: only box headers and the header boxes are read,
//! `mdat` never; a header over budget is refused before it is fetched; the
//! cache is bounded by bytes and never serves an overwritten video.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use face_service::memory::MemoryObjects;
use face_service::storage::{
    ListedObject, ObjectHead, ObjectStore, RangeRead, ReadPin, StoredObject,
};
use face_service::{ErrorKind, StorageError};
use face_video::VideoLimits;
use scan_worker::indexes::VideoIndexes;
use scan_worker::sparse::{self, HeaderError};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn video(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("FACE_DATA_DIR")
        .map_or_else(|| workspace().join("../shared/data"), PathBuf::from);
    std::fs::read(dir.join("video").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (set FACE_DATA_DIR)"))
}

/// Before ranged GET number `.0` (from 0), key `.1` gets bytes `.2`.
type Overwrite = (usize, String, Vec<u8>);

/// In-memory S3 that records every ranged GET, and can overwrite the
/// object just before a given one (a re-upload racing the worker).
#[derive(Debug, Default, Clone)]
struct Recording {
    inner: MemoryObjects,
    ranges: Arc<Mutex<Vec<(u64, u64)>>>,
    overwrite: Arc<Mutex<Option<Overwrite>>>,
    reads: Arc<AtomicUsize>,
}

impl Recording {
    /// Ranges requested since the last call.
    fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.ranges.lock().unwrap())
    }
}

fn requested(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(s, e)| e - s).sum()
}

#[async_trait]
impl ObjectStore for Recording {
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        self.inner.get(bucket, key, version_id, max_bytes).await
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<RangeRead, StorageError> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        let due = self
            .overwrite
            .lock()
            .unwrap()
            .take_if(|(at, _, _)| *at == n);
        if let Some((_, key, bytes)) = due {
            self.inner.insert(bucket, &key, bytes);
        }
        self.ranges.lock().unwrap().push((start, end));
        self.inner
            .get_range(bucket, key, version_id, start, end)
            .await
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.inner.put(bucket, key, bytes).await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectHead, StorageError> {
        self.inner.head(bucket, key).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.inner.delete(bucket, key).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.inner.list(bucket, prefix).await
    }
}

/// A box: 32-bit size, type, `payload_len` bytes of `fill`.
fn mp4_box(kind: &[u8; 4], payload_len: usize, fill: u8) -> Vec<u8> {
    let mut b = ((payload_len + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.resize(payload_len + 8, fill);
    b
}

fn indexes(cache_budget_bytes: usize) -> VideoIndexes {
    VideoIndexes::new(
        sparse::MAX_HEADER_BYTES,
        cache_budget_bytes,
        VideoLimits::default(),
    )
}

const BUCKET: &str = "data";

#[tokio::test]
async fn the_slideshow_index_reads_box_headers_and_header_boxes_only() {
    // ftyp 0..32, free 32..40, mdat 40..415684, moov 415684..417891.
    let store = Recording::default();
    store
        .inner
        .insert(BUCKET, "v.mp4", video("slideshow_shared.mp4"));
    let indexes = VideoIndexes::default();
    let read = indexes
        .get(&store, BUCKET, "v.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(read.index.frames(), 120);
    let ranges = store.take();
    assert!(
        ranges.iter().all(|&(s, e)| e <= 48 || s >= 415_684),
        "mdat's payload was requested: {ranges:?}"
    );
    // Three 16-byte box headers, then ftyp and moov whole (the reader
    // before this one took 67,759 bytes: a 64 KiB first read, mostly mdat).
    assert_eq!(
        ranges,
        [
            (0, 16),
            (32, 48),
            (415_684, 415_700),
            (0, 32),
            (415_684, 417_891)
        ]
    );
    assert_eq!(requested(&ranges), 2_287);

    // Cached: one box header read, for the ETag.
    let again = indexes
        .get(&store, BUCKET, "v.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&again.index, &read.index));
    assert_eq!(store.take(), [(0, 16)]);
}

#[tokio::test]
async fn a_header_over_budget_is_refused_before_it_is_read() {
    const BUDGET: u64 = 64 * 1024;
    let ftyp = mp4_box(b"ftyp", 16, 0);
    let mdat = mp4_box(b"mdat", 1 << 20, 0xAA);
    let store = Recording::default();
    let fetch = |store: Recording, key: &'static str| async move {
        let first = sparse::first_read(&store, BUCKET, key, None).await?;
        sparse::fetch_header(&store, BUCKET, key, None, first, BUDGET).await
    };

    // One moov over the budget; then two that are each under it but not
    // together: the budget is for the whole header.
    let big = [ftyp.clone(), mdat.clone(), mp4_box(b"moov", 200 << 10, 1)].concat();
    let split = [
        ftyp.clone(),
        mp4_box(b"moov", 40 << 10, 1),
        mdat.clone(),
        mp4_box(b"moov", 40 << 10, 1),
    ]
    .concat();
    for (key, bytes, header) in [
        ("big.mp4", big, 24 + (200 << 10) + 8),
        ("split.mp4", split, 24 + 2 * ((40 << 10) + 8)),
    ] {
        store.inner.insert(BUCKET, key, bytes);
        match fetch(store.clone(), key).await {
            Err(HeaderError::OverBudget {
                header_bytes,
                budget_bytes,
                ..
            }) => assert_eq!((header_bytes, budget_bytes), (header, BUDGET), "{key}"),
            other => panic!("{key}: {other:?}"),
        }
        let ranges = store.take();
        assert!(
            ranges.iter().all(|(s, e)| e - s <= 16) && ranges.len() <= 4,
            "{key}: only box headers may be read before the budget check: {ranges:?}"
        );
    }

    // Through the worker's indexes: bad input that names the budget.
    let err = VideoIndexes::new(BUDGET, 1 << 20, VideoLimits::default())
        .get(&store, BUCKET, "big.mp4", &ReadPin::Current)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadInput, "{err}");
    assert!(
        err.to_string().contains("over the budget of 65536"),
        "{err}"
    );
    assert!(requested(&store.take()) <= 48);

    // Within the budget: the header boxes and never mdat.
    let fits = [ftyp, mdat, mp4_box(b"moov", 1000, 1)].concat();
    store.inner.insert(BUCKET, "fits.mp4", fits);
    let file = fetch(store.clone(), "fits.mp4").await.unwrap();
    let ranges = store.take();
    // A 16-byte header read may take mdat's first 8 payload bytes, no more.
    let mdat_payload = 24 + 16..24 + 8 + (1 << 20);
    assert!(
        ranges
            .iter()
            .all(|&(s, e)| e <= mdat_payload.start || s >= mdat_payload.end),
        "{ranges:?}"
    );
    assert_eq!(file.fetched_bytes(), requested(&ranges));
    assert!(requested(&ranges) <= 3 * 16 + 24 + 1008);
}

#[tokio::test]
async fn the_index_cache_is_bounded_by_bytes() {
    let store = Recording::default();
    store
        .inner
        .insert(BUCKET, "a.mp4", video("slideshow_shared.mp4"));
    store
        .inner
        .insert(BUCKET, "b.mp4", video("facenet-pytorch_video.mp4"));
    // Each one's weight, measured alone.
    let mut weights = Vec::new();
    for key in ["a.mp4", "b.mp4"] {
        let alone = indexes(64 << 20);
        alone
            .get(&store, BUCKET, key, &ReadPin::Current)
            .await
            .unwrap();
        let (entries, bytes) = alone.cached();
        assert_eq!(entries, 1);
        assert!(bytes > 0);
        weights.push(bytes);
    }
    store.take();

    // Room for either, not both: b pushes a out.
    let cache = indexes(weights[0].max(weights[1]) + 1);
    cache
        .get(&store, BUCKET, "a.mp4", &ReadPin::Current)
        .await
        .unwrap();
    cache
        .get(&store, BUCKET, "b.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(cache.cached(), (1, weights[1]));
    store.take();
    cache
        .get(&store, BUCKET, "b.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(store.take(), [(0, 16)], "b is cached");
    cache
        .get(&store, BUCKET, "a.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert!(
        requested(&store.take()) > 2_000,
        "a was evicted, so its header is read again"
    );
    assert_eq!(cache.cached(), (1, weights[0]));

    // A budget smaller than any index keeps nothing, and still works.
    let tiny = indexes(16);
    let read = tiny
        .get(&store, BUCKET, "a.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(read.index.frames(), 120);
    assert_eq!(tiny.cached(), (0, 0));
}

#[tokio::test]
async fn an_overwritten_video_is_never_served_from_its_old_index() {
    let store = Recording::default();
    let other = video("facenet-pytorch_video.mp4");
    let other_frames = face_video::VideoIndex::from_bytes(&other, &VideoLimits::default())
        .unwrap()
        .frames();
    assert_ne!(other_frames, 120);
    store
        .inner
        .insert(BUCKET, "v.mp4", video("slideshow_shared.mp4"));
    let cache = VideoIndexes::default();
    let first = cache
        .get(&store, BUCKET, "v.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(first.index.frames(), 120);

    store.inner.insert(BUCKET, "v.mp4", other);
    let second = cache
        .get(&store, BUCKET, "v.mp4", &ReadPin::Current)
        .await
        .unwrap();
    assert_eq!(second.index.frames(), other_frames);
    assert_ne!(first.etag, second.etag);
    // The old version's index is gone, not just shadowed.
    let (entries, bytes) = cache.cached();
    assert_eq!(entries, 1);
    assert!(bytes < first.index.heap_bytes() + second.index.heap_bytes());
}

#[tokio::test]
async fn a_video_overwritten_while_its_header_is_read_is_retried() {
    let store = Recording::default();
    store
        .inner
        .insert(BUCKET, "v.mp4", video("slideshow_shared.mp4"));
    let other = video("facenet-pytorch_video.mp4");
    // Just before the second ranged GET (the box header after ftyp).
    *store.overwrite.lock().unwrap() = Some((1, "v.mp4".into(), other.clone()));
    let first = sparse::first_read(&store, BUCKET, "v.mp4", None)
        .await
        .unwrap();
    let err = sparse::fetch_header(
        &store,
        BUCKET,
        "v.mp4",
        None,
        first,
        sparse::MAX_HEADER_BYTES,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HeaderError::Changed { .. }), "{err:?}");
    assert_eq!(
        face_service::ServiceError::from(err).kind(),
        ErrorKind::Retryable
    );

    // The retry reads the new version whole.
    let read = VideoIndexes::default()
        .get(&store, BUCKET, "v.mp4", &ReadPin::Current)
        .await
        .unwrap();
    let expected = face_video::VideoIndex::from_bytes(&other, &VideoLimits::default()).unwrap();
    assert_eq!(read.index.frames(), expected.frames());
}
