//! The video scan through the local stack (part of `cargo xtask demo`):
//! the people of the labelled slideshow are enrolled through the deployed
//! `enroll` function, then `facectl scan-video --stack local` runs the scan
//! on the deployed `scan-worker`, both real bootstraps under the Runtime
//! Interface Emulator, with moto as S3. The same command against a real
//! stack only drops `--lambda-endpoint`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use face_stacks::{Deployment, FunctionName, outputs as keys};
use serde_json::json;

use super::Target;
use super::dispatch::LocalFunction;
use super::smoke::{data_dir, local_client_env, output, read_outputs};

const COLLECTION: &str = "slides";
const VIDEO: &str = "video/slideshow_shared.mp4";
/// Each person from a photo that is not on the slides.
const PEOPLE: &[(&str, &str)] = &[
    (
        "jennifer_aniston",
        "recognition/jennifer_aniston/deepface_img12.jpg",
    ),
    ("matt_damon", "recognition/matt_damon/deepface_img30.jpg"),
    (
        "kit_harington",
        "recognition/kit_harington/face_recognition_john2.jpeg",
    ),
    (
        "guido_van_rossum",
        "recognition/guido_van_rossum/fr-pr1285_guido_van_rossum2.jpg",
    ),
    (
        "george_clooney",
        "recognition/george_clooney/deepface_img39.jpg",
    ),
    ("elon_musk", "recognition/elon_musk/deepface_img19.jpg"),
];

/// Enrolls [`PEOPLE`] and scans the slideshow in one region of the local
/// stack; the HTML report goes to `target/demo/slideshow-local-stack.html`.
pub async fn run_local(
    root: &Path,
    endpoint_url: &str,
    deployment: &Deployment,
    region: &str,
) -> Result<()> {
    let target = Target::Local {
        endpoint_url: endpoint_url.to_string(),
    };
    let state = super::state_dir(root, deployment);
    let outputs = read_outputs(&state, region)?;
    let config = target.sdk_config(region).await;
    let s3 = target.s3(&config);
    let bucket = output(&outputs, keys::DATA_BUCKET_NAME)?;
    let env = local_client_env(endpoint_url, region);
    let data = data_dir(root);
    let start = |function: FunctionName| {
        let name = output(&outputs, &keys::function_name(function)).map(str::to_string);
        let (config, env) = (&config, &env);
        async move { LocalFunction::start(root, config, env, function.as_str(), &name?).await }
    };
    let enroll = start(FunctionName::Enroll).await?;
    let worker = start(FunctionName::ScanWorker).await?;

    for (person, photo) in PEOPLE {
        let path = data.join(photo);
        let key = format!("enroll/{COLLECTION}/{person}.jpg");
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(
                std::fs::read(&path)
                    .with_context(|| format!("{} (set FACE_DATA_DIR)", path.display()))?
                    .into(),
            )
            .send()
            .await
            .with_context(|| format!("s3:PutObject {key}"))?;
        let reply = enroll
            .invoke(json!({"action": "enroll", "collection": COLLECTION, "person": person, "images": [key]}))
            .await?;
        if reply["indexed"].as_array().map_or(0, Vec::len) != 1 {
            bail!("enrolling {person} indexed no face: {reply}");
        }
    }
    println!(
        "[{region}] enrolled {} people in {COLLECTION} through {}",
        PEOPLE.len(),
        enroll.name
    );

    let lambda_endpoint = worker
        .rie
        .invocations_url()
        .split("/2015-03-31")
        .next()
        .unwrap_or_default()
        .to_string();
    let report = root.join("target/demo/slideshow-local-stack.html");
    std::fs::create_dir_all(root.join("target/demo"))?;
    let status = std::process::Command::new(root.join("target/release/facectl"))
        .arg("scan-video")
        .arg(data.join(VIDEO))
        .args(["--collection", COLLECTION, "--stack", "local"])
        .arg("--outputs-dir")
        .arg(&state)
        .args(["--region", region])
        .arg("--lambda-endpoint")
        .arg(format!("{region}={lambda_endpoint}"))
        // One emulator is one execution environment: one invoke at a time.
        .args(["--max-in-flight", "1"])
        .args(["--lambda-frames-per-chunk", "50", "--report"])
        .arg(&report)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .context("running target/release/facectl (cargo build --release -p facectl)")?;
    if !status.success() {
        bail!("facectl scan-video --stack local failed ({status})");
    }
    println!("[{region}] scan report: {}", report.display());
    Ok(())
}
