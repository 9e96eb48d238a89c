//! The video indexes a warm container keeps: chunks of one video often land
//! on the same environment, and a long video's index is tens of MB to
//! fetch and parse. Bounded by bytes (least recently used first out) and
//! checked against the object's ETag on every use, so an overwritten video
//! is read afresh (a job's reads are of its own upload: `ReadPin`).

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use face_service::ServiceError;
use face_service::storage::{ObjectStore, ReadPin};
use face_video::{VideoIndex, VideoLimits};
use lru::LruCache;

use crate::sparse::{self, MAX_HEADER_BYTES};

/// Indexes kept per container: a 30 fps video's index is ~1.2 MB per
/// hour, so this holds dozens of videos and stays small next to the
/// function's 1-3 GB.
pub const DEFAULT_INDEX_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Least recently used entries out first, so their weights stay within a
/// budget. `lru` bounds by count; the weights are kept here.
#[derive(Debug)]
pub struct ByteLru<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    bytes: usize,
    budget_bytes: usize,
}

impl<K: Hash + Eq, V> ByteLru<K, V> {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget_bytes,
        }
    }

    /// The entry, now the most recently used.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// Keeps `value` as `bytes`, evicting the least recently used until
    /// the budget holds. A value larger than the whole budget is not kept
    /// (it would evict everything and then itself).
    pub fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.remove(&key);
        if bytes > self.budget_bytes {
            return;
        }
        self.bytes += bytes;
        self.entries.push(key, (value, bytes));
        while self.bytes > self.budget_bytes {
            match self.entries.pop_lru() {
                Some((_, (_, b))) => self.bytes -= b,
                None => break,
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (value, bytes) = self.entries.pop(key)?;
        self.bytes -= bytes;
        Some(value)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The weights of the entries kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// An index and the ETag of the bytes it was read from.
#[derive(Debug, Clone)]
pub struct ReadIndex {
    pub index: Arc<VideoIndex>,
    /// Chunk reads must match it, or they would be another video's bytes.
    pub etag: Option<String>,
    /// The object's size in bytes: every chunk's bytes must lie within it.
    pub size: u64,
}

/// (bucket, key) → the index of the version with this ETag.
type Entries = ByteLru<(String, String), (String, Arc<VideoIndex>)>;

/// Video indexes read through [`sparse::fetch_header`] and cached.
#[derive(Debug)]
pub struct VideoIndexes {
    cache: Mutex<Entries>,
    header_budget_bytes: u64,
    limits: VideoLimits,
}

impl Default for VideoIndexes {
    fn default() -> Self {
        Self::new(
            MAX_HEADER_BYTES,
            DEFAULT_INDEX_CACHE_BYTES,
            VideoLimits::default(),
        )
    }
}

impl VideoIndexes {
    pub fn new(header_budget_bytes: u64, cache_budget_bytes: usize, limits: VideoLimits) -> Self {
        Self {
            cache: Mutex::new(ByteLru::new(cache_budget_bytes)),
            header_budget_bytes,
            limits,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Nothing panics while holding it; a poisoned lock is still sound.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (entries, bytes) cached.
    pub fn cached(&self) -> (usize, usize) {
        let cache = self.cache();
        (cache.len(), cache.bytes())
    }

    /// The index of `bucket/key` at the version `pin` names: one 16-byte
    /// read when that version's index is cached, else its header boxes. A
    /// key whose current ETag is not the one `pin` expects is refused, as
    /// bad input (the video was overwritten since its job started).
    pub async fn get<O: ObjectStore>(
        &self,
        objects: &O,
        bucket: &str,
        key: &str,
        pin: &ReadPin,
    ) -> Result<ReadIndex, ServiceError> {
        let version_id = pin.version_id();
        let first = sparse::first_read(objects, bucket, key, version_id).await?;
        let object_size = first.object_size;
        if let ReadPin::ETag(expected) = pin
            && !pin.admits(first.etag.as_deref())
        {
            return Err(overwritten(key, expected, first.etag.as_deref()));
        }
        let id = (bucket.to_string(), key.to_string());
        if let Some(etag) = &first.etag {
            let mut cache = self.cache();
            let hit = cache
                .get(&id)
                .map(|(cached, index)| (cached == etag).then(|| Arc::clone(index)));
            match hit {
                Some(Some(index)) => {
                    return Ok(ReadIndex {
                        index,
                        etag: Some(etag.clone()),
                        size: object_size,
                    });
                }
                // Another version: never served again, its memory freed now.
                Some(None) => {
                    cache.remove(&id);
                }
                None => {}
            }
        }
        let header = sparse::fetch_header(
            objects,
            bucket,
            key,
            version_id,
            first,
            self.header_budget_bytes,
        )
        .await?;
        tracing::info!(
            key,
            header_bytes = header.fetched_bytes(),
            "video header read"
        );
        let (size, etag, limits) = (header.size(), header.etag().map(String::from), self.limits);
        let index =
            tokio::task::spawn_blocking(move || VideoIndex::from_reader(header, size, &limits))
                .await
                .map_err(|e| ServiceError::Internal(format!("index task: {e}")))?
                .map_err(|e| ServiceError::BadRequest(format!("{key}: {e}")))?;
        let index = Arc::new(index);
        // Without an ETag a new version could not be told apart: not kept.
        if let Some(etag) = &etag {
            let bytes = index.heap_bytes() + key.len() + bucket.len() + etag.len();
            self.cache()
                .insert(id, (etag.clone(), Arc::clone(&index)), bytes);
        }
        Ok(ReadIndex {
            index,
            etag,
            size: object_size,
        })
    }
}

/// The error of a read that found another ETag than the one its job
/// expects: permanent, so the job fails once with it instead of scanning a
/// mix of two videos.
pub fn overwritten(key: &str, expected: &str, found: Option<&str>) -> ServiceError {
    ServiceError::BadRequest(format!(
        "{key} was overwritten since its scan started (ETag {expected}, now {}): upload it again to scan the new video",
        found.unwrap_or("none")
    ))
}

#[cfg(test)]
mod tests {
    use super::ByteLru;

    #[test]
    fn the_least_recently_used_go_first_until_the_bytes_fit() {
        let mut lru = ByteLru::new(100);
        lru.insert("a", 1, 40);
        lru.insert("b", 2, 40);
        assert_eq!(lru.get(&"a"), Some(&1), "a is now the most recent");
        lru.insert("c", 3, 40);
        assert!(!lru.contains(&"b"), "b was the least recently used");
        assert!(lru.contains(&"a") && lru.contains(&"c"));
        assert_eq!(lru.bytes(), 80);

        // One large entry evicts as many as it needs.
        lru.insert("d", 4, 90);
        assert_eq!((lru.len(), lru.bytes()), (1, 90));

        // Larger than the budget: not kept, and nothing else is lost.
        lru.insert("e", 5, 101);
        assert!(!lru.contains(&"e"));
        assert_eq!((lru.len(), lru.bytes()), (1, 90));

        // Replacing an entry replaces its weight.
        lru.insert("d", 6, 10);
        assert_eq!(lru.bytes(), 10);
        assert_eq!(lru.get(&"d"), Some(&6));
        assert_eq!(lru.remove(&"d"), Some(6));
        assert!(lru.is_empty());
        assert_eq!(lru.bytes(), 0);
    }
}
