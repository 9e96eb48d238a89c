//! The deployment description as written in `stacks/<name>.yaml`.
//!
//! Every field is optional except `name` and `regions`; what an absent
//! field means is written on the field and applied by [`crate::plan`].
//!
//! Settings are layered, most specific last: the built-in defaults, then
//! `defaults`, then `defaults.functions.<function>`, then the region's own
//! settings, then the region's `functions.<function>`.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use crate::error::StackError;

/// The functions a stack can hold. Adding a function starts here (a
/// variant) and in [`crate::app`] (its construct); the YAML then accepts
/// per-function overrides under its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FunctionName {
    /// Sync invoke: enroll, forget, list people.
    Enroll,
    /// Sync invoke, S3 upload event, SQS batch of S3 events.
    Recognize,
    /// Sync invoke from the video scan coordinator: one chunk of a video.
    ScanWorker,
    /// The HTTPS API's one integration (API Gateway proxy events).
    Api,
    /// The API's Lambda TOKEN authorizer: checks `x-api-key`.
    Authorizer,
}

impl FunctionName {
    /// Every function, in template order.
    pub const ALL: [FunctionName; 5] = [
        FunctionName::Enroll,
        FunctionName::Recognize,
        FunctionName::ScanWorker,
        FunctionName::Api,
        FunctionName::Authorizer,
    ];

    /// The name used in artifact paths, physical names and the YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionName::Enroll => "enroll",
            FunctionName::Recognize => "recognize",
            FunctionName::ScanWorker => "scan-worker",
            FunctionName::Api => "api",
            FunctionName::Authorizer => "authorizer",
        }
    }

    /// CamelCase, for CloudFormation logical ids and output keys.
    pub fn camel(self) -> &'static str {
        match self {
            FunctionName::Enroll => "Enroll",
            FunctionName::Recognize => "Recognize",
            FunctionName::ScanWorker => "ScanWorker",
            FunctionName::Api => "Api",
            FunctionName::Authorizer => "Authorizer",
        }
    }
}

impl std::fmt::Display for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `stacks/<name>.yaml` file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// Stack name in every region, and the prefix of every physical name.
    /// Lowercase letters, digits and `-`, starting with a letter, at most
    /// 24 characters (bucket names embed it beside the account and region).
    pub name: String,
    /// Extra tags on every taggable resource, beside the built-in
    /// `face:stack` and `face:region`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Prefix of the uploads that trigger recognition. Default `uploads/`.
    pub upload_prefix: Option<String>,
    /// Collection of uploads whose key names none. Default `default`.
    pub default_collection: Option<String>,
    /// Production data outlives the stack: the data bucket and the tables
    /// are retained when the stack is deleted (or a change replaces them),
    /// tables have DynamoDB deletion protection, and `cargo xtask teardown`
    /// deletes them only with `--delete-data`. Default false.
    #[serde(default)]
    pub production: bool,
    /// An e-mail address subscribed to the stack's alarm topic (DLQ depth,
    /// function errors and throttles); it must confirm the subscription.
    /// Default none: subscribe to the `AlarmTopicArn` output yourself.
    pub alarm_email: Option<String>,
    /// Settings shared by every region.
    #[serde(default)]
    pub defaults: RegionSettings,
    /// The regions to deploy to, by region name, each with its overrides.
    pub regions: BTreeMap<String, RegionSettings>,
}

/// Settings of one region (or the shared defaults). All optional.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionSettings {
    /// Share of the uploads a client should route to this region, in
    /// [0, 1]. Regions without one split what the others leave equally;
    /// all shares must sum to 1. Only meaningful per region.
    pub work_share: Option<f64>,
    /// Function memory. Default 2048 MiB (128..=10240). Does not apply to
    /// `authorizer`, which has its own default (256 MiB) and takes only
    /// its `functions.authorizer` settings.
    pub memory_mib: Option<u32>,
    /// Function timeout. Default 60 s (1..=900). Does not apply to `api`
    /// (default 29 s, at most 29: API Gateway's integration timeout) nor
    /// to `authorizer` (default 10 s); set theirs under `functions.<fn>`.
    pub timeout_s: Option<u32>,
    /// `x86_64` or `arm64`. Default `arm64`.
    pub architecture: Option<String>,
    /// Reserved concurrent executions. Default none (the account pool).
    pub reserved_concurrency: Option<u32>,
    /// Maximum concurrent invocations by a queue's event source mapping
    /// (2..=1000), for functions fed by a queue; for `scan-worker`, the
    /// scan coordinator's cap on invocations in flight in this region.
    /// Default none (unbounded).
    pub max_concurrency: Option<u32>,
    /// Per-function overrides of the five function settings above.
    #[serde(default)]
    #[schemars(schema_with = "functions_schema")]
    pub functions: BTreeMap<FunctionName, FunctionSettings>,
    /// Retention of the functions' log groups. Default 14 days; one of the
    /// values CloudWatch Logs accepts.
    pub log_retention_days: Option<u32>,
    /// Messages per invocation from the work queue. Default 4 (1..=10).
    pub batch_size: Option<u32>,
    /// Deliveries of a work message before it moves to the dead-letter
    /// queue. Default 3 (1..=1000).
    pub max_receive_count: Option<u32>,
    /// Work queue visibility timeout. Default 6x the consumer's timeout;
    /// less than that is an error (AWS's guidance for event sources).
    pub visibility_timeout_s: Option<u32>,
    /// Days a replaced or deleted object version is kept. Default 30.
    pub noncurrent_version_expiration_days: Option<u32>,
    /// DynamoDB point-in-time recovery on every table. Default false.
    pub point_in_time_recovery: Option<bool>,
    /// X-Ray active tracing on every function (a segment per invocation,
    /// its AWS SDK calls as subsegments). Default false.
    pub xray_tracing: Option<bool>,
    /// The HTTPS API's stage-wide throttling. Each field layers on its own.
    #[serde(default)]
    pub api: ApiSettings,
}

/// The HTTPS API (API Gateway REST API, stage `live`) of a region. These
/// limits are stage-wide, over every key together; the per-key limits are
/// on each key (`cargo xtask api-key create`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Steady-state requests per second over the stage. Default 50
    /// (1..=10000, API Gateway's default account limit).
    pub rate_per_s: Option<u32>,
    /// Requests allowed in a burst above the rate. Default 100
    /// (1..=5000, API Gateway's default account burst).
    pub burst: Option<u32>,
}

/// The settings one function may override.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSettings {
    /// See [`RegionSettings::memory_mib`].
    pub memory_mib: Option<u32>,
    /// See [`RegionSettings::timeout_s`].
    pub timeout_s: Option<u32>,
    /// See [`RegionSettings::architecture`].
    pub architecture: Option<String>,
    /// See [`RegionSettings::reserved_concurrency`].
    pub reserved_concurrency: Option<u32>,
    /// See [`RegionSettings::max_concurrency`].
    pub max_concurrency: Option<u32>,
}

/// A map keyed by function: its schema also says which keys there are
/// (`propertyNames`), as serde refuses any other.
fn functions_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = BTreeMap::<FunctionName, FunctionSettings>::json_schema(generator);
    schema.insert(
        "propertyNames".into(),
        generator.subschema_for::<FunctionName>().to_value(),
    );
    schema
}

impl DeploymentFile {
    /// Parses one YAML document.
    pub fn from_yaml(text: &str) -> Result<Self, StackError> {
        serde_norway::from_str(text).map_err(|e| StackError::Yaml(e.to_string()))
    }
}

/// The deployments shipped in `stacks/`, by file stem.
pub const EMBEDDED: [(&str, &str); 3] = [
    ("local", include_str!("../local.yaml")),
    ("dev", include_str!("../dev.yaml")),
    ("prod", include_str!("../prod.yaml")),
];

/// The YAML of an embedded deployment (`local`, `dev`, `prod`).
pub fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, y)| *y)
}
