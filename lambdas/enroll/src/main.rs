//! The enroll function: enroll a person from photos, forget a person, list
//! a collection. See lambdas/README.md for the payloads.

use std::sync::Arc;

use face_service::aws::{DynamoPeople, S3Objects, load_sdk_config, s3_client};
use face_service::enroll::Enroller;
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
    let enroller = Enroller::new(
        pipeline,
        S3Objects::new(s3_client(&sdk)),
        DynamoPeople::new(aws_sdk_dynamodb::Client::new(&sdk), &config.people_table),
        config.bucket.clone(),
    );
    let enroller = &enroller;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        enroller.handle(event.payload).await
    }))
    .await
}
