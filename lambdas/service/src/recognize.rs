//! The recognize function's handler: one core reached three ways (a direct
//! request, an S3 upload event, an SQS batch of upload events).

use std::collections::BTreeMap;
use std::sync::Arc;

use face_contracts::metrics::Metric;
use face_core::{FacePipeline, StageTimings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::collections::{CollectionCache, validate_collection_name};
use crate::error::StorageError;
use crate::error::{ErrorKind, ServiceError};
use crate::events::{
    BatchItemFailure, Invocation, QueueBody, S3Event, S3EventRecord, SqsBatchResponse, SqsEvent,
};
use crate::image_input::ImageInput;
use crate::jobs::{VideoIntake, looks_like_mp4};
use crate::metrics::Metrics;
use crate::response::{FaceResult, PersonDetails, RecognitionResult};
use crate::storage::{
    JobRecord, ObjectStore, PeopleTable, ResultRecord, ResultStatus, ResultsQueue, ResultsTable,
    StoredObject, now_rfc3339,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognizeRequest {
    /// Default: the function's `FACE_DEFAULT_COLLECTION`.
    #[serde(default)]
    pub collection: Option<String>,
    pub image: ImageInput,
}

/// What the results queue receives, and the results table keeps, for one
/// uploaded object version; an ended video job's is also published to the
/// results topic. Delivery is at least once: a copy can arrive again, with
/// the same `result_id` (see [`deliver_result`]). Its JSON Schema is
/// `schemas/result-message.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResultMessage {
    /// `s3://<bucket>/<key>#<version id or etag>`: one per object version,
    /// the same in every copy. Consumers drop an id they have already seen
    /// ([`RecentResultIds`]).
    pub result_id: String,
    pub bucket: String,
    pub key: String,
    pub collection: String,
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RecognitionResult>,
    /// An MP4's scan job, once it ended (done or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<face_api::jobs::ScanJobResponse>,
    /// RFC 3339: when S3 said the upload was created (its event time), for
    /// consumers' latency; absent for direct submissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// RFC 3339: when the result was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// What happened to one upload of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadOutcome {
    pub bucket: String,
    pub key: String,
    #[serde(flatten)]
    pub status: UploadStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UploadStatus {
    Recognized {
        result_id: String,
        people: Vec<String>,
        faces: usize,
    },
    /// Not an image we can read; recorded, never retried successfully.
    BadInput {
        result_id: Option<String>,
        error: String,
    },
    /// This object version was already processed (a repeated event).
    Duplicate {
        result_id: String,
        original: ResultStatus,
    },
    /// An MP4: its scan job was started (its result comes when it ends).
    VideoJob {
        job_id: String,
        video_result_id: String,
    },
    /// Outside the upload prefix, or S3's test event.
    Skipped { reason: String },
}

/// The reply to a direct S3 event invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadsReport {
    pub uploads: Vec<UploadOutcome>,
}

/// `s3://<bucket>/<key>#<version id or etag>`.
pub fn result_id(bucket: &str, key: &str, version_tag: &str) -> String {
    format!("s3://{bucket}/{key}#{}", version_tag.trim_matches('"'))
}

#[derive(Debug)]
pub struct Recognizer<O, P, R, Q> {
    pipeline: Arc<FacePipeline>,
    objects: O,
    people: P,
    results: R,
    queue: Q,
    cache: CollectionCache,
    bucket: String,
    upload_prefix: String,
    default_collection: String,
    videos: Option<VideoIntake>,
    metrics: Metrics,
}

#[derive(Debug)]
pub struct RecognizerStores<O, P, R, Q> {
    pub objects: O,
    pub people: P,
    pub results: R,
    pub queue: Q,
}

impl<O, P, R, Q> Recognizer<O, P, R, Q>
where
    O: ObjectStore,
    P: PeopleTable,
    R: ResultsTable,
    Q: ResultsQueue,
{
    pub fn new(
        pipeline: Arc<FacePipeline>,
        stores: RecognizerStores<O, P, R, Q>,
        config: &crate::ServiceConfig,
    ) -> Self {
        Self {
            pipeline,
            objects: stores.objects,
            people: stores.people,
            results: stores.results,
            queue: stores.queue,
            cache: CollectionCache::default(),
            bucket: config.bucket.clone(),
            upload_prefix: config.upload_prefix.clone(),
            default_collection: config.default_collection.clone(),
            videos: None,
            metrics: Metrics::default(),
        }
    }

    /// Each recognized image writes its stage timings and face counts.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// MP4 uploads start scan jobs here (without, they are bad input).
    pub fn with_videos(mut self, videos: VideoIntake) -> Self {
        self.videos = Some(videos);
        self
    }

    pub fn stores(&self) -> RecognizerStores<&O, &P, &R, &Q> {
        RecognizerStores {
            objects: &self.objects,
            people: &self.people,
            results: &self.results,
            queue: &self.queue,
        }
    }

    /// Every trigger enters here. A direct request answers with the
    /// recognition; an SQS batch with the failed message ids; an S3 event
    /// with what happened to each upload, or an error when one must be
    /// retried.
    pub async fn handle(&self, payload: Value) -> Result<Value, ServiceError> {
        let reply = match Invocation::classify(payload)? {
            Invocation::Direct(request) => serde_json::to_value(self.direct(request).await?),
            Invocation::Sqs(event) => serde_json::to_value(self.sqs_batch(event).await),
            Invocation::S3(event) => {
                let mut uploads = Vec::new();
                for record in &event.records {
                    // Async invokes are retried by Lambda: only transient
                    // failures should be, bad images are recorded instead.
                    uploads.push(self.upload(record).await?);
                }
                serde_json::to_value(UploadsReport { uploads })
            }
        };
        reply.map_err(|e| ServiceError::Internal(format!("serializing the reply: {e}")))
    }

    async fn direct(&self, request: Value) -> Result<RecognitionResult, ServiceError> {
        let request: RecognizeRequest = serde_json::from_value(request)
            .map_err(|e| ServiceError::BadRequest(format!("invalid recognize request: {e}")))?;
        let collection = request
            .collection
            .unwrap_or_else(|| self.default_collection.clone());
        validate_collection_name(&collection)?;
        let max_bytes = self.pipeline.config().decode_limits.max_encoded_bytes;
        let image = request
            .image
            .fetch(&self.objects, &self.bucket, 0, max_bytes)
            .await?;
        self.recognize_bytes(&collection, image.bytes).await
    }

    /// Recognizes one image against the current state of a collection.
    pub async fn recognize_bytes(
        &self,
        collection: &str,
        bytes: Vec<u8>,
    ) -> Result<RecognitionResult, ServiceError> {
        // The photo decodes and its faces are found while the collection's
        // listing (an S3 round trip every request) is fetched.
        let pipeline = Arc::clone(&self.pipeline);
        let detection = tokio::task::spawn_blocking(move || {
            let mut timings = StageTimings::default();
            let (image, faces) = pipeline.decode_and_detect(&bytes, &mut timings)?;
            Ok::<_, ServiceError>((image, faces, timings))
        });
        let current = self
            .cache
            .current(
                &self.objects,
                &self.bucket,
                collection,
                self.pipeline.face_model_version(),
            )
            .await;
        let task_failed =
            |e: tokio::task::JoinError| ServiceError::Internal(format!("recognition task: {e}"));
        // The photo's errors (bad input) come first: a listing that failed
        // meanwhile does not hide them.
        let (image, faces, mut timings) = detection.await.map_err(task_failed)??;
        let current = current?;
        let people = current.people.len();
        let pipeline = Arc::clone(&self.pipeline);
        let (width, height, faces, timings) = tokio::task::spawn_blocking(move || {
            let faces = pipeline.recognize_faces(&image, faces, &current, &mut timings)?;
            Ok::<_, ServiceError>((image.width(), image.height(), faces, timings))
        })
        .await
        .map_err(task_failed)??;
        let matched = faces.iter().filter(|f| f.face_match.identity.is_some());
        self.metrics.emit(&[
            (Metric::DecodeTime, timings.decode_ms),
            (Metric::DetectTime, timings.detect_ms),
            (Metric::AlignTime, timings.align_ms),
            (Metric::EmbedTime, timings.embed_ms),
            (Metric::MatchTime, timings.match_ms),
            (Metric::FacesFound, faces.len() as f64),
            (Metric::FacesMatched, matched.count() as f64),
        ]);
        Ok(RecognitionResult {
            collection: collection.to_string(),
            face_model_version: self.pipeline.face_model_version().to_string(),
            collection_people: people,
            image_width: width,
            image_height: height,
            faces: faces
                .iter()
                .map(|f| FaceResult::new(f, width, height))
                .collect(),
            timings_ms: timings,
        })
    }

    /// Processes each message on its own: one bad image never fails or
    /// repeats the others. Only what a retry can fix is reported failed (SQS
    /// redelivers it, then moves it to the DLQ): a bad input is recorded
    /// once and its message deleted. Messages run one after another: an
    /// environment has one or two vCPUs and inference is CPU-bound.
    async fn sqs_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for message in &event.records {
            let span = tracing::info_span!("message", message_id = %message.message_id);
            let _enter = span.enter();
            let failed = match QueueBody::parse(&message.body) {
                Ok(QueueBody::TestEvent) => false,
                Ok(QueueBody::S3(S3Event { records })) => {
                    let mut failed = false;
                    for record in &records {
                        match self.upload(record).await {
                            Ok(_) => {}
                            Err(e) if e.kind() == ErrorKind::BadInput => {
                                tracing::warn!(error = %e, "bad input, not retried");
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, kind = ?e.kind(), "upload failed");
                                failed = true;
                            }
                        }
                    }
                    failed
                }
                // Not an upload, so nothing to record: only S3 sends here,
                // so this is a misconfiguration an operator finds in the DLQ.
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable message");
                    true
                }
            };
            if failed {
                failures.push(BatchItemFailure {
                    item_identifier: message.message_id.clone(),
                });
            }
        }
        SqsBatchResponse {
            batch_item_failures: failures,
        }
    }

    /// The collection an upload is matched against:
    /// `<prefix><collection>/<name>`, or the default for `<prefix><name>`.
    fn collection_for_key(&self, key: &str) -> Result<Option<String>, ServiceError> {
        let Some(rest) = key.strip_prefix(&self.upload_prefix) else {
            return Ok(None);
        };
        match rest.split_once('/') {
            Some((collection, _)) => {
                validate_collection_name(collection)?;
                Ok(Some(collection.to_string()))
            }
            None => Ok(Some(self.default_collection.clone())),
        }
    }

    /// One uploaded object version, processed once: the results table is
    /// the record of what was done; the queue hears of it at least once.
    async fn upload(&self, record: &S3EventRecord) -> Result<UploadOutcome, ServiceError> {
        let bucket = record.s3.bucket.name.clone();
        let key = record.s3.object.decoded_key()?;
        let outcome = |status| UploadOutcome {
            bucket: bucket.clone(),
            key: key.clone(),
            status,
        };
        let collection = match self.collection_for_key(&key) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Ok(outcome(UploadStatus::Skipped {
                    reason: format!("outside the upload prefix {}", self.upload_prefix),
                }));
            }
            Err(e) => {
                return Ok(outcome(UploadStatus::BadInput {
                    result_id: None,
                    error: e.to_string(),
                }));
            }
        };
        let event_tag = record.s3.object.version_tag().map(str::to_owned);
        if let Some(tag) = &event_tag
            && let Some(done) = self.already_done(&result_id(&bucket, &key, tag)).await?
        {
            return Ok(outcome(done));
        }

        let max_bytes = self.pipeline.config().decode_limits.max_encoded_bytes;
        // The event's version, not the key's current one: an overwrite
        // before this runs must not be recorded under this version's id.
        let event_version = record.s3.object.version_id();
        let fetched = self
            .objects
            .get(&bucket, &key, event_version, max_bytes)
            .await;
        if is_video(&self.objects, (&bucket, &key, event_version), &fetched).await? {
            // The job's tag, and the version id its workers read when the
            // tag is one (else the tag is an ETag their reads must match).
            let (tag, version_id) = match (&event_tag, &fetched) {
                (Some(tag), _) => (tag.clone(), event_version.map(str::to_owned)),
                (None, Ok(o)) if o.version_id.is_some() || o.etag.is_some() => (
                    o.version_id
                        .clone()
                        .or_else(|| o.etag.clone())
                        .unwrap_or_default(),
                    o.version_id.clone(),
                ),
                (None, _) => {
                    let head = self.objects.head(&bucket, &key).await?;
                    let tag = head.version_tag().unwrap_or_default().to_string();
                    (tag, head.version_id)
                }
            };
            return self
                .video(
                    &bucket,
                    &key,
                    (&tag, version_id),
                    &collection,
                    record.event_time.clone(),
                )
                .await
                .map(outcome);
        }
        let object_tag = fetched
            .as_ref()
            .ok()
            .and_then(|o| o.version_id.clone().or_else(|| o.etag.clone()));
        let Some(tag) = event_tag.clone().or(object_tag) else {
            // Neither the event nor the store identifies the version, so no
            // result can be keyed: report without recording.
            let error = match fetched {
                Err(e) => ServiceError::from(e),
                Ok(_) => ServiceError::BadRequest("object has neither version id nor ETag".into()),
            };
            if error.kind() != ErrorKind::BadInput {
                return Err(error);
            }
            return Ok(outcome(UploadStatus::BadInput {
                result_id: None,
                error: error.to_string(),
            }));
        };
        let id = result_id(&bucket, &key, &tag);
        if event_tag.is_none()
            && let Some(done) = self.already_done(&id).await?
        {
            return Ok(outcome(done));
        }

        let recognized = match fetched {
            Ok(object) => self.recognize_bytes(&collection, object.bytes).await,
            Err(e) => Err(e.into()),
        };
        let mut message = ResultMessage {
            result_id: id.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
            collection: collection.clone(),
            status: ResultStatus::Ok,
            error: None,
            result: None,
            job: None,
            uploaded_at: record.event_time.clone(),
            finished_at: Some(now_rfc3339()),
        };
        let status = match recognized {
            Ok(mut result) => {
                self.attach_person_details(&collection, &mut result).await?;
                let status = UploadStatus::Recognized {
                    result_id: id.clone(),
                    people: result.people(),
                    faces: result.faces.len(),
                };
                message.result = Some(result);
                status
            }
            Err(e) if e.kind() == ErrorKind::BadInput => {
                tracing::warn!(%key, error = %e, "upload is not a usable image");
                message.status = ResultStatus::BadInput;
                message.error = Some(e.to_string());
                UploadStatus::BadInput {
                    result_id: Some(id.clone()),
                    error: e.to_string(),
                }
            }
            Err(e) => return Err(e),
        };

        let body = serde_json::to_string(&message)
            .map_err(|e| ServiceError::Internal(format!("serializing the result: {e}")))?;
        let record = ResultRecord {
            result_id: id.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
            collection,
            status: message.status,
            message: body,
            delivered: false,
            created_at: now_rfc3339(),
        };
        if !self.results.put_if_absent(&record).await? {
            // Another invocation got there first: it delivers, or we finish its delivery.
            if let Some(done) = self.already_done(&id).await? {
                return Ok(outcome(done));
            }
        }
        self.deliver(&record).await?;
        tracing::info!(%id, status = ?status, "upload processed");
        Ok(outcome(status))
    }

    /// An MP4 upload: starts its scan job (the job's end delivers its
    /// result). `version` is the job's tag and, when the tag is an S3
    /// version id, that id (its workers read that version).
    async fn video(
        &self,
        bucket: &str,
        key: &str,
        (tag, version_id): (&str, Option<String>),
        collection: &str,
        uploaded_at: Option<String>,
    ) -> Result<UploadStatus, ServiceError> {
        let Some(videos) = &self.videos else {
            return Ok(UploadStatus::BadInput {
                result_id: None,
                error: format!("{key} is a video, and this stack scans no videos"),
            });
        };
        if tag.is_empty() {
            return Ok(UploadStatus::BadInput {
                result_id: None,
                error: format!("{key} has neither version id nor ETag"),
            });
        }
        let job = videos
            .start(
                JobRecord::queued(bucket, key, tag, collection, uploaded_at)
                    .with_version_id(version_id),
            )
            .await?;
        Ok(UploadStatus::VideoJob {
            job_id: job.job_id,
            video_result_id: job.video_result_id,
        })
    }

    /// The outcome of an earlier processing of this version, finishing its
    /// delivery to the queue if that was interrupted.
    async fn already_done(&self, id: &str) -> Result<Option<UploadStatus>, ServiceError> {
        let Some(existing) = self.results.get(id).await? else {
            return Ok(None);
        };
        if !existing.delivered {
            self.deliver(&existing).await?;
        }
        tracing::info!(%id, "repeated event: already processed");
        Ok(Some(UploadStatus::Duplicate {
            result_id: id.to_string(),
            original: existing.status,
        }))
    }

    async fn deliver(&self, record: &ResultRecord) -> Result<(), ServiceError> {
        deliver_result(&self.results, &self.queue, record).await
    }

    async fn attach_person_details(
        &self,
        collection: &str,
        result: &mut RecognitionResult,
    ) -> Result<(), ServiceError> {
        let mut records = BTreeMap::new();
        for person in result.people() {
            let record = self.people.get(collection, &person).await?;
            records.insert(person, record);
        }
        for face in &mut result.faces {
            if let Some(m) = &face.r#match
                && let Some(Some(record)) = records.get(&m.person)
            {
                face.person_details = Some(PersonDetails {
                    attributes: record.attributes.clone(),
                    face_count: record.face_count,
                });
            }
        }
        Ok(())
    }
}

/// Sends a written result to the results queue and marks it delivered.
/// The message group is the result (one per upload, so consumers' threads
/// run in parallel), the deduplication id its hash.
///
/// At least once, not exactly once: a function that dies after the send
/// and before the mark sends again when the upload is retried, and SQS
/// drops that copy only within its 5-minute deduplication window, while a
/// retry comes after the visibility timeout (minutes). Consumers dedupe on
/// `result_id`.
pub async fn deliver_result<R: ResultsTable + ?Sized, Q: ResultsQueue + ?Sized>(
    results: &R,
    queue: &Q,
    record: &ResultRecord,
) -> Result<(), ServiceError> {
    let dedup = hex::encode(Sha256::digest(record.result_id.as_bytes()));
    queue.send(&dedup, &dedup, &record.message).await?;
    results.mark_delivered(&record.result_id).await?;
    Ok(())
}

/// The result ids a consumer saw last, to drop a result delivered again
/// (delivery is at least once, with a stable `result_id`). Bounded: past
/// `capacity` ids the oldest is forgotten, so a copy is recognized only
/// while its first is among the last `capacity` results; a copy comes
/// minutes after its first.
#[derive(Debug)]
pub struct RecentResultIds {
    capacity: usize,
    order: std::collections::VecDeque<Arc<str>>,
    seen: std::collections::HashSet<Arc<str>>,
}

impl RecentResultIds {
    /// Hours of results at tens per second, in a few MB.
    pub const DEFAULT_CAPACITY: usize = 50_000;

    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: Default::default(),
            seen: Default::default(),
        }
    }

    /// Whether `result_id` is new; remembers it.
    pub fn first_time(&mut self, result_id: &str) -> bool {
        if self.seen.contains(result_id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        let id: Arc<str> = Arc::from(result_id);
        self.order.push_back(Arc::clone(&id));
        self.seen.insert(id);
        true
    }
}

impl Default for RecentResultIds {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// Whether the upload `fetched` read is a video: its bytes start like an
/// MP4, or, too large for an image, its first 16 bytes do. A failed read of
/// those is an error (retried when transient) unless the object is gone:
/// taken for "not a video", a throttled read turned a video into a bad
/// image, and its job was never started.
async fn is_video<O: ObjectStore>(
    objects: &O,
    (bucket, key, version): (&str, &str, Option<&str>),
    fetched: &Result<StoredObject, StorageError>,
) -> Result<bool, StorageError> {
    match fetched {
        Ok(object) => Ok(looks_like_mp4(&object.bytes)),
        Err(StorageError::TooLarge { .. }) => {
            match objects.get_range(bucket, key, version, 0, 16).await {
                Ok(range) => Ok(looks_like_mp4(&range.bytes)),
                Err(StorageError::NotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryObjects;

    #[tokio::test]
    async fn a_large_upload_is_a_video_by_its_first_bytes_and_a_failed_read_is_retried() {
        let objects = MemoryObjects::default();
        let mut mp4 = b"\0\0\0\x18ftypisom".to_vec();
        mp4.resize(4096, 0);
        objects.insert("b", "uploads/v.mp4", mp4);
        objects.insert("b", "uploads/big.jpg", vec![0xff; 4096]);
        let too_large = |key: &str| {
            Err(StorageError::TooLarge {
                what: key.into(),
                size_bytes: 4096,
                limit_bytes: 1024,
            })
        };
        let sniff = |key: &'static str| {
            let objects = objects.clone();
            async move { is_video(&objects, ("b", key, None), &too_large(key)).await }
        };
        assert!(sniff("uploads/v.mp4").await.unwrap());
        assert!(!sniff("uploads/big.jpg").await.unwrap());
        // Deleted since the event: not a video (the image path reports it).
        assert!(!sniff("uploads/gone.mp4").await.unwrap());
        // Throttled: an error to retry, not "not a video".
        objects.fail_next.set(1);
        let err = sniff("uploads/v.mp4").await.unwrap_err();
        assert!(matches!(err, StorageError::Transient { .. }), "{err}");
        assert!(sniff("uploads/v.mp4").await.unwrap());
    }

    #[test]
    fn recent_ids_drop_repeats_and_forget_the_oldest_first() {
        let mut recent = RecentResultIds::new(2);
        assert!(recent.first_time("s3://b/k#1"));
        assert!(!recent.first_time("s3://b/k#1"));
        assert!(recent.first_time("s3://b/k#2"));
        assert!(recent.first_time("s3://b/k#3"));
        // #1 was the oldest of three: forgotten, so new again.
        assert!(recent.first_time("s3://b/k#1"));
        assert!(!recent.first_time("s3://b/k#3"));
        assert_eq!(recent.order.len(), 2);
        assert_eq!(recent.seen.len(), 2);
    }
}

#[cfg(test)]
mod schema {
    use face_contracts::schema::{RESULT_MESSAGE, render};

    use super::ResultMessage;

    #[test]
    fn committed_result_message_schema_is_up_to_date() {
        let path = format!(
            "{}/../../schemas/{}",
            env!("CARGO_MANIFEST_DIR"),
            RESULT_MESSAGE.file
        );
        let generated = render::<ResultMessage>();
        if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{} is out of date with face_service::recognize::ResultMessage: \
             run `{}` and commit it",
            RESULT_MESSAGE.file,
            RESULT_MESSAGE.regenerate
        );
    }
}
