//! The shared-queue scheduler (see the crate docs).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{Mutex, Notify};

/// One region's workers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    pub name: String,
    /// Jobs in flight at most (≥ 1).
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum WorkerError {
    /// The region has no capacity left just now (throttled): try again
    /// later. Not a failure of the job nor of the region: it neither uses
    /// up the job's attempts nor takes the region out.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A timeout, a crashed environment: try again.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The region cannot take work (endpoint unreachable, function
    /// missing): move its jobs elsewhere.
    #[error("region down: {0}")]
    RegionDown(String),
    /// The job itself is bad; retrying cannot help.
    #[error("job failed: {0}")]
    Fatal(String),
}

#[async_trait]
pub trait Worker<J, R>: Send + Sync {
    async fn run(&self, region: &str, job: &J) -> Result<R, WorkerError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Attempts per job, the first included.
    pub max_attempts: u32,
    /// Backoff before attempt n (n ≥ 2) is `base * 2^(n-2)`, capped.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Consecutive failures after which a region takes no more jobs
    /// (never the last one up: its retryable failures use up attempts).
    pub region_failure_threshold: u32,
    /// Throttled attempts per job before the run gives up. A throttled
    /// job goes back to the queue, due after its own backoff (by its
    /// throttles), and the slot that got it cools down (by the region's
    /// throttles in a row) without it.
    pub max_throttled: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            region_failure_threshold: 3,
            max_throttled: 30,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(2));
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// Progress after each finished job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub retries: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobResult<R> {
    pub region: String,
    pub attempts: u32,
    pub result: R,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RegionReport {
    pub jobs_done: usize,
    pub failures: usize,
    /// Attempts the region turned away (throttled), not counted in
    /// `failures`.
    pub throttled: usize,
    /// Whether the region was taken out of the run.
    pub lost: bool,
    pub peak_in_flight: usize,
}

#[derive(Debug)]
pub struct FanOutReport<R> {
    /// By job id, one result each.
    pub results: BTreeMap<u64, JobResult<R>>,
    pub regions: BTreeMap<String, RegionReport>,
    pub retries: usize,
    pub wall_time: Duration,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum FanOutError {
    #[error("no region to run on")]
    NoRegions,
    #[error("job {job} failed: {error}")]
    JobFailed { job: u64, error: String },
    #[error("job {job} failed {attempts} times, last: {error}")]
    RetriesExhausted {
        job: u64,
        attempts: u32,
        error: String,
    },
    #[error("every region is down; {left} jobs left without a result")]
    AllRegionsDown { left: usize },
}

struct Queued<J> {
    id: u64,
    job: J,
    /// Attempts that ran (or failed), throttled ones not included.
    attempts: u32,
    throttled: u32,
    /// A throttled job waits its own backoff before any slot takes it
    /// again, so throttles spread over the jobs instead of piling onto one.
    not_before: Option<tokio::time::Instant>,
}

struct RegionState {
    name: String,
    down: AtomicBool,
    consecutive_failures: AtomicUsize,
    /// Throttled attempts in a row: how long its slots cool down.
    consecutive_throttles: AtomicUsize,
    in_flight: AtomicUsize,
    report: std::sync::Mutex<RegionReport>,
}

struct Shared<J, R> {
    queue: Mutex<VecDeque<Queued<J>>>,
    results: Mutex<BTreeMap<u64, JobResult<R>>>,
    /// Jobs without a result yet.
    open: AtomicUsize,
    retries: AtomicUsize,
    fatal: std::sync::Mutex<Option<FanOutError>>,
    wake: Notify,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs every job once, on the regions' workers (see the crate docs).
pub async fn fan_out<J, R>(
    jobs: Vec<(u64, J)>,
    regions: &[Region],
    worker: Arc<dyn Worker<J, R>>,
    policy: RetryPolicy,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<FanOutReport<R>, FanOutError>
where
    J: Send + Sync + 'static,
    R: Send + 'static,
{
    if regions.is_empty() || regions.iter().all(|r| r.max_in_flight == 0) {
        return Err(FanOutError::NoRegions);
    }
    // tokio's clock: the same as std's, but paused in tests.
    let start = tokio::time::Instant::now();
    let total = jobs.len();
    let shared = Arc::new(Shared {
        queue: Mutex::new(
            jobs.into_iter()
                .map(|(id, job)| Queued {
                    id,
                    job,
                    attempts: 0,
                    throttled: 0,
                    not_before: None,
                })
                .collect(),
        ),
        results: Mutex::new(BTreeMap::new()),
        open: AtomicUsize::new(total),
        retries: AtomicUsize::new(0),
        fatal: std::sync::Mutex::new(None),
        wake: Notify::new(),
    });
    let states: Vec<Arc<RegionState>> = regions
        .iter()
        .map(|r| {
            Arc::new(RegionState {
                name: r.name.clone(),
                down: AtomicBool::new(false),
                consecutive_failures: AtomicUsize::new(0),
                consecutive_throttles: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                report: std::sync::Mutex::new(RegionReport::default()),
            })
        })
        .collect();

    let mut slots = tokio::task::JoinSet::new();
    for (region, state) in regions.iter().zip(&states) {
        for _ in 0..region.max_in_flight {
            slots.spawn(slot_loop(
                shared.clone(),
                state.clone(),
                states.clone(),
                worker.clone(),
                policy,
                on_progress.clone(),
                total,
            ));
        }
    }
    while slots.join_next().await.is_some() {
        // A slot returns once the run is over; the others may be cooling
        // down after a throttle (up to `backoff_max`) or waiting for news,
        // and nothing they would do can change the outcome.
        let all_down = states.iter().all(|r| r.down.load(Ordering::SeqCst));
        if shared.open.load(Ordering::SeqCst) == 0 || lock(&shared.fatal).is_some() || all_down {
            slots.abort_all();
        }
    }

    if let Some(error) = lock(&shared.fatal).take() {
        return Err(error);
    }
    let left = shared.open.load(Ordering::SeqCst);
    if left > 0 {
        return Err(FanOutError::AllRegionsDown { left });
    }
    let results = std::mem::take(&mut *shared.results.lock().await);
    Ok(FanOutReport {
        results,
        regions: states
            .iter()
            .map(|s| (s.name.clone(), lock(&s.report).clone()))
            .collect(),
        retries: shared.retries.load(Ordering::SeqCst),
        wall_time: start.elapsed(),
    })
}

/// One slot of one region: pull, run, record, until no job is left, the
/// region is down, or the run failed.
async fn slot_loop<J, R>(
    shared: Arc<Shared<J, R>>,
    region: Arc<RegionState>,
    all_regions: Vec<Arc<RegionState>>,
    worker: Arc<dyn Worker<J, R>>,
    policy: RetryPolicy,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
    total: usize,
) where
    J: Send + Sync + 'static,
    R: Send + 'static,
{
    loop {
        let finished = shared.open.load(Ordering::SeqCst) == 0 || lock(&shared.fatal).is_some();
        let everyone_down = all_regions.iter().all(|r| r.down.load(Ordering::SeqCst));
        if finished || region.down.load(Ordering::SeqCst) || everyone_down {
            shared.wake.notify_waiters();
            return;
        }
        let next = {
            let mut queue = shared.queue.lock().await;
            let now = tokio::time::Instant::now();
            queue
                .iter()
                .position(|q| q.not_before.is_none_or(|t| t <= now))
                .and_then(|due| queue.remove(due))
        };
        let Some(mut queued) = next else {
            // Jobs are in flight elsewhere and may come back, or wait out
            // their throttling backoff: wait for news.
            let _ = tokio::time::timeout(Duration::from_millis(50), shared.wake.notified()).await;
            continue;
        };
        queued.attempts += 1;
        if queued.attempts > 1 {
            tokio::time::sleep(policy.backoff(queued.attempts)).await;
        }
        let in_flight = region.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut report = lock(&region.report);
            report.peak_in_flight = report.peak_in_flight.max(in_flight);
        }
        let outcome = worker.run(&region.name, &queued.job).await;
        region.in_flight.fetch_sub(1, Ordering::SeqCst);
        match outcome {
            Ok(result) => {
                region.consecutive_failures.store(0, Ordering::SeqCst);
                region.consecutive_throttles.store(0, Ordering::SeqCst);
                lock(&region.report).jobs_done += 1;
                let mut results = shared.results.lock().await;
                match results.entry(queued.id) {
                    // Unreachable by construction (a job runs again only
                    // after its attempt failed); kept as the invariant's guard.
                    std::collections::btree_map::Entry::Occupied(_) => {
                        tracing::error!(job = queued.id, "second result for a job ignored");
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(JobResult {
                            region: region.name.clone(),
                            attempts: queued.attempts,
                            result,
                        });
                        let open = shared.open.fetch_sub(1, Ordering::SeqCst) - 1;
                        on_progress(Progress {
                            done: total - open,
                            total,
                            retries: shared.retries.load(Ordering::SeqCst),
                        });
                    }
                }
                drop(results);
                shared.wake.notify_waiters();
            }
            Err(WorkerError::Fatal(error)) => {
                lock(&region.report).failures += 1;
                lock(&shared.fatal).get_or_insert(FanOutError::JobFailed {
                    job: queued.id,
                    error,
                });
                shared.wake.notify_waiters();
            }
            Err(WorkerError::Throttled(error)) => {
                lock(&region.report).throttled += 1;
                // It did not run: the attempt is given back.
                queued.attempts -= 1;
                queued.throttled += 1;
                if queued.throttled >= policy.max_throttled {
                    lock(&shared.fatal).get_or_insert(FanOutError::RetriesExhausted {
                        job: queued.id,
                        attempts: queued.attempts + queued.throttled,
                        error: format!("throttled {} times, last: {error}", queued.throttled),
                    });
                } else {
                    shared.retries.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(job = queued.id, region = %region.name, throttled = queued.throttled, %error, "job re-queued");
                    // For any region's free slot once its own backoff is
                    // over ...
                    queued.not_before =
                        Some(tokio::time::Instant::now() + policy.backoff(queued.throttled + 1));
                    shared.queue.lock().await.push_back(queued);
                }
                shared.wake.notify_waiters();
                // ... while this slot cools down without it, longer while
                // the region keeps refusing.
                let streak = region.consecutive_throttles.fetch_add(1, Ordering::SeqCst) + 1;
                let streak = u32::try_from(streak).unwrap_or(u32::MAX);
                if lock(&shared.fatal).is_none() {
                    tokio::time::sleep(policy.backoff(streak.saturating_add(1))).await;
                }
            }
            Err(error) => {
                lock(&region.report).failures += 1;
                let failures = region.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
                // A run of retryable failures moves the work elsewhere; with
                // nowhere else to go, the attempts decide.
                let others_up = all_regions
                    .iter()
                    .any(|r| r.name != region.name && !r.down.load(Ordering::SeqCst));
                let lost = matches!(error, WorkerError::RegionDown(_))
                    || (failures >= policy.region_failure_threshold as usize && others_up);
                if lost && !region.down.swap(true, Ordering::SeqCst) {
                    lock(&region.report).lost = true;
                    tracing::warn!(region = %region.name, %error, "region taken out of the run; its jobs move to the others");
                }
                if queued.attempts >= policy.max_attempts {
                    lock(&shared.fatal).get_or_insert(FanOutError::RetriesExhausted {
                        job: queued.id,
                        attempts: queued.attempts,
                        error: error.to_string(),
                    });
                } else {
                    shared.retries.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(job = queued.id, region = %region.name, attempt = queued.attempts, %error, "job re-queued");
                    shared.queue.lock().await.push_back(queued);
                }
                shared.wake.notify_waiters();
            }
        }
    }
}
