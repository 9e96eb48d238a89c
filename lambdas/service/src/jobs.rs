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
    /// same version is harmless: the job id is the version's, and only one
    /// plan message moves the job from `queued` to `running`
    /// (`JobsTable::set_planned`); the others send no chunk (unless
    /// redelivered: one whose own sends may have failed part way).
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

/// The job as `GET /v1/scans/{job_id}` shows it: once it ended, the result
/// its last worker wrote (with the timeline) in the results table; before,
/// from the jobs table. The result is looked for whatever the jobs table
/// says: the last worker writes and delivers the result before it marks
/// the job ended there, and a client that already has the result must not
/// read the job as still running in between.
pub async fn job_status<R: crate::storage::ResultsTable + ?Sized>(
    jobs: &dyn JobsTable,
    results: &R,
    job_id: &str,
) -> Result<Option<ScanJobResponse>, ServiceError> {
    let Some(job) = jobs.get(job_id).await? else {
        return Ok(None);
    };
    if let Some(record) = results.get(&job.video_result_id).await? {
        let message: crate::recognize::ResultMessage = serde_json::from_str(&record.message)
            .map_err(|e| ServiceError::CorruptStore {
                location: record.result_id.clone(),
                message: e.to_string(),
            })?;
        if let Some(view) = message.job.filter(|view| view.status.is_final()) {
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
    async fn a_written_result_is_the_job_even_before_the_jobs_table_says_it_ended() {
        use crate::memory::MemoryResults;
        use crate::storage::{ResultRecord, ResultStatus, ResultsTable};

        let jobs = MemoryJobs::default();
        let results = MemoryResults::default();
        let job = JobRecord::queued("b", "uploads/c/v.mp4", "\"e1\"", "c", None);
        jobs.create_if_absent(&job).await.unwrap();
        let running = job_status(&jobs, &results, &job.job_id).await.unwrap();
        let running = running.expect("the job");
        assert!(!running.status.is_final() && running.timeline.is_none());

        // The last worker's result, written and delivered; the jobs table
        // is marked after that.
        let done = ScanJobResponse {
            status: JobStatus::Done,
            timeline: Some(serde_json::json!([{"person": "p"}])),
            ..running.clone()
        };
        let message = crate::recognize::ResultMessage {
            result_id: job.video_result_id.clone(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            collection: job.collection.clone(),
            status: ResultStatus::Ok,
            error: None,
            result: None,
            job: Some(done.clone()),
            uploaded_at: None,
            finished_at: None,
        };
        let record = ResultRecord {
            result_id: job.video_result_id.clone(),
            bucket: job.bucket.clone(),
            key: job.key.clone(),
            collection: job.collection.clone(),
            status: ResultStatus::Ok,
            message: serde_json::to_string(&message).unwrap(),
            delivered: true,
            created_at: "2026-12-02T00:00:00Z".into(),
        };
        assert!(results.put_if_absent(&record).await.unwrap());
        assert_eq!(
            job_status(&jobs, &results, &job.job_id).await.unwrap(),
            Some(done.clone())
        );
        jobs.finish(&job.job_id, JobStatus::Done, None)
            .await
            .unwrap();
        assert_eq!(
            job_status(&jobs, &results, &job.job_id).await.unwrap(),
            Some(done)
        );
    }

    #[tokio::test]
    async fn a_video_version_is_one_job_asked_to_be_planned_while_queued() {
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
        // Still queued: the plan request is repeated; the planner's
        // conditional `set_planned` lets only one of them queue chunks.
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
