//! Video scan jobs: what `POST /v1/scans` takes, what `GET /v1/scans/{job_id}`
//! and the results queue's job messages carry, and the job id format.
//!
//! A job scans one version of one MP4 in the stack's bucket for the people
//! of a collection. It starts when the MP4 is uploaded under
//! `<upload_prefix><collection>/` or is submitted with `POST /v1/scans`; the
//! job id is derived from the video's result id (`s3://bucket/key#version`),
//! so the same version submitted twice is one job. What a job writes lives
//! under `scans/<job_id>/` (`face_contracts::layout::job_prefix`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Hex digits of a job id.
pub const JOB_ID_HEX_LEN: usize = 32;

/// A video of at most this many seconds is a "short clip" (the camera
/// case): its job message also carries every frame with a match.
pub const SHORT_CLIP_MAX_S: f64 = 10.0;

/// The job id of a video version: the first 32 hex digits of the SHA-256 of
/// its result id (`s3://<bucket>/<key>#<version id or etag>`).
pub fn job_id_for(video_result_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(video_result_id.as_bytes()));
    digest[..JOB_ID_HEX_LEN].to_string()
}

/// Whether `id` has the form [`job_id_for`] gives.
pub fn is_job_id(id: &str) -> bool {
    id.len() == JOB_ID_HEX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `POST /v1/scans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The collection whose people are looked for.
    pub collection: String,
    /// The MP4's key in the stack's bucket (e.g. a `POST /v1/uploads` key).
    pub s3_key: String,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Recorded; its chunks are being planned.
    Queued,
    /// Chunks planned and being scanned.
    Running,
    /// Every chunk scanned once; `timeline` is there.
    Done,
    /// The video could not be read, or chunks kept failing: `error` says why.
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }

    /// Done or failed: nothing will change any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// Lambda usage of a job's workers, measured by each worker.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct JobUsage {
    /// Chunk invocations whose result was kept (one per chunk).
    pub invocations: u64,
    pub gb_s: f64,
    pub usd: f64,
}

/// `POST /v1/scans` (200) and `GET /v1/scans/{job_id}`; also the `job` of a
/// results queue message when the job ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanJobResponse {
    pub job_id: String,
    pub status: JobStatus,
    pub collection: String,
    /// The video's key in the stack's bucket.
    pub video_key: String,
    /// The video version's result id (`s3://bucket/key#version`).
    pub video_result_id: String,
    /// Chunks scanned so far.
    pub chunks_done: u32,
    /// Known once the chunks are planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Why the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Chunks that failed every attempt (then in the dead-letter queue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_chunks: Vec<u32>,
    /// When done: the appearances, as `facectl scan-video --json`'s
    /// `timeline`: `[{person, start_s, end_s, first_frame, last_frame,
    /// frames_seen, best_distance, best_frame}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<serde_json::Value>,
    /// When done and someone appeared: the montage's key in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub montage_key: Option<String>,
    /// When done: the whole result (this object with `timeline` and, for a
    /// short clip, `frames_matched`) as JSON in the bucket; queue and topic
    /// messages leave those out when they would not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    /// When done: what the workers used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<JobUsage>,
    /// When done, for a short clip (at most [`SHORT_CLIP_MAX_S`]): every
    /// frame with a named face: `[{frame, pts_s, faces: [{bbox, confidence,
    /// person, distance, ...}]}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_matched: Option<serde_json::Value>,
    /// When done: the people table's record of each person in the timeline
    /// (`{attributes, face_count}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub people: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_stable_and_checked() {
        let id = job_id_for("s3://b/uploads/c/v.mp4#v1");
        assert_eq!(id.len(), JOB_ID_HEX_LEN);
        assert!(is_job_id(&id));
        assert_eq!(id, job_id_for("s3://b/uploads/c/v.mp4#v1"));
        assert_ne!(id, job_id_for("s3://b/uploads/c/v.mp4#v2"));
        assert!(!is_job_id("../x"));
        assert!(!is_job_id(&id.to_uppercase()));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(JobStatus::parse("stuck"), None);
    }
}
