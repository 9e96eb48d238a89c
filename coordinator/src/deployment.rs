//! A deployed stack as the client-side scan sees it: the deployment
//! (`face_stacks::Deployment::load`), the outputs `cargo xtask deploy` wrote
//! per region, and from them each region's `scan-worker`, bucket, SDK
//! configuration and capacity (the tightest of the stack's limits and the
//! account's unreserved concurrency, `lambda:GetAccountSettings`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use face_sdk_config::{SdkConfig, region_config};
use face_stacks::{
    Architecture, DeployRecord, Deployment, FunctionName, LoadError, RecordError, outputs,
};
use thiserror::Error;

use crate::cloud::{ScanRegion, account_unreserved_concurrency, region_capacity};

#[derive(Debug, Error)]
pub enum DeploymentError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{} is missing: deploy the stack first (`cargo xtask deploy`)", .path.display())]
    MissingRecord {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}", .path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: RecordError,
    },
    #[error(transparent)]
    Output(RecordError),
    #[error("{region}: the deployment has no scan-worker")]
    NoScanWorker { region: String },
    #[error("{deployment} has none of the regions {wanted:?}")]
    NoRegions {
        deployment: String,
        wanted: Vec<String>,
    },
}

/// Where deploy writes a deployment's `<region>.json` records when no
/// other folder is named: `<deploy dir>/<deployment name>`
/// ([`face_stacks::deploy_dir`]).
pub fn default_outputs_dir(deployment: &Deployment) -> PathBuf {
    face_stacks::deploy_dir().join(&deployment.name)
}

/// The deploy record of `region` in `dir`.
pub fn read_record(dir: &Path, region: &str) -> Result<DeployRecord, DeploymentError> {
    let path = dir.join(DeployRecord::file_name(region));
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(source) => return Err(DeploymentError::MissingRecord { path, source }),
    };
    DeployRecord::from_json(&bytes).map_err(|source| DeploymentError::Record { path, source })
}

/// Where a region's scan-worker is invoked instead of AWS Lambda: a Lambda
/// API endpoint (the deployed function name is invoked there), or one
/// function's invocations URL, `<endpoint>/2015-03-31/functions/<name>/invocations`,
/// whose name is invoked instead. The Runtime Interface Emulator serves one
/// function and answers only to the name `function`, so a local run passes
/// its whole invocations URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEndpoint {
    pub url: String,
    pub function_name: Option<String>,
}

impl LambdaEndpoint {
    pub fn parse(url: &str) -> Self {
        let function = url
            .trim_end_matches('/')
            .strip_suffix("/invocations")
            .and_then(|rest| rest.rsplit_once("/2015-03-31/functions/"))
            .filter(|(base, name)| !base.is_empty() && !name.is_empty() && !name.contains('/'));
        match function {
            Some((base, name)) => Self {
                url: base.to_string(),
                function_name: Some(name.to_string()),
            },
            None => Self {
                url: url.to_string(),
                function_name: None,
            },
        }
    }
}

/// Which of a deployment's regions to scan on, and how to reach them.
#[derive(Debug, Clone, Default)]
pub struct RegionSelection {
    /// Where deploy wrote `<region>.json` [default: [`default_outputs_dir`]].
    pub outputs_dir: Option<PathBuf>,
    /// Only these regions [default: all of the deployment].
    pub regions: Vec<String>,
    /// Per region, a Lambda endpoint to invoke instead of AWS's (the
    /// Runtime Interface Emulator in local runs).
    pub lambda_endpoints: BTreeMap<String, LambdaEndpoint>,
    /// Caps every region's invocations in flight.
    pub max_in_flight: Option<u32>,
    /// The configuration every region's is derived from (its region
    /// replaced) [default: the standard chain: profile, credentials,
    /// `AWS_ENDPOINT_URL`].
    pub sdk: Option<SdkConfig>,
}

/// One region to scan on: its `scan-worker` as deployed and the SDK
/// configuration of its clients.
#[derive(Debug, Clone)]
pub struct DeployedRegion {
    pub region: ScanRegion,
    pub sdk: SdkConfig,
    /// The account deploy recorded: every S3 call on the region's bucket
    /// expects it to own the bucket (`ExpectedBucketOwner`).
    pub bucket_owner: String,
}

/// The selected regions of `deployment`, in the deployment's order: bucket
/// and function name from each region's deploy record, memory and
/// architecture from the deployment, capacity from [`region_capacity`]
/// (the account's unreserved concurrency asked of each region's Lambda
/// endpoint, except a single function's URL, which has no account).
pub async fn deployed_regions(
    deployment: &Deployment,
    select: &RegionSelection,
) -> Result<Vec<DeployedRegion>, DeploymentError> {
    let outputs_dir = select
        .outputs_dir
        .clone()
        .unwrap_or_else(|| default_outputs_dir(deployment));
    let mut regions = Vec::new();
    for plan in &deployment.regions {
        if !select.regions.is_empty() && !select.regions.contains(&plan.region) {
            continue;
        }
        let name = &plan.region;
        let record = read_record(&outputs_dir, name)?;
        let function = plan
            .functions
            .get(&FunctionName::ScanWorker)
            .ok_or_else(|| DeploymentError::NoScanWorker {
                region: name.clone(),
            })?;
        let sdk = region_config(select.sdk.as_ref(), name).await;
        let mut lambda = aws_sdk_lambda::config::Builder::from(&sdk);
        let endpoint = select.lambda_endpoints.get(name);
        if let Some(endpoint) = endpoint {
            lambda = lambda.endpoint_url(&endpoint.url);
        }
        // A single function's URL (the emulator) has no account behind it.
        let account = if endpoint.is_some_and(|e| e.function_name.is_some()) {
            None
        } else {
            account_unreserved_concurrency(&aws_sdk_lambda::Client::from_conf(lambda.build())).await
        };
        let bucket = record
            .output(outputs::DATA_BUCKET_NAME)
            .map_err(DeploymentError::Output)?
            .to_string();
        let function_name = match endpoint.and_then(|e| e.function_name.clone()) {
            Some(function) => function,
            None => record
                .output(&outputs::function_name(FunctionName::ScanWorker))
                .map_err(DeploymentError::Output)?
                .to_string(),
        };
        regions.push(DeployedRegion {
            region: ScanRegion {
                name: name.clone(),
                bucket,
                function_name,
                memory_mib: function.memory_mib,
                timeout_s: function.timeout_s,
                arm64: function.architecture == Architecture::Arm64,
                max_in_flight: region_capacity(
                    function.reserved_concurrency,
                    function.max_concurrency,
                    account,
                    select.max_in_flight,
                ),
            },
            sdk,
            bucket_owner: record.account.clone(),
        });
    }
    if regions.is_empty() {
        return Err(DeploymentError::NoRegions {
            deployment: deployment.name.clone(),
            wanted: select.regions.clone(),
        });
    }
    Ok(regions)
}

/// A deployed region's data bucket, for a region that is not scanned on
/// (the collection's source): its SDK configuration, bucket and owner.
pub async fn region_bucket(
    deployment: &Deployment,
    select: &RegionSelection,
    region: &str,
) -> Result<(SdkConfig, String, String), DeploymentError> {
    let outputs_dir = select
        .outputs_dir
        .clone()
        .unwrap_or_else(|| default_outputs_dir(deployment));
    let record = read_record(&outputs_dir, region)?;
    let bucket = record
        .output(outputs::DATA_BUCKET_NAME)
        .map_err(DeploymentError::Output)?
        .to_string();
    let sdk = region_config(select.sdk.as_ref(), region).await;
    Ok((sdk, bucket, record.account.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK_YAML: &str = "name: face-t
defaults:
  architecture: arm64
regions:
  us-east-1: {}
  eu-west-1: {}
";

    #[tokio::test]
    async fn regions_come_from_the_deployment_and_its_records() {
        let deployment = Deployment::from_yaml(STACK_YAML).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let record = |region: &str| DeployRecord {
            stack: "face-t".into(),
            account: "123456789012".into(),
            region: region.into(),
            outputs: [
                (outputs::DATA_BUCKET_NAME.to_string(), format!("b-{region}")),
                (
                    outputs::function_name(FunctionName::ScanWorker),
                    "face-t-scan-worker".to_string(),
                ),
            ]
            .into(),
            api_url: None,
        };
        std::fs::write(
            dir.path().join(DeployRecord::file_name("eu-west-1")),
            record("eu-west-1").to_json(),
        )
        .unwrap();
        // An emulated function: no account to ask for its quota, so no
        // network here.
        let endpoint =
            LambdaEndpoint::parse("http://127.0.0.1:1/2015-03-31/functions/function/invocations");
        let mut select = RegionSelection {
            outputs_dir: Some(dir.path().to_path_buf()),
            regions: vec!["eu-west-1".into()],
            lambda_endpoints: [("eu-west-1".to_string(), endpoint)].into(),
            max_in_flight: Some(3),
            sdk: Some(face_sdk_config::local_config("http://127.0.0.1:1", "us-east-1").await),
        };
        let regions = deployed_regions(&deployment, &select).await.unwrap();
        let worker = &deployment.region("eu-west-1").unwrap().functions[&FunctionName::ScanWorker];
        assert_eq!(regions.len(), 1);
        assert_eq!(
            regions[0].region,
            ScanRegion {
                name: "eu-west-1".into(),
                bucket: "b-eu-west-1".into(),
                function_name: "function".into(),
                memory_mib: worker.memory_mib,
                timeout_s: worker.timeout_s,
                arm64: true,
                max_in_flight: 3,
            }
        );
        let region = regions[0].sdk.region().map(|r| r.as_ref());
        assert_eq!(region, Some("eu-west-1"));

        // A region deploy has not written says so.
        select.regions = vec!["us-east-1".into()];
        let missing = deployed_regions(&deployment, &select).await;
        assert!(
            matches!(&missing, Err(DeploymentError::MissingRecord { path, .. }) if path.ends_with("us-east-1.json")),
            "{missing:?}"
        );
        select.regions = vec!["ap-south-1".into()];
        let none = deployed_regions(&deployment, &select).await;
        assert!(
            matches!(&none, Err(DeploymentError::NoRegions { deployment, .. }) if deployment == "face-t"),
            "{none:?}"
        );
    }

    #[test]
    fn an_invocations_url_names_the_function_to_invoke() {
        let rie = LambdaEndpoint::parse(
            "http://127.0.0.1:9001/2015-03-31/functions/function/invocations",
        );
        assert_eq!(rie.url, "http://127.0.0.1:9001");
        assert_eq!(rie.function_name.as_deref(), Some("function"));
        for api in [
            "http://127.0.0.1:9001",
            "https://lambda.eu-west-1.amazonaws.com/",
            "http://h/2015-03-31/functions//invocations",
        ] {
            assert_eq!(
                LambdaEndpoint::parse(api),
                LambdaEndpoint {
                    url: api.into(),
                    function_name: None
                }
            );
        }
    }
}
