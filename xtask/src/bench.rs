//! `cargo xtask bench`: our pipeline (`facectl bench`, tract) against the
//! same pipeline in Python onnxruntime (`bench/reference_onnxruntime.py`),
//! on the same images, at 1 and 2 threads, plus cold start.
//!
//! At 1 thread the two sides run in alternating rounds (ours, onnxruntime,
//! ours, ...) and the end-to-end ratio is the median of each round's: on a
//! shared VM whose speed drifts by a third within minutes, one run of each
//! side after the other gave ratios from 1.25 to 1.39 for the same build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use face_core::stats::median;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

/// Thread counts measured on both sides.
const THREADS: [u32; 2] = [1, 2];
/// External cold-start runs of `facectl detect` (median taken).
const COLD_START_RUNS: usize = 5;
/// The old CSE546 system (PyTorch on Lambda): measured cold start.
const PYTORCH_COLD_START_MS: f64 = 19_900.0;
const PYTORCH_COLD_START_LABEL: &str = "  19.9 s PyTorch cold start (old CSE546)";
/// A file every models folder must hold.
const RECOGNIZER_FILE: &str = "dlib_face_recognition_resnet_model_v1.onnx";
const VENV: &str = "target/bench-venv";
const REQUIREMENTS: &str = "bench/requirements.txt";
pub(crate) const REFERENCE_SCRIPT: &str = "bench/reference_onnxruntime.py";
const STAMP: &str = ".requirements-stamp";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Labelled data folder [default: $FACE_DATA_DIR, else
    /// <repo>/../shared/data]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder with the .onnx models [default: <repo>/blobs, else
    /// <repo>/../shared/blobs]
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Timed passes over all images (after one warm-up pass)
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Alternating rounds of both sides at 1 thread (the ratio is the
    /// median of the rounds')
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Do not run the Python onnxruntime reference
    #[arg(long)]
    pub skip_reference: bool,
    /// Do not build or run facectl (reference only)
    #[arg(long)]
    pub skip_ours: bool,
    /// Also write every figure as JSON to this file
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// What `facectl bench --json` and the Python reference both print.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub runtime: String,
    pub threads: u32,
    pub images: u64,
    pub faces: u64,
    pub stages_median_ms: StageMedians,
    pub end_to_end_median_ms: f64,
    pub images_per_s: f64,
    /// Loading the models (both sides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_load_ms: Option<f64>,
    /// Process start to first result (ours only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_ms: Option<f64>,
}

/// Per-image medians, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageMedians {
    pub decode: f64,
    pub detect: f64,
    pub align: f64,
    pub embed: f64,
    #[serde(rename = "match")]
    pub match_: f64,
}

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Serialize)]
struct Summary {
    data: PathBuf,
    models: PathBuf,
    repeat: u32,
    /// Every run, in the order made: the 1-thread rounds, then 2 threads.
    ours: Vec<BenchReport>,
    reference: Vec<BenchReport>,
    ours_external_cold_start_ms: Option<f64>,
    pytorch_cold_start_ms: f64,
}

pub fn run(sh: &Shell, root: &Path, args: BenchArgs) -> Result<()> {
    if args.repeat == 0 || args.rounds == 0 {
        bail!("--repeat and --rounds must be at least 1");
    }
    let data = devset::data_dir(args.data.as_deref(), root);
    let labels = devset::recognition_labels(&data)?;
    let cold_start = devset::cold_start_photo(&labels).context("no recognition photos")?;
    let models = match &args.models {
        Some(m) => m.clone(),
        None => default_models(root)?,
    };
    check_file(&models.join(RECOGNIZER_FILE), "models folder (--models)")?;
    let (data, models) = (absolute(&data)?, absolute(&models)?);
    let repeat = args.repeat.to_string();

    let mut summary = Summary {
        data: data.clone(),
        models: models.clone(),
        repeat: args.repeat,
        ours: Vec::new(),
        reference: Vec::new(),
        ours_external_cold_start_ms: None,
        pytorch_cold_start_ms: PYTORCH_COLD_START_MS,
    };

    let facectl = if !args.skip_ours {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let _dir = sh.push_dir(root);
        crate::as_from_a_shell(cmd!(sh, "{cargo} build --release -p facectl"))
            .run()
            .context("building facectl (release)")?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let facectl = absolute(&target.join("release/facectl"))?;
        Some(facectl)
    } else {
        None
    };
    let python = if args.skip_reference {
        None
    } else {
        Some((ensure_venv(sh, root)?, root.join(REFERENCE_SCRIPT)))
    };
    let ours = |threads: u32| -> Result<Option<BenchReport>> {
        let Some(facectl) = &facectl else {
            return Ok(None);
        };
        let t = threads.to_string();
        eprintln!("== ours, {threads} thread(s)");
        let out = cmd!(
            sh,
            "{facectl} bench --data {data} --models {models} --repeat {repeat} --threads {t} --json"
        )
        .read()
        .with_context(|| format!("running facectl bench at {threads} thread(s)"))?;
        parse_report(&out)
            .context("parsing the JSON of facectl bench")
            .map(Some)
    };
    let reference = |threads: u32| -> Result<Option<BenchReport>> {
        let Some((python, script)) = &python else {
            return Ok(None);
        };
        let t = threads.to_string();
        eprintln!("== onnxruntime reference, {threads} thread(s)");
        let out = cmd!(
            sh,
            "{python} {script} --models {models} --data {data} --repeat {repeat} --threads {t} --json"
        )
        .read()
        .with_context(|| format!("running {REFERENCE_SCRIPT} at {threads} thread(s)"))?;
        parse_report(&out)
            .context("parsing the JSON of the Python reference")
            .map(Some)
    };
    for threads in THREADS {
        let rounds = if threads == 1 { args.rounds } else { 1 };
        for _ in 0..rounds {
            summary.ours.extend(ours(threads)?);
            summary.reference.extend(reference(threads)?);
        }
    }
    if let Some(facectl) = &facectl {
        let image = data.join(&cold_start.path);
        check_file(&image, "cold-start image")?;
        summary.ours_external_cold_start_ms = Some(facectl_cold_start_ms(
            facectl,
            &image,
            &models,
            COLD_START_RUNS,
        )?);
    }

    print!("{}", render_table(&summary));
    if let Some(path) = &args.json_out {
        let json = serde_json::to_string_pretty(&summary).context("serializing the summary")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn check_file(path: &Path, what: &str) -> Result<()> {
    if !path.is_file() {
        bail!("{what}: {} not found", path.display());
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// `<repo>/blobs` when it holds the models, else the read-only shared copy.
pub(crate) fn default_models(root: &Path) -> Result<PathBuf> {
    let candidates = [root.join("blobs"), root.join("../shared/blobs")];
    candidates
        .iter()
        .find(|dir| dir.join(RECOGNIZER_FILE).is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no {RECOGNIZER_FILE} in {} or {}; pass --models DIR",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// The JSON object of a report: all of stdout, or else its last line that
/// looks like one (tolerates log lines before it).
fn parse_report(stdout: &str) -> Result<BenchReport> {
    if let Ok(report) = serde_json::from_str(stdout.trim()) {
        return Ok(report);
    }
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON object in output: {:?}", truncate(stdout, 300)))?;
    serde_json::from_str(line).with_context(|| format!("bad report: {}", truncate(line, 300)))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Median wall time of `facectl detect IMAGE --json --models DIR` over
/// `runs` process starts, spawn to exit, in ms.
pub(crate) fn facectl_cold_start_ms(
    facectl: &Path,
    image: &Path,
    models: &Path,
    runs: usize,
) -> Result<f64> {
    eprintln!("== facectl detect, {runs} process starts (cold start)");
    spawn_to_exit_ms(runs, || {
        let mut command = Command::new(facectl);
        command
            .envs(crate::BACKTRACE_OFF)
            .arg("detect")
            .arg(image)
            .args(["--json", "--models"])
            .arg(models);
        command
    })
}

/// Median wall time of the Python onnxruntime reference answering one image
/// (`--cold-start IMAGE`: interpreter start, imports, both sessions, the
/// pipeline once) over `runs` process starts, spawn to exit, in ms.
pub(crate) fn reference_cold_start_ms(
    sh: &Shell,
    root: &Path,
    image: &Path,
    models: &Path,
    runs: usize,
) -> Result<f64> {
    let python = ensure_venv(sh, root)?;
    let script = root.join(REFERENCE_SCRIPT);
    eprintln!("== onnxruntime reference, {runs} process starts (cold start)");
    spawn_to_exit_ms(runs, || {
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .arg("--models")
            .arg(models)
            .arg("--cold-start")
            .arg(image);
        command
    })
}

/// Median spawn-to-exit wall time of `runs` runs of a command, in ms; any
/// failed run fails the measurement.
fn spawn_to_exit_ms(runs: usize, command: impl Fn() -> Command) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut command = command();
        let program = command.get_program().to_string_lossy().into_owned();
        let start = Instant::now();
        let out = command
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("spawning {program}"))?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            bail!(
                "{program} failed ({}): {}",
                out.status,
                truncate(String::from_utf8_lossy(&out.stderr).trim(), 500)
            );
        }
        times.push(elapsed);
    }
    median(&times).context("no cold-start runs")
}

/// Makes `target/bench-venv` and installs bench/requirements.txt unless the
/// stamp says that exact file is already installed. Returns its python.
pub(crate) fn ensure_venv(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let requirements = root.join(REQUIREMENTS);
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let wanted = format!("fnv1a64:{:016x}\n", fnv1a64(&wanted));
    let stamp = venv.join(STAMP);
    if !python.is_file() {
        eprintln!("== creating {}", venv.display());
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .context("creating the Python venv (python3 -m venv)")?;
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        cmd!(
            sh,
            "{python} -m pip install --disable-pip-version-check -q -r {requirements}"
        )
        .run()
        .context("installing bench/requirements.txt into the venv")?;
        std::fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    }
    Ok(python)
}

/// FNV-1a, 64-bit: a stable content hash for the requirements stamp.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One report whose every figure is the median of `reports`' (the rounds
/// at one thread count); `None` when there are none.
fn median_report<'a>(reports: impl Iterator<Item = &'a BenchReport>) -> Option<BenchReport> {
    let reports: Vec<&BenchReport> = reports.collect();
    let first = *reports.first()?;
    let of = |get: &dyn Fn(&BenchReport) -> f64| {
        median(&reports.iter().map(|r| get(r)).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let of_some = |get: &dyn Fn(&BenchReport) -> Option<f64>| {
        median(&reports.iter().filter_map(|r| get(r)).collect::<Vec<_>>())
    };
    Some(BenchReport {
        runtime: first.runtime.clone(),
        threads: first.threads,
        images: first.images,
        faces: first.faces,
        stages_median_ms: StageMedians {
            decode: of(&|r| r.stages_median_ms.decode),
            detect: of(&|r| r.stages_median_ms.detect),
            align: of(&|r| r.stages_median_ms.align),
            embed: of(&|r| r.stages_median_ms.embed),
            match_: of(&|r| r.stages_median_ms.match_),
        },
        end_to_end_median_ms: of(&|r| r.end_to_end_median_ms),
        images_per_s: of(&|r| r.images_per_s),
        model_load_ms: of_some(&|r| r.model_load_ms),
        cold_start_ms: of_some(&|r| r.cold_start_ms),
    })
}

/// Each 1-thread round's end-to-end ratio ours/onnxruntime, in the order
/// run (round n of ours against round n of onnxruntime, run right after).
fn round_ratios(s: &Summary) -> Vec<f64> {
    let ours = s.ours.iter().filter(|r| r.threads == 1);
    let reference = s.reference.iter().filter(|r| r.threads == 1);
    ours.zip(reference)
        .filter(|(_, r)| r.end_to_end_median_ms > 0.0)
        .map(|(o, r)| o.end_to_end_median_ms / r.end_to_end_median_ms)
        .collect()
}

fn render_table(s: &Summary) -> String {
    let ours = |t: u32| median_report(s.ours.iter().filter(|r| r.threads == t));
    let refr = |t: u32| median_report(s.reference.iter().filter(|r| r.threads == t));
    let (o1, r1) = (ours(1), refr(1));
    let (o1, r1) = (o1.as_ref(), r1.as_ref());
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    };
    let name = |r: Option<&BenchReport>| r.map_or("-", |r| r.runtime.as_str()).to_string();

    let mut out = String::new();
    let mut row = |cells: [&str; 4]| {
        let line = format!(
            "{:<44} {:>20} {:>20} {:>10}",
            cells[0], cells[1], cells[2], cells[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    };
    row(["", "ours", "onnxruntime", "ours/ort"]);
    row(["runtime", &name(o1), &name(r1), ""]);
    let count =
        |r: Option<&BenchReport>| r.map_or("-".into(), |r| format!("{}/{}", r.images, r.faces));
    row(["images/faces found", &count(o1), &count(r1), ""]);
    row(["", "", "", ""]);
    row(["median ms per image, 1 thread", "", "", ""]);
    type Stage = fn(&BenchReport) -> f64;
    let stages: [(&str, Stage); 6] = [
        ("  decode", |r| r.stages_median_ms.decode),
        ("  detect", |r| r.stages_median_ms.detect),
        ("  align", |r| r.stages_median_ms.align),
        ("  embed", |r| r.stages_median_ms.embed),
        ("  match", |r| r.stages_median_ms.match_),
        ("  end-to-end", |r| r.end_to_end_median_ms),
    ];
    for (label, get) in stages {
        let (a, b) = (o1.map(get), r1.map(get));
        row([label, &ms(a), &ms(b), &ratio(a, b)]);
    }
    row(["", "", "", ""]);
    row(["images/s (higher is better)", "", "", ""]);
    for t in THREADS {
        let (a, b) = (
            ours(t).map(|r| r.images_per_s),
            refr(t).map(|r| r.images_per_s),
        );
        row([&format!("  {t} thread(s)"), &ms(a), &ms(b), &ratio(a, b)]);
    }
    row(["", "", "", ""]);
    row(["cold start", "ms", "", "PyTorch/x"]);
    let vs_pytorch = |v: Option<f64>| ratio(Some(s.pytorch_cold_start_ms), v);
    let cold: [(&str, Option<f64>); 4] = [
        (
            "  ours, in-process (start -> first result)",
            o1.and_then(|r| r.cold_start_ms),
        ),
        (
            "  ours, external process (spawn -> exit)",
            s.ours_external_cold_start_ms,
        ),
        (
            "  onnxruntime model load (1 thread)",
            r1.and_then(|r| r.model_load_ms),
        ),
        (PYTORCH_COLD_START_LABEL, Some(s.pytorch_cold_start_ms)),
    ];
    for (label, value) in cold {
        row([label, &ms(value), "", &vs_pytorch(value)]);
    }
    row([
        "  ours model load (1 thread)",
        &ms(o1.and_then(|r| r.model_load_ms)),
        "",
        &vs_pytorch(o1.and_then(|r| r.model_load_ms)),
    ]);
    // Issue 17's figure, last so a script can take it with `tail -1`: the
    // median of the rounds' ratios, each ours against the onnxruntime run
    // right after it.
    let ratios = round_ratios(s);
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    out.push_str(&format!(
        "\nend-to-end ratio by round (1 thread): {}\n",
        if listed.is_empty() {
            "-".to_string()
        } else {
            listed.join(", ")
        }
    ));
    out.push_str(&format!(
        "end-to-end ratio ours/onnxruntime: {}\n",
        median(&ratios).map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_JSON: &str = r#"{"runtime": "onnxruntime 1.32.0", "threads": 1, "images": 73, "faces": 101, "stages_median_ms": {"decode": 4.2, "detect": 5.5, "align": 0.38, "embed": 3.4, "match": 0.08}, "end_to_end_median_ms": 14.7, "images_per_s": 47.9, "model_load_ms": 66.4, "repeat": 3, "skipped": []}"#;

    #[test]
    fn parses_both_report_shapes() {
        let r = parse_report(PYTHON_JSON).expect("python report");
        assert_eq!((r.threads, r.images, r.faces), (1, 73, 101));
        assert_eq!(r.stages_median_ms.match_, 0.08);
        assert_eq!((r.model_load_ms, r.cold_start_ms), (Some(66.4), None));
        let ours = format!(
            "log line\n{}\n",
            PYTHON_JSON.replace(
                "\"model_load_ms\"",
                "\"cold_start_ms\": 120.5, \"model_load_ms\""
            )
        );
        let r = parse_report(&ours).expect("our report after a log line");
        assert_eq!(r.cold_start_ms, Some(120.5));
        assert!(parse_report("not json").is_err());
    }

    #[test]
    fn table_renders_missing_sides_as_dashes() {
        let report = parse_report(PYTHON_JSON).expect("report");
        let summary = Summary {
            data: PathBuf::from("d"),
            models: PathBuf::from("m"),
            repeat: 3,
            ours: vec![BenchReport {
                runtime: "tract".into(),
                ..report.clone()
            }],
            reference: vec![report],
            ours_external_cold_start_ms: None,
            pytorch_cold_start_ms: PYTORCH_COLD_START_MS,
        };
        let table = render_table(&summary);
        assert!(table.contains("1.00x"), "{table}");
        assert_eq!(
            table.lines().last(),
            Some("end-to-end ratio ours/onnxruntime: 1.00"),
            "{table}"
        );
        assert!(
            table.contains("19900.00") && table.contains("19.9 s PyTorch"),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.contains("2 thread(s)") && l.contains('-'))
        );
    }

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_and_the_figures_their_medians() {
        let report = parse_report(PYTHON_JSON).expect("report");
        let with = |runtime: &str, end_to_end: f64, detect: f64| BenchReport {
            runtime: runtime.into(),
            end_to_end_median_ms: end_to_end,
            stages_median_ms: StageMedians {
                detect,
                ..report.stages_median_ms
            },
            ..report.clone()
        };
        // The machine slows down in round 2 for both sides: each round's
        // ratio is taken against the reference run right after it.
        let summary = Summary {
            data: PathBuf::from("d"),
            models: PathBuf::from("m"),
            repeat: 3,
            ours: vec![
                with("tract", 40.0, 20.0),
                with("tract", 80.0, 40.0),
                with("tract", 44.0, 22.0),
                BenchReport {
                    threads: 2,
                    ..with("tract", 30.0, 15.0)
                },
            ],
            reference: vec![
                with("ort", 32.0, 14.0),
                with("ort", 50.0, 28.0),
                with("ort", 40.0, 15.0),
            ],
            ours_external_cold_start_ms: None,
            pytorch_cold_start_ms: PYTORCH_COLD_START_MS,
        };
        assert_eq!(round_ratios(&summary), vec![1.25, 1.6, 1.1]);
        let table = render_table(&summary);
        assert!(
            table.contains("end-to-end ratio by round (1 thread): 1.25, 1.60, 1.10"),
            "{table}"
        );
        assert_eq!(
            table.lines().last(),
            Some("end-to-end ratio ours/onnxruntime: 1.25"),
            "{table}"
        );
        // The detect row: ours 22 (median of 20, 40, 22), onnxruntime 15.
        assert!(
            table
                .lines()
                .any(|l| l.contains("detect") && l.contains("22.00") && l.contains("15.00")),
            "{table}"
        );
        let ours_two = median_report(summary.ours.iter().filter(|r| r.threads == 2));
        assert_eq!(ours_two.map(|r| r.end_to_end_median_ms), Some(30.0));
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
