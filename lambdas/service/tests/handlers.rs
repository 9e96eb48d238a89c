//! The handlers on real photos with in-memory storage: every trigger, the
//! side effects, idempotency and partial batch failures, without AWS.

mod common;

use base64::Engine;
use face_contracts::layout::person_key;
use face_service::ServiceError;
use face_service::collections::{MAX_PERSON_OBJECT_BYTES, StoredPerson};
use face_service::enroll::{EnrollResponse, Enroller, PersonSummary};
use face_service::memory::{MemoryObjects, MemoryPeople, MemoryQueue, MemoryResults};
use face_service::metrics::Metrics;
use face_service::recognize::{RecentResultIds, Recognizer, RecognizerStores, ResultMessage};
use face_service::storage::{ObjectStore, PeopleTable, ResultStatus};
use serde_json::{Value, json};

use common::{BUCKET, config, data, grown_to, pipeline};

type TestRecognizer = Recognizer<MemoryObjects, MemoryPeople, MemoryResults, MemoryQueue>;

struct World {
    objects: MemoryObjects,
    people: MemoryPeople,
    enroller: Enroller<MemoryObjects, MemoryPeople>,
    recognizer: TestRecognizer,
    /// The EMF lines both handlers wrote.
    metrics: Metrics,
}

fn world() -> World {
    world_with(MemoryObjects::default())
}

fn world_with(objects: MemoryObjects) -> World {
    let people = MemoryPeople::default();
    let metrics = Metrics::in_memory("faces-test", None);
    let enroller = Enroller::new(pipeline(), objects.clone(), people.clone(), BUCKET.into())
        .with_metrics(metrics.clone());
    let recognizer = Recognizer::new(
        pipeline(),
        RecognizerStores {
            objects: objects.clone(),
            people: people.clone(),
            results: MemoryResults::default(),
            queue: MemoryQueue::default(),
        },
        &config(),
    )
    .with_metrics(metrics.clone());
    World {
        objects,
        people,
        enroller,
        recognizer,
        metrics,
    }
}

fn b64(rel: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(data(rel))
}

impl World {
    /// The people of collection "got", as the enroll function lists them.
    async fn people(&self) -> Vec<PersonSummary> {
        let listed = self
            .enroller
            .handle(json!({"action": "list", "collection": "got"}))
            .await
            .unwrap();
        let EnrollResponse::List { people, .. } = listed else {
            panic!("not a list reply: {listed:?}")
        };
        people
    }

    async fn enroll(&self, person: &str, photos: &[&str]) -> EnrollResponse {
        let images: Vec<Value> = photos.iter().map(|p| json!({"base64": b64(p)})).collect();
        self.enroller
            .handle(json!({
                "action": "enroll", "collection": "got", "person": person,
                "attributes": {"show": "Game of Thrones"}, "images": images
            }))
            .await
            .unwrap()
    }

    async fn enroll_two(&self) {
        self.enroll(
            "kit_harington",
            &[
                "recognition/kit_harington/face_recognition_john1.jpeg",
                "recognition/kit_harington/face_recognition_john2.jpeg",
            ],
        )
        .await;
        self.enroll(
            "rose_leslie",
            &[
                "recognition/rose_leslie/face_recognition_img1.jpg",
                "recognition/rose_leslie/face_recognition_img2.jpg",
            ],
        )
        .await;
    }

    fn upload(&self, key: &str, rel: &str) -> Value {
        self.objects.insert(BUCKET, key, data(rel));
        s3_event(key)
    }

    fn messages(&self) -> Vec<ResultMessage> {
        self.recognizer
            .stores()
            .queue
            .messages()
            .iter()
            .map(|(_, body)| serde_json::from_str(body).unwrap())
            .collect()
    }
}

fn s3_event(key: &str) -> Value {
    // Shaped like moto's events: no versionId, no eTag.
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]})
}

/// Shaped like real S3's events on a versioned bucket.
fn s3_event_of_version(key: &str, version_id: &str) -> Value {
    json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": BUCKET},
               "object": {"key": key, "versionId": version_id, "eTag": "ignored"}}}]})
}

fn people_of(reply: &Value) -> Vec<String> {
    let mut people: Vec<String> = reply["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["Match"]["Person"].as_str().map(String::from))
        .collect();
    people.sort();
    people
}

#[tokio::test]
async fn enroll_reports_indexed_and_refused_photos_and_stores_both_sides() {
    let w = world();
    let reply = w
        .enroller
        .handle(json!({
            "action": "enroll", "collection": "got", "person": "kit_harington",
            "attributes": {"major": "drama", "year": "2011"},
            "images": [
                {"base64": b64("recognition/kit_harington/face_recognition_john1.jpeg")},
                {"base64": b64("detection/skimage_brick.png")},
                {"base64": base64::engine::general_purpose::STANDARD.encode(b"not an image")},
                "uploads/missing.jpg"
            ]
        }))
        .await
        .unwrap();
    let EnrollResponse::Enroll {
        indexed,
        unindexed,
        face_count,
        ..
    } = reply
    else {
        panic!("not an enroll reply")
    };
    assert_eq!(indexed.len(), 1);
    assert!(indexed[0].confidence > 80.0);
    let reasons: Vec<&str> = unindexed.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["NO_FACE", "BAD_IMAGE", "BAD_IMAGE"],
        "{unindexed:?}"
    );
    assert!(unindexed[2].message.contains("not found"), "{unindexed:?}");
    assert_eq!(face_count, 1);
    assert_eq!(
        w.objects.keys(BUCKET),
        ["collections/got/people/kit_harington.json"]
    );

    // Re-enrolling the same photo replaces its face.
    let again = w
        .enroll(
            "kit_harington",
            &["recognition/kit_harington/face_recognition_john1.jpeg"],
        )
        .await;
    let EnrollResponse::Enroll { face_count, .. } = again else {
        panic!()
    };
    assert_eq!(face_count, 1);

    let people = w.people().await;
    assert_eq!(people.len(), 1);
    // Attributes merge: the second call's key is added, the first call's kept.
    assert_eq!(people[0].attributes["major"], "drama");
    assert_eq!(people[0].attributes["show"], "Game of Thrones");
}

#[tokio::test]
async fn attributes_merged_past_the_limit_are_refused_and_nothing_is_written() {
    let w = world();
    let photo =
        || json!([{"base64": b64("recognition/kit_harington/face_recognition_john1.jpeg")}]);
    let attributes = |from: usize| -> serde_json::Map<String, serde_json::Value> {
        (from..from + 20)
            .map(|i| (format!("key{i}"), json!("value")))
            .collect()
    };
    let enroll = |attributes| {
        json!({
            "action": "enroll", "collection": "got", "person": "kit_harington",
            "attributes": attributes, "images": photo()
        })
    };
    w.enroller.handle(enroll(attributes(0))).await.unwrap();
    let key = person_key("got", "kit_harington");
    let stored = || async {
        w.objects
            .get(BUCKET, &key, None, MAX_PERSON_OBJECT_BYTES)
            .await
            .expect("the person's object")
            .bytes
    };
    let before = stored().await;
    // 20 new keys are within the limit alone, 40 with the stored 20 are not.
    let err = w
        .enroller
        .handle(enroll(attributes(20)))
        .await
        .expect_err("40 attributes in all");
    assert_eq!(err.kind(), face_service::ErrorKind::BadInput, "{err}");
    assert!(err.to_string().contains("40 attributes"), "{err}");
    assert_eq!(stored().await, before);
    let people = w.people().await;
    assert_eq!(people[0].attributes.len(), 20);
}

#[tokio::test]
async fn bad_requests_are_typed_and_non_retryable() {
    let w = world();
    for request in [
        json!({"action": "enroll", "collection": "bad/name", "person": "p", "images": ["k"]}),
        json!({"action": "enroll", "collection": "c", "person": "p", "images": []}),
        json!({"action": "dance", "collection": "c"}),
        json!({"action": "list", "collection": "c", "extra": 1}),
        json!({"action": "forget", "collection": "c", "person": "nobody"}),
    ] {
        let err = w.enroller.handle(request.clone()).await.unwrap_err();
        assert_eq!(err.error_type(), "FaceService.BadInput", "{request}: {err}");
    }
    let err = w
        .recognizer
        .handle(json!({"collection": "got", "image": {"base64": "AAAA"}}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "FaceService.BadInput", "{err}");
}

#[tokio::test]
async fn direct_invoke_recognizes_a_group_photo_and_unknowns() {
    let w = world();
    w.enroll_two().await;
    let reply = w
        .recognizer
        .handle(json!({"collection": "got",
            "image": {"base64": b64("detection/face_recognition_kit_with_rose.jpg")}}))
        .await
        .unwrap();
    assert_eq!(
        people_of(&reply),
        ["kit_harington", "rose_leslie"],
        "{reply:#}"
    );
    assert_eq!(
        reply["face_model_version"],
        "yunet_s_dynamic+dlib_resnet_v1"
    );
    let face = &reply["faces"][0];
    for field in ["BoundingBox", "Landmarks", "Confidence", "Match"] {
        assert!(face.get(field).is_some(), "{field} missing: {face:#}");
    }
    assert_eq!(face["Landmarks"].as_array().unwrap().len(), 5);

    // Strangers are unknown, not the nearest enrolled person.
    let strangers = w
        .recognizer
        .handle(json!({"collection": "got",
            "image": {"base64": b64("detection/insightface_t1.jpg")}}))
        .await
        .unwrap();
    assert!(strangers["faces"].as_array().unwrap().len() >= 5);
    assert!(people_of(&strangers).is_empty(), "{strangers:#}");
}

#[tokio::test]
async fn a_repeated_s3_event_makes_one_result_and_one_message() {
    let w = world();
    w.enroll_two().await;
    let event = w.upload(
        "uploads/got/party.jpg",
        "detection/face_recognition_kit_with_rose.jpg",
    );
    let first = w.recognizer.handle(event.clone()).await.unwrap();
    assert_eq!(first["uploads"][0]["status"], "recognized", "{first:#}");
    let second = w.recognizer.handle(event).await.unwrap();
    assert_eq!(second["uploads"][0]["status"], "duplicate", "{second:#}");

    let results = w.recognizer.stores().results.all();
    assert_eq!(results.len(), 1);
    assert!(results[0].delivered);
    let messages = w.messages();
    assert_eq!(messages.len(), 1);
    let result = messages[0].result.as_ref().unwrap();
    assert_eq!(result.people(), ["kit_harington", "rose_leslie"]);
    // The queue's consumers get each person's record with the match.
    let details = result
        .faces
        .iter()
        .find_map(|f| f.person_details.as_ref())
        .expect("person details attached");
    assert_eq!(details.attributes["show"], "Game of Thrones");
}

#[tokio::test]
async fn an_overwrite_before_processing_leaves_each_result_to_its_own_version() {
    let w = world_with(MemoryObjects::versioned());
    w.enroll_two().await;
    let key = "uploads/got/door.jpg";
    let kit = "recognition/kit_harington/face_recognition_johnsnow_test1.jpg";
    let rose = "recognition/rose_leslie/face_recognition_img2.jpg";
    let v1 = w.objects.insert(BUCKET, key, data(kit)).unwrap();
    // The key is overwritten before the first upload's event is processed.
    let v2 = w.objects.insert(BUCKET, key, data(rose)).unwrap();
    for version in [&v1, &v2] {
        let reply = w
            .recognizer
            .handle(s3_event_of_version(key, version))
            .await
            .unwrap();
        assert_eq!(reply["uploads"][0]["status"], "recognized", "{reply:#}");
    }
    let mut seen: Vec<(String, Vec<String>)> = w
        .messages()
        .into_iter()
        .map(|m| (m.result_id, m.result.unwrap().people()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                format!("s3://{BUCKET}/{key}#{v1}"),
                vec!["kit_harington".to_string()]
            ),
            (
                format!("s3://{BUCKET}/{key}#{v2}"),
                vec!["rose_leslie".to_string()]
            ),
        ]
    );
}

#[tokio::test]
async fn an_interrupted_delivery_is_finished_by_the_retry() {
    let w = world();
    w.enroll_two().await;
    let event = w.upload(
        "uploads/got/kit.jpg",
        "recognition/kit_harington/face_recognition_johnsnow_test1.jpg",
    );
    w.recognizer.stores().queue.fail_next.set(1);
    let err = w.recognizer.handle(event.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "FaceService.Retryable", "{err}");
    assert!(w.messages().is_empty());

    let retry = w.recognizer.handle(event).await.unwrap();
    assert_eq!(retry["uploads"][0]["status"], "duplicate", "{retry:#}");
    let messages = w.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].result.as_ref().unwrap().people(),
        ["kit_harington"]
    );
    assert_eq!(messages[0].collection, "got");
}

#[tokio::test]
async fn a_crash_after_the_send_delivers_twice_with_one_result_id() {
    let w = world();
    w.enroll_two().await;
    let event = w.upload(
        "uploads/got/kit.jpg",
        "recognition/kit_harington/face_recognition_johnsnow_test1.jpg",
    );
    // Sent, then the function dies before marking the result delivered.
    w.recognizer.stores().results.fail_next_mark.set(1);
    let err = w.recognizer.handle(event.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "FaceService.Retryable", "{err}");
    // SQS retries after the visibility timeout, past FIFO's 5 minutes.
    w.recognizer.stores().queue.end_deduplication_window();
    let retry = w.recognizer.handle(event).await.unwrap();
    assert_eq!(retry["uploads"][0]["status"], "duplicate", "{retry:#}");

    // At least once: two copies, one result id, one result row.
    let messages = w.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0], messages[1]);
    assert_eq!(w.recognizer.stores().results.all().len(), 1);
    // What a consumer keeps.
    let mut recent = RecentResultIds::default();
    let kept: Vec<&ResultMessage> = messages
        .iter()
        .filter(|m| recent.first_time(&m.result_id))
        .collect();
    assert_eq!(kept, [&messages[0]]);
}

#[tokio::test]
async fn an_sqs_batch_fails_only_what_a_retry_can_fix() {
    let w = world();
    w.enroll_two().await;
    let flaky = w.upload(
        "uploads/got/flaky.jpg",
        "recognition/kit_harington/face_recognition_johnsnow_test1.jpg",
    );
    let good = w.upload(
        "uploads/got/a.jpg",
        "recognition/rose_leslie/face_recognition_img2.jpg",
    );
    w.objects.insert(
        BUCKET,
        "uploads/got/broken.jpg",
        b"\xff\xd8\xff\xe0 truncated".to_vec(),
    );
    let bad = s3_event("uploads/got/broken.jpg");
    let bad_collection = w.upload(
        "uploads/bad name/c.jpg",
        "recognition/rose_leslie/face_recognition_img1.jpg",
    );
    let outside = w.upload(
        "elsewhere/b.jpg",
        "recognition/rose_leslie/face_recognition_img1.jpg",
    );
    let batch = json!({"Records": [
        {"messageId": "m-flaky", "eventSource": "aws:sqs", "body": flaky.to_string()},
        {"messageId": "m-good", "eventSource": "aws:sqs", "body": good.to_string()},
        {"messageId": "m-bad", "eventSource": "aws:sqs", "body": bad.to_string()},
        {"messageId": "m-bad-collection", "eventSource": "aws:sqs",
         "body": bad_collection.to_string()},
        {"messageId": "m-test", "eventSource": "aws:sqs",
         "body": r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#},
        {"messageId": "m-outside", "eventSource": "aws:sqs", "body": outside.to_string()},
        {"messageId": "m-garbage", "eventSource": "aws:sqs", "body": "{"},
    ]});
    // The flaky upload's read fails once (throttled): only it is retried.
    w.objects.fail_next.set(1);
    let reply = w.recognizer.handle(batch.clone()).await.unwrap();
    assert_eq!(
        reply,
        json!({"batchItemFailures": [{"itemIdentifier": "m-flaky"}, {"itemIdentifier": "m-garbage"}]})
    );
    let statuses = |w: &World| -> Vec<(String, ResultStatus)> {
        w.messages()
            .into_iter()
            .map(|m| (m.key, m.status))
            .collect()
    };
    assert_eq!(
        statuses(&w),
        [
            ("uploads/got/a.jpg".to_string(), ResultStatus::Ok),
            ("uploads/got/broken.jpg".to_string(), ResultStatus::BadInput)
        ]
    );

    // SQS redelivers the batch (say a message's deletion was lost): the
    // flaky upload succeeds now, nothing is recorded or sent twice.
    let again = w.recognizer.handle(batch).await.unwrap();
    assert_eq!(
        again,
        json!({"batchItemFailures": [{"itemIdentifier": "m-garbage"}]})
    );
    let rows: Vec<(String, ResultStatus)> = w
        .recognizer
        .stores()
        .results
        .all()
        .into_iter()
        .map(|r| (r.key, r.status))
        .collect();
    assert_eq!(
        rows,
        [
            ("uploads/got/a.jpg".to_string(), ResultStatus::Ok),
            ("uploads/got/broken.jpg".to_string(), ResultStatus::BadInput),
            ("uploads/got/flaky.jpg".to_string(), ResultStatus::Ok),
        ]
    );
    assert_eq!(statuses(&w).len(), 3);
}

#[tokio::test]
async fn the_warm_cache_follows_enrollments_and_forgetting() {
    let w = world();
    let photo = json!({"collection": "got",
        "image": {"base64": b64("recognition/kit_harington/face_recognition_johnsnow_test1.jpg")}});
    let before = w.recognizer.handle(photo.clone()).await.unwrap();
    assert!(people_of(&before).is_empty());
    assert_eq!(before["collection_people"], 0);

    w.enroll_two().await;
    let after = w.recognizer.handle(photo.clone()).await.unwrap();
    assert_eq!(people_of(&after), ["kit_harington"]);

    let forgotten = w
        .enroller
        .handle(json!({"action": "forget", "collection": "got", "person": "kit_harington"}))
        .await
        .unwrap();
    assert!(matches!(
        forgotten,
        EnrollResponse::Forget {
            removed_faces: 2,
            ..
        }
    ));
    let gone = w.recognizer.handle(photo).await.unwrap();
    assert!(people_of(&gone).is_empty(), "{gone:#}");
    assert_eq!(gone["collection_people"], 1);
    assert!(
        people_in(&w.people, "got").await == ["rose_leslie"],
        "people table keeps only rose_leslie"
    );
}

async fn people_in(people: &MemoryPeople, collection: &str) -> Vec<String> {
    people
        .list(collection)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.person)
        .collect()
}

#[tokio::test]
async fn a_person_at_the_cap_is_refused_and_the_collection_still_recognizes() {
    let w = world();
    w.enroll_two().await;
    let cap = MAX_PERSON_OBJECT_BYTES as usize;
    let kit = person_key("got", "kit_harington");
    let stored = w.objects.get(BUCKET, &kit, None, u64::MAX).await.unwrap();
    let stored = StoredPerson::parse(&kit, &stored.bytes).unwrap();
    let full = grown_to(&stored, cap);
    // ~1.6 KB a face: the cap is thousands of faces, no real person's.
    assert!(full.faces.len() > 4_000, "{}", full.faces.len());
    let full = full.to_json();
    assert!((cap - 16..=cap).contains(&full.len()), "{}", full.len());
    w.objects.insert(BUCKET, &kit, full.clone());
    let record = w.people.get("got", "kit_harington").await.unwrap();

    // One more face would take kit past the cap: the enrollment fails,
    // typed and non-retryable, and writes nothing.
    let enroll_kit = json!({"action": "enroll", "collection": "got", "person": "kit_harington",
        "attributes": {"house": "Stark"},
        "images": [{"base64": b64("recognition/kit_harington/face_recognition_johnsnow_test1.jpg")}]});
    let err = w.enroller.handle(enroll_kit).await.unwrap_err();
    match &err {
        ServiceError::PersonTooLarge {
            person,
            size_bytes,
            limit_bytes,
            ..
        } => {
            assert_eq!(person, "kit_harington");
            assert_eq!(*limit_bytes, MAX_PERSON_OBJECT_BYTES);
            assert!(*size_bytes > MAX_PERSON_OBJECT_BYTES);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.error_type(), "FaceService.BadInput");
    assert!(err.to_string().contains("over the cap of 8388608"), "{err}");
    let after = w.objects.get(BUCKET, &kit, None, u64::MAX).await.unwrap();
    assert!(after.bytes == full, "kit's object was rewritten");
    assert_eq!(w.people.get("got", "kit_harington").await.unwrap(), record);

    // Everyone is still recognized, kit (at the cap) included.
    let group = json!({"collection": "got",
        "image": {"base64": b64("detection/face_recognition_kit_with_rose.jpg")}});
    let reply = w.recognizer.handle(group.clone()).await.unwrap();
    assert_eq!(
        people_of(&reply),
        ["kit_harington", "rose_leslie"],
        "{reply:#}"
    );

    // An object over the cap anyway (written before there was one) leaves
    // that person out, logged; it is no bad input of every upload.
    let ned = person_key("got", "ned_stark");
    let mut over = grown_to(&stored, cap + 4096);
    over.person = "ned_stark".into();
    w.objects.insert(BUCKET, &ned, over.to_json());
    let reply = w.recognizer.handle(group).await.unwrap();
    assert_eq!(
        people_of(&reply),
        ["kit_harington", "rose_leslie"],
        "{reply:#}"
    );
    assert_eq!(reply["collection_people"], 2);
    let event = w.upload(
        "uploads/got/party.jpg",
        "detection/face_recognition_kit_with_rose.jpg",
    );
    let reply = w.recognizer.handle(event).await.unwrap();
    assert_eq!(reply["uploads"][0]["status"], "recognized", "{reply:#}");
    let results = w.recognizer.stores().results.all();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, ResultStatus::Ok);

    // That person cannot be enrolled further, but can be forgotten.
    let err = w
        .enroller
        .handle(
            json!({"action": "enroll", "collection": "got", "person": "ned_stark",
            "images": [{"base64": b64("recognition/kit_harington/face_recognition_john1.jpeg")}]}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::PersonTooLarge { .. }),
        "{err:?}"
    );
    assert!(w.objects.keys(BUCKET).contains(&ned));
    w.enroller
        .handle(json!({"action": "forget", "collection": "got", "person": "ned_stark"}))
        .await
        .unwrap();
    assert!(!w.objects.keys(BUCKET).contains(&ned));
}

/// The metric values of each EMF line written since `from`.
fn metric_lines(w: &World, from: usize) -> Vec<serde_json::Map<String, Value>> {
    w.metrics.lines()[from..]
        .iter()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["Function"], "faces-test");
            assert_eq!(
                v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                "FaceRecognition"
            );
            v.as_object().unwrap().clone()
        })
        .collect()
}

#[tokio::test]
async fn each_enroll_call_and_recognized_image_writes_one_metrics_line() {
    let w = world();
    w.enroll_two().await;
    let enrolled = metric_lines(&w, 0);
    assert_eq!(enrolled.len(), 2, "one per enroll call");
    for line in &enrolled {
        assert_eq!(line["PhotosIndexed"], 2.0);
        assert_eq!(line["PhotosUnindexed"], 0.0);
        assert!(line["EnrollTime"].as_f64().unwrap() > 0.0);
    }

    // Sync: the stage timings and counts of the one image.
    let reply = w
        .recognizer
        .handle(json!({"collection": "got",
            "image": {"base64": b64("detection/face_recognition_kit_with_rose.jpg")}}))
        .await
        .unwrap();
    let direct = metric_lines(&w, 2);
    assert_eq!(direct.len(), 1);
    let faces = reply["faces"].as_array().unwrap().len() as f64;
    assert_eq!(direct[0]["FacesFound"], faces);
    assert_eq!(direct[0]["FacesMatched"], 2.0);
    // The same timings the reply reports, to the microsecond.
    for (metric, timing) in [
        ("DecodeTime", "decode_ms"),
        ("DetectTime", "detect_ms"),
        ("AlignTime", "align_ms"),
        ("EmbedTime", "embed_ms"),
        ("MatchTime", "match_ms"),
    ] {
        let reported = reply["timings_ms"][timing].as_f64().unwrap();
        assert!(reported > 0.0, "{timing}");
        assert_eq!(
            direct[0][metric],
            (reported * 1e3).round() / 1e3,
            "{metric}"
        );
    }

    // S3 event: one line per recognized upload; a repeat recognizes nothing.
    let event = w.upload(
        "uploads/got/party.jpg",
        "detection/face_recognition_kit_with_rose.jpg",
    );
    w.recognizer.handle(event.clone()).await.unwrap();
    w.recognizer.handle(event).await.unwrap();
    let s3 = metric_lines(&w, 3);
    assert_eq!(s3.len(), 1);
    assert_eq!(s3[0]["FacesMatched"], 2.0);

    // SQS: a line for the good image, none for the broken one.
    let good = w.upload(
        "uploads/got/a.jpg",
        "recognition/rose_leslie/face_recognition_img2.jpg",
    );
    w.objects.insert(
        BUCKET,
        "uploads/got/broken.jpg",
        b"\xff\xd8\xff\xe0 truncated".to_vec(),
    );
    let batch = json!({"Records": [
        {"messageId": "m-good", "eventSource": "aws:sqs", "body": good.to_string()},
        {"messageId": "m-bad", "eventSource": "aws:sqs",
         "body": s3_event("uploads/got/broken.jpg").to_string()},
    ]});
    w.recognizer.handle(batch).await.unwrap();
    let sqs = metric_lines(&w, 4);
    assert_eq!(sqs.len(), 1);
    assert_eq!(sqs[0]["FacesFound"], 1.0);
    assert_eq!(sqs[0]["FacesMatched"], 1.0);
}
