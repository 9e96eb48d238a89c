//! What `cargo xtask deploy` writes per region (`<state dir>/<region>.json`)
//! and the other commands (smoke-test, the demo's scan, `facectl
//! scan-video --stack`) read back. Pure: callers do the file I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One region's deployed stack and its CloudFormation outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRecord {
    pub stack: String,
    pub account: String,
    pub region: String,
    /// Output key ([`crate::outputs`]) → value.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a deploy record: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("{region}: the deploy outputs lack {key} (redeploy)")]
    MissingOutput { region: String, key: String },
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
        };
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
}
