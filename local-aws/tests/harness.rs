//! The harness against the real tools: moto serves S3 through the SDK, and
//! the RIE runs a bootstrap (a tiny shell custom runtime, so this needs no
//! musl build) with two instances side by side.

use std::path::Path;

use local_aws::{MotoServer, Rie, RieOptions, Tools};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn moto_serves_s3_path_style_and_attach_reuses_it() {
    let moto = MotoServer::start().unwrap();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("harness").send().await.unwrap();
    s3.put_object()
        .bucket("harness")
        .key("a/b.txt")
        .body(b"hello".to_vec().into())
        .send()
        .await
        .unwrap();

    let attached = MotoServer::attach(moto.endpoint_url()).unwrap();
    let sdk2 = attached.sdk_config().await;
    let s3b = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk2)
            .force_path_style(true)
            .build(),
    );
    let got = s3b
        .get_object()
        .bucket("harness")
        .key("a/b.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );

    attached.reset().unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "reset forgot the bucket");

    let url = moto.endpoint_url().to_string();
    drop(attached);
    assert!(
        MotoServer::attach(&url).is_ok(),
        "dropping an attached server kills nothing"
    );
    drop(moto);
    assert!(
        MotoServer::attach(&url).is_err(),
        "dropping the owner stops moto"
    );
}

/// A Lambda custom runtime in sh + curl: echoes the event and `GREETING`,
/// or reports a function error when the event has a `fail` key.
const ECHO_RUNTIME: &str = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "echo runtime init, greeting $GREETING" >&2
while true; do
  HEADERS=$(mktemp)
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -i Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  case "$EVENT" in
    *fail*) curl -sS -X POST "$API/invocation/$ID/error" -d '{"errorType":"Boom","errorMessage":"asked to fail"}' >/dev/null ;;
    *) curl -sS -X POST "$API/invocation/$ID/response" -d "{\"echo\":$EVENT,\"greeting\":\"$GREETING\",\"region\":\"$AWS_REGION\"}" >/dev/null ;;
  esac
done
"#;

fn write_runtime(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("bootstrap");
    std::fs::write(&path, ECHO_RUNTIME).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn two_rie_instances_run_side_by_side_and_report_function_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = write_runtime(dir.path());
    let tools = Tools::ensure_default().unwrap();
    let options = |name: &str| RieOptions {
        function_name: name.into(),
        log_dir: Some(dir.path().join("logs")),
        ..RieOptions::default()
    };
    let a = Rie::start_with(
        tools,
        &options("a"),
        &bootstrap,
        &env(&[("GREETING", "hi a"), ("AWS_REGION", "eu-west-1")]),
    )
    .unwrap();
    let b = Rie::start_with(
        tools,
        &options("b"),
        &bootstrap,
        &env(&[("GREETING", "hi b"), ("AWS_REGION", "eu-west-1")]),
    )
    .unwrap();
    assert!(
        a.init_duration().is_none(),
        "init happens at the first invoke"
    );

    let ra = a.invoke(&json!({"n": 1})).unwrap().ok().unwrap();
    let rb = b.invoke(&json!({"n": 2})).unwrap().ok().unwrap();
    assert_eq!(
        ra,
        json!({"echo": {"n": 1}, "greeting": "hi a", "region": "eu-west-1"})
    );
    assert_eq!(
        rb,
        json!({"echo": {"n": 2}, "greeting": "hi b", "region": "eu-west-1"})
    );
    assert!(a.init_duration().is_some(), "log: {}", a.log_tail(20));

    let failed = b.invoke(&json!({"fail": true})).unwrap();
    let error = failed.result.clone().unwrap_err();
    assert_eq!(
        (error.error_type.as_str(), error.error_message.as_str()),
        ("Boom", "asked to fail")
    );
    assert!(matches!(
        failed.ok(),
        Err(local_aws::Error::Function { .. })
    ));
    // The instance still serves after a function error.
    assert_eq!(
        b.invoke(&json!({"n": 3})).unwrap().ok().unwrap()["echo"],
        json!({"n": 3})
    );
    assert!(
        a.log_tail(50).contains("greeting hi a"),
        "the bootstrap's stderr is in the log"
    );

    let url = a.invocations_url();
    drop(a);
    let after = ureq::post(&url).send("{}");
    assert!(after.is_err(), "the RIE still answers after drop");
}

#[test]
fn a_missing_bootstrap_is_a_clear_error() {
    let err = Rie::start(Path::new("/nonexistent/bootstrap"), &[]).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bootstrap"), "{err}");
}
