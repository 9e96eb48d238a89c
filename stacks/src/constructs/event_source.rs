//! An SQS queue feeding a function.

use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::Template;

/// `AWS::Lambda::EventSourceMapping` reporting partial batch failures, so
/// one bad message is retried (then dead-lettered) alone.
#[derive(Debug, Clone)]
pub struct QueueEventSource {
    pub logical_id: String,
    pub queue_arn: Value,
    pub function_name: Value,
    pub batch_size: u32,
    pub max_concurrency: Option<u32>,
}

impl Construct for QueueEventSource {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        let mut properties = json!({
            "EventSourceArn": self.queue_arn,
            "FunctionName": self.function_name,
            "BatchSize": self.batch_size,
            "Enabled": true,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "Tags": scope.tags(),
        });
        if let Some(max) = self.max_concurrency {
            properties["ScalingConfig"] = json!({ "MaximumConcurrency": max });
        }
        t.add_resource(
            &self.logical_id,
            json!({ "Type": "AWS::Lambda::EventSourceMapping", "Properties": properties }),
        );
    }
}
