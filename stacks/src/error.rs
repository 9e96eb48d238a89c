//! What can be wrong with a deployment description.

use crate::config::FunctionName;

/// A deployment description that cannot become a stack.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackError {
    #[error("invalid deployment YAML: {0}")]
    Yaml(String),
    #[error(
        "stack name {0:?}: use 1-24 lowercase letters, digits and single hyphens, starting with a letter"
    )]
    InvalidName(String),
    #[error("{0:?} is not an AWS region name (like eu-west-1)")]
    InvalidRegion(String),
    #[error("the deployment lists no region")]
    NoRegions,
    #[error("{region}/{function}: unknown architecture {value:?} (expected x86_64 or arm64)")]
    UnknownArchitecture {
        region: String,
        function: FunctionName,
        value: String,
    },
    #[error("{region}/{function}: {setting} = {value} is outside {min}..={max}")]
    OutOfRange {
        region: String,
        function: String,
        setting: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{region}: log_retention_days = {value} is not a value CloudWatch Logs accepts")]
    InvalidLogRetention { region: String, value: u32 },
    #[error(
        "{region}: work queue visibility_timeout_s = {visibility_s} is under 6x the timeout of {function} ({timeout_s} s); a message would be redelivered while still being processed"
    )]
    VisibilityTooShort {
        region: String,
        function: FunctionName,
        visibility_s: u32,
        timeout_s: u32,
    },
    #[error(
        "{region}/{function}: max_concurrency = {max} exceeds reserved_concurrency = {reserved}; the mapping would be throttled"
    )]
    MaxAboveReserved {
        region: String,
        function: FunctionName,
        max: u32,
        reserved: u32,
    },
    #[error("work_share belongs to a region, not to the shared defaults")]
    WorkShareInDefaults,
    #[error("{region}: work_share = {value} is outside [0, 1]")]
    WorkShareOutOfRange { region: String, value: f64 },
    #[error("the regions' work shares sum to {sum}, not 1")]
    WorkSharesDoNotSum { sum: f64 },
    #[error("{field} = {value:?}: {reason}")]
    InvalidValue {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("no artifact key for {function} ({architecture})")]
    MissingAsset {
        function: FunctionName,
        architecture: &'static str,
    },
}

/// A deployment that [`crate::Deployment::load`] could not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no deployment named {0} (local, dev, prod, or a .yaml/.yml file)")]
    Unknown(String),
    #[error("deployment {stack}")]
    Invalid {
        stack: String,
        #[source]
        source: StackError,
    },
}
