//! `cargo xtask bench-scan`: frames/s per core of the tracked video scan
//! beside two every-frame baselines measured in the same run on the shared
//! videos: our own (`--compare-naive`, one thread, release build) and the
//! Python onnxruntime reference (`bench/reference_onnxruntime.py --video`:
//! OpenCV's FFmpeg decode, onnxruntime on one thread, every face of every
//! frame detected, embedded and named against the same people), with the
//! people each one named. Writes `target/bench-scan.json`, which `cargo
//! xtask simulate-scan` reads.

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
    /// Do not run the Python onnxruntime every-frame reference
    #[arg(long)]
    pub skip_reference: bool,
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
    /// The people the tracked scan named.
    #[serde(default)]
    pub people_named: Vec<String>,
    /// The tracked scan's time per frame of the video, by stage (ms).
    #[serde(default)]
    pub tracked_stages_per_frame_ms: Stages,
    /// The onnxruntime every-frame reference (None with --skip-reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<ReferenceScan>,
}

/// What `reference_onnxruntime.py --video --json` prints that we keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceScan {
    pub runtime: String,
    pub frames: u64,
    pub per_frame_cpu_ms: f64,
    pub frames_per_s_per_core: f64,
    /// Person → frames they were named in.
    pub frames_named: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub stages_per_frame_ms: Stages,
}

/// Time per frame of the video by stage, ms: where each scan spends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stages {
    pub decode: f64,
    pub detect: f64,
    /// Align and embed (ours counts them together as recognize).
    pub embed: f64,
}

impl ScanBench {
    /// Tracked frames/s per core over the onnxruntime reference's.
    pub fn speedup_vs_onnxruntime(&self) -> Option<f64> {
        self.onnxruntime
            .as_ref()
            .filter(|r| r.frames_per_s_per_core > 0.0)
            .map(|r| self.tracked_frames_per_s_per_core / r.frames_per_s_per_core)
    }
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

/// The people with two or more photos, with all their photos (absolute):
/// throughput does not depend on which photos, only on how many people.
fn gallery(data: &Path) -> Result<std::collections::BTreeMap<String, Vec<PathBuf>>> {
    let labels = devset::recognition_labels(data)?;
    let data = std::path::absolute(data).context("resolving the data folder")?;
    Ok(devset::photos_by_person(&labels)
        .into_iter()
        .filter(|(_, p)| p.len() >= 2)
        .map(|(person, photos)| {
            let photos = photos.into_iter().map(|p| data.join(p)).collect();
            (person.to_string(), photos)
        })
        .collect())
}

/// Enrolls the gallery into a `bench` collection of `store`.
fn enroll(
    sh: &Shell,
    facectl: &Path,
    store: &Path,
    gallery: &std::collections::BTreeMap<String, Vec<PathBuf>>,
) -> Result<()> {
    for (person, photos) in gallery {
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
    crate::build::warn_if_no_nasm();
    crate::as_from_a_shell(cmd!(sh, "{cargo} build --release -p facectl"))
        .run()
        .context("building facectl (release)")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let facectl = target.join("release/facectl");
    let store = target.join("bench-scan-store");
    let _ = std::fs::remove_dir_all(&store);
    let gallery = gallery(&data)?;
    enroll(sh, &facectl, &store, &gallery)?;
    let gallery_file = target.join("bench-scan-gallery.json");
    std::fs::write(&gallery_file, serde_json::to_string_pretty(&gallery)?)
        .with_context(|| format!("writing {}", gallery_file.display()))?;
    let reference = if args.skip_reference {
        None
    } else {
        let models = crate::bench::default_models(root)?;
        let python = crate::bench::ensure_venv(sh, root)?;
        let script = root.join(crate::bench::REFERENCE_SCRIPT);
        Some((python, script, models))
    };

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
        let onnxruntime = match &reference {
            None => None,
            Some((python, script, models)) => {
                eprintln!("== scan {video}: onnxruntime every-frame reference, 1 thread");
                let out = cmd!(
                    sh,
                    "{python} {script} --models {models} --video {path} --gallery {gallery_file} --json"
                )
                .quiet()
                .read()
                .with_context(|| format!("the onnxruntime reference scanning {video}"))?;
                let raw: serde_json::Value = serde_json::from_str(out.trim())
                    .context("the onnxruntime reference's --video output")?;
                let mut scan: ReferenceScan = serde_json::from_value(raw.clone())
                    .context("the onnxruntime reference's --video output")?;
                let stage = |name| raw["stages_per_frame_ms"][name].as_f64().unwrap_or(0.0);
                scan.stages_per_frame_ms = Stages {
                    decode: stage("decode"),
                    detect: stage("detect"),
                    embed: stage("align") + stage("embed"),
                };
                Some(scan)
            }
        };
        let mut people_named: Vec<String> = v["timeline"]
            .as_array()
            .context("scan-video output has no timeline")?
            .iter()
            .filter_map(|a| a["person"].as_str().map(str::to_string))
            .collect();
        people_named.sort();
        people_named.dedup();
        report.videos.push(ScanBench {
            video,
            what,
            frames: num(&v, &["info", "frames"])? as u64,
            width: num(&v, &["info", "width"])? as u32,
            height: num(&v, &["info", "height"])? as u32,
            tracked_per_frame_ms: num(&v, &["tracked", "per_frame_ms"])?,
            tracked_stages_per_frame_ms: {
                let frames = num(&v, &["tracked", "stats", "frames"])?.max(1.0);
                let stage =
                    |name| Ok::<_, anyhow::Error>(num(&v, &["tracked", "stats", name])? / frames);
                Stages {
                    decode: stage("decode_ms")?,
                    detect: stage("detect_ms")?,
                    embed: stage("recognize_ms")?,
                }
            },
            tracked_frames_per_s_per_core: num(&v, &["tracked", "frames_per_s_per_core"])?,
            naive_per_frame_ms: num(&v, &["comparison", "naive", "per_frame_ms"])?,
            naive_frames_per_s_per_core: num(
                &v,
                &["comparison", "naive", "frames_per_s_per_core"],
            )?,
            speedup_per_core: num(&v, &["comparison", "speedup_per_core"])?,
            sighting_recall: num(&v, &["comparison", "sighting_recall"])?,
            appearance_recall: num(&v, &["comparison", "appearance_recall"])?,
            people_named,
            onnxruntime,
        });
    }
    print!("{}", render(&report));
    let out = root.join(&args.json_out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn render(report: &BenchScanReport) -> String {
    let mut out = String::new();
    let row = |out: &mut String, cells: [&str; 8]| {
        let [a, b, c, d, e, f, g, h] = cells;
        out.push_str(&format!(
            "{a:<28} {b:>10} {c:>12} {d:>12} {e:>12} {f:>9} {g:>9} {h:>11}\n"
        ));
    };
    row(
        &mut out,
        [
            "video",
            "size",
            "tracked f/s",
            "naive f/s",
            "onnxruntime",
            "tracked/",
            "sighting",
            "appearance",
        ],
    );
    row(
        &mut out,
        [
            "",
            "",
            "per core",
            "per core",
            "f/s per core",
            "onnxrt",
            "recall",
            "recall",
        ],
    );
    for b in &report.videos {
        let reference = b.onnxruntime.as_ref().map_or("-".to_string(), |r| {
            format!("{:.1}", r.frames_per_s_per_core)
        });
        let ratio = b
            .speedup_vs_onnxruntime()
            .map_or("-".to_string(), |x| format!("{x:.2}x"));
        row(
            &mut out,
            [
                &b.video,
                &format!("{}x{}", b.width, b.height),
                &format!("{:.1}", b.tracked_frames_per_s_per_core),
                &format!("{:.1}", b.naive_frames_per_s_per_core),
                &reference,
                &ratio,
                &format!("{:.3}", b.sighting_recall),
                &format!("{:.3}", b.appearance_recall),
            ],
        );
    }
    for b in &report.videos {
        let split = |s: &Stages| {
            format!(
                "decode {:.1}, detect {:.1}, align+embed {:.1}",
                s.decode, s.detect, s.embed
            )
        };
        out.push_str(&format!(
            "{}: ms per frame, tracked: {}",
            b.video,
            split(&b.tracked_stages_per_frame_ms)
        ));
        if let Some(r) = &b.onnxruntime {
            out.push_str(&format!(
                "; onnxruntime every-frame: {}",
                split(&r.stages_per_frame_ms)
            ));
        }
        out.push('\n');
    }
    for b in &report.videos {
        out.push_str(&format!(
            "{}: tracked scan named [{}]",
            b.video,
            b.people_named.join(", ")
        ));
        if let Some(r) = &b.onnxruntime {
            let theirs: Vec<&str> = r.frames_named.keys().map(String::as_str).collect();
            let same = theirs
                == b.people_named
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>();
            out.push_str(&format!(
                "; onnxruntime every-frame named [{}] ({})",
                theirs.join(", "),
                if same {
                    "the same people"
                } else {
                    "DIFFERENT people"
                }
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(people: &[&str], reference: Option<(&[&str], f64)>) -> ScanBench {
        ScanBench {
            video: "video/street.mp4".into(),
            what: "footage".into(),
            frames: 105,
            width: 1920,
            height: 1080,
            tracked_per_frame_ms: 10.0,
            tracked_frames_per_s_per_core: 100.0,
            naive_per_frame_ms: 40.0,
            naive_frames_per_s_per_core: 25.0,
            speedup_per_core: 4.0,
            sighting_recall: 0.9,
            appearance_recall: 1.0,
            people_named: people.iter().map(|p| p.to_string()).collect(),
            tracked_stages_per_frame_ms: Stages {
                decode: 6.0,
                detect: 3.5,
                embed: 0.5,
            },
            onnxruntime: reference.map(|(named, fps)| ReferenceScan {
                runtime: "onnxruntime 1.32.0".into(),
                frames: 105,
                per_frame_cpu_ms: 1000.0 / fps,
                frames_per_s_per_core: fps,
                frames_named: named.iter().map(|p| (p.to_string(), 3)).collect(),
                stages_per_frame_ms: Stages {
                    decode: 14.0,
                    detect: 15.25,
                    embed: 55.0,
                },
            }),
        }
    }

    #[test]
    fn the_table_puts_the_reference_beside_ours_and_compares_the_people_named() {
        let report = BenchScanReport {
            threads: 1,
            videos: vec![
                bench(&["ann", "bob"], Some((&["ann", "bob"], 8.0))),
                bench(&["ann"], Some((&["ann", "bob"], 8.0))),
                bench(&["ann"], None),
            ],
        };
        let table = render(&report);
        // 100 f/s against 8: 12.5x.
        assert!(table.contains("8.0") && table.contains("12.50x"), "{table}");
        assert!(
            table.contains(
                "named [ann, bob]; onnxruntime every-frame named [ann, bob] (the same people)"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "named [ann]; onnxruntime every-frame named [ann, bob] (DIFFERENT people)"
            ),
            "{table}"
        );
        assert!(
            table.lines().any(|l| l.contains(" - ")),
            "no dash for the skipped reference: {table}"
        );
    }

    #[test]
    fn a_report_written_before_the_reference_still_reads() {
        let mut old = serde_json::to_value(bench(&[], None)).unwrap();
        old.as_object_mut().unwrap().remove("people_named");
        let read: ScanBench = serde_json::from_value(old).unwrap();
        assert!(read.onnxruntime.is_none() && read.speedup_vs_onnxruntime().is_none());
    }
}
