//! A video scan on a deployed stack's `scan-worker`s, end to end (what
//! `facectl scan-video --stack NAME` runs; it only renders the result):
//!
//! 1. Regions, buckets and functions come from the deployment and the
//!    outputs deploy wrote, each region's capacity the tightest of the
//!    stack's limits and the account's quota ([`crate::deployment`]).
//! 2. The video is staged in every region's bucket under its content hash
//!    (nothing is uploaded twice), and the collection, enrolled in one
//!    region, is mirrored to the others ([`crate::cloud`]).
//! 3. The chunks fan out over the regions and every frame comes back once
//!    ([`cloud::scan`]); the frames are folded into the timeline, and every
//!    invocation is metered.
//!
//! Planning (`face_video::plan_chunks`), merging
//! (`face_video::merge_chunk_frames`) and the timeline
//! (`face_video::Timeline::build`) are the same functions the server-side
//! job (`scan-worker`'s `jobs`) uses.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use face_service::aws::{S3Objects, s3_client};
use face_video::{
    FrameMatches, ScanConfig, ScanMode, ScanStats, Timeline, TimelineConfig, VideoError,
    VideoIndex, VideoLimits, frame_interval_s,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cloud::{self, CloudError, CollectionCopy, ScanJob, ScanRegion, Usage};
use crate::deployment::{self, DeploymentError, RegionSelection};
use crate::{LambdaTarget, LambdaWorker, Progress, RegionReport, RetryPolicy};

#[derive(Debug, Error)]
pub enum VideoScanError {
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("opening {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}", .path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: VideoError,
    },
    #[error("--collection-region {0:?} is not a region of the stack")]
    CollectionRegion(String),
    #[error(
        "reading the collection from {region} (--collection-region, by default the stack's first region)"
    )]
    SourceRegion {
        region: String,
        #[source]
        source: Box<DeploymentError>,
    },
}

/// What to scan, where.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    pub video: PathBuf,
    pub collection: String,
    /// An embedded deployment (`local`, `dev`, `prod`) or a YAML file.
    pub stack: String,
    /// Which of its regions, and how to reach them.
    pub target: RegionSelection,
    /// The region the collection was enrolled in, scanned or not
    /// [default: the stack's first].
    pub collection_region: Option<String>,
    pub frames_per_chunk: u64,
    /// The workers scan in [`ScanMode::Tracked`] whatever `config.mode` says.
    pub config: ScanConfig,
    pub timeline: TimelineConfig,
}

/// What one region did.
#[derive(Debug, Clone, Serialize)]
pub struct RegionRun {
    pub region: ScanRegion,
    pub video_uploaded: bool,
    pub collection: CollectionCopy,
    pub work: RegionReport,
}

/// The cloud part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct CloudRun {
    pub stack: String,
    pub video_key: String,
    pub regions: Vec<RegionRun>,
    pub retries: usize,
    /// Hashing and uploading the video, mirroring the collection.
    pub staging_s: f64,
    /// Measured: every invocation's round trip at its function's memory.
    pub usage: Usage,
}

/// A finished scan on a deployed stack.
#[derive(Debug, Clone)]
pub struct VideoScan {
    /// The video's header, read here (the chunks were planned from it).
    pub index: VideoIndex,
    /// What the workers ran.
    pub config: ScanConfig,
    pub chunks: usize,
    /// Every frame of the video once, in order, faces or not.
    pub frames: Vec<FrameMatches>,
    pub timeline: Timeline,
    pub stats: ScanStats,
    pub wall_s: f64,
    /// Invocations in flight at most, all regions together.
    pub capacity: usize,
    pub cloud: CloudRun,
}

/// The file's sha256, hex: the staged video's name.
fn sha256_file(path: &Path) -> Result<String, VideoScanError> {
    let file = File::open(path).map_err(|source| VideoScanError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut file = BufReader::new(file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| VideoScanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The video's header, read from the local file.
fn read_index(path: &Path) -> Result<VideoIndex, VideoScanError> {
    let open = |source| VideoScanError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open)?;
    let size = file.metadata().map_err(open)?.len();
    VideoIndex::from_reader(BufReader::new(file), size, &VideoLimits::default()).map_err(|source| {
        VideoScanError::Index {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Scans the video on the deployed regions: stages it and the collection,
/// fans the chunks out, merges the frames into the timeline.
pub async fn scan_video(
    options: &CloudOptions,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<VideoScan, VideoScanError> {
    let deployment =
        face_stacks::Deployment::load(&options.stack).map_err(DeploymentError::from)?;
    let regions = deployment::deployed_regions(&deployment, &options.target).await?;
    let staging = Instant::now();
    let sha = sha256_file(&options.video)?;
    // By content hash: a re-run uploads nothing, two videos never collide.
    let key = face_contracts::layout::staged_video_key(&sha);
    // The video's header first: a file that is not a scannable MP4 stops
    // the scan before anything is written to any region.
    let index = read_index(&options.video)?;
    // The collection is read from one region (by default the stack's
    // first, where enroll writes by default), scanned or not.
    let source_name = match &options.collection_region {
        Some(name) => name.clone(),
        None => deployment
            .regions
            .first()
            .map(|plan| plan.region.clone())
            .ok_or_else(|| VideoScanError::CollectionRegion(String::new()))?,
    };
    if deployment.region(&source_name).is_none() {
        return Err(VideoScanError::CollectionRegion(source_name));
    }
    let (source_objects, source_bucket) =
        match regions.iter().find(|r| r.region.name == source_name) {
            Some(r) => (
                S3Objects::new(s3_client(&r.sdk), Some(r.bucket_owner.clone())),
                r.region.bucket.clone(),
            ),
            None => {
                let (sdk, bucket, owner) =
                    deployment::region_bucket(&deployment, &options.target, &source_name)
                        .await
                        .map_err(|source| VideoScanError::SourceRegion {
                            region: source_name.clone(),
                            source: Box::new(source),
                        })?;
                (S3Objects::new(s3_client(&sdk), Some(owner)), bucket)
            }
        };
    // An empty (or mistyped) collection stops the scan before any upload.
    let people = cloud::source_people(
        &source_objects,
        &source_bucket,
        &source_name,
        &options.collection,
    )
    .await?
    .len();
    // Every region's mirror is decided before any is written to: a region
    // that refuses (people enrolled there alone) stops the scan with no
    // region changed.
    let mut mirrors = Vec::new();
    for deployed in &regions {
        let region = &deployed.region;
        let plan = if region.name == source_name {
            None
        } else {
            let objects = S3Objects::new(
                s3_client(&deployed.sdk),
                Some(deployed.bucket_owner.clone()),
            );
            Some(
                cloud::plan_mirror(
                    (&source_objects, source_bucket.as_str()),
                    (&objects, region.bucket.as_str()),
                    &region.name,
                    &options.collection,
                )
                .await?,
            )
        };
        mirrors.push(plan);
    }
    // Then every mirror is written, before any video upload (minutes), so
    // that little time passes between a region's plan and its writes.
    let mut copies = Vec::new();
    for (deployed, mirror) in regions.iter().zip(mirrors) {
        let region = &deployed.region;
        let copy = match mirror {
            None => CollectionCopy {
                people,
                ..CollectionCopy::default()
            },
            Some(plan) => {
                cloud::apply_mirror(
                    plan,
                    (&source_objects, source_bucket.as_str()),
                    (
                        &S3Objects::new(
                            s3_client(&deployed.sdk),
                            Some(deployed.bucket_owner.clone()),
                        ),
                        region.bucket.as_str(),
                    ),
                )
                .await?
            }
        };
        copies.push(copy);
    }
    let mut staged = Vec::new();
    for (deployed, copy) in regions.iter().zip(copies) {
        let region = &deployed.region;
        let s3 = s3_client(&deployed.sdk);
        let uploaded = cloud::stage_video(
            &s3,
            &region.name,
            &region.bucket,
            &deployed.bucket_owner,
            &key,
            &options.video,
            cloud::UPLOAD_PART_BYTES,
        )
        .await?;
        tracing::info!(region = %region.name, uploaded, ?copy, "staged");
        staged.push((uploaded, copy));
    }
    let staging_s = staging.elapsed().as_secs_f64();

    let targets: Vec<LambdaTarget> = regions
        .iter()
        .map(|r| LambdaTarget {
            region: r.region.name.clone(),
            function_name: r.region.function_name.clone(),
            endpoint_url: options
                .target
                .lambda_endpoints
                .get(&r.region.name)
                .map(|e| e.url.clone()),
            function_timeout: std::time::Duration::from_secs(r.region.timeout_s.into()),
        })
        .collect();
    let worker = Arc::new(LambdaWorker::new(&regions[0].sdk, &targets));
    let scan_regions: Vec<ScanRegion> = regions.into_iter().map(|r| r.region).collect();
    let config = ScanConfig {
        mode: ScanMode::Tracked,
        ..options.config
    };
    let job = ScanJob {
        key: key.clone(),
        collection: options.collection.clone(),
        config,
        frames_per_chunk: options.frames_per_chunk,
    };
    let scan = cloud::scan(
        &index,
        &scan_regions,
        worker,
        &job,
        RetryPolicy::default(),
        on_progress,
    )
    .await?;

    let timeline = Timeline::build(
        &scan.frames,
        frame_interval_s(index.info().fps),
        &options.timeline,
    );
    let capacity = scan_regions.iter().map(|r| r.max_in_flight).sum();
    let cloud = CloudRun {
        stack: deployment.name.clone(),
        video_key: key,
        regions: scan_regions
            .into_iter()
            .zip(staged)
            .map(|(region, (video_uploaded, collection))| RegionRun {
                work: scan.regions.get(&region.name).cloned().unwrap_or_default(),
                region,
                video_uploaded,
                collection,
            })
            .collect(),
        retries: scan.retries,
        staging_s,
        usage: scan.usage,
    };
    Ok(VideoScan {
        index,
        config,
        chunks: scan.chunks,
        frames: scan.frames,
        timeline,
        stats: scan.stats,
        wall_s: scan.wall_s,
        capacity,
        cloud,
    })
}
