//! Video scan jobs, the parts every function shares: starting a job (the
//! recognize function on an MP4 upload, the api on `POST /v1/scans`) with
//! its plan request (`face_contracts::messages::ScanMessage`), and the job
//! as the API shows it. Planning and
//! scanning are the `scan-worker`'s (it links the video decoder).

use std::sync::Arc;

use face_api::jobs::{JobStatus, ScanJobResponse};
use face_contracts::messages::ScanMessage;

use crate::error::ServiceError;
use crate::storage::{JobRecord, JobsTable, WorkSender};

/// Where video jobs are recorded and queued.
#[derive(Clone)]
pub struct VideoIntake {
    pub jobs: Arc<dyn JobsTable>,
    pub queue: Arc<dyn WorkSender>,
}

impl std::fmt::Debug for VideoIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoIntake")
    }
}

/// Whether `bytes` start like an ISO base media file (MP4, MOV): a box
/// header whose type is `ftyp`.
pub fn looks_like_mp4(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[4..8] == b"ftyp"
}

impl VideoIntake {
    /// Records the job of this video version (once) and, while it is
    /// still queued, asks the planner to plan it. Repeating this for the
    /// same version is harmless: the job id is the version's, and the
    /// planner plans a job only once.
    pub async fn start(&self, job: JobRecord) -> Result<JobRecord, ServiceError> {
        let job = if self.jobs.create_if_absent(&job).await? {
            job
        } else {
            self.jobs.get(&job.job_id).await?.unwrap_or(job)
        };
        if job.status == JobStatus::Queued {
            self.queue
                .send(
                    &ScanMessage::Plan {
                        job_id: job.job_id.clone(),
                    }
                    .to_body(),
                )
                .await?;
        }
        tracing::info!(job_id = %job.job_id, key = %job.key, status = job.status.as_str(), "video job");
        Ok(job)
    }
}

/// The job as `GET /v1/scans/{job_id}` shows it: while it runs, from the
/// jobs table; once it ended, the result its last worker wrote (with the
/// timeline) in the results table.
pub async fn job_status<R: crate::storage::ResultsTable + ?Sized>(
    jobs: &dyn JobsTable,
    results: &R,
    job_id: &str,
) -> Result<Option<ScanJobResponse>, ServiceError> {
    let Some(job) = jobs.get(job_id).await? else {
        return Ok(None);
    };
    if job.status.is_final()
        && let Some(record) = results.get(&job.video_result_id).await?
    {
        let message: crate::recognize::ResultMessage = serde_json::from_str(&record.message)
            .map_err(|e| ServiceError::CorruptStore {
                location: record.result_id.clone(),
                message: e.to_string(),
            })?;
        if let Some(view) = message.job {
            return Ok(Some(view));
        }
    }
    Ok(Some(job_view(&job)))
}

/// The job as `GET /v1/scans/{job_id}` shows it while it runs (the
/// finished job's result adds the timeline).
pub fn job_view(job: &JobRecord) -> ScanJobResponse {
    ScanJobResponse {
        job_id: job.job_id.clone(),
        status: job.status,
        collection: job.collection.clone(),
        video_key: job.key.clone(),
        video_result_id: job.video_result_id.clone(),
        chunks_done: job.chunks_done.len() as u32,
        chunks_total: job.chunks_total,
        frames: job.frames,
        duration_s: job.duration_s,
        created_at: job.created_at.clone(),
        finished_at: job.finished_at.clone(),
        error: job.error.clone(),
        failed_chunks: job.chunks_failed.iter().copied().collect(),
        timeline: None,
        montage_key: None,
        result_key: None,
        usage: None,
        frames_matched: None,
        people: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryJobs, MemoryWork};

    #[tokio::test]
    async fn a_video_version_is_one_job_planned_while_queued() {
        let jobs = MemoryJobs::default();
        let queue = MemoryWork::default();
        let intake = VideoIntake {
            jobs: Arc::new(jobs.clone()),
            queue: Arc::new(queue.clone()),
        };
        let record = JobRecord::queued("b", "uploads/c/v.mp4", "\"e1\"", "c", None);
        let first = intake.start(record.clone()).await.unwrap();
        let again = intake.start(record.clone()).await.unwrap();
        assert_eq!(first.job_id, again.job_id);
        assert_eq!(jobs.all().len(), 1);
        assert_eq!(first.video_result_id, "s3://b/uploads/c/v.mp4#e1");
        let plan = ScanMessage::Plan {
            job_id: first.job_id.clone(),
        };
        // Still queued: the plan request is repeated (the planner dedupes).
        assert_eq!(queue.take(), vec![plan.to_body(), plan.to_body()]);

        jobs.finish(&first.job_id, JobStatus::Failed, Some("x"))
            .await
            .unwrap();
        intake.start(record).await.unwrap();
        assert!(
            queue.take().is_empty(),
            "a finished job is not planned again"
        );
        assert!(looks_like_mp4(b"\0\0\0\x18ftypisom\0\0\0\0"));
        assert!(!looks_like_mp4(b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01"));
    }
}
