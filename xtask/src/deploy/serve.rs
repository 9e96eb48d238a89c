//! `cargo xtask serve --stack local`: the local stack's API Gateway.
//!
//! moto keeps the REST API's control plane but runs no integration, so this
//! plays the gateway the way [`super::dispatch`] plays SQS: an HTTP server on
//! loopback that does what the deployed gateway does, in the same order,
//! and nothing more:
//!
//! 1. only the stage path `/<stage>/v1/...` exists;
//! 2. a body over the REST API's 10 MB limit is refused with 413;
//! 3. no `x-api-key` header → 403;
//! 4. the stage's rate and burst limit, as a token bucket (429);
//! 5. the real `authorizer` bootstrap is invoked with the TOKEN event and
//!    its policy decides (403 on Deny, 500 when it fails); a request refused
//!    here never reaches a face function;
//! 6. the real `api` bootstrap gets the REST proxy event (payload 1.0,
//!    `image/*` bodies base64 as the stack's binary media types say, the
//!    authorizer's context as strings) and its response becomes the HTTP
//!    response; a function error is a 500.
//!
//! Two differences remain, both on the strict side: the authorizer's answer
//! is not cached (on AWS for 60 s, so a revoked key stops at once here), and
//! an event over Lambda's 6 MB request limit is answered 413 with the upload
//! hint (on AWS the invoke fails and the gateway answers 5xx).
//!
//! The queue mappings of `recognize` and `scan-worker` are served too, so an
//! upload through a presigned URL is recognized (an MP4 scanned as a job)
//! and its result can be read back. Each
//! function runs under its own Runtime Interface Emulator, which serves one
//! invoke at a time, so invokes of one function are serialized.
//!
//! tiny_http rather than hyper's server: a few small crates with no
//! features of their own, where turning on hyper's server side would
//! rebuild hyper and every AWS client above it in both the xtask's and the
//! tests' builds.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use face_stacks::app::outputs as keys;
use face_stacks::{DeployRecord, FunctionName};
use serde_json::{Value, json};

use super::dispatch::LocalFunction;
use super::smoke::{LocalMappings, local_client_env, read_record};
use super::{StackArg, Target};

/// API Gateway's REST API payload limit.
const GATEWAY_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Requests handled at once; invokes of one function still queue.
const WORKERS: usize = 8;

/// `cargo xtask serve` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub stack: StackArg,
    /// Loopback port to listen on (0: any free port) [default: $FACE_LOCAL_API_PORT, else 8450]
    #[arg(long)]
    pub port: Option<u16>,
    /// Stop when standard input closes (for tests and scripts that own this process)
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
}

/// Status, headers, body.
type HttpResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// One error in the API's error shape, as the gateway responses answer.
fn error_response(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

/// The stage's throttle: a token bucket of `rate_per_s`, holding `burst`.
#[derive(Debug)]
struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    fn new(rate_per_s: f64, burst: f64) -> Self {
        Self {
            rate_per_s,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = &mut *state;
        let now = Instant::now();
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.rate_per_s).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A function under the RIE, one invoke at a time.
struct Serialized {
    function: LocalFunction,
    lock: Mutex<()>,
}

impl Serialized {
    /// The function's reply, or the error it returned.
    fn invoke(
        &self,
        event: &Value,
    ) -> Result<std::result::Result<Value, local_aws::FunctionError>> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let invocation = self
            .function
            .rie
            .invoke(event)
            .with_context(|| format!("invoking {}", self.function.name))?;
        Ok(invocation.result)
    }

    /// A function error, for the gateway's log.
    fn describe(&self, e: &local_aws::FunctionError) -> String {
        format!(
            "{}: {}: {}\n{}",
            self.function.name,
            e.error_type,
            e.error_message,
            self.function.rie.log_tail(20)
        )
    }
}

/// Everything a request needs.
struct Gateway {
    stage: String,
    /// `arn:aws:execute-api:<region>:<account>:<api id>`.
    api_arn: String,
    authorizer: Serialized,
    api: Serialized,
    throttle: TokenBucket,
    requests: AtomicU64,
}

/// A request as read off the socket.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// Path and query as sent.
    pub url: String,
    /// Lower-case names, every value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode_component(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// API Gateway's REST proxy event (payload format 1.0) for `request` at
/// `path` (stage stripped), as the deployed integration sends it.
pub fn proxy_event(
    request: &HttpRequest,
    stage: &str,
    path: &str,
    query: &str,
    authorizer: &Value,
    request_id: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    let mut multi_headers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in &request.headers {
        headers.insert(k.clone(), Value::from(v.as_str()));
        multi_headers
            .entry(k.clone())
            .or_default()
            .push(Value::from(v.as_str()));
    }
    let mut params = serde_json::Map::new();
    let mut multi_params: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_component(k), decode_component(v));
        params.insert(k.clone(), Value::from(v.as_str()));
        multi_params.entry(k).or_default().push(Value::from(v));
    }
    let content_type = request.header("content-type").unwrap_or_default();
    // The stack's binary media types are `image/*`; anything else goes as
    // text, which the deployed gateway can only do for UTF-8.
    let text = std::str::from_utf8(&request.body)
        .ok()
        .filter(|_| !content_type.trim_start().starts_with("image/"));
    let (body, is_base64) = match (request.body.is_empty(), text) {
        (true, _) => (Value::Null, false),
        (false, Some(text)) => (Value::from(text), false),
        (false, None) => (
            Value::from(base64::engine::general_purpose::STANDARD.encode(&request.body)),
            true,
        ),
    };
    let proxy = path.strip_prefix("/v1/").unwrap_or_default();
    let none_if_empty = |m: serde_json::Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    json!({
        "resource": "/v1/{proxy+}",
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": none_if_empty(params),
        "multiValueQueryStringParameters": if multi_params.is_empty() { Value::Null } else { json!(multi_params) },
        "pathParameters": { "proxy": proxy },
        "stageVariables": null,
        "requestContext": {
            "resourcePath": "/v1/{proxy+}",
            "httpMethod": request.method,
            "path": format!("/{stage}{path}"),
            "stage": stage,
            "requestId": request_id,
            "protocol": "HTTP/1.1",
            "identity": { "sourceIp": "127.0.0.1" },
            "authorizer": authorizer,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// Whether an IAM policy `Resource` pattern (`*` matches anything) covers
/// `arn`.
fn resource_matches(pattern: &str, arn: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = arn.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether the authorizer's policy allows `method_arn`: an explicit Deny
/// wins, then some Allow must match, as IAM evaluates it.
pub fn policy_allows(response: &Value, method_arn: &str) -> bool {
    let statements = match &response["policyDocument"]["Statement"] {
        Value::Array(s) => s.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return false,
    };
    let covers = |s: &Value| {
        let resources = match &s["Resource"] {
            Value::String(r) => vec![r.clone()],
            Value::Array(r) => r
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        resources.iter().any(|r| resource_matches(r, method_arn))
    };
    let effect = |s: &Value, e: &str| s["Effect"].as_str() == Some(e);
    !statements.iter().any(|s| effect(s, "Deny") && covers(s))
        && statements.iter().any(|s| effect(s, "Allow") && covers(s))
}

impl Gateway {
    /// Answers one request: (status, headers, body).
    fn handle(&self, request: &HttpRequest) -> HttpResponse {
        let (status, body) = match self.route(request) {
            Ok(Ok(response)) => return response,
            Ok(Err((status, body))) => (status, body),
            Err(e) => {
                eprintln!("local gateway: {e:#}");
                error_response(500, "Internal", "internal server error")
            }
        };
        (
            status,
            vec![("content-type".into(), "application/json".into())],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }

    /// The function's response, or the gateway's own error response.
    fn route(
        &self,
        request: &HttpRequest,
    ) -> Result<std::result::Result<HttpResponse, (u16, Value)>> {
        let (path, query) = request
            .url
            .split_once('?')
            .unwrap_or((request.url.as_str(), ""));
        let Some(path) = path
            .strip_prefix(&format!("/{}", self.stage))
            .filter(|p| p.starts_with("/v1/"))
        else {
            return Ok(Err(error_response(
                404,
                "NotFound",
                &format!("no route {}: the API is under /{}/v1/", path, self.stage),
            )));
        };
        if request.body.len() as u64 > GATEWAY_MAX_BODY_BYTES {
            return Ok(Err(too_large(request.body.len())));
        }
        let Some(key) = request
            .header(face_contracts::api::KEY_HEADER)
            .filter(|k| !k.is_empty())
        else {
            return Ok(Err(error_response(403, "Unauthorized", "missing API key")));
        };
        // API Gateway throttles before it calls the authorizer.
        if !self.throttle.take() {
            return Ok(Err(error_response(
                429,
                "Throttled",
                "too many requests: slow down and retry",
            )));
        }
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("local-{number:08}");
        let method_arn = format!("{}/{}/{}{}", self.api_arn, self.stage, request.method, path);
        let token_event = json!({
            "type": "TOKEN",
            "authorizationToken": key,
            "methodArn": method_arn,
        });
        let policy = match self.authorizer.invoke(&token_event)? {
            Ok(policy) => policy,
            // The documented way to refuse: the function fails with exactly
            // "Unauthorized" (the gateway's 401, which the stack maps to 403).
            Err(e) if e.error_message == "Unauthorized" => {
                return Ok(Err(error_response(403, "Unauthorized", "missing API key")));
            }
            Err(e) => {
                eprintln!("local gateway: {}", self.authorizer.describe(&e));
                return Ok(Err(error_response(
                    500,
                    "Internal",
                    "the key could not be checked: retry",
                )));
            }
        };
        if !policy_allows(&policy, &method_arn) {
            return Ok(Err(error_response(
                403,
                "Unauthorized",
                "invalid or revoked API key",
            )));
        }
        let mut authorizer = json!({ "principalId": policy["principalId"] });
        if let Some(context) = policy["context"].as_object() {
            for (k, v) in context {
                // The gateway passes context values as strings.
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                authorizer[k] = Value::from(v);
            }
        }
        let event = proxy_event(request, &self.stage, path, query, &authorizer, &request_id);
        if serde_json::to_vec(&event).map_or(0, |e| e.len())
            > face_api::limits::MAX_REQUEST_EVENT_BYTES
        {
            return Ok(Err(too_large(request.body.len())));
        }
        let response = match self.api.invoke(&event)? {
            Ok(response) => response,
            Err(e) => {
                eprintln!("local gateway: {}", self.api.describe(&e));
                return Ok(Err(error_response(
                    500,
                    "Internal",
                    "internal server error",
                )));
            }
        };
        Ok(Ok(proxy_response(&response)?))
    }
}

fn too_large(size: usize) -> (u16, Value) {
    error_response(413, "TooLarge", &face_api::limits::too_large_message(size))
}

/// The HTTP response a proxy integration's reply stands for.
fn proxy_response(response: &Value) -> Result<HttpResponse> {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .context("the api function's reply has no statusCode")?;
    let mut headers: Vec<(String, String)> = response["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(multi) = response["multiValueHeaders"].as_object() {
        for (k, values) in multi {
            for v in values.as_array().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    headers.push((k.clone(), v.to_string()));
                }
            }
        }
    }
    let body = match response["body"].as_str() {
        None => Vec::new(),
        Some(b) if response["isBase64Encoded"].as_bool() == Some(true) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .context("the api function's base64 body")?
        }
        Some(b) => b.as_bytes().to_vec(),
    };
    Ok((status, headers, body))
}

/// Reads a request, at most `GATEWAY_MAX_BODY_BYTES + 1` of its body.
fn read_request(request: &mut tiny_http::Request) -> HttpRequest {
    let mut body = Vec::new();
    // An unreadable body is served as what arrived; the api function
    // reports a truncated JSON or image as bad input.
    let _ = request
        .as_reader()
        .take(GATEWAY_MAX_BODY_BYTES + 1)
        .read_to_end(&mut body);
    HttpRequest {
        method: request.method().as_str().to_ascii_uppercase(),
        url: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    }
}

fn respond(request: tiny_http::Request, (status, headers, body): HttpResponse) {
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    for (k, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    if let Err(e) = request.respond(response) {
        eprintln!("local gateway: writing a response: {e}");
    }
}

/// What a request that arrives while the gateway stops gets.
fn unavailable() -> HttpResponse {
    // The API's one retryable code (500, "retrying may help").
    let (status, body) = error_response(500, "Internal", "the local gateway is restarting; retry");
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// A running local gateway; [`RunningGateway::stop`] ends it.
pub struct RunningGateway {
    /// The API's base URL (`http://127.0.0.1:<port>/<stage>`).
    pub api_url: String,
    server: Arc<tiny_http::Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// `None` once stopped.
    mappings: Option<LocalMappings>,
}

/// Dropped without [`RunningGateway::stop`] (an error on the way): the
/// workers are stopped and joined all the same, so the functions they
/// hold (the api and authorizer RIEs) are dropped, and killed, before the
/// command exits instead of outliving it.
impl Drop for RunningGateway {
    fn drop(&mut self) {
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl RunningGateway {
    /// The local function behind a queue (recognize, scan-worker), for
    /// fault injection.
    pub fn queue_function(&self, function: FunctionName) -> Option<Arc<LocalFunction>> {
        self.mappings
            .as_ref()?
            .functions
            .iter()
            .find(|(f, _)| *f == function)
            .map(|(_, local)| Arc::clone(local))
    }

    /// Lets in-flight requests finish, answers those that arrived after
    /// the workers stopped with the API's retryable 500 (a client retries
    /// it; left alone, they would hang until its timeout), stops listening,
    /// stops the queue mappings; the functions' RIEs end when the gateway
    /// is dropped.
    pub async fn stop(mut self) -> Result<()> {
        let (workers, server) = (std::mem::take(&mut self.workers), Arc::clone(&self.server));
        tokio::task::spawn_blocking(move || {
            for _ in 0..workers.len() {
                server.unblock();
            }
            for w in workers {
                let _ = w.join();
            }
            while let Ok(Some(request)) = server.try_recv() {
                respond(request, unavailable());
            }
        })
        .await?;
        match self.mappings.take() {
            Some(mappings) => mappings.stop().await.map(drop),
            None => Ok(()),
        }
    }
}

/// Starts the local stack's gateway on `port` (0: any free port) and
/// records its URL as the local deploy record's `api_url`.
pub async fn start(root: &Path, port: u16) -> Result<RunningGateway> {
    let deployment = face_stacks::Deployment::load("local")?;
    let region = deployment
        .regions
        .first()
        .context("the local deployment has no region")?;
    let endpoint_url =
        super::local::running(root).context("the local AWS is not running: deploy first")?;
    let target = Target::Local {
        endpoint_url: endpoint_url.clone(),
    };
    let config = target.sdk_config(&region.region).await;
    let state_dir = super::state_dir(root, &deployment);
    let mut record = read_record(&state_dir, &region.region)?;
    let env = local_client_env(&endpoint_url, &region.region);

    let start_function = |function: FunctionName| {
        let name = record
            .output(&keys::function_name(function))
            .map(String::from);
        let (config, env) = (config.clone(), env.clone());
        async move {
            let name = name?;
            let f = LocalFunction::start(root, &config, &env, function.as_str(), &name).await?;
            Ok::<_, anyhow::Error>(Serialized {
                function: f,
                lock: Mutex::new(()),
            })
        }
    };
    let authorizer = start_function(FunctionName::Authorizer).await?;
    let api = start_function(FunctionName::Api).await?;
    let mappings = LocalMappings::start(root, &config, &env, &record).await?;

    let server = tiny_http::Server::http(("127.0.0.1", port))
        .map_err(|e| anyhow::anyhow!("listening on 127.0.0.1:{port}: {e}"))?;
    let port = server.server_addr().to_ip().map_or(port, |a| a.port());
    let stage = face_contracts::api::STAGE.to_string();
    let api_id = record
        .outputs
        .get(keys::REST_API_ID)
        .cloned()
        .unwrap_or_else(|| "local".into());
    let api_url = face_stacks::local_api_url(port);
    let limits = &region.api;
    let gateway = Arc::new(Gateway {
        api_arn: format!(
            "arn:aws:execute-api:{}:{}:{api_id}",
            region.region, record.account
        ),
        stage,
        authorizer,
        api,
        throttle: TokenBucket::new(f64::from(limits.rate_per_s), f64::from(limits.burst)),
        requests: AtomicU64::new(0),
    });
    // The record names the URL clients reach while this runs.
    record.api_url = Some(api_url.clone());
    std::fs::write(
        state_dir.join(DeployRecord::file_name(&region.region)),
        record.to_json(),
    )
    .context("updating the deploy record's api_url")?;

    let server = Arc::new(server);
    let workers = (0..WORKERS)
        .map(|_| {
            let (server, gateway) = (Arc::clone(&server), Arc::clone(&gateway));
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let read = read_request(&mut request);
                    let response = gateway.handle(&read);
                    respond(request, response);
                }
            })
        })
        .collect();
    Ok(RunningGateway {
        api_url,
        server,
        workers,
        mappings: Some(mappings),
    })
}

/// Serves the local stack's API until interrupted.
pub async fn run(root: &Path, args: &ServeArgs) -> Result<()> {
    if !args.stack.is_local() {
        bail!(
            "serve plays API Gateway for the local stack only; {} has a real one (see its api_url)",
            args.stack.stack
        );
    }
    let port = match args.port {
        Some(port) => port,
        None => super::local::api_port()?,
    };
    let gateway = start(root, port).await?;
    println!("local gateway: face-local on {}", gateway.api_url);
    // Last: the line a script or test waits for.
    println!("api_url: {}", gateway.api_url);
    wait_for_stop(args.exit_on_stdin_eof).await;
    println!("local gateway: stopping");
    gateway.stop().await
}

/// Ctrl-C, SIGTERM, or (if asked) the end of standard input.
async fn wait_for_stop(on_stdin_eof: bool) {
    let stdin_closed = async {
        if on_stdin_eof {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let mut stdin = std::io::stdin().lock();
                while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
                    line.clear();
                }
            })
            .await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
        _ = stdin_closed => {}
    }
    // Give in-flight responses a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str, content_type: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("x-api-key".into(), "k".into()),
            ],
            body: body.to_vec(),
        }
    }

    #[test]
    fn the_proxy_event_is_api_gateways_shape() {
        let r = request(
            "POST",
            "/live/v1/collections/c/search?limit=5&next=a%20b",
            "application/json",
            b"{}",
        );
        let authorizer = json!({"principalId": "ci", "key_name": "ci"});
        let e = proxy_event(
            &r,
            "live",
            "/v1/collections/c/search",
            "limit=5&next=a%20b",
            &authorizer,
            "id-1",
        );
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["path"], "/v1/collections/c/search");
        assert_eq!(e["pathParameters"]["proxy"], "collections/c/search");
        assert_eq!(e["queryStringParameters"]["next"], "a b");
        assert_eq!(e["headers"]["x-api-key"], "k");
        assert_eq!(e["body"], "{}");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["authorizer"]["principalId"], "ci");
        assert_eq!(e["requestContext"]["path"], "/live/v1/collections/c/search");

        let jpeg = request("POST", "/live/v1/detect", "image/jpeg", &[0xff, 0xd8, 0xff]);
        let e = proxy_event(&jpeg, "live", "/v1/detect", "", &authorizer, "id-2");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "/9j/");
        assert!(e["queryStringParameters"].is_null());
    }

    #[test]
    fn policies_are_evaluated_like_iam() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc/live/POST/v1/detect";
        let policy = |effect: &str, resource: &str| {
            json!({"principalId": "p", "policyDocument": {"Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}})
        };
        assert!(policy_allows(
            &policy(
                "Allow",
                "arn:aws:execute-api:us-east-1:123456789012:abc/live/*/*"
            ),
            arn
        ));
        assert!(policy_allows(&policy("Allow", "*"), arn));
        assert!(!policy_allows(
            &policy(
                "Deny",
                "arn:aws:execute-api:us-east-1:123456789012:abc/live/*/*"
            ),
            arn
        ));
        assert!(!policy_allows(
            &policy(
                "Allow",
                "arn:aws:execute-api:us-east-1:123456789012:other/live/*/*"
            ),
            arn
        ));
        assert!(!policy_allows(&json!({"principalId": "p"}), arn));
    }

    #[test]
    fn the_token_bucket_refuses_past_its_burst() {
        let bucket = TokenBucket::new(0.001, 3.0);
        assert_eq!((0..5).filter(|_| bucket.take()).count(), 3);
    }

    #[test]
    fn proxy_responses_become_http_responses() {
        let (status, headers, body) = proxy_response(&json!({
            "statusCode": 404, "headers": {"content-type": "application/json"},
            "body": "{\"error\":{}}", "isBase64Encoded": false
        }))
        .unwrap();
        assert_eq!(
            (status, body.as_slice()),
            (404, b"{\"error\":{}}".as_slice())
        );
        assert_eq!(
            headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert!(proxy_response(&json!({"body": "x"})).is_err());
    }
}
