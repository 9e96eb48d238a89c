//! What `cargo xtask deploy` writes per region (`<state dir>/<region>.json`)
//! and the other commands (smoke-test, the demo's scan, `facectl
//! scan-video --stack`) read back. Pure: callers do the file I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The local gateway's port (`cargo xtask serve`) unless
/// `$FACE_LOCAL_API_PORT` ([`face_contracts::env::LOCAL_API_PORT`]) names
/// another.
pub const LOCAL_API_PORT: u16 = 8450;

/// The port of the local gateway, from the value of
/// `$FACE_LOCAL_API_PORT` if set (callers read the environment).
pub fn local_api_port(env_value: Option<&str>) -> Result<u16, RecordError> {
    match env_value {
        None => Ok(LOCAL_API_PORT),
        Some(v) => v
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| RecordError::BadPort(v.to_string())),
    }
}

/// The local stack's API base URL: the local gateway on loopback, serving
/// the stage path like API Gateway does (`http://127.0.0.1:8450/live`).
pub fn local_api_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{}", face_contracts::api::STAGE)
}

/// One region's deployed stack and its CloudFormation outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRecord {
    pub stack: String,
    pub account: String,
    pub region: String,
    /// Output key ([`crate::outputs`]) → value.
    pub outputs: BTreeMap<String, String>,
    /// The HTTPS API's base URL: the `ApiUrl` output on AWS,
    /// [`local_api_url`] for the local stack. Absent in records written
    /// before the API existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a deploy record: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("{region}: the deploy outputs lack {key} (redeploy)")]
    MissingOutput { region: String, key: String },
    #[error("{var}={0:?} is not a port (1-65535)", var = face_contracts::env::LOCAL_API_PORT)]
    BadPort(String),
    #[error("{region}: the deploy record has no api_url (redeploy)")]
    MissingApiUrl { region: String },
}

/// Where deploy keeps its state (records, the local stack's moto and
/// function logs): `$FACE_DEPLOY_DIR`, else `target/deploy`. Relative
/// paths are the caller's to anchor (xtask: the checkout; facectl: the
/// working directory).
pub fn deploy_dir() -> std::path::PathBuf {
    std::env::var_os(face_contracts::env::DEPLOY_DIR)
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || std::path::Path::new("target").join("deploy"),
            std::path::PathBuf::from,
        )
}

impl DeployRecord {
    /// The record's file name in the state directory.
    pub fn file_name(region: &str) -> String {
        format!("{region}.json")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The API's base URL, or which region lacks it.
    pub fn api_url(&self) -> Result<&str, RecordError> {
        self.api_url
            .as_deref()
            .ok_or_else(|| RecordError::MissingApiUrl {
                region: self.region.clone(),
            })
    }

    /// The output `key`, or which region lacks it.
    pub fn output(&self, key: &str) -> Result<&str, RecordError> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| RecordError::MissingOutput {
                region: self.region.clone(),
                key: key.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_names_a_missing_output() {
        let record = DeployRecord {
            stack: "face-dev".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            outputs: BTreeMap::from([(
                crate::outputs::DATA_BUCKET_NAME.to_string(),
                "face-dev-data".to_string(),
            )]),
            api_url: None,
        };
        // An old record (no api_url) reads, and writes no api_url back.
        assert!(
            !String::from_utf8(record.to_json())
                .unwrap()
                .contains("api_url")
        );
        assert_eq!(
            record.api_url().unwrap_err().to_string(),
            "eu-west-1: the deploy record has no api_url (redeploy)"
        );
        let again = DeployRecord::from_json(&record.to_json()).unwrap();
        assert_eq!(again, record);
        assert_eq!(
            again.output(crate::outputs::DATA_BUCKET_NAME).unwrap(),
            "face-dev-data"
        );
        let missing = again.output(crate::outputs::WORK_QUEUE_URL).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "eu-west-1: the deploy outputs lack WorkQueueUrl (redeploy)"
        );
        assert!(matches!(
            DeployRecord::from_json(br#"{"outputs": {}}"#),
            Err(RecordError::Parse(_))
        ));
        assert_eq!(DeployRecord::file_name("eu-west-1"), "eu-west-1.json");
    }

    #[test]
    fn the_api_url_round_trips_and_the_local_one_is_the_local_gateway() {
        let record = DeployRecord {
            stack: "face-local".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            outputs: BTreeMap::new(),
            api_url: Some(local_api_url(LOCAL_API_PORT)),
        };
        let again = DeployRecord::from_json(&record.to_json()).unwrap();
        assert_eq!(again.api_url().unwrap(), "http://127.0.0.1:8450/live");
        assert_eq!(local_api_port(None).unwrap(), 8450);
        assert_eq!(local_api_port(Some("9000")).unwrap(), 9000);
        for bad in ["0", "x", "70000", ""] {
            let err = local_api_port(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(face_contracts::env::LOCAL_API_PORT), "{err}");
        }
    }
}
