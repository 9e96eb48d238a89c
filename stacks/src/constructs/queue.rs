//! SQS queues: the uploads work queue (with its dead-letter queue and the
//! policy that lets the data bucket send to it) and the FIFO results queue.

use serde_json::{Value, json};

use super::{Construct, DataBucket, Scope};
use crate::cfn::{self, Template};

/// Dead-letter queues keep messages for SQS's maximum, 14 days.
const DLQ_RETENTION_S: u32 = 14 * 24 * 3600;

/// A standard queue with a DLQ: the uploads work queue (fed by S3
/// `ObjectCreated` notifications) and the scan queue (fed by the functions).
#[derive(Debug, Clone)]
pub struct WorkQueue {
    pub logical_id: &'static str,
    /// Physical name suffix: `<stack>-<suffix>` and `<stack>-<suffix>-dlq`.
    pub suffix: &'static str,
    pub visibility_timeout_s: u32,
    pub max_receive_count: u32,
    /// The bucket allowed to send (by `aws:SourceArn`), if S3 feeds it.
    pub source_bucket: Option<DataBucket>,
}

impl WorkQueue {
    pub fn url(&self) -> Value {
        cfn::reference(self.logical_id)
    }

    pub fn arn(&self) -> Value {
        cfn::get_att(self.logical_id, "Arn")
    }

    /// The policy letting the source bucket send, if it has one.
    pub fn policy_logical_id(&self) -> String {
        format!("{}Policy", self.logical_id)
    }

    pub fn dlq_logical_id(&self) -> String {
        format!("{}DeadLetter", self.logical_id)
    }

    pub fn dlq_url(&self) -> Value {
        cfn::reference(&self.dlq_logical_id())
    }

    pub fn dlq_arn(&self) -> Value {
        cfn::get_att(&self.dlq_logical_id(), "Arn")
    }
}

impl Construct for WorkQueue {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            &self.dlq_logical_id(),
            json!({
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "QueueName": scope.physical_name(&format!("{}-dlq", self.suffix)),
                    "MessageRetentionPeriod": DLQ_RETENTION_S,
                    "SqsManagedSseEnabled": true,
                    "Tags": scope.tags(),
                },
            }),
        );
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "QueueName": scope.physical_name(self.suffix),
                    "VisibilityTimeout": self.visibility_timeout_s,
                    "SqsManagedSseEnabled": true,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": self.dlq_arn(),
                        "maxReceiveCount": self.max_receive_count,
                    },
                    "Tags": scope.tags(),
                },
            }),
        );
        // The bucket's notifications send as the S3 service. The bucket is
        // named by its deterministic ARN: it depends on this policy.
        if self.source_bucket.is_none() {
            return;
        }
        t.add_resource(
            &self.policy_logical_id(),
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [self.url()],
                    "PolicyDocument": cfn::policy_document([json!({
                        "Sid": "AllowDataBucketNotifications",
                        "Effect": "Allow",
                        "Principal": { "Service": "s3.amazonaws.com" },
                        "Action": "sqs:SendMessage",
                        "Resource": self.arn(),
                        "Condition": {
                            "ArnEquals": { "aws:SourceArn": DataBucket::arn_expr(scope) },
                            "StringEquals": { "aws:SourceAccount": cfn::account_id() },
                        },
                    })]),
                },
            }),
        );
    }
}

/// A FIFO queue with explicit deduplication ids (no content-based
/// deduplication: the sender derives the id from the result id).
#[derive(Debug, Clone)]
pub struct FifoQueue {
    pub logical_id: &'static str,
    /// Physical name: `<stack>-<suffix>.fifo`.
    pub suffix: &'static str,
}

impl FifoQueue {
    pub fn url(&self) -> Value {
        cfn::reference(self.logical_id)
    }

    pub fn arn(&self) -> Value {
        cfn::get_att(self.logical_id, "Arn")
    }
}

impl Construct for FifoQueue {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "QueueName": format!("{}.fifo", scope.physical_name(self.suffix)),
                    "FifoQueue": true,
                    "ContentBasedDeduplication": false,
                    "SqsManagedSseEnabled": true,
                    "Tags": scope.tags(),
                },
            }),
        );
    }
}

/// An SNS topic users subscribe to (e-mail, HTTPS, SQS, Lambda).
#[derive(Debug, Clone)]
pub struct Topic {
    pub logical_id: &'static str,
    /// Physical name: `<stack>-<suffix>`.
    pub suffix: &'static str,
}

impl Topic {
    /// `Ref` of a topic is its ARN.
    pub fn arn(&self) -> Value {
        cfn::reference(self.logical_id)
    }
}

impl Construct for Topic {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::SNS::Topic",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "TopicName": scope.physical_name(self.suffix),
                    // SNS's AWS managed key: encrypted at rest, no key to manage.
                    "KmsMasterKeyId": "alias/aws/sns",
                    "Tags": scope.tags(),
                },
            }),
        );
    }
}
