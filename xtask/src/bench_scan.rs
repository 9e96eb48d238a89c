//! `cargo xtask bench-scan`: frames/s per core of the tracked video scan
//! beside the naive every-frame baseline, measured in the same run on the
//! shared videos (one thread, release build), plus the ratio. Writes
//! `target/bench-scan.json`, which `cargo xtask simulate-scan` reads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

#[derive(Debug, clap::Args)]
pub struct BenchScanArgs {
    /// Labelled data folder [default: $FACE_DATA_DIR, else ../shared/data
    /// beside the checkout]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the figures are written
    #[arg(long, default_value = "target/bench-scan.json")]
    pub json_out: PathBuf,
}

/// One video's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanBench {
    pub video: String,
    pub what: String,
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub tracked_per_frame_ms: f64,
    pub tracked_frames_per_s_per_core: f64,
    pub naive_per_frame_ms: f64,
    pub naive_frames_per_s_per_core: f64,
    pub speedup_per_core: f64,
    pub sighting_recall: f64,
    pub appearance_recall: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchScanReport {
    pub threads: u32,
    pub videos: Vec<ScanBench>,
}

fn num(v: &serde_json::Value, path: &[&str]) -> Result<f64> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64().with_context(|| {
        format!(
            "facectl scan-video --json has no number at {}",
            path.join(".")
        )
    })
}

/// The people with two or more photos, enrolled from all their photos:
/// throughput does not depend on which photos, only on how many people.
fn enroll(sh: &Shell, facectl: &Path, store: &Path, data: &Path) -> Result<()> {
    let labels = devset::recognition_labels(data)?;
    for (person, photos) in devset::photos_by_person(&labels)
        .into_iter()
        .filter(|(_, p)| p.len() >= 2)
    {
        let photos: Vec<PathBuf> = photos.into_iter().map(|p| data.join(p)).collect();
        cmd!(
            sh,
            "{facectl} --store {store} enroll --collection bench --person {person} {photos...}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("enrolling {person}"))?;
    }
    Ok(())
}

pub fn run(sh: &Shell, root: &Path, args: BenchScanArgs) -> Result<()> {
    let data = devset::data_dir(args.data.as_deref(), root);
    let videos = devset::bench_videos(&data)?;
    if videos.is_empty() {
        bail!("no labelled video in {} (use --data)", data.display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::as_from_a_shell(cmd!(sh, "{cargo} build --release -p facectl"))
        .run()
        .context("building facectl (release)")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let facectl = target.join("release/facectl");
    let store = target.join("bench-scan-store");
    let _ = std::fs::remove_dir_all(&store);
    enroll(sh, &facectl, &store, &data)?;

    let mut report = BenchScanReport {
        threads: 1,
        videos: Vec::new(),
    };
    for devset::BenchVideo { video, what } in videos {
        let path = data.join(&video);
        eprintln!("== scan {video}: tracked and every-frame, 1 thread");
        let out = cmd!(
            sh,
            "{facectl} --store {store} --threads 1 scan-video {path} --collection bench --compare-naive --json"
        )
        .quiet()
        .read()
        .with_context(|| format!("scanning {video}"))?;
        let v: serde_json::Value = serde_json::from_str(&out).context("scan-video output")?;
        report.videos.push(ScanBench {
            video,
            what,
            frames: num(&v, &["info", "frames"])? as u64,
            width: num(&v, &["info", "width"])? as u32,
            height: num(&v, &["info", "height"])? as u32,
            tracked_per_frame_ms: num(&v, &["tracked", "per_frame_ms"])?,
            tracked_frames_per_s_per_core: num(&v, &["tracked", "frames_per_s_per_core"])?,
            naive_per_frame_ms: num(&v, &["comparison", "naive", "per_frame_ms"])?,
            naive_frames_per_s_per_core: num(
                &v,
                &["comparison", "naive", "frames_per_s_per_core"],
            )?,
            speedup_per_core: num(&v, &["comparison", "speedup_per_core"])?,
            sighting_recall: num(&v, &["comparison", "sighting_recall"])?,
            appearance_recall: num(&v, &["comparison", "appearance_recall"])?,
        });
    }
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>8} {:>9} {:>11}",
        "video", "size", "tracked f/s", "naive f/s", "ratio", "sighting", "appearance"
    );
    println!(
        "{:<28} {:>10} {:>12} {:>12} {:>8} {:>9} {:>11}",
        "", "", "per core", "per core", "", "recall", "recall"
    );
    for b in &report.videos {
        println!(
            "{:<28} {:>10} {:>12.1} {:>12.1} {:>7.2}x {:>9.3} {:>11.3}",
            b.video,
            format!("{}x{}", b.width, b.height),
            b.tracked_frames_per_s_per_core,
            b.naive_frames_per_s_per_core,
            b.speedup_per_core,
            b.sighting_recall,
            b.appearance_recall
        );
    }
    let out = root.join(&args.json_out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
