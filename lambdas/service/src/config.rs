//! The function's settings, read once from the environment the stack sets
//! (see lambdas/README.md for the table).

use std::path::PathBuf;

use face_contracts::env::{self, defaults};

use crate::error::ServiceError;

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `FACE_BUCKET`: collections, uploads, frames.
    pub bucket: String,
    /// `FACE_BUCKET_OWNER`: the account id every S3 call expects to own
    /// the bucket (`ExpectedBucketOwner`); the stack sets it. Unset (tests,
    /// hand-run functions): no owner is checked.
    pub bucket_owner: Option<String>,
    /// `FACE_PEOPLE_TABLE`.
    pub people_table: String,
    /// `FACE_RESULTS_TABLE`: only the recognize function writes results.
    pub results_table: Option<String>,
    /// `FACE_RESULTS_QUEUE_URL`.
    pub results_queue_url: Option<String>,
    /// `FACE_API_KEYS_TABLE`: the api function and the authorizer.
    pub api_keys_table: Option<String>,
    /// `FACE_JOBS_TABLE`: video scan jobs (recognize, scan-worker, api).
    pub jobs_table: Option<String>,
    /// `FACE_SCAN_QUEUE_URL`: where jobs are planned and chunks queued.
    pub scan_queue_url: Option<String>,
    /// `FACE_RESULTS_TOPIC_ARN`: finished jobs are published there.
    pub results_topic_arn: Option<String>,
    /// `FACE_SCAN_MAX_RECEIVE_COUNT`: the scan queue's `maxReceiveCount`
    /// (a chunk failing its last receive fails its job), default 3.
    pub scan_max_receive_count: u32,
    /// `FACE_UPLOAD_PREFIX`, default `uploads/`.
    pub upload_prefix: String,
    /// `FACE_DEFAULT_COLLECTION`, default `default`.
    pub default_collection: String,
    /// `FACE_MODELS_DIR`, default `models/` beside the executable.
    pub models_dir: PathBuf,
}

impl ServiceConfig {
    pub fn from_env() -> Result<Self, ServiceError> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_lookup(|name| std::env::var(name).ok(), exe_dir)
    }

    /// Builds the config from any variable lookup (tests pass a map).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        exe_dir: PathBuf,
    ) -> Result<Self, ServiceError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| {
            get(name).ok_or_else(|| {
                ServiceError::Config(format!("environment variable {name} is not set"))
            })
        };
        let mut upload_prefix = get(env::UPLOAD_PREFIX).unwrap_or(defaults::UPLOAD_PREFIX.into());
        if !upload_prefix.ends_with('/') {
            upload_prefix.push('/');
        }
        let default_collection =
            get(env::DEFAULT_COLLECTION).unwrap_or(defaults::DEFAULT_COLLECTION.into());
        crate::collections::validate_collection_name(&default_collection)?;
        let bucket_owner = get(env::BUCKET_OWNER);
        if let Some(owner) = &bucket_owner
            && !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ServiceError::Config(format!(
                "{} must be a 12-digit account id, not {owner:?}",
                env::BUCKET_OWNER
            )));
        }
        Ok(Self {
            bucket: required(env::BUCKET)?,
            bucket_owner,
            people_table: required(env::PEOPLE_TABLE)?,
            results_table: get(env::RESULTS_TABLE),
            results_queue_url: get(env::RESULTS_QUEUE_URL),
            api_keys_table: get(env::API_KEYS_TABLE),
            jobs_table: get(env::JOBS_TABLE),
            scan_queue_url: get(env::SCAN_QUEUE_URL),
            results_topic_arn: get(env::RESULTS_TOPIC_ARN),
            scan_max_receive_count: match get(env::SCAN_MAX_RECEIVE_COUNT) {
                None => defaults::SCAN_MAX_RECEIVE_COUNT,
                Some(v) => v.parse().map_err(|_| {
                    ServiceError::Config(format!(
                        "{} must be a positive integer, not {v:?}",
                        env::SCAN_MAX_RECEIVE_COUNT
                    ))
                })?,
            },
            upload_prefix,
            default_collection,
            models_dir: get(env::MODELS_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| exe_dir.join("models")),
        })
    }

    /// The results table and queue, which the recognize function needs.
    pub fn results(&self) -> Result<(&str, &str), ServiceError> {
        match (&self.results_table, &self.results_queue_url) {
            (Some(table), Some(queue)) => Ok((table, queue)),
            _ => Err(ServiceError::Config(format!(
                "{} and {} must be set",
                env::RESULTS_TABLE,
                env::RESULTS_QUEUE_URL
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ServiceConfig, ServiceError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_lookup(|k| map.get(k).cloned(), PathBuf::from("/var/task"))
    }

    #[test]
    fn defaults_and_required_variables() {
        let c = config(&[(env::BUCKET, "b"), (env::PEOPLE_TABLE, "p")]).unwrap();
        assert_eq!(c.upload_prefix, "uploads/");
        assert_eq!(c.default_collection, "default");
        assert_eq!(c.models_dir, PathBuf::from("/var/task/models"));
        assert!(c.results().is_err());
        assert_eq!(c.bucket_owner, None);

        let err = config(&[(env::PEOPLE_TABLE, "p")]).unwrap_err();
        assert!(err.to_string().contains(env::BUCKET), "{err}");
    }

    #[test]
    fn the_bucket_owner_is_an_account_id() {
        let base = [(env::BUCKET, "b"), (env::PEOPLE_TABLE, "p")];
        let owned = config(&[base[0], base[1], (env::BUCKET_OWNER, "123456789012")]).unwrap();
        assert_eq!(owned.bucket_owner.as_deref(), Some("123456789012"));
        for bad in ["12345", "12345678901x", "arn:aws:iam::123456789012:root"] {
            let err = config(&[base[0], base[1], (env::BUCKET_OWNER, bad)]).unwrap_err();
            assert!(err.to_string().contains(env::BUCKET_OWNER), "{bad}: {err}");
        }
    }

    #[test]
    fn prefix_gets_a_trailing_slash() {
        let c = config(&[
            (env::BUCKET, "b"),
            (env::PEOPLE_TABLE, "p"),
            (env::UPLOAD_PREFIX, "in"),
        ])
        .unwrap();
        assert_eq!(c.upload_prefix, "in/");
    }
}
