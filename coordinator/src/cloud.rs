//! The parts of a video scan on deployed regions ([`crate::video_scan`]
//! puts them together): the video and the collection are staged in every
//! region's bucket, the video's chunks fan out to each region's
//! `scan-worker` through [`fan_out`], every frame's matches come back
//! exactly once, and the invocations are metered for the bill.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use face_api::pricing;
use face_contracts::layout::{mirror_manifest_key, parse_person_key, people_prefix};
use face_service::error::StorageError;
use face_service::storage::{ListedObject, ObjectStore};
use face_video::{
    ChunkScan, FrameMatches, FrameRange, ScanChunkRequest, ScanConfig, ScanStats, VideoIndex,
    merge_chunk_frames, plan_chunks,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::schedule::{
    FanOutError, Progress, Region, RegionReport, RetryPolicy, Worker, WorkerError, fan_out,
};

/// Used when neither the stack nor the account says how many invocations a
/// region may run (moto, for one, has no account settings).
pub const FALLBACK_CAPACITY: usize = 10;

#[derive(Debug, Error)]
pub enum CloudError {
    #[error("{region}: staging the video: {message}")]
    StageVideo { region: String, message: String },
    #[error("{region}: copying collection {collection}: {message}")]
    CopyCollection {
        region: String,
        collection: String,
        message: String,
    },
    #[error("collection {collection} has no people in s3://{bucket}: enroll them first")]
    EmptyCollection { bucket: String, collection: String },
    #[error(
        "{region}: collection {collection} has people enrolled or changed in {region} itself \
         ({}): a scan reads the source region's collection everywhere; enroll them in the \
         source region (or pass {region} as --collection-region), or forget them in {region}",
        people.join(", ")
    )]
    PeopleOnlyInRegion {
        region: String,
        collection: String,
        people: Vec<String>,
    },
    #[error("planning the chunks: {0}")]
    Plan(#[from] face_video::VideoError),
    #[error(transparent)]
    FanOut(#[from] FanOutError),
    #[error("the workers' frames do not cover the video once: {0}")]
    Frames(String),
}

/// One region's `scan-worker`, as deployed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanRegion {
    pub name: String,
    pub bucket: String,
    pub function_name: String,
    pub memory_mib: u32,
    pub timeout_s: u32,
    pub arm64: bool,
    /// Invocations in flight at most (see [`region_capacity`]).
    pub max_in_flight: usize,
}

/// How many invocations a region may run at once: the least of the
/// function's reserved concurrency (all it can ever get), the stack's
/// `max_concurrency`, the account's unreserved pool (`GetAccountSettings`)
/// and the user's cap; [`FALLBACK_CAPACITY`] when none of them is known.
pub fn region_capacity(
    reserved: Option<u32>,
    max_concurrency: Option<u32>,
    account_unreserved: Option<u32>,
    user_cap: Option<u32>,
) -> usize {
    // A reserved function does not draw from the unreserved pool.
    let account = if reserved.is_some() {
        None
    } else {
        account_unreserved
    };
    [reserved, max_concurrency, account, user_cap]
        .into_iter()
        .flatten()
        .min()
        .map_or(FALLBACK_CAPACITY, |n| n.max(1) as usize)
}

/// The account's unreserved concurrency in the client's region; `None`
/// when the endpoint does not answer `GetAccountSettings` (moto).
pub async fn account_unreserved_concurrency(lambda: &aws_sdk_lambda::Client) -> Option<u32> {
    match lambda.get_account_settings().send().await {
        Ok(settings) => settings
            .account_limit()
            .and_then(|l| l.unreserved_concurrent_executions())
            .and_then(|n| u32::try_from(n).ok()),
        Err(e) => {
            tracing::warn!(error = %aws_sdk_lambda::error::DisplayErrorContext(&e), "lambda:GetAccountSettings failed; capacity from the stack only");
            None
        }
    }
}

/// Part size of multipart uploads (S3 wants at least 5 MiB but the last).
pub const UPLOAD_PART_BYTES: u64 = 64 * 1024 * 1024;

/// Uploads the file at `path` to `bucket`/`key` unless an object of the
/// same size is there already (the key names the content). Files over
/// `part_bytes` go up in parts, streamed from disk, never whole in memory.
/// Returns whether anything was uploaded.
pub async fn stage_video(
    s3: &aws_sdk_s3::Client,
    region: &str,
    bucket: &str,
    owner: &str,
    key: &str,
    path: &Path,
    part_bytes: u64,
) -> Result<bool, CloudError> {
    let fail = |message: String| CloudError::StageVideo {
        region: region.to_string(),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?
        .len();
    match s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .expected_bucket_owner(owner)
        .send()
        .await
    {
        Ok(head) if head.content_length().and_then(|n| u64::try_from(n).ok()) == Some(size) => {
            return Ok(false);
        }
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
        Err(e) => return Err(fail(format!("s3:HeadObject: {}", DisplayErrorContext(&e)))),
    }
    let part_bytes = part_bytes.max(5 * 1024 * 1024);
    if size <= part_bytes {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .expected_bucket_owner(owner)
            .body(body)
            .send()
            .await
            .map_err(|e| fail(format!("s3:PutObject: {}", DisplayErrorContext(&e))))?;
        return Ok(true);
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .expected_bucket_owner(owner)
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "s3:CreateMultipartUpload: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    let upload_id = upload.upload_id().unwrap_or_default().to_string();
    let target = (bucket, owner, key);
    let parts = upload_parts(s3, target, &upload_id, path, size, part_bytes).await;
    match parts {
        Ok(parts) => {
            s3.complete_multipart_upload()
                .bucket(bucket)
                .key(key)
                .expected_bucket_owner(owner)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    fail(format!(
                        "s3:CompleteMultipartUpload: {}",
                        DisplayErrorContext(&e)
                    ))
                })?;
            Ok(true)
        }
        Err(message) => {
            // Parts of an abandoned upload are billed until aborted.
            let _ = s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .expected_bucket_owner(owner)
                .upload_id(&upload_id)
                .send()
                .await;
            Err(fail(message))
        }
    }
}

/// `target`: bucket, its expected owner, key.
async fn upload_parts(
    s3: &aws_sdk_s3::Client,
    (bucket, owner, key): (&str, &str, &str),
    upload_id: &str,
    path: &Path,
    size: u64,
    part_bytes: u64,
) -> Result<Vec<CompletedPart>, String> {
    let mut parts = Vec::new();
    let mut offset = 0u64;
    let mut number = 1i32;
    while offset < size {
        let length = part_bytes.min(size - offset);
        let body = ByteStream::read_from()
            .path(path)
            .offset(offset)
            .length(Length::Exact(length))
            .build()
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .expected_bucket_owner(owner)
            .upload_id(upload_id)
            .part_number(number)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("s3:UploadPart {number}: {}", DisplayErrorContext(&e)))?;
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build(),
        );
        offset += length;
        number += 1;
    }
    Ok(parts)
}

/// The people objects of `collection` in the scan's source bucket (other
/// keys under `people/` are no one's); none is an error (a mistyped name
/// would otherwise scan for no one, and its mirror wipe the others).
pub async fn source_people<S: ObjectStore>(
    src: &S,
    bucket: &str,
    region: &str,
    collection: &str,
) -> Result<Vec<ListedObject>, CloudError> {
    let wanted = src
        .list(bucket, &people_prefix(collection))
        .await
        .map_err(|e| CloudError::CopyCollection {
            region: region.to_string(),
            collection: collection.to_string(),
            message: e.to_string(),
        })?
        .into_iter()
        .filter(|o| parse_person_key(&o.key).is_some())
        .collect::<Vec<_>>();
    if wanted.is_empty() {
        return Err(CloudError::EmptyCollection {
            bucket: bucket.to_string(),
            collection: collection.to_string(),
        });
    }
    Ok(wanted)
}

/// What [`copy_collection`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CollectionCopy {
    pub people: usize,
    pub copied: usize,
    pub removed: usize,
}

/// The people of a collection a scan copied into one region's bucket
/// ([`mirror_manifest_key`]): each person key with the ETag of the copy as
/// written. A person whose object still has that ETag is the mirror's to
/// replace or remove; any other is the region's own.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorManifest {
    people: BTreeMap<String, String>,
}

/// The manifest's cap: a few dozen bytes a person.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// What mirroring a collection into one region will do, decided from
/// listings alone ([`plan_mirror`]) so that every region can be checked
/// before any is written to ([`apply_mirror`]).
#[derive(Debug, Clone)]
pub struct MirrorPlan {
    region: String,
    collection: String,
    people: usize,
    /// Person keys to copy from the source (new, or changed there), each
    /// with the ETag it has in `to` as planned (`None`: not there) and its
    /// ETag in the source.
    copy: Vec<(String, Option<String>, String)>,
    /// Person keys the mirror copied that the source has forgotten since,
    /// with their ETag as planned.
    remove: Vec<(String, String)>,
    /// The manifest as read, with identical copies adopted and entries of
    /// objects gone dropped.
    manifest: MirrorManifest,
    manifest_changed: bool,
}

/// Person keys and ETags of a listing (other keys under `people/` are
/// neither copied nor touched).
fn person_etags(listed: Vec<ListedObject>) -> BTreeMap<String, String> {
    listed
        .into_iter()
        .filter(|o| parse_person_key(&o.key).is_some())
        .map(|o| (o.key, o.etag))
        .collect()
}

/// Decides how `to` becomes the same as `from` for `collection`: copies
/// of people new or changed in the source, removal of the copies the
/// source has forgotten since. Refused, before anything is written, when
/// the source is empty (or mistyped: mirroring it would wipe the others),
/// or when `to` holds people the mirror did not write there (enrolled in
/// that region, or changed there since): replacing or removing them would
/// lose them, keeping them would let that region's chunks name people the
/// others cannot. `to` must not be `from`'s bucket.
pub async fn plan_mirror<S: ObjectStore, D: ObjectStore>(
    from: (&S, &str),
    to: (&D, &str),
    region: &str,
    collection: &str,
) -> Result<MirrorPlan, CloudError> {
    let fail = |message: String| CloudError::CopyCollection {
        region: region.to_string(),
        collection: collection.to_string(),
        message,
    };
    let ((src, src_bucket), (dst, dst_bucket)) = (from, to);
    let wanted = person_etags(source_people(src, src_bucket, region, collection).await?);
    let present = person_etags(
        dst.list(dst_bucket, &people_prefix(collection))
            .await
            .map_err(|e| fail(e.to_string()))?,
    );
    let manifest_key = mirror_manifest_key(collection);
    let read = match dst
        .get(dst_bucket, &manifest_key, None, MAX_MANIFEST_BYTES)
        .await
    {
        Ok(stored) => serde_json::from_slice::<MirrorManifest>(&stored.bytes)
            .map_err(|e| fail(format!("s3://{dst_bucket}/{manifest_key}: {e}")))?,
        Err(StorageError::NotFound { .. }) => MirrorManifest::default(),
        Err(e) => return Err(fail(e.to_string())),
    };
    // Entries whose object is gone (removed, or a removal recorded late).
    let mut manifest = MirrorManifest {
        people: read
            .people
            .iter()
            .filter(|(key, _)| present.contains_key(*key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let (mut copy, mut remove, mut own) = (Vec::new(), Vec::new(), Vec::new());
    for (key, etag) in &present {
        let source = wanted.get(key);
        if manifest.people.get(key) == Some(etag) {
            match source {
                None => remove.push((key.clone(), etag.clone())),
                Some(s) if s != etag => copy.push((key.clone(), Some(etag.clone()), s.clone())),
                Some(_) => {}
            }
        } else if source == Some(etag) {
            // The same bytes as the source's (a copy whose record was
            // lost, or made before manifests): the mirror's from now on.
            manifest.people.insert(key.clone(), etag.clone());
        } else if let Some((_, person)) = parse_person_key(key) {
            own.push(person.to_string());
        }
    }
    if !own.is_empty() {
        return Err(CloudError::PeopleOnlyInRegion {
            region: region.to_string(),
            collection: collection.to_string(),
            people: own,
        });
    }
    copy.extend(
        wanted
            .iter()
            .filter(|(k, _)| !present.contains_key(*k))
            .map(|(k, source)| (k.clone(), None, source.clone())),
    );
    let manifest_changed = manifest != read;
    Ok(MirrorPlan {
        region: region.to_string(),
        collection: collection.to_string(),
        people: wanted.len(),
        copy,
        remove,
        manifest,
        manifest_changed,
    })
}

/// Carries out a [`plan_mirror`]: copies, removals, then the manifest with
/// the ETag of every copy written. Each key is checked just before it is
/// written or removed: one enrolled or changed in `to` since the plan is
/// refused as [`CloudError::PeopleOnlyInRegion`], not overwritten; one
/// another mirror (a concurrent scan) already made as planned, a copy with
/// the source's bytes or a removal, is recorded as done. An
/// interruption loses nothing: a copy left unrecorded has the source's
/// bytes and is adopted by the next plan (or refused, if the source changed
/// meanwhile), a removal left recorded is dropped from the manifest.
pub async fn apply_mirror<S: ObjectStore, D: ObjectStore>(
    plan: MirrorPlan,
    from: (&S, &str),
    to: (&D, &str),
) -> Result<CollectionCopy, CloudError> {
    let MirrorPlan {
        region,
        collection,
        people,
        copy,
        remove,
        mut manifest,
        manifest_changed,
    } = plan;
    let fail = |message: String| CloudError::CopyCollection {
        region: region.clone(),
        collection: collection.clone(),
        message,
    };
    let ((src, src_bucket), (dst, dst_bucket)) = (from, to);
    let now = |key| destination_etag(dst, dst_bucket, key, &region, &collection);
    let refused = |key: &str| CloudError::PeopleOnlyInRegion {
        region: region.clone(),
        collection: collection.clone(),
        people: vec![
            parse_person_key(key)
                .map_or(key, |(_, person)| person)
                .to_string(),
        ],
    };
    let (mut copied, mut removed) = (0, 0);
    for (key, planned, source) in &copy {
        // S3's conditional writes would close the gap between this check
        // and the write; a check a moment before narrows it from the plan.
        match now(key).await? {
            now if now == *planned => {}
            Some(now) if now == *source => {
                manifest.people.insert(key.clone(), now);
                continue;
            }
            _ => return Err(refused(key)),
        }
        // People are a few KB (128 floats per face).
        let stored = src
            .get(src_bucket, key, None, 64 * 1024 * 1024)
            .await
            .map_err(|e| fail(e.to_string()))?;
        dst.put(dst_bucket, key, stored.bytes)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let written = dst
            .head(dst_bucket, key)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let etag = written
            .etag
            .ok_or_else(|| fail(format!("s3://{dst_bucket}/{key} has no ETag")))?;
        manifest.people.insert(key.clone(), etag);
        copied += 1;
    }
    for (key, planned) in &remove {
        match now(key).await? {
            Some(now) if now == *planned => {
                dst.delete(dst_bucket, key)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                removed += 1;
            }
            None => {}
            Some(_) => return Err(refused(key)),
        }
        manifest.people.remove(key);
    }
    if manifest_changed || !copy.is_empty() || !remove.is_empty() {
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| fail(format!("serializing the manifest: {e}")))?;
        dst.put(dst_bucket, &mirror_manifest_key(&collection), bytes)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(CollectionCopy {
        people,
        copied,
        removed,
    })
}

/// The ETag `key` has in the mirror's destination now (`None`: absent).
async fn destination_etag<D: ObjectStore>(
    dst: &D,
    bucket: &str,
    key: &str,
    region: &str,
    collection: &str,
) -> Result<Option<String>, CloudError> {
    match dst.head(bucket, key).await {
        Ok(head) => Ok(head.etag),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(CloudError::CopyCollection {
            region: region.to_string(),
            collection: collection.to_string(),
            message: e.to_string(),
        }),
    }
}

/// [`plan_mirror`] then [`apply_mirror`]: makes `collection` in `to` the
/// same as in `from`.
pub async fn copy_collection<S: ObjectStore, D: ObjectStore>(
    from: (&S, &str),
    to: (&D, &str),
    region: &str,
    collection: &str,
) -> Result<CollectionCopy, CloudError> {
    let plan = plan_mirror(from, to, region, collection).await?;
    apply_mirror(plan, from, to).await
}

/// What the invocations used: Lambda bills each invocation's duration at
/// its memory size, failed attempts included.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Usage {
    pub invocations: u64,
    pub gb_s: f64,
    pub usd: f64,
}

/// Times every attempt. The client-side round trip bounds the billed
/// duration from above (it adds the network and, on a cold start, the
/// init that Lambda bills as well).
struct Metered {
    inner: Arc<dyn Worker<ScanChunkRequest, ChunkScan>>,
    regions: BTreeMap<String, ScanRegion>,
    usage: Mutex<Usage>,
}

#[async_trait]
impl Worker<ScanChunkRequest, ChunkScan> for Metered {
    async fn run(&self, region: &str, job: &ScanChunkRequest) -> Result<ChunkScan, WorkerError> {
        let started = Instant::now();
        let result = self.inner.run(region, job).await;
        let seconds = started.elapsed().as_secs_f64();
        if let Some(r) = self.regions.get(region) {
            let gb_s = pricing::gb_s(seconds * 1000.0, r.memory_mib);
            let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            usage.invocations += 1;
            usage.gb_s += gb_s;
            usage.usd += pricing::usd(gb_s, 1, r.arm64);
        }
        result
    }
}

/// What to scan for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanJob {
    /// The staged video's key (the same in every region's bucket).
    pub key: String,
    pub collection: String,
    pub config: ScanConfig,
    /// Frames per invocation (chunks end on keyframes, so about this).
    pub frames_per_chunk: u64,
}

/// A finished scan.
#[derive(Debug, Clone, Serialize)]
pub struct CloudScan {
    pub chunks: usize,
    /// Every frame of the video once, in order, faces or not.
    pub frames: Vec<FrameMatches>,
    pub stats: ScanStats,
    pub regions: BTreeMap<String, RegionReport>,
    pub retries: usize,
    pub wall_s: f64,
    pub usage: Usage,
}

/// Plans the chunks of `index`, runs them on the regions' workers, and
/// checks that the frames came back exactly once each.
pub async fn scan(
    index: &VideoIndex,
    regions: &[ScanRegion],
    worker: Arc<dyn Worker<ScanChunkRequest, ChunkScan>>,
    job: &ScanJob,
    policy: RetryPolicy,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<CloudScan, CloudError> {
    let chunks = plan_chunks(index, job.frames_per_chunk.max(1))?;
    let jobs: Vec<(u64, ScanChunkRequest)> = chunks
        .iter()
        .map(|c| {
            (
                u64::from(c.chunk),
                ScanChunkRequest {
                    bucket: None,
                    key: job.key.clone(),
                    collection: job.collection.clone(),
                    frames: c.frames,
                    config: job.config,
                },
            )
        })
        .collect();
    let plan: Vec<Region> = regions
        .iter()
        .map(|r| Region {
            name: r.name.clone(),
            max_in_flight: r.max_in_flight,
        })
        .collect();
    let metered = Arc::new(Metered {
        inner: worker,
        regions: regions
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect(),
        usage: Mutex::new(Usage::default()),
    });
    let report = fan_out(jobs, &plan, metered.clone(), policy, on_progress).await?;
    let usage = *metered.usage.lock().unwrap_or_else(|e| e.into_inner());

    let planned: BTreeMap<u64, FrameRange> = chunks
        .iter()
        .map(|c| (u64::from(c.chunk), c.frames))
        .collect();
    let mut stats = ScanStats::default();
    let mut frames = Vec::with_capacity(usize::try_from(index.frames()).unwrap_or(0));
    for (id, result) in report.results {
        let scan = result.result;
        if planned.get(&id) != Some(&scan.frames) {
            return Err(CloudError::Frames(format!(
                "chunk {id} answered for frames {:?}",
                scan.frames
            )));
        }
        stats.add(&scan.stats);
        frames.extend(scan.matches);
    }
    let frames = merge_chunk_frames(frames, index.frames()).map_err(CloudError::Frames)?;
    Ok(CloudScan {
        chunks: chunks.len(),
        frames,
        stats,
        regions: report.regions,
        retries: report.retries,
        wall_s: report.wall_time.as_secs_f64(),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use face_service::memory::MemoryObjects;

    #[test]
    fn capacity_is_the_tightest_known_limit() {
        assert_eq!(region_capacity(None, None, None, None), FALLBACK_CAPACITY);
        assert_eq!(region_capacity(None, None, Some(900), None), 900);
        assert_eq!(region_capacity(None, Some(40), Some(900), None), 40);
        assert_eq!(region_capacity(None, Some(40), Some(900), Some(8)), 8);
        // Reserved concurrency is the function's own, whatever the pool has left.
        assert_eq!(region_capacity(Some(50), None, Some(0), None), 50);
        assert_eq!(region_capacity(None, None, Some(0), None), 1);
    }

    #[tokio::test]
    async fn collection_copy_mirrors_people_by_etag_and_removes_only_what_it_copied() {
        let (src, dst) = (MemoryObjects::default(), MemoryObjects::default());
        let key = |p: &str| face_contracts::layout::person_key("c", p);
        let manifest = face_contracts::layout::mirror_manifest_key("c");
        src.insert("a", &key("ann"), b"ann-v1".to_vec());
        src.insert("a", &key("bob"), b"bob".to_vec());
        src.insert("a", "collections/other/people/zed.json", b"z".to_vec());
        dst.insert("b", &key("bob"), b"bob".to_vec());
        dst.insert("b", &key("dora"), b"enrolled here".to_vec());

        // Dora was enrolled in the destination alone: refused, nothing
        // written, nothing removed.
        let refused = copy_collection((&src, "a"), (&dst, "b"), "r", "c").await;
        assert!(
            matches!(&refused, Err(CloudError::PeopleOnlyInRegion { region, people, .. }) if region == "r" && people == &["dora"]),
            "{refused:?}"
        );
        assert_eq!(dst.keys("b"), vec![key("bob"), key("dora")]);

        dst.delete("b", &key("dora")).await.unwrap();
        let copy = copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        assert_eq!(
            copy,
            CollectionCopy {
                people: 2,
                copied: 1,
                removed: 0
            }
        );
        assert_eq!(
            dst.keys("b"),
            vec![manifest.clone(), key("ann"), key("bob")]
        );
        // Changed since: copied again; unchanged: left alone.
        src.insert("a", &key("ann"), b"ann-v2".to_vec());
        let again = copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        assert_eq!((again.copied, again.removed), (1, 0));

        // Forgotten in the source: the mirror it made goes too.
        src.delete("a", &key("bob")).await.unwrap();
        let after_forget = copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        assert_eq!((after_forget.copied, after_forget.removed), (0, 1));
        assert_eq!(dst.keys("b"), vec![manifest.clone(), key("ann")]);
        // ... and bob, enrolled in the destination later, is its own.
        dst.insert("b", &key("bob"), b"bob, here".to_vec());
        let refused = copy_collection((&src, "a"), (&dst, "b"), "r", "c").await;
        assert!(
            matches!(&refused, Err(CloudError::PeopleOnlyInRegion { people, .. }) if people == &["bob"]),
            "{refused:?}"
        );

        // A collection with no one in the source is refused, not mirrored.
        let empty = copy_collection((&src, "a"), (&dst, "b"), "r", "nobody").await;
        assert!(
            matches!(&empty, Err(CloudError::EmptyCollection { bucket, collection }) if bucket == "a" && collection == "nobody"),
            "{empty:?}"
        );
        assert_eq!(
            dst.keys("b"),
            vec![manifest.clone(), key("ann"), key("bob")]
        );

        // A copy changed in the destination (faces added there) is its own
        // now: neither replaced by the source's nor removed.
        dst.delete("b", &key("bob")).await.unwrap();
        dst.insert("b", &key("ann"), b"ann-v2 and a face added here".to_vec());
        let refused = copy_collection((&src, "a"), (&dst, "b"), "r", "c").await;
        assert!(
            matches!(&refused, Err(CloudError::PeopleOnlyInRegion { people, .. }) if people == &["ann"]),
            "{refused:?}"
        );
        let ann = dst.get("b", &key("ann"), None, 1024).await.unwrap();
        assert_eq!(ann.bytes, b"ann-v2 and a face added here");

        // Keys under people/ that are no person's are neither copied,
        // refused nor removed.
        dst.insert("b", &key("ann"), b"ann-v2".to_vec());
        let odd = "collections/c/people/notes/readme.txt";
        dst.insert("b", odd, b"x".to_vec());
        let copy = copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        assert_eq!((copy.copied, copy.removed), (0, 0));
        assert_eq!(dst.keys("b"), vec![manifest, key("ann"), odd.to_string()]);
    }

    #[tokio::test]
    async fn a_mirror_leaves_alone_what_its_region_changed_after_the_plan() {
        let (src, dst) = (MemoryObjects::default(), MemoryObjects::default());
        let key = |p: &str| face_contracts::layout::person_key("c", p);
        src.insert("a", &key("ann"), b"ann".to_vec());
        src.insert("a", &key("bob"), b"bob".to_vec());
        // Ann enrolled in the destination between the plan and its copy.
        let plan = plan_mirror((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        dst.insert("b", &key("ann"), b"ann, enrolled here".to_vec());
        let refused = apply_mirror(plan, (&src, "a"), (&dst, "b")).await;
        assert!(
            matches!(&refused, Err(CloudError::PeopleOnlyInRegion { people, .. }) if people == &["ann"]),
            "{refused:?}"
        );
        let ann = dst.get("b", &key("ann"), None, 1024).await.unwrap();
        assert_eq!(ann.bytes, b"ann, enrolled here");

        // Bob, mirrored, then forgotten in the source, then given a face in
        // the destination between the plan and its removal: kept.
        dst.delete("b", &key("ann")).await.unwrap();
        copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        src.delete("a", &key("bob")).await.unwrap();
        let plan = plan_mirror((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        dst.insert("b", &key("bob"), b"bob and a face added here".to_vec());
        let refused = apply_mirror(plan, (&src, "a"), (&dst, "b")).await;
        assert!(
            matches!(&refused, Err(CloudError::PeopleOnlyInRegion { people, .. }) if people == &["bob"]),
            "{refused:?}"
        );
        let bob = dst.get("b", &key("bob"), None, 1024).await.unwrap();
        assert_eq!(bob.bytes, b"bob and a face added here");
    }

    #[tokio::test]
    async fn two_scans_mirroring_at_once_both_go_on() {
        // Two scans plan against the same destination before either
        // writes: the second finds its copies and removals made, with the
        // source's bytes, and records them instead of refusing them.
        let (src, dst) = (MemoryObjects::default(), MemoryObjects::default());
        let key = |p: &str| face_contracts::layout::person_key("c", p);
        src.insert("a", &key("ann"), b"ann".to_vec());
        src.insert("a", &key("bob"), b"bob".to_vec());
        copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        src.delete("a", &key("bob")).await.unwrap();
        src.insert("a", &key("cat"), b"cat".to_vec());
        let first = plan_mirror((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        let second = plan_mirror((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        let done = apply_mirror(first, (&src, "a"), (&dst, "b")).await.unwrap();
        assert_eq!((done.copied, done.removed), (1, 1));
        let again = apply_mirror(second, (&src, "a"), (&dst, "b"))
            .await
            .unwrap();
        assert_eq!((again.copied, again.removed), (0, 0));
        let manifest = mirror_manifest_key("c");
        assert_eq!(
            dst.keys("b"),
            vec![manifest.clone(), key("ann"), key("cat")]
        );
        // The manifest as the second wrote it holds both people.
        let stored = dst.get("b", &manifest, None, 1024).await.unwrap();
        let recorded: MirrorManifest = serde_json::from_slice(&stored.bytes).unwrap();
        let people: Vec<_> = recorded.people.keys().cloned().collect();
        assert_eq!(people, vec![key("ann"), key("cat")]);
    }

    #[tokio::test]
    async fn a_source_with_no_person_under_people_is_empty() {
        let (src, dst) = (MemoryObjects::default(), MemoryObjects::default());
        let key = |p: &str| face_contracts::layout::person_key("c", p);
        src.insert("a", &key("ann"), b"ann".to_vec());
        copy_collection((&src, "a"), (&dst, "b"), "r", "c")
            .await
            .unwrap();
        // The source forgets everyone; only a key that is no person's is
        // left under people/: mirroring that would wipe the destination.
        src.delete("a", &key("ann")).await.unwrap();
        src.insert("a", "collections/c/people/notes/readme.txt", b"x".to_vec());
        let empty = copy_collection((&src, "a"), (&dst, "b"), "r", "c").await;
        assert!(
            matches!(&empty, Err(CloudError::EmptyCollection { .. })),
            "{empty:?}"
        );
        assert!(source_people(&src, "a", "r", "c").await.is_err());
        let manifest = face_contracts::layout::mirror_manifest_key("c");
        assert_eq!(dst.keys("b"), vec![manifest, key("ann")]);
    }

    #[test]
    fn frames_must_come_back_once_each() {
        let f = |frame: u64| FrameMatches {
            frame,
            pts_s: 0.0,
            faces: Vec::new(),
        };
        assert!(face_video::check_every_frame_once(&[f(0), f(1), f(2)], 3).is_ok());
        assert!(face_video::check_every_frame_once(&[f(0), f(2)], 3).is_err());
        assert!(face_video::check_every_frame_once(&[f(0), f(1), f(1)], 3).is_err());
        assert!(face_video::check_every_frame_once(&[f(0), f(1), f(2), f(2)], 3).is_err());
        // Chunks come back in any order; the merge sorts before it checks.
        let merged = merge_chunk_frames(vec![f(2), f(0), f(1)], 3).unwrap();
        assert_eq!(
            merged.iter().map(|f| f.frame).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(merge_chunk_frames(vec![f(2), f(0), f(2)], 3).is_err());
    }
}
