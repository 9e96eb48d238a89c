//! The HTTPS API's routes on real photos and models with in-memory
//! storage: enroll, search, compare, presigned uploads and their results,
//! deletions, and every error row of the contract.

mod common;

use base64::Engine;
use face_api::error::ErrorCode;
use face_api::ids::UploadRef;
use face_api::limits::MAX_INLINE_BODY_BYTES;
use face_contracts::layout::person_key;
use face_service::api::{Api, ApiRequest, ApiResponse, ApiStores, Caller};
use face_service::collections::{MAX_PERSON_OBJECT_BYTES, StoredPerson};
use face_service::memory::{
    MemoryApiKeys, MemoryObjects, MemoryPeople, MemoryQueue, MemoryResults, MemorySigner,
};
use face_service::recognize::{Recognizer, RecognizerStores};
use face_service::storage::ObjectStore;
use serde_json::{Value, json};

use common::{BUCKET, config, data, grown_to, pipeline};

const KIT: [&str; 2] = [
    "recognition/kit_harington/face_recognition_john1.jpeg",
    "recognition/kit_harington/face_recognition_john2.jpeg",
];
const ROSE: [&str; 2] = [
    "recognition/rose_leslie/face_recognition_img1.jpg",
    "recognition/rose_leslie/face_recognition_img2.jpg",
];
const GROUP: &str = "detection/face_recognition_kit_with_rose.jpg";

fn b64(rel: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(data(rel))
}

type TestApi = Api<MemoryObjects, MemoryPeople, MemoryResults, MemoryApiKeys, MemorySigner>;

/// 2023-11-14T22:13:20Z: rate and quota windows do not move during a test.
fn fixed_clock() -> u64 {
    1_700_000_000
}

fn api() -> TestApi {
    Api::new(
        pipeline(),
        ApiStores {
            objects: MemoryObjects::default(),
            people: MemoryPeople::default(),
            results: MemoryResults::default(),
            keys: MemoryApiKeys::default(),
            signer: MemorySigner,
        },
        &config(),
    )
    .with_clock(fixed_clock)
}

fn caller(name: &str, rate_per_minute: u32, quota_per_day: u32) -> Caller {
    Caller {
        key_name: name.into(),
        rate_per_minute,
        quota_per_day,
    }
}

fn req(method: &str, path: &str) -> ApiRequest {
    ApiRequest::new(method, path).with_caller(caller("tests", 10_000, 100_000))
}

async fn call(api: &TestApi, request: ApiRequest) -> ApiResponse {
    api.handle(request).await
}

async fn ok(api: &TestApi, request: ApiRequest) -> Value {
    let what = format!("{} {}", request.method, request.path);
    let response = call(api, request).await;
    assert_eq!(response.status, 200, "{what}: {}", response.body);
    response.body
}

/// Asserts an error answer and returns its message.
async fn error(api: &TestApi, request: ApiRequest, code: ErrorCode) -> String {
    let what = format!("{} {}", request.method, request.path);
    let response = call(api, request).await;
    assert_eq!(response.status, code.status(), "{what}: {}", response.body);
    let error = response.api_error().expect("an error body");
    assert_eq!(error.error.code, code, "{what}");
    error.error.message
}

async fn enroll(api: &TestApi, person: &str, photos: &[&str]) -> Value {
    let images: Vec<Value> = photos.iter().map(|p| json!({"base64": b64(p)})).collect();
    ok(
        api,
        req(
            "POST",
            &format!("/v1/collections/got/people/{person}/faces"),
        )
        .with_json(&json!({
            "images": images, "attributes": {"show": "Game of Thrones"}
        })),
    )
    .await
}

async fn enroll_two(api: &TestApi) {
    let kit = enroll(api, "kit_harington", &KIT).await;
    assert_eq!(kit["indexed"].as_array().unwrap().len(), 2, "{kit}");
    assert_eq!(kit["face_count"], 2);
    let rose = enroll(api, "rose_leslie", &ROSE).await;
    assert_eq!(rose["face_count"], 2, "{rose}");
}

fn names(search: &Value) -> Vec<String> {
    let mut names: Vec<String> = search["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["match"]["person"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn enroll_search_compare_edit_and_delete() {
    let api = api();
    enroll_two(&api).await;

    // Search a group photo, raw bytes: both names, largest face first,
    // each match with the person's attributes and ranked candidates.
    let search = ok(
        &api,
        req("POST", "/v1/collections/got/search").with_raw_body(&data(GROUP), "image/jpeg"),
    )
    .await;
    assert_eq!(names(&search), ["kit_harington", "rose_leslie"], "{search}");
    let faces = search["faces"].as_array().unwrap();
    let area =
        |f: &Value| f["bbox"]["width"].as_f64().unwrap() * f["bbox"]["height"].as_f64().unwrap();
    assert!(faces.windows(2).all(|w| area(&w[0]) >= area(&w[1])));
    for face in faces {
        assert_eq!(face["match"]["attributes"]["show"], "Game of Thrones");
        assert_eq!(face["candidates"][0]["person"], face["match"]["person"]);
        assert!(face["bounding_box"]["Width"].as_f64().unwrap() > 0.0);
    }
    // The JSON form with options: one face only; a threshold no one meets.
    let one = ok(
        &api,
        req("POST", "/v1/collections/got/search").with_json(
            &json!({"image": {"base64": b64(GROUP)}, "max_faces": 1, "max_candidates": 1}),
        ),
    )
    .await;
    assert_eq!(one["faces"].as_array().unwrap().len(), 1);
    assert_eq!(one["faces"][0]["candidates"].as_array().unwrap().len(), 1);
    let strict = ok(
        &api,
        req("POST", "/v1/collections/got/search")
            .with_json(&json!({"image": {"base64": b64(GROUP)}, "threshold": 0.01})),
    )
    .await;
    assert!(names(&strict).is_empty(), "{strict}");
    assert!(strict["faces"][0]["match"].is_null());

    // Detect: both faces, raw and JSON forms agree.
    let detect = ok(
        &api,
        req("POST", "/v1/detect").with_raw_body(&data(GROUP), "image/jpeg"),
    )
    .await;
    assert_eq!(detect["faces"].as_array().unwrap().len(), 2, "{detect}");
    let detect_json = ok(
        &api,
        req("POST", "/v1/detect").with_json(&json!({"image": {"base64": b64(GROUP)}})),
    )
    .await;
    assert_eq!(detect, detect_json);

    // Compare: the same person in two photos, and two different people.
    let same = ok(
        &api,
        req("POST", "/v1/compare").with_json(&json!({
            "source": {"base64": b64(KIT[0])}, "target": {"base64": b64(KIT[1])}})),
    )
    .await;
    assert_eq!(same["same_person"], true, "{same}");
    assert!(same["similarity"].as_f64().unwrap() > 50.0);
    let different = ok(
        &api,
        req("POST", "/v1/compare").with_json(&json!({
            "source": {"base64": b64(KIT[0])}, "target": {"base64": b64(ROSE[0])}})),
    )
    .await;
    assert_eq!(different["same_person"], false, "{different}");
    assert!(different["distance"].as_f64().unwrap() > same["distance"].as_f64().unwrap());

    // People: a page, one person, attributes edited.
    let page = ok(&api, req("GET", "/v1/collections/got/people")).await;
    let people: Vec<&str> = page["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person"].as_str().unwrap())
        .collect();
    assert_eq!(people, ["kit_harington", "rose_leslie"]);
    assert!(page.get("next").is_none());
    let first = ok(
        &api,
        req("GET", "/v1/collections/got/people").with_query("limit", "1"),
    )
    .await;
    assert_eq!(first["people"][0]["person"], "kit_harington");
    let second = ok(
        &api,
        req("GET", "/v1/collections/got/people")
            .with_query("limit", "1")
            .with_query("next", first["next"].as_str().unwrap()),
    )
    .await;
    assert_eq!(second["people"][0]["person"], "rose_leslie");
    assert!(second.get("next").is_none(), "{second}");

    let kit = ok(&api, req("GET", "/v1/collections/got/people/kit_harington")).await;
    assert_eq!(kit["face_count"], 2);
    let face_ids: Vec<String> = kit["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["face_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(face_ids.len(), 2);
    let patched = ok(
        &api,
        req("PATCH", "/v1/collections/got/people/kit_harington")
            .with_json(&json!({"attributes": {"year": "2011", "show": null}})),
    )
    .await;
    assert_eq!(patched["attributes"], json!({"year": "2011"}));
    let search = ok(
        &api,
        req("POST", "/v1/collections/got/search").with_raw_body(&data(KIT[0]), "image/jpeg"),
    )
    .await;
    assert_eq!(
        search["faces"][0]["match"]["attributes"],
        json!({"year": "2011"})
    );

    // Delete one face, then forget a person.
    let deleted = ok(
        &api,
        req(
            "DELETE",
            &format!("/v1/collections/got/faces/{}", face_ids[0]),
        ),
    )
    .await;
    assert_eq!(
        deleted,
        json!({"collection": "got", "person": "kit_harington", "face_id": face_ids[0], "remaining_faces": 1})
    );
    error(
        &api,
        req(
            "DELETE",
            &format!("/v1/collections/got/faces/{}", face_ids[0]),
        ),
        ErrorCode::NotFound,
    )
    .await;
    let kit = ok(&api, req("GET", "/v1/collections/got/people/kit_harington")).await;
    assert_eq!(kit["face_count"], 1);
    assert_eq!(kit["faces"][0]["face_id"], face_ids[1].as_str());

    let forgotten = ok(
        &api,
        req("DELETE", "/v1/collections/got/people/rose_leslie"),
    )
    .await;
    assert_eq!(forgotten["removed_faces"], 2);
    error(
        &api,
        req("GET", "/v1/collections/got/people/rose_leslie"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("DELETE", "/v1/collections/got/people/rose_leslie"),
        ErrorCode::NotFound,
    )
    .await;
    let search = ok(
        &api,
        req("POST", "/v1/collections/got/search").with_raw_body(&data(GROUP), "image/jpeg"),
    )
    .await;
    assert_eq!(names(&search), ["kit_harington"], "{search}");

    // Collections, then the collection deleted with everything in it.
    let collections = ok(&api, req("GET", "/v1/collections")).await;
    assert_eq!(
        collections,
        json!({"collections": [{"collection": "got", "people": 1}]})
    );
    let removed = ok(&api, req("DELETE", "/v1/collections/got")).await;
    assert_eq!(
        removed,
        json!({"collection": "got", "removed_people": 1, "removed_faces": 1})
    );
    assert!(api.stores().objects.keys(BUCKET).is_empty());
    error(
        &api,
        req("GET", "/v1/collections/got/people"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("DELETE", "/v1/collections/got"),
        ErrorCode::NotFound,
    )
    .await;
    let collections = ok(&api, req("GET", "/v1/collections")).await;
    assert_eq!(collections, json!({"collections": []}));
}

#[tokio::test]
async fn presigned_upload_then_its_result() {
    let api = api();
    enroll_two(&api).await;
    let photo = data(GROUP);
    let upload = ok(
        &api,
        req("POST", "/v1/uploads").with_json(&json!({
            "collection": "got", "content_type": "image/jpeg", "content_length": photo.len()})),
    )
    .await;
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["expires_in_s"], 300);
    assert_eq!(upload["headers"]["content-type"], "image/jpeg");
    assert_eq!(upload["headers"]["content-length"], photo.len().to_string());
    let key = upload["key"].as_str().unwrap();
    let result_id = upload["result_id"].as_str().unwrap();
    let parsed = UploadRef::parse_result_id(result_id).unwrap();
    assert_eq!(parsed.collection, "got");
    assert_eq!(key, parsed.upload_key("uploads/"));
    assert!(upload["url"].as_str().unwrap().contains(key));
    let path = format!("/v1/results/{result_id}");

    // Not uploaded yet, then uploaded but not recognized yet: 404.
    let message = error(&api, req("GET", &path), ErrorCode::NotFound).await;
    assert!(message.contains("not been uploaded"), "{message}");
    api.stores().objects.insert(BUCKET, key, photo);
    let message = error(&api, req("GET", &path), ErrorCode::NotFound).await;
    assert!(message.contains("not ready"), "{message}");

    // The S3-triggered recognition records it.
    let recognizer = Recognizer::new(
        pipeline(),
        RecognizerStores {
            objects: api.stores().objects.clone(),
            people: api.stores().people.clone(),
            results: api.stores().results.clone(),
            queue: MemoryQueue::default(),
        },
        &config(),
    );
    recognizer
        .handle(
            json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}),
        )
        .await
        .unwrap();
    let result = ok(&api, req("GET", &path)).await;
    assert_eq!(result["result_id"], result_id);
    assert_eq!(result["status"], "ok");
    let mut people: Vec<&str> = result["result"]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["Match"]["Person"].as_str())
        .collect();
    people.sort();
    assert_eq!(people, ["kit_harington", "rose_leslie"], "{result}");

    // Ids that cannot be one: 400; a well-formed unknown one: 404.
    error(
        &api,
        req("GET", "/v1/results/got~nothex"),
        ErrorCode::BadInput,
    )
    .await;
    error(
        &api,
        req("GET", &format!("/v1/results/got~{}", "0".repeat(32))),
        ErrorCode::NotFound,
    )
    .await;
    // Uploads are only images of a size the recognizer takes.
    for body in [
        json!({"collection": "got", "content_type": "text/html", "content_length": 10}),
        json!({"collection": "got", "content_type": "image/png", "content_length": 0}),
        json!({"collection": "got", "content_type": "image/png", "content_length": 1u64 << 40}),
        json!({"collection": "a/b", "content_type": "image/png", "content_length": 10}),
    ] {
        error(
            &api,
            req("POST", "/v1/uploads").with_json(&body),
            ErrorCode::BadInput,
        )
        .await;
    }
}

#[tokio::test]
async fn every_error_row() {
    let api = api();

    // 400: malformed JSON names the field; bad names; no face to compare.
    let message = error(
        &api,
        req("POST", "/v1/uploads").with_json(&json!({
            "collection": "got", "content_type": "image/jpeg", "content_length": "big"})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("content_length"), "{message}");
    let message = error(
        &api,
        req("POST", "/v1/collections/got/people/p/faces").with_json(&json!({"attributes": {}})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("images"), "{message}");
    let message = error(
        &api,
        req("POST", "/v1/collections/got/people/p/faces")
            .with_json(&json!({"images": [{"url": "http://x"}]})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("images[0]"), "{message}");
    error(
        &api,
        req("POST", "/v1/detect").with_text_body("{not json"),
        ErrorCode::BadInput,
    )
    .await;
    error(
        &api,
        req("GET", "/v1/collections/bad%20name/people"),
        ErrorCode::BadInput,
    )
    .await;
    let message = error(
        &api,
        req("POST", "/v1/compare").with_json(&json!({
            "source": {"base64": b64(KIT[0])}, "target": {"base64": b64("detection/skimage_brick.png")}})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("no face"), "{message}");
    error(
        &api,
        req("POST", "/v1/detect").with_raw_body(b"not an image", "image/jpeg"),
        ErrorCode::BadInput,
    )
    .await;
    // An s3_key reaches uploads only, never the collections' embeddings,
    // on every route that takes an image; nor a key longer than S3's.
    enroll(&api, "kit_harington", &KIT[..1]).await;
    let too_long = format!("uploads/{}", "k".repeat(1024));
    for key in [
        "collections/got/people/kit_harington.json",
        "uploads/../collections/got/people/kit_harington.json",
        &too_long,
    ] {
        for request in [
            req("POST", "/v1/detect").with_json(&json!({"image": {"s3_key": key}})),
            req("POST", "/v1/collections/got/people/arya/faces")
                .with_json(&json!({"images": [{"s3_key": key}]})),
        ] {
            let route = request.path.clone();
            let message = error(&api, request, ErrorCode::BadInput).await;
            assert!(
                message.contains("under uploads/"),
                "{route} {key}: {message}"
            );
        }
    }
    let message = error(
        &api,
        req("POST", "/v1/collections/got/search")
            .with_json(&json!({"image": {"base64": b64(KIT[0])}, "max_faces": 101})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("max_faces"), "{message}");

    // 403: no authorizer context (no key, or one the authorizer refused).
    error(
        &api,
        ApiRequest::new("GET", "/v1/collections"),
        ErrorCode::Unauthorized,
    )
    .await;
    let proxied = api
        .handle_proxy_event(json!({"httpMethod": "GET", "path": "/v1/collections",
            "headers": {"x-api-key": "fk_wrong"}, "requestContext": {}}))
        .await;
    assert_eq!(proxied["statusCode"], 403);

    // 404: unknown routes, collections, people, faces, images.
    error(&api, req("GET", "/v1/nothing"), ErrorCode::NotFound).await;
    let message = error(&api, req("GET", "/v1/detect"), ErrorCode::NotFound).await;
    assert!(message.contains("POST"), "{message}");
    error(
        &api,
        req("POST", "/v1/collections/nobody/search").with_raw_body(&data(GROUP), "image/jpeg"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("GET", "/v1/collections/nobody/people"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("GET", "/v1/collections/nobody/people/x"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("PATCH", "/v1/collections/nobody/people/x").with_json(&json!({"attributes": {}})),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("DELETE", "/v1/collections/nobody/faces/abc"),
        ErrorCode::NotFound,
    )
    .await;
    error(
        &api,
        req("POST", "/v1/detect").with_json(&json!({"image": {"s3_key": "uploads/missing.jpg"}})),
        ErrorCode::NotFound,
    )
    .await;

    // 413: before anything is decoded (this body is not even JSON).
    let huge = "x".repeat(MAX_INLINE_BODY_BYTES + 1);
    let message = error(
        &api,
        req("POST", "/v1/detect").with_text_body(&huge),
        ErrorCode::TooLarge,
    )
    .await;
    assert!(message.contains("POST /v1/uploads"), "{message}");
    let huge_raw = vec![0u8; MAX_INLINE_BODY_BYTES + 1];
    error(
        &api,
        req("POST", "/v1/detect").with_raw_body(&huge_raw, "image/jpeg"),
        ErrorCode::TooLarge,
    )
    .await;

    // 429: the key's rate per minute, then its quota per day, counted
    // before the route or the body is looked at.
    let slow = |path: &str| ApiRequest::new("GET", path).with_caller(caller("slow", 2, 1000));
    ok(&api, slow("/v1/collections")).await;
    error(&api, slow("/v1/nothing"), ErrorCode::NotFound).await;
    let message = error(&api, slow("/v1/collections"), ErrorCode::Throttled).await;
    assert!(message.contains("per minute"), "{message}");
    let rate_id = face_api::keys::rate_counter_id("slow", fixed_clock());
    assert_eq!(api.stores().keys.counter(&rate_id).map(|c| c.0), Some(2));
    let capped = || ApiRequest::new("GET", "/v1/collections").with_caller(caller("capped", 100, 2));
    ok(&api, capped()).await;
    ok(&api, capped()).await;
    let message = error(&api, capped(), ErrorCode::Throttled).await;
    assert!(message.contains("daily quota"), "{message}");
    // Other keys are not affected.
    ok(&api, req("GET", "/v1/collections")).await;
}

#[tokio::test]
async fn people_over_the_cap_are_refused_left_out_and_still_deletable() {
    let api = api();
    enroll_two(&api).await;
    let objects = api.stores().objects.clone();
    // Kit's object past the cap, as enrollments before it could leave it.
    let kit = person_key("got", "kit_harington");
    let stored = objects.get(BUCKET, &kit, None, u64::MAX).await.unwrap();
    let stored = StoredPerson::parse(&kit, &stored.bytes).unwrap();
    let over = grown_to(&stored, MAX_PERSON_OBJECT_BYTES as usize + 4096);
    objects.insert(BUCKET, &kit, over.to_json());

    // Searches leave kit out; rose is still found.
    let search = ok(
        &api,
        req("POST", "/v1/collections/got/search").with_raw_body(&data(GROUP), "image/jpeg"),
    )
    .await;
    assert_eq!(names(&search), ["rose_leslie"], "{search}");
    // Enrolling kit further is a 400 that says why; nothing is written.
    let message = error(
        &api,
        req("POST", "/v1/collections/got/people/kit_harington/faces")
            .with_json(&json!({"images": [{"base64": b64(KIT[0])}]})),
        ErrorCode::BadInput,
    )
    .await;
    assert!(message.contains("over the cap of 8388608"), "{message}");
    let now = objects.get(BUCKET, &kit, None, u64::MAX).await.unwrap();
    assert!(now.bytes == over.to_json());

    // Kit can be forgotten (faces counted from the record), and a
    // collection with someone over the cap deleted whole.
    let forgotten = ok(
        &api,
        req("DELETE", "/v1/collections/got/people/kit_harington"),
    )
    .await;
    assert_eq!(forgotten["removed_faces"], 2, "{forgotten}");
    let mut ned = over.clone();
    ned.person = "ned_stark".into();
    objects.insert(BUCKET, &person_key("got", "ned_stark"), ned.to_json());
    let removed = ok(&api, req("DELETE", "/v1/collections/got")).await;
    assert_eq!(removed["removed_people"], 2, "{removed}");
    assert!(objects.keys(BUCKET).is_empty());
}
