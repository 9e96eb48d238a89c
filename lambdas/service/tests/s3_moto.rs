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
