//! `cargo xtask bench-lambda`: the real x86_64 `recognize` bootstrap under
//! AWS's Runtime Interface Emulator, against moto: cold start (RIE spawn →
//! first response for a one-face photo, models loaded at init) split into
//! its phases, and warm latency per invoke, beside `facectl detect`'s
//! process start → exit and the Python onnxruntime reference's (the same
//! photo, `bench/reference_onnxruntime.py --cold-start`), both measured in
//! the same run, and the old PyTorch Lambda's 19.9 s cold start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use face_contracts::env as vars;
use face_core::stats::median;
use local_aws::{MotoServer, Rie, RieOptions, Tools};
use serde::Serialize;
use serde_json::json;
use xshell::Shell;

use crate::build;

const BUCKET: &str = "bench-faces";
const COLLECTION: &str = "bench";
/// The old CSE546 system (PyTorch on Lambda): measured cold start.
const PYTORCH_COLD_START_MS: f64 = 19_900.0;
/// The goal of issue 17 (issue 3's was 300 ms).
const GOAL_COLD_START_MS: f64 = 100.0;

#[derive(Debug, clap::Args)]
pub struct BenchLambdaArgs {
    /// Data folder holding the one-face photo [default: $FACE_DATA_DIR, else <repo>/../shared/data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Cold starts measured (a fresh RIE and bootstrap each)
    #[arg(long, default_value_t = 3)]
    pub cold_runs: usize,
    /// Warm invokes measured after each cold start
    #[arg(long, default_value_t = 10)]
    pub warm_invokes: usize,
    /// Use the existing target/lambda-dist/x86_64/recognize instead of building
    #[arg(long)]
    pub skip_build: bool,
    /// Do not time the Python onnxruntime reference's cold start
    #[arg(long)]
    pub skip_reference: bool,
    /// Also write every figure as JSON to this file
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// Medians in ms.
#[derive(Debug, Serialize)]
struct Summary {
    image: PathBuf,
    cold_runs: usize,
    warm_invokes: usize,
    /// RIE spawn → first response (the cold start a caller sees).
    cold_start_ms: f64,
    /// RIE spawn → it accepts invokes.
    rie_listening_ms: f64,
    /// Bootstrap exec → runtime ready (models loaded), the RIE's INIT REPORT.
    init_ms: Option<f64>,
    /// The first invoke's wall time (includes init, which the RIE runs then).
    first_invoke_ms: f64,
    warm_median_ms: f64,
    warm_min_ms: f64,
    warm_max_ms: f64,
    faces_found: usize,
    /// `facectl detect` spawn → exit on the same image, same run (None when
    /// target/release/facectl is not built).
    facectl_cold_start_ms: Option<f64>,
    /// The Python onnxruntime reference answering the same photo, spawn →
    /// exit, same run (None with --skip-reference).
    onnxruntime_cold_start_ms: Option<f64>,
    pytorch_cold_start_ms: f64,
}

pub fn run(sh: &Shell, root: &Path, args: BenchLambdaArgs) -> Result<()> {
    ensure!(
        args.cold_runs >= 1 && args.warm_invokes >= 1,
        "--cold-runs and --warm-invokes must be at least 1"
    );
    let data = devset::data_dir(args.data.as_deref(), root);
    // The photo the other benches time their cold start on.
    let labels = devset::recognition_labels(&data)?;
    let photo = devset::cold_start_photo(&labels).context("no recognition photos")?;
    let image = data.join(&photo.path);
    let bytes = std::fs::read(&image).with_context(|| format!("reading {}", image.display()))?;
    let event = json!({
        "collection": COLLECTION,
        "image": {"base64": base64::engine::general_purpose::STANDARD.encode(&bytes)},
    });

    let bootstrap = if args.skip_build {
        crate::target_dir(root).join("lambda-dist/x86_64/recognize/bootstrap")
    } else {
        let artifacts = build::build(
            root,
            face_contracts::Architecture::X86_64,
            build::Profile::Release,
            &["recognize".to_string()],
        )?;
        artifacts
            .first()
            .map(build::Artifact::bootstrap)
            .context("the build produced no recognize artifact")?
    };

    let tools = Tools::ensure_default().context("provisioning moto and the RIE")?;
    let moto = MotoServer::start_with(tools).context("starting moto")?;
    create_bucket(moto.endpoint_url())?;
    let mut env = moto.client_env();
    for (k, v) in [
        (vars::BUCKET, BUCKET),
        (vars::PEOPLE_TABLE, "bench-people"),
        (vars::RESULTS_TABLE, "bench-results"),
        (vars::RESULTS_QUEUE_URL, "http://unused.invalid/queue.fifo"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    // After the RIE's own pass-through of the caller's RUST_BACKTRACE.
    env.extend(crate::BACKTRACE_OFF.map(|(k, v)| (k.to_string(), v.to_string())));
    let options = RieOptions {
        function_name: "recognize".into(),
        memory_mib: 2048,
        ..RieOptions::default()
    };

    let (mut cold, mut listening, mut init, mut first, mut warm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut faces_found = 0;
    for run in 1..=args.cold_runs {
        eprintln!("== cold start {run}/{}", args.cold_runs);
        let rie = Rie::start_with(tools, &options, &bootstrap, &env)?;
        let invocation = rie.invoke(&event)?;
        cold.push(ms(rie.spawned_at().elapsed()));
        listening.push(ms(rie.listening_after()));
        first.push(ms(invocation.wall_time));
        if let Some(d) = rie.init_duration() {
            init.push(ms(d));
        }
        let response = invocation.ok().with_context(|| {
            format!(
                "recognize failed; log {}:\n{}",
                rie.log_path().display(),
                rie.log_tail(20)
            )
        })?;
        faces_found = count_faces(&response);
        if faces_found != 1 {
            bail!("expected one face in {}, got: {response}", image.display());
        }
        for _ in 0..args.warm_invokes {
            let invocation = rie.invoke(&event)?;
            warm.push(ms(invocation.wall_time));
            invocation.ok()?;
        }
    }

    let facectl = crate::target_dir(root).join("release/facectl");
    let models = crate::bench::default_models(root)?;
    let facectl_cold_start_ms = if facectl.is_file() {
        Some(crate::bench::facectl_cold_start_ms(
            &facectl,
            &image,
            &models,
            args.cold_runs,
        )?)
    } else {
        eprintln!("(no {}: build it to compare in-process)", facectl.display());
        None
    };

    let onnxruntime_cold_start_ms = if args.skip_reference {
        None
    } else {
        Some(crate::bench::reference_cold_start_ms(
            sh,
            root,
            &image,
            &models,
            args.cold_runs,
        )?)
    };

    let summary = Summary {
        image,
        cold_runs: args.cold_runs,
        warm_invokes: args.warm_invokes,
        cold_start_ms: median(&cold).context("no cold starts")?,
        rie_listening_ms: median(&listening).context("no cold starts")?,
        init_ms: median(&init),
        first_invoke_ms: median(&first).context("no cold starts")?,
        warm_min_ms: warm.iter().copied().fold(f64::INFINITY, f64::min),
        warm_max_ms: warm.iter().copied().fold(0.0, f64::max),
        warm_median_ms: median(&warm).context("no warm invokes")?,
        faces_found,
        facectl_cold_start_ms,
        onnxruntime_cold_start_ms,
        pytorch_cold_start_ms: PYTORCH_COLD_START_MS,
    };
    print!("{}", render(&summary));
    if let Some(path) = &args.json_out {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// CreateBucket through S3's REST API (moto needs no signature).
fn create_bucket(endpoint: &str) -> Result<()> {
    let url = format!("{endpoint}/{BUCKET}");
    ureq::put(&url)
        .send_empty()
        .with_context(|| format!("creating the bench bucket at {url}"))?;
    Ok(())
}

fn count_faces(response: &serde_json::Value) -> usize {
    ["faces", "Faces", "FaceRecords"]
        .iter()
        .find_map(|k| response.get(*k).and_then(|v| v.as_array()).map(Vec::len))
        .unwrap_or(0)
}

fn render(s: &Summary) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("{label:<52} {value}\n"));
    };
    line(
        &mut out,
        "recognize bootstrap under the RIE (median ms)",
        String::new(),
    );
    line(
        &mut out,
        "  cold start: RIE spawn -> first response",
        format!(
            "{:>8.1}  (goal < {GOAL_COLD_START_MS:.0}: {})",
            s.cold_start_ms,
            if s.cold_start_ms < GOAL_COLD_START_MS {
                "met"
            } else {
                "MISSED"
            }
        ),
    );
    line(
        &mut out,
        "    RIE spawn -> listening",
        format!("{:>8.1}", s.rie_listening_ms),
    );
    if let Some(init) = s.init_ms {
        line(
            &mut out,
            "    init: bootstrap exec -> models loaded",
            format!("{init:>8.1}"),
        );
        line(
            &mut out,
            "    first request after init",
            format!("{:>8.1}", s.first_invoke_ms - init),
        );
    }
    line(
        &mut out,
        "  warm invoke",
        format!(
            "{:>8.1}  (min {:.1}, max {:.1}, {} invokes)",
            s.warm_median_ms,
            s.warm_min_ms,
            s.warm_max_ms,
            s.cold_runs * s.warm_invokes
        ),
    );
    if let Some(f) = s.facectl_cold_start_ms {
        line(
            &mut out,
            "  facectl detect, spawn -> exit (in-process pipeline)",
            format!(
                "{f:>8.1}  (RIE cold / facectl = {:.2})",
                s.cold_start_ms / f
            ),
        );
    }
    if let Some(r) = s.onnxruntime_cold_start_ms {
        line(
            &mut out,
            "  Python onnxruntime process, spawn -> exit (same photo)",
            format!(
                "{r:>8.1}  (RIE cold / onnxruntime = {:.2})",
                s.cold_start_ms / r
            ),
        );
    }
    line(
        &mut out,
        "  19.9 s PyTorch cold start (old CSE546)",
        format!(
            "{:>8.0}  (ours is {:.0}x faster)",
            s.pytorch_cold_start_ms,
            s.pytorch_cold_start_ms / s.cold_start_ms
        ),
    );
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
