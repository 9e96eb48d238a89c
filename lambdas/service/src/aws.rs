//! The storage traits on S3, DynamoDB and SQS. Endpoint, region and
//! credentials come from the standard chain (`AWS_ENDPOINT_URL` for local
//! runs); nothing is hard-coded.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::{ErrorKind as RetryKind, ProvideErrorKind};

use crate::error::StorageError;
use crate::storage::{
    ApiKeyRecord, ApiKeys, JobPlan, JobRecord, JobsTable, ListedObject, Notifier, ObjectHead,
    ObjectStore, PeoplePage, PeopleTable, PersonRecord, PresignedPut, RangeRead, ResultRecord,
    ResultStatus, ResultsQueue, ResultsTable, StoredObject, UploadSigner, WorkSender,
};
use face_api::jobs::JobStatus;
use face_contracts::env;
use face_contracts::tables::{people, results, scan_jobs};

/// The shared SDK configuration, built as every crate builds it.
pub use face_sdk_config::{SdkConfig, load_sdk_config};

/// An S3 client; path-style addressing when an endpoint is set, because
/// local endpoints (moto) have no per-bucket DNS names.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint =
        config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .build(),
    )
}

/// Sorts an SDK failure into not found / transient / permanent. Whether a
/// failure is worth retrying is the SDK's call, not a list kept here: see
/// [`sdk_retry_kind`].
fn classify<E>(operation: &str, what: &str, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + ProvideErrorKind + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    let transient = || StorageError::Transient {
        operation: operation.into(),
        message: message.clone(),
    };
    let permanent = || StorageError::Permanent {
        operation: operation.into(),
        message: message.clone(),
    };
    match &err {
        SdkError::ServiceError(service) => {
            let code = ProvideErrorMetadata::code(service.err());
            let status = service.raw().status().as_u16();
            // S3's missing object or version. DynamoDB's and SQS's "not
            // found" codes name a missing table or queue: a broken
            // deployment, never a missing item (those read as empty).
            if matches!(code, Some("NoSuchKey" | "NoSuchVersion" | "NotFound"))
                || (status == 404 && code != Some("NoSuchBucket"))
            {
                StorageError::NotFound { what: what.into() }
            } else if sdk_retry_kind(service.err().retryable_error_kind(), code, status).is_some() {
                transient()
            } else {
                permanent()
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => transient(),
        // As the SDK's `TransientErrorClassifier`: I/O and timeouts, or a
        // connector that says what kind of error it was.
        SdkError::DispatchFailure(failure)
            if failure.is_io() || failure.is_timeout() || failure.as_other().is_some() =>
        {
            transient()
        }
        _ => permanent(),
    }
}

/// What the SDK's retry classifiers make of a service error: an error the
/// service models as retryable (`ModeledAsRetryableClassifier`), a code on
/// `aws_runtime`'s throttling or transient lists (`AwsErrorCodeClassifier`),
/// or a server error status (`HttpStatusCodeClassifier`'s default codes,
/// private to `aws-smithy-runtime`). `None`: retrying will not help.
fn sdk_retry_kind(
    modeled: Option<RetryKind>,
    code: Option<&str>,
    status: u16,
) -> Option<RetryKind> {
    let listed = |list: &[&str], kind| code.filter(|c| list.contains(c)).map(|_| kind);
    modeled
        .or_else(|| listed(THROTTLING_ERRORS, RetryKind::ThrottlingError))
        .or_else(|| listed(TRANSIENT_ERRORS, RetryKind::TransientError))
        .or_else(|| matches!(status, 500 | 502 | 503 | 504).then_some(RetryKind::ServerError))
}

/// Objects in S3. With an expected owner (the account id), every call
/// sends it as `ExpectedBucketOwner`: S3 refuses the call (403) when the
/// bucket belongs to another account, so a bucket name taken by someone
/// else never receives our uploads or serves us its objects.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    expected_owner: Option<String>,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client, expected_owner: Option<String>) -> Self {
        Self {
            client,
            expected_owner,
        }
    }

    fn owner(&self) -> Option<String> {
        self.expected_owner.clone()
    }

    /// S3 answers a read of a missing key with 403, not 404, to a caller it
    /// does not count as allowed to list that key, and the functions may
    /// list only their prefixes (an `s3:prefix` condition). A listing of the
    /// key itself tells a missing object from a refused read.
    async fn refused_or_missing(
        &self,
        bucket: &str,
        key: &str,
        refused: StorageError,
    ) -> StorageError {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(key)
            .max_keys(1)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await;
        match listed {
            // Keys sort after their prefixes: the key, if there, is first.
            Ok(page) if !page.contents().iter().any(|o| o.key() == Some(key)) => {
                StorageError::NotFound {
                    what: format!("s3://{bucket}/{key}"),
                }
            }
            _ => refused,
        }
    }
}

/// A 403 (HEAD answers carry no error code).
fn is_refused<E>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(s) if s.raw().status().as_u16() == 403)
}

/// The function's bucket client: `s3_client`, expecting the configured
/// owner (`FACE_BUCKET_OWNER`).
pub fn s3_objects(sdk: &SdkConfig, config: &crate::ServiceConfig) -> S3Objects {
    S3Objects::new(s3_client(sdk), config.bucket_owner.clone())
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        let what = match version_id {
            Some(v) => format!("s3://{bucket}/{key} version {v}"),
            None => format!("s3://{bucket}/{key}"),
        };
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .set_expected_bucket_owner(self.owner())
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(e) if is_refused(&e) => {
                let refused = classify("s3:GetObject", &what, e);
                return Err(self.refused_or_missing(bucket, key, refused).await);
            }
            Err(e) => return Err(classify("s3:GetObject", &what, e)),
        };
        let too_large = |size_bytes: u64| StorageError::TooLarge {
            what: what.clone(),
            size_bytes,
            limit_bytes: max_bytes,
        };
        if let Some(len) = output.content_length()
            && len as u64 > max_bytes
        {
            return Err(too_large(len as u64));
        }
        let etag = output.e_tag().map(|e| e.trim_matches('"').to_string());
        let version_id = output.version_id().map(str::to_owned);
        let mut body = output.body;
        let mut bytes = Vec::new();
        // The length header is checked above; this bounds a body that lies.
        while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::Transient {
            operation: "s3:GetObject".into(),
            message: format!("reading {what}: {e}"),
        })? {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(StoredObject {
            bytes,
            etag,
            version_id,
        })
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<RangeRead, StorageError> {
        let what = match version_id {
            Some(v) => format!("s3://{bucket}/{key} version {v}"),
            None => format!("s3://{bucket}/{key}"),
        };
        if end <= start {
            return Err(StorageError::Permanent {
                operation: "s3:GetObject".into(),
                message: format!("empty range {start}..{end} of {what}"),
            });
        }
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .set_version_id(version_id.map(str::to_owned))
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| classify("s3:GetObject", &what, e))?;
        // "bytes a-b/total"; a server that ignores ranges sends it all.
        let object_size = output
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|total| total.parse().ok())
            .or(output.content_length().map(|l| l as u64))
            .unwrap_or(0);
        let etag = output.e_tag().map(|e| e.trim_matches('"').to_string());
        // A server that ignores ranges sends the whole object: read only up
        // to `end` of it, then cut.
        let whole = output.content_range().is_none();
        let cap = if whole { end } else { end - start };
        let mut body = output.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| StorageError::Transient {
            operation: "s3:GetObject".into(),
            message: format!("reading {what}: {e}"),
        })? {
            let room = (cap as usize).saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() as u64 >= cap {
                break;
            }
        }
        if whole {
            bytes.drain(..(start as usize).min(bytes.len()));
        }
        Ok(RangeRead {
            bytes,
            object_size,
            etag,
        })
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let what = format!("s3://{bucket}/{key}");
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(bytes.into())
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
            .map_err(|e| classify("s3:PutObject", &what, e))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectHead, StorageError> {
        let what = format!("s3://{bucket}/{key}");
        let output = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(e) if is_refused(&e) => {
                let refused = classify("s3:HeadObject", &what, e);
                return Err(self.refused_or_missing(bucket, key, refused).await);
            }
            Err(e) => return Err(classify("s3:HeadObject", &what, e)),
        };
        Ok(ObjectHead {
            size: output.content_length().unwrap_or(0).max(0) as u64,
            etag: output.e_tag().map(|e| e.trim_matches('"').to_string()),
            version_id: output.version_id().map(str::to_owned),
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let what = format!("s3://{bucket}/{key}");
        match self
            .client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(self.owner())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("s3:DeleteObject", &what, e) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let what = format!("s3://{bucket}/{prefix}");
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .set_expected_bucket_owner(self.owner())
                .send()
                .await
                .map_err(|e| classify("s3:ListBucket", &what, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    listed.push(ListedObject {
                        key: key.to_string(),
                        etag: object.e_tag().unwrap_or_default().trim_matches('"').into(),
                        size: object.size().map_or(0, |n| n.max(0) as u64),
                    });
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.into()),
                _ => return Ok(listed),
            }
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn get_s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct DynamoPeople {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPeople {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }

    fn record(item: &HashMap<String, AttributeValue>) -> PersonRecord {
        let attributes = item
            .get("attributes")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        PersonRecord {
            collection: get_s(item, people::PARTITION_KEY),
            person: get_s(item, people::SORT_KEY),
            attributes,
            face_count: item
                .get("face_count")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            updated_at: get_s(item, "updated_at"),
        }
    }

    fn what(&self, collection: &str, person: &str) -> String {
        format!("{}[{collection}/{person}]", self.table)
    }
}

#[async_trait]
impl PeopleTable for DynamoPeople {
    async fn put(&self, record: &PersonRecord) -> Result<(), StorageError> {
        let attributes: HashMap<String, AttributeValue> = record
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .item(people::PARTITION_KEY, s(&record.collection))
            .item(people::SORT_KEY, s(&record.person))
            .item("attributes", AttributeValue::M(attributes))
            .item(
                "face_count",
                AttributeValue::N(record.face_count.to_string()),
            )
            .item("updated_at", s(&record.updated_at))
            .send()
            .await
            .map_err(|e| {
                classify(
                    "dynamodb:PutItem",
                    &self.what(&record.collection, &record.person),
                    e,
                )
            })?;
        Ok(())
    }

    async fn get(
        &self,
        collection: &str,
        person: &str,
    ) -> Result<Option<PersonRecord>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(people::PARTITION_KEY, s(collection))
            .key(people::SORT_KEY, s(person))
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", &self.what(collection, person), e))?;
        Ok(output.item().map(Self::record))
    }

    async fn delete(&self, collection: &str, person: &str) -> Result<bool, StorageError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(people::PARTITION_KEY, s(collection))
            .key(people::SORT_KEY, s(person))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("dynamodb:DeleteItem", &self.what(collection, person), e))?;
        Ok(output.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn list(&self, collection: &str) -> Result<Vec<PersonRecord>, StorageError> {
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#c = :c")
                .expression_attribute_names("#c", people::PARTITION_KEY)
                .expression_attribute_values(":c", s(collection))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", &self.what(collection, "*"), e))?;
            records.extend(page.items().iter().map(Self::record));
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(records),
            }
        }
    }

    async fn list_page(
        &self,
        collection: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<PeoplePage, StorageError> {
        let start = after.map(|person| {
            HashMap::from([
                (people::PARTITION_KEY.to_string(), s(collection)),
                (people::SORT_KEY.to_string(), s(person)),
            ])
        });
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", people::PARTITION_KEY)
            .expression_attribute_values(":c", s(collection))
            .limit(limit.clamp(1, i32::MAX as u32) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("dynamodb:Query", &self.what(collection, "*"), e))?;
        let records: Vec<PersonRecord> = page.items().iter().map(Self::record).collect();
        // DynamoDB may name a last key when nothing follows: the next page
        // is then empty and has none.
        let next = page
            .last_evaluated_key()
            .and_then(|key| key.get(people::SORT_KEY))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(PeoplePage { records, next })
    }
}

#[derive(Debug, Clone)]
pub struct DynamoResults {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoResults {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }
}

#[async_trait]
impl ResultsTable for DynamoResults {
    async fn get(&self, result_id: &str) -> Result<Option<ResultRecord>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(results::PARTITION_KEY, s(result_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", result_id, e))?;
        Ok(output.item().map(|item| ResultRecord {
            result_id: get_s(item, results::PARTITION_KEY),
            bucket: get_s(item, "bucket"),
            key: get_s(item, "key"),
            collection: get_s(item, "collection"),
            status: ResultStatus::parse(&get_s(item, "status")).unwrap_or(ResultStatus::Ok),
            message: get_s(item, "message"),
            delivered: item
                .get("delivered")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            created_at: get_s(item, "created_at"),
        }))
    }

    async fn put_if_absent(&self, record: &ResultRecord) -> Result<bool, StorageError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(results::PARTITION_KEY, s(&record.result_id))
            .item("bucket", s(&record.bucket))
            .item("key", s(&record.key))
            .item("collection", s(&record.collection))
            .item("status", s(record.status.as_str()))
            .item("message", s(&record.message))
            .item("delivered", AttributeValue::Bool(record.delivered))
            .item("created_at", s(&record.created_at))
            .condition_expression(format!("attribute_not_exists({})", results::PARTITION_KEY))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(classify("dynamodb:PutItem", &record.result_id, e)),
        }
    }

    async fn mark_delivered(&self, result_id: &str) -> Result<(), StorageError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(results::PARTITION_KEY, s(result_id))
            .update_expression("SET delivered = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", result_id, e))?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct SqsResults {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsResults {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(aws_sdk_sqs::Client::new(sdk), queue_url)
    }
}

#[async_trait]
impl ResultsQueue for SqsResults {
    async fn send(
        &self,
        group_id: &str,
        deduplication_id: &str,
        body: &str,
    ) -> Result<(), StorageError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_group_id(group_id)
            .message_deduplication_id(deduplication_id)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("sqs:SendMessage", &self.queue_url, e))?;
        Ok(())
    }
}

/// Stores for the recognize function, from the config.
pub fn recognizer_stores(
    sdk: &SdkConfig,
    config: &crate::ServiceConfig,
) -> Result<
    crate::recognize::RecognizerStores<S3Objects, DynamoPeople, DynamoResults, SqsResults>,
    crate::ServiceError,
> {
    let (results_table, queue_url) = config.results()?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    Ok(crate::recognize::RecognizerStores {
        objects: s3_objects(sdk, config),
        people: DynamoPeople::new(dynamo.clone(), &config.people_table),
        results: DynamoResults::new(dynamo, results_table),
        queue: SqsResults::new(aws_sdk_sqs::Client::new(sdk), queue_url),
    })
}

/// The API keys table (`FACE_API_KEYS_TABLE`, layout in `face_api::keys`).
#[derive(Debug, Clone)]
pub struct DynamoApiKeys {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoApiKeys {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }
}

fn get_n<T: std::str::FromStr>(item: &HashMap<String, AttributeValue>, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[async_trait]
impl ApiKeys for DynamoApiKeys {
    async fn get_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        use face_api::keys::{self, attr};
        let id = keys::key_item_id_for_hash(key_hash);
        // The hash is not secret, but a short prefix is enough for a log line.
        let what = format!(
            "{}[key#{}..]",
            self.table,
            &key_hash[..key_hash.len().min(8)]
        );
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::ID, s(&id))
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", &what, e))?;
        Ok(output.item().map(|item| ApiKeyRecord {
            name: get_s(item, attr::NAME),
            created_at: get_s(item, attr::CREATED_AT),
            rate_per_minute: get_n(item, attr::RATE_PER_MINUTE)
                .unwrap_or(keys::DEFAULT_RATE_PER_MINUTE),
            quota_per_day: get_n(item, attr::QUOTA_PER_DAY).unwrap_or(keys::DEFAULT_QUOTA_PER_DAY),
            revoked_at: item
                .get(attr::REVOKED_AT)
                .and_then(|v| v.as_s().ok())
                .cloned(),
        }))
    }

    async fn count_below(
        &self,
        counter_id: &str,
        limit: u32,
        expires_at: u64,
    ) -> Result<bool, StorageError> {
        use face_api::keys::attr;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::ID, s(counter_id))
            .update_expression("ADD #count :one SET #expires = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", attr::COUNT)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(classify(
                "dynamodb:UpdateItem",
                &format!("{}[{counter_id}]", self.table),
                e,
            )),
        }
    }
}

/// Presigned S3 PUTs with the content type and length in the signature,
/// so the upload must be exactly what was asked for.
#[derive(Debug, Clone)]
pub struct S3UploadSigner {
    client: aws_sdk_s3::Client,
    expected_owner: Option<String>,
}

impl S3UploadSigner {
    /// With an expected owner, the upload must send it (a signed header):
    /// a URL never writes into another account's bucket.
    pub fn new(client: aws_sdk_s3::Client, expected_owner: Option<String>) -> Self {
        Self {
            client,
            expected_owner,
        }
    }
}

#[async_trait]
impl UploadSigner for S3UploadSigner {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: u64,
        expires_in: std::time::Duration,
    ) -> Result<PresignedPut, StorageError> {
        let permanent = |message: String| StorageError::Permanent {
            operation: "s3:PutObject (presign)".into(),
            message,
        };
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
            .map_err(|e| permanent(e.to_string()))?;
        let length = i64::try_from(content_length).map_err(|e| permanent(e.to_string()))?;
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .set_expected_bucket_owner(self.expected_owner.clone())
            .presigned(config)
            .await
            .map_err(|e| permanent(DisplayErrorContext(&e).to_string()))?;
        Ok(PresignedPut {
            url: request.uri().to_string(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
        })
    }
}

/// Everything the api function talks to, from the config
/// (`FACE_RESULTS_TABLE` and `FACE_API_KEYS_TABLE` required).
pub fn api_stores(
    sdk: &SdkConfig,
    config: &crate::ServiceConfig,
) -> Result<
    crate::api::ApiStores<S3Objects, DynamoPeople, DynamoResults, DynamoApiKeys, S3UploadSigner>,
    crate::ServiceError,
> {
    let results_table = config.results_table.as_deref().ok_or_else(|| {
        crate::ServiceError::Config(format!(
            "environment variable {} is not set",
            env::RESULTS_TABLE
        ))
    })?;
    let keys_table = config.api_keys_table.as_deref().ok_or_else(|| {
        crate::ServiceError::Config(format!(
            "environment variable {} is not set",
            env::API_KEYS_TABLE
        ))
    })?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let s3 = s3_client(sdk);
    Ok(crate::api::ApiStores {
        objects: S3Objects::new(s3.clone(), config.bucket_owner.clone()),
        people: DynamoPeople::new(dynamo.clone(), &config.people_table),
        results: DynamoResults::new(dynamo.clone(), results_table),
        keys: DynamoApiKeys::new(dynamo, keys_table),
        signer: S3UploadSigner::new(s3, config.bucket_owner.clone()),
    })
}

/// The scan jobs table (`FACE_JOBS_TABLE`): one item per job, keyed
/// `job_id`; the done and failed chunks are number sets.
#[derive(Debug, Clone)]
pub struct DynamoJobs {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoJobs {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, table: impl Into<String>) -> Self {
        Self::new(aws_sdk_dynamodb::Client::new(sdk), table)
    }
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_opt_s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_opt_n<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_ns(item: &HashMap<String, AttributeValue>, name: &str) -> std::collections::BTreeSet<u32> {
    item.get(name)
        .and_then(|v| v.as_ns().ok())
        .map(|v| v.iter().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

fn job_from_item(item: &HashMap<String, AttributeValue>) -> JobRecord {
    JobRecord {
        job_id: get_s(item, scan_jobs::PARTITION_KEY),
        bucket: get_s(item, "bucket"),
        key: get_s(item, "key"),
        version_tag: get_s(item, "version_tag"),
        version_id: get_opt_s(item, "version_id"),
        video_result_id: get_s(item, "video_result_id"),
        collection: get_s(item, "collection"),
        status: JobStatus::parse(&get_s(item, "status")).unwrap_or(JobStatus::Queued),
        uploaded_at: get_opt_s(item, "uploaded_at"),
        created_at: get_s(item, "created_at"),
        finished_at: get_opt_s(item, "finished_at"),
        chunks_total: get_opt_n(item, "chunks_total"),
        chunks_done: get_ns(item, "chunks_done"),
        chunks_failed: get_ns(item, "chunks_failed"),
        frames: get_opt_n(item, "frames"),
        fps: get_opt_n(item, "fps"),
        duration_s: get_opt_n(item, "duration_s"),
        error: get_opt_s(item, "error"),
        planned_by: get_opt_s(item, "planned_by"),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e, SdkError::ServiceError(s) if s.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl JobsTable for DynamoJobs {
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(scan_jobs::PARTITION_KEY, s(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", job_id, e))?;
        Ok(output.item().map(job_from_item))
    }

    async fn create_if_absent(&self, r: &JobRecord) -> Result<bool, StorageError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(scan_jobs::PARTITION_KEY, s(&r.job_id))
            .item("bucket", s(&r.bucket))
            .item("key", s(&r.key))
            .item("version_tag", s(&r.version_tag))
            .item("video_result_id", s(&r.video_result_id))
            .item("collection", s(&r.collection))
            .item("status", s(r.status.as_str()))
            .item("created_at", s(&r.created_at))
            .condition_expression(format!(
                "attribute_not_exists({})",
                scan_jobs::PARTITION_KEY
            ));
        if let Some(at) = &r.uploaded_at {
            put = put.item("uploaded_at", s(at));
        }
        if let Some(version_id) = &r.version_id {
            put = put.item("version_id", s(version_id));
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("dynamodb:PutItem", &r.job_id, e)),
        }
    }

    async fn set_planned(
        &self,
        job_id: &str,
        plan: &JobPlan,
        planned_by: &str,
    ) -> Result<bool, StorageError> {
        // Only from `queued`: a second planner (a duplicate plan message)
        // loses here and sends nothing. Or again by the same plan message:
        // the SDK retries an update whose answer was lost (a timeout or a
        // 500 after DynamoDB applied it), and that retry must win too.
        let planned = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(scan_jobs::PARTITION_KEY, s(job_id))
            .update_expression(
                "SET chunks_total = :t, frames = :f, fps = :r, duration_s = :d, planned_by = :by, #status = :running",
            )
            .condition_expression(format!(
                "attribute_exists({}) AND (#status = :queued OR (#status = :running AND planned_by = :by))",
                scan_jobs::PARTITION_KEY
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":t", n(plan.chunks_total))
            .expression_attribute_values(":f", n(plan.frames))
            .expression_attribute_values(":r", n(plan.fps))
            .expression_attribute_values(":d", n(plan.duration_s))
            .expression_attribute_values(":by", s(planned_by))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .send()
            .await;
        match planned {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("dynamodb:UpdateItem", job_id, e)),
        }
    }

    async fn chunk_done(&self, job_id: &str, chunk: u32) -> Result<JobRecord, StorageError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(scan_jobs::PARTITION_KEY, s(job_id))
            .update_expression("ADD chunks_done :c")
            .condition_expression("attribute_exists(job_id)")
            .expression_attribute_values(":c", AttributeValue::Ns(vec![chunk.to_string()]))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    StorageError::NotFound {
                        what: format!("job {job_id}"),
                    }
                } else {
                    classify("dynamodb:UpdateItem", job_id, e)
                }
            })?;
        Ok(job_from_item(
            output.attributes().unwrap_or(&HashMap::new()),
        ))
    }

    async fn chunk_failed(
        &self,
        job_id: &str,
        chunk: u32,
        error: &str,
    ) -> Result<(), StorageError> {
        let now = crate::storage::now_rfc3339();
        self.client
            .update_item()
            .table_name(&self.table)
            .key(scan_jobs::PARTITION_KEY, s(job_id))
            .update_expression("ADD chunks_failed :c")
            .expression_attribute_values(":c", AttributeValue::Ns(vec![chunk.to_string()]))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", job_id, e))?;
        let _ = self
            .finish_inner(job_id, JobStatus::Failed, Some(error), &now)
            .await?;
        Ok(())
    }

    async fn finish(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<bool, StorageError> {
        self.finish_inner(job_id, status, error, &crate::storage::now_rfc3339())
            .await
    }
}

impl DynamoJobs {
    async fn finish_inner(
        &self,
        job_id: &str,
        status: JobStatus,
        error: Option<&str>,
        now: &str,
    ) -> Result<bool, StorageError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(scan_jobs::PARTITION_KEY, s(job_id))
            .condition_expression(
                "attribute_exists(job_id) AND #status <> :done AND #status <> :failed",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":done", s(JobStatus::Done.as_str()))
            .expression_attribute_values(":failed", s(JobStatus::Failed.as_str()));
        update = match error {
            Some(error) => update
                .update_expression("SET #status = :s, finished_at = :now, #error = :e")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":e", s(error)),
            None => update.update_expression("SET #status = :s, finished_at = :now"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("dynamodb:UpdateItem", job_id, e)),
        }
    }
}

/// A standard SQS queue (`FACE_SCAN_QUEUE_URL`).
#[derive(Debug, Clone)]
pub struct SqsWork {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsWork {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(aws_sdk_sqs::Client::new(sdk), queue_url)
    }
}

#[async_trait]
impl WorkSender for SqsWork {
    async fn send(&self, body: &str) -> Result<(), StorageError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("sqs:SendMessage", &self.queue_url, e))?;
        Ok(())
    }
}

/// The results topic (`FACE_RESULTS_TOPIC_ARN`).
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// With its own client from `sdk`, so a function binary never names an
    /// SDK crate.
    pub fn from_sdk(sdk: &SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self::new(aws_sdk_sns::Client::new(sdk), topic_arn)
    }
}

#[async_trait]
impl Notifier for SnsTopic {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), StorageError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .send()
            .await
            .map_err(|e| classify("sns:Publish", &self.topic_arn, e))?;
        Ok(())
    }
}

/// The jobs table and the scan queue, when the stack set both
/// (`FACE_JOBS_TABLE`, `FACE_SCAN_QUEUE_URL`).
pub fn video_intake(
    sdk: &SdkConfig,
    config: &crate::ServiceConfig,
) -> Option<crate::jobs::VideoIntake> {
    let (table, queue) = (config.jobs_table.as_ref()?, config.scan_queue_url.as_ref()?);
    Some(crate::jobs::VideoIntake {
        jobs: std::sync::Arc::new(DynamoJobs::new(aws_sdk_dynamodb::Client::new(sdk), table)),
        queue: std::sync::Arc::new(SqsWork::new(aws_sdk_sqs::Client::new(sdk), queue)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    const OWNER: &str = "123456789012";

    /// What the fake connection answers, in order.
    #[derive(Debug, Clone)]
    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn dynamo_error(code: &str) -> Reply {
        Reply {
            status: 400,
            headers: vec![("content-type", "application/x-amz-json-1.0".into())],
            body: format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"m"}}"#
            ),
        }
    }

    fn s3_error(status: u16, code: &str) -> Reply {
        reply(
            status,
            &format!(
                "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>"
            ),
        )
    }

    /// One request as the connection saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        uri: String,
        headers: BTreeMap<String, String>,
    }

    /// An HTTP connection that records requests and answers canned replies
    /// (500 once they run out): the SDK's own serializers and parsers run.
    #[derive(Debug, Clone, Default)]
    struct Fake {
        replies: Arc<Mutex<VecDeque<Reply>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Fake {
        fn new(replies: impl IntoIterator<Item = Reply>) -> Self {
            let fake = Self::default();
            fake.replies.lock().unwrap().extend(replies);
            fake
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn s3(&self) -> aws_sdk_s3::Client {
            let fake = self.clone();
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("eu-west-1"))
                    .credentials_provider(Credentials::new("AKID", "secret", None, None, "t"))
                    .retry_config(RetryConfig::disabled())
                    .http_client(http_client_fn(move |_, _| {
                        SharedHttpConnector::new(fake.clone())
                    }))
                    .build(),
            )
        }

        fn dynamo(&self) -> aws_sdk_dynamodb::Client {
            let fake = self.clone();
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
                    .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                        "AKID", "secret", None, None, "t",
                    ))
                    .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
                    .http_client(http_client_fn(move |_, _| {
                        SharedHttpConnector::new(fake.clone())
                    }))
                    .build(),
            )
        }
    }

    impl HttpConnector for Fake {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            self.seen.lock().unwrap().push(Seen {
                method: request.method().to_string(),
                uri: request.uri().to_string(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect(),
            });
            let r = self
                .replies
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| reply(500, "no reply left"));
            let mut response = HttpResponse::new(
                StatusCode::try_from(r.status).unwrap(),
                SdkBody::from(r.body),
            );
            for (name, value) in r.headers {
                response.headers_mut().insert(name, value);
            }
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    fn object_reply(bytes: &str, version: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-length", bytes.len().to_string()),
                ("etag", "\"e1\"".into()),
                ("x-amz-version-id", version.into()),
            ],
            body: bytes.into(),
        }
    }

    fn listing(keys: &[&str]) -> Reply {
        let contents: String = keys
            .iter()
            .map(|k| format!("<Contents><Key>{k}</Key><ETag>&quot;e&quot;</ETag></Contents>"))
            .collect();
        reply(
            200,
            &format!(
                "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>false</IsTruncated>\
                 <KeyCount>{}</KeyCount>{contents}</ListBucketResult>",
                keys.len()
            ),
        )
    }

    #[tokio::test]
    async fn every_s3_call_expects_the_owner_and_a_pinned_get_names_its_version() {
        let fake = Fake::new([
            object_reply("v1 bytes", "v1"),
            object_reply("now", "v2"),
            Reply {
                status: 206,
                headers: vec![("content-range", "bytes 0-1/3".into())],
                body: "no".into(),
            },
            reply(200, ""),
            object_reply("", "v2"),
            reply(204, ""),
            listing(&["collections/c/people/a.json"]),
        ]);
        let objects = S3Objects::new(fake.s3(), Some(OWNER.into()));
        let pinned = objects
            .get("data", "uploads/a.jpg", Some("v1"), 100)
            .await
            .unwrap();
        assert_eq!(pinned.bytes, b"v1 bytes");
        assert_eq!(pinned.version_id.as_deref(), Some("v1"));
        objects
            .get("data", "uploads/a.jpg", None, 100)
            .await
            .unwrap();
        objects
            .get_range("data", "v.mp4", Some("v7"), 0, 2)
            .await
            .unwrap();
        objects
            .put("data", "collections/c/people/a.json", b"{}".to_vec())
            .await
            .unwrap();
        objects.head("data", "uploads/a.jpg").await.unwrap();
        objects.delete("data", "uploads/a.jpg").await.unwrap();
        let listed = objects.list("data", "collections/c/").await.unwrap();
        assert_eq!(listed.len(), 1);

        let seen = fake.seen();
        let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
        assert_eq!(
            methods,
            ["GET", "GET", "GET", "PUT", "HEAD", "DELETE", "GET"]
        );
        for s in &seen {
            assert_eq!(
                s.headers
                    .get("x-amz-expected-bucket-owner")
                    .map(String::as_str),
                Some(OWNER),
                "{} {}",
                s.method,
                s.uri
            );
        }
        assert!(seen[0].uri.contains("versionId=v1"), "{}", seen[0].uri);
        assert!(!seen[1].uri.contains("versionId"), "{}", seen[1].uri);
        // A job's ranged reads are of its upload's version too.
        assert!(seen[2].uri.contains("versionId=v7"), "{}", seen[2].uri);
        assert_eq!(
            seen[2].headers.get("range").map(String::as_str),
            Some("bytes=0-1")
        );

        // Without an owner (tests, hand-run functions) nothing is sent.
        let fake = Fake::new([object_reply("x", "v1")]);
        let unowned = S3Objects::new(fake.s3(), None);
        unowned.get("data", "k", None, 10).await.unwrap();
        assert!(
            !fake.seen()[0]
                .headers
                .contains_key("x-amz-expected-bucket-owner")
        );
    }

    #[tokio::test]
    async fn a_refused_read_is_not_found_only_when_a_listing_says_the_key_is_not_there() {
        // Without s3:ListBucket on a key, S3 answers 403 for a missing object.
        let fake = Fake::new([s3_error(403, "AccessDenied"), listing(&["uploads/ab.jpg"])]);
        let objects = S3Objects::new(fake.s3(), Some(OWNER.into()));
        let missing = objects
            .get("data", "uploads/a.jpg", None, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(missing, StorageError::NotFound { .. }),
            "{missing:?}"
        );
        let list = &fake.seen()[1];
        assert!(list.uri.contains("prefix=uploads%2Fa.jpg"), "{}", list.uri);
        assert_eq!(list.headers["x-amz-expected-bucket-owner"], OWNER);

        // The key is there (or the listing is refused too): really denied.
        let fake = Fake::new([
            reply(403, ""),
            listing(&["uploads/a.jpg"]),
            s3_error(403, "AccessDenied"),
            s3_error(403, "AccessDenied"),
        ]);
        let objects = S3Objects::new(fake.s3(), Some(OWNER.into()));
        for _ in 0..2 {
            let denied = objects.head("data", "uploads/a.jpg").await.unwrap_err();
            assert!(
                matches!(denied, StorageError::Permanent { .. }),
                "{denied:?}"
            );
        }
    }

    #[tokio::test]
    async fn failures_are_classed_by_the_sdks_own_lists() {
        let cases = [
            // aws_runtime's throttling list.
            (dynamo_error("ThrottlingException"), "transient"),
            (dynamo_error("RequestLimitExceeded"), "transient"),
            // Modeled as retryable for PutItem; on no list kept here.
            (
                dynamo_error("ReplicatedWriteConflictException"),
                "transient",
            ),
            (reply(500, "{}"), "transient"),
            (reply(503, "{}"), "transient"),
            // A missing table is a broken deployment, not a missing item.
            (dynamo_error("ResourceNotFoundException"), "permanent"),
            (dynamo_error("AccessDeniedException"), "permanent"),
            (dynamo_error("ValidationException"), "permanent"),
        ];
        for (r, want) in cases {
            let what = r.body.clone();
            let fake = Fake::new([r]);
            let people = DynamoPeople::new(fake.dynamo(), "people");
            let record = PersonRecord {
                collection: "c".into(),
                person: "p".into(),
                attributes: Default::default(),
                face_count: 1,
                updated_at: "2026-01-01T00:00:00Z".into(),
            };
            let err = people.put(&record).await.unwrap_err();
            let got = match err {
                StorageError::Transient { .. } => "transient",
                StorageError::Permanent { .. } => "permanent",
                StorageError::NotFound { .. } => "not found",
                StorageError::TooLarge { .. } => "too large",
            };
            assert_eq!(got, want, "{what}");
        }

        let s3_cases = [
            (s3_error(503, "SlowDown"), "transient"),
            (s3_error(500, "InternalError"), "transient"),
            (s3_error(404, "NoSuchKey"), "not found"),
            (s3_error(404, "NoSuchVersion"), "not found"),
            (s3_error(404, "NoSuchBucket"), "permanent"),
            (s3_error(400, "InvalidArgument"), "permanent"),
        ];
        for (r, want) in s3_cases {
            let what = r.body.clone();
            let fake = Fake::new([r]);
            let err = S3Objects::new(fake.s3(), None)
                .get("data", "k", Some("v1"), 10)
                .await
                .unwrap_err();
            let got = match err {
                StorageError::Transient { .. } => "transient",
                StorageError::Permanent { .. } => "permanent",
                StorageError::NotFound { .. } => "not found",
                StorageError::TooLarge { .. } => "too large",
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn the_retry_verdict_is_the_sdks() {
        assert_eq!(
            sdk_retry_kind(None, Some("TooManyRequestsException"), 400),
            Some(RetryKind::ThrottlingError)
        );
        assert_eq!(
            sdk_retry_kind(None, Some("RequestTimeout"), 400),
            Some(RetryKind::TransientError)
        );
        assert_eq!(
            sdk_retry_kind(Some(RetryKind::TransientError), Some("Anything"), 400),
            Some(RetryKind::TransientError)
        );
        assert_eq!(
            sdk_retry_kind(None, None, 502),
            Some(RetryKind::ServerError)
        );
        assert_eq!(sdk_retry_kind(None, Some("AccessDenied"), 403), None);
        assert_eq!(sdk_retry_kind(None, None, 501), None);
    }

    #[tokio::test]
    async fn presigned_puts_sign_the_content_type_length_and_owner() {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build();
        let signer = S3UploadSigner::new(aws_sdk_s3::Client::from_conf(config), Some(OWNER.into()));
        let put = signer
            .presign_put(
                "data",
                "uploads/c/0123",
                "image/jpeg",
                12345,
                std::time::Duration::from_secs(300),
            )
            .await
            .unwrap();
        assert!(put.url.contains("uploads/c/0123"), "{}", put.url);
        assert!(put.url.contains("X-Amz-Expires=300"), "{}", put.url);
        let signed = put
            .url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
            .unwrap_or_else(|| panic!("no signed headers in {}", put.url));
        let signed: Vec<&str> = signed.split("%3B").collect();
        for header in [
            "content-length",
            "content-type",
            "host",
            "x-amz-expected-bucket-owner",
        ] {
            assert!(signed.contains(&header), "{header} not signed: {signed:?}");
        }
        assert_eq!(
            put.headers.get("content-type").map(String::as_str),
            Some("image/jpeg")
        );
        assert_eq!(
            put.headers.get("content-length").map(String::as_str),
            Some("12345")
        );
        assert_eq!(
            put.headers
                .get("x-amz-expected-bucket-owner")
                .map(String::as_str),
            Some(OWNER)
        );
    }
}
