//! `facectl scan-video`: enrolled people in an MP4 (H.264) video, scanned
//! on this machine's cores (`facectl::scan`) or, with `--stack`, on a
//! deployed stack's `scan-worker` functions (`facectl::cloud`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
#[cfg(feature = "cloud")]
use facectl::cloud;
use facectl::{files, scan, store};
use facectl::{out, outln};
#[cfg(feature = "cloud")]
use scan_coordinator::deployment::{LambdaEndpoint, RegionSelection};
#[cfg(feature = "cloud")]
use scan_coordinator::video_scan::CloudOptions;

#[cfg(feature = "cloud")]
use super::progress;
use crate::{CLOUD, GlobalArgs, load};

#[derive(Debug, Args)]
pub struct ScanVideoArgs {
    /// The MP4 (H.264) video
    video: PathBuf,
    /// The collection whose people to look for (with --stack: the deployed one)
    #[arg(long)]
    collection: String,
    /// Print the report as JSON instead of text
    #[arg(long)]
    json: bool,
    /// Write an HTML page with the timeline and a contact sheet
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
    /// Run the detector on every n-th frame; tracks carry faces in between
    #[arg(long, default_value_t = 3)]
    detect_every: u32,
    /// Re-run the recognizer on a track after this many detections
    #[arg(long, default_value_t = 10)]
    recheck_every: u32,
    /// Sightings closer than this merge into one appearance, in seconds
    #[arg(long, default_value_t = 1.0, value_parser = super::seconds)]
    max_gap_s: f64,
    /// Frames per local chunk [default: 300 on one thread, else 4 chunks per thread, at least 30 frames]
    #[arg(long, value_parser = super::frames_per_chunk())]
    frames_per_chunk: Option<u64>,
    /// Also run the naive every-frame baseline and compare throughput and recall
    #[arg(long)]
    compare_naive: bool,
    /// Lambda estimate: function memory
    #[arg(long, default_value_t = 2048)]
    lambda_memory_mib: u32,
    /// Frames per worker invocation (cloud mode), and for the Lambda estimate
    #[arg(long, default_value_t = 300, value_parser = super::frames_per_chunk())]
    lambda_frames_per_chunk: u64,
    #[command(flatten)]
    cloud: CloudArgs,
    /// Also write an H.264 MP4 of the moments people appear in, captioned
    /// with their names and the time (encoded per chunk, then joined)
    #[arg(long, value_name = "OUT.mp4")]
    montage: Option<PathBuf>,
    /// Montage: only this person's moments [default: every recognized person's]
    #[arg(long, value_name = "NAME", requires = "montage")]
    montage_person: Option<String>,
    /// Montage: seconds kept before and after each moment (within a chunk)
    #[arg(long, default_value_t = 1.0, requires = "montage")]
    montage_pad_s: f64,
}

/// Cloud mode: where the scan runs instead of this machine's cores. Without
/// the `cloud` feature these flags are hidden, and `--stack` (which the
/// others require) is refused.
#[derive(Debug, Args)]
#[cfg_attr(not(feature = "cloud"), allow(dead_code))]
struct CloudArgs {
    /// Cloud mode: scan on this deployment's scan-worker functions (`local`,
    /// `dev`, `prod` or a YAML file) instead of this machine's cores
    #[arg(long, value_name = "NAME", hide = !CLOUD)]
    stack: Option<String>,
    /// Cloud mode: where deploy wrote `<region>.json` [default: $FACE_DEPLOY_DIR/<stack name>, else target/deploy/<stack name>]
    #[arg(long, value_name = "DIR", requires = "stack", hide = !CLOUD)]
    outputs_dir: Option<PathBuf>,
    /// Cloud mode: only these regions (repeatable) [default: all of the stack]
    #[arg(long = "region", value_name = "REGION", requires = "stack", hide = !CLOUD)]
    regions: Vec<String>,
    /// Cloud mode: the region the collection was enrolled in; it is copied
    /// to the others [default: the stack's first region]
    #[arg(long, value_name = "REGION", requires = "stack", hide = !CLOUD)]
    collection_region: Option<String>,
    /// Cloud mode: invoke this region's scan-worker at URL instead of AWS
    /// Lambda, repeatable. URL is a Lambda API endpoint, or one function's
    /// `.../2015-03-31/functions/NAME/invocations` URL (the Runtime Interface
    /// Emulator's, NAME `function`), whose NAME is invoked
    #[arg(long = "lambda-endpoint", value_name = "REGION=URL", requires = "stack", value_parser = parse_endpoint, hide = !CLOUD)]
    lambda_endpoints: Vec<(String, String)>,
    /// Cloud mode: at most this many invocations in flight per region
    /// [default: the stack's and the account's limits]
    #[arg(long, requires = "stack", hide = !CLOUD)]
    max_in_flight: Option<u32>,
}

/// `--lambda-endpoint REGION=URL`; the URL is read by
/// `LambdaEndpoint::parse` when the scan starts.
fn parse_endpoint(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((region, url)) if !region.is_empty() && !url.is_empty() => {
            Ok((region.to_string(), url.to_string()))
        }
        _ => Err(format!("expected REGION=URL, got {s:?}")),
    }
}

pub fn run(g: &GlobalArgs, store: &store::Store, args: &ScanVideoArgs) -> Result<ExitCode> {
    let config = face_video::ScanConfig {
        detect_every_n_frames: args.detect_every,
        recheck_every_n_detections: args.recheck_every,
        ..Default::default()
    };
    let timeline = face_video::TimelineConfig {
        max_gap_s: args.max_gap_s,
    };
    // Checked before the scan, whose results a bad path would otherwise
    // cost; they are written after the results are printed.
    if let Some(out) = &args.report {
        files::check_output_path("--report", out)?;
    }
    if let Some(out) = &args.montage {
        files::check_output_path("--montage", out)?;
    }
    let (report, thumbs) = if let Some(stack) = &args.cloud.stack {
        scan_on_stack(args, stack, config, timeline)?
    } else {
        scan_locally(g, store, args, config, timeline)?
    };
    // Kept, not returned: a stdout closed (`| head`) or failing never costs
    // the files of a long (maybe paid) scan.
    let printed = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(anyhow::Error::from)
            .and_then(|json| outln!("{json}"))
    } else {
        out!("{}", scan::render_text(&report))
    };
    // Both are tried; either failing fails the command, and is reported
    // before a failure to print (a closed stdout would end it quietly).
    let wrote_report = args.report.as_ref().map_or(Ok(()), |out| {
        files::write_atomically(out, scan::render_html(&report, &thumbs).as_bytes())
            .context("--report")
    });
    let wrote_montage = args.montage.as_ref().map_or(Ok(()), |out| {
        write_montage(g, args, &report.frames, out).context("--montage")
    });
    wrote_report?;
    wrote_montage?;
    printed?;
    Ok(ExitCode::SUCCESS)
}

/// `--stack`: the scan on the deployment's `scan-worker` functions,
/// through the client-side coordinator.
#[cfg(feature = "cloud")]
fn scan_on_stack(
    args: &ScanVideoArgs,
    stack: &str,
    config: face_video::ScanConfig,
    timeline: face_video::TimelineConfig,
) -> Result<(scan::ScanReport, scan::Thumbnails)> {
    let cloud_args = &args.cloud;
    let options = CloudOptions {
        video: args.video.clone(),
        collection: args.collection.clone(),
        stack: stack.to_string(),
        target: RegionSelection {
            outputs_dir: cloud_args.outputs_dir.clone(),
            regions: cloud_args.regions.clone(),
            lambda_endpoints: cloud_args
                .lambda_endpoints
                .iter()
                .map(|(region, url)| (region.clone(), LambdaEndpoint::parse(url)))
                .collect(),
            max_in_flight: cloud_args.max_in_flight,
            sdk: None,
        },
        collection_region: cloud_args.collection_region.clone(),
        frames_per_chunk: args.lambda_frames_per_chunk,
        config,
        timeline,
    };
    let on_progress = cloud::progress_callback(progress(2));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(cloud::scan_video(&options, on_progress))
}

#[cfg(not(feature = "cloud"))]
fn scan_on_stack(
    _: &ScanVideoArgs,
    _: &str,
    _: face_video::ScanConfig,
    _: face_video::TimelineConfig,
) -> Result<(scan::ScanReport, scan::Thumbnails)> {
    Err(crate::needs_cloud("--stack"))
}

/// `--montage`, from the scan's matches, chunked as the scan was.
fn write_montage(
    g: &GlobalArgs,
    args: &ScanVideoArgs,
    frames: &[face_video::FrameMatches],
    out: &Path,
) -> Result<()> {
    let config = face_video::MontageConfig {
        pad_s: args.montage_pad_s,
        person: args.montage_person.clone(),
        ..Default::default()
    };
    let frames_per_chunk = match args.cloud.stack {
        Some(_) => Some(args.lambda_frames_per_chunk),
        None => args.frames_per_chunk,
    };
    let started = Instant::now();
    match scan::write_montage(
        &args.video,
        frames,
        frames_per_chunk,
        g.threads,
        &config,
        out,
    )? {
        Some(m) => eprintln!(
            "montage: {}: {} frames in {} moments from {} chunks, {} bytes, {:.1} s",
            out.display(),
            m.frames,
            m.moments,
            m.segments,
            m.bytes,
            started.elapsed().as_secs_f64()
        ),
        None => eprintln!(
            "montage: {} in the video; {} not written",
            match &args.montage_person {
                Some(p) => format!("{p} appears nowhere"),
                None => "nobody recognized".into(),
            },
            out.display()
        ),
    }
    Ok(())
}

fn scan_locally(
    g: &GlobalArgs,
    store: &store::Store,
    args: &ScanVideoArgs,
    config: face_video::ScanConfig,
    timeline: face_video::TimelineConfig,
) -> Result<(scan::ScanReport, scan::Thumbnails)> {
    let collection = store.load_existing(&args.collection)?;
    let pipeline = load(g)?;
    collection.check_compatible(pipeline.face_model_version())?;
    let options = scan::ScanOptions {
        video: args.video.clone(),
        config,
        timeline,
        frames_per_chunk: args.frames_per_chunk,
        threads: g.threads,
        compare_naive: args.compare_naive,
        lambda: scan::LambdaAssumptions {
            memory_mib: args.lambda_memory_mib,
            frames_per_chunk: args.lambda_frames_per_chunk,
            ..Default::default()
        },
    };
    scan::scan_video(&pipeline, &collection, &args.collection, &options)
}
