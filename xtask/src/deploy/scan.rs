//! The video scan through the local stack (part of `cargo xtask demo`):
//! the people named on the labelled slideshow are enrolled through the
//! deployed `enroll` function from their other photos
//! ([`devset::slideshow_enrollment`]), then `facectl scan-video --stack local` runs the scan
//! on the deployed `scan-worker`, both real bootstraps under the Runtime
//! Interface Emulator, with moto as S3. The same command against a real
//! stack only drops `--lambda-endpoint`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use face_stacks::{Deployment, FunctionName, outputs as keys};
use serde_json::json;

use super::Target;
use super::dispatch::LocalFunction;
use super::smoke::{local_client_env, read_record, upload_enrollment};

const COLLECTION: &str = "slides";

/// Enrolls the slideshow's people and scans it in one region of the local
/// stack; the HTML report goes to `target/demo/slideshow-local-stack.html`.
/// A data set without slideshow labels skips the scan (said, not failed).
pub async fn run_local(
    root: &Path,
    endpoint_url: &str,
    deployment: &Deployment,
    region: &str,
    data: &Path,
    facectl: &Path,
) -> Result<()> {
    if !data.join(devset::SLIDESHOW_LABELS).is_file() {
        println!(
            "[{region}] {} has no {}: no labelled video to scan",
            data.display(),
            devset::SLIDESHOW_LABELS
        );
        return Ok(());
    }
    let target = Target::Local {
        endpoint_url: endpoint_url.to_string(),
    };
    let state = super::state_dir(root, deployment);
    let record = read_record(&state, region)?;
    let config = target.sdk_config(region).await;
    let s3 = target.s3(&config);
    let bucket = record.output(keys::DATA_BUCKET_NAME)?;
    let env = local_client_env(endpoint_url, region);
    let start = |function: FunctionName| {
        let name = record
            .output(&keys::function_name(function))
            .map(str::to_string);
        let (config, env) = (&config, &env);
        async move {
            let name = name?;
            LocalFunction::start(root, config, env, function.as_str(), &name).await
        }
    };
    let enroll = start(FunctionName::Enroll).await?;
    let worker = start(FunctionName::ScanWorker).await?;

    let slides = devset::slideshow_labels(data)?;
    let video = slides
        .first()
        .map(|s| data.join(&s.video))
        .with_context(|| format!("{} lists no slide", devset::SLIDESHOW_LABELS))?;
    let people = devset::slideshow_enrollment(&slides, &devset::recognition_labels(data)?);
    if people.is_empty() {
        bail!("no one on the labelled slideshow has a photo of their own that is not a slide");
    }
    for devset::Enrollment { person, photos } in &people {
        let images = upload_enrollment(&s3, bucket, data, COLLECTION, person, photos).await?;
        let reply = enroll
            .invoke(json!({"action": "enroll", "collection": COLLECTION, "person": person, "images": images}))
            .await?;
        if reply["indexed"].as_array().map_or(0, Vec::len) == 0 {
            bail!("enrolling {person} indexed no face: {reply}");
        }
    }
    println!(
        "[{region}] enrolled {} people in {COLLECTION} through {}: {}",
        people.len(),
        enroll.name,
        people
            .iter()
            .map(|e| format!("{} ({} photos)", e.person, e.photos.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let report = root.join("target/demo/slideshow-local-stack.html");
    std::fs::create_dir_all(root.join("target/demo"))?;
    let status = std::process::Command::new(facectl)
        .arg("scan-video")
        .arg(&video)
        .args(["--collection", COLLECTION, "--stack", "local"])
        .arg("--outputs-dir")
        .arg(&state)
        .args(["--region", region])
        .arg("--lambda-endpoint")
        // The emulator answers to the function name in its own URL.
        .arg(format!("{region}={}", worker.rie.invocations_url()))
        // One emulator is one execution environment: one invoke at a time.
        .args(["--max-in-flight", "1"])
        .args(["--lambda-frames-per-chunk", "50", "--report"])
        .arg(&report)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .with_context(|| format!("running {}", facectl.display()))?;
    if !status.success() {
        bail!("facectl scan-video --stack local failed ({status})");
    }
    println!("[{region}] scan report: {}", report.display());
    Ok(())
}
