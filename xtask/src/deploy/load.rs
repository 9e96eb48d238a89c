//! `cargo xtask load-test`: many mixed uploads into the local stack while
//! faults happen, then an exact count of what came out.
//!
//! Uploads go through S3 (`PutObject` under the upload prefix) and through
//! the HTTPS API (`POST /v1/uploads`, then a PUT to the presigned URL):
//! photos, corrupt files, the same object put twice, overwrites of a key
//! with another photo. While they run, the recognize function's process is
//! SIGKILLed mid-invocation (its batch comes back after the queue's
//! visibility timeout, as on Lambda), and the local dispatcher (the part
//! of Lambda that polls the queues, with the gateway in front of the API)
//! is stopped and started again. A consumer reads the results FIFO queue
//! throughout. At the end every object version put must have exactly one
//! row in the results table, and the consumer must have seen each
//! `result_id` once after dropping repeats the way `facectl results` does
//! (delivery is at least once; the raw repeats are counted too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use face_stacks::app::outputs as keys;
use face_stacks::{DeployRecord, FunctionName};
use serde_json::{Value, json};

use super::serve;
use super::smoke::read_record;
use super::{StackArg, Target};

/// `cargo xtask load-test` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// How many uploads to send (each one object version)
    #[arg(long, default_value_t = 60)]
    pub uploads: usize,
    /// How many uploads are in flight at once
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Give up waiting for the results this many seconds after the last
    /// upload (a killed batch comes back after the uploads queue's
    /// visibility timeout, 6x the recognize function's timeout)
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// Send the uploads without killing a function or restarting the
    /// dispatcher
    #[arg(long)]
    pub no_faults: bool,
    /// Labelled data folder [default: $FACE_DATA_DIR, else ../shared/data
    /// beside the checkout]
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// What one upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A photo under a new key, through S3.
    Photo,
    /// A photo through the API's presigned URL.
    Api,
    /// Bytes no decoder accepts, under a new key.
    Corrupt,
    /// The very bytes of the last photo put again under its key.
    Repeat,
    /// Another photo put under the key of the last photo.
    Overwrite,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Api => "api",
            Kind::Corrupt => "corrupt",
            Kind::Repeat => "same object again",
            Kind::Overwrite => "overwrite",
        }
    }
}

/// The mix: of every 10 uploads, 4 photos, 2 through the API, 2 corrupt,
/// 1 repeat and 1 overwrite (never before a photo to repeat).
pub fn plan(uploads: usize) -> Vec<Kind> {
    const CYCLE: [Kind; 10] = [
        Kind::Photo,
        Kind::Api,
        Kind::Corrupt,
        Kind::Photo,
        Kind::Repeat,
        Kind::Photo,
        Kind::Api,
        Kind::Overwrite,
        Kind::Corrupt,
        Kind::Photo,
    ];
    (0..uploads).map(|i| CYCLE[i % CYCLE.len()]).collect()
}

/// One upload sent.
#[derive(Debug, Clone)]
struct Sent {
    kind: Kind,
    key: String,
    /// `s3://bucket/key#version`: the results table's key and the id on
    /// the queue.
    result_id: String,
    /// The API's id for `GET /v1/results/{id}` (API uploads only).
    api_result_id: Option<String>,
    at: Instant,
}

/// What the consumer of the results queue saw.
#[derive(Debug, Default)]
struct Consumed {
    /// Every delivery of every id of this run, repeats included.
    deliveries: HashMap<String, usize>,
    /// Deliveries the shipped consumer's rule keeps (first of each id).
    kept: usize,
    first_seen: HashMap<String, Instant>,
}

/// The counts the run ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub versions: usize,
    /// Versions with no row in the results table.
    pub lost_rows: usize,
    /// Versions whose result never reached the consumer.
    pub lost_messages: usize,
    /// Kept deliveries beyond one per id (must be 0: the consumer dedupes).
    pub duplicated: usize,
    /// Raw repeats on the queue before the consumer's dedupe.
    pub redelivered: usize,
}

/// Counts against the versions put: `rows` are the ids found in the table,
/// `deliveries` every queue delivery per id, `kept` those kept by the
/// consumer.
pub fn tally(
    versions: &HashSet<String>,
    rows: &HashSet<String>,
    deliveries: &HashMap<String, usize>,
    kept: usize,
) -> Tally {
    let delivered_ids = versions
        .iter()
        .filter(|id| deliveries.get(*id).is_some_and(|&n| n > 0))
        .count();
    Tally {
        versions: versions.len(),
        lost_rows: versions.iter().filter(|id| !rows.contains(*id)).count(),
        lost_messages: versions.len() - delivered_ids,
        duplicated: kept.saturating_sub(deliveries.len()),
        redelivered: deliveries.values().map(|&n| n.saturating_sub(1)).sum(),
    }
}

/// The value at quantile `q` (0..=1) of sorted `values`, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Runs the load test against the deployed local stack.
pub async fn run(root: &Path, args: &LoadArgs) -> Result<()> {
    if !args.stack.is_local() {
        bail!(
            "load-test kills functions and restarts the dispatcher of the local stack; \
             it runs with --stack local only (deploy it with `cargo xtask deploy`)"
        );
    }
    if args.uploads == 0 || args.concurrency == 0 {
        bail!("--uploads and --concurrency must be at least 1");
    }
    let deployment = face_stacks::Deployment::load("local")?;
    let region = &deployment
        .regions
        .first()
        .context("the local deployment has no region")?
        .region;
    let endpoint_url =
        super::local::running(root).context("the local AWS is not running: deploy first")?;
    let target = Target::Local { endpoint_url };
    let config = target.sdk_config(region).await;
    let s3 = target.s3(&config);
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let record: DeployRecord = read_record(&super::state_dir(root, &deployment), region)?;
    let bucket = record.output(keys::DATA_BUCKET_NAME)?.to_string();
    let results_table = record.output(keys::RESULTS_TABLE_NAME)?.to_string();
    let results_queue = record.output(keys::RESULTS_QUEUE_URL)?.to_string();
    let upload_prefix = record
        .outputs
        .get(keys::UPLOAD_PREFIX)
        .map_or("uploads/", String::as_str)
        .to_string();

    let data = devset::data_dir(args.data.as_deref(), root);
    let photos: Vec<Arc<Vec<u8>>> = devset::recognition_labels(&data)?
        .iter()
        .take(16)
        .map(|l| {
            let path = data.join(&l.path);
            std::fs::read(&path)
                .map(Arc::new)
                .with_context(|| format!("reading {}", path.display()))
        })
        .collect::<Result<_>>()?;
    if photos.is_empty() {
        bail!("no labelled photos in {}", data.display());
    }
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // Its own collection: its own FIFO group, and keys no other run has.
    let collection = format!("load-{run_id}");
    let api_key = super::api_key::create_local_key(root, &collection).await?;
    // One port for both gateways: the restarted one answers the same URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut gateway = Some(serve::start(root, port).await?);
    let api_url = face_stacks::local_api_url(port);

    println!(
        "load-test: {} uploads, {} at a time, collection {collection}, API {api_url}",
        args.uploads, args.concurrency
    );

    // The consumer: reads and deletes this run's results as they come.
    let consumed = Arc::new(Mutex::new(Consumed::default()));
    let consuming = Arc::new(AtomicBool::new(true));
    let consumer = tokio::spawn(consume(
        sqs.clone(),
        results_queue.clone(),
        format!("{upload_prefix}{collection}/"),
        Arc::clone(&consumed),
        Arc::clone(&consuming),
    ));

    // The senders.
    let kinds = plan(args.uploads);
    let next = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let upload = Arc::new(Uploader {
        s3: s3.clone(),
        bucket: bucket.clone(),
        prefix: format!("{upload_prefix}{collection}/"),
        collection: collection.clone(),
        api_url: api_url.clone(),
        api_key,
        photos,
        last_photo_key: Mutex::new(None),
    });
    let senders: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (kinds, next, sent, upload) = (
                kinds.clone(),
                Arc::clone(&next),
                Arc::clone(&sent),
                Arc::clone(&upload),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&kind) = kinds.get(i) else {
                        return anyhow::Ok(());
                    };
                    let one = upload.send(i, kind).await?;
                    sent.lock().unwrap_or_else(|e| e.into_inner()).push(one);
                }
            })
        })
        .collect();

    // The faults, at a third and at two thirds of the uploads.
    let mut faults = Vec::new();
    if !args.no_faults {
        wait_until(|| next.load(Ordering::Relaxed) >= args.uploads / 3).await;
        let recognize = gateway
            .as_ref()
            .and_then(|g| g.queue_function(FunctionName::Recognize))
            .context("the gateway runs no recognize function")?;
        let killed = tokio::task::spawn_blocking(move || {
            recognize
                .rie
                .kill_function_mid_invocation(Duration::from_secs(120))
        })
        .await??;
        faults.push(format!(
            "killed recognize (pid {killed:?}) mid-invocation after {} uploads",
            next.load(Ordering::Relaxed).min(args.uploads)
        ));
        println!("load-test: {}", faults[faults.len() - 1]);

        wait_until(|| next.load(Ordering::Relaxed) >= 2 * args.uploads / 3).await;
        if let Some(g) = gateway.take() {
            g.stop().await.context("stopping the dispatcher")?;
        }
        gateway = Some(
            serve::start(root, port)
                .await
                .context("restarting the dispatcher")?,
        );
        faults.push(format!(
            "restarted the dispatcher and the gateway after {} uploads",
            next.load(Ordering::Relaxed).min(args.uploads)
        ));
        println!("load-test: {}", faults[faults.len() - 1]);
    }
    for s in senders {
        s.await??;
    }
    let sent_all = started.elapsed();
    let sent: Vec<Sent> = std::mem::take(&mut *sent.lock().unwrap_or_else(|e| e.into_inner()));
    let versions: HashSet<String> = sent.iter().map(|s| s.result_id.clone()).collect();
    println!(
        "load-test: {} uploads sent in {:.1} s ({} object versions)",
        sent.len(),
        sent_all.as_secs_f64(),
        versions.len()
    );

    // Wait for every version's row and message, then for the queues to
    // settle so late redeliveries are counted too.
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let mut rows: HashSet<String> = HashSet::new();
    loop {
        for id in versions.difference(&rows.clone()) {
            let item = dynamo
                .get_item()
                .table_name(&results_table)
                .key("result_id", AttributeValue::S(id.clone()))
                .consistent_read(true)
                .send()
                .await
                .context("dynamodb:GetItem")?;
            if item.item().is_some() {
                rows.insert(id.clone());
            }
        }
        let seen = {
            let c = consumed.lock().unwrap_or_else(|e| e.into_inner());
            versions
                .iter()
                .filter(|id| c.deliveries.contains_key(*id))
                .count()
        };
        if rows.len() == versions.len() && seen == versions.len() {
            break;
        }
        if Instant::now() > deadline {
            println!(
                "load-test: gave up waiting after {} s: {} of {} rows, {} of {} messages",
                args.timeout_s,
                rows.len(),
                versions.len(),
                seen,
                versions.len()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_in = started.elapsed();
    let uploads_queue = record.output(keys::WORK_QUEUE_URL)?.to_string();
    settle(&sqs, &uploads_queue, deadline).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    consuming.store(false, Ordering::Relaxed);
    consumer.await??;

    // The API answers for its uploads too.
    let mut api_missing = 0;
    if let Some(g) = &gateway {
        for s in sent.iter().filter(|s| s.kind == Kind::Api) {
            let id = s.api_result_id.clone().unwrap_or_default();
            let status = get_status(&g.api_url, &upload.api_key, &id).await?;
            if status != 200 {
                api_missing += 1;
            }
        }
    }
    if let Some(g) = gateway.take() {
        g.stop().await?;
    }

    let consumed = consumed.lock().unwrap_or_else(|e| e.into_inner());
    let counts = tally(&versions, &rows, &consumed.deliveries, consumed.kept);
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|s| Some(consumed.first_seen.get(&s.result_id)?.duration_since(s.at)))
        .collect();
    latencies.sort();
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for s in &sent {
        *by_kind.entry(s.kind).or_default() += 1;
    }
    let mix: Vec<String> = by_kind
        .iter()
        .map(|(k, n)| format!("{n} {}", k.name()))
        .collect();
    println!("load-test: mix: {}", mix.join(", "));
    for f in &faults {
        println!("load-test: fault: {f}");
    }
    println!(
        "load-test: {} versions: {} rows, {} delivered to the consumer, {} raw redeliveries dropped by its dedupe",
        counts.versions,
        counts.versions - counts.lost_rows,
        counts.versions - counts.lost_messages,
        counts.redelivered
    );
    println!(
        "load-test: upload → consumer latency p50 {}, p95 {}, max {}",
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.95)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "load-test: throughput {:.2} results/s ({} in {:.1} s, first upload to last result)",
        counts.versions as f64 / all_in.as_secs_f64().max(1e-3),
        counts.versions,
        all_in.as_secs_f64()
    );
    for s in sent
        .iter()
        .filter(|s| !rows.contains(&s.result_id) || !consumed.deliveries.contains_key(&s.result_id))
        .take(20)
    {
        println!(
            "load-test: missing: {} ({}, row {}, message {})",
            s.key,
            s.kind.name(),
            rows.contains(&s.result_id),
            consumed.deliveries.contains_key(&s.result_id)
        );
    }
    let lost = counts.lost_rows.max(counts.lost_messages) + api_missing;
    println!("lost {lost}, duplicated {}", counts.duplicated);
    if lost > 0 || counts.duplicated > 0 {
        bail!(
            "load-test failed: {} version(s) without a row, {} never delivered, {} API result(s) missing, {} duplicated",
            counts.lost_rows,
            counts.lost_messages,
            api_missing,
            counts.duplicated
        );
    }
    Ok(())
}

/// Sends uploads; shared by the sender tasks.
struct Uploader {
    s3: aws_sdk_s3::Client,
    bucket: String,
    /// `uploads/<collection>/`.
    prefix: String,
    collection: String,
    api_url: String,
    api_key: String,
    photos: Vec<Arc<Vec<u8>>>,
    /// The key and bytes of the last photo put through S3.
    last_photo_key: Mutex<Option<(String, Arc<Vec<u8>>)>>,
}

impl Uploader {
    async fn send(&self, i: usize, kind: Kind) -> Result<Sent> {
        let photo = Arc::clone(&self.photos[i % self.photos.len()]);
        let last = self
            .last_photo_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (kind, key, body) = match (kind, last) {
            (Kind::Api, _) => return self.send_api(photo).await,
            (Kind::Corrupt, _) => {
                // A JPEG's first bytes, then noise: sniffed as JPEG, never decodes.
                let mut bytes = photo[..photo.len().min(64)].to_vec();
                bytes.extend((0..4096u32).map(|b| (b.wrapping_mul(2_654_435_761) >> 13) as u8));
                (
                    kind,
                    format!("{}{i:05}-corrupt.jpg", self.prefix),
                    Arc::new(bytes),
                )
            }
            (Kind::Repeat, Some((key, bytes))) => (kind, key, bytes),
            (Kind::Overwrite, Some((key, _))) => (kind, key, photo),
            _ => (Kind::Photo, format!("{}{i:05}.jpg", self.prefix), photo),
        };
        if kind == Kind::Photo {
            *self
                .last_photo_key
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((key.clone(), Arc::clone(&body)));
        }
        let at = Instant::now();
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(body.to_vec().into())
            .send()
            .await
            .with_context(|| format!("s3:PutObject {key}"))?;
        let tag = put
            .version_id()
            .filter(|v| !v.is_empty() && *v != "null")
            .or(put.e_tag())
            .with_context(|| format!("{key}: S3 gave neither a version id nor an ETag"))?;
        Ok(Sent {
            kind,
            result_id: format!("s3://{}/{key}#{}", self.bucket, tag.trim_matches('"')),
            key,
            api_result_id: None,
            at,
        })
    }

    /// `POST /v1/uploads`, then the PUT to the presigned URL.
    async fn send_api(&self, photo: Arc<Vec<u8>>) -> Result<Sent> {
        let (api_url, api_key, collection, bucket) = (
            self.api_url.clone(),
            self.api_key.clone(),
            self.collection.clone(),
            self.bucket.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Sent> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(REQUEST_TIMEOUT_S)))
                .build()
                .into();
            // A client retries while the gateway restarts (connection
            // refused, a 500, a request that never got an answer), as any
            // client of a real API would on a 5xx. A repeated POST only
            // leaves an unused presigned URL behind.
            let request = json!({
                "collection": collection,
                "content_type": "image/jpeg",
                "content_length": photo.len(),
            });
            let retry_until = Instant::now() + Duration::from_secs(RETRY_FOR_S);
            let upload: Value = loop {
                let outcome = agent
                    .post(&format!("{api_url}/v1/uploads"))
                    .header(face_api::API_KEY_HEADER, &api_key)
                    .header("content-type", "application/json")
                    .send(&request.to_string());
                match outcome {
                    Ok(reply) => break serde_json::from_str(&reply.into_body().read_to_string()?)?,
                    Err(e) if retryable(&e) && Instant::now() < retry_until => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(e).context("POST /v1/uploads"),
                }
            };
            let url = upload["url"]
                .as_str()
                .context("no url in the upload reply")?;
            let key = upload["key"].as_str().context("no key")?.to_string();
            let mut put = agent.put(url);
            for (h, v) in upload["headers"].as_object().into_iter().flatten() {
                if !h.eq_ignore_ascii_case("content-length") {
                    put = put.header(h, v.as_str().unwrap_or_default());
                }
            }
            let at = Instant::now();
            let reply = put.send(&photo[..]).context("PUT to the presigned URL")?;
            let header = |name: &str| reply.headers().get(name).and_then(|v| v.to_str().ok());
            let tag = header("x-amz-version-id")
                .filter(|v| !v.is_empty() && *v != "null")
                .or(header("etag"))
                .context("the presigned PUT gave neither a version id nor an ETag")?
                .trim_matches('"')
                .to_string();
            Ok(Sent {
                kind: Kind::Api,
                result_id: format!("s3://{bucket}/{key}#{tag}"),
                key,
                api_result_id: upload["result_id"].as_str().map(String::from),
                at,
            })
        })
        .await?
    }
}

/// Seconds one API request may take before the client gives up on it.
const REQUEST_TIMEOUT_S: u64 = 20;
/// Seconds an API upload keeps being retried (the gateway's restart).
const RETRY_FOR_S: u64 = 120;

/// An error a client of the API retries: no answer, or a 5xx (the API's
/// `Internal` is "retrying may help"; 502-504 are API Gateway's own).
fn retryable(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::StatusCode(code) => (500..=504).contains(code),
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

async fn get_status(api_url: &str, api_key: &str, id: &str) -> Result<u16> {
    let (url, key) = (format!("{api_url}/v1/results/{id}"), api_key.to_string());
    tokio::task::spawn_blocking(move || {
        Ok(
            match ureq::get(&url)
                .header(face_api::API_KEY_HEADER, &key)
                .call()
            {
                Ok(r) => r.status().as_u16(),
                Err(ureq::Error::StatusCode(code)) => code,
                Err(e) => return Err(anyhow::anyhow!("GET {url}: {e}")),
            },
        )
    })
    .await?
}

/// Reads and deletes this run's messages from the results queue until
/// `running` turns false; counts every delivery per `result_id` and keeps
/// the first of each, as `facectl results` does.
async fn consume(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    key_prefix: String,
    consumed: Arc<Mutex<Consumed>>,
    running: Arc<AtomicBool>,
) -> Result<()> {
    while running.load(Ordering::Relaxed) {
        for delivery in super::results_queue::receive(&sqs, &queue_url).await? {
            if !delivery.key().starts_with(&key_prefix) {
                continue;
            }
            if let Some(id) = delivery.body["result_id"].as_str() {
                let mut c = consumed.lock().unwrap_or_else(|e| e.into_inner());
                let n = c.deliveries.entry(id.to_string()).or_default();
                *n += 1;
                if *n == 1 {
                    c.kept += 1;
                    c.first_seen.insert(id.to_string(), Instant::now());
                }
            }
            delivery.delete(&sqs, &queue_url).await?;
        }
    }
    Ok(())
}

/// Waits until the uploads queue holds nothing, visible or in flight (a
/// killed batch is in flight until its visibility timeout), or `deadline`.
async fn settle(sqs: &aws_sdk_sqs::Client, queue_url: &str, deadline: Instant) -> Result<()> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .context("sqs:GetQueueAttributes (uploads)")?;
        let count = |name: A| -> usize {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let left =
            count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible);
        if left == 0 || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn wait_until(done: impl Fn() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_kind_and_repeats_only_after_a_photo() {
        let kinds = plan(30);
        for k in [
            Kind::Photo,
            Kind::Api,
            Kind::Corrupt,
            Kind::Repeat,
            Kind::Overwrite,
        ] {
            assert!(kinds.contains(&k), "{k:?} missing");
        }
        let first_photo = kinds.iter().position(|k| *k == Kind::Photo).unwrap();
        let first_reuse = kinds
            .iter()
            .position(|k| matches!(k, Kind::Repeat | Kind::Overwrite))
            .unwrap();
        assert!(first_photo < first_reuse);
        assert_eq!(plan(7).len(), 7);
    }

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_tally_counts_lost_rows_lost_messages_and_repeats() {
        let versions = ids(&["a", "b", "c"]);
        let rows = ids(&["a", "b"]);
        let deliveries: HashMap<String, usize> =
            [("a".to_string(), 3), ("b".to_string(), 1)].into();
        let t = tally(&versions, &rows, &deliveries, 2);
        assert_eq!(
            t,
            Tally {
                versions: 3,
                lost_rows: 1,
                lost_messages: 1,
                duplicated: 0,
                redelivered: 2,
            }
        );
        // A consumer that kept a repeat is a duplicate.
        assert_eq!(tally(&versions, &rows, &deliveries, 3).duplicated, 1);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(10));
        assert_eq!(quantile(&d, 0.95), Duration::from_millis(19));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
