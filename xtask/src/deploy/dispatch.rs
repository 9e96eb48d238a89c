//! The local dispatcher of `--stack local`: moto stores functions but runs
//! none of their code, so this plays Lambda's part. Each function's real
//! musl bootstrap runs under the Runtime Interface Emulator with the
//! environment the stack gave it (read back from moto's Lambda API), and the
//! event source mappings the stack declared are served like Lambda serves
//! them: long-poll the queue, invoke with an SQS event, delete only the
//! messages not reported in `batchItemFailures`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use face_contracts::Architecture;
use face_sdk_config::SdkConfig;
use serde_json::{Value, json};

/// How long one receive waits for messages (also how fast `stop` is seen).
const LONG_POLL_S: i32 = 2;

/// A function's bootstrap running under the RIE as the stack configured it.
pub struct LocalFunction {
    pub name: String,
    pub rie: Arc<local_aws::Rie>,
}

impl LocalFunction {
    /// Starts `function` (`enroll`, `recognize`, ...) deployed as `name`:
    /// the unpacked artifact `target/lambda-dist/<arch>/<function>/` of its
    /// deployed architecture (another than this machine's under QEMU), with
    /// `client_env` plus the function's `Environment.Variables`.
    pub async fn start(
        root: &Path,
        config: &SdkConfig,
        client_env: &[(String, String)],
        function: &str,
        name: &str,
    ) -> Result<Self> {
        let lambda = aws_sdk_lambda::Client::new(config);
        let conf = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .with_context(|| format!("lambda:GetFunctionConfiguration {name}"))?;
        let mut env = client_env.to_vec();
        if let Some(vars) = conf.environment().and_then(|e| e.variables()) {
            env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let architecture = match conf.architectures().first() {
            Some(deployed) => Architecture::parse(deployed.as_str())
                .with_context(|| format!("{name} is deployed for unknown {deployed:?}"))?,
            None => Architecture::X86_64, // Lambda's default
        };
        let bootstrap = root
            .join("target/lambda-dist")
            .join(architecture.as_str())
            .join(function)
            .join("bootstrap");
        if !bootstrap.exists() {
            bail!(
                "{} is missing: run `cargo xtask build` (or deploy) first",
                bootstrap.display()
            );
        }
        let options = local_aws::RieOptions {
            function_name: name.to_string(),
            memory_mib: conf.memory_size().map_or(1024, |m| m.unsigned_abs()),
            timeout_s: conf.timeout().map_or(60, |t| t.unsigned_abs()),
            log_dir: Some(super::deploy_dir(root).join("local/functions")),
            architecture,
        };
        let rie = tokio::task::spawn_blocking(move || -> Result<local_aws::Rie> {
            let tools = local_aws::Tools::ensure_default()?;
            Ok(local_aws::Rie::start_with(
                tools, &options, &bootstrap, &env,
            )?)
        })
        .await??;
        Ok(Self {
            name: name.to_string(),
            rie: Arc::new(rie),
        })
    }

    /// One synchronous invoke; a function error is an error here.
    pub async fn invoke(&self, event: Value) -> Result<Value> {
        let rie = Arc::clone(&self.rie);
        let invocation = tokio::task::spawn_blocking(move || rie.invoke(&event)).await??;
        invocation.result.map_err(|e| {
            anyhow::anyhow!(
                "{} failed: {}: {}\n{}",
                self.name,
                e.error_type,
                e.error_message,
                self.rie.log_tail(20)
            )
        })
    }
}

/// One SQS event source mapping of a function, as the stack declared it.
#[derive(Debug, Clone)]
pub struct QueueMapping {
    pub queue_arn: String,
    pub queue_url: String,
    pub batch_size: i32,
}

/// The SQS mappings of `function_name`, read from moto, which this
/// dispatcher then serves in Lambda's place. Each is switched off in moto:
/// moto's own inline delivery receives a burst's messages as they are sent,
/// fails to run the function (no Docker) and hands them back, so their
/// receive counts climb until the redrive policy moves them to the DLQ.
/// Disabled mappings are served too: in moto only this dispatcher
/// disables them.
pub async fn queue_mappings(config: &SdkConfig, function_name: &str) -> Result<Vec<QueueMapping>> {
    let lambda = aws_sdk_lambda::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let listed = lambda
        .list_event_source_mappings()
        .function_name(function_name)
        .send()
        .await
        .context("lambda:ListEventSourceMappings")?;
    let mut mappings = Vec::new();
    for m in listed.event_source_mappings() {
        let Some(arn) = m
            .event_source_arn()
            .filter(|a| a.starts_with("arn:aws:sqs:"))
        else {
            continue;
        };
        if let Some(uuid) = m.uuid()
            && m.state().is_none_or(|s| s != "Disabled")
        {
            lambda
                .update_event_source_mapping()
                .uuid(uuid)
                .enabled(false)
                .send()
                .await
                .with_context(|| format!("lambda:UpdateEventSourceMapping {uuid}"))?;
        }
        // arn:aws:sqs:<region>:<account>:<name>
        let mut parts = arn.rsplit(':');
        let (name, account) = (parts.next().unwrap_or_default(), parts.next());
        let mut get = sqs.get_queue_url().queue_name(name);
        if let Some(account) = account {
            get = get.queue_owner_aws_account_id(account);
        }
        let url = get
            .send()
            .await
            .with_context(|| format!("sqs:GetQueueUrl {name}"))?
            .queue_url
            .with_context(|| format!("no URL for queue {name}"))?;
        mappings.push(QueueMapping {
            queue_arn: arn.to_string(),
            queue_url: url,
            batch_size: m.batch_size().unwrap_or(10).clamp(1, 10),
        });
    }
    Ok(mappings)
}

/// What one mapping did, for the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct MappingStats {
    pub batches: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// Serves `mapping` into `function` until `stop` is set.
pub async fn serve_queue(
    config: SdkConfig,
    function: Arc<LocalFunction>,
    mapping: QueueMapping,
    stop: Arc<AtomicBool>,
) -> Result<MappingStats> {
    let sqs = aws_sdk_sqs::Client::new(&config);
    let region = config
        .region()
        .map_or_else(|| local_aws::DEFAULT_REGION.to_string(), |r| r.to_string());
    let mut stats = MappingStats::default();
    while !stop.load(Ordering::Relaxed) {
        let received = sqs
            .receive_message()
            .queue_url(&mapping.queue_url)
            .max_number_of_messages(mapping.batch_size)
            .wait_time_seconds(LONG_POLL_S)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .with_context(|| format!("sqs:ReceiveMessage {}", mapping.queue_url))?;
        let messages = received.messages();
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), Value::from(v.as_str())))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": mapping.queue_arn,
                    "awsRegion": region,
                })
            })
            .collect();
        stats.batches += 1;
        // A function error leaves the whole batch to come back after its
        // visibility timeout, as Lambda does.
        let reply = match function.invoke(json!({ "Records": records })).await {
            Ok(reply) => reply,
            Err(e) => {
                eprintln!("local dispatcher: {e:#}");
                stats.failed += messages.len();
                continue;
            }
        };
        let failed: Vec<&str> = reply["batchItemFailures"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|i| i["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for m in messages {
            if failed.contains(&m.message_id().unwrap_or_default()) {
                stats.failed += 1;
                continue;
            }
            let Some(handle) = m.receipt_handle() else {
                continue;
            };
            sqs.delete_message()
                .queue_url(&mapping.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .context("sqs:DeleteMessage")?;
            stats.delivered += 1;
        }
    }
    Ok(stats)
}
