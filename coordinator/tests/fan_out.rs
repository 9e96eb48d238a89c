//! The scheduler against in-process fake regions: capacity shares, bounded
//! concurrency, retries, and a region lost mid-scan without losing or
//! double-counting a frame.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scan_coordinator::{FanOutError, Progress, Region, RetryPolicy, Worker, WorkerError, fan_out};

/// A chunk of frames `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    start: u64,
    end: u64,
}

/// How a fake region behaves.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Healthy,
    /// Succeeds this many times, then answers as if its endpoint vanished.
    DiesAfter(usize),
    /// Every n-th call is throttled.
    ThrottlesEvery(usize),
    /// Its first n calls are throttled (a burst).
    ThrottlesFirst(usize),
    /// Its first n calls fail as a timed-out environment does.
    TimesOutFirst(usize),
    /// Throttles every call (no capacity left for the function).
    AlwaysThrottles,
    /// Runs this many calls at once and throttles any more at once (more
    /// slots than the capacity actually free).
    Capacity(usize),
    Dead,
}

struct FakeRegions {
    behaviour: BTreeMap<String, Behaviour>,
    calls: Mutex<BTreeMap<String, usize>>,
    in_flight: Mutex<BTreeMap<String, usize>>,
    max_seen: Mutex<BTreeMap<String, usize>>,
    executions: AtomicUsize,
}

impl FakeRegions {
    fn new(regions: &[(&str, Behaviour)]) -> Arc<Self> {
        Arc::new(Self {
            behaviour: regions.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
            calls: Mutex::default(),
            in_flight: Mutex::default(),
            max_seen: Mutex::default(),
            executions: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Worker<Chunk, Vec<u64>> for FakeRegions {
    async fn run(&self, region: &str, chunk: &Chunk) -> Result<Vec<u64>, WorkerError> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(region.into()).or_default();
            *n += 1;
            *n
        };
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(region.into()).or_default();
            if let Behaviour::Capacity(capacity) = self.behaviour[region]
                && *n >= capacity
            {
                return Err(WorkerError::Throttled("TooManyRequestsException".into()));
            }
            *n += 1;
            let mut max = self.max_seen.lock().unwrap();
            let m = max.entry(region.into()).or_default();
            *m = (*m).max(*n);
        }
        // Work takes time, so slots overlap.
        tokio::time::sleep(Duration::from_millis(100)).await;
        *self.in_flight.lock().unwrap().get_mut(region).unwrap() -= 1;
        self.executions.fetch_add(1, Ordering::SeqCst);
        match self.behaviour[region] {
            Behaviour::Dead => Err(WorkerError::RegionDown("connection refused".into())),
            Behaviour::DiesAfter(n) if call > n => {
                Err(WorkerError::RegionDown("function not found".into()))
            }
            Behaviour::ThrottlesEvery(n) if call % n == 0 => {
                Err(WorkerError::Throttled("TooManyRequestsException".into()))
            }
            Behaviour::ThrottlesFirst(n) if call <= n => {
                Err(WorkerError::Throttled("TooManyRequestsException".into()))
            }
            Behaviour::AlwaysThrottles => {
                Err(WorkerError::Throttled("TooManyRequestsException".into()))
            }
            Behaviour::TimesOutFirst(n) if call <= n => {
                Err(WorkerError::Retryable("Sandbox.Timedout".into()))
            }
            _ => Ok((chunk.start..chunk.end).collect()),
        }
    }
}

/// 6 h of 30 fps video would be 648,000 frames; 120 chunks of 75 frames
/// keep the test fast with the same shape.
fn chunks() -> Vec<(u64, Chunk)> {
    (0..120u64)
        .map(|i| {
            (
                i,
                Chunk {
                    start: i * 75,
                    end: (i + 1) * 75,
                },
            )
        })
        .collect()
}

fn regions(slots: &[(&str, usize)]) -> Vec<Region> {
    slots
        .iter()
        .map(|(name, n)| Region {
            name: name.to_string(),
            max_in_flight: *n,
        })
        .collect()
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        backoff_base: Duration::from_millis(10),
        ..RetryPolicy::default()
    }
}

fn no_progress() -> Arc<dyn Fn(Progress) + Send + Sync> {
    Arc::new(|_| {})
}

/// Every frame of every chunk exactly once.
fn assert_every_frame_once(report: &scan_coordinator::FanOutReport<Vec<u64>>) {
    let mut frames: Vec<u64> = report
        .results
        .values()
        .flat_map(|r| r.result.iter().copied())
        .collect();
    frames.sort_unstable();
    let expected: Vec<u64> = (0..120 * 75).collect();
    assert_eq!(
        frames.len(),
        expected.len(),
        "a frame was lost or counted twice"
    );
    assert_eq!(frames, expected);
}

#[tokio::test(start_paused = true)]
async fn work_follows_capacity_and_never_exceeds_it() {
    let fake = FakeRegions::new(&[
        ("us-east-1", Behaviour::Healthy),
        ("eu-west-1", Behaviour::Healthy),
        ("ap-south-1", Behaviour::Healthy),
    ]);
    let plan = regions(&[("us-east-1", 6), ("eu-west-1", 3), ("ap-south-1", 1)]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let report = fan_out(
        chunks(),
        &plan,
        fake.clone(),
        fast_policy(),
        Arc::new(move |p: Progress| log.lock().unwrap().push(p.done)),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    assert_eq!(report.retries, 0);
    assert_eq!(fake.executions.load(Ordering::SeqCst), 120);
    let done = |r: &str| report.regions[r].jobs_done;
    // Shares follow the 6:3:1 slots: 72, 36, 12 of 120 jobs.
    assert_eq!(
        (done("us-east-1"), done("eu-west-1"), done("ap-south-1")),
        (72, 36, 12)
    );
    for region in &plan {
        assert_eq!(
            fake.max_seen.lock().unwrap()[&region.name],
            region.max_in_flight,
            "{} ran more (or fewer) than its slots at once",
            region.name
        );
    }
    // Progress counts up to the total, one step per job.
    assert_eq!(*seen.lock().unwrap(), (1..=120).collect::<Vec<usize>>());
}

#[tokio::test(start_paused = true)]
async fn a_region_lost_mid_scan_hands_its_work_to_the_others() {
    let fake = FakeRegions::new(&[
        ("us-east-1", Behaviour::Healthy),
        ("us-west-2", Behaviour::DiesAfter(10)),
        ("eu-west-1", Behaviour::ThrottlesEvery(7)),
    ]);
    let plan = regions(&[("us-east-1", 4), ("us-west-2", 4), ("eu-west-1", 2)]);
    let report = fan_out(chunks(), &plan, fake.clone(), fast_policy(), no_progress())
        .await
        .unwrap();
    assert_every_frame_once(&report);
    let west = &report.regions["us-west-2"];
    assert!(west.lost);
    assert_eq!(west.jobs_done, 10);
    assert!(!report.regions["us-east-1"].lost);
    assert!(
        !report.regions["eu-west-1"].lost,
        "throttling is retried, not fatal"
    );
    assert!(report.retries > 0);
    // Failed attempts ran, but only one result per job was kept.
    assert!(fake.executions.load(Ordering::SeqCst) > 120);
    assert_eq!(report.results.len(), 120);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_throttles_is_waited_out_without_losing_the_region() {
    // More throttles in a row than the failures that take a region out,
    // and than a job's attempts.
    let fake = FakeRegions::new(&[("a", Behaviour::ThrottlesFirst(12))]);
    let report = fan_out(
        chunks(),
        &regions(&[("a", 4)]),
        fake,
        fast_policy(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    let a = &report.regions["a"];
    assert_eq!((a.throttled, a.failures, a.lost), (12, 0, false));
    assert_eq!(report.retries, 12);
}

#[tokio::test(start_paused = true)]
async fn a_region_that_keeps_throttling_hands_its_jobs_to_the_others() {
    // Many slots that always throttle beside one healthy slot: the
    // throttled jobs must reach the healthy region, not wait on the
    // throttled one until their budget is spent.
    let fake = FakeRegions::new(&[("a", Behaviour::AlwaysThrottles), ("b", Behaviour::Healthy)]);
    let report = fan_out(
        chunks(),
        &regions(&[("a", 8), ("b", 1)]),
        fake,
        fast_policy(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    assert_eq!(report.regions["b"].jobs_done, 120);
    assert!(report.regions["a"].throttled > 0);
    assert!(!report.regions["a"].lost);
}

#[tokio::test(start_paused = true)]
async fn throttles_spread_over_the_jobs_of_a_region_short_of_capacity() {
    // 64 slots where 8 calls fit: most calls are throttled all run long,
    // yet no job may collect every throttle and end the run.
    let fake = FakeRegions::new(&[("a", Behaviour::Capacity(8))]);
    let report = fan_out(
        chunks(),
        &regions(&[("a", 64)]),
        fake.clone(),
        fast_policy(),
        no_progress(),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    assert!(report.regions["a"].throttled > 30);
    // The capacity that fits was used (the fake throttles any more).
    assert_eq!(fake.max_seen.lock().unwrap()["a"], 8);
}

#[tokio::test(start_paused = true)]
async fn the_run_ends_with_its_last_job_not_after_a_throttled_slots_cooldown() {
    // `a` throttles every call, so its slots soon cool down for
    // `backoff_max` (10 s) at a time; `b` does the 120 jobs of 100 ms one
    // after another. The run is over when b's last job is: 12 s of
    // (paused, so exact) tokio time, not up to 10 s more.
    let fake = FakeRegions::new(&[("a", Behaviour::AlwaysThrottles), ("b", Behaviour::Healthy)]);
    let policy = RetryPolicy {
        max_throttled: u32::MAX,
        ..fast_policy()
    };
    let report = fan_out(
        chunks(),
        &regions(&[("a", 8), ("b", 1)]),
        fake,
        policy,
        no_progress(),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    assert_eq!(report.regions["b"].jobs_done, 120);
    assert!(
        report.wall_time < Duration::from_millis(12_500),
        "the run took {:?}",
        report.wall_time
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_region_up_is_not_taken_out_by_retryable_failures() {
    let policy = fast_policy();
    let fake = FakeRegions::new(&[("a", Behaviour::TimesOutFirst(3))]);
    let report = fan_out(chunks(), &regions(&[("a", 1)]), fake, policy, no_progress())
        .await
        .unwrap();
    assert_every_frame_once(&report);
    let a = &report.regions["a"];
    assert_eq!(policy.region_failure_threshold, 3);
    assert_eq!((a.failures, a.lost), (3, false));
    // With another region up, the same failures move the work there.
    let fake = FakeRegions::new(&[
        ("a", Behaviour::TimesOutFirst(3)),
        ("b", Behaviour::Healthy),
    ]);
    let report = fan_out(
        chunks(),
        &regions(&[("a", 1), ("b", 1)]),
        fake,
        policy,
        no_progress(),
    )
    .await
    .unwrap();
    assert_every_frame_once(&report);
    assert!(report.regions["a"].lost);
}

#[tokio::test(start_paused = true)]
async fn with_every_region_down_the_run_fails_and_says_how_much_is_left() {
    let fake = FakeRegions::new(&[("a", Behaviour::Dead), ("b", Behaviour::DiesAfter(5))]);
    let err = fan_out(
        chunks(),
        &regions(&[("a", 2), ("b", 1)]),
        fake,
        fast_policy(),
        no_progress(),
    )
    .await
    .unwrap_err();
    assert_eq!(err, FanOutError::AllRegionsDown { left: 115 });
}

#[tokio::test(start_paused = true)]
async fn a_bad_job_stops_the_run_with_its_id() {
    struct RejectsJob7;
    #[async_trait]
    impl Worker<Chunk, Vec<u64>> for RejectsJob7 {
        async fn run(&self, _: &str, chunk: &Chunk) -> Result<Vec<u64>, WorkerError> {
            if chunk.start == 7 * 75 {
                return Err(WorkerError::Fatal("not an H.264 stream".into()));
            }
            Ok(vec![chunk.start])
        }
    }
    let err = fan_out(
        chunks(),
        &regions(&[("a", 2)]),
        Arc::new(RejectsJob7),
        fast_policy(),
        no_progress(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        FanOutError::JobFailed {
            job: 7,
            error: "not an H.264 stream".into()
        }
    );
    assert_eq!(
        fan_out(
            chunks(),
            &[],
            Arc::new(RejectsJob7),
            fast_policy(),
            no_progress()
        )
        .await
        .unwrap_err(),
        FanOutError::NoRegions
    );
}
