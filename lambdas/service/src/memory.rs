//! In-memory storage for unit tests: the same traits, no AWS. Like SDK
//! clients, each store is a cheap handle (clones share the data), and can
//! be told to fail its next calls, to test retry paths.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::StorageError;
use crate::storage::{
    ApiKeyRecord, ApiKeys, JobPlan, JobRecord, JobsTable, ListedObject, Notifier, ObjectHead,
    ObjectStore, PeopleTable, PersonRecord, PresignedPut, RangeRead, ResultRecord, ResultsQueue,
    ResultsTable, StoredObject, UploadSigner, WorkSender,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock already failed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the next `n` calls fail with a transient error.
#[derive(Debug, Default, Clone)]
pub struct FailNext(Arc<AtomicUsize>);

impl FailNext {
    pub fn set(&self, n: usize) {
        self.0.store(n, Ordering::SeqCst);
    }

    fn check(&self, operation: &str) -> Result<(), StorageError> {
        let left = self.0.load(Ordering::SeqCst);
        if left > 0 {
            self.0.store(left - 1, Ordering::SeqCst);
            return Err(StorageError::Transient {
                operation: operation.into(),
                message: "injected failure".into(),
            });
        }
        Ok(())
    }
}

/// One version of an object; `None` bytes is a delete marker.
#[derive(Debug, Clone)]
struct Version {
    version_id: Option<String>,
    bytes: Option<Vec<u8>>,
}

/// (bucket, key) → its versions, oldest first (one, unversioned).
type Objects = BTreeMap<(String, String), Vec<Version>>;

/// Objects in memory. [`MemoryObjects::versioned`] keeps every version
/// like a versioned S3 bucket (ids `v1`, `v2`, ...; a delete adds a
/// marker); the default keeps only the last bytes and has no version ids.
#[derive(Debug, Default, Clone)]
pub struct MemoryObjects {
    objects: Arc<Mutex<Objects>>,
    versioned: bool,
    versions_made: Arc<AtomicUsize>,
    pub fail_next: FailNext,
}

impl MemoryObjects {
    /// A store that keeps versions, as the stacks' data bucket does.
    pub fn versioned() -> Self {
        Self {
            versioned: true,
            ..Self::default()
        }
    }

    /// Stores `bytes` as the key's current version; returns its version id
    /// (none when unversioned).
    pub fn insert(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Option<String> {
        self.push(bucket, key, Some(bytes))
    }

    fn push(&self, bucket: &str, key: &str, bytes: Option<Vec<u8>>) -> Option<String> {
        let mut objects = lock(&self.objects);
        let versions = objects.entry((bucket.into(), key.into())).or_default();
        if !self.versioned {
            versions.clear();
            if bytes.is_none() {
                objects.remove(&(bucket.into(), key.into()));
            } else {
                versions.push(Version {
                    version_id: None,
                    bytes,
                });
            }
            return None;
        }
        let id = format!("v{}", self.versions_made.fetch_add(1, Ordering::SeqCst) + 1);
        versions.push(Version {
            version_id: Some(id.clone()),
            bytes,
        });
        Some(id)
    }

    /// Keys whose current version is an object (not a delete marker).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        lock(&self.objects)
            .iter()
            .filter(|((b, _), v)| b == bucket && current(v).is_some())
            .map(|((_, k), _)| k.clone())
            .collect()
    }

    /// The version asked for (else the current one) and its bytes.
    fn read(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(Option<String>, Vec<u8>), StorageError> {
        let objects = lock(&self.objects);
        let versions = objects.get(&(bucket.into(), key.into()));
        let found = match version_id {
            None => versions.and_then(|v| current(v)),
            Some(id) => versions
                .and_then(|v| v.iter().find(|v| v.version_id.as_deref() == Some(id)))
                .and_then(|v| v.bytes.as_ref().map(|b| (v, b))),
        };
        let (version, bytes) = found.ok_or_else(|| StorageError::NotFound {
            what: match version_id {
                Some(id) => format!("s3://{bucket}/{key} version {id}"),
                None => format!("s3://{bucket}/{key}"),
            },
        })?;
        Ok((version.version_id.clone(), bytes.clone()))
    }
}

/// The current version, unless it is a delete marker.
fn current(versions: &[Version]) -> Option<(&Version, &Vec<u8>)> {
    let last = versions.last()?;
    last.bytes.as_ref().map(|b| (last, b))
}

fn etag(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        self.fail_next.check("get")?;
        let (version_id, bytes) = self.read(bucket, key, version_id)?;
        if bytes.len() as u64 > max_bytes {
            return Err(StorageError::TooLarge {
                what: format!("s3://{bucket}/{key}"),
                size_bytes: bytes.len() as u64,
                limit_bytes: max_bytes,
            });
        }
        Ok(StoredObject {
            etag: Some(etag(&bytes)),
            version_id,
            bytes,
        })
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<RangeRead, StorageError> {
        self.fail_next.check("get_range")?;
        let (_, bytes) = self.read(bucket, key, version_id)?;
        let size = bytes.len() as u64;
        let (from, to) = (start.min(size) as usize, end.min(size) as usize);
        Ok(RangeRead {
            bytes: bytes[from..to.max(from)].to_vec(),
            object_size: size,
            etag: Some(etag(&bytes)),
        })
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.fail_next.check("put")?;
        self.insert(bucket, key, bytes);
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectHead, StorageError> {
        self.fail_next.check("head")?;
        let (version_id, bytes) = self.read(bucket, key, None)?;
        Ok(ObjectHead {
            size: bytes.len() as u64,
            etag: Some(etag(&bytes)),
            version_id,
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.fail_next.check("delete")?;
        let exists = lock(&self.objects).contains_key(&(bucket.into(), key.into()));
        if exists {
            self.push(bucket, key, None);
        }
        Ok(())
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.fail_next.check("list")?;
        Ok(lock(&self.objects)
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .filter_map(|((_, k), v)| {
                current(v).map(|(_, bytes)| ListedObject {
                    key: k.clone(),
                    etag: etag(bytes),
                    size: bytes.len() as u64,
                })
            })
            .collect())
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemoryPeople {
    records: Arc<Mutex<BTreeMap<(String, String), PersonRecord>>>,
}

#[async_trait]
impl PeopleTable for MemoryPeople {
    async fn put(&self, record: &PersonRecord) -> Result<(), StorageError> {
        lock(&self.records).insert(
            (record.collection.clone(), record.person.clone()),
            record.clone(),
        );
        Ok(())
    }

    async fn get(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<Option<PersonRecord>, StorageError> {
        Ok(lock(&self.records)
            .get(&(collection.into(), person.into()))
            .cloned())
    }

    async fn delete(&self, collection: &str, person: &str) -> Result<bool, StorageError> {
        Ok(lock(&self.records)
            .remove(&(collection.into(), person.into()))
            .is_some())
    }

    async fn list(&self, collection: &str) -> Result<Vec<PersonRecord>, StorageError> {
        Ok(lock(&self.records)
            .values()
            .filter(|r| r.collection == collection)
            .cloned()
            .collect())
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemoryResults {
    records: Arc<Mutex<BTreeMap<String, ResultRecord>>>,
    /// Fails `mark_delivered`: a function dying after the send.
    pub fail_next_mark: FailNext,
}

impl MemoryResults {
    pub fn all(&self) -> Vec<ResultRecord> {
        lock(&self.records).values().cloned().collect()
    }
}

#[async_trait]
impl ResultsTable for MemoryResults {
    async fn get(&self, result_id: &str) -> Result<Option<ResultRecord>, StorageError> {
        Ok(lock(&self.records).get(result_id).cloned())
    }

    async fn put_if_absent(&self, record: &ResultRecord) -> Result<bool, StorageError> {
        let mut records = lock(&self.records);
        if records.contains_key(&record.result_id) {
            return Ok(false);
        }
        records.insert(record.result_id.clone(), record.clone());
        Ok(true)
    }

    async fn mark_delivered(&self, result_id: &str) -> Result<(), StorageError> {
        self.fail_next_mark.check("mark_delivered")?;
        if let Some(r) = lock(&self.records).get_mut(result_id) {
            r.delivered = true;
        }
        Ok(())
    }
}

/// A FIFO queue that, like SQS, drops a message whose deduplication id it
/// has already seen, until [`MemoryQueue::end_deduplication_window`].
#[derive(Debug, Default, Clone)]
pub struct MemoryQueue {
    messages: Arc<Mutex<Vec<(String, String)>>>,
    seen: Arc<Mutex<std::collections::BTreeSet<String>>>,
    pub fail_next: FailNext,
}

impl MemoryQueue {
    /// (group id, body) of every accepted message, in order.
    pub fn messages(&self) -> Vec<(String, String)> {
        lock(&self.messages).clone()
    }

    /// Forgets the deduplication ids seen, as SQS does after 5 minutes.
    pub fn end_deduplication_window(&self) {
        lock(&self.seen).clear();
    }
}

#[async_trait]
impl ResultsQueue for MemoryQueue {
    async fn send(
        &self,
        group_id: &str,
        deduplication_id: &str,
        body: &str,
    ) -> Result<(), StorageError> {
        self.fail_next.check("send")?;
        if lock(&self.seen).insert(deduplication_id.into()) {
            lock(&self.messages).push((group_id.into(), body.into()));
        }
        Ok(())
    }
}

/// The API keys table in memory: keys by hash, counters by id.
#[derive(Debug, Default, Clone)]
pub struct MemoryApiKeys {
    keys: Arc<Mutex<BTreeMap<String, ApiKeyRecord>>>,
    counters: Arc<Mutex<BTreeMap<String, (u32, u64)>>>,
}

impl MemoryApiKeys {
    /// Stores `key` (hashed, as the real table does) under its record.
    pub fn insert_key(&self, key: &str, record: ApiKeyRecord) {
        lock(&self.keys).insert(face_api::keys::hash_api_key(key), record);
    }

    /// Marks the key named `name` revoked; returns whether there was one.
    pub fn revoke(&self, name: &str) -> bool {
        let mut keys = lock(&self.keys);
        let mut found = false;
        for record in keys.values_mut().filter(|r| r.name == name) {
            record.revoked_at = Some(crate::storage::now_rfc3339());
            found = true;
        }
        found
    }

    /// A counter's value and expiry.
    pub fn counter(&self, counter_id: &str) -> Option<(u32, u64)> {
        lock(&self.counters).get(counter_id).copied()
    }
}

#[async_trait]
impl ApiKeys for MemoryApiKeys {
    async fn get_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        Ok(lock(&self.keys).get(key_hash).cloned())
    }

    async fn count_below(
        &self,
        counter_id: &str,
        limit: u32,
        expires_at: u64,
    ) -> Result<bool, StorageError> {
        let mut counters = lock(&self.counters);
        let entry = counters.entry(counter_id.into()).or_insert((0, expires_at));
        if entry.0 >= limit {
            return Ok(false);
        }
        entry.0 += 1;
        entry.1 = expires_at;
        Ok(true)
    }
}

/// A signer that signs nothing: a `memory://` URL carrying what a real one
/// binds into the signature, so tests can check what was asked for.
#[derive(Debug, Default, Clone)]
pub struct MemorySigner;

#[async_trait]
impl UploadSigner for MemorySigner {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<PresignedPut, StorageError> {
        Ok(PresignedPut {
            url: format!(
                "memory://{bucket}/{key}?expires_in={}&content-length={content_length}",
                expires_in.as_secs()
            ),
            headers: BTreeMap::from([
                ("content-length".to_string(), content_length.to_string()),
                ("content-type".to_string(), content_type.to_string()),
            ]),
        })
    }
}

/// The jobs table in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryJobs {
    jobs: Arc<Mutex<BTreeMap<String, JobRecord>>>,
}

impl MemoryJobs {
    pub fn all(&self) -> Vec<JobRecord> {
        lock(&self.jobs).values().cloned().collect()
    }
}

fn missing_job(job_id: &str) -> StorageError {
    StorageError::NotFound {
        what: format!("job {job_id}"),
    }
}

#[async_trait]
impl JobsTable for MemoryJobs {
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StorageError> {
        Ok(lock(&self.jobs).get(job_id).cloned())
    }

    async fn create_if_absent(&self, record: &JobRecord) -> Result<bool, StorageError> {
        let mut jobs = lock(&self.jobs);
        if jobs.contains_key(&record.job_id) {
            return Ok(false);
        }
        jobs.insert(record.job_id.clone(), record.clone());
        Ok(true)
    }

    async fn set_planned(
        &self,
        job_id: &str,
        plan: &JobPlan,
        planned_by: &str,
    ) -> Result<bool, StorageError> {
        use face_api::jobs::JobStatus;
        let mut jobs = lock(&self.jobs);
        let job = jobs.get_mut(job_id).ok_or_else(|| missing_job(job_id))?;
        // DynamoJobs' condition: queued, or running and planned by this
        // same message (its own earlier, applied attempt).
        let again =
            job.status == JobStatus::Running && job.planned_by.as_deref() == Some(planned_by);
        if job.status != JobStatus::Queued && !again {
            return Ok(false);
        }
        job.chunks_total = Some(plan.chunks_total);
        job.frames = Some(plan.frames);
        job.fps = Some(plan.fps);
        job.duration_s = Some(plan.duration_s);
        job.planned_by = Some(planned_by.to_string());
        job.status = JobStatus::Running;
        Ok(true)
    }

    async fn chunk_done(&self, job_id: &str, chunk: u32) -> Result<JobRecord, StorageError> {
        let mut jobs = lock(&self.jobs);
        let job = jobs.get_mut(job_id).ok_or_else(|| missing_job(job_id))?;
        job.chunks_done.insert(chunk);
        Ok(job.clone())
    }

    async fn chunk_failed(
        &self,
        job_id: &str,
        chunk: u32,
        error: &str,
    ) -> Result<(), StorageError> {
        let mut jobs = lock(&self.jobs);
        let job = jobs.get_mut(job_id).ok_or_else(|| missing_job(job_id))?;
        job.chunks_failed.insert(chunk);
        if job.status != face_api::jobs::JobStatus::Done {
            job.status = face_api::jobs::JobStatus::Failed;
            job.error.get_or_insert_with(|| error.to_string());
            job.finished_at
                .get_or_insert_with(crate::storage::now_rfc3339);
        }
        Ok(())
    }

    async fn finish(
        &self,
        job_id: &str,
        status: face_api::jobs::JobStatus,
        error: Option<&str>,
    ) -> Result<bool, StorageError> {
        let mut jobs = lock(&self.jobs);
        let job = jobs.get_mut(job_id).ok_or_else(|| missing_job(job_id))?;
        if job.status.is_final() {
            return Ok(false);
        }
        job.status = status;
        job.error = error.map(str::to_owned);
        job.finished_at = Some(crate::storage::now_rfc3339());
        Ok(true)
    }
}

/// A standard queue in memory: messages in send order.
#[derive(Debug, Default, Clone)]
pub struct MemoryWork {
    messages: Arc<Mutex<Vec<String>>>,
}

impl MemoryWork {
    /// Removes and returns every message sent so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.messages))
    }
}

#[async_trait]
impl WorkSender for MemoryWork {
    async fn send(&self, body: &str) -> Result<(), StorageError> {
        lock(&self.messages).push(body.into());
        Ok(())
    }
}

/// A topic in memory: (subject, body) in publish order.
#[derive(Debug, Default, Clone)]
pub struct MemoryTopic {
    published: Arc<Mutex<Vec<(String, String)>>>,
}

impl MemoryTopic {
    pub fn published(&self) -> Vec<(String, String)> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl Notifier for MemoryTopic {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), StorageError> {
        lock(&self.published).push((subject.into(), body.into()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use face_api::jobs::JobStatus;

    #[tokio::test]
    async fn a_plan_message_planning_again_wins_again_and_another_loses() {
        let jobs = MemoryJobs::default();
        let job = JobRecord::queued("b", "uploads/c/v.mp4", "\"e1\"", "c", None);
        jobs.create_if_absent(&job).await.unwrap();
        let plan = JobPlan {
            chunks_total: 3,
            frames: 900,
            fps: 30.0,
            duration_s: 30.0,
        };
        assert!(jobs.set_planned(&job.job_id, &plan, "m1").await.unwrap());
        // The same message again (the SDK's retry of an update whose answer
        // was lost): it still wins, so it queues its chunks.
        assert!(jobs.set_planned(&job.job_id, &plan, "m1").await.unwrap());
        let running = jobs.get(&job.job_id).await.unwrap().unwrap();
        assert_eq!(running.status, JobStatus::Running);
        assert_eq!(running.planned_by.as_deref(), Some("m1"));
        // Another plan message (a duplicate): it loses, and changes nothing.
        let other = JobPlan {
            chunks_total: 4,
            ..plan
        };
        assert!(!jobs.set_planned(&job.job_id, &other, "m2").await.unwrap());
        assert_eq!(jobs.get(&job.job_id).await.unwrap().unwrap(), running);
        // An ended job is never planned again, not even by its planner.
        jobs.finish(&job.job_id, JobStatus::Done, None)
            .await
            .unwrap();
        assert!(!jobs.set_planned(&job.job_id, &plan, "m1").await.unwrap());
        assert_eq!(
            jobs.get(&job.job_id).await.unwrap().unwrap().status,
            JobStatus::Done
        );
    }
}
