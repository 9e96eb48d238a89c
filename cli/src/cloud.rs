//! `facectl scan-video --stack NAME`, cloud mode: the scan on the deployed
//! regions' `scan-worker` functions.
//!
//! 1. Regions, buckets and functions come from the deployment (YAML) and
//!    the outputs `cargo xtask deploy` wrote; each region's capacity is the
//!    tightest of the stack's limits and the account's unreserved
//!    concurrency (`lambda:GetAccountSettings`).
//! 2. The video is staged in every region's bucket under its content hash
//!    (nothing is uploaded twice), and the collection, enrolled in one
//!    region, is mirrored to the others.
//! 3. `scan_coordinator` fans the chunks out and gathers every frame once;
//!    the timeline, the contact sheet (decoded here from the local file)
//!    and the metered cost make the same report as a local scan.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region as AwsRegion, SdkConfig};
use face_service::aws::{S3Objects, s3_client};
use face_stacks::{Architecture, DeployRecord, Deployment, FunctionName, outputs};
use face_video::{
    FrameMatches, ScanConfig, ScanMode, Timeline, TimelineConfig, VideoIndex, VideoLimits,
};
use scan_coordinator::cloud::{self, CollectionCopy, ScanJob, ScanRegion, Usage};
use scan_coordinator::{LambdaTarget, LambdaWorker, Progress, RegionReport, RetryPolicy};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::scan::{LambdaAssumptions, ModeRun, ScanReport, Thumbnails, thumbnails_for};

/// Where a region's scan-worker is invoked instead of AWS Lambda: a Lambda
/// API endpoint (the deployed function name is invoked there), or one
/// function's invocations URL, `<endpoint>/2015-03-31/functions/<name>/invocations`,
/// whose name is invoked instead. The Runtime Interface Emulator serves one
/// function and answers only to the name `function`, so a local run passes
/// its whole invocations URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEndpoint {
    pub url: String,
    pub function_name: Option<String>,
}

impl LambdaEndpoint {
    pub fn parse(url: &str) -> Self {
        let function = url
            .trim_end_matches('/')
            .strip_suffix("/invocations")
            .and_then(|rest| rest.rsplit_once("/2015-03-31/functions/"))
            .filter(|(base, name)| !base.is_empty() && !name.is_empty() && !name.contains('/'));
        match function {
            Some((base, name)) => Self {
                url: base.to_string(),
                function_name: Some(name.to_string()),
            },
            None => Self {
                url: url.to_string(),
                function_name: None,
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct CloudOptions {
    pub video: PathBuf,
    pub collection: String,
    /// An embedded deployment (`local`, `dev`, `prod`) or a YAML file.
    pub stack: String,
    /// Where deploy wrote `<region>.json` [default: target/deploy/<stack name>].
    pub outputs_dir: Option<PathBuf>,
    /// Only these regions [default: all of the deployment].
    pub regions: Vec<String>,
    /// The region the collection was enrolled in [default: the first].
    pub collection_region: Option<String>,
    /// Per region, a Lambda endpoint to invoke instead of AWS's (the
    /// Runtime Interface Emulator in local runs).
    pub lambda_endpoints: BTreeMap<String, LambdaEndpoint>,
    /// Caps every region's invocations in flight.
    pub max_in_flight: Option<u32>,
    pub frames_per_chunk: u64,
    pub config: ScanConfig,
    pub timeline: TimelineConfig,
    /// The configuration every region's is derived from (its region
    /// replaced) [default: the standard chain: profile, credentials,
    /// `AWS_ENDPOINT_URL`].
    pub sdk: Option<SdkConfig>,
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

/// A deployment by name (`local`, `dev`, `prod`) or YAML file.
pub fn load_deployment(stack: &str) -> Result<Deployment> {
    let text = if stack.ends_with(".yaml") || stack.ends_with(".yml") {
        std::fs::read_to_string(stack).with_context(|| format!("reading {stack}"))?
    } else {
        face_stacks::config::embedded(stack)
            .with_context(|| {
                format!("no deployment named {stack} (local, dev, prod, or a YAML file)")
            })?
            .to_string()
    };
    Deployment::from_yaml(&text).with_context(|| format!("deployment {stack}"))
}

fn read_record(dir: &Path, region: &str) -> Result<DeployRecord> {
    let path = dir.join(DeployRecord::file_name(region));
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{} is missing: deploy the stack first (`cargo xtask deploy`)",
            path.display()
        )
    })?;
    DeployRecord::from_json(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// One SDK config per region, built explicitly (never through
/// process-wide region state).
async fn region_config(base: Option<&SdkConfig>, region: &str) -> SdkConfig {
    let region = AwsRegion::new(region.to_string());
    match base {
        Some(base) => base.to_builder().region(region).build(),
        None => {
            aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .load()
                .await
        }
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

struct Prepared {
    deployment: Deployment,
    regions: Vec<(ScanRegion, SdkConfig)>,
}

async fn prepare(options: &CloudOptions) -> Result<Prepared> {
    let deployment = load_deployment(&options.stack)?;
    let outputs_dir = options.outputs_dir.clone().unwrap_or_else(|| {
        PathBuf::from("target")
            .join("deploy")
            .join(&deployment.name)
    });
    let mut regions = Vec::new();
    for plan in &deployment.regions {
        if !options.regions.is_empty() && !options.regions.contains(&plan.region) {
            continue;
        }
        let name = &plan.region;
        let record = read_record(&outputs_dir, name)?;
        let function = plan
            .functions
            .get(&FunctionName::ScanWorker)
            .with_context(|| format!("{name}: the deployment has no scan-worker"))?;
        let config = region_config(options.sdk.as_ref(), name).await;
        let mut lambda = aws_sdk_lambda::config::Builder::from(&config);
        let endpoint = options.lambda_endpoints.get(name);
        if let Some(endpoint) = endpoint {
            lambda = lambda.endpoint_url(&endpoint.url);
        }
        // A single function's URL (the emulator) has no account behind it.
        let account = if endpoint.is_some_and(|e| e.function_name.is_some()) {
            None
        } else {
            cloud::account_unreserved_concurrency(&aws_sdk_lambda::Client::from_conf(
                lambda.build(),
            ))
            .await
        };
        regions.push((
            ScanRegion {
                name: name.clone(),
                bucket: record.output(outputs::DATA_BUCKET_NAME)?.to_string(),
                function_name: match endpoint.and_then(|e| e.function_name.clone()) {
                    Some(function) => function,
                    None => record
                        .output(&outputs::function_name(FunctionName::ScanWorker))?
                        .to_string(),
                },
                memory_mib: function.memory_mib,
                arm64: function.architecture == Architecture::Arm64,
                max_in_flight: cloud::region_capacity(
                    function.reserved_concurrency,
                    function.max_concurrency,
                    account,
                    options.max_in_flight,
                ),
            },
            config,
        ));
    }
    if regions.is_empty() {
        bail!(
            "{} has none of the regions {:?}",
            deployment.name,
            options.regions
        );
    }
    Ok(Prepared {
        deployment,
        regions,
    })
}

/// Scans the video on the deployed regions and builds the report.
pub async fn scan_video(
    options: &CloudOptions,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<(ScanReport, Thumbnails)> {
    let Prepared {
        deployment,
        regions,
    } = prepare(options).await?;
    let staging = Instant::now();
    let sha = sha256_file(&options.video)?;
    let key = cloud::video_key(&sha);
    let source_name = options
        .collection_region
        .clone()
        .unwrap_or_else(|| regions[0].0.name.clone());
    let (source, source_config) = regions
        .iter()
        .find(|(r, _)| r.name == source_name)
        .with_context(|| format!("--collection-region {source_name} is not being scanned"))?;
    let source_objects = S3Objects::new(s3_client(source_config));
    let mut staged = Vec::new();
    for (region, config) in &regions {
        let s3 = s3_client(config);
        // The collection first: an empty one stops the scan before any
        // upload.
        let copy = cloud::copy_collection(
            (&source_objects, source.bucket.as_str()),
            (&S3Objects::new(s3.clone()), region.bucket.as_str()),
            &region.name,
            &options.collection,
        )
        .await?;
        let uploaded = cloud::stage_video(
            &s3,
            &region.name,
            &region.bucket,
            &key,
            &options.video,
            cloud::UPLOAD_PART_BYTES,
        )
        .await?;
        tracing::info!(region = %region.name, uploaded, ?copy, "staged");
        staged.push((uploaded, copy));
    }
    let staging_s = staging.elapsed().as_secs_f64();

    let file = File::open(&options.video)
        .with_context(|| format!("opening {}", options.video.display()))?;
    let size = file.metadata()?.len();
    let index = VideoIndex::from_reader(BufReader::new(file), size, &VideoLimits::default())
        .with_context(|| format!("reading {}", options.video.display()))?;
    let targets: Vec<LambdaTarget> = regions
        .iter()
        .map(|(r, _)| LambdaTarget {
            region: r.name.clone(),
            function_name: r.function_name.clone(),
            endpoint_url: options.lambda_endpoints.get(&r.name).map(|e| e.url.clone()),
        })
        .collect();
    let worker = Arc::new(LambdaWorker::new(&regions[0].1, &targets));
    let scan_regions: Vec<ScanRegion> = regions.iter().map(|(r, _)| r.clone()).collect();
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

    let info = index.info();
    let interval = if info.fps > 0.0 { 1.0 / info.fps } else { 0.0 };
    let timeline = Timeline::build(&scan.frames, interval, &options.timeline);
    let thumbs = thumbnails_for(&options.video, &index, &scan.frames, &timeline)?;
    let n = scan.stats.frames as f64;
    let per_frame_ms = if n > 0.0 {
        scan.stats.total_ms / n
    } else {
        0.0
    };
    let capacity: usize = scan_regions.iter().map(|r| r.max_in_flight).sum();
    let lambda = LambdaAssumptions {
        memory_mib: scan_regions[0].memory_mib,
        frames_per_chunk: options.frames_per_chunk,
        concurrency: capacity as u64,
        ..LambdaAssumptions::default()
    };
    let cloud_run = CloudRun {
        stack: deployment.name.clone(),
        video_key: key,
        regions: scan_regions
            .iter()
            .zip(staged)
            .map(|(r, (video_uploaded, collection))| RegionRun {
                region: r.clone(),
                video_uploaded,
                collection,
                work: scan.regions.get(&r.name).cloned().unwrap_or_default(),
            })
            .collect(),
        retries: scan.retries,
        staging_s,
        usage: scan.usage,
    };
    let people = cloud_run.regions.first().map_or(0, |r| r.collection.people);
    let lambda_estimate = lambda.estimate(info.frames, per_frame_ms);
    let report = ScanReport {
        video: options.video.display().to_string(),
        info,
        collection: options.collection.clone(),
        people_enrolled: people,
        config,
        threads: capacity,
        chunks: scan.chunks,
        tracked: ModeRun {
            mode: ScanMode::Tracked,
            wall_s: scan.wall_s,
            frames_per_s: if scan.wall_s > 0.0 {
                n / scan.wall_s
            } else {
                0.0
            },
            frames_per_s_per_core: if per_frame_ms > 0.0 {
                1000.0 / per_frame_ms
            } else {
                0.0
            },
            per_frame_ms,
            stats: scan.stats,
        },
        timeline: timeline.appearances,
        lambda_estimate,
        comparison: None,
        cloud: Some(cloud_run),
        frames: scan
            .frames
            .into_iter()
            .filter(|f: &FrameMatches| !f.faces.is_empty())
            .collect(),
    };
    Ok((report, thumbs))
}

/// Progress on a terminal: one bar of chunks, updated from any task.
pub fn progress_callback(bar: indicatif::ProgressBar) -> Arc<dyn Fn(Progress) + Send + Sync> {
    let bar = Mutex::new(bar);
    Arc::new(move |p: Progress| {
        let bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if p.retries > 0 {
            bar.set_message(format!("{} retries", p.retries));
        }
        if p.done == p.total {
            bar.finish_and_clear();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocations_url_names_the_function_to_invoke() {
        let rie = LambdaEndpoint::parse(
            "http://127.0.0.1:9001/2015-03-31/functions/function/invocations",
        );
        assert_eq!(rie.url, "http://127.0.0.1:9001");
        assert_eq!(rie.function_name.as_deref(), Some("function"));
        for api in [
            "http://127.0.0.1:9001",
            "https://lambda.eu-west-1.amazonaws.com/",
            "http://h/2015-03-31/functions//invocations",
        ] {
            assert_eq!(
                LambdaEndpoint::parse(api),
                LambdaEndpoint {
                    url: api.into(),
                    function_name: None
                }
            );
        }
    }
}
