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

/// What every function's `main` does before serving: logs as Lambda's
/// `LoggingConfig` asks ([`telemetry`]), the
/// config from the environment, the models from the artifact (once), the
/// AWS config from the standard chain.
pub async fn init_function() -> Result<
    (
        ServiceConfig,
        std::sync::Arc<face_core::FacePipeline>,
        face_sdk_config::SdkConfig,
    ),
    ServiceError,
> {
    telemetry::init_logs();
    let config = ServiceConfig::from_env()?;
    let pipeline = std::sync::Arc::new(models::load_pipeline(&config.models_dir)?);
    let sdk = aws::load_sdk_config().await;
    Ok((config, pipeline, sdk))
}
