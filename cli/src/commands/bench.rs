//! `facectl bench`: timings per stage, throughput and cold start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use facectl::outln;
use facectl::{bench, models};

use crate::{GlobalArgs, pipeline_config};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The labelled folder whose photos are timed
    #[arg(long)]
    data: PathBuf,
    /// Timed passes over every photo, after one warm-up pass
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print the report as JSON on one line (without: the same JSON, indented)
    #[arg(long)]
    json: bool,
}

pub fn run(g: &GlobalArgs, process_start: Instant, args: BenchArgs) -> Result<ExitCode> {
    let BenchArgs { data, repeat, json } = args;
    let options = bench::BenchOptions {
        data,
        models: models::models_dir(g.models.as_deref(), &g.detector)?,
        detector: g.detector.clone(),
        repeat,
        threads: g.threads,
        config: pipeline_config(g),
    };
    let report = bench::run(process_start, &options)?;
    if json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
