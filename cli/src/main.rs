//! `facectl`: face detection, enrollment, recognition and evaluation on
//! this machine, with collections in a local directory. See the README.
//!
//! This file is the command line (the flags every command shares and the
//! list of commands); each command's own flags and body are a module of
//! `commands/`. What talks to a deployed stack needs the `cloud` feature.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use commands::{bench, compare, detect, enroll, eval, forget, people, recognize, scan_video};
#[cfg(feature = "cloud")]
use commands::{results, scan_status};
use face_core::{FacePipeline, PipelineConfig};
#[cfg(feature = "cloud")]
use facectl::remote;
use facectl::{models, output, store};

mod commands;

// As in the Lambda bootstraps: tract allocates every intermediate tensor,
// and mimalloc reuses freed pages where glibc's malloc hands large blocks
// back to the kernel and faults them in again on the next image.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whether this build has the commands and flags that talk to a deployed
/// stack. Without it, their flags on local commands are hidden and refused.
const CLOUD: bool = cfg!(feature = "cloud");

/// The error of a cloud flag in a build without the `cloud` feature.
#[cfg(not(feature = "cloud"))]
fn needs_cloud(flags: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{flags} works on a deployed stack, and this facectl was built without the `cloud` feature; rebuild with `cargo install --path cli --features cloud`"
    )
}

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
    /// Folder with the model files [default: $XDG_DATA_HOME/facectl/models
    /// (~/.local/share/facectl/models), else the checkout's blobs/]
    #[arg(long, global = true, env = "FACECTL_MODELS")]
    models: Option<PathBuf>,
    /// YuNet detector file inside the models folder
    #[arg(long, global = true, default_value = models::DEFAULT_DETECTOR)]
    detector: String,
    /// Where collections are kept [default: $XDG_DATA_HOME/facectl, else ~/.local/share/facectl]
    #[arg(long, global = true, env = "FACECTL_STORE")]
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
    /// Worker threads for batches of images (1 to 1024)
    #[arg(long, global = true, default_value_t = default_threads(), value_parser = threads())]
    threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// The most `--threads`: each is an OS thread, and chunk counts derive from it.
const MAX_THREADS: usize = 1024;

fn threads() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS as u64)
}

/// Where a command runs: here (the default), or on a deployed stack's API.
/// Without the `cloud` feature these flags are parsed only to be refused.
#[derive(Debug, Clone, Args)]
#[cfg_attr(not(feature = "cloud"), allow(dead_code))]
struct RemoteArgs {
    /// Run on this deployment's HTTPS API (`local`, `dev`, `prod` or a YAML
    /// file; its URL from the deploy record) instead of this machine
    #[arg(long, value_name = "NAME", conflicts_with = "endpoint", hide = !CLOUD)]
    stack: Option<String>,
    /// Run on the API at this base URL (`https://.../live`) instead of this machine
    #[arg(long, value_name = "URL", hide = !CLOUD)]
    endpoint: Option<String>,
    /// API key for --stack/--endpoint [default: $FACE_API_KEY]
    #[arg(long, value_name = "KEY", hide = !CLOUD)]
    api_key: Option<String>,
    /// With --stack: the region whose API to use [default: the deployment's first]
    #[arg(long, value_name = "REGION", requires = "stack", hide = !CLOUD)]
    region: Option<String>,
}

/// Where a command runs, from its [`RemoteArgs`].
enum Target {
    /// On this machine.
    Here,
    /// On a deployed stack's HTTPS API.
    #[cfg(feature = "cloud")]
    Api(remote::ApiClient),
}

impl RemoteArgs {
    #[cfg(feature = "cloud")]
    fn target(&self) -> Result<Target> {
        Ok(self.client()?.map_or(Target::Here, Target::Api))
    }

    #[cfg(not(feature = "cloud"))]
    fn target(&self) -> Result<Target> {
        if self.stack.is_some() || self.endpoint.is_some() {
            return Err(needs_cloud("--stack/--endpoint"));
        }
        Ok(Target::Here)
    }

    /// The API client, when the command runs remotely.
    #[cfg(feature = "cloud")]
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
    Detect(detect::DetectArgs),
    /// Enroll a person from one or more photos
    Enroll(enroll::EnrollArgs),
    /// List the people of a collection
    People(people::PeopleArgs),
    /// Remove a person and every stored embedding of theirs
    Forget(forget::ForgetArgs),
    /// Say who is in each photo, or "unknown"
    Recognize(recognize::RecognizeArgs),
    /// Whether the largest faces of two photos are the same person
    Compare(compare::CompareArgs),
    /// Detection and recognition quality on a labelled folder (shared/data layout)
    Eval(eval::EvalArgs),
    /// Timings per stage, throughput and cold start (used by `cargo xtask bench`)
    Bench(bench::BenchArgs),
    /// Find enrolled people in an MP4 (H.264) video: timeline, contact sheet, Lambda cost
    ScanVideo(scan_video::ScanVideoArgs),
    /// A deployed stack's video scan job: status, progress and, when done, the timeline
    #[cfg(feature = "cloud")]
    ScanStatus(scan_status::ScanStatusArgs),
    /// Read a deployed stack's results queue: each result with its latency since upload
    #[cfg(feature = "cloud")]
    Results(results::ResultsArgs),
}

fn main() -> ExitCode {
    let process_start = Instant::now();
    init_tracing();
    let cli = Cli::parse();
    match run(cli, process_start) {
        Ok(code) => code,
        // The reader of stdout went away (`| head`): nothing to report.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::from(output::BROKEN_PIPE_EXIT),
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
        &models::models_dir(g.models.as_deref(), &g.detector)?,
        &g.detector,
        pipeline_config(g),
    )
}

fn run(cli: Cli, process_start: Instant) -> Result<ExitCode> {
    let g = &cli.global;
    let store = store::Store::new(store::store_dir(g.store.as_deref()));
    match cli.command {
        Command::Detect(args) => detect::run(g, args),
        Command::Enroll(args) => enroll::run(g, &store, args),
        Command::People(args) => people::run(&store, args),
        Command::Forget(args) => forget::run(&store, args),
        Command::Recognize(args) => recognize::run(g, &store, args),
        Command::Compare(args) => compare::run(g, args),
        Command::Eval(args) => eval::run(g, args),
        Command::Bench(args) => bench::run(g, process_start, args),
        Command::ScanVideo(args) => scan_video::run(g, &store, &args),
        #[cfg(feature = "cloud")]
        Command::ScanStatus(args) => scan_status::run(args),
        #[cfg(feature = "cloud")]
        Command::Results(args) => results::follow_results(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `results --idle-timeout-s` takes only what a `Duration` holds (it
    /// once panicked on NaN, negative, infinite or huge seconds).
    #[cfg(feature = "cloud")]
    #[test]
    fn results_idle_timeout_is_a_duration() {
        use clap::Parser;
        let parse = |s: &str| {
            let flag = format!("--idle-timeout-s={s}");
            Cli::try_parse_from(["facectl", "results", "--stack", "local", &flag])
        };
        for bad in ["NaN", "-1", "inf", "1e300"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        assert!(parse("2.5").is_ok());
    }

    /// Every command says what it does, and every flag and argument of
    /// every command (hidden ones too) has help text.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, "facectl", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
        assert!(
            command.get_subcommands().count() >= 9,
            "{:?}",
            command
                .get_subcommands()
                .map(|s| s.get_name())
                .collect::<Vec<_>>()
        );
    }
}
