//! `S3Objects` against moto's S3: a versioned bucket like the stacks' own,
//! every call with `ExpectedBucketOwner` (moto accepts the header; it does
//! not check it, the fake connection in `aws.rs` shows it is sent).

use face_service::StorageError;
use face_service::aws::{S3Objects, s3_client};
use face_service::storage::ObjectStore;
use local_aws::MotoServer;

/// moto's account.
const OWNER: &str = "123456789012";

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_read_gets_its_version_after_an_overwrite_and_a_delete() {
    let moto = MotoServer::start().expect("moto starts (target/tools)");
    let s3 = s3_client(&moto.sdk_config().await);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket("data")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let objects = S3Objects::new(s3, Some(OWNER.into()));
    let key = "uploads/c/door.jpg";
    let mut versions = Vec::new();
    for bytes in [&b"first"[..], b"second"] {
        objects.put("data", key, bytes.to_vec()).await.unwrap();
        let head = objects.head("data", key).await.unwrap();
        versions.push(head.version_id.expect("a versioned bucket names versions"));
    }
    assert_ne!(versions[0], versions[1]);

    let first = objects
        .get("data", key, Some(&versions[0]), 100)
        .await
        .unwrap();
    assert_eq!(first.bytes, b"first");
    assert_eq!(first.version_id.as_deref(), Some(versions[0].as_str()));
    let current = objects.get("data", key, None, 100).await.unwrap();
    assert_eq!(current.bytes, b"second");
    let listed = objects.list("data", "uploads/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, b"second".len() as u64, "sizes come listed");

    // Deleted: the key is gone, its versions are not.
    objects.delete("data", key).await.unwrap();
    let gone = objects.get("data", key, None, 100).await.unwrap_err();
    assert!(matches!(gone, StorageError::NotFound { .. }), "{gone:?}");
    let kept = objects
        .get("data", key, Some(&versions[0]), 100)
        .await
        .unwrap();
    assert_eq!(kept.bytes, b"first");
    let never = objects
        .get("data", key, Some("no-such-version"), 100)
        .await
        .unwrap_err();
    assert!(matches!(never, StorageError::NotFound { .. }), "{never:?}");
}

/// `DynamoJobs::set_planned` against moto's DynamoDB: only the first plan
/// message of a `queued` job wins (and that same message again, a retried
/// update); a duplicate (or a plan of an ended job) changes nothing and
/// says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_planned_once_and_only_while_queued() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use face_api::jobs::JobStatus;
    use face_contracts::tables::scan_jobs;
    use face_service::aws::DynamoJobs;
    use face_service::storage::{JobPlan, JobRecord, JobsTable};

    let moto = MotoServer::start().expect("moto starts (target/tools)");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    client
        .create_table()
        .table_name("jobs")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(scan_jobs::PARTITION_KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(scan_jobs::PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let jobs = DynamoJobs::new(client, "jobs");
    let job = JobRecord::queued("b", "uploads/c/v.mp4", "\"e1\"", "c", None);
    assert!(jobs.create_if_absent(&job).await.unwrap());
    let plan = JobPlan {
        chunks_total: 3,
        frames: 900,
        fps: 30.0,
        duration_s: 30.0,
    };
    assert!(jobs.set_planned(&job.job_id, &plan, "m1").await.unwrap());
    let running = jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.chunks_total, Some(3));
    assert_eq!(running.planned_by.as_deref(), Some("m1"));
    // The same plan message again (the SDK's retry of an update DynamoDB
    // applied but whose answer was lost): it wins again.
    assert!(jobs.set_planned(&job.job_id, &plan, "m1").await.unwrap());
    assert_eq!(jobs.get(&job.job_id).await.unwrap().unwrap(), running);

    // Another plan message (a duplicate): it loses and changes nothing.
    let again = JobPlan {
        chunks_total: 4,
        ..plan
    };
    assert!(!jobs.set_planned(&job.job_id, &again, "m2").await.unwrap());
    assert_eq!(jobs.get(&job.job_id).await.unwrap().unwrap(), running);

    assert!(
        jobs.finish(&job.job_id, JobStatus::Failed, Some("x"))
            .await
            .unwrap()
    );
    // Ended: not planned again, by its own planner either.
    for by in ["m1", "m2"] {
        assert!(!jobs.set_planned(&job.job_id, &plan, by).await.unwrap());
    }
    let failed = jobs.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(!jobs.set_planned("no-such-job", &plan, "m1").await.unwrap());
}
