//! The scan-worker function. Two ways in:
//! - a direct invoke `{key, collection, frames}` (the client-side
//!   coordinator's): the chunk's per-frame matches back;
//! - the scan queue's SQS batches (its event source mapping): server-side
//!   video jobs, planned and scanned here (see `scan_worker::jobs`).
//!
//! See lambdas/README.md.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use face_service::aws::{
    DynamoJobs, DynamoPeople, DynamoResults, SnsTopic, SqsResults, SqsWork, s3_objects,
};
use face_service::events::Invocation;
use face_service::{FunctionInit, ServiceError};
use lambda_runtime::{LambdaEvent, service_fn};
use scan_worker::ScanWorker;
use scan_worker::jobs::{JobRunner, JobSettings, JobStores};
use serde_json::Value;

// musl's allocator halves tract's speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let FunctionInit {
        config,
        pipeline,
        sdk,
        metrics,
    } = face_service::init_function().await?;
    let worker = Arc::new(
        ScanWorker::new(pipeline, s3_objects(&sdk, &config), config.bucket.clone())
            .with_metrics(metrics.clone()),
    );
    // Jobs need their table and queues; without them only direct invokes work.
    let runner = match (
        &config.jobs_table,
        &config.scan_queue_url,
        &config.results_table,
        &config.results_queue_url,
    ) {
        (Some(jobs), Some(scan_queue), Some(results), Some(results_queue)) => {
            let stores = JobStores {
                jobs: Arc::new(DynamoJobs::from_sdk(&sdk, jobs)),
                scan_queue: Arc::new(SqsWork::from_sdk(&sdk, scan_queue)),
                people: Arc::new(DynamoPeople::from_sdk(&sdk, &config.people_table)),
                results: Arc::new(DynamoResults::from_sdk(&sdk, results)),
                results_queue: Arc::new(SqsResults::from_sdk(&sdk, results_queue)),
                topic: config.results_topic_arn.as_ref().map(|arn| {
                    Arc::new(SnsTopic::from_sdk(&sdk, arn))
                        as Arc<dyn face_service::storage::Notifier>
                }),
            };
            let memory_mib: u32 = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .ok()
                .and_then(|m| m.parse().ok())
                .unwrap_or(1024);
            let settings = JobSettings {
                max_receive_count: config.scan_max_receive_count,
                memory_mib,
                // The segments and their joined copy, a quarter each: half
                // the memory, the rest for the merge and the runtime.
                max_montage_bytes: (u64::from(memory_mib) << 20) / 4,
                ..JobSettings::default()
            };
            Some(JobRunner::new(Arc::clone(&worker), stores, settings))
        }
        _ => None,
    };
    let (worker, runner, metrics) = (&worker, &runner, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        metrics.invocation_started();
        let deadline = invocation_deadline(event.context.deadline);
        match Invocation::classify(event.payload)? {
            Invocation::Sqs(batch) => {
                let runner = runner.as_ref().ok_or_else(|| {
                    use face_contracts::env;
                    ServiceError::Config(format!(
                        "a scan queue event, but {}, {}, {} or {} is not set",
                        env::JOBS_TABLE,
                        env::SCAN_QUEUE_URL,
                        env::RESULTS_TABLE,
                        env::RESULTS_QUEUE_URL
                    ))
                })?;
                serde_json::to_value(runner.sqs_batch_until(batch, deadline).await)
                    .map_err(|e| ServiceError::Internal(format!("serializing the reply: {e}")))
            }
            Invocation::Direct(payload) => serde_json::to_value(worker.handle(payload).await?)
                .map_err(|e| ServiceError::Internal(format!("serializing the reply: {e}"))),
            Invocation::S3(_) => Err(ServiceError::BadRequest(
                "scan-worker takes scan queue batches or chunk requests, not S3 events".into(),
            )),
        }
    }))
    .await
}

/// The invocation's deadline (`deadline_ms`: milliseconds since the Unix
/// epoch, as the runtime API gives it) as an `Instant`; `None` when it is
/// unknown (0).
fn invocation_deadline(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_millis(deadline_ms).saturating_sub(now);
    Some(Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_an_instant_or_unknown() {
        assert_eq!(invocation_deadline(0), None);
        // One already past: no time left, not an underflow.
        let deadline = invocation_deadline(1).expect("a deadline");
        assert!(deadline <= Instant::now());
    }
}
