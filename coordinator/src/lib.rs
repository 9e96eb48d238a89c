//! The scan coordinator's scheduling core: run many independent jobs (scan
//! chunks) on the workers of several regions.
//!
//! - Capacity: each region runs at most `max_in_flight` jobs at once (its
//!   Lambda concurrency, from the stacks and the account's quota). Every
//!   free slot pulls the next job from one shared queue, so each region's
//!   share of the work follows its capacity, and a slow region never holds
//!   jobs a fast one could run.
//! - Retries: a retryable failure puts the job back with exponential
//!   backoff, up to `max_attempts`; a throttled attempt
//!   ([`WorkerError::Throttled`]) goes back too, with its own budget
//!   (`max_throttled`), and counts against neither the job nor the region.
//! - Regions fail: after `region_failure_threshold` consecutive failures (or
//!   one [`WorkerError::RegionDown`]) a region takes no more jobs, and its
//!   failed jobs go back to the queue for the others; the last region up
//!   is only taken out by `RegionDown`.
//! - Exactly once: a job's result is kept once, by job id; a job is only
//!   re-queued after its attempt failed, so no result is counted twice, and
//!   the run fails loudly if any job is left without a result.
//!
//! Workers are behind [`Worker`], so the same core drives Lambda invokes,
//! emulated functions and in-process fakes (the tests).
//!
//! On top of it, the client-side video scan on a deployed stack (what
//! `facectl scan-video --stack` runs): [`deployment`] (regions, buckets,
//! functions and capacities from the deployment and deploy's records),
//! [`cloud`] (staging, metering, the frames checked once) and
//! [`video_scan`] (all of it, merged into a timeline).

pub mod cloud;
pub mod deployment;
mod lambda;
mod schedule;
pub mod video_scan;

pub use lambda::{LambdaTarget, LambdaWorker, classify_function_error};

pub use schedule::{
    FanOutError, FanOutReport, JobResult, Progress, Region, RegionReport, RetryPolicy, Worker,
    WorkerError, fan_out,
};
