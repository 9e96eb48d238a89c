//! `facectl results`: a deployed stack's results queue, read by N threads
//! (`facectl::results`), with each result's latency since its upload.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use facectl::outln;
use facectl::remote;

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// The deployment whose results FIFO queue to read (`local`, `dev`, `prod` or a YAML file)
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// The region whose queue to read [default: the deployment's first]
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Where deploy wrote `<region>.json` [default: $FACE_DEPLOY_DIR/<stack name>, else target/deploy/<stack name>]
    #[arg(long, value_name = "DIR")]
    outputs_dir: Option<PathBuf>,
    /// Keep reading as results arrive (without: stop after one quiet poll)
    #[arg(long)]
    follow: bool,
    /// Consumers reading in parallel (results are grouped per upload)
    #[arg(long, default_value_t = 1, value_parser = crate::threads())]
    threads: usize,
    /// Stop after this many results
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// With --follow: stop after this many seconds without a result [default: never]
    #[arg(long, value_name = "S", value_parser = super::duration_s)]
    idle_timeout_s: Option<std::time::Duration>,
    /// One JSON object per result, then the summary as JSON
    #[arg(long)]
    json: bool,
}

pub fn follow_results(args: &ResultsArgs) -> Result<ExitCode> {
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
            args.idle_timeout_s
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
        outln!("{}", serde_json::to_string(&summary)?)?;
    } else {
        outln!("{}", facectl::results::render_summary(&summary))?;
    }
    Ok(ExitCode::SUCCESS)
}
