//! The private data bucket: collections, uploads, frames.

use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::{self, Statement, Template};

/// Private, encrypted (SSE-S3), public access blocked, owner-enforced,
/// versioned, TLS only. Old versions expire; the bucket is deleted with
/// the stack (teardown empties it first) unless `retain` (production).
#[derive(Debug, Clone)]
pub struct DataBucket {
    pub logical_id: &'static str,
    pub noncurrent_version_expiration_days: u32,
    pub retain: bool,
    /// Object events sent to queues, set in the template itself.
    pub notifications: Vec<QueueNotification>,
}

/// S3 events of keys under a prefix, sent to a queue.
#[derive(Debug, Clone)]
pub struct QueueNotification {
    pub queue_arn: Value,
    pub key_prefix: String,
    pub events: Vec<&'static str>,
    /// The queue policy that lets the bucket send: S3 tests the
    /// destination when the notification is set, so the bucket waits for it
    /// (the policy names the bucket by its deterministic ARN, not a
    /// reference, so there is no cycle).
    pub queue_policy_logical_id: String,
}

impl DataBucket {
    /// `<stack>-data-<account>-<region>`: bucket names are global.
    pub fn name_expr(scope: &Scope) -> Value {
        cfn::join([
            cfn::text(scope.physical_name("data-")),
            cfn::account_id(),
            cfn::text("-"),
            cfn::region(),
        ])
    }

    /// `arn:<partition>:s3:::<name>`, built from the name rather than
    /// referenced, for what the bucket itself depends on.
    pub fn arn_expr(scope: &Scope) -> Value {
        cfn::join([
            cfn::text("arn:"),
            cfn::partition(),
            cfn::text(":s3:::"),
            Self::name_expr(scope),
        ])
    }

    /// The bucket's concrete name, for callers that know the account.
    pub fn name_in(stack_name: &str, account: &str, region: &str) -> String {
        format!("{stack_name}-data-{account}-{region}")
    }

    pub fn name(&self) -> Value {
        cfn::reference(self.logical_id)
    }

    /// The bucket ARN (for `s3:ListBucket`).
    pub fn arn(&self) -> Value {
        cfn::get_att(self.logical_id, "Arn")
    }

    /// `s3:ListBucket` for listings under these key prefixes only. S3 also
    /// answers a read of a missing key 404 (not 403) only to a caller it
    /// lets list; `face_service::aws::S3Objects` lists the key itself when
    /// a read is refused, so a function needs the prefixes it reads too.
    pub fn list_under(&self, prefixes: &[&str]) -> Statement {
        let patterns: Vec<String> = prefixes.iter().map(|p| format!("{p}*")).collect();
        Statement::allow(&["s3:ListBucket"], [self.arn()])
            .when(json!({ "StringLike": { "s3:prefix": patterns } }))
    }

    /// ARN of the objects under `pattern`, e.g. `*` or `collections/*`.
    pub fn objects_arn(&self, pattern: &str) -> Value {
        cfn::join([self.arn(), cfn::text(format!("/{pattern}"))])
    }
}

impl Construct for DataBucket {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        let queue_configurations: Vec<Value> = self
            .notifications
            .iter()
            .flat_map(|n| {
                n.events.iter().map(|event| {
                    json!({
                        "Event": event,
                        "Queue": n.queue_arn,
                        "Filter": { "S3Key": { "Rules": [
                            { "Name": "prefix", "Value": n.key_prefix },
                        ] } },
                    })
                })
            })
            .collect();
        let depends_on: Vec<&str> = self
            .notifications
            .iter()
            .map(|n| n.queue_policy_logical_id.as_str())
            .collect();
        let mut bucket = json!({
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": super::data_policy(self.retain),
            "UpdateReplacePolicy": super::data_policy(self.retain),
            "Properties": {
                "BucketName": Self::name_expr(scope),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" },
                    }],
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": true,
                    "BlockPublicPolicy": true,
                    "IgnorePublicAcls": true,
                    "RestrictPublicBuckets": true,
                },
                "OwnershipControls": {
                    "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }],
                },
                "VersioningConfiguration": { "Status": "Enabled" },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-noncurrent-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {
                                "NoncurrentDays": self.noncurrent_version_expiration_days,
                            },
                        },
                        {
                            "Id": "abort-incomplete-uploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 7 },
                        },
                    ],
                },
                "Tags": scope.tags(),
            },
        });
        if !self.notifications.is_empty() {
            bucket["DependsOn"] = json!(depends_on);
            bucket["Properties"]["NotificationConfiguration"] =
                json!({ "QueueConfigurations": queue_configurations });
        }
        t.add_resource(self.logical_id, bucket);
        // Deny plain HTTP. Principal "*" is the point here: it is a Deny
        // for everyone, on this bucket's ARNs only.
        t.add_resource(
            &format!("{}Policy", self.logical_id),
            json!({
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": self.name(),
                    "PolicyDocument": cfn::policy_document([json!({
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": { "AWS": "*" },
                        "Action": "s3:*",
                        "Resource": [self.arn(), self.objects_arn("*")],
                        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
                    })]),
                },
            }),
        );
    }
}
