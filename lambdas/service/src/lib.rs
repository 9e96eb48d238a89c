//! `face-service`: the handler core every Lambda function shares.
//!
//! Each function binary is a thin adapter: it builds a [`config::ServiceConfig`]
//! from the environment, loads the pipeline once ([`models`]), builds the AWS
//! storage ([`aws`]) and hands every invocation to [`enroll::Enroller`] or
//! [`recognize::Recognizer`]. Those are generic over the small traits of
//! [`storage`], so the same code runs against S3/DynamoDB/SQS in Lambda and
//! against [`memory`] in unit tests.

pub mod api;
pub mod authorizer;
pub mod aws;
pub mod collections;
pub mod config;
pub mod enroll;
pub mod error;
pub mod events;
pub mod image_input;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod recognize;
pub mod response;
pub mod storage;
pub mod telemetry;

pub use config::ServiceConfig;
pub use error::{ErrorKind, ServiceError, StorageError};

/// What a function's `main` starts from.
#[derive(Debug)]
pub struct FunctionInit {
    pub config: ServiceConfig,
    pub pipeline: std::sync::Arc<face_core::FacePipeline>,
    pub sdk: face_sdk_config::SdkConfig,
    /// EMF metrics on stdout, knowing how long this init took.
    pub metrics: metrics::Metrics,
}

/// What every function's `main` does before serving: logs as Lambda's
/// `LoggingConfig` asks ([`telemetry`]), the config from the environment,
/// the models from the artifact (once, on a blocking thread while the AWS
/// config loads from the standard chain), and the metrics handle.
pub async fn init_function() -> Result<FunctionInit, ServiceError> {
    let started = std::time::Instant::now();
    telemetry::init_logs();
    let config = ServiceConfig::from_env()?;
    let models_dir = config.models_dir.clone();
    let loading = tokio::task::spawn_blocking(move || {
        models::load_pipeline_for(&models_dir, models::InitType::from_env())
    });
    let sdk = aws::load_sdk_config().await;
    let sdk_ready_ms = started.elapsed().as_secs_f64() * 1e3;
    let pipeline = loading
        .await
        .map_err(|e| ServiceError::Internal(format!("loading the models: {e}")))??;
    let metrics = metrics::Metrics::from_env(Some(started.elapsed()));
    tracing::info!(
        sdk_ready_ms,
        init_ms = started.elapsed().as_secs_f64() * 1e3,
        "function initialized"
    );
    Ok(FunctionInit {
        config,
        pipeline: std::sync::Arc::new(pipeline),
        sdk,
        metrics,
    })
}
