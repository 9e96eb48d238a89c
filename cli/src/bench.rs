//! `facectl bench`: per-stage and end-to-end timings of the pipeline on a
//! labelled folder, plus the cold start (process start to first result).
//! Prints the JSON that `cargo xtask bench` compares with onnxruntime.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use face_core::stats::median;
use face_core::{Collection, FacePipeline, PipelineConfig, StageTimings};
use rayon::prelude::*;
use serde::Serialize;

use crate::models::load_pipeline;
use devset::{detection_labels, recognition_labels};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub data: PathBuf,
    pub models: PathBuf,
    pub detector: String,
    pub repeat: usize,
    pub threads: usize,
    pub config: PipelineConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageMedians {
    pub decode: f64,
    pub detect: f64,
    pub align: f64,
    pub embed: f64,
    #[serde(rename = "match")]
    pub match_: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub runtime: String,
    pub threads: usize,
    pub images: usize,
    pub faces: usize,
    pub stages_median_ms: StageMedians,
    pub end_to_end_median_ms: f64,
    pub images_per_s: f64,
    /// Reading and parsing both model files.
    pub model_load_ms: f64,
    /// From `process_start` to the first one-face result, plans optimized
    /// on the way.
    pub cold_start_ms: f64,
}

/// The dev images: every recognition and detection photo, in label order.
pub fn bench_images(data: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = recognition_labels(data)?
        .into_iter()
        .map(|l| data.join(l.path))
        .collect();
    paths.extend(
        detection_labels(data)?
            .into_iter()
            .map(|l| data.join(l.path)),
    );
    Ok(paths)
}

/// One image through every stage; the per-stage milliseconds.
fn process(
    pipeline: &FacePipeline,
    bytes: &[u8],
    gallery: &Collection,
) -> Result<(StageTimings, usize)> {
    let mut timings = StageTimings::default();
    let (_, faces) = pipeline.analyze(bytes, &mut timings)?;
    let count = faces.len();
    pipeline.match_faces(faces, gallery, &mut timings);
    Ok((timings, count))
}

pub fn run(process_start: Instant, options: &BenchOptions) -> Result<BenchReport> {
    let load_start = Instant::now();
    let pipeline = load_pipeline(&options.models, &options.detector, options.config.clone())?;
    let model_load_ms = load_start.elapsed().as_secs_f64() * 1000.0;

    let labels = recognition_labels(&options.data)?;
    let first = devset::cold_start_photo(&labels).context("no recognition photos")?;
    let first_path = options.data.join(&first.path);
    let first =
        std::fs::read(&first_path).with_context(|| format!("reading {}", first_path.display()))?;
    let (_, first_faces) = process(
        &pipeline,
        &first,
        &Collection::new(pipeline.face_model_version()),
    )?;
    let cold_start_ms = process_start.elapsed().as_secs_f64() * 1000.0;
    if first_faces != 1 {
        bail!(
            "cold-start image {} has {first_faces} faces, expected 1",
            first_path.display()
        );
    }

    let images: Vec<(PathBuf, Vec<u8>)> = bench_images(&options.data)?
        .into_iter()
        .map(|p| {
            std::fs::read(&p)
                .map(|b| (p.clone(), b))
                .with_context(|| format!("reading {}", p.display()))
        })
        .collect::<Result<_>>()?;

    // Gallery for the match stage: every face of the first 20 images.
    let mut gallery = Collection::new(pipeline.face_model_version());
    for (i, (_, bytes)) in images.iter().take(20).enumerate() {
        let mut t = StageTimings::default();
        let (_, faces) = pipeline.analyze(bytes, &mut t)?;
        let enrolled = faces.into_iter().enumerate().map(|(j, f)| {
            FacePipeline::enrolled_face("bench", &format!("{i}-{j}"), f.embedding, 1)
        });
        gallery.add_faces(&format!("person{i}"), enrolled)?;
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.max(1))
        .build()
        .context("starting the worker pool")?;
    // Warm-up pass: every input shape gets its optimized plan.
    let warm: Vec<Result<(StageTimings, usize)>> = pool.install(|| {
        images
            .par_iter()
            .map(|(_, b)| process(&pipeline, b, &gallery))
            .collect()
    });
    let mut faces = 0;
    for (result, (path, _)) in warm.into_iter().zip(&images) {
        faces += result.with_context(|| path.display().to_string())?.1;
    }

    let timed_start = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..options.repeat.max(1) {
        let pass: Vec<Result<StageTimings>> = pool.install(|| {
            images
                .par_iter()
                .map(|(_, b)| process(&pipeline, b, &gallery).map(|(t, _)| t))
                .collect()
        });
        samples.extend(pass.into_iter().collect::<Result<Vec<_>>>()?);
    }
    let wall_s = timed_start.elapsed().as_secs_f64();
    // NaN (JSON null) when there were no images, as before.
    let pick = |f: &dyn Fn(&StageTimings) -> f64| {
        median(&samples.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let stages = StageMedians {
        decode: pick(&|t| t.decode_ms),
        detect: pick(&|t| t.detect_ms),
        align: pick(&|t| t.align_ms),
        embed: pick(&|t| t.embed_ms),
        match_: pick(&|t| t.match_ms),
    };
    let end_to_end = pick(&|t| t.decode_ms + t.detect_ms + t.align_ms + t.embed_ms + t.match_ms);
    Ok(BenchReport {
        runtime: "tract 0.23.9".into(),
        threads: options.threads.max(1),
        images: images.len(),
        faces,
        stages_median_ms: stages,
        end_to_end_median_ms: end_to_end,
        images_per_s: samples.len() as f64 / wall_s,
        model_load_ms,
        cold_start_ms,
    })
}
