//! `facectl eval`: detection and recognition quality on a labelled folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use facectl::eval;
use facectl::{out, outln};

use crate::{GlobalArgs, load};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The labelled folder: its detection and recognition label CSVs and the
    /// photos they name (the layout is in the `devset` crate)
    #[arg(long)]
    data: PathBuf,
    /// Print the report as JSON (its keys are in the README) instead of text
    #[arg(long)]
    json: bool,
}

pub fn run(g: &GlobalArgs, args: EvalArgs) -> Result<ExitCode> {
    let EvalArgs { data, json } = args;
    let pipeline = load(g)?;
    let report = eval::evaluate(&pipeline, &data, g.threads)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", eval::render(&report))?;
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
