//! [`Worker`] on AWS Lambda's Invoke API: one client per region, built
//! explicitly (never through process-wide region state). The Runtime
//! Interface Emulator serves the same API path, so a target whose endpoint
//! is an emulator runs the real bootstrap locally.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::schedule::{Worker, WorkerError};

/// Where one region's function is.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaTarget {
    pub region: String,
    pub function_name: String,
    /// Set for local runs (moto, the emulator); `None` uses AWS's.
    pub endpoint_url: Option<String>,
    /// The function's own timeout: an attempt that has no reply a while
    /// after it (a lost connection) is given up and retried.
    pub function_timeout: Duration,
}

/// How long past the function's timeout an invoke's reply may take (the
/// network, a cold start's init).
const REPLY_MARGIN: Duration = Duration::from_secs(30);

/// Invokes each region's function synchronously with the job as payload.
#[derive(Debug)]
pub struct LambdaWorker<J, R> {
    targets: BTreeMap<String, (aws_sdk_lambda::Client, String)>,
    _types: PhantomData<fn(&J) -> R>,
}

impl<J, R> LambdaWorker<J, R> {
    /// One client per target, from the shared credentials chain but each
    /// with its own region (and endpoint).
    pub fn new(base: &face_sdk_config::SdkConfig, targets: &[LambdaTarget]) -> Self {
        let targets = targets
            .iter()
            .map(|t| {
                // The scheduler retries (elsewhere, with its own backoff);
                // SDK retries underneath would hide a dead region for seconds.
                let mut config = aws_sdk_lambda::config::Builder::from(
                    &face_sdk_config::with_region(base, &t.region),
                )
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                        .operation_attempt_timeout(t.function_timeout + REPLY_MARGIN)
                        .build(),
                );
                if let Some(endpoint) = &t.endpoint_url {
                    config = config.endpoint_url(endpoint);
                }
                (
                    t.region.clone(),
                    (
                        aws_sdk_lambda::Client::from_conf(config.build()),
                        t.function_name.clone(),
                    ),
                )
            })
            .collect();
        Self {
            targets,
            _types: PhantomData,
        }
    }
}

/// A function's error reply: a bad job, or a reply over Lambda's 6 MB,
/// is fatal (the same job fails the same way again); anything else (a
/// crash, a timeout, a transient AWS error inside) is worth another attempt.
pub fn classify_function_error(body: &Value) -> WorkerError {
    let kind = body["errorType"].as_str().unwrap_or("Unhandled");
    let message = format!("{kind}: {}", body["errorMessage"].as_str().unwrap_or(""));
    if kind.ends_with("BadInput") {
        WorkerError::Fatal(message)
    } else if kind == "Function.ResponseSizeTooLarge" {
        WorkerError::Fatal(format!(
            "{message} (a chunk's frames are over Lambda's reply limit: scan with fewer frames per chunk)"
        ))
    } else {
        WorkerError::Retryable(message)
    }
}

fn invoke_error<E>(
    region: &str,
    err: SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> WorkerError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!("{region}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(service) => match service.err().code().unwrap_or_default() {
            "TooManyRequestsException" | "EC2ThrottledException" => WorkerError::Throttled(message),
            // A deploy updating the function, a brief service fault.
            "ServiceException" | "ResourceNotReadyException" | "ResourceConflictException" => {
                WorkerError::Retryable(message)
            }
            // The function is missing or we may not call it: this region
            // cannot help, others may.
            _ => WorkerError::RegionDown(message),
        },
        // Unreachable endpoint or timeout: retried, and after a few in a
        // row the scheduler takes the region out.
        _ => WorkerError::Retryable(message),
    }
}

#[async_trait]
impl<J, R> Worker<J, R> for LambdaWorker<J, R>
where
    J: Serialize + Send + Sync,
    R: DeserializeOwned + Send,
{
    async fn run(&self, region: &str, job: &J) -> Result<R, WorkerError> {
        let (client, function) = self
            .targets
            .get(region)
            .ok_or_else(|| WorkerError::RegionDown(format!("no function in region {region}")))?;
        let payload = serde_json::to_vec(job)
            .map_err(|e| WorkerError::Fatal(format!("serializing the job: {e}")))?;
        let output = client
            .invoke()
            .function_name(function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| invoke_error(region, e))?;
        read_reply(
            region,
            output.function_error().is_some(),
            output.payload().map(|p| p.as_ref()),
        )
    }
}

/// A function's reply: its result, or why it has none. No reply at all
/// (no payload, or `null`) is what an environment that died mid-invoke
/// leaves (the emulator answers an invoke it was reset during with an
/// empty 200), so it is retried; a reply of another shape is fatal.
pub fn read_reply<R: DeserializeOwned>(
    region: &str,
    function_error: bool,
    payload: Option<&[u8]>,
) -> Result<R, WorkerError> {
    let body: Value = match payload {
        Some(p) if !p.is_empty() => serde_json::from_slice(p)
            .map_err(|e| WorkerError::Retryable(format!("{region}: reply is not JSON: {e}")))?,
        _ => Value::Null,
    };
    // Lambda flags errors in a header; the emulator only in the body.
    if function_error || body.get("errorType").is_some() {
        return Err(classify_function_error(&body));
    }
    if body.is_null() {
        return Err(WorkerError::Retryable(format!(
            "{region}: the function replied nothing (its environment ended mid-invoke?)"
        )));
    }
    serde_json::from_value(body)
        .map_err(|e| WorkerError::Fatal(format!("{region}: unexpected reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_jobs_are_fatal_everything_else_is_retried() {
        let bad = json!({"errorType": "FaceService.BadInput", "errorMessage": "not an MP4"});
        assert_eq!(
            classify_function_error(&bad),
            WorkerError::Fatal("FaceService.BadInput: not an MP4".into())
        );
        for kind in [
            "FaceService.Retryable",
            "Runtime.ExitError",
            "Sandbox.Timedout",
        ] {
            let err = classify_function_error(&json!({"errorType": kind, "errorMessage": "x"}));
            assert!(matches!(err, WorkerError::Retryable(_)), "{kind}: {err:?}");
        }
        // The same chunk would be over the reply limit again.
        let too_large = json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": "over 6291556 bytes"});
        assert!(
            matches!(classify_function_error(&too_large), WorkerError::Fatal(m) if m.contains("fewer frames per chunk"))
        );
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Scanned {
        frames: u32,
    }

    #[test]
    fn no_reply_is_retried_a_reply_of_another_shape_is_fatal() {
        let read = |error, payload: Option<&[u8]>| read_reply::<Scanned>("r", error, payload);
        assert_eq!(
            read(false, Some(br#"{"frames":5}"#)),
            Ok(Scanned { frames: 5 })
        );
        // An environment reset mid-invoke: the emulator's empty 200.
        for nothing in [None, Some(&b""[..]), Some(&b"null"[..])] {
            let err = read(false, nothing).unwrap_err();
            assert!(
                matches!(err, WorkerError::Retryable(_)),
                "{nothing:?}: {err:?}"
            );
        }
        assert!(matches!(
            read(false, Some(b"{\"frames\":")).unwrap_err(),
            WorkerError::Retryable(_)
        ));
        assert!(matches!(
            read(false, Some(br#"{"chunks":[]}"#)).unwrap_err(),
            WorkerError::Fatal(_)
        ));
        assert!(matches!(
            read(
                true,
                Some(br#"{"errorType":"FaceService.BadInput","errorMessage":"x"}"#)
            )
            .unwrap_err(),
            WorkerError::Fatal(_)
        ));
        // Lambda's header with no body: a crash, retried.
        assert!(matches!(
            read(true, None).unwrap_err(),
            WorkerError::Retryable(_)
        ));
    }
}
