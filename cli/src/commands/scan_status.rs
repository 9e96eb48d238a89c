//! `facectl scan-status`: a deployed stack's video scan job, through
//! `GET /v1/scans/{job_id}`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use facectl::{out, outln};

use crate::RemoteArgs;

#[derive(Debug, Args)]
pub struct ScanStatusArgs {
    /// The job id (from `POST /v1/scans`, or a video upload's result)
    job_id: String,
    /// Print the job as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(args: ScanStatusArgs) -> Result<ExitCode> {
    let ScanStatusArgs {
        job_id,
        json,
        remote,
    } = args;
    let client = remote
        .client()?
        .context("scan-status needs --stack or --endpoint (jobs run on a deployed stack)")?;
    let job = client.scan_status(&job_id)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&job)?)?;
    } else {
        out!("{}", render_job(&job))?;
    }
    Ok(ExitCode::SUCCESS)
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
