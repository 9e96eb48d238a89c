//! The bodies of the scan queue, and the subject of the results topic.
//!
//! The results queue's and the results topic's bodies are
//! `face_service::recognize::ResultMessage` (they embed `face-core`'s
//! shapes, so they live beside them); their schema is
//! `schemas/result-message.schema.json`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One message on the scan queue: sent by `recognize` and `api` (plan
/// requests) and by `scan-worker` itself (chunks), read by `scan-worker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScanMessage {
    /// Read the job's video header, plan its chunks, queue one message each.
    Plan {
        /// The job (32 hex digits).
        job_id: String,
    },
    /// Scan frames `[start_frame, end_frame)` of the job's video.
    Chunk {
        /// The job (32 hex digits).
        job_id: String,
        /// The chunk's number, from 0.
        chunk: u32,
        /// The first frame, keyframe-aligned.
        start_frame: u64,
        /// One past the last frame.
        end_frame: u64,
    },
}

impl ScanMessage {
    pub fn job_id(&self) -> &str {
        match self {
            ScanMessage::Plan { job_id } | ScanMessage::Chunk { job_id, .. } => job_id,
        }
    }

    pub fn to_body(&self) -> String {
        // A derived Serialize of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The results topic's subject of an ended job: `face scan <job_id>
/// <status>` (`ok`, `bad_input` or `failed`).
pub fn job_ended_subject(job_id: &str, status: &str) -> String {
    format!("face scan {job_id} {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_messages_are_tagged() {
        let plan = ScanMessage::Plan { job_id: "j".into() };
        assert_eq!(plan.to_body(), r#"{"type":"plan","job_id":"j"}"#);
        let chunk: ScanMessage = serde_json::from_str(
            r#"{"type":"chunk","job_id":"j","chunk":2,"start_frame":600,"end_frame":900}"#,
        )
        .unwrap();
        assert_eq!(chunk.job_id(), "j");
        assert_eq!(
            serde_json::from_str::<ScanMessage>(&chunk.to_body()).unwrap(),
            chunk
        );
        assert!(
            serde_json::from_str::<ScanMessage>(r#"{"type":"plan","job_id":"j","x":1}"#).is_err()
        );
    }
}
