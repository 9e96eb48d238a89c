//! The scan-worker function: `{key, collection, frames}` → the chunk's
//! per-frame matches. See lambdas/README.md.

use face_service::aws::{S3Objects, s3_client};
use lambda_runtime::{LambdaEvent, service_fn};
use scan_worker::ScanWorker;
use serde_json::Value;

// musl's allocator halves tract's speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, pipeline, sdk) = face_service::init_function().await?;
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
