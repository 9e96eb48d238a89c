//! The enroll function: enroll a person from photos, forget a person, list
//! a collection. See lambdas/README.md for the payloads.

use face_service::aws::{DynamoPeople, s3_objects};
use face_service::enroll::Enroller;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

// musl's allocator halves tract's speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, pipeline, sdk) = face_service::init_function().await?;
    let enroller = Enroller::new(
        pipeline,
        s3_objects(&sdk, &config),
        DynamoPeople::from_sdk(&sdk, &config.people_table),
        config.bucket.clone(),
    );
    let enroller = &enroller;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        enroller.handle(event.payload).await
    }))
    .await
}
