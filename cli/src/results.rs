//! `facectl results --stack S --follow [--threads N]`: the consumer of a
//! stack's results FIFO queue (the camera system's device side). Each
//! thread long-polls the queue, prints every result as it arrives with its
//! latency from the upload's S3 event time, and deletes what it printed.
//! Results are grouped per upload, so the threads really run in parallel.
//! Delivery is at least once: a result seen again (same `result_id`, among
//! the last [`RecentResultIds::DEFAULT_CAPACITY`] of this run) is deleted
//! and not printed again. On exit: count, duplicates dropped, p50, p95 and
//! max latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use face_service::recognize::{RecentResultIds, ResultMessage};
use serde::Serialize;

use crate::outln;

/// Longest wait of one receive (SQS's maximum is 20 s).
const LONG_POLL_S: i32 = 5;

#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub queue_url: String,
    pub threads: usize,
    /// Stop after this many results.
    pub count: Option<usize>,
    /// Stop after this long without a message.
    pub idle_timeout: Option<Duration>,
    pub json: bool,
}

/// One printed result.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub result_id: String,
    pub key: String,
    pub status: String,
    /// People named: an image's faces, or a video job's timeline.
    pub people: Vec<String>,
    /// From the upload's S3 event time to now (None without one).
    pub latency_ms: Option<f64>,
    pub message: serde_json::Value,
}

/// Latency figures of a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    /// Copies of results already printed, deleted unprinted.
    pub duplicates: usize,
    pub with_latency: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

pub fn summarize(followed: &Followed) -> LatencySummary {
    let received = &followed.received;
    let mut latencies: Vec<f64> = received.iter().filter_map(|r| r.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    LatencySummary {
        count: received.len(),
        duplicates: followed.duplicates,
        with_latency: latencies.len(),
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        max_ms: latencies.last().copied(),
    }
}

/// What a message body says, for printing.
pub fn describe(body: &str, now: SystemTime) -> Received {
    let message: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    let parsed: Option<ResultMessage> = serde_json::from_value(message.clone()).ok();
    let Some(m) = parsed else {
        return Received {
            result_id: String::new(),
            key: String::new(),
            status: "unreadable".into(),
            people: Vec::new(),
            latency_ms: None,
            message,
        };
    };
    let mut people: Vec<String> = match (&m.result, &m.job) {
        (Some(result), _) => result.people(),
        (None, Some(job)) => job
            .timeline
            .as_ref()
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["person"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    people.sort();
    people.dedup();
    let latency_ms = m
        .uploaded_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|at| now.duration_since(at).ok())
        .map(|d| d.as_secs_f64() * 1000.0);
    Received {
        result_id: m.result_id,
        key: m.key,
        status: m.status.as_str().to_string(),
        people,
        latency_ms,
        message,
    }
}

fn render(r: &Received) -> String {
    let latency = r
        .latency_ms
        .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"));
    let people = if r.people.is_empty() {
        "nobody".to_string()
    } else {
        r.people.join(", ")
    };
    format!("{}  {}  {people}  latency {latency}", r.key, r.status)
}

/// What a run printed, and how many copies it dropped.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    /// In arrival order.
    pub received: Vec<Received>,
    pub duplicates: usize,
}

/// Consumes the queue until `count` results, `idle_timeout` without one, or
/// `stop` (Ctrl-C); returns what was printed.
pub async fn follow(
    sqs: &aws_sdk_sqs::Client,
    options: &FollowOptions,
    stop: &AtomicBool,
) -> Result<Followed> {
    let received = Mutex::new(Vec::new());
    let recent = Mutex::new(RecentResultIds::default());
    let duplicates = AtomicUsize::new(0);
    let printed = AtomicUsize::new(0);
    let last_message = Mutex::new(Instant::now());
    let done = |printed: &AtomicUsize| {
        stop.load(Ordering::Relaxed)
            || options
                .count
                .is_some_and(|n| printed.load(Ordering::Relaxed) >= n)
            || options.idle_timeout.is_some_and(|idle| {
                last_message
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed()
                    >= idle
            })
    };
    let thread = || async {
        // At least one receive, then until done.
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&options.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(LONG_POLL_S)
                .send()
                .await
                .with_context(|| format!("sqs:ReceiveMessage {}", options.queue_url))?;
            for message in out.messages() {
                let r = describe(message.body().unwrap_or_default(), SystemTime::now());
                *last_message.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                // An unreadable body has no id: printed every time.
                let first = r.result_id.is_empty()
                    || recent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .first_time(&r.result_id);
                if !first {
                    eprintln!("dropped a repeated delivery of {}", r.result_id);
                } else if options.json {
                    outln!("{}", serde_json::to_string(&r)?)?;
                } else {
                    outln!("{}", render(&r))?;
                }
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&options.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("sqs:DeleteMessage")?;
                }
                if first {
                    received.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                    printed.fetch_add(1, Ordering::Relaxed);
                } else {
                    duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
            if done(&printed) {
                return Ok::<(), anyhow::Error>(());
            }
        }
    };
    let threads: Vec<_> = (0..options.threads.max(1)).map(|_| thread()).collect();
    for result in futures_util::future::join_all(threads).await {
        result?;
    }
    Ok(Followed {
        received: received.into_inner().unwrap_or_else(|e| e.into_inner()),
        duplicates: duplicates.into_inner(),
    })
}

/// The summary line.
pub fn render_summary(s: &LatencySummary) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"));
    let duplicates = match s.duplicates {
        0 => String::new(),
        n => format!(" ({n} repeated deliveries dropped)"),
    };
    format!(
        "{} result(s){duplicates}, latency p50 {}, p95 {}, max {} ({} with an upload time)",
        s.count,
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.max_ms),
        s.with_latency
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(10.0));
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
    }

    #[test]
    fn a_job_message_names_its_timeline_and_latency() {
        let body = serde_json::json!({
            "result_id": "s3://b/uploads/c/clip.mp4#v1", "bucket": "b",
            "key": "uploads/c/clip.mp4", "collection": "c", "status": "ok",
            "uploaded_at": "2026-11-30T10:00:00Z",
            "job": {"job_id": "0123", "status": "done", "collection": "c",
                "video_key": "uploads/c/clip.mp4", "video_result_id": "s3://b/uploads/c/clip.mp4#v1",
                "chunks_done": 1, "created_at": "2026-11-30T10:00:00Z",
                "timeline": [{"person": "bo"}, {"person": "al"}, {"person": "bo"}]}
        });
        let now = humantime::parse_rfc3339("2026-11-30T10:00:02Z").unwrap();
        let r = describe(&body.to_string(), now);
        assert_eq!(r.people, ["al", "bo"]);
        assert_eq!(r.latency_ms, Some(2000.0));
        assert_eq!(r.status, "ok");
        let s = summarize(&Followed {
            received: vec![r.clone(), r],
            duplicates: 1,
        });
        assert_eq!(
            (s.count, s.duplicates, s.p50_ms, s.max_ms),
            (2, 1, Some(2000.0), Some(2000.0))
        );
        assert!(
            render_summary(&s).starts_with("2 result(s) (1 repeated deliveries dropped),"),
            "{}",
            render_summary(&s)
        );
        assert_eq!(describe("nope", now).status, "unreadable");
    }
}
