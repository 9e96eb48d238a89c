//! The targets that reach `face-service` and `scan-worker`: their storage
//! is the in-memory implementation the tests use, on a current-thread
//! tokio runtime.

use std::sync::OnceLock;

use face_api::routes::{RouteId, match_route};
use face_api::types as t;
use face_contracts::messages::ScanMessage;
use face_service::api::ApiRequest;
use face_service::authorizer::authorize;
use face_service::collections::{validate_collection_name, validate_person_name};
use face_service::enroll::EnrollRequest;
use face_service::events::{Invocation, QueueBody, S3Event};
use face_service::memory::{MemoryApiKeys, MemoryObjects};
use face_service::recognize::RecognizeRequest;
use face_service::storage::ApiKeyRecord;
use face_video::{ScanChunkRequest, VideoLimits};
use scan_worker::indexes::VideoIndexes;
use scan_worker::sparse::MAX_HEADER_BYTES;
use serde_json::Value;

use crate::KNOWN_KEY;

/// The scan worker's index cache (its default budget does not matter: a
/// fresh cache per input).
const INDEX_CACHE_BYTES: usize = 64 << 20;

/// One runtime per process, made in the forked child on first use (a
/// runtime's threads would not survive AFL's fork).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// An MP4 in (in-memory) S3, its index read the scan worker's way: 16-byte
/// ranged GETs of the top-level box headers, the header boxes within the
/// budget, then the index from only those bytes.
pub fn mp4_sparse_header(data: &[u8]) {
    let objects = MemoryObjects::default();
    objects.insert("bucket", "video.mp4", data.to_vec());
    let indexes = VideoIndexes::new(MAX_HEADER_BYTES, INDEX_CACHE_BYTES, VideoLimits::default());
    let read = runtime().block_on(indexes.get(
        &objects,
        "bucket",
        "video.mp4",
        &face_service::storage::ReadPin::Current,
    ));
    if let Ok(read) = read {
        let _ = read.index.info();
    }
}

/// A Lambda payload (the runtime hands the functions a JSON value), through
/// every function's parsing: the recognize and scan-worker triggers (S3
/// event, SQS batch and its bodies, direct invokes), enroll's requests,
/// the api function's proxy event up to its parsed body, and the
/// authorizer.
pub fn events(data: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    trigger(payload.clone());
    let _ = serde_json::from_value::<EnrollRequest>(payload.clone());
    api_request(&payload);
    let keys = MemoryApiKeys::default();
    keys.insert_key(
        KNOWN_KEY,
        ApiKeyRecord {
            name: "fuzz".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            rate_per_minute: 60,
            quota_per_day: 1000,
            revoked_at: None,
        },
    );
    let _ = runtime().block_on(authorize(&keys, payload));
}

/// What recognize (`Recognizer::handle`) and the scan worker (`main`,
/// `JobRunner`) do with a payload before any image or video is read.
fn trigger(payload: Value) {
    match Invocation::classify(payload) {
        Ok(Invocation::Sqs(batch)) => {
            for message in &batch.records {
                let _ = message.receive_count();
                if let Ok(QueueBody::S3(event)) = QueueBody::parse(&message.body) {
                    s3_records(&event);
                }
                let _ = serde_json::from_str::<ScanMessage>(&message.body);
            }
        }
        Ok(Invocation::S3(event)) => s3_records(&event),
        Ok(Invocation::Direct(request)) => {
            if let Ok(request) = serde_json::from_value::<RecognizeRequest>(request.clone()) {
                if let Some(collection) = &request.collection {
                    let _ = validate_collection_name(collection);
                }
                fetch_inline(&request.image);
            }
            let _ = serde_json::from_value::<ScanChunkRequest>(request);
        }
        Err(_) => {}
    }
}

fn s3_records(event: &S3Event) {
    for record in &event.records {
        let _ = record.s3.object.decoded_key();
        let _ = record.s3.object.version_tag();
    }
}

/// An image of a request: inline base64 is decoded (an S3 key would be
/// read from the empty in-memory bucket).
fn fetch_inline(image: &face_service::image_input::ImageInput) {
    let objects = MemoryObjects::default();
    let max_bytes = face_core::DecodeLimits::default().max_encoded_bytes;
    let _ = runtime().block_on(image.fetch(&objects, "bucket", 0, max_bytes));
}

/// The api function's steps before a route runs (`Api::route`,
/// `Api::dispatch`): the proxy event, the body's size, the route, its path
/// parameters and the route's JSON body.
fn api_request(payload: &Value) {
    let Ok(request) = ApiRequest::from_proxy_event(payload) else {
        return;
    };
    let _ = request.body_len();
    let Ok(matched) = match_route(&request.method, &request.path) else {
        return;
    };
    let collection = matched.param("collection");
    if !collection.is_empty() {
        let _ = validate_collection_name(collection);
    }
    let person = matched.param("person");
    if !person.is_empty() {
        let _ = validate_person_name(person);
    }
    match matched.route.id {
        RouteId::Detect => body::<t::DetectRequest>(&request),
        RouteId::Compare => body::<t::CompareRequest>(&request),
        RouteId::Enroll => body::<t::EnrollRequest>(&request),
        RouteId::PatchPerson => body::<t::PatchPersonRequest>(&request),
        RouteId::Search => body::<t::SearchRequest>(&request),
        RouteId::CreateUpload => body::<t::UploadRequest>(&request),
        RouteId::CreateScan => body::<face_api::jobs::ScanRequest>(&request),
        RouteId::GetResult => {
            let _ = face_api::ids::UploadRef::parse_result_id(matched.param("result_id"));
        }
        RouteId::GetScan => {
            let _ = face_api::jobs::is_job_id(matched.param("job_id"));
        }
        RouteId::ListCollections
        | RouteId::DeleteCollection
        | RouteId::ListPeople
        | RouteId::GetPerson
        | RouteId::ForgetPerson
        | RouteId::DeleteFace => {}
    }
}

fn body<T: serde::de::DeserializeOwned>(request: &ApiRequest) {
    let _ = request.json_body::<T>();
}
