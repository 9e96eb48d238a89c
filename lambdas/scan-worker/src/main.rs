//! The scan-worker function: `{key, collection, frames}` → the chunk's
//! per-frame matches. See lambdas/README.md.

use std::sync::Arc;

use face_service::aws::{S3Objects, load_sdk_config, s3_client};
use face_service::{ServiceConfig, models, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
use scan_worker::ScanWorker;
use serde_json::Value;

// musl's allocator halves tract's speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_json_logs();
    let config = ServiceConfig::from_env()?;
    let pipeline = Arc::new(models::load_pipeline(&config.models_dir)?);
    let sdk = load_sdk_config().await;
    let worker = ScanWorker::new(
        pipeline,
        S3Objects::new(s3_client(&sdk)),
        config.bucket.clone(),
    );
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        worker.handle(event.payload).await
    }))
    .await
}
