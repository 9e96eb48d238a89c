//! The recognize function: a direct request, an S3 upload event, or an SQS
//! batch of upload events, all through one handler core. See
//! lambdas/README.md for the payloads.

use face_service::FunctionInit;
use face_service::aws::{recognizer_stores, video_intake};
use face_service::recognize::Recognizer;
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
    let mut recognizer = Recognizer::new(pipeline, recognizer_stores(&sdk, &config)?, &config)
        .with_metrics(metrics.clone());
    // MP4 uploads start scan jobs where the stack has them.
    if let Some(videos) = video_intake(&sdk, &config) {
        recognizer = recognizer.with_videos(videos);
    }
    let (recognizer, metrics) = (&recognizer, &metrics);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        metrics.invocation_started();
        recognizer.handle(event.payload).await
    }))
    .await
}
