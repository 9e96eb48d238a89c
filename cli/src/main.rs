//! `facectl`: face detection, enrollment, recognition and evaluation on
//! this machine, with collections in a local directory. See the README.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use face_core::{
    Collection, DetectedFace, EnrollOutcome, FacePipeline, PipelineConfig, RecognizedFace,
    StageTimings,
};
use facectl::{annotate, bench, cloud, eval, models, remote, scan, store};
use indicatif::{ProgressBar, ProgressStyle};
use scan_coordinator::deployment::{LambdaEndpoint, RegionSelection};
use scan_coordinator::video_scan::CloudOptions;
use serde::Serialize;
use sha2::Digest;

#[derive(Debug, Parser)]
#[command(
    name = "facectl",
    version,
    about = "Face detection and recognition, locally"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Folder with the model files [default: $FACECTL_MODELS, else the checkout's blobs/]
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// YuNet detector file inside the models folder
    #[arg(long, global = true, default_value = models::DEFAULT_DETECTOR)]
    detector: String,
    /// Where collections are kept [default: $FACECTL_STORE, else ~/.local/share/facectl]
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Open-set L2 distance threshold: farther faces are "unknown"
    #[arg(long, global = true, default_value_t = 0.55)]
    threshold: f32,
    /// The best person must be this much closer than the second best, else
    /// the face is "unknown" (ambiguous)
    #[arg(long, global = true, default_value_t = 0.05)]
    min_margin: f32,
    /// Quality gate: faces narrower than this (source pixels) are not searched
    #[arg(long, global = true, default_value_t = 28.0)]
    min_face_px: f32,
    /// Quality gate: faces the detector scores lower are not searched (0..1)
    #[arg(long, global = true, default_value_t = 0.8)]
    min_face_confidence: f32,
    /// Quality gate: faces turned further than this (degrees) are not searched
    #[arg(long, global = true, default_value_t = 45.0)]
    max_yaw_deg: f32,
    /// Quality gate: chips less sharp than this (variance of the Laplacian) are not searched
    #[arg(long, global = true, default_value_t = 10.0)]
    min_sharpness: f32,
    /// Detector score threshold (0..1)
    #[arg(long, global = true, default_value_t = 0.7)]
    score_threshold: f32,
    /// Long side of the detector input, in pixels
    #[arg(long, global = true, default_value_t = 640)]
    input_size: u32,
    /// Worker threads for batches of images
    #[arg(long, global = true, default_value_t = default_threads())]
    threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where a command runs: here (the default), or on a deployed stack's API.
#[derive(Debug, Clone, Args)]
struct RemoteArgs {
    /// Run on this deployment's HTTPS API (`local`, `dev`, `prod` or a YAML
    /// file; its URL from the deploy record) instead of this machine
    #[arg(long, value_name = "NAME", conflicts_with = "endpoint")]
    stack: Option<String>,
    /// Run on the API at this base URL (`https://.../live`) instead of this machine
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// API key for --stack/--endpoint [default: $FACE_API_KEY]
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// With --stack: the region whose API to use [default: the deployment's first]
    #[arg(long, value_name = "REGION", requires = "stack")]
    region: Option<String>,
}

impl RemoteArgs {
    /// The API client, when the command runs remotely.
    fn client(&self) -> Result<Option<remote::ApiClient>> {
        let target = remote::RemoteTarget {
            stack: self.stack.clone(),
            region: self.region.clone(),
            outputs_dir: None,
            endpoint: self.endpoint.clone(),
            api_key: self.api_key.clone(),
        };
        if !target.is_remote() {
            return Ok(None);
        }
        Ok(Some(remote::ApiClient::from_target(&target)?))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find faces: boxes, landmarks, confidence
    Detect {
        /// Image files (JPEG, PNG, WebP)
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Write a copy of the (single) image with boxes and landmarks drawn
        #[arg(long, value_name = "OUT.png")]
        annotate: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Enroll a person from one or more photos
    Enroll {
        /// Collection to enroll into (created if missing)
        #[arg(long)]
        collection: String,
        /// The person's name
        #[arg(long)]
        person: String,
        /// Free-form attribute stored with the person, KEY=VALUE (repeatable)
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
        /// Photos of the person, one main face each
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the people of a collection
    People {
        /// The collection
        #[arg(long)]
        collection: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Remove a person and every stored embedding of theirs
    Forget {
        /// The collection
        #[arg(long)]
        collection: String,
        /// The person to remove
        #[arg(long)]
        person: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Say who is in each photo, or "unknown"
    Recognize {
        /// The collection to match against
        #[arg(long)]
        collection: String,
        /// Image files (JPEG, PNG, WebP)
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Write a copy of the (single) image with boxes drawn
        #[arg(long, value_name = "OUT.png")]
        annotate: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Whether the largest faces of two photos are the same person
    Compare {
        /// The first photo
        source: PathBuf,
        /// The second photo
        target: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Detection and recognition quality on a labelled folder (shared/data layout)
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Timings per stage, throughput and cold start (used by `cargo xtask bench`)
    Bench {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long)]
        json: bool,
    },
    /// Find enrolled people in an MP4 (H.264) video: timeline, contact sheet, Lambda cost
    ScanVideo(ScanVideoArgs),
    /// A deployed stack's video scan job: status, progress and, when done, the timeline
    ScanStatus {
        /// The job id (from `POST /v1/scans`, or a video upload's result)
        job_id: String,
        /// Print the job as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Read a deployed stack's results queue: each result with its latency since upload
    Results(ResultsArgs),
}

#[derive(Debug, Args)]
struct ResultsArgs {
    /// The deployment whose results FIFO queue to read (`local`, `dev`, `prod` or a YAML file)
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// The region whose queue to read [default: the deployment's first]
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Where deploy wrote `<region>.json` [default: target/deploy/<stack name>]
    #[arg(long, value_name = "DIR")]
    outputs_dir: Option<PathBuf>,
    /// Keep reading as results arrive (without: stop after one quiet poll)
    #[arg(long)]
    follow: bool,
    /// Consumers reading in parallel (results are grouped per upload)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this many results
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// With --follow: stop after this many seconds without a result [default: never]
    #[arg(long, value_name = "S")]
    idle_timeout_s: Option<f64>,
    /// One JSON object per result, then the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ScanVideoArgs {
    video: PathBuf,
    #[arg(long)]
    collection: String,
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
    #[arg(long, default_value_t = 1.0)]
    max_gap_s: f64,
    /// Frames per local chunk [default: 4 chunks per thread, at least 30 frames]
    #[arg(long)]
    frames_per_chunk: Option<u64>,
    /// Also run the naive every-frame baseline and compare throughput and recall
    #[arg(long)]
    compare_naive: bool,
    /// Lambda estimate: function memory
    #[arg(long, default_value_t = 2048)]
    lambda_memory_mib: u32,
    /// Frames per worker invocation (cloud mode), and for the Lambda estimate
    #[arg(long, default_value_t = 300)]
    lambda_frames_per_chunk: u64,
    /// Cloud mode: scan on this deployment's scan-worker functions (`local`,
    /// `dev`, `prod` or a YAML file) instead of this machine's cores
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// Cloud mode: where deploy wrote `<region>.json` [default: target/deploy/<stack name>]
    #[arg(long, value_name = "DIR", requires = "stack")]
    outputs_dir: Option<PathBuf>,
    /// Cloud mode: only these regions (repeatable) [default: all of the stack]
    #[arg(long = "region", value_name = "REGION", requires = "stack")]
    regions: Vec<String>,
    /// Cloud mode: the region the collection was enrolled in; it is copied
    /// to the others [default: the stack's first region]
    #[arg(long, value_name = "REGION", requires = "stack")]
    collection_region: Option<String>,
    /// Cloud mode: invoke this region's scan-worker at URL instead of AWS
    /// Lambda, repeatable. URL is a Lambda API endpoint, or one function's
    /// `.../2015-03-31/functions/NAME/invocations` URL (the Runtime Interface
    /// Emulator's, NAME `function`), whose NAME is invoked
    #[arg(long = "lambda-endpoint", value_name = "REGION=URL", requires = "stack", value_parser = parse_endpoint)]
    lambda_endpoints: Vec<(String, LambdaEndpoint)>,
    /// Cloud mode: at most this many invocations in flight per region
    /// [default: the stack's and the account's limits]
    #[arg(long, requires = "stack")]
    max_in_flight: Option<u32>,
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

fn parse_endpoint(s: &str) -> std::result::Result<(String, LambdaEndpoint), String> {
    match s.split_once('=') {
        Some((region, url)) if !region.is_empty() && !url.is_empty() => {
            Ok((region.to_string(), LambdaEndpoint::parse(url)))
        }
        _ => Err(format!("expected REGION=URL, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let process_start = Instant::now();
    init_tracing();
    let cli = Cli::parse();
    match run(cli, process_start) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("facectl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn pipeline_config(g: &GlobalArgs) -> PipelineConfig {
    let mut config = PipelineConfig::default();
    config.matching.threshold_l2 = g.threshold;
    config.matching.min_margin_l2 = g.min_margin;
    config.quality.min_face_px = g.min_face_px;
    config.quality.min_confidence = g.min_face_confidence;
    config.quality.max_yaw_deg = g.max_yaw_deg;
    config.quality.min_sharpness = g.min_sharpness;
    config.detector.score_threshold = g.score_threshold;
    config.detector.input_long_side_px = g.input_size;
    config
}

fn load(g: &GlobalArgs) -> Result<FacePipeline> {
    models::load_pipeline(
        &models::models_dir(g.models.as_deref()),
        &g.detector,
        pipeline_config(g),
    )
}

fn run(cli: Cli, process_start: Instant) -> Result<ExitCode> {
    let g = &cli.global;
    let store = store::Store::new(store::store_dir(g.store.as_deref()));
    match cli.command {
        Command::Detect {
            images,
            json,
            annotate,
            remote,
        } => match remote.client()? {
            Some(client) => remote_detect(&client, &images, json, annotate.as_deref()),
            None => detect(g, &images, json, annotate.as_deref()),
        },
        Command::Enroll {
            collection,
            person,
            attributes,
            images,
            json,
            remote,
        } => match remote.client()? {
            Some(client) => {
                remote_enroll(&client, &collection, &person, &attributes, &images, json)
            }
            None => enroll(g, &store, &collection, &person, &attributes, &images, json),
        },
        Command::People {
            collection,
            json,
            remote,
        } => match remote.client()? {
            Some(client) => {
                let people = client.people(&collection)?;
                let summary: Vec<PersonSummary<'_>> = people
                    .iter()
                    .map(|p| PersonSummary {
                        person: &p.person,
                        faces: p.face_count as usize,
                        attributes: &p.attributes,
                    })
                    .collect();
                print_people(&summary, json)
            }
            None => people(&store, &collection, json),
        },
        Command::Forget {
            collection,
            person,
            remote,
        } => {
            if let Some(client) = remote.client()? {
                let forgotten = client.forget(&collection, &person)?;
                println!(
                    "forgot {person}: {} embeddings removed",
                    forgotten.removed_faces
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut c = store.load_existing(&collection)?;
            let removed = c.forget(&person)?;
            store.save(&collection, &c)?;
            println!(
                "forgot {person}: {} embeddings removed",
                removed.faces.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Recognize {
            collection,
            images,
            json,
            annotate,
            remote,
        } => match remote.client()? {
            Some(client) => {
                remote_recognize(&client, &collection, &images, json, annotate.as_deref())
            }
            None => recognize(g, &store, &collection, &images, json, annotate.as_deref()),
        },
        Command::Compare {
            source,
            target,
            json,
            remote,
        } => compare(g, remote.client()?.as_ref(), &source, &target, json),
        Command::Eval { data, json } => {
            let pipeline = load(g)?;
            let report = eval::evaluate(&pipeline, &data, g.threads)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", eval::render(&report));
            }
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench { data, repeat, json } => {
            let options = bench::BenchOptions {
                data,
                models: models::models_dir(g.models.as_deref()),
                detector: g.detector.clone(),
                repeat,
                threads: g.threads,
                config: pipeline_config(g),
            };
            let report = bench::run(process_start, &options)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ScanVideo(args) => scan_video(g, &store, &args),
        Command::ScanStatus {
            job_id,
            json,
            remote,
        } => {
            let client = remote.client()?.context(
                "scan-status needs --stack or --endpoint (jobs run on a deployed stack)",
            )?;
            let job = client.scan_status(&job_id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print!("{}", render_job(&job));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Results(args) => follow_results(&args),
    }
}

fn render_job(job: &face_api::jobs::ScanJobResponse) -> String {
    let mut out = format!(
        "job {}  {}  {} of {} chunks  {}\n",
        job.job_id,
        job.status.as_str(),
        job.chunks_done,
        job.chunks_total
            .map_or_else(|| "?".to_string(), |t| t.to_string()),
        job.video_key
    );
    if let Some(error) = &job.error {
        out.push_str(&format!("error: {error}\n"));
    }
    if let Some(timeline) = job.timeline.as_ref().and_then(|t| t.as_array()) {
        for a in timeline {
            out.push_str(&format!(
                "  {:<24} {:>8.2}s - {:>8.2}s  best L2 {:.3}\n",
                a["person"].as_str().unwrap_or("?"),
                a["start_s"].as_f64().unwrap_or(0.0),
                a["end_s"].as_f64().unwrap_or(0.0),
                a["best_distance"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    if let Some(key) = &job.montage_key {
        out.push_str(&format!("montage: {key}\n"));
    }
    if let Some(u) = &job.usage {
        out.push_str(&format!(
            "workers: {} invocation(s), {:.1} GB-s, ${:.6}\n",
            u.invocations, u.gb_s, u.usd
        ));
    }
    out
}

fn follow_results(args: &ResultsArgs) -> Result<ExitCode> {
    let record = remote::deploy_record_of_stack(
        &args.stack,
        args.region.as_deref(),
        args.outputs_dir.as_deref(),
    )?;
    let queue_url = record
        .output(face_stacks::app::outputs::RESULTS_QUEUE_URL)?
        .to_string();
    let options = facectl::results::FollowOptions {
        queue_url,
        threads: args.threads.max(1),
        count: args.count,
        idle_timeout: if args.follow {
            args.idle_timeout_s.map(std::time::Duration::from_secs_f64)
        } else {
            Some(std::time::Duration::ZERO)
        },
        json: args.json,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let followed = runtime.block_on(async {
        let sdk = face_sdk_config::region_config(None, &record.region).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on_ctrl_c = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping after the current receives...");
                on_ctrl_c.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        facectl::results::follow(&sqs, &options, &stop).await
    })?;
    let summary = facectl::results::summarize(&followed);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", facectl::results::render_summary(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn scan_video(g: &GlobalArgs, store: &store::Store, args: &ScanVideoArgs) -> Result<ExitCode> {
    let config = face_video::ScanConfig {
        detect_every_n_frames: args.detect_every,
        recheck_every_n_detections: args.recheck_every,
        ..Default::default()
    };
    let timeline = face_video::TimelineConfig {
        max_gap_s: args.max_gap_s,
    };
    let (report, thumbs) = if let Some(stack) = &args.stack {
        let options = CloudOptions {
            video: args.video.clone(),
            collection: args.collection.clone(),
            stack: stack.clone(),
            target: RegionSelection {
                outputs_dir: args.outputs_dir.clone(),
                regions: args.regions.clone(),
                lambda_endpoints: args.lambda_endpoints.iter().cloned().collect(),
                max_in_flight: args.max_in_flight,
                sdk: None,
            },
            collection_region: args.collection_region.clone(),
            frames_per_chunk: args.lambda_frames_per_chunk,
            config,
            timeline,
        };
        let on_progress = cloud::progress_callback(progress(2));
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(cloud::scan_video(&options, on_progress))?
    } else {
        scan_locally(g, store, args, config, timeline)?
    };
    if let Some(out) = &args.report {
        std::fs::write(out, scan::render_html(&report, &thumbs))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(out) = &args.montage {
        write_montage(g, args, &report.frames, out)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", scan::render_text(&report));
    }
    Ok(ExitCode::SUCCESS)
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
    let frames_per_chunk = match args.stack {
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

/// A progress bar on a terminal, nothing otherwise.
fn progress(len: usize) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
        bar.set_style(style);
    }
    bar
}

/// Reports a per-file failure on one line and keeps going.
fn report_failure(path: &Path, error: &anyhow::Error) {
    eprintln!("facectl: {}: {error:#}", path.display());
}

#[derive(Debug, Serialize)]
struct ImageFaces<F> {
    path: String,
    width: u32,
    height: u32,
    faces: Vec<F>,
}

fn read_and_decode(pipeline: &FacePipeline, path: &Path) -> Result<(Vec<u8>, face_core::RgbImage)> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
    let image = pipeline.decode(&bytes)?;
    Ok((bytes, image))
}

fn write_annotated(
    path: &Path,
    mut image: face_core::RgbImage,
    faces: &[DetectedFace],
    known: &[bool],
) -> Result<()> {
    annotate::draw_faces(&mut image, faces, known);
    image
        .save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}

fn detect(
    g: &GlobalArgs,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    let pipeline = load(g)?;
    per_image(
        images,
        json,
        annotate_to,
        |bytes| {
            let image = pipeline.decode(bytes)?;
            let mut faces = pipeline.detect(&image)?;
            DetectedFace::largest_first(&mut faces);
            Ok((Pixels::Decoded(image), faces))
        },
        print_detections,
    )
}

/// `--annotate` draws on one image: refused with several, before any work.
fn one_image_to_annotate(images: &[PathBuf], annotate_to: Option<&Path>) -> Result<()> {
    if annotate_to.is_some() && images.len() != 1 {
        bail!("--annotate takes exactly one image");
    }
    Ok(())
}

/// A face as `--annotate` draws it.
trait AnnotatedFace {
    fn detected(&self) -> &DetectedFace;
    /// Known or unknown, once matched against a collection.
    fn recognized(&self) -> Option<bool>;
}

impl AnnotatedFace for DetectedFace {
    fn detected(&self) -> &DetectedFace {
        self
    }
    fn recognized(&self) -> Option<bool> {
        None
    }
}

impl AnnotatedFace for RecognizedFace {
    fn detected(&self) -> &DetectedFace {
        &self.face
    }
    fn recognized(&self) -> Option<bool> {
        Some(self.face_match.identity.is_some())
    }
}

/// What `detect` and `recognize` share: each image read, decoded and
/// analyzed in turn, printed as text or gathered into one JSON array; an
/// unreadable image is reported on its own line and the others go on (the
/// exit code says some failed).
fn per_image<F: AnnotatedFace + Serialize>(
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
    analyze: impl Fn(&[u8]) -> Result<(Pixels, Vec<F>)>,
    print: fn(&Path, &[F]),
) -> Result<ExitCode> {
    let bar = progress(images.len());
    let mut failed = false;
    let mut results = Vec::new();
    for path in images {
        bar.set_message(path.display().to_string());
        let outcome = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read: {e}"))
            .and_then(|bytes| analyze(&bytes).map(|(pixels, faces)| (bytes, pixels, faces)));
        bar.inc(1);
        match outcome {
            Ok((bytes, pixels, faces)) => {
                let (width, height) = pixels.size();
                if let Some(out) = annotate_to {
                    let detected: Vec<DetectedFace> =
                        faces.iter().map(|f| f.detected().clone()).collect();
                    let known: Vec<bool> = faces.iter().filter_map(F::recognized).collect();
                    write_annotated(out, pixels.into_image(&bytes)?, &detected, &known)?;
                }
                if !json {
                    bar.suspend(|| print(path, &faces));
                }
                results.push(ImageFaces {
                    path: path.display().to_string(),
                    width,
                    height,
                    faces,
                });
            }
            Err(e) => {
                failed = true;
                bar.suspend(|| report_failure(path, &e));
            }
        }
    }
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An analyzed image: decoded here, or only its size (a remote answer).
enum Pixels {
    Decoded(face_core::RgbImage),
    Size(u32, u32),
}

impl Pixels {
    fn size(&self) -> (u32, u32) {
        match self {
            Pixels::Decoded(image) => (image.width(), image.height()),
            Pixels::Size(w, h) => (*w, *h),
        }
    }

    /// The pixels to draw on, decoding `bytes` here if the analysis ran
    /// elsewhere.
    fn into_image(self, bytes: &[u8]) -> Result<face_core::RgbImage> {
        match self {
            Pixels::Decoded(image) => Ok(image),
            Pixels::Size(..) => {
                Ok(face_core::decode_image(bytes, &face_core::DecodeLimits::default())?.rgb)
            }
        }
    }
}

fn remote_detect(
    client: &remote::ApiClient,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    per_image(
        images,
        json,
        annotate_to,
        |bytes| {
            let r = client.detect(bytes)?;
            Ok((Pixels::Size(r.image_width, r.image_height), r.faces))
        },
        print_detections,
    )
}

fn remote_recognize(
    client: &remote::ApiClient,
    collection: &str,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    per_image(
        images,
        json,
        annotate_to,
        |bytes| {
            let r = client.search(collection, bytes)?;
            Ok((
                Pixels::Size(r.image_width, r.image_height),
                remote::recognized_faces(&r),
            ))
        },
        print_recognitions,
    )
}

fn remote_enroll(
    client: &remote::ApiClient,
    collection: &str,
    person: &str,
    attributes: &[String],
    images: &[PathBuf],
    json: bool,
) -> Result<ExitCode> {
    let attributes = parse_attributes(attributes)?;
    let mut results = Vec::new();
    let mut readable: Vec<(String, Vec<u8>)> = Vec::new();
    for path in images {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => readable.push((name, bytes)),
            Err(e) => {
                let e = anyhow::anyhow!("cannot read: {e}");
                report_failure(path, &e);
                results.push(EnrollResult::Error {
                    path: name,
                    error: format!("{e:#}"),
                });
            }
        }
    }
    let mut total = None;
    // One call per batch the API takes; attributes ride on the first.
    let mut attributes = Some(attributes);
    for batch in readable.chunks(face_api::limits::MAX_IMAGES_PER_ENROLL) {
        let bytes: Vec<&[u8]> = batch.iter().map(|(_, b)| b.as_slice()).collect();
        let sent = client.images(collection, &bytes)?;
        // The server names a photo `base64[i]` (its position) or by its key.
        let path_of = |source: &str| -> String {
            let by_position = source
                .strip_prefix("base64[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok());
            let by_key = sent.iter().position(|image| {
                matches!(image, face_api::types::Image::S3Key(key) if source.ends_with(key.as_str()))
            });
            by_position
                .or(by_key)
                .and_then(|i| batch.get(i))
                .map_or_else(|| source.to_string(), |(path, _)| path.clone())
        };
        let response = client.enroll(
            collection,
            person,
            sent.clone(),
            attributes.take().unwrap_or_default(),
        )?;
        for f in &response.indexed {
            results.push(EnrollResult::Indexed {
                path: path_of(&f.source),
                face_id: f.face_id.clone(),
                confidence: f.confidence / 100.0,
            });
        }
        for u in &response.unindexed {
            results.push(EnrollResult::Unindexed {
                path: path_of(&u.source),
                reason: u.reason.clone(),
                message: u.message.clone(),
            });
        }
        total = Some(response.face_count);
    }
    print_enrollment(
        &results,
        json,
        person,
        collection,
        total.unwrap_or(0) as usize,
    )
}

fn compare(
    g: &GlobalArgs,
    client: Option<&remote::ApiClient>,
    source: &Path,
    target: &Path,
    json: bool,
) -> Result<ExitCode> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let (a, b) = (read(source)?, read(target)?);
    let comparison = match client {
        Some(client) => {
            let r = client.compare(&a, &b)?;
            face_core::FaceComparison {
                distance: r.distance,
                similarity: r.similarity,
                same_person: r.same_person,
                source_face: r.source_face,
                target_face: r.target_face,
            }
        }
        None => {
            let pipeline = load(g)?;
            let face_of = |bytes: &[u8], path: &Path| -> Result<face_core::AnalyzedFace> {
                let image = pipeline.decode(bytes)?;
                pipeline
                    .largest_face(&image)?
                    .with_context(|| format!("{}: no face found", path.display()))
            };
            let (s, t) = (face_of(&a, source)?, face_of(&b, target)?);
            pipeline.compare_faces(&s, &t)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        println!(
            "{}: distance {:.3}, similarity {:.1}",
            if comparison.same_person {
                "same person"
            } else {
                "different people"
            },
            comparison.distance,
            comparison.similarity
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_detections(path: &Path, faces: &[DetectedFace]) {
    println!("{}: {} face(s)", path.display(), faces.len());
    for (i, f) in faces.iter().enumerate() {
        println!(
            "  #{i} box x={:.0} y={:.0} w={:.0} h={:.0} confidence {:.3}",
            f.bbox.x, f.bbox.y, f.bbox.width, f.bbox.height, f.confidence
        );
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum EnrollResult {
    Indexed {
        path: String,
        face_id: String,
        confidence: f32,
    },
    /// Refused, with Rekognition's reason code (`NO_FACE`, ...).
    Unindexed {
        path: String,
        reason: String,
        message: String,
    },
    Error {
        path: String,
        error: String,
    },
}

fn parse_attributes(attributes: &[String]) -> Result<BTreeMap<String, String>> {
    attributes
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--attr {kv:?} is not KEY=VALUE"),
        })
        .collect()
}

fn enroll(
    g: &GlobalArgs,
    store: &store::Store,
    collection_name: &str,
    person: &str,
    attributes: &[String],
    images: &[PathBuf],
    json: bool,
) -> Result<ExitCode> {
    store::Store::validate_name(collection_name)?;
    Collection::validate_name(person)?;
    let attributes = parse_attributes(attributes)?;
    let pipeline = load(g)?;
    let mut collection = store
        .load(collection_name)?
        .unwrap_or_else(|| Collection::new(pipeline.face_model_version()));
    collection.check_compatible(pipeline.face_model_version())?;

    let bar = progress(images.len());
    let mut results = Vec::new();
    let mut indexed = Vec::new();
    for path in images {
        bar.set_message(path.display().to_string());
        let name = path.display().to_string();
        let outcome = read_and_decode(&pipeline, path).and_then(|(bytes, image)| {
            Ok((
                hex::encode(&sha2::Sha256::digest(&bytes)[..8]),
                pipeline.enroll_image(&image)?,
            ))
        });
        bar.inc(1);
        let result = match outcome {
            Ok((
                face_id,
                EnrollOutcome::Indexed {
                    face,
                    embedding,
                    augmentations,
                },
            )) => {
                indexed.push(FacePipeline::enrolled_face(
                    &name,
                    &face_id,
                    embedding,
                    augmentations,
                ));
                EnrollResult::Indexed {
                    path: name,
                    face_id,
                    confidence: face.confidence,
                }
            }
            Ok((_, EnrollOutcome::Unindexed(reason))) => EnrollResult::Unindexed {
                path: name,
                reason: reason.code().to_string(),
                message: reason.to_string(),
            },
            Err(e) => {
                bar.suspend(|| report_failure(path, &e));
                EnrollResult::Error {
                    path: name,
                    error: format!("{e:#}"),
                }
            }
        };
        results.push(result);
    }
    bar.finish_and_clear();
    let any_indexed = !indexed.is_empty();
    if any_indexed {
        collection.add_faces(person, indexed)?;
        if let Some(p) = collection.people.get_mut(person) {
            p.attributes.extend(attributes);
        }
        store.save(collection_name, &collection)?;
    }
    let total = collection.people.get(person).map_or(0, |p| p.faces.len());
    print_enrollment(&results, json, person, collection_name, total)
}

/// Prints what enrolling did; fails when a photo could not be read or none
/// was indexed.
fn print_enrollment(
    results: &[EnrollResult],
    json: bool,
    person: &str,
    collection_name: &str,
    total_faces: usize,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(results)?);
    } else {
        for r in results {
            match r {
                EnrollResult::Indexed {
                    path,
                    face_id,
                    confidence,
                } => {
                    println!("indexed {path} as face {face_id} (confidence {confidence:.3})")
                }
                EnrollResult::Unindexed { path, message, .. } => {
                    println!("not indexed {path}: {message}")
                }
                EnrollResult::Error { .. } => {}
            }
        }
        println!("{person}: {total_faces} face(s) in collection {collection_name}");
    }
    let errors = results
        .iter()
        .any(|r| matches!(r, EnrollResult::Error { .. }));
    let any_indexed = results
        .iter()
        .any(|r| matches!(r, EnrollResult::Indexed { .. }));
    Ok(if errors || !any_indexed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Serialize)]
struct PersonSummary<'a> {
    person: &'a str,
    faces: usize,
    attributes: &'a BTreeMap<String, String>,
}

fn people(store: &store::Store, collection_name: &str, json: bool) -> Result<ExitCode> {
    let collection = store.load_existing(collection_name)?;
    let summary: Vec<PersonSummary<'_>> = collection
        .people
        .iter()
        .map(|(name, p)| PersonSummary {
            person: name,
            faces: p.faces.len(),
            attributes: &p.attributes,
        })
        .collect();
    print_people(&summary, json)
}

fn print_people(summary: &[PersonSummary<'_>], json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for p in summary {
            let attrs: Vec<String> = p
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("{}\t{} face(s)\t{}", p.person, p.faces, attrs.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn recognize(
    g: &GlobalArgs,
    store: &store::Store,
    collection_name: &str,
    images: &[PathBuf],
    json: bool,
    annotate_to: Option<&Path>,
) -> Result<ExitCode> {
    one_image_to_annotate(images, annotate_to)?;
    let collection = store.load_existing(collection_name)?;
    let pipeline = load(g)?;
    collection.check_compatible(pipeline.face_model_version())?;
    per_image(
        images,
        json,
        annotate_to,
        |bytes| {
            let image = pipeline.decode(bytes)?;
            let mut timings = StageTimings::default();
            let faces = pipeline.recognize_image(&image, &collection, &mut timings)?;
            Ok((Pixels::Decoded(image), faces))
        },
        print_recognitions,
    )
}

fn print_recognitions(path: &Path, faces: &[RecognizedFace]) {
    println!("{}: {} face(s)", path.display(), faces.len());
    for (i, f) in faces.iter().enumerate() {
        let b = f.face.bbox;
        match &f.face_match.identity {
            Some(c) => println!(
                "  #{i} {} (similarity {:.1}, distance {:.3}) at x={:.0} y={:.0} w={:.0} h={:.0}",
                c.person, c.similarity, c.distance, b.x, b.y, b.width, b.height
            ),
            None => println!(
                "  #{i} unknown ({}; nearest {}) at x={:.0} y={:.0} w={:.0} h={:.0}",
                f.face_match
                    .unknown_reason
                    .map_or("below_threshold", |r| r.as_str()),
                f.face_match
                    .candidates
                    .first()
                    .map_or("-".to_string(), |c| format!(
                        "{} at {:.3}",
                        c.person, c.distance
                    )),
                b.x,
                b.y,
                b.width,
                b.height
            ),
        }
    }
}
