//! CloudWatch alarms on what needs a person: messages in a dead-letter
//! queue, function errors and throttles, all to one SNS topic.

use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::{self, Template};

/// One alarm per dead-letter queue (any message visible) and two per
/// function (any error, any throttle in a 5-minute period), sent to the
/// alarm topic, with an optional e-mail subscription.
#[derive(Debug, Clone)]
pub struct Alarms {
    pub topic_logical_id: &'static str,
    /// `(logical id prefix, QueueName value)` of each dead-letter queue.
    pub dead_letter_queues: Vec<(String, Value)>,
    /// `(logical id prefix, FunctionName value)` of each function.
    pub functions: Vec<(String, Value)>,
    pub email: Option<String>,
}

/// Evaluation period of every alarm.
const PERIOD_S: u32 = 300;

impl Alarms {
    /// `Ref` of a topic is its ARN.
    pub fn topic_arn(&self) -> Value {
        cfn::reference(self.topic_logical_id)
    }

    fn alarm(
        &self,
        scope: &Scope,
        description: String,
        namespace: &str,
        metric: &str,
        dimension: Value,
    ) -> Value {
        json!({
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": description,
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [dimension],
                "Statistic": if metric == "ApproximateNumberOfMessagesVisible" { "Maximum" } else { "Sum" },
                "Period": PERIOD_S,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                // No data (an idle function) is not an alarm.
                "TreatMissingData": "notBreaching",
                "AlarmActions": [self.topic_arn()],
                "OKActions": [self.topic_arn()],
                "Tags": scope.tags(),
            },
        })
    }
}

impl Construct for Alarms {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            self.topic_logical_id,
            json!({
                "Type": "AWS::SNS::Topic",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                // Not encrypted with SNS's AWS managed key: CloudWatch cannot
                // publish to a topic under it (it would need a customer key
                // whose policy grants cloudwatch.amazonaws.com).
                "Properties": {
                    "TopicName": scope.physical_name("alarms"),
                    "Tags": scope.tags(),
                },
            }),
        );
        if let Some(email) = &self.email {
            t.add_resource(
                &format!("{}EmailSubscription", self.topic_logical_id),
                json!({
                    "Type": "AWS::SNS::Subscription",
                    "Properties": {
                        "TopicArn": self.topic_arn(),
                        "Protocol": "email",
                        "Endpoint": email,
                    },
                }),
            );
        }
        for (id, queue_name) in &self.dead_letter_queues {
            let alarm = self.alarm(
                scope,
                format!("{id}: messages that failed every attempt are waiting"),
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                json!({ "Name": "QueueName", "Value": queue_name }),
            );
            t.add_resource(&format!("{id}DepthAlarm"), alarm);
        }
        for (id, function_name) in &self.functions {
            for metric in ["Errors", "Throttles"] {
                let alarm = self.alarm(
                    scope,
                    format!("{id}: {} in the last 5 minutes", metric.to_lowercase()),
                    "AWS/Lambda",
                    metric,
                    json!({ "Name": "FunctionName", "Value": function_name }),
                );
                t.add_resource(&format!("{id}{metric}Alarm"), alarm);
            }
        }
    }
}
