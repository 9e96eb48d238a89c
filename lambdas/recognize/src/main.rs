//! The recognize function: a direct request, an S3 upload event, or an SQS
//! batch of upload events, all through one handler core. See
//! lambdas/README.md for the payloads.

use std::sync::Arc;

use face_service::aws::{load_sdk_config, recognizer_stores};
use face_service::recognize::Recognizer;
use face_service::{ServiceConfig, models, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};
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
    let recognizer = Recognizer::new(pipeline, recognizer_stores(&sdk, &config)?, &config);
    let recognizer = &recognizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        recognizer.handle(event.payload).await
    }))
    .await
}
