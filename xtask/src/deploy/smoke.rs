//! `cargo xtask smoke-test`: proves a deployed stack works end to end.
//! Picks a person of the labelled data who is also on a group photo
//! ([`devset::person_in_group`]), enrolls them through `enroll` from all
//! but one of their photos, uploads that last photo and the group photo
//! under the upload prefix, and waits for both results, naming them, in the
//! results table and on the results FIFO queue, then reports latencies.
//!
//! Against AWS, S3 → SQS → Lambda delivers the uploads. With `--stack
//! local` moto runs no code, so [`dispatch`] plays Lambda's part.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use face_sdk_config::SdkConfig;
use face_stacks::app::outputs as keys;
use face_stacks::{DeployRecord, Deployment, FunctionName};
use serde_json::{Value, json};

use super::dispatch::{self, LocalFunction};
use super::{StackArg, Target, step};

/// The collection the smoke test enrolls into and uploads under.
const COLLECTION: &str = "smoke";

/// `cargo xtask smoke-test` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Only these regions (default: every region of the deployment)
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Give up waiting for a result after this many seconds
    #[arg(long, default_value_t = 180)]
    pub timeout_s: u64,
    /// Labelled data folder [default: $FACE_DATA_DIR, else ../shared/data
    /// beside the checkout]
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// The record deploy wrote for one region.
pub(super) fn read_record(state_dir: &Path, region: &str) -> Result<DeployRecord> {
    let path = state_dir.join(DeployRecord::file_name(region));
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{} is missing: deploy the stack first (`cargo xtask deploy`)",
            path.display()
        )
    })?;
    DeployRecord::from_json(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// How the smoke test invokes `enroll`.
enum Enroll {
    Aws {
        lambda: aws_sdk_lambda::Client,
        name: String,
    },
    Local(LocalFunction),
}

impl Enroll {
    async fn invoke(&self, event: Value) -> Result<Value> {
        match self {
            Enroll::Local(f) => f.invoke(event).await,
            Enroll::Aws { lambda, name } => {
                let out = lambda
                    .invoke()
                    .function_name(name)
                    .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
                        &event,
                    )?))
                    .send()
                    .await
                    .with_context(|| format!("lambda:Invoke {name}"))?;
                let payload = out.payload().map(|p| p.as_ref()).unwrap_or(b"null");
                if let Some(error) = out.function_error() {
                    bail!(
                        "{name} failed ({error}): {}",
                        String::from_utf8_lossy(payload)
                    );
                }
                Ok(serde_json::from_slice(payload)?)
            }
        }
    }
}

/// The local dispatcher's running queue mappings.
pub(super) struct LocalMappings {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Result<dispatch::MappingStats>>>,
    /// The functions behind the queues, for fault injection (load-test).
    pub(super) functions: Vec<(FunctionName, Arc<LocalFunction>)>,
}

impl LocalMappings {
    pub(super) async fn start(
        root: &Path,
        config: &SdkConfig,
        client_env: &[(String, String)],
        record: &DeployRecord,
    ) -> Result<Self> {
        // `recognize` behind the uploads queue, `scan-worker` behind the
        // scan queue (video jobs), each under its own RIE.
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut functions = Vec::new();
        for function in [FunctionName::Recognize, FunctionName::ScanWorker] {
            let name = record.output(&keys::function_name(function))?;
            let mappings = dispatch::queue_mappings(config, name).await?;
            if mappings.is_empty() {
                bail!("{name} has no SQS event source mapping");
            }
            let local = Arc::new(
                LocalFunction::start(root, config, client_env, function.as_str(), name).await?,
            );
            for m in mappings {
                println!(
                    "local dispatcher: {} → {name} (batch {})",
                    m.queue_arn, m.batch_size
                );
                tasks.push(tokio::spawn(dispatch::serve_queue(
                    config.clone(),
                    Arc::clone(&local),
                    m,
                    Arc::clone(&stop),
                )));
            }
            functions.push((function, local));
        }
        Ok(Self {
            stop,
            tasks,
            functions,
        })
    }

    /// Stops polling once the batches in flight are done; the totals.
    pub(super) async fn stop(self) -> Result<dispatch::MappingStats> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = dispatch::MappingStats::default();
        for task in self.tasks {
            let stats = task.await??;
            println!(
                "local dispatcher: {} batch(es), {} message(s) delivered, {} failed",
                stats.batches, stats.delivered, stats.failed
            );
            total.batches += stats.batches;
            total.delivered += stats.delivered;
            total.failed += stats.failed;
        }
        Ok(total)
    }
}

/// One upload the smoke test waits for.
struct Upload {
    key: String,
    /// `result_id`s it may have: by version id, else by ETag.
    result_ids: Vec<String>,
    at: Instant,
    in_table: Option<(Duration, Value)>,
    on_queue: Option<Duration>,
}

/// The people a result names.
fn people(result: &Value) -> Vec<String> {
    result["faces"]
        .as_array()
        .map(|faces| {
            faces
                .iter()
                .filter_map(|f| f["Match"]["Person"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Smoke-tests one region of a deployed stack.
pub async fn run_region(
    root: &Path,
    target: &Target,
    deployment: &Deployment,
    region: &str,
    timeout: Duration,
    data: &Path,
) -> Result<()> {
    let record = read_record(&super::state_dir(root, deployment), region)?;
    let config = target.sdk_config(region).await;
    let s3 = target.s3(&config);
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bucket = record.output(keys::DATA_BUCKET_NAME)?;
    let results_table = record.output(keys::RESULTS_TABLE_NAME)?;
    let results_queue = record.output(keys::RESULTS_QUEUE_URL)?;
    let upload_prefix = record
        .outputs
        .get(keys::UPLOAD_PREFIX)
        .map_or("uploads/", String::as_str);
    let enroll_name = record.output(&keys::function_name(FunctionName::Enroll))?;

    let (enroll, local) = match target {
        Target::Aws => (
            Enroll::Aws {
                lambda: aws_sdk_lambda::Client::new(&config),
                name: enroll_name.to_string(),
            },
            None,
        ),
        Target::Local { endpoint_url } => {
            let env = local_client_env(endpoint_url, region);
            step(region, "starting enroll and recognize under the RIE");
            let enroll = LocalFunction::start(
                root,
                &config,
                &env,
                FunctionName::Enroll.as_str(),
                enroll_name,
            )
            .await?;
            let mappings = LocalMappings::start(root, &config, &env, &record).await?;
            (Enroll::Local(enroll), Some(mappings))
        }
    };
    let outcome = smoke(
        &s3,
        &dynamo,
        &sqs,
        &enroll,
        bucket,
        results_table,
        results_queue,
        upload_prefix,
        region,
        timeout,
        data,
    )
    .await;
    if let Some(local) = local {
        local.stop().await?;
    }
    outcome
}

/// What a process needs to reach the local AWS as if it were AWS.
pub(super) fn local_client_env(endpoint_url: &str, region: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint_url),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Uploads `photos` (relative to `data`) under `enroll/<collection>/<person>/`
/// for an `enroll` invoke; returns their keys.
pub(super) async fn upload_enrollment(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    data: &Path,
    collection: &str,
    person: &str,
    photos: &[String],
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for photo in photos {
        let path = data.join(photo);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let name = photo.rsplit('/').next().unwrap_or(photo.as_str());
        let key = format!("enroll/{collection}/{person}/{name}");
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(bytes.into())
            .send()
            .await
            .with_context(|| format!("s3:PutObject {key}"))?;
        keys.push(key);
    }
    Ok(keys)
}

#[allow(clippy::too_many_arguments)]
async fn smoke(
    s3: &aws_sdk_s3::Client,
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    enroll: &Enroll,
    bucket: &str,
    results_table: &str,
    results_queue: &str,
    upload_prefix: &str,
    region: &str,
    timeout: Duration,
    data: &Path,
) -> Result<()> {
    let subject = devset::person_in_group(
        &devset::recognition_labels(data)?,
        &devset::detection_labels(data)?,
    )
    .with_context(|| {
        format!(
            "no one in {} is both on a labelled group photo and on two or more photos of their own",
            data.display()
        )
    })?;
    let person = subject.person.as_str();
    let (enroll_photos, held_out) = subject.photos.split_at(subject.photos.len() - 1);
    let upload_photos = [held_out[0].as_str(), subject.group_photo.as_str()];
    let read = |rel: &str| {
        let path = data.join(rel);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    // A fresh run id, so each run's uploads are new results.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());

    // 1. Enroll.
    let images = upload_enrollment(s3, bucket, data, COLLECTION, person, enroll_photos).await?;
    let started = Instant::now();
    let reply = enroll
        .invoke(
            json!({"action": "enroll", "collection": COLLECTION, "person": person,
                       "attributes": {"source": "smoke-test"}, "images": images}),
        )
        .await?;
    let enroll_latency = started.elapsed();
    let indexed = reply["indexed"].as_array().map_or(0, Vec::len);
    if indexed != enroll_photos.len() {
        bail!(
            "enroll indexed {indexed} of {} faces: {reply}",
            enroll_photos.len()
        );
    }
    step(
        region,
        format_args!(
            "enrolled {person} ({indexed} faces) in {}",
            ms(enroll_latency)
        ),
    );

    // 2. Upload.
    let mut uploads = Vec::new();
    for photo in upload_photos {
        let name = photo.rsplit('/').next().unwrap_or(photo);
        let key = format!("{upload_prefix}{COLLECTION}/{run}/{name}");
        let body = read(photo)?;
        let at = Instant::now();
        let put = s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .with_context(|| format!("s3:PutObject {key}"))?;
        let mut result_ids = Vec::new();
        if let Some(v) = put.version_id().filter(|v| !v.is_empty() && *v != "null") {
            result_ids.push(format!("s3://{bucket}/{key}#{v}"));
        }
        if let Some(e) = put.e_tag() {
            result_ids.push(format!("s3://{bucket}/{key}#{}", e.trim_matches('"')));
        }
        step(region, format_args!("uploaded s3://{bucket}/{key}"));
        uploads.push(Upload {
            key,
            result_ids,
            at,
            in_table: None,
            on_queue: None,
        });
    }

    // 3. Wait for both results in the table and on the queue.
    let deadline = Instant::now() + timeout;
    while uploads
        .iter()
        .any(|u| u.in_table.is_none() || u.on_queue.is_none())
    {
        if Instant::now() > deadline {
            let missing: Vec<String> = uploads
                .iter()
                .filter(|u| u.in_table.is_none() || u.on_queue.is_none())
                .map(|u| {
                    format!(
                        "{} (table: {}, queue: {})",
                        u.key,
                        u.in_table.is_some(),
                        u.on_queue.is_some()
                    )
                })
                .collect();
            bail!(
                "no result within {} s for {}",
                timeout.as_secs(),
                missing.join(", ")
            );
        }
        for u in uploads.iter_mut().filter(|u| u.in_table.is_none()) {
            for id in &u.result_ids {
                let item = dynamo
                    .get_item()
                    .table_name(results_table)
                    .key(
                        face_contracts::tables::results::PARTITION_KEY,
                        AttributeValue::S(id.clone()),
                    )
                    .consistent_read(true)
                    .send()
                    .await
                    .context("dynamodb:GetItem")?;
                if let Some(item) = item.item() {
                    let status = item.get("status").and_then(|v| v.as_s().ok());
                    // `result` (S, JSON) per lambdas/README.md; the service
                    // writes the whole queue message as `message` instead.
                    let json = |name: &str| -> Result<Option<Value>> {
                        item.get(name)
                            .and_then(|v| v.as_s().ok())
                            .map(|s| serde_json::from_str(s))
                            .transpose()
                            .with_context(|| format!("{name} of {}", u.key))
                    };
                    let result = match json("result")? {
                        Some(result) => result,
                        None => json("message")?.map_or(Value::Null, |m| m["result"].clone()),
                    };
                    if status.map(String::as_str) != Some("ok") {
                        bail!("{} was not recognized: {item:?}", u.key);
                    }
                    u.in_table = Some((u.at.elapsed(), result));
                    break;
                }
            }
        }
        for delivery in super::results_queue::receive(sqs, results_queue).await? {
            let (key, body) = (delivery.key(), &delivery.body);
            if let Some(u) = uploads
                .iter_mut()
                .find(|u| u.key == key && u.on_queue.is_none())
            {
                u.on_queue = Some(u.at.elapsed());
                if !people(&body["result"]).iter().any(|p| p == person) {
                    bail!("the queued result of {key} names no {person}: {body}");
                }
            }
            // Earlier smoke runs' results (same group) would block the FIFO
            // group; this collection is the smoke test's own.
            if key.starts_with(&format!("{upload_prefix}{COLLECTION}/")) {
                delivery.delete(sqs, results_queue).await?;
            }
        }
    }

    // 4. Check and report.
    for u in &uploads {
        let (table_latency, result) = u.in_table.as_ref().context("no table result")?;
        let found = people(result);
        if !found.iter().any(|p| p == person) {
            bail!("{person} was not found in {}: {result}", u.key);
        }
        step(
            region,
            format_args!(
                "{person} found in {} (people: {}); upload → table {}, upload → queue {}",
                u.key,
                found.join(", "),
                ms(*table_latency),
                ms(u.on_queue.unwrap_or_default())
            ),
        );
    }
    step(
        region,
        format_args!(
            "smoke test passed: enroll invoke {}, {} upload(s) recognized",
            ms(enroll_latency),
            uploads.len()
        ),
    );
    Ok(())
}
