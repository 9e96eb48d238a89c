//! The api function: API Gateway REST API proxy events (payload 1.0) for
//! every route of the HTTPS API, answered by `face_service::api::Api`.
//! Models load once, at init. See lambdas/README.md for the environment.

use face_service::api::Api;
use face_service::aws::{api_stores, video_intake};
use face_service::{FunctionInit, ServiceError};
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
    let mut api = Api::new(pipeline, api_stores(&sdk, &config)?, &config);
    if let Some(videos) = video_intake(&sdk, &config) {
        api = api.with_videos(videos);
    }
    let (api, metrics) = (&api, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        metrics.invocation_started();
        Ok::<Value, ServiceError>(api.handle_proxy_event(event.payload).await)
    }))
    .await
}
