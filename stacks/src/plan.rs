//! A validated deployment: every default applied, every rule checked.
//! Nothing here talks to AWS; the stack model is built from these values.

use std::collections::BTreeMap;

use crate::config::{DeploymentFile, FunctionName, FunctionSettings, RegionSettings};
use crate::error::StackError;

/// Built-in defaults, documented on [`RegionSettings`].
pub mod defaults {
    pub const MEMORY_MIB: u32 = 2048;
    pub const TIMEOUT_S: u32 = 60;
    pub const LOG_RETENTION_DAYS: u32 = 14;
    pub const BATCH_SIZE: u32 = 4;
    /// Of the work queue and the scan queue: what `scan-worker` assumes
    /// when `FACE_SCAN_MAX_RECEIVE_COUNT` is unset.
    pub const MAX_RECEIVE_COUNT: u32 = face_contracts::env::defaults::SCAN_MAX_RECEIVE_COUNT;
    pub const NONCURRENT_VERSION_EXPIRATION_DAYS: u32 = 30;
    /// The functions' own defaults, when the stack sets no variable.
    pub use face_contracts::env::defaults::{DEFAULT_COLLECTION, UPLOAD_PREFIX};
    /// AWS's guidance: a queue feeding a function hides a received message
    /// for at least six times the function timeout.
    pub const VISIBILITY_TIMEOUT_FACTOR: u32 = 6;
    /// `api`: API Gateway ends an integration after 29 s, so a longer
    /// function timeout would only run on after the client got a 504.
    pub const API_TIMEOUT_S: u32 = 29;
    /// `authorizer`: one DynamoDB `GetItem` per uncached key.
    pub const AUTHORIZER_MEMORY_MIB: u32 = 256;
    pub const AUTHORIZER_TIMEOUT_S: u32 = 10;
    /// The API stage's steady rate over every key (requests per second).
    pub const API_RATE_PER_S: u32 = 50;
    /// The API stage's burst over every key (requests).
    pub const API_BURST: u32 = 100;

    /// A function's own built-in memory, if it has one. Region-wide
    /// `memory_mib` (sized for the face models) then does not apply to it.
    pub fn memory_mib_of(function: crate::FunctionName) -> Option<u32> {
        match function {
            crate::FunctionName::Authorizer => Some(AUTHORIZER_MEMORY_MIB),
            _ => None,
        }
    }

    /// A function's own built-in timeout, if it has one. Region-wide
    /// `timeout_s` then does not apply to it.
    pub fn timeout_s_of(function: crate::FunctionName) -> Option<u32> {
        match function {
            crate::FunctionName::Api => Some(API_TIMEOUT_S),
            crate::FunctionName::Authorizer => Some(AUTHORIZER_TIMEOUT_S),
            _ => None,
        }
    }
}

/// The retention values CloudWatch Logs accepts.
const LOG_RETENTION_VALUES: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// How far the work shares may be from summing to 1 (YAML decimals).
const WORK_SHARE_TOLERANCE: f64 = 1e-6;

/// Instruction set of a function (defined in `face-contracts`).
pub use face_contracts::Architecture;

/// A whole deployment: one stack per region.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Stack name and physical-name prefix.
    pub name: String,
    /// Tags on every taggable resource, built-ins included except
    /// `face:region`, which each region adds.
    pub tags: BTreeMap<String, String>,
    pub upload_prefix: String,
    pub default_collection: String,
    /// Data (bucket, tables) retained on stack deletion, tables protected.
    pub production: bool,
    pub alarm_email: Option<String>,
    /// Sorted by region name.
    pub regions: Vec<RegionPlan>,
}

/// What one region's stack holds.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionPlan {
    pub region: String,
    pub work_share: f64,
    pub functions: BTreeMap<FunctionName, FunctionConfig>,
    pub log_retention_days: u32,
    pub work_queue: WorkQueueConfig,
    pub noncurrent_version_expiration_days: u32,
    pub point_in_time_recovery: bool,
    pub xray_tracing: bool,
    pub api: ApiConfig,
}

/// The HTTPS API's stage-wide throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    pub rate_per_s: u32,
    pub burst: u32,
}

/// One function's resolved settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionConfig {
    pub memory_mib: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    pub reserved_concurrency: Option<u32>,
    /// Applies to the function's queue event source mapping, if any.
    pub max_concurrency: Option<u32>,
}

/// The uploads work queue and its mapping to `recognize`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkQueueConfig {
    pub visibility_timeout_s: u32,
    pub max_receive_count: u32,
    pub batch_size: u32,
}

impl Deployment {
    /// Parses and validates one YAML file.
    pub fn from_yaml(text: &str) -> Result<Self, StackError> {
        Self::resolve(&DeploymentFile::from_yaml(text)?)
    }

    /// One of the deployments shipped in `stacks/` (`local`, `dev`, `prod`).
    pub fn embedded(name: &str) -> Option<Result<Self, StackError>> {
        crate::config::embedded(name).map(Self::from_yaml)
    }

    /// A deployment as every tool names it (`--stack`): a path ending in
    /// `.yaml` or `.yml` is read from disk; anything else is the name of a
    /// shipped deployment, whose compiled-in copy is used, so an installed
    /// `facectl` needs no checkout (cargo rebuilds the tools when a
    /// `stacks/*.yaml` changes). The one file this crate reads.
    pub fn load(stack: &str) -> Result<Self, crate::error::LoadError> {
        use crate::error::LoadError;
        let invalid = |source| LoadError::Invalid {
            stack: stack.to_string(),
            source,
        };
        if stack.ends_with(".yaml") || stack.ends_with(".yml") {
            let text = std::fs::read_to_string(stack).map_err(|source| LoadError::Read {
                path: stack.into(),
                source,
            })?;
            Self::from_yaml(&text).map_err(invalid)
        } else {
            Self::embedded(stack)
                .ok_or_else(|| LoadError::Unknown(stack.to_string()))?
                .map_err(invalid)
        }
    }

    /// Applies the defaults and checks every rule.
    pub fn resolve(file: &DeploymentFile) -> Result<Self, StackError> {
        check_name(&file.name)?;
        if file.regions.is_empty() {
            return Err(StackError::NoRegions);
        }
        if file.defaults.work_share.is_some() {
            return Err(StackError::WorkShareInDefaults);
        }
        let upload_prefix = file
            .upload_prefix
            .clone()
            .unwrap_or_else(|| defaults::UPLOAD_PREFIX.into());
        if upload_prefix.is_empty()
            || !upload_prefix.ends_with('/')
            || upload_prefix.starts_with('/')
        {
            return Err(StackError::InvalidValue {
                field: "upload_prefix",
                value: upload_prefix,
                reason: "must be a non-empty key prefix ending in '/'",
            });
        }
        let default_collection = file
            .default_collection
            .clone()
            .unwrap_or_else(|| defaults::DEFAULT_COLLECTION.into());
        if default_collection.is_empty() || default_collection.contains('/') {
            return Err(StackError::InvalidValue {
                field: "default_collection",
                value: default_collection,
                reason: "must be a non-empty name without '/'",
            });
        }
        if let Some(email) = &file.alarm_email
            && (email.len() > 254 || email.split('@').filter(|p| !p.is_empty()).count() != 2)
        {
            return Err(StackError::InvalidValue {
                field: "alarm_email",
                value: email.clone(),
                reason: "must be an e-mail address",
            });
        }
        let shares = work_shares(&file.regions)?;
        let mut regions = Vec::with_capacity(file.regions.len());
        for ((region, settings), work_share) in file.regions.iter().zip(shares) {
            regions.push(resolve_region(
                region,
                &file.defaults,
                settings,
                work_share,
            )?);
        }
        let mut tags = BTreeMap::from([
            ("face:stack".to_string(), file.name.clone()),
            ("project".to_string(), "face-recognition".to_string()),
        ]);
        tags.extend(file.tags.clone());
        Ok(Deployment {
            name: file.name.clone(),
            tags,
            upload_prefix,
            default_collection,
            production: file.production,
            alarm_email: file.alarm_email.clone(),
            regions,
        })
    }

    /// The plan of one region, if the deployment lists it.
    pub fn region(&self, region: &str) -> Option<&RegionPlan> {
        self.regions.iter().find(|r| r.region == region)
    }
}

fn check_name(name: &str) -> Result<(), StackError> {
    let ok = (1..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(StackError::InvalidName(name.into()))
    }
}

fn check_region(region: &str) -> Result<(), StackError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(StackError::InvalidRegion(region.into()))
    }
}

/// Explicit shares are kept; regions without one split the rest equally.
fn work_shares(regions: &BTreeMap<String, RegionSettings>) -> Result<Vec<f64>, StackError> {
    let mut explicit = 0.0;
    let mut unset = 0usize;
    for (region, s) in regions {
        match s.work_share {
            Some(v) if !(0.0..=1.0).contains(&v) => {
                return Err(StackError::WorkShareOutOfRange {
                    region: region.clone(),
                    value: v,
                });
            }
            Some(v) => explicit += v,
            None => unset += 1,
        }
    }
    let rest = 1.0 - explicit;
    if (unset == 0 && rest.abs() > WORK_SHARE_TOLERANCE) || rest < -WORK_SHARE_TOLERANCE {
        return Err(StackError::WorkSharesDoNotSum { sum: explicit });
    }
    let each = if unset == 0 {
        0.0
    } else {
        rest.max(0.0) / unset as f64
    };
    Ok(regions
        .values()
        .map(|s| s.work_share.unwrap_or(each))
        .collect())
}

fn resolve_region(
    region: &str,
    shared: &RegionSettings,
    own: &RegionSettings,
    work_share: f64,
) -> Result<RegionPlan, StackError> {
    check_region(region)?;
    let mut functions = BTreeMap::new();
    for function in FunctionName::ALL {
        functions.insert(function, resolve_function(region, function, shared, own)?);
    }

    let log_retention_days = own
        .log_retention_days
        .or(shared.log_retention_days)
        .unwrap_or(defaults::LOG_RETENTION_DAYS);
    if !LOG_RETENTION_VALUES.contains(&log_retention_days) {
        return Err(StackError::InvalidLogRetention {
            region: region.into(),
            value: log_retention_days,
        });
    }

    // The work queue feeds `recognize`; its visibility must cover 6 of its runs.
    let consumer = FunctionName::Recognize;
    let consumer_timeout_s = functions[&consumer].timeout_s;
    let minimum_visibility_s = defaults::VISIBILITY_TIMEOUT_FACTOR * consumer_timeout_s;
    let visibility_timeout_s = own
        .visibility_timeout_s
        .or(shared.visibility_timeout_s)
        .unwrap_or(minimum_visibility_s);
    if visibility_timeout_s < minimum_visibility_s {
        return Err(StackError::VisibilityTooShort {
            region: region.into(),
            function: consumer,
            visibility_s: visibility_timeout_s,
            timeout_s: consumer_timeout_s,
        });
    }
    let queue_setting =
        |setting, value: u32, min, max| in_range(region, "work-queue", setting, value, min, max);
    // SQS's ceiling on a visibility timeout is 12 hours.
    queue_setting("visibility_timeout_s", visibility_timeout_s, 0, 43_200)?;
    let max_receive_count = own
        .max_receive_count
        .or(shared.max_receive_count)
        .unwrap_or(defaults::MAX_RECEIVE_COUNT);
    queue_setting("max_receive_count", max_receive_count, 1, 1000)?;
    let batch_size = own
        .batch_size
        .or(shared.batch_size)
        .unwrap_or(defaults::BATCH_SIZE);
    // Above 10, SQS mappings require a batching window; we run none.
    queue_setting("batch_size", batch_size, 1, 10)?;

    let noncurrent_version_expiration_days = own
        .noncurrent_version_expiration_days
        .or(shared.noncurrent_version_expiration_days)
        .unwrap_or(defaults::NONCURRENT_VERSION_EXPIRATION_DAYS);
    in_range(
        region,
        "data-bucket",
        "noncurrent_version_expiration_days",
        noncurrent_version_expiration_days,
        1,
        36_500,
    )?;

    let api_rate_per_s = own
        .api
        .rate_per_s
        .or(shared.api.rate_per_s)
        .unwrap_or(defaults::API_RATE_PER_S);
    in_range(region, "api", "rate_per_s", api_rate_per_s, 1, 10_000)?;
    let api_burst = own
        .api
        .burst
        .or(shared.api.burst)
        .unwrap_or(defaults::API_BURST);
    in_range(region, "api", "burst", api_burst, 1, 5_000)?;

    Ok(RegionPlan {
        region: region.into(),
        work_share,
        functions,
        log_retention_days,
        work_queue: WorkQueueConfig {
            visibility_timeout_s,
            max_receive_count,
            batch_size,
        },
        noncurrent_version_expiration_days,
        point_in_time_recovery: own
            .point_in_time_recovery
            .or(shared.point_in_time_recovery)
            .unwrap_or(false),
        xray_tracing: own.xray_tracing.or(shared.xray_tracing).unwrap_or(false),
        api: ApiConfig {
            rate_per_s: api_rate_per_s,
            burst: api_burst,
        },
    })
}

fn resolve_function(
    region: &str,
    function: FunctionName,
    shared: &RegionSettings,
    own: &RegionSettings,
) -> Result<FunctionConfig, StackError> {
    let none = FunctionSettings::default();
    let shared_fn = shared.functions.get(&function).unwrap_or(&none);
    let own_fn = own.functions.get(&function).unwrap_or(&none);
    // Most specific first: region+function, region, defaults+function, defaults.
    let layers = [
        settings_of(own_fn),
        settings_of_region(own),
        settings_of(shared_fn),
        settings_of_region(shared),
    ];
    let pick = |get: fn(&FunctionSettings) -> Option<u32>| layers.iter().find_map(get);
    // A function with a built-in default of its own (the authorizer's
    // memory, the API's timeouts) takes only its per-function settings for
    // that value: region-wide ones are sized for the face functions.
    let own_layers = [&layers[0], &layers[2]];
    let memory_mib = match defaults::memory_mib_of(function) {
        Some(d) => own_layers.iter().find_map(|s| s.memory_mib).unwrap_or(d),
        None => pick(|s| s.memory_mib).unwrap_or(defaults::MEMORY_MIB),
    };
    let timeout_s = match defaults::timeout_s_of(function) {
        Some(d) => own_layers.iter().find_map(|s| s.timeout_s).unwrap_or(d),
        None => pick(|s| s.timeout_s).unwrap_or(defaults::TIMEOUT_S),
    };
    let architecture_name = layers
        .iter()
        .find_map(|s| s.architecture.clone())
        .unwrap_or_else(|| Architecture::Arm64.as_str().into());
    let architecture =
        Architecture::parse(&architecture_name).ok_or_else(|| StackError::UnknownArchitecture {
            region: region.into(),
            function,
            value: architecture_name,
        })?;
    let reserved_concurrency = pick(|s| s.reserved_concurrency);
    let max_concurrency = pick(|s| s.max_concurrency);

    let name = function.as_str();
    in_range(region, name, "memory_mib", memory_mib, 128, 10_240)?;
    let max_timeout_s = if function == FunctionName::Api {
        defaults::API_TIMEOUT_S
    } else {
        900
    };
    in_range(region, name, "timeout_s", timeout_s, 1, max_timeout_s)?;
    if let Some(r) = reserved_concurrency {
        in_range(region, name, "reserved_concurrency", r, 1, 100_000)?;
    }
    if let Some(m) = max_concurrency {
        in_range(region, name, "max_concurrency", m, 2, 1000)?;
        if let Some(r) = reserved_concurrency
            && m > r
        {
            return Err(StackError::MaxAboveReserved {
                region: region.into(),
                function,
                max: m,
                reserved: r,
            });
        }
    }
    Ok(FunctionConfig {
        memory_mib,
        timeout_s,
        architecture,
        reserved_concurrency,
        max_concurrency,
    })
}

fn settings_of(s: &FunctionSettings) -> FunctionSettings {
    s.clone()
}

fn settings_of_region(s: &RegionSettings) -> FunctionSettings {
    FunctionSettings {
        memory_mib: s.memory_mib,
        timeout_s: s.timeout_s,
        architecture: s.architecture.clone(),
        reserved_concurrency: s.reserved_concurrency,
        max_concurrency: s.max_concurrency,
    }
}

fn in_range(
    region: &str,
    function: &str,
    setting: &'static str,
    value: u32,
    min: u32,
    max: u32,
) -> Result<(), StackError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(StackError::OutOfRange {
            region: region.into(),
            function: function.into(),
            setting,
            value: value.into(),
            min: min.into(),
            max: max.into(),
        })
    }
}
