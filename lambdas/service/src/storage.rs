//! The small storage traits the handlers are generic over. The AWS
//! implementations are in [`crate::aws`], in-memory ones in
//! [`crate::memory`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// An object's bytes and the identifiers of this version of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// Part of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeRead {
    pub bytes: Vec<u8>,
    pub object_size: u64,
    pub etag: Option<String>,
}

/// What a HEAD of an object says about this version of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectHead {
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

impl ObjectHead {
    /// The version id, else the ETag: what a result id is keyed by.
    pub fn version_tag(&self) -> Option<&str> {
        self.version_id.as_deref().or(self.etag.as_deref())
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedObject {
    pub key: String,
    pub etag: String,
    /// Bytes, as listed: lets a reader budget its downloads first.
    pub size: u64,
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Reads a whole object, refusing (without reading it) one over
    /// `max_bytes`: the version `version_id` when given (`NotFound` once
    /// that version is gone), else the current one.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError>;
    /// Bytes `[start, end)` of an object (fewer at its end) and the
    /// object's total size: how a scan worker reads one chunk of a video.
    /// Of the version `version_id` when given, as `get`.
    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<RangeRead, StorageError>;
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), StorageError>;
    /// The object's size and version without its bytes (`NotFound` when
    /// it is not there).
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectHead, StorageError>;
    /// Deleting a missing object succeeds.
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError>;
    /// Every object under `prefix`, all pages.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError>;
}

/// A person's record in the people table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    pub collection: String,
    pub person: String,
    /// Free-form (e.g. major, year), kept as given.
    pub attributes: BTreeMap<String, String>,
    pub face_count: u32,
    /// RFC 3339.
    pub updated_at: String,
}

#[async_trait]
pub trait PeopleTable: Send + Sync {
    async fn put(&self, record: &PersonRecord) -> Result<(), StorageError>;
    async fn get(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<Option<PersonRecord>, StorageError>;
    /// Returns whether a record was there.
    async fn delete(&self, collection: &str, person: &str) -> Result<bool, StorageError>;
    async fn list(&self, collection: &str) -> Result<Vec<PersonRecord>, StorageError>;
    /// Up to `limit` records by person name, after `after` (exclusive),
    /// and the name to continue after when there may be more. The default
    /// reads the whole collection; tables with a paged query override it.
    async fn list_page(
        &self,
        collection: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<PeoplePage, StorageError> {
        let mut records = self.list(collection).await?;
        records.sort_by(|a, b| a.person.cmp(&b.person));
        let mut rest: Vec<PersonRecord> = records
            .into_iter()
            .filter(|r| after.is_none_or(|a| r.person.as_str() > a))
            .collect();
        let more = rest.len() > limit as usize;
        rest.truncate(limit as usize);
        let next = if more {
            rest.last().map(|r| r.person.clone())
        } else {
            None
        };
        Ok(PeoplePage {
            records: rest,
            next,
        })
    }
}

/// One page of a collection's people.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeoplePage {
    pub records: Vec<PersonRecord>,
    /// The last person of this page, when more may follow.
    pub next: Option<String>,
}

/// An API key's item in the keys table (see `face_api::keys`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub name: String,
    pub created_at: String,
    pub rate_per_minute: u32,
    pub quota_per_day: u32,
    pub revoked_at: Option<String>,
}

/// The API keys table: keys by hash, and fixed-window counters.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// The key whose sha256 hex is `key_hash` (never the key itself).
    async fn get_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StorageError>;
    /// Adds one to the counter `counter_id` unless it already reached
    /// `limit`; returns whether it counted. The counter's item expires
    /// (TTL) at `expires_at` (epoch seconds).
    async fn count_below(
        &self,
        counter_id: &str,
        limit: u32,
        expires_at: u64,
    ) -> Result<bool, StorageError>;
}

/// A presigned request: what the client sends, exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct PresignedPut {
    pub url: String,
    /// Headers the client must send (signed ones included).
    pub headers: BTreeMap<String, String>,
}

/// Issues presigned S3 PUT URLs with the content type and length signed.
#[async_trait]
pub trait UploadSigner: Send + Sync {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<PresignedPut, StorageError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Ok,
    BadInput,
    /// A video job that could not finish (chunks kept failing).
    Failed,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "ok",
            ResultStatus::BadInput => "bad_input",
            ResultStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(ResultStatus::Ok),
            "bad_input" => Some(ResultStatus::BadInput),
            "failed" => Some(ResultStatus::Failed),
            _ => None,
        }
    }
}

/// One processed upload in the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// `s3://<bucket>/<key>#<version id or etag>`: one record per object version.
    pub result_id: String,
    pub bucket: String,
    pub key: String,
    pub collection: String,
    pub status: ResultStatus,
    /// The message body sent to the results queue (JSON).
    pub message: String,
    /// Whether the message reached the results queue.
    pub delivered: bool,
    pub created_at: String,
}

#[async_trait]
pub trait ResultsTable: Send + Sync {
    async fn get(&self, result_id: &str) -> Result<Option<ResultRecord>, StorageError>;
    /// Writes the record unless one with its id exists; returns whether it
    /// wrote.
    async fn put_if_absent(&self, record: &ResultRecord) -> Result<bool, StorageError>;
    async fn mark_delivered(&self, result_id: &str) -> Result<(), StorageError>;
}

#[async_trait]
pub trait ResultsQueue: Send + Sync {
    async fn send(
        &self,
        group_id: &str,
        deduplication_id: &str,
        body: &str,
    ) -> Result<(), StorageError>;
}

/// Now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A video scan job in the jobs table (see `face_api::jobs`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job_id: String,
    pub bucket: String,
    pub key: String,
    /// The version id or ETag of the upload that started the job (part of
    /// its id).
    pub version_tag: String,
    /// The S3 version id of that upload, when `version_tag` is one: the
    /// workers read that version, whatever was put at the key since. With
    /// none (an unversioned bucket), `version_tag` is the ETag every read
    /// must match, and a video overwritten while its job runs fails the job.
    pub version_id: Option<String>,
    /// `s3://bucket/key#version`: the result id the job's result is kept under.
    pub video_result_id: String,
    pub collection: String,
    pub status: face_api::jobs::JobStatus,
    /// RFC 3339: when S3 said the object was created (the upload's event
    /// time), for the consumer's latency.
    pub uploaded_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub chunks_total: Option<u32>,
    pub chunks_done: std::collections::BTreeSet<u32>,
    pub chunks_failed: std::collections::BTreeSet<u32>,
    pub frames: Option<u64>,
    pub fps: Option<f64>,
    pub duration_s: Option<f64>,
    pub error: Option<String>,
    /// The SQS message id of the plan message that planned the job: the
    /// same message planning again wins again (`JobsTable::set_planned`).
    pub planned_by: Option<String>,
}

impl JobRecord {
    /// A new job, queued.
    pub fn queued(
        bucket: &str,
        key: &str,
        version_tag: &str,
        collection: &str,
        uploaded_at: Option<String>,
    ) -> Self {
        let video_result_id = crate::recognize::result_id(bucket, key, version_tag);
        Self {
            job_id: face_api::jobs::job_id_for(&video_result_id),
            bucket: bucket.into(),
            key: key.into(),
            version_tag: version_tag.trim_matches('"').into(),
            version_id: None,
            video_result_id,
            collection: collection.into(),
            status: face_api::jobs::JobStatus::Queued,
            uploaded_at,
            created_at: now_rfc3339(),
            finished_at: None,
            chunks_total: None,
            chunks_done: Default::default(),
            chunks_failed: Default::default(),
            frames: None,
            fps: None,
            duration_s: None,
            error: None,
            planned_by: None,
        }
    }

    /// The job of the upload whose S3 version id is `version_id` (when the
    /// bucket gave one): its workers read that version.
    pub fn with_version_id(mut self, version_id: Option<String>) -> Self {
        self.version_id = version_id;
        self
    }

    /// The version of the video the job's reads must be of.
    pub fn read_pin(&self) -> ReadPin {
        match &self.version_id {
            Some(id) => ReadPin::VersionId(id.clone()),
            None => ReadPin::ETag(self.version_tag.clone()),
        }
    }
}

/// Which version of an object a scan reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReadPin {
    /// Whatever is at the key (a direct invoke's chunk: the client-side
    /// scan's staged copy).
    #[default]
    Current,
    /// This S3 version, whatever was put at the key since.
    VersionId(String),
    /// The key's current version, which must still have this ETag.
    ETag(String),
}

impl ReadPin {
    /// The version id to read with.
    pub fn version_id(&self) -> Option<&str> {
        match self {
            ReadPin::VersionId(id) => Some(id),
            ReadPin::Current | ReadPin::ETag(_) => None,
        }
    }

    /// Whether a read that answered `etag` is of the pinned version.
    pub fn admits(&self, etag: Option<&str>) -> bool {
        match self {
            ReadPin::ETag(expected) => {
                etag.map(|e| e.trim_matches('"')) == Some(expected.trim_matches('"'))
            }
            ReadPin::Current | ReadPin::VersionId(_) => true,
        }
    }
}

/// What the planner learned from the video's header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobPlan {
    pub chunks_total: u32,
    pub frames: u64,
    pub fps: f64,
    pub duration_s: f64,
}

/// The jobs table. Completion is a set of chunk numbers (`ADD` to a number
/// set), so a chunk scanned twice (a retried worker) is counted once.
#[async_trait]
pub trait JobsTable: Send + Sync {
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StorageError>;
    /// Writes the record unless the job exists; returns whether it wrote.
    async fn create_if_absent(&self, record: &JobRecord) -> Result<bool, StorageError>;
    /// Records the plan and sets `running`, while the job is `queued`, or
    /// `running` and planned by the same plan message (`planned_by`, its
    /// SQS message id): a retry of an update that was applied but whose
    /// answer was lost must win again, or the one plan message would take
    /// itself for a duplicate and queue no chunk. Returns whether it did
    /// (one plan message wins; a job planned by another, or ended, is left
    /// as it is).
    async fn set_planned(
        &self,
        job_id: &str,
        plan: &JobPlan,
        planned_by: &str,
    ) -> Result<bool, StorageError>;
    /// Adds `chunk` to the done set; returns the job as it is after.
    async fn chunk_done(&self, job_id: &str, chunk: u32) -> Result<JobRecord, StorageError>;
    /// Adds `chunk` to the failed set and fails the job (unless done).
    async fn chunk_failed(&self, job_id: &str, chunk: u32, error: &str)
    -> Result<(), StorageError>;
    /// Sets a final status unless the job already has one; returns whether
    /// it did (exactly one caller wins).
    async fn finish(
        &self,
        job_id: &str,
        status: face_api::jobs::JobStatus,
        error: Option<&str>,
    ) -> Result<bool, StorageError>;
}

/// A standard SQS queue (the scan queue): one message per call.
#[async_trait]
pub trait WorkSender: Send + Sync {
    async fn send(&self, body: &str) -> Result<(), StorageError>;
}

/// The results topic (SNS): every finished job is published there.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), StorageError>;
}
