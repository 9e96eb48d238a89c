//! The real musl bootstraps of `enroll` and `recognize` under AWS's Runtime
//! Interface Emulator, against moto: every trigger, the side effects in S3,
//! DynamoDB and SQS, and the logs and EMF metrics they write.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use e2e::{BUCKET, FunctionResources, RESULTS, data, start_function};
use local_aws::{MotoServer, Rie};
use serde_json::{Value, json};

struct Aws {
    resources: FunctionResources,
    work_queue: String,
}

/// `aws.s3`, `aws.put(...)`: the shared resources' clients and helpers.
impl std::ops::Deref for Aws {
    type Target = FunctionResources;
    fn deref(&self) -> &FunctionResources {
        &self.resources
    }
}

/// The resources lambdas/README.md names: [`FunctionResources`] and the
/// work queue the bucket's uploads notify.
async fn provision(moto: &MotoServer) -> Aws {
    let resources = FunctionResources::provision(moto).await.unwrap();
    let (s3, sqs) = (&resources.s3, &resources.sqs);
    let work_queue = sqs
        .create_queue()
        .queue_name("faces-uploads")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let work_arn = sqs
        .get_queue_attributes()
        .queue_url(&work_queue)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    // Uploads notify the work queue, so the S3 events the functions get are
    // the ones moto really sends, not hand-made ones.
    s3.put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(work_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    Aws {
        resources,
        work_queue,
    }
}

impl Aws {
    /// Every message on a queue now (moto delivers synchronously), deleted.
    async fn drain(&self, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if batch.is_empty() {
                return all;
            }
            for m in &batch {
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            all.extend(batch);
        }
    }

    /// The S3 event moto queued for each upload, skipping its test event.
    async fn upload_events(&self) -> Vec<(String, String)> {
        self.drain(&self.work_queue)
            .await
            .into_iter()
            .map(|m| (m.message_id.unwrap(), m.body.unwrap()))
            .filter(|(_, body)| !body.contains("s3:TestEvent"))
            .collect()
    }

    async fn result_count(&self) -> usize {
        self.dynamo
            .scan()
            .table_name(RESULTS)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .len()
    }
}

fn function_env(moto: &MotoServer, aws: &Aws) -> Vec<(String, String)> {
    let mut env = aws.function_env(moto);
    env.push(("FACE_DEFAULT_COLLECTION".into(), "got".into()));
    env
}

fn start(function: &str, dir: &std::path::Path, env: &[(String, String)]) -> Rie {
    start_function(function, function, dir, env).unwrap()
}

fn invoke(rie: &Rie, event: &Value) -> Value {
    let invocation = rie.invoke(event).unwrap();
    match invocation.result {
        Ok(v) => v,
        Err(e) => panic!("function error {e:?}\n{}", rie.log_tail(40)),
    }
}

fn people_of(reply: &Value) -> BTreeSet<String> {
    reply["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["Match"]["Person"].as_str().map(String::from))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The bootstrap's stdout lines (in the RIE's log) that parse as JSON.
fn json_lines(rie: &Rie) -> Vec<Value> {
    std::fs::read_to_string(rie.log_path())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The EMF lines in `rie`'s log once there are `count`, each checked
/// against the EMF specification: metrics in namespace FaceRecognition
/// with the one dimension Function = `function`, every declared metric a
/// number, the timestamp in milliseconds.
fn emf_lines(rie: &Rie, function: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines: Vec<Value> = json_lines(rie)
            .into_iter()
            .filter(|v| v.get("_aws").is_some())
            .collect();
        if lines.len() >= count || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), count, "{lines:#?}\n{}", rie.log_tail(40));
    for line in &lines {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "FaceRecognition", "{line}");
        assert_eq!(directive["Dimensions"], json!([["Function"]]), "{line}");
        assert_eq!(line["Function"], function, "{line}");
        let declared = directive["Metrics"].as_array().unwrap();
        assert!(!declared.is_empty(), "{line}");
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} in {line}");
            assert!(
                ["Milliseconds", "Count"].contains(&metric["Unit"].as_str().unwrap()),
                "{line}"
            );
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_under_the_emulator_against_moto() {
    let moto = MotoServer::start().unwrap();
    let aws = provision(&moto).await;
    let env = function_env(&moto, &aws);
    let dir = tempfile::tempdir().unwrap();
    let enroll = start("enroll", dir.path(), &env);
    // recognize logs as `LoggingConfig` JSON makes it, enroll as the default
    // (text).
    let mut json_env = env.clone();
    json_env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
    json_env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
    let recognize = start("recognize", dir.path(), &json_env);

    // Enroll two people from photos in the bucket (enrollment photos do
    // not go under uploads/, so they trigger nothing).
    for (person, photos) in [
        (
            "kit_harington",
            [
                "recognition/kit_harington/face_recognition_john1.jpeg",
                "recognition/kit_harington/face_recognition_john2.jpeg",
            ],
        ),
        (
            "rose_leslie",
            [
                "recognition/rose_leslie/face_recognition_img1.jpg",
                "recognition/rose_leslie/face_recognition_img2.jpg",
            ],
        ),
    ] {
        let mut keys = Vec::new();
        for photo in photos {
            let key = format!("enroll/{person}/{}", photo.rsplit('/').next().unwrap());
            aws.put(&key, data(photo)).await.unwrap();
            keys.push(key);
        }
        let reply = invoke(
            &enroll,
            &json!({"action": "enroll", "collection": "got", "person": person,
                    "attributes": {"major": "drama"}, "images": keys}),
        );
        assert_eq!(reply["indexed"].as_array().unwrap().len(), 2, "{reply:#}");
    }
    let listed = invoke(&enroll, &json!({"action": "list", "collection": "got"}));
    let names: Vec<&str> = listed["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kit_harington", "rose_leslie"]);
    let embeddings = aws
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("collections/got/people/")
        .send()
        .await
        .unwrap()
        .key_count;
    assert_eq!(embeddings, Some(2));

    // Enroll's metrics: its cold start, then a line per enroll call; its
    // logs are plain text.
    let enroll_metrics = emf_lines(&enroll, "enroll", 3);
    assert_eq!(enroll_metrics[0]["ColdStart"], 1.0);
    for line in &enroll_metrics[1..] {
        assert_eq!(line["PhotosIndexed"], 2.0, "{line}");
    }
    let enroll_log = std::fs::read_to_string(enroll.log_path()).unwrap();
    assert!(
        enroll_log
            .lines()
            .any(|l| l.starts_with(" INFO") && l.contains("enrolled")),
        "{enroll_log}"
    );
    assert!(!enroll_log.contains('\u{1b}'), "no colour codes");

    // Synchronous invoke with a group photo.
    let group = data("detection/face_recognition_kit_with_rose.jpg");
    aws.put("inbox/group.jpg", group.clone()).await.unwrap();
    let before = now_ms();
    let reply = invoke(
        &recognize,
        &json!({"collection": "got", "image": {"bucket": BUCKET, "key": "inbox/group.jpg"}}),
    );
    let after = now_ms();
    assert_eq!(
        people_of(&reply),
        set(&["kit_harington", "rose_leslie"]),
        "{reply:#}"
    );
    assert_eq!(
        reply["face_model_version"],
        "yunet_s_dynamic+dlib_resnet_v1"
    );
    // Its first invocation: a cold start line, then the image's line with
    // the reply's own timings and counts.
    let metrics = emf_lines(&recognize, "recognize", 2);
    assert_eq!(metrics[0]["ColdStart"], 1.0, "{:#}", metrics[0]);
    assert!(metrics[0]["InitDuration"].as_f64().unwrap() > 0.0);
    let image = &metrics[1];
    let timestamp = image["_aws"]["Timestamp"].as_u64().unwrap();
    assert!((before..=after).contains(&timestamp), "ms: {timestamp}");
    assert_eq!(
        image["FacesFound"],
        reply["faces"].as_array().unwrap().len() as f64
    );
    assert_eq!(image["FacesMatched"], 2.0, "{image:#}");
    let detect_ms = reply["timings_ms"]["detect_ms"].as_f64().unwrap();
    assert_eq!(image["DetectTime"], (detect_ms * 1e3).round() / 1e3);
    // JSON logs, each inside the invocation's span.
    let logged = json_lines(&recognize)
        .into_iter()
        .find(|l| l["fields"]["message"] == "collection refreshed")
        .expect("a JSON log line");
    assert_eq!(logged["level"], "INFO");
    assert!(logged["span"]["requestId"].is_string(), "{logged}");

    // A bad image is a typed, non-retryable function error.
    let bad = recognize
        .invoke(&json!({"image": {"base64": "bm90IGFuIGltYWdl"}}))
        .unwrap();
    let err = bad.result.expect_err("a text file is not an image");
    assert_eq!(err.error_type, "FaceService.BadInput", "{err:?}");

    // The same S3 event twice: one result, one message.
    aws.drain(&aws.work_queue).await;
    aws.put("uploads/got/party.jpg", group).await.unwrap();
    let events = aws.upload_events().await;
    assert_eq!(events.len(), 1, "moto queued one event per upload");
    let s3_event: Value = serde_json::from_str(&events[0].1).unwrap();
    let first = invoke(&recognize, &s3_event);
    assert_eq!(first["uploads"][0]["status"], "recognized", "{first:#}");
    let second = invoke(&recognize, &s3_event);
    assert_eq!(second["uploads"][0]["status"], "duplicate", "{second:#}");
    assert_eq!(aws.result_count().await, 1);
    let delivered = aws.drain(&aws.results_queue).await;
    assert_eq!(delivered.len(), 1);
    let message: Value = serde_json::from_str(delivered[0].body().unwrap()).unwrap();
    assert_eq!(message["status"], "ok");
    assert_eq!(
        people_of(&message["result"]),
        set(&["kit_harington", "rose_leslie"])
    );
    let details = &message["result"]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| !f["PersonDetails"].is_null())
        .expect("the people table's record rides along")["PersonDetails"];
    assert_eq!(details["Attributes"]["major"], "drama");

    // An SQS batch with one corrupt image: recorded (bad_input), and no
    // message fails (a retry cannot fix it).
    let photo = data("recognition/kit_harington/face_recognition_johnsnow_test1.jpg");
    aws.put("uploads/got/snow.jpg", photo.clone())
        .await
        .unwrap();
    aws.put("uploads/got/broken.jpg", photo[..photo.len() / 2].to_vec())
        .await
        .unwrap();
    aws.put(
        "uploads/got/rose.jpg",
        data("recognition/rose_leslie/face_recognition_img2.jpg"),
    )
    .await
    .unwrap();
    let events = aws.upload_events().await;
    assert_eq!(events.len(), 3);
    let records: Vec<Value> = events
        .iter()
        .map(|(id, body)| json!({"messageId": id, "eventSource": "aws:sqs", "body": body}))
        .collect();
    let batch = json!({ "Records": records });
    let reply = invoke(&recognize, &batch);
    assert_eq!(reply, json!({"batchItemFailures": []}));
    assert_eq!(aws.result_count().await, 4);
    let messages = aws.drain(&aws.results_queue).await;
    let statuses: BTreeSet<(String, String)> = messages
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            (
                v["key"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("uploads/got/broken.jpg", "bad_input"),
            ("uploads/got/rose.jpg", "ok"),
            ("uploads/got/snow.jpg", "ok"),
        ]
        .iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect()
    );

    // Forget removes the embeddings and the record.
    let forgot = invoke(
        &enroll,
        &json!({"action": "forget", "collection": "got", "person": "rose_leslie"}),
    );
    assert_eq!(forgot["removed_faces"], 2);
    let reply = invoke(
        &recognize,
        &json!({"collection": "got", "image": "inbox/group.jpg"}),
    );
    assert_eq!(people_of(&reply), set(&["kit_harington"]), "{reply:#}");
}
