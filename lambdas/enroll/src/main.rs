//! The enroll function: enroll a person from photos, forget a person, list
//! a collection. See lambdas/README.md for the payloads.

use face_service::FunctionInit;
use face_service::aws::{DynamoPeople, s3_objects};
use face_service::enroll::Enroller;
use lambda_runtime::{LambdaEvent, service_fn};
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
    let enroller = Enroller::new(
        pipeline,
        s3_objects(&sdk, &config),
        DynamoPeople::from_sdk(&sdk, &config.people_table),
        config.bucket.clone(),
    )
    .with_metrics(metrics.clone());
    let (enroller, metrics) = (&enroller, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        metrics.invocation_started();
        enroller.handle(event.payload).await
    }))
    .await
}
