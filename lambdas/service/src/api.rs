//! The HTTPS API's handler core: every route of `face_api::ROUTES` on top of
//! the storage traits, reusing the enroll and collections code.
//!
//! A request ([`ApiRequest`]) comes from an API Gateway REST proxy event
//! (payload 1.0, [`ApiRequest::from_proxy_event`]) or is built directly
//! (tests, a local gateway). In order, before anything is decoded: the
//! caller from the authorizer's context (403 without one), the key's
//! per-minute rate and per-day quota (429), the body's size (413, naming
//! `POST /v1/uploads`), the route (404). Then the body is parsed (400
//! naming the field) and the route runs. The answer ([`ApiResponse`]) is
//! a status and a JSON body; errors are `face_api::ApiError`. Keys never
//! reach this function (the authorizer has checked them) and nothing here
//! logs one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use face_api::error::{ApiError, ErrorCode};
use face_api::ids::{UploadRef, is_valid_collection_name};
use face_api::keys;
use face_api::limits::{
    DEFAULT_PEOPLE_PAGE, MAX_INLINE_BODY_BYTES, MAX_PEOPLE_PAGE, MAX_UPLOAD_BYTES,
    UPLOAD_URL_EXPIRES_IN_S, too_large_message,
};
use face_api::routes::{NoRoute, RouteId, RouteMatch, match_route};
use face_api::types as t;
use face_contracts::layout::{COLLECTIONS_PREFIX, parse_person_key, people_prefix, person_key};
use face_core::{DetectedFace, FacePipeline, MatchConfig, StageTimings};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::collections::{
    CollectionCache, StoredPerson, load_person, save_person, validate_collection_name,
    validate_person_name,
};
use crate::enroll::{EnrollResponse, Enroller, check_attributes};
use crate::error::{ErrorKind, ServiceError, StorageError};
use crate::image_input::{ImageInput, ImageObject};
use crate::recognize::{ResultMessage, result_id};
use crate::storage::{
    ApiKeys, ObjectStore, PeopleTable, PersonRecord, ResultStatus, ResultsTable, UploadSigner,
    now_rfc3339,
};

/// Who is calling: what the authorizer put in the request's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_name: String,
    pub rate_per_minute: u32,
    pub quota_per_day: u32,
}

/// S3's longest key: a longer one is the caller's mistake, not a storage
/// error.
const MAX_S3_KEY_BYTES: usize = 1024;

/// One HTTP request, as the api function sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiRequest {
    /// Upper case.
    pub method: String,
    /// `/v1/...` (a leading `/live` is ignored).
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Names in lower case.
    pub headers: BTreeMap<String, String>,
    /// As in the event: text, or base64 when `body_is_base64`.
    pub body: Option<String>,
    pub body_is_base64: bool,
    /// None when no authorizer vouched for the request.
    pub caller: Option<Caller>,
}

impl ApiRequest {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            ..Self::default()
        }
    }

    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = Some(caller);
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }

    pub fn with_query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn with_json(self, body: &Value) -> Self {
        self.with_text_body(&body.to_string())
            .with_header("content-type", "application/json")
    }

    pub fn with_text_body(mut self, body: &str) -> Self {
        self.body = Some(body.into());
        self.body_is_base64 = false;
        self
    }

    /// A raw body (e.g. an image with `Content-Type: image/jpeg`), carried
    /// base64-encoded as API Gateway does for binary media types.
    pub fn with_raw_body(mut self, bytes: &[u8], content_type: &str) -> Self {
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.body_is_base64 = true;
        self.with_header("content-type", content_type)
    }

    /// The body's length in bytes, without decoding it.
    pub fn body_len(&self) -> usize {
        match &self.body {
            None => 0,
            Some(b) if self.body_is_base64 => {
                let padding = b.bytes().rev().take_while(|&c| c == b'=').count();
                (b.len() / 4 * 3).saturating_sub(padding)
            }
            Some(b) => b.len(),
        }
    }

    fn body_bytes(&self) -> Result<Vec<u8>, ServiceError> {
        match &self.body {
            None => Ok(Vec::new()),
            Some(b) if self.body_is_base64 => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ServiceError::BadRequest(format!("body is not valid base64: {e}"))),
            Some(b) => Ok(b.as_bytes().to_vec()),
        }
    }

    /// The body parsed as JSON into `T`: a bad input error naming the
    /// field that is wrong (the API's 400).
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T, ServiceError> {
        parse_json(&self.body_bytes()?)
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.split(';').next().unwrap_or_default().trim())
    }

    fn is_raw_image(&self) -> bool {
        self.content_type()
            .to_ascii_lowercase()
            .starts_with("image/")
    }

    /// From an API Gateway REST API proxy integration event (payload 1.0):
    /// `httpMethod`, `path`, `queryStringParameters`, `headers` (any case),
    /// `body`, `isBase64Encoded`, `requestContext.authorizer` (the
    /// authorizer's context, values as strings or numbers).
    pub fn from_proxy_event(event: &Value) -> Result<Self, ApiError> {
        let bad = |what: &str| {
            ApiError::new(
                ErrorCode::BadInput,
                format!("not an API Gateway proxy event: {what}"),
            )
        };
        let method = event["httpMethod"]
            .as_str()
            .ok_or_else(|| bad("no httpMethod"))?;
        let path = event["path"].as_str().ok_or_else(|| bad("no path"))?;
        let strings = |v: &Value, lower: bool| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            let k = if lower {
                                k.to_ascii_lowercase()
                            } else {
                                k.clone()
                            };
                            v.as_str().map(|v| (k, v.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let authorizer = &event["requestContext"]["authorizer"];
        let number = |name: &str| -> Option<u32> {
            match &authorizer[name] {
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let caller = authorizer[keys::context::KEY_NAME]
            .as_str()
            .or(authorizer["principalId"].as_str())
            .filter(|name| !name.is_empty())
            .map(|name| Caller {
                key_name: name.to_string(),
                rate_per_minute: number(keys::context::RATE_PER_MINUTE)
                    .unwrap_or(keys::DEFAULT_RATE_PER_MINUTE),
                quota_per_day: number(keys::context::QUOTA_PER_DAY)
                    .unwrap_or(keys::DEFAULT_QUOTA_PER_DAY),
            });
        Ok(Self {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: strings(&event["queryStringParameters"], false),
            headers: strings(&event["headers"], true),
            body: event["body"].as_str().map(String::from),
            body_is_base64: event["isBase64Encoded"].as_bool().unwrap_or(false),
            caller,
        })
    }
}

/// A status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn error(error: &ApiError) -> Self {
        Self {
            status: error.status(),
            body: serde_json::to_value(error).unwrap_or(Value::Null),
        }
    }

    /// The error body, if this is an error.
    pub fn api_error(&self) -> Option<ApiError> {
        serde_json::from_value(self.body.clone()).ok()
    }

    /// The proxy integration's answer: `{statusCode, headers, body,
    /// isBase64Encoded: false}`.
    pub fn to_proxy_response(&self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": self.body.to_string(),
            "isBase64Encoded": false,
        })
    }
}

/// What the api function talks to.
#[derive(Debug, Clone)]
pub struct ApiStores<O, P, R, K, U> {
    pub objects: O,
    pub people: P,
    pub results: R,
    pub keys: K,
    pub signer: U,
}

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds now (a test passes a fixed clock).
pub type Clock = fn() -> u64;

/// The api function's handler.
#[derive(Debug)]
pub struct Api<O, P, R, K, U> {
    pipeline: Arc<FacePipeline>,
    enroller: Enroller<O, P>,
    stores: ApiStores<O, P, R, K, U>,
    cache: CollectionCache,
    bucket: String,
    upload_prefix: String,
    clock: Clock,
    videos: Option<crate::jobs::VideoIntake>,
}

fn not_found(message: String) -> ServiceError {
    ServiceError::NotFound(message)
}

/// The API's error for a failure.
pub fn api_error(error: &ServiceError) -> ApiError {
    match error {
        ServiceError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m.clone()),
        ServiceError::BadRequest(m) => ApiError::new(ErrorCode::BadInput, m.clone()),
        ServiceError::Storage(StorageError::NotFound { what }) => {
            ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
        }
        e if e.kind() == ErrorKind::BadInput => ApiError::new(ErrorCode::BadInput, e.to_string()),
        ServiceError::Storage(StorageError::Transient { .. }) => ApiError::new(
            ErrorCode::Internal,
            "the service is busy (a storage call was throttled or timed out): retry",
        ),
        _ => ApiError::new(
            ErrorCode::Internal,
            "internal error: the service failed (logged)",
        ),
    }
}

/// Parses a JSON body, naming the field that is wrong.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ServiceError::BadRequest(
            "the body is empty: expected a JSON object".into(),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ServiceError::BadRequest(format!("malformed JSON body: {}", e.inner()))
        } else {
            ServiceError::BadRequest(format!(
                "malformed JSON body at field `{path}`: {}",
                e.inner()
            ))
        }
    })
}

fn image_input(image: &t::Image) -> ImageInput {
    match image {
        t::Image::Base64(data) => ImageInput::Object(ImageObject {
            bucket: None,
            key: None,
            base64: Some(data.clone()),
        }),
        t::Image::S3Key(key) => ImageInput::Key(key.clone()),
    }
}

fn largest_first(faces: &mut [DetectedFace]) {
    DetectedFace::largest_first(faces);
}

fn encode_token(person: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(person)
}

/// The person a `next` token names. Anything else is refused here: a
/// start key that is not a person's name (empty, over DynamoDB's 1 KB) would
/// come back from the table as an error of ours, not the caller's.
fn decode_token(token: &str) -> Result<String, ServiceError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|person| validate_person_name(person).is_ok())
        .ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "invalid next token {token:?}: pass the previous page's `next` as is"
            ))
        })
}

fn query_number<T: std::str::FromStr>(
    request: &ApiRequest,
    name: &str,
) -> Result<Option<T>, ServiceError> {
    request
        .query
        .get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                ServiceError::BadRequest(format!("query parameter `{name}`: {v:?} is not a number"))
            })
        })
        .transpose()
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(value)
        .map_err(|e| ServiceError::Internal(format!("serializing the reply: {e}")))
}

impl<O, P, R, K, U> Api<O, P, R, K, U>
where
    O: ObjectStore + Clone,
    P: PeopleTable + Clone,
    R: ResultsTable,
    K: ApiKeys,
    U: UploadSigner,
{
    pub fn new(
        pipeline: Arc<FacePipeline>,
        stores: ApiStores<O, P, R, K, U>,
        config: &crate::ServiceConfig,
    ) -> Self {
        Self {
            enroller: Enroller::new(
                Arc::clone(&pipeline),
                stores.objects.clone(),
                stores.people.clone(),
                config.bucket.clone(),
            ),
            pipeline,
            stores,
            cache: CollectionCache::default(),
            bucket: config.bucket.clone(),
            upload_prefix: config.upload_prefix.clone(),
            clock: system_clock,
            videos: None,
        }
    }

    /// Video scan jobs (`POST /v1/scans`, `GET /v1/scans/{job_id}`, video uploads).
    pub fn with_videos(mut self, videos: crate::jobs::VideoIntake) -> Self {
        self.videos = Some(videos);
        self
    }

    /// Replaces the clock the rate and quota windows are read from.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn stores(&self) -> &ApiStores<O, P, R, K, U> {
        &self.stores
    }

    /// A proxy integration event in, the proxy response out: never an
    /// error (every failure is an HTTP answer).
    pub async fn handle_proxy_event(&self, event: Value) -> Value {
        match ApiRequest::from_proxy_event(&event) {
            Ok(request) => self.handle(request).await.to_proxy_response(),
            Err(e) => ApiResponse::error(&e).to_proxy_response(),
        }
    }

    pub async fn handle(&self, request: ApiRequest) -> ApiResponse {
        let response = match self.route(&request).await {
            Ok(body) => ApiResponse::ok(body),
            Err(e) => ApiResponse::error(&e),
        };
        let caller = request.caller.as_ref().map_or("-", |c| c.key_name.as_str());
        tracing::info!(
            method = %request.method,
            path = %request.path,
            caller,
            status = response.status,
            "request"
        );
        response
    }

    async fn route(&self, request: &ApiRequest) -> Result<Value, ApiError> {
        let caller = request.caller.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "no API key: send it in the x-api-key header",
            )
        })?;
        self.throttle(caller).await?;
        let size = request.body_len();
        if size > MAX_INLINE_BODY_BYTES {
            return Err(ApiError::new(ErrorCode::TooLarge, too_large_message(size)));
        }
        let matched = match_route(&request.method, &request.path).map_err(|e| match e {
            NoRoute::Path => ApiError::new(
                ErrorCode::NotFound,
                format!("no route {} {}", request.method, request.path),
            ),
            NoRoute::Method(methods) => ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no route {} {}: it takes {}",
                    request.method,
                    request.path,
                    methods.join(", ")
                ),
            ),
        })?;
        self.dispatch(&matched, request).await.map_err(|e| {
            let error = api_error(&e);
            if error.error.code == ErrorCode::Internal {
                tracing::error!(error = %e, kind = ?e.kind(), "request failed");
            }
            error
        })
    }

    /// Fixed one-minute and one-day windows per key name.
    async fn throttle(&self, caller: &Caller) -> Result<(), ApiError> {
        let now = (self.clock)();
        let name = &caller.key_name;
        let internal = |e: StorageError| {
            tracing::error!(error = %e, "rate counter failed");
            api_error(&e.into())
        };
        let counted = self
            .stores
            .keys
            .count_below(
                &keys::rate_counter_id(name, now),
                caller.rate_per_minute,
                keys::rate_counter_expires_at(now),
            )
            .await
            .map_err(internal)?;
        if !counted {
            return Err(ApiError::new(
                ErrorCode::Throttled,
                format!(
                    "rate limit of {} requests per minute reached: retry in {} s",
                    caller.rate_per_minute,
                    60 - now % 60
                ),
            ));
        }
        let counted = self
            .stores
            .keys
            .count_below(
                &keys::quota_counter_id(name, now),
                caller.quota_per_day,
                keys::quota_counter_expires_at(now),
            )
            .await
            .map_err(internal)?;
        if !counted {
            return Err(ApiError::new(
                ErrorCode::Throttled,
                format!(
                    "daily quota of {} requests spent: it resets at 00:00 UTC",
                    caller.quota_per_day
                ),
            ));
        }
        Ok(())
    }

    async fn dispatch(&self, m: &RouteMatch, request: &ApiRequest) -> Result<Value, ServiceError> {
        let collection = m.param("collection");
        if !collection.is_empty() {
            validate_collection_name(collection)?;
        }
        let person = m.param("person");
        if !person.is_empty() {
            validate_person_name(person)?;
        }
        match m.route.id {
            RouteId::Detect => to_value(&self.detect(request).await?),
            RouteId::Compare => {
                let body: t::CompareRequest = request.json_body()?;
                to_value(&self.compare(&body).await?)
            }
            RouteId::ListCollections => to_value(&self.list_collections().await?),
            RouteId::DeleteCollection => to_value(&self.delete_collection(collection).await?),
            RouteId::Enroll => {
                let body: t::EnrollRequest = request.json_body()?;
                to_value(&self.enroll(collection, person, body).await?)
            }
            RouteId::ListPeople => to_value(&self.list_people(collection, request).await?),
            RouteId::GetPerson => to_value(&self.get_person(collection, person).await?),
            RouteId::PatchPerson => {
                let body: t::PatchPersonRequest = request.json_body()?;
                to_value(&self.patch_person(collection, person, body).await?)
            }
            RouteId::ForgetPerson => to_value(&self.forget(collection, person).await?),
            RouteId::DeleteFace => {
                to_value(&self.delete_face(collection, m.param("face_id")).await?)
            }
            RouteId::Search => to_value(&self.search(collection, request).await?),
            RouteId::CreateUpload => {
                let body: t::UploadRequest = request.json_body()?;
                to_value(&self.create_upload(body).await?)
            }
            RouteId::GetResult => to_value(&self.get_result(m.param("result_id")).await?),
            RouteId::CreateScan => {
                let body: face_api::jobs::ScanRequest = request.json_body()?;
                to_value(&self.create_scan(body).await?)
            }
            RouteId::GetScan => to_value(&self.get_scan(m.param("job_id")).await?),
        }
    }

    fn max_image_bytes(&self) -> u64 {
        self.pipeline.config().decode_limits.max_encoded_bytes
    }

    /// A key reaches uploads only (what POST /v1/uploads hands out), never
    /// the collections' embeddings or anything else in the bucket: every
    /// route that takes an image or a video by key checks it before reading.
    fn check_upload_key(&self, key: &str) -> Result<(), ServiceError> {
        if !key.starts_with(&self.upload_prefix)
            || key.contains("..")
            || key.len() > MAX_S3_KEY_BYTES
        {
            return Err(ServiceError::BadRequest(format!(
                "s3_key must be an upload (under {}), as POST /v1/uploads returns",
                self.upload_prefix
            )));
        }
        Ok(())
    }

    /// [`Self::check_upload_key`] of an image given by its key.
    fn check_image_key(&self, image: &t::Image) -> Result<(), ServiceError> {
        match image {
            t::Image::S3Key(key) => self.check_upload_key(key),
            _ => Ok(()),
        }
    }

    async fn fetch(&self, image: &t::Image, index: usize) -> Result<Vec<u8>, ServiceError> {
        self.check_image_key(image)?;
        Ok(image_input(image)
            .fetch(
                &self.stores.objects,
                &self.bucket,
                index,
                self.max_image_bytes(),
            )
            .await?
            .bytes)
    }

    /// The image of a detect or search request: the raw body, or the JSON
    /// body's `image`.
    async fn request_image<T: DeserializeOwned>(
        &self,
        request: &ApiRequest,
        image_of: impl Fn(&T) -> &t::Image,
    ) -> Result<(Vec<u8>, Option<T>), ServiceError> {
        let body = request.body_bytes()?;
        if request.is_raw_image() {
            if body.is_empty() {
                return Err(ServiceError::BadRequest("the image body is empty".into()));
            }
            return Ok((body, None));
        }
        let parsed: T = parse_json(&body)?;
        let bytes = self.fetch(image_of(&parsed), 0).await?;
        Ok((bytes, Some(parsed)))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FacePipeline) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let pipeline = Arc::clone(&self.pipeline);
        tokio::task::spawn_blocking(move || f(&pipeline))
            .await
            .map_err(|e| ServiceError::Internal(format!("inference task: {e}")))?
    }

    async fn detect(&self, request: &ApiRequest) -> Result<t::DetectResponse, ServiceError> {
        let (bytes, _) = self
            .request_image(request, |r: &t::DetectRequest| &r.image)
            .await?;
        self.blocking(move |pipeline| {
            let image = pipeline.decode(&bytes)?;
            let mut faces = pipeline.detect(&image)?;
            largest_first(&mut faces);
            Ok(t::DetectResponse {
                image_width: image.width(),
                image_height: image.height(),
                faces,
            })
        })
        .await
    }

    async fn compare(&self, body: &t::CompareRequest) -> Result<t::CompareResponse, ServiceError> {
        let source = self.fetch(&body.source, 0).await?;
        let target = self.fetch(&body.target, 1).await?;
        self.blocking(move |pipeline| {
            let largest = |bytes: &[u8], which: &str| -> Result<_, ServiceError> {
                let image = pipeline.decode(bytes)?;
                pipeline.largest_face(&image)?.ok_or_else(|| {
                    ServiceError::BadRequest(format!("no face found in the {which} image"))
                })
            };
            let c =
                pipeline.compare_faces(&largest(&source, "source")?, &largest(&target, "target")?);
            Ok(t::CompareResponse {
                distance: c.distance,
                similarity: c.similarity,
                same_person: c.same_person,
                source_face: c.source_face,
                target_face: c.target_face,
            })
        })
        .await
    }

    async fn list_collections(&self) -> Result<t::CollectionsResponse, ServiceError> {
        let listed = self
            .stores
            .objects
            .list(&self.bucket, COLLECTIONS_PREFIX)
            .await?;
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for object in listed {
            if let Some((collection, _)) = parse_person_key(&object.key) {
                *counts.entry(collection.to_string()).or_default() += 1;
            }
        }
        Ok(t::CollectionsResponse {
            collections: counts
                .into_iter()
                .map(|(collection, people)| t::CollectionSummary { collection, people })
                .collect(),
        })
    }

    /// The people of a collection with their stored faces (from S3), and
    /// the names of those whose object is over the cap (not read).
    async fn stored_people(
        &self,
        collection: &str,
    ) -> Result<(Vec<StoredPerson>, Vec<String>), ServiceError> {
        let prefix = people_prefix(collection);
        let listed = self.stores.objects.list(&self.bucket, &prefix).await?;
        let mut people = Vec::new();
        let mut over_cap = Vec::new();
        for object in listed {
            let Some(name) = object
                .key
                .strip_prefix(&prefix)
                .and_then(|f| f.strip_suffix(".json"))
            else {
                continue;
            };
            match load_person(&self.stores.objects, &self.bucket, collection, name).await {
                Ok(Some(person)) => people.push(person),
                Ok(None) => {}
                Err(e @ ServiceError::PersonTooLarge { .. }) => {
                    tracing::error!(error = %e, "person object over the cap is not read");
                    over_cap.push(name.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        Ok((people, over_cap))
    }

    async fn delete_collection(
        &self,
        collection: &str,
    ) -> Result<t::DeleteCollectionResponse, ServiceError> {
        let (stored, over_cap) = self.stored_people(collection).await?;
        let records = self.stores.people.list(collection).await?;
        if stored.is_empty() && over_cap.is_empty() && records.is_empty() {
            return Err(not_found(format!("no collection named {collection:?}")));
        }
        let mut names: std::collections::BTreeSet<String> =
            records.iter().map(|r| r.person.clone()).collect();
        let mut removed_faces = 0u32;
        // Embeddings first, as forget does: no one is recognized any more
        // even if a record's deletion fails.
        for person in &stored {
            self.stores
                .objects
                .delete(&self.bucket, &person_key(collection, &person.person))
                .await?;
            removed_faces += person.faces.len() as u32;
            names.insert(person.person.clone());
        }
        // Not read, so counted from their records.
        for name in &over_cap {
            self.stores
                .objects
                .delete(&self.bucket, &person_key(collection, name))
                .await?;
            removed_faces += records
                .iter()
                .find(|r| &r.person == name)
                .map_or(0, |r| r.face_count);
            names.insert(name.clone());
        }
        for name in &names {
            self.stores.people.delete(collection, name).await?;
        }
        // The collection's uploads go too.
        let uploads = format!("{}{collection}/", self.upload_prefix);
        for object in self.stores.objects.list(&self.bucket, &uploads).await? {
            self.stores
                .objects
                .delete(&self.bucket, &object.key)
                .await?;
        }
        tracing::info!(%collection, people = names.len(), removed_faces, "collection deleted");
        Ok(t::DeleteCollectionResponse {
            collection: collection.into(),
            removed_people: names.len() as u32,
            removed_faces,
        })
    }

    async fn enroll(
        &self,
        collection: &str,
        person: &str,
        body: t::EnrollRequest,
    ) -> Result<t::EnrollResponse, ServiceError> {
        for image in &body.images {
            self.check_image_key(image)?;
        }
        let images = body.images.iter().map(image_input).collect();
        let reply = self
            .enroller
            .enroll(
                collection.into(),
                person.into(),
                body.attributes.unwrap_or_default(),
                images,
            )
            .await?;
        let EnrollResponse::Enroll {
            collection,
            person,
            indexed,
            unindexed,
            face_count,
            face_model_version,
        } = reply
        else {
            return Err(ServiceError::Internal(
                "enroll answered another action".into(),
            ));
        };
        Ok(t::EnrollResponse {
            collection,
            person,
            indexed: indexed
                .into_iter()
                .map(|i| t::IndexedFace {
                    source: i.source,
                    face_id: i.face_id,
                    confidence: i.confidence,
                    bounding_box: i.bounding_box,
                })
                .collect(),
            unindexed: unindexed
                .into_iter()
                .map(|u| t::UnindexedImage {
                    source: u.source,
                    reason: u.reason,
                    message: u.message,
                })
                .collect(),
            face_count,
            face_model_version,
        })
    }

    async fn list_people(
        &self,
        collection: &str,
        request: &ApiRequest,
    ) -> Result<t::PeoplePage, ServiceError> {
        let limit: u32 = query_number(request, "limit")?.unwrap_or(DEFAULT_PEOPLE_PAGE);
        if !(1..=MAX_PEOPLE_PAGE).contains(&limit) {
            return Err(ServiceError::BadRequest(format!(
                "query parameter `limit`: {limit} is not within 1-{MAX_PEOPLE_PAGE}"
            )));
        }
        let after = request
            .query
            .get("next")
            .map(|token| decode_token(token))
            .transpose()?;
        let page = self
            .stores
            .people
            .list_page(collection, limit, after.as_deref())
            .await?;
        if after.is_none() && page.records.is_empty() {
            return Err(not_found(format!("no collection named {collection:?}")));
        }
        Ok(t::PeoplePage {
            people: page
                .records
                .into_iter()
                .map(|r| t::PersonSummary {
                    person: r.person,
                    attributes: r.attributes,
                    face_count: r.face_count,
                    updated_at: r.updated_at,
                })
                .collect(),
            next: page.next.as_deref().map(encode_token),
        })
    }

    async fn load_both(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<(Option<StoredPerson>, Option<PersonRecord>), ServiceError> {
        let stored = load_person(&self.stores.objects, &self.bucket, collection, person).await?;
        let record = self.stores.people.get(collection, person).await?;
        if stored.is_none() && record.is_none() {
            return Err(not_found(format!(
                "no person named {person:?} in collection {collection:?}"
            )));
        }
        Ok((stored, record))
    }

    fn detail(
        person: &str,
        stored: Option<&StoredPerson>,
        record: Option<&PersonRecord>,
    ) -> t::PersonDetail {
        let faces: Vec<t::FaceRef> = stored
            .map(|s| {
                s.faces
                    .iter()
                    .map(|f| t::FaceRef {
                        face_id: f.face_id.clone(),
                        source: f.source.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        t::PersonDetail {
            person: person.into(),
            attributes: record
                .map(|r| r.attributes.clone())
                .or_else(|| stored.map(|s| s.attributes.clone()))
                .unwrap_or_default(),
            face_count: if stored.is_some() {
                faces.len() as u32
            } else {
                record.map_or(0, |r| r.face_count)
            },
            updated_at: record.map(|r| r.updated_at.clone()).unwrap_or_default(),
            faces,
        }
    }

    async fn get_person(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<t::PersonDetail, ServiceError> {
        let (stored, record) = self.load_both(collection, person).await?;
        Ok(Self::detail(person, stored.as_ref(), record.as_ref()))
    }

    async fn patch_person(
        &self,
        collection: &str,
        person: &str,
        body: t::PatchPersonRequest,
    ) -> Result<t::PersonDetail, ServiceError> {
        let (mut stored, record) = self.load_both(collection, person).await?;
        let mut attributes = record
            .as_ref()
            .map(|r| r.attributes.clone())
            .or_else(|| stored.as_ref().map(|s| s.attributes.clone()))
            .unwrap_or_default();
        for (key, value) in body.attributes {
            match value {
                Some(value) => attributes.insert(key, value),
                None => attributes.remove(&key),
            };
        }
        check_attributes(&attributes)?;
        // The embeddings object carries the attributes a search answers with.
        if let Some(stored) = &mut stored {
            stored.attributes = attributes.clone();
            save_person(&self.stores.objects, &self.bucket, collection, stored).await?;
        }
        let record = PersonRecord {
            collection: collection.into(),
            person: person.into(),
            attributes,
            face_count: stored
                .as_ref()
                .map_or(record.as_ref().map_or(0, |r| r.face_count), |s| {
                    s.faces.len() as u32
                }),
            updated_at: now_rfc3339(),
        };
        self.stores.people.put(&record).await?;
        Ok(Self::detail(person, stored.as_ref(), Some(&record)))
    }

    async fn forget(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<t::ForgetResponse, ServiceError> {
        match self.load_both(collection, person).await {
            // An object over the cap is not read, but can be forgotten.
            Ok(_) | Err(ServiceError::PersonTooLarge { .. }) => {}
            Err(e) => return Err(e),
        }
        match self
            .enroller
            .forget(collection.into(), person.into())
            .await?
        {
            EnrollResponse::Forget {
                collection,
                person,
                removed_faces,
            } => Ok(t::ForgetResponse {
                collection,
                person,
                removed_faces,
            }),
            _ => Err(ServiceError::Internal(
                "forget answered another action".into(),
            )),
        }
    }

    async fn delete_face(
        &self,
        collection: &str,
        face_id: &str,
    ) -> Result<t::DeleteFaceResponse, ServiceError> {
        // A face of a person over the cap is not found: forget them instead.
        let (people, _) = self.stored_people(collection).await?;
        let Some(mut stored) = people
            .into_iter()
            .find(|p| p.faces.iter().any(|f| f.face_id == face_id))
        else {
            return Err(not_found(format!(
                "no face {face_id:?} in collection {collection:?}"
            )));
        };
        stored.faces.retain(|f| f.face_id != face_id);
        let person = stored.person.clone();
        let remaining = stored.faces.len() as u32;
        if remaining == 0 {
            // A person without faces can never be recognized: forget them.
            self.enroller
                .forget(collection.into(), person.clone())
                .await?;
        } else {
            save_person(&self.stores.objects, &self.bucket, collection, &stored).await?;
            let record = self.stores.people.get(collection, &person).await?;
            self.stores
                .people
                .put(&PersonRecord {
                    collection: collection.into(),
                    person: person.clone(),
                    attributes: record.map_or(stored.attributes.clone(), |r| r.attributes),
                    face_count: remaining,
                    updated_at: now_rfc3339(),
                })
                .await?;
        }
        tracing::info!(%collection, %person, %face_id, remaining, "face deleted");
        Ok(t::DeleteFaceResponse {
            collection: collection.into(),
            person,
            face_id: face_id.into(),
            remaining_faces: remaining,
        })
    }

    async fn search(
        &self,
        collection: &str,
        request: &ApiRequest,
    ) -> Result<t::SearchResponse, ServiceError> {
        let (bytes, body) = self
            .request_image(request, |r: &t::SearchRequest| &r.image)
            .await?;
        let (threshold, max_faces, max_candidates) = match body {
            Some(b) => (b.threshold, b.max_faces, b.max_candidates),
            None => (
                query_number(request, "threshold")?,
                query_number(request, "max_faces")?,
                query_number(request, "max_candidates")?,
            ),
        };
        let defaults = self.pipeline.config().matching;
        let threshold = threshold.unwrap_or(defaults.threshold_l2);
        if !(threshold.is_finite() && threshold > 0.0 && threshold <= 2.0) {
            return Err(ServiceError::BadRequest(format!(
                "threshold {threshold} is not within (0, 2]"
            )));
        }
        let max_candidates = max_candidates.unwrap_or(defaults.max_candidates as u32);
        if !(1..=100).contains(&max_candidates) {
            return Err(ServiceError::BadRequest(format!(
                "max_candidates {max_candidates} is not within 1-100"
            )));
        }
        let max_faces = max_faces.unwrap_or(face_api::limits::MAX_SEARCH_FACES);
        if !(1..=face_api::limits::MAX_SEARCH_FACES).contains(&max_faces) {
            return Err(ServiceError::BadRequest(format!(
                "max_faces {max_faces} is not within 1-{}",
                face_api::limits::MAX_SEARCH_FACES
            )));
        }
        let current = self
            .cache
            .current(
                &self.stores.objects,
                &self.bucket,
                collection,
                self.pipeline.face_model_version(),
            )
            .await?;
        if current.people.is_empty() {
            return Err(not_found(format!(
                "no collection named {collection:?} (or no one is enrolled in it)"
            )));
        }
        let config = MatchConfig {
            threshold_l2: threshold,
            max_candidates: max_candidates as usize,
            ..self.pipeline.config().matching
        };
        let collection_name = collection.to_string();
        self.blocking(move |pipeline| {
            let image = pipeline.decode(&bytes)?;
            let mut faces = pipeline.detect(&image)?;
            largest_first(&mut faces);
            // Bounded, so the answer fits a Lambda response.
            faces.truncate(max_faces as usize);
            let mut timings = StageTimings::default();
            let faces = pipeline
                .recognize_detected(&image, faces, &current, &config, &mut timings)?
                .into_iter()
                .map(|recognized| {
                    let found = recognized.face_match;
                    t::SearchFace {
                        face: recognized.face,
                        face_match: found.identity.map(|c| t::SearchMatch {
                            attributes: current
                                .people
                                .get(&c.person)
                                .map(|p| p.attributes.clone())
                                .unwrap_or_default(),
                            person: c.person,
                            distance: c.distance,
                            similarity: c.similarity,
                        }),
                        candidates: found.candidates,
                        unknown_reason: found.unknown_reason,
                    }
                })
                .collect();
            Ok(t::SearchResponse {
                collection: collection_name,
                face_model_version: pipeline.face_model_version().into(),
                image_width: image.width(),
                image_height: image.height(),
                faces,
            })
        })
        .await
    }

    async fn create_upload(
        &self,
        body: t::UploadRequest,
    ) -> Result<t::UploadResponse, ServiceError> {
        if !is_valid_collection_name(&body.collection) {
            validate_collection_name(&body.collection)?;
        }
        let content_type = body.content_type.trim().to_ascii_lowercase();
        let max_bytes = match content_type.as_str() {
            "image/jpeg" | "image/png" | "image/webp" => MAX_UPLOAD_BYTES,
            "video/mp4" | "video/quicktime" if self.videos.is_some() => {
                face_api::limits::MAX_VIDEO_UPLOAD_BYTES
            }
            _ => {
                let videos = if self.videos.is_some() {
                    ", video/mp4 or video/quicktime"
                } else {
                    ""
                };
                return Err(ServiceError::BadRequest(format!(
                    "content_type {:?}: upload image/jpeg, image/png or image/webp{videos}",
                    body.content_type
                )));
            }
        };
        if !(1..=max_bytes).contains(&body.content_length) {
            return Err(ServiceError::BadRequest(format!(
                "content_length {} is not within 1-{max_bytes} bytes for {content_type}",
                body.content_length
            )));
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| ServiceError::Internal(format!("no randomness: {e}")))?;
        let upload = UploadRef::new(&body.collection, random)
            .map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let key = upload.upload_key(&self.upload_prefix);
        let put = self
            .stores
            .signer
            .presign_put(
                &self.bucket,
                &key,
                &content_type,
                body.content_length,
                Duration::from_secs(UPLOAD_URL_EXPIRES_IN_S),
            )
            .await?;
        Ok(t::UploadResponse {
            url: put.url,
            method: "PUT".into(),
            headers: put.headers,
            key,
            result_id: upload.result_id(),
            expires_in_s: UPLOAD_URL_EXPIRES_IN_S,
        })
    }

    async fn get_result(&self, id: &str) -> Result<t::ResultResponse, ServiceError> {
        let upload =
            UploadRef::parse_result_id(id).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        let key = upload.upload_key(&self.upload_prefix);
        let head = match self.stores.objects.head(&self.bucket, &key).await {
            Ok(head) => head,
            Err(StorageError::NotFound { .. }) => {
                return Err(not_found(format!(
                    "result {id} is not there: the image has not been uploaded (PUT it to the presigned URL)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let tag = head.version_tag().ok_or_else(|| {
            ServiceError::Internal(format!("{key} has neither version id nor ETag"))
        })?;
        let s3_result_id = result_id(&self.bucket, &key, tag);
        let Some(record) = self.stores.results.get(&s3_result_id).await? else {
            // A video's result comes when its job ends: until then, the job.
            if let Some(videos) = &self.videos
                && let Some(job) = crate::jobs::job_status(
                    videos.jobs.as_ref(),
                    &self.stores.results,
                    &face_api::jobs::job_id_for(&s3_result_id),
                )
                .await?
            {
                return Ok(t::ResultResponse {
                    result_id: id.into(),
                    status: t::ResultStatus::Ok,
                    result: None,
                    error: None,
                    job: Some(job),
                });
            }
            return Err(not_found(format!(
                "result {id} is not ready: the upload is being recognized, retry in a moment"
            )));
        };
        let message: ResultMessage =
            serde_json::from_str(&record.message).map_err(|e| ServiceError::CorruptStore {
                location: record.result_id.clone(),
                message: e.to_string(),
            })?;
        Ok(t::ResultResponse {
            result_id: id.into(),
            status: match message.status {
                ResultStatus::Ok => t::ResultStatus::Ok,
                ResultStatus::BadInput => t::ResultStatus::BadInput,
                ResultStatus::Failed => t::ResultStatus::Failed,
            },
            result: message.result.as_ref().map(to_value).transpose()?,
            error: message.error,
            job: message.job,
        })
    }

    fn videos(&self) -> Result<&crate::jobs::VideoIntake, ServiceError> {
        self.videos.as_ref().ok_or_else(|| {
            ServiceError::BadRequest("this stack scans no videos (no jobs table)".into())
        })
    }

    /// `POST /v1/scans`: the job of the key's current version.
    async fn create_scan(
        &self,
        body: face_api::jobs::ScanRequest,
    ) -> Result<face_api::jobs::ScanJobResponse, ServiceError> {
        let videos = self.videos()?;
        validate_collection_name(&body.collection)?;
        let key = body.s3_key;
        self.check_upload_key(&key)?;
        let head = match self.stores.objects.head(&self.bucket, &key).await {
            Ok(head) => head,
            Err(StorageError::NotFound { .. }) => {
                return Err(not_found(format!("s3_key {key} is not in the bucket")));
            }
            Err(e) => return Err(e.into()),
        };
        let tag = head.version_tag().ok_or_else(|| {
            ServiceError::Internal(format!("{key} has neither version id nor ETag"))
        })?;
        let first = self
            .stores
            .objects
            .get_range(&self.bucket, &key, head.version_id.as_deref(), 0, 16)
            .await?;
        if !crate::jobs::looks_like_mp4(&first.bytes) {
            return Err(ServiceError::BadRequest(format!(
                "s3_key {key} is not an MP4 (no ftyp box at its start)"
            )));
        }
        let job = videos
            .start(
                crate::storage::JobRecord::queued(&self.bucket, &key, tag, &body.collection, None)
                    .with_version_id(head.version_id.clone()),
            )
            .await?;
        Ok(crate::jobs::job_view(&job))
    }

    /// `GET /v1/scans/{job_id}`.
    async fn get_scan(
        &self,
        job_id: &str,
    ) -> Result<face_api::jobs::ScanJobResponse, ServiceError> {
        let videos = self.videos()?;
        if !face_api::jobs::is_job_id(job_id) {
            return Err(ServiceError::BadRequest(format!(
                "invalid job id {job_id:?}: expected 32 lowercase hex digits"
            )));
        }
        crate::jobs::job_status(videos.jobs.as_ref(), &self.stores.results, job_id)
            .await?
            .ok_or_else(|| not_found(format!("scan job {job_id} not found")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_events_become_requests() {
        let event = json!({
            "resource": "/{proxy+}",
            "httpMethod": "post",
            "path": "/v1/collections/c/search",
            "pathParameters": {"proxy": "v1/collections/c/search"},
            "queryStringParameters": {"max_faces": "2"},
            "headers": {"Content-Type": "image/jpeg", "X-Api-Key": "fk_secret"},
            "body": "AQID",
            "isBase64Encoded": true,
            "requestContext": {"stage": "live", "authorizer": {
                "principalId": "pi", "key_name": "pi",
                "rate_per_minute": "7", "quota_per_day": 9}}
        });
        let request = ApiRequest::from_proxy_event(&event).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers["content-type"], "image/jpeg");
        assert_eq!(request.query["max_faces"], "2");
        assert!(request.is_raw_image());
        assert_eq!(request.body_len(), 3);
        assert_eq!(request.body_bytes().unwrap(), [1, 2, 3]);
        assert_eq!(
            request.caller,
            Some(Caller {
                key_name: "pi".into(),
                rate_per_minute: 7,
                quota_per_day: 9
            })
        );
        let nulls = json!({"httpMethod": "GET", "path": "/v1/collections",
            "queryStringParameters": null, "headers": null, "body": null,
            "requestContext": {}});
        let request = ApiRequest::from_proxy_event(&nulls).unwrap();
        assert_eq!((request.caller.clone(), request.body_len()), (None, 0));
        assert!(ApiRequest::from_proxy_event(&json!({"path": "/"})).is_err());
    }

    #[test]
    fn responses_are_proxy_shaped() {
        let r = ApiResponse::error(&ApiError::new(ErrorCode::NotFound, "nope"));
        let v = r.to_proxy_response();
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "NotFound");
    }

    #[test]
    fn malformed_json_names_the_field() {
        let err = parse_json::<t::UploadRequest>(
            br#"{"collection": "c", "content_type": "image/jpeg", "content_length": "big"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("content_length"), "{err}");
        let err = parse_json::<t::EnrollRequest>(br#"{"attributes": {}}"#).unwrap_err();
        assert!(err.to_string().contains("images"), "{err}");
        let err = parse_json::<t::EnrollRequest>(br#"{"images": [{"url": "x"}]}"#).unwrap_err();
        assert!(err.to_string().contains("images[0]"), "{err}");
        let err = parse_json::<t::EnrollRequest>(b"{").unwrap_err();
        assert_eq!(api_error(&err).error.code, ErrorCode::BadInput);
        assert!(parse_json::<t::EnrollRequest>(b"").is_err());
    }

    #[test]
    fn next_tokens_round_trip_and_name_a_person_or_are_refused() {
        let token = encode_token("jon_snow-é");
        assert_eq!(decode_token(&token).unwrap(), "jon_snow-é");
        for bad in [
            "!!".to_string(),
            String::new(),
            encode_token("jon/snow"),
            encode_token(&"a".repeat(2000)),
        ] {
            let err = decode_token(&bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::BadInput, "{bad:?}: {err}");
        }
    }
}
