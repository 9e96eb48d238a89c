//! The local round trip of issue 5 against a moto server on loopback:
//! deploy, a second deploy that changes nothing, a deploy stopped before
//! its change set ran and one killed half-way that converge when run
//! again, teardown that leaves nothing, and deploy again, with a smoke
//! test after the first deploy. Runs the real `cargo xtask` binary (it
//! builds the functions if their zips are missing).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ok, xtask};
use local_aws::MotoServer;

/// Counts of what the deployment can leave behind, listed in moto.
#[derive(Debug, PartialEq, Eq)]
struct Inventory {
    stacks: usize,
    buckets: usize,
    functions: usize,
    roles: usize,
    queues: usize,
    tables: usize,
    log_groups: usize,
}

async fn inventory(moto: &MotoServer) -> Inventory {
    let config = moto.sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let stacks = cfn.describe_stacks().send().await.map(|o| {
        o.stacks()
            .iter()
            .filter(|s| {
                s.stack_status()
                    .is_some_and(|st| st.as_str() != "DELETE_COMPLETE")
            })
            .count()
    });
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let iam = aws_sdk_iam::Client::new(&config);
    // moto preloads AWS-managed policies, never roles; count face-local's.
    let roles = iam.list_roles().send().await.unwrap();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    Inventory {
        stacks: stacks.unwrap_or(0),
        buckets: s3.list_buckets().send().await.unwrap().buckets().len(),
        functions: aws_sdk_lambda::Client::new(&config)
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions()
            .len(),
        roles: roles.roles().len(),
        queues: aws_sdk_sqs::Client::new(&config)
            .list_queues()
            .send()
            .await
            .unwrap()
            .queue_urls()
            .len(),
        tables: aws_sdk_dynamodb::Client::new(&config)
            .list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .len(),
        log_groups: logs
            .describe_log_groups()
            .send()
            .await
            .unwrap()
            .log_groups()
            .len(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_round_trip_converges_and_leaves_nothing() {
    let moto = MotoServer::start().expect("moto");
    let rt_moto = &moto;

    let first = ok(&xtask(rt_moto, &["deploy", "--stack", "local"]));
    assert!(first.contains("us-east-1: Created"), "{first}");
    let deployed = inventory(rt_moto).await;
    assert_eq!(
        deployed,
        Inventory {
            stacks: 1,
            buckets: 2,   // data + assets
            functions: 5, // enroll, recognize, scan-worker, api, authorizer
            roles: 5,
            queues: 5, // work, scan and their DLQs, results FIFO
            tables: 4, // people, results, api keys, scan jobs
            log_groups: 5,
        }
    );
    let outputs = common::local_record(rt_moto);
    assert!(
        outputs["outputs"]["WorkQueueUrl"]
            .as_str()
            .unwrap()
            .ends_with("/face-local-work")
    );

    // The notification deploy applied after the stack.
    let config = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = outputs["outputs"]["DataBucketName"].as_str().unwrap();
    let n = s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(n.queue_configurations().len(), 1);

    // The smoke test: enroll, uploads delivered through the deployed
    // notification and event source mapping (the local dispatcher), results
    // in the table and on the queue.
    let smoke = ok(&xtask(rt_moto, &["smoke-test", "--stack", "local"]));
    assert!(
        smoke.contains("kit_harington found in uploads/smoke/")
            && smoke.contains("face_recognition_kit_with_rose.jpg")
            && smoke.contains("smoke test of face-local passed"),
        "{smoke}"
    );

    let second = ok(&xtask(rt_moto, &["deploy", "--stack", "local"]));
    assert!(second.contains("us-east-1: NoChanges"), "{second}");

    // Objects, versions and delete markers must not stop the teardown.
    for body in ["a", "b"] {
        s3.put_object()
            .bucket(bucket)
            .key("uploads/x.jpg")
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    s3.delete_object()
        .bucket(bucket)
        .key("uploads/x.jpg")
        .send()
        .await
        .unwrap();

    ok(&xtask(rt_moto, &["teardown", "--stack", "local"]));
    let empty = Inventory {
        stacks: 0,
        buckets: 0,
        functions: 0,
        roles: 0,
        queues: 0,
        tables: 0,
        log_groups: 0,
    };
    assert_eq!(inventory(rt_moto).await, empty);
    // Teardown again: already gone is success.
    ok(&xtask(rt_moto, &["teardown", "--stack", "local"]));

    // A deploy stopped between creating its change set and executing it
    // leaves a stack in REVIEW_IN_PROGRESS (made here directly, since a
    // kill lands there only by chance): the next deploy converges.
    let config = moto.sdk_config().await;
    aws_sdk_cloudformation::Client::new(&config)
        .create_change_set()
        .stack_name("face-local")
        .change_set_name("stopped-deploy")
        .change_set_type(aws_sdk_cloudformation::types::ChangeSetType::Create)
        .template_body(r#"{"Resources":{"Queue":{"Type":"AWS::SQS::Queue"}}}"#)
        .send()
        .await
        .expect("a change set left unexecuted");
    let resumed = ok(&xtask(rt_moto, &["deploy", "--stack", "local"]));
    assert!(resumed.contains("REVIEW_IN_PROGRESS"), "{resumed}");
    assert!(resumed.contains("deployed face-local"), "{resumed}");
    assert_eq!(inventory(rt_moto).await, deployed);
    ok(&xtask(rt_moto, &["teardown", "--stack", "local"]));
    assert_eq!(inventory(rt_moto).await, empty);

    // A deploy killed half-way converges when run again.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "--stack", "local"])
        .envs(common::stack_env(&moto))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().ok();
    child.wait().ok();
    let again = ok(&xtask(rt_moto, &["deploy", "--stack", "local"]));
    assert!(again.contains("deployed face-local"), "{again}");
    assert_eq!(inventory(rt_moto).await, deployed);

    ok(&xtask(rt_moto, &["teardown", "--stack", "local"]));
    assert_eq!(inventory(rt_moto).await, empty);
}
