//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line on
//! stdout that CloudWatch Logs turns into metrics, with no API call in the
//! invocation. One line per invocation or record, never per face or frame.
//!
//! Every metric is in namespace [`NAMESPACE`] with the one dimension
//! [`DIMENSION`] (the function's name): nothing per request, so the number
//! of metrics (what CloudWatch bills) stays fixed. The names are
//! `face_contracts::metrics`' (the stack's dashboard charts them).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use face_contracts::metrics::{DIMENSION, Metric, NAMESPACE};
use serde_json::{Map, Value, json};

/// One EMF line (no newline) at `timestamp_ms` (Unix milliseconds).
/// Non-finite values are left out (JSON has no NaN), as is a metric named
/// twice after its first value; `None` when nothing is left.
pub fn emf_line(function: &str, timestamp_ms: u64, values: &[(Metric, f64)]) -> Option<String> {
    let mut line = Map::new();
    let mut declared = Vec::new();
    for &(metric, value) in values {
        if !value.is_finite() || line.contains_key(metric.name()) {
            continue;
        }
        // Microseconds are plenty; shorter lines.
        line.insert(metric.name().into(), json!((value * 1e3).round() / 1e3));
        declared.push(json!({"Name": metric.name(), "Unit": metric.unit().as_str()}));
    }
    if declared.is_empty() {
        return None;
    }
    line.insert(DIMENSION.into(), json!(function));
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": declared,
            }],
        }),
    );
    Some(Value::Object(line).to_string())
}

/// Where a function's metric lines go: a cheap handle, cloned into every
/// handler. [`Metrics::default`] writes nothing.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    emitter: Option<Arc<Emitter>>,
}

#[derive(Debug)]
struct Emitter {
    function: String,
    init_ms: Option<f64>,
    cold: AtomicBool,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    Memory(Mutex<Vec<String>>),
}

impl Metrics {
    /// Lines on stdout for `function`, whose own init took `init`.
    pub fn stdout(function: impl Into<String>, init: Option<Duration>) -> Self {
        Self::with_sink(function.into(), init, Sink::Stdout)
    }

    /// Lines on stdout for `AWS_LAMBDA_FUNCTION_NAME`; nothing outside
    /// Lambda (and the emulator), where no one reads them.
    pub fn from_env(init: Option<Duration>) -> Self {
        match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
            Ok(name) if !name.is_empty() => Self::stdout(name, init),
            _ => Self::default(),
        }
    }

    /// Lines kept in memory (read with [`Metrics::lines`]): for tests.
    pub fn in_memory(function: impl Into<String>, init: Option<Duration>) -> Self {
        Self::with_sink(function.into(), init, Sink::Memory(Mutex::default()))
    }

    fn with_sink(function: String, init: Option<Duration>, sink: Sink) -> Self {
        Self {
            emitter: Some(Arc::new(Emitter {
                function,
                init_ms: init.map(|d| d.as_secs_f64() * 1e3),
                cold: AtomicBool::new(true),
                sink,
            })),
        }
    }

    /// The lines written so far, of [`Metrics::in_memory`] only.
    pub fn lines(&self) -> Vec<String> {
        match self.emitter.as_deref().map(|e| &e.sink) {
            Some(Sink::Memory(lines)) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Called as each invocation starts: the container's first writes
    /// `ColdStart` 1 (with `InitDuration`), later ones nothing.
    pub fn invocation_started(&self) {
        let Some(emitter) = &self.emitter else {
            return;
        };
        if emitter.cold.swap(false, Ordering::Relaxed) {
            let mut values = vec![(Metric::ColdStart, 1.0)];
            values.extend(emitter.init_ms.map(|ms| (Metric::InitDuration, ms)));
            self.emit(&values);
        }
    }

    /// Writes one line of `values`. Never fails: a metric lost is better
    /// than an invocation failed.
    pub fn emit(&self, values: &[(Metric, f64)]) {
        let Some(emitter) = &self.emitter else {
            return;
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let Some(line) = emf_line(&emitter.function, now_ms, values) else {
            return;
        };
        match &emitter.sink {
            Sink::Stdout => {
                // One write of the whole line, under stdout's lock, so it
                // never interleaves with a log line.
                let _ = std::io::stdout()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes());
            }
            Sink::Memory(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// CloudWatch's units (the EMF specification's `Unit` values).
    const CLOUDWATCH_UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// Checks `line` against the EMF specification and returns its metric
    /// values by name.
    fn check_emf(line: &str) -> (u64, Map<String, Value>) {
        assert!(!line.contains('\n'), "one line: {line}");
        let root: Value = serde_json::from_str(line).unwrap();
        let root = root.as_object().expect("an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        let timestamp = aws["Timestamp"].as_u64().expect("Timestamp: integer ms");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let directive = directives[0].as_object().unwrap();
        let namespace = directive["Namespace"].as_str().unwrap();
        assert!((1..=255).contains(&namespace.len()));
        let dimension_sets = directive["Dimensions"].as_array().unwrap();
        for set in dimension_sets {
            let set = set.as_array().unwrap();
            assert!(set.len() <= 30);
            for name in set {
                let name = name.as_str().unwrap();
                assert!(
                    root.get(name).is_some_and(Value::is_string),
                    "dimension {name} is a string member"
                );
            }
        }
        let declared = directive["Metrics"].as_array().unwrap();
        assert!((1..=100).contains(&declared.len()));
        let mut values = Map::new();
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!((1..=255).contains(&name.len()));
            assert!(CLOUDWATCH_UNITS.contains(&metric["Unit"].as_str().unwrap()));
            let value = root
                .get(name)
                .unwrap_or_else(|| panic!("{name} has a member"));
            assert!(value.is_number(), "{name} is a number: {value}");
            assert!(
                values.insert(name.into(), value.clone()).is_none(),
                "{name} declared once"
            );
        }
        // Nothing else rides along: no per-request member to mistake for a
        // dimension.
        let members: BTreeSet<&str> = root.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = values
            .keys()
            .map(String::as_str)
            .chain(["_aws", DIMENSION])
            .collect();
        assert_eq!(members, expected);
        (timestamp, root.clone())
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn a_line_follows_the_emf_specification() {
        let metrics = Metrics::in_memory("faces-recognize", None);
        let before = now_ms();
        metrics.emit(&[
            (Metric::DecodeTime, 12.3456789),
            (Metric::DetectTime, 40.0),
            (Metric::FacesFound, 3.0),
            (Metric::FacesMatched, 2.0),
            // Left out: JSON has no NaN, and a metric has one value a line.
            (Metric::MatchTime, f64::NAN),
            (Metric::FacesFound, 9.0),
        ]);
        let after = now_ms();
        let lines = metrics.lines();
        assert_eq!(lines.len(), 1);
        let (timestamp, root) = check_emf(&lines[0]);
        assert!(
            (before..=after).contains(&timestamp),
            "milliseconds: {timestamp}"
        );
        assert_eq!(root["Function"], "faces-recognize");
        assert_eq!(root["DecodeTime"], 12.346);
        assert_eq!(root["DetectTime"], 40.0);
        assert_eq!(root["FacesFound"], 3.0);
        assert_eq!(root["FacesMatched"], 2.0);
        assert!(root.get("MatchTime").is_none());
        let directive = &root["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "FaceRecognition");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "DecodeTime", "Unit": "Milliseconds"},
                {"Name": "DetectTime", "Unit": "Milliseconds"},
                {"Name": "FacesFound", "Unit": "Count"},
                {"Name": "FacesMatched", "Unit": "Count"},
            ])
        );
    }

    #[test]
    fn only_the_first_invocation_is_a_cold_start() {
        let metrics = Metrics::in_memory("faces-enroll", Some(Duration::from_millis(850)));
        metrics.invocation_started();
        metrics.invocation_started();
        metrics.clone().invocation_started();
        let lines = metrics.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let (_, root) = check_emf(&lines[0]);
        assert_eq!(root["ColdStart"], 1.0);
        assert_eq!(root["InitDuration"], 850.0);
        assert_eq!(
            root["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([
                {"Name": "ColdStart", "Unit": "Count"},
                {"Name": "InitDuration", "Unit": "Milliseconds"},
            ])
        );
    }

    #[test]
    fn every_metric_has_a_distinct_name_and_a_cloudwatch_unit() {
        let names: BTreeSet<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len());
        assert!(!names.contains(DIMENSION) && !names.contains("_aws"));
        for metric in Metric::ALL {
            assert!(CLOUDWATCH_UNITS.contains(&metric.unit().as_str()));
        }
        let every: Vec<(Metric, f64)> = Metric::ALL.iter().map(|&m| (m, 1.0)).collect();
        check_emf(&emf_line("f", 0, &every).unwrap());
    }

    #[test]
    fn nothing_to_say_writes_nothing() {
        assert_eq!(
            emf_line("f", 0, &[(Metric::ChunkTime, f64::INFINITY)]),
            None
        );
        let off = Metrics::default();
        off.invocation_started();
        off.emit(&[(Metric::FacesFound, 1.0)]);
        assert!(off.lines().is_empty());
    }
}
