//! Every environment variable the project reads, by name. The stack sets
//! [`SET_BY_STACK`] on the functions (which of them on which function:
//! `FaceStack::function_props`, listed in `lambdas/README.md`); the rest
//! are read by the functions, the clients and the tooling when a person or
//! a test sets them.
//!
//! No other crate writes a `FACE_*` name as a string (a tidy test checks).

/// The data bucket: collections, uploads, scan jobs' objects.
pub const BUCKET: &str = "FACE_BUCKET";
/// The stack's account id (12 digits), sent on every S3 call as
/// `ExpectedBucketOwner`; unset, no owner is checked.
pub const BUCKET_OWNER: &str = "FACE_BUCKET_OWNER";
/// The people table.
pub const PEOPLE_TABLE: &str = "FACE_PEOPLE_TABLE";
/// The results table.
pub const RESULTS_TABLE: &str = "FACE_RESULTS_TABLE";
/// The results FIFO queue's URL.
pub const RESULTS_QUEUE_URL: &str = "FACE_RESULTS_QUEUE_URL";
/// The prefix of the uploads that trigger recognition; unset:
/// [`defaults::UPLOAD_PREFIX`].
pub const UPLOAD_PREFIX: &str = "FACE_UPLOAD_PREFIX";
/// The collection of uploads whose key names none; unset:
/// [`defaults::DEFAULT_COLLECTION`].
pub const DEFAULT_COLLECTION: &str = "FACE_DEFAULT_COLLECTION";
/// The API keys table (the `api` function and the authorizer; `xtask
/// api-key` reads it from the stack's outputs).
pub const API_KEYS_TABLE: &str = "FACE_API_KEYS_TABLE";
/// The video scan jobs table.
pub const JOBS_TABLE: &str = "FACE_JOBS_TABLE";
/// The scan queue's URL: plan requests and chunk messages.
pub const SCAN_QUEUE_URL: &str = "FACE_SCAN_QUEUE_URL";
/// The SNS topic every ended video job is published to.
pub const RESULTS_TOPIC_ARN: &str = "FACE_RESULTS_TOPIC_ARN";
/// The scan queue's `maxReceiveCount`: a chunk failing its last receive
/// fails its job; unset: [`defaults::SCAN_MAX_RECEIVE_COUNT`].
pub const SCAN_MAX_RECEIVE_COUNT: &str = "FACE_SCAN_MAX_RECEIVE_COUNT";

/// Every variable the stack may set on a function.
pub const SET_BY_STACK: [&str; 12] = [
    BUCKET,
    BUCKET_OWNER,
    PEOPLE_TABLE,
    RESULTS_TABLE,
    RESULTS_QUEUE_URL,
    UPLOAD_PREFIX,
    DEFAULT_COLLECTION,
    API_KEYS_TABLE,
    JOBS_TABLE,
    SCAN_QUEUE_URL,
    RESULTS_TOPIC_ARN,
    SCAN_MAX_RECEIVE_COUNT,
];

/// Set by Lambda itself (not by the stack), and by `local-aws` on the RIE,
/// which does not: how the execution environment was started.
/// [`ON_DEMAND`] means a request is waiting for init to end; otherwise
/// (`provisioned-concurrency`, `snap-start`) the environment may be frozen
/// as soon as init ends. `face_service::models::InitType` reads it.
pub const LAMBDA_INITIALIZATION_TYPE: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";
/// [`LAMBDA_INITIALIZATION_TYPE`]'s value for an on-demand start.
pub const ON_DEMAND: &str = "on-demand";

/// Where a function reads its models from; unset: `models/` beside the
/// executable (`/var/task/models` on Lambda). The stack never sets it.
pub const MODELS_DIR: &str = "FACE_MODELS_DIR";

/// The API key of a client (`facectl --stack/--endpoint`, the demo's curl
/// lines) when none is given on the command line.
pub const API_KEY: &str = "FACE_API_KEY";
/// The local gateway's port (`cargo xtask serve`), instead of 8450.
pub const LOCAL_API_PORT: &str = "FACE_LOCAL_API_PORT";
/// A moto server the local stack uses instead of starting its own.
pub const LOCAL_AWS_ENDPOINT: &str = "FACE_LOCAL_AWS_ENDPOINT";
/// Where `cargo xtask deploy` writes each deployment's records
/// (`<deployment>/<region>.json`, read back by facectl and the coordinator)
/// and the local stack keeps its moto state and function logs; unset:
/// `target/deploy` (under the checkout for xtask, the working directory for
/// facectl). The local-stack tests give each test its own, so they can run
/// side by side without touching a developer's deployment.
pub const DEPLOY_DIR: &str = "FACE_DEPLOY_DIR";
/// The labelled data folder, when no `--data` is given.
pub const DATA_DIR: &str = "FACE_DATA_DIR";
/// The blobs mirror `cargo xtask fetch-blobs` reads first.
pub const BLOBS_MIRROR: &str = "FACE_BLOBS_MIRROR";

/// What a function assumes when a variable is unset, and what the stack
/// writes when the deployment YAML says nothing.
pub mod defaults {
    /// Of [`super::UPLOAD_PREFIX`] (and the YAML's `upload_prefix`).
    pub const UPLOAD_PREFIX: &str = "uploads/";
    /// Of [`super::DEFAULT_COLLECTION`] (and the YAML's
    /// `default_collection`).
    pub const DEFAULT_COLLECTION: &str = "default";
    /// Of [`super::SCAN_MAX_RECEIVE_COUNT`] (and the YAML's
    /// `max_receive_count`, which the scan queue shares with the work
    /// queue).
    pub const SCAN_MAX_RECEIVE_COUNT: u32 = 3;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_are_distinct_and_prefixed() {
        let all = [
            &SET_BY_STACK[..],
            &[MODELS_DIR, API_KEY, LOCAL_API_PORT, LOCAL_AWS_ENDPOINT],
            &[DATA_DIR, BLOBS_MIRROR],
        ]
        .concat();
        let distinct: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        for name in all {
            assert!(name.starts_with("FACE_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{name}"
            );
        }
        assert!(defaults::UPLOAD_PREFIX.ends_with('/'));
    }
}
