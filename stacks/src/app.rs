//! The face recognition stack of one region, assembled from constructs.
//!
//! Adding a function: a [`FunctionName`] variant, an entry in
//! [`FaceStack::function_props`] (environment, grants), and if it is fed by
//! a queue, a queue construct and a [`QueueEventSource`] in
//! [`FaceStack::synth`].
//!
//! The HTTPS API ([`RestApi`]) fronts the `api` function, behind the
//! `authorizer` function; API keys live (hashed) in the `ApiKeysTable`.

use std::collections::BTreeMap;

use face_contracts::env;
use face_contracts::layout::{COLLECTIONS_PREFIX, SCANS_PREFIX};
use face_contracts::metrics::Metric;
use face_contracts::tables;

use crate::cfn::{self, Statement, Template};
use crate::config::FunctionName;
use crate::constructs::function::CodeLocation;
use crate::constructs::{
    Alarms, Construct, Dashboard, DataBucket, FifoQueue, Function, FunctionProps, QueueEventSource,
    QueueNotification, RestApi, Scope, Table, Topic, WorkQueue,
};
use crate::error::StackError;
use crate::plan::{Architecture, Deployment, RegionPlan};

/// Output keys that deploy, smoke-test and teardown read back.
pub mod outputs {
    pub const DATA_BUCKET_NAME: &str = "DataBucketName";
    pub const PEOPLE_TABLE_NAME: &str = "PeopleTableName";
    pub const RESULTS_TABLE_NAME: &str = "ResultsTableName";
    pub const RESULTS_QUEUE_URL: &str = "ResultsQueueUrl";
    pub const WORK_QUEUE_URL: &str = "WorkQueueUrl";
    pub const WORK_QUEUE_ARN: &str = "WorkQueueArn";
    pub const DEAD_LETTER_QUEUE_URL: &str = "DeadLetterQueueUrl";
    pub const UPLOAD_PREFIX: &str = "UploadPrefix";
    pub const DEFAULT_COLLECTION: &str = "DefaultCollection";
    pub const WORK_SHARE: &str = "WorkShare";
    /// `https://<id>.execute-api.<region>.<suffix>/live`, the API's base URL.
    pub const API_URL: &str = "ApiUrl";
    pub const REST_API_ID: &str = "RestApiId";
    pub const API_KEYS_TABLE_NAME: &str = "ApiKeysTableName";
    pub const SCAN_JOBS_TABLE_NAME: &str = "ScanJobsTableName";
    pub const SCAN_QUEUE_URL: &str = "ScanQueueUrl";
    pub const SCAN_DEAD_LETTER_QUEUE_URL: &str = "ScanDeadLetterQueueUrl";
    /// The SNS topic every finished video job is published to.
    pub const RESULTS_TOPIC_ARN: &str = "ResultsTopicArn";
    /// The SNS topic of the stack's CloudWatch alarms.
    pub const ALARM_TOPIC_ARN: &str = "AlarmTopicArn";

    /// `EnrollFunctionName`, `RecognizeFunctionName`, ...
    pub fn function_name(function: crate::FunctionName) -> String {
        format!("{}FunctionName", function.camel())
    }

    /// `EnrollFunctionArn`, ...
    pub fn function_arn(function: crate::FunctionName) -> String {
        format!("{}FunctionArn", function.camel())
    }
}

/// The template's parameters: where the function zips are.
pub mod parameters {
    /// The bucket holding every zip; empty (the default) means
    /// `<stack>-assets-<account>-<region>`, where `cargo xtask deploy`
    /// uploads them.
    pub const CODE_BUCKET: &str = "CodeBucket";
    /// The condition "CodeBucket is empty".
    pub const DEFAULT_CODE_BUCKET: &str = "DefaultCodeBucket";

    /// `EnrollCodeKey`, ...: the zip's key, by default its content hash.
    pub fn code_key(function: crate::FunctionName) -> String {
        format!("{}CodeKey", function.camel())
    }
}

/// The per-region bucket the caller uploads function zips to before
/// deploying: `<stack>-assets-<account>-<region>`. It lives outside the
/// stack (the stack's functions need their code at creation).
pub fn asset_bucket_name(stack_name: &str, account: &str, region: &str) -> String {
    format!("{stack_name}-assets-{account}-{region}")
}

/// The artifact keys in the asset bucket, by function and architecture
/// (content-hash keys, so new code is a new key and so a stack change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assets {
    pub keys: BTreeMap<(FunctionName, Architecture), String>,
}

impl Assets {
    /// `<function>/<arch>/<sha256>.zip`.
    pub fn key_for(function: FunctionName, architecture: Architecture, sha256_hex: &str) -> String {
        format!("{function}/{}/{sha256_hex}.zip", architecture.as_str())
    }

    /// What each function of `region` needs, for the caller to build.
    pub fn needed(region: &RegionPlan) -> Vec<(FunctionName, Architecture)> {
        region
            .functions
            .iter()
            .map(|(f, c)| (*f, c.architecture))
            .collect()
    }
}

/// The functions' own metrics the dashboard charts per function.
pub const DASHBOARD_METRICS: [Metric; 7] = [
    Metric::ColdStart,
    Metric::InitDuration,
    Metric::DetectTime,
    Metric::EmbedTime,
    Metric::FacesFound,
    Metric::FacesMatched,
    Metric::ChunkTime,
];

/// The S3 events that start recognition of an upload.
const UPLOAD_EVENTS: &str = "s3:ObjectCreated:*";

/// The bucket → queue notification the template declares, for deploy to
/// check once the stack is up: a CloudFormation implementation that skips
/// a bucket's `NotificationConfiguration` (moto does) gets it applied with
/// the S3 API, from the stack outputs. On AWS the check finds it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketNotification {
    /// Notification configuration id.
    pub id: &'static str,
    /// Output holding the bucket name.
    pub bucket_output: &'static str,
    /// Output holding the target queue ARN.
    pub queue_arn_output: &'static str,
    pub events: Vec<&'static str>,
    pub key_prefix: String,
}

/// One region's stack: its template and what deploy applies after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub stack_name: String,
    pub region: String,
    pub template: Template,
    pub notifications: Vec<BucketNotification>,
}

/// The stack of one region of a deployment.
#[derive(Debug, Clone)]
pub struct FaceStack<'a> {
    deployment: &'a Deployment,
    region: &'a RegionPlan,
    scope: Scope,
    bucket: DataBucket,
    people: Table,
    results: Table,
    results_queue: FifoQueue,
    work_queue: WorkQueue,
    api_keys: Table,
    scan_jobs: Table,
    scan_queue: WorkQueue,
    results_topic: Topic,
}

impl<'a> FaceStack<'a> {
    pub fn new(deployment: &'a Deployment, region: &'a RegionPlan) -> Self {
        let mut tags = deployment.tags.clone();
        tags.insert("face:region".into(), region.region.clone());
        let scope = Scope {
            stack_name: deployment.name.clone(),
            tags,
        };
        let bucket = DataBucket {
            logical_id: "DataBucket",
            noncurrent_version_expiration_days: region.noncurrent_version_expiration_days,
            retain: deployment.production,
            notifications: Vec::new(),
        };
        let mut stack = FaceStack {
            deployment,
            region,
            scope,
            people: Table {
                logical_id: "PeopleTable",
                suffix: "people",
                partition_key: tables::people::PARTITION_KEY,
                sort_key: Some(tables::people::SORT_KEY),
                point_in_time_recovery: region.point_in_time_recovery,
                ttl_attribute: None,
                retain: deployment.production,
            },
            results: Table {
                logical_id: "ResultsTable",
                suffix: "results",
                partition_key: tables::results::PARTITION_KEY,
                sort_key: None,
                point_in_time_recovery: region.point_in_time_recovery,
                ttl_attribute: None,
                retain: deployment.production,
            },
            // `key#<sha256 hex>` (a key, never the key itself) and
            // `name#<name>` items; per-window usage items expire by TTL.
            api_keys: Table {
                logical_id: "ApiKeysTable",
                suffix: "api-keys",
                partition_key: tables::api_keys::PARTITION_KEY,
                sort_key: None,
                point_in_time_recovery: region.point_in_time_recovery,
                ttl_attribute: Some(tables::api_keys::TTL_ATTRIBUTE),
                retain: deployment.production,
            },
            results_queue: FifoQueue {
                logical_id: "ResultsQueue",
                suffix: "results",
            },
            work_queue: WorkQueue {
                logical_id: "WorkQueue",
                suffix: "work",
                visibility_timeout_s: region.work_queue.visibility_timeout_s,
                max_receive_count: region.work_queue.max_receive_count,
                source_bucket: Some(bucket.clone()),
            },
            scan_jobs: Table {
                logical_id: "ScanJobsTable",
                suffix: "scan-jobs",
                partition_key: tables::scan_jobs::PARTITION_KEY,
                sort_key: None,
                point_in_time_recovery: region.point_in_time_recovery,
                ttl_attribute: None,
                retain: deployment.production,
            },
            // Fed by recognize/api (plan requests) and by scan-worker
            // itself (one message per chunk); hidden for six times the
            // worker's timeout, as AWS advises for a queue feeding a function.
            scan_queue: WorkQueue {
                logical_id: "ScanQueue",
                suffix: "scan",
                visibility_timeout_s: (region.functions[&FunctionName::ScanWorker].timeout_s
                    * crate::plan::defaults::VISIBILITY_TIMEOUT_FACTOR)
                    .min(43_200),
                max_receive_count: region.work_queue.max_receive_count,
                source_bucket: None,
            },
            results_topic: Topic {
                logical_id: "ResultsTopic",
                suffix: "results",
            },
            bucket,
        };
        stack.bucket.notifications = vec![QueueNotification {
            queue_arn: stack.work_queue.arn(),
            key_prefix: deployment.upload_prefix.clone(),
            events: vec![UPLOAD_EVENTS],
            queue_policy_logical_id: stack.work_queue.policy_logical_id(),
        }];
        stack
    }

    /// The physical names of the stack's tables (what a production
    /// template retains).
    pub fn table_names(&self) -> Vec<String> {
        [&self.people, &self.results, &self.api_keys, &self.scan_jobs]
            .map(|t| self.scope.physical_name(t.suffix))
            .to_vec()
    }

    /// Environment and least-privilege grants of each function, exactly as
    /// lambdas/README.md lists them.
    fn function_props(
        &self,
        function: FunctionName,
        assets: &Assets,
    ) -> Result<FunctionProps, StackError> {
        let config = self.region.functions[&function];
        let key =
            assets
                .keys
                .get(&(function, config.architecture))
                .ok_or(StackError::MissingAsset {
                    function,
                    architecture: config.architecture.as_str(),
                })?;
        // Parameters, so that any tool deploys the template once the zips
        // are uploaded: ours passes none and gets the defaults.
        let code = CodeLocation {
            bucket: cfn::if_then(
                parameters::DEFAULT_CODE_BUCKET,
                cfn::join([
                    cfn::text(self.scope.physical_name("assets-")),
                    cfn::account_id(),
                    cfn::text("-"),
                    cfn::region(),
                ]),
                cfn::reference(parameters::CODE_BUCKET),
            ),
            key: cfn::reference(&parameters::code_key(function)),
            default_key: key.clone(),
        };
        let b = &self.bucket;
        let upload_prefix = self.deployment.upload_prefix.as_str();
        let collections = b.objects_arn(&format!("{COLLECTIONS_PREFIX}*"));
        let mut environment = BTreeMap::new();
        if function != FunctionName::Authorizer {
            environment.insert(env::BUCKET, b.name());
            // Every S3 call expects the stack's account to own the bucket.
            environment.insert(env::BUCKET_OWNER, cfn::account_id());
            environment.insert(env::PEOPLE_TABLE, self.people.name());
        }
        if matches!(function, FunctionName::Recognize | FunctionName::Api) {
            environment.insert(env::RESULTS_TABLE, self.results.name());
            environment.insert(env::UPLOAD_PREFIX, cfn::text(upload_prefix));
            environment.insert(
                env::DEFAULT_COLLECTION,
                cfn::text(&self.deployment.default_collection),
            );
        }
        if matches!(function, FunctionName::Api | FunctionName::Authorizer) {
            environment.insert(env::API_KEYS_TABLE, self.api_keys.name());
        }
        // Video jobs: started by recognize (MP4 uploads) and api (POST
        // /v1/scans), planned and scanned by scan-worker.
        if matches!(
            function,
            FunctionName::Recognize | FunctionName::Api | FunctionName::ScanWorker
        ) {
            environment.insert(env::JOBS_TABLE, self.scan_jobs.name());
            environment.insert(env::SCAN_QUEUE_URL, self.scan_queue.url());
        }
        if function == FunctionName::ScanWorker {
            environment.insert(env::RESULTS_TABLE, self.results.name());
            environment.insert(env::RESULTS_QUEUE_URL, self.results_queue.url());
            environment.insert(env::RESULTS_TOPIC_ARN, self.results_topic.arn());
            environment.insert(
                env::SCAN_MAX_RECEIVE_COUNT,
                cfn::text(self.scan_queue.max_receive_count.to_string()),
            );
        }
        // Starting a job: its record, and the plan request.
        let start_jobs = [
            Statement::allow(
                &["dynamodb:GetItem", "dynamodb:PutItem"],
                [self.scan_jobs.arn()],
            ),
            Statement::allow(&["sqs:SendMessage"], [self.scan_queue.arn()]),
        ];
        let grants = match function {
            FunctionName::Enroll => vec![
                Statement::allow(&["s3:GetObject"], [b.objects_arn("*")]),
                Statement::allow(&["s3:PutObject", "s3:DeleteObject"], [collections.clone()]),
                b.list_under(&[COLLECTIONS_PREFIX, upload_prefix]),
                Statement::allow(
                    &[
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:Query",
                    ],
                    [self.people.arn()],
                ),
            ],
            FunctionName::Recognize => {
                environment.insert(env::RESULTS_QUEUE_URL, self.results_queue.url());
                vec![
                    Statement::allow(&["s3:GetObject"], [b.objects_arn("*")]),
                    b.list_under(&[COLLECTIONS_PREFIX, upload_prefix]),
                    Statement::allow(
                        &["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                        [self.people.arn()],
                    ),
                    // UpdateItem marks a result delivered to the queue.
                    Statement::allow(
                        &[
                            "dynamodb:PutItem",
                            "dynamodb:GetItem",
                            "dynamodb:UpdateItem",
                        ],
                        [self.results.arn()],
                    ),
                    Statement::allow(&["sqs:SendMessage"], [self.results_queue.arn()]),
                    Statement::allow(
                        &[
                            "sqs:ReceiveMessage",
                            "sqs:DeleteMessage",
                            "sqs:GetQueueAttributes",
                            "sqs:ChangeMessageVisibility",
                        ],
                        [self.work_queue.arn()],
                    ),
                ]
                .into_iter()
                .chain(start_jobs)
                .collect()
            }
            // Ranged reads of videos and the collection's people; a job's
            // chunk results, montage and result under scans/.
            FunctionName::ScanWorker => vec![
                Statement::allow(&["s3:GetObject"], [b.objects_arn("*")]),
                Statement::allow(
                    &["s3:PutObject"],
                    [b.objects_arn(&format!("{SCANS_PREFIX}*"))],
                ),
                b.list_under(&[COLLECTIONS_PREFIX, SCANS_PREFIX, upload_prefix]),
                Statement::allow(&["dynamodb:GetItem"], [self.people.arn()]),
                Statement::allow(
                    &["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    [self.scan_jobs.arn()],
                ),
                Statement::allow(
                    &[
                        "dynamodb:PutItem",
                        "dynamodb:GetItem",
                        "dynamodb:UpdateItem",
                    ],
                    [self.results.arn()],
                ),
                Statement::allow(&["sqs:SendMessage"], [self.results_queue.arn()]),
                Statement::allow(
                    &[
                        "sqs:SendMessage",
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ChangeMessageVisibility",
                    ],
                    [self.scan_queue.arn()],
                ),
                Statement::allow(&["sns:Publish"], [self.results_topic.arn()]),
            ],
            FunctionName::Api => vec![
                Statement::allow(&["s3:GetObject"], [b.objects_arn("*")]),
                // Presigned upload URLs are signed with this role, so it
                // holds what they allow: PUTs under the upload prefix.
                Statement::allow(
                    &["s3:PutObject"],
                    [
                        b.objects_arn(&format!("{upload_prefix}*")),
                        collections.clone(),
                    ],
                ),
                // Deleting a collection removes its people and its uploads.
                Statement::allow(
                    &["s3:DeleteObject"],
                    [
                        b.objects_arn(&format!("{upload_prefix}*")),
                        collections.clone(),
                    ],
                ),
                b.list_under(&[COLLECTIONS_PREFIX, upload_prefix]),
                Statement::allow(
                    &[
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:Query",
                        "dynamodb:UpdateItem",
                    ],
                    [self.people.arn()],
                ),
                Statement::allow(&["dynamodb:GetItem"], [self.results.arn()]),
                // Per-key usage counters.
                Statement::allow(&["dynamodb:UpdateItem"], [self.api_keys.arn()]),
            ]
            .into_iter()
            .chain(start_jobs)
            .collect(),
            // Looks a key's hash up; nothing else.
            FunctionName::Authorizer => vec![Statement::allow(
                &["dynamodb:GetItem"],
                [self.api_keys.arn()],
            )],
        };
        Ok(FunctionProps {
            function,
            config,
            code,
            environment,
            grants,
            log_retention_days: self.region.log_retention_days,
            xray_tracing: self.region.xray_tracing,
        })
    }

    /// The template and the post-stack notifications.
    pub fn synth(&self, assets: &Assets) -> Result<Stack, StackError> {
        let scope = &self.scope;
        let mut t = Template::new(format!(
            "Face recognition stack {} in {} (face-stacks)",
            self.deployment.name, self.region.region
        ));
        self.bucket.synth(scope, &mut t);
        self.people.synth(scope, &mut t);
        self.results.synth(scope, &mut t);
        self.api_keys.synth(scope, &mut t);
        self.results_queue.synth(scope, &mut t);
        self.work_queue.synth(scope, &mut t);
        self.scan_jobs.synth(scope, &mut t);
        self.scan_queue.synth(scope, &mut t);
        self.results_topic.synth(scope, &mut t);

        t.add_parameter(
            parameters::CODE_BUCKET,
            "Bucket of the function zips; empty: <stack>-assets-<account>-<region>",
            "",
        );
        t.add_condition(
            parameters::DEFAULT_CODE_BUCKET,
            serde_json::json!({ "Fn::Equals": [cfn::reference(parameters::CODE_BUCKET), ""] }),
        );
        let mut functions = BTreeMap::new();
        for function in FunctionName::ALL {
            let f = Function {
                props: self.function_props(function, assets)?,
            };
            t.add_parameter(
                &parameters::code_key(function),
                &format!("Key of the {function} zip in the code bucket"),
                &f.props.code.default_key,
            );
            f.synth(scope, &mut t);
            functions.insert(function, f);
        }

        let recognize = &functions[&FunctionName::Recognize];
        QueueEventSource {
            logical_id: "WorkQueueToRecognize".into(),
            queue_arn: self.work_queue.arn(),
            function_name: recognize.name(),
            batch_size: self.region.work_queue.batch_size,
            max_concurrency: recognize.props.config.max_concurrency,
        }
        .synth(scope, &mut t);

        let scan_worker = &functions[&FunctionName::ScanWorker];
        QueueEventSource {
            logical_id: "ScanQueueToScanWorker".into(),
            queue_arn: self.scan_queue.arn(),
            function_name: scan_worker.name(),
            // One chunk per invocation: a chunk is seconds of CPU work.
            batch_size: 1,
            max_concurrency: scan_worker.props.config.max_concurrency,
        }
        .synth(scope, &mut t);

        let api = RestApi {
            logical_id: "RestApi",
            suffix: "api",
            handler_arn: functions[&FunctionName::Api].arn(),
            authorizer_arn: functions[&FunctionName::Authorizer].arn(),
            throttling: self.region.api,
        };
        api.synth(scope, &mut t);

        let dlq_name = |q: &WorkQueue| cfn::get_att(&q.dlq_logical_id(), "QueueName");
        let alarms = Alarms {
            topic_logical_id: "AlarmTopic",
            dead_letter_queues: vec![
                (self.work_queue.dlq_logical_id(), dlq_name(&self.work_queue)),
                (self.scan_queue.dlq_logical_id(), dlq_name(&self.scan_queue)),
            ],
            functions: functions
                .values()
                .map(|f| (f.logical_id(), f.name()))
                .collect(),
            email: self.deployment.alarm_email.clone(),
        };
        alarms.synth(scope, &mut t);
        Dashboard {
            logical_id: "Dashboard",
            functions: FunctionName::ALL
                .iter()
                .map(|f| Function::physical_name(scope, *f))
                .collect(),
            queues: [&self.work_queue, &self.scan_queue]
                .map(|q| scope.physical_name(q.suffix))
                .to_vec(),
            dead_letter_queues: [&self.work_queue, &self.scan_queue]
                .map(|q| scope.physical_name(&format!("{}-dlq", q.suffix)))
                .to_vec(),
            function_metrics: DASHBOARD_METRICS.to_vec(),
        }
        .synth(scope, &mut t);

        use outputs::*;
        t.add_output(DATA_BUCKET_NAME, "data bucket", self.bucket.name());
        t.add_output(PEOPLE_TABLE_NAME, "people table", self.people.name());
        t.add_output(RESULTS_TABLE_NAME, "results table", self.results.name());
        t.add_output(
            RESULTS_QUEUE_URL,
            "results FIFO queue",
            self.results_queue.url(),
        );
        t.add_output(WORK_QUEUE_URL, "uploads work queue", self.work_queue.url());
        t.add_output(
            WORK_QUEUE_ARN,
            "uploads work queue ARN",
            self.work_queue.arn(),
        );
        t.add_output(
            DEAD_LETTER_QUEUE_URL,
            "uploads that failed max_receive_count times",
            self.work_queue.dlq_url(),
        );
        t.add_output(
            UPLOAD_PREFIX,
            "uploads under this prefix are recognized",
            cfn::text(&self.deployment.upload_prefix),
        );
        t.add_output(
            DEFAULT_COLLECTION,
            "collection of uploads whose key names none",
            cfn::text(&self.deployment.default_collection),
        );
        t.add_output(
            WORK_SHARE,
            "share of uploads clients route to this region",
            cfn::text(self.region.work_share.to_string()),
        );
        t.add_output(
            SCAN_JOBS_TABLE_NAME,
            "video scan jobs",
            self.scan_jobs.name(),
        );
        t.add_output(
            SCAN_QUEUE_URL,
            "video scan queue (plans and chunks)",
            self.scan_queue.url(),
        );
        t.add_output(
            SCAN_DEAD_LETTER_QUEUE_URL,
            "scan chunks that failed max_receive_count times",
            self.scan_queue.dlq_url(),
        );
        t.add_output(
            RESULTS_TOPIC_ARN,
            "SNS topic of finished video jobs (subscribe here)",
            self.results_topic.arn(),
        );
        t.add_output(
            ALARM_TOPIC_ARN,
            "SNS topic of the alarms (DLQ depth, function errors, throttles)",
            alarms.topic_arn(),
        );
        t.add_output(API_URL, "HTTPS API base URL (stage live)", api.url());
        t.add_output(REST_API_ID, "API Gateway REST API id", api.id());
        t.add_output(
            API_KEYS_TABLE_NAME,
            "API keys table (hashed keys, cargo xtask api-key)",
            self.api_keys.name(),
        );

        Ok(Stack {
            stack_name: self.deployment.name.clone(),
            region: self.region.region.clone(),
            template: t,
            notifications: vec![BucketNotification {
                id: "uploads-to-work-queue",
                bucket_output: DATA_BUCKET_NAME,
                queue_arn_output: WORK_QUEUE_ARN,
                events: vec![UPLOAD_EVENTS],
                key_prefix: self.deployment.upload_prefix.clone(),
            }],
        })
    }
}

impl Deployment {
    /// One stack per region, in region order.
    pub fn synth(&self, assets: &Assets) -> Result<Vec<Stack>, StackError> {
        self.regions
            .iter()
            .map(|r| FaceStack::new(self, r).synth(assets))
            .collect()
    }
}
