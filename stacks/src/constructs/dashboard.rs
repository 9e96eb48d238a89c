//! A CloudWatch dashboard of one region's stack: what a person on call
//! looks at first.

use face_contracts::metrics::{DIMENSION, Metric, NAMESPACE};
use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::Template;

/// Function traffic, errors, throttles and latency; queue backlogs and
/// dead letters; the functions' own metrics (embedded metric format).
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub logical_id: &'static str,
    /// Physical function names.
    pub functions: Vec<String>,
    /// Physical names of the queues fed to functions.
    pub queues: Vec<String>,
    /// Physical names of the dead-letter queues.
    pub dead_letter_queues: Vec<String>,
    /// The functions' own embedded-metric-format metrics (in
    /// [`NAMESPACE`], by [`DIMENSION`]), charted per function.
    pub function_metrics: Vec<Metric>,
}

/// The region placeholder `Fn::Sub` fills in.
const REGION: &str = "${AWS::Region}";

impl Dashboard {
    fn widget(&self, title: &str, y: u32, x: u32, metrics: Vec<Value>, stat: &str) -> Value {
        json!({
            "type": "metric",
            "x": x, "y": y, "width": 12, "height": 6,
            "properties": {
                "title": title,
                "region": REGION,
                "stat": stat,
                "period": 300,
                "view": "timeSeries",
                "metrics": metrics,
            },
        })
    }

    fn per_function(&self, namespace: &str, metric: &str) -> Vec<Value> {
        self.functions
            .iter()
            .map(|f| json!([namespace, metric, "FunctionName", f]))
            .collect()
    }

    /// The dashboard body, with `${AWS::Region}` for `Fn::Sub`.
    pub fn body(&self) -> Value {
        let lambda = "AWS/Lambda";
        let mut errors = self.per_function(lambda, "Errors");
        errors.extend(self.per_function(lambda, "Throttles"));
        let per_queue = |queues: &[String], metric: &str| -> Vec<Value> {
            queues
                .iter()
                .map(|q| json!(["AWS/SQS", metric, "QueueName", q]))
                .collect()
        };
        let backlog = per_queue(&self.queues, "ApproximateNumberOfMessagesVisible");
        let oldest = per_queue(&self.queues, "ApproximateAgeOfOldestMessage");
        let dead = per_queue(
            &self.dead_letter_queues,
            "ApproximateNumberOfMessagesVisible",
        );
        let mut widgets = vec![
            self.widget(
                "Invocations",
                0,
                0,
                self.per_function(lambda, "Invocations"),
                "Sum",
            ),
            self.widget("Errors and throttles", 0, 12, errors, "Sum"),
            self.widget(
                "Duration p95 (ms)",
                6,
                0,
                self.per_function(lambda, "Duration"),
                "p95",
            ),
            self.widget(
                "Concurrent executions",
                6,
                12,
                self.per_function(lambda, "ConcurrentExecutions"),
                "Maximum",
            ),
            self.widget("Queue backlog", 12, 0, backlog, "Maximum"),
            self.widget("Oldest message (s)", 12, 12, oldest, "Maximum"),
            self.widget("Dead letters", 18, 0, dead, "Maximum"),
        ];
        for (i, metric) in self.function_metrics.iter().enumerate() {
            let series = self
                .functions
                .iter()
                .map(|f| json!([NAMESPACE, metric.name(), DIMENSION, f]))
                .collect();
            let slot = 7 + i as u32;
            widgets.push(self.widget(
                metric.name(),
                6 * (slot / 2),
                12 * (slot % 2),
                series,
                "Average",
            ));
        }
        json!({ "widgets": widgets })
    }
}

impl Construct for Dashboard {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {
                    // Dashboards are global to the account: one per region.
                    "DashboardName": {
                        "Fn::Sub": format!("{}-{REGION}", scope.stack_name),
                    },
                    "DashboardBody": { "Fn::Sub": self.body().to_string() },
                },
            }),
        );
    }
}
