//! Deployment descriptions (YAML) and the typed stack model, synthesized to
//! CloudFormation.
//!
//! - [`config`]: the `stacks/<name>.yaml` format (serde, every default
//!   documented).
//! - [`plan`]: defaults applied and rules checked, typed errors
//!   ([`StackError`]).
//! - [`constructs`]: CDK-style building blocks (bucket, tables, queues,
//!   function + role + log group, event source mapping, the REST API).
//! - [`app`]: the face recognition stack of one region, assembled from
//!   them, synthesized to a [`cfn::Template`] plus the S3 notifications
//!   deploy applies after the stack.
//!
//! Pure: no AWS calls, no environment, and no files but the deployment
//! YAML that [`Deployment::load`] is given by path.

pub mod app;
pub mod cfn;
pub mod config;
pub mod constructs;
pub mod error;
pub mod plan;
pub mod record;

pub use app::{
    Assets, BucketNotification, DASHBOARD_METRICS, FaceStack, Stack, asset_bucket_name, outputs,
};
pub use config::{DeploymentFile, FunctionName};
pub use error::{LoadError, StackError};
pub use plan::{ApiConfig, Architecture, Deployment, FunctionConfig, RegionPlan};
pub use record::{
    DeployRecord, LOCAL_API_PORT, RecordError, deploy_dir, local_api_port, local_api_url,
};
