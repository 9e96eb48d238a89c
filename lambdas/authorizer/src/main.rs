//! The authorizer function: API Gateway TOKEN authorizer events (the
//! `x-api-key` header) answered with an Allow or Deny policy by
//! `face_service::authorizer::authorize`. Reads only `FACE_API_KEYS_TABLE`
//! and loads no models, so its cold start is the runtime's alone.

use face_contracts::env::API_KEYS_TABLE;
use face_service::ServiceError;
use face_service::authorizer::authorize;
use face_service::aws::{DynamoApiKeys, load_sdk_config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    face_service::telemetry::init_logs();
    let table = std::env::var(API_KEYS_TABLE)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ServiceError::Config(format!("environment variable {API_KEYS_TABLE} is not set"))
        })?;
    let sdk = load_sdk_config().await;
    let keys = DynamoApiKeys::from_sdk(&sdk, table);
    let keys = &keys;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        authorize(keys, event.payload).await
    }))
    .await
}
