//! The HTTPS API: an API Gateway REST API whose every route under `/v1/`
//! goes to one function, behind a Lambda TOKEN authorizer on `x-api-key`.
//!
//! Why a REST API and not an HTTP API: a REST API's gateway responses
//! ([`GATEWAY_RESPONSES`]) let API Gateway itself answer in the API's error
//! shape, `{"error": {"code", "message"}}`, for what it refuses before any
//! function runs: a missing or refused key (403), a body over its limit
//! (413), its own throttling (429). An HTTP API answers those with fixed
//! bodies of its own (`{"message": "Unauthorized"}`, ...) that no setting
//! changes, so every client would need two error shapes. The REST API also
//! caches the authorizer's answer per key and takes binary bodies
//! (`image/*`) as they are.

use face_contracts::api::{KEY_HEADER, STAGE};
use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::{self, Template};
use crate::plan::ApiConfig;

/// Bodies of these types reach the function as base64, unmangled.
pub const BINARY_MEDIA_TYPES: [&str; 1] = ["image/*"];

/// How long API Gateway caches the authorizer's answer per key. A revoked
/// key therefore keeps working for at most this long after `cargo xtask
/// api-key revoke`.
pub const AUTHORIZER_CACHE_TTL_S: u32 = 60;

/// Replies API Gateway gives itself, in the API's error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayResponse {
    /// API Gateway's response type.
    pub response_type: &'static str,
    /// The status sent instead of the type's own; `None` keeps it. The
    /// defaults keep theirs: `DEFAULT_4XX` also stands for 404, 415, ...
    pub status_code: Option<u16>,
    /// The API's error code (`Unauthorized`, `TooLarge`, ...).
    pub code: &'static str,
    /// `None`: API Gateway's own message (`$context.error.messageString`,
    /// already a JSON string).
    pub message: Option<&'static str>,
}

/// Every gateway response the API overrides. `DEFAULT_4XX`/`DEFAULT_5XX`
/// cover the types not listed (an authorizer failure, an integration
/// timeout, ...).
pub const GATEWAY_RESPONSES: [GatewayResponse; 10] = [
    // No `x-api-key` header: the authorizer is not even called.
    GatewayResponse {
        response_type: "UNAUTHORIZED",
        status_code: Some(403),
        code: "Unauthorized",
        message: Some("missing API key"),
    },
    // The authorizer denied the key.
    GatewayResponse {
        response_type: "ACCESS_DENIED",
        status_code: Some(403),
        code: "Unauthorized",
        message: Some("invalid or revoked API key"),
    },
    GatewayResponse {
        response_type: "THROTTLED",
        status_code: Some(429),
        code: "Throttled",
        message: Some("too many requests: slow down and retry"),
    },
    GatewayResponse {
        response_type: "QUOTA_EXCEEDED",
        status_code: Some(429),
        code: "Throttled",
        message: Some("quota exceeded"),
    },
    // API Gateway's 10 MB payload limit.
    GatewayResponse {
        response_type: "REQUEST_TOO_LARGE",
        status_code: Some(413),
        code: "TooLarge",
        message: Some("body over the limit: use POST /v1/uploads"),
    },
    // A path outside `/v1/...`: no resource, so no method.
    GatewayResponse {
        response_type: "MISSING_AUTHENTICATION_TOKEN",
        status_code: Some(404),
        code: "NotFound",
        message: Some("no such route"),
    },
    // An unknown method on a known path.
    GatewayResponse {
        response_type: "RESOURCE_NOT_FOUND",
        status_code: Some(404),
        code: "NotFound",
        message: Some("no such route"),
    },
    // The authorizer failed (not a Deny): retrying may help.
    GatewayResponse {
        response_type: "AUTHORIZER_FAILURE",
        status_code: Some(500),
        code: "Internal",
        message: Some("the key could not be checked: retry"),
    },
    GatewayResponse {
        response_type: "DEFAULT_4XX",
        status_code: None,
        code: "BadInput",
        message: None,
    },
    GatewayResponse {
        response_type: "DEFAULT_5XX",
        status_code: None,
        code: "Internal",
        message: None,
    },
];

impl GatewayResponse {
    /// The `application/json` mapping template: `{"error": {...}}`.
    pub fn template(&self) -> String {
        let message = match self.message {
            Some(m) => Value::String(m.into()).to_string(),
            None => "$context.error.messageString".into(),
        };
        format!(
            "{{\"error\": {{\"code\": {}, \"message\": {message}}}}}",
            Value::String(self.code.into())
        )
    }

    /// `UNAUTHORIZED` → `Unauthorized`, `DEFAULT_4XX` → `Default4xx`.
    fn camel(&self) -> String {
        self.response_type
            .split('_')
            .map(|w| {
                let mut chars = w.chars();
                chars.next().map_or_else(String::new, |c| {
                    c.to_string() + &chars.as_str().to_ascii_lowercase()
                })
            })
            .collect()
    }
}

/// `AWS::ApiGateway::RestApi` with `/v1/{proxy+}` (`ANY`, `AWS_PROXY` to
/// the handler), the TOKEN authorizer, a deployment and the `live` stage,
/// the gateway responses, and the two Lambda permissions.
#[derive(Debug, Clone)]
pub struct RestApi {
    pub logical_id: &'static str,
    /// Physical name: `<stack>-<suffix>`.
    pub suffix: &'static str,
    /// ARN of the function every route invokes.
    pub handler_arn: Value,
    /// ARN of the TOKEN authorizer function.
    pub authorizer_arn: Value,
    /// Stage-wide throttling.
    pub throttling: ApiConfig,
}

impl RestApi {
    /// The API's id (`Ref`).
    pub fn id(&self) -> Value {
        cfn::reference(self.logical_id)
    }

    /// `https://<id>.execute-api.<region>.<url suffix>/live`.
    pub fn url(&self) -> Value {
        cfn::join([
            cfn::text("https://"),
            self.id(),
            cfn::text(".execute-api."),
            cfn::region(),
            cfn::text("."),
            cfn::reference("AWS::URLSuffix"),
            cfn::text(format!("/{STAGE}")),
        ])
    }

    /// `arn:<partition>:execute-api:<region>:<account>:<id>/<rest>`.
    pub fn execute_api_arn(&self, rest: Value) -> Value {
        cfn::arn_here("execute-api", cfn::join([self.id(), cfn::text("/"), rest]))
    }

    fn id_of(&self, part: &str) -> String {
        format!("{}{part}", self.logical_id)
    }

    pub fn v1_logical_id(&self) -> String {
        self.id_of("V1")
    }

    pub fn proxy_logical_id(&self) -> String {
        self.id_of("Proxy")
    }

    pub fn method_logical_id(&self) -> String {
        self.id_of("ProxyAny")
    }

    pub fn authorizer_logical_id(&self) -> String {
        self.id_of("Authorizer")
    }

    pub fn stage_logical_id(&self) -> String {
        self.id_of("Stage")
    }

    /// API Gateway's URI for invoking a function from the gateway.
    fn lambda_invocation_uri(function_arn: &Value) -> Value {
        cfn::join([
            cfn::text("arn:"),
            cfn::partition(),
            cfn::text(":apigateway:"),
            cfn::region(),
            cfn::text(":lambda:path/2015-03-31/functions/"),
            function_arn.clone(),
            cfn::text("/invocations"),
        ])
    }

    /// The routes: what a deployment snapshots.
    fn routes(&self, scope: &Scope) -> Vec<(String, Value)> {
        let api = self.id();
        vec![
            (
                self.v1_logical_id(),
                json!({
                    "Type": "AWS::ApiGateway::Resource",
                    "Properties": {
                        "RestApiId": api,
                        "ParentId": cfn::get_att(self.logical_id, "RootResourceId"),
                        "PathPart": "v1",
                    },
                }),
            ),
            (
                self.proxy_logical_id(),
                json!({
                    "Type": "AWS::ApiGateway::Resource",
                    "Properties": {
                        "RestApiId": api,
                        "ParentId": cfn::reference(&self.v1_logical_id()),
                        "PathPart": "{proxy+}",
                    },
                }),
            ),
            (
                self.authorizer_logical_id(),
                json!({
                    "Type": "AWS::ApiGateway::Authorizer",
                    "Properties": {
                        "RestApiId": api,
                        "Name": scope.physical_name("api-key"),
                        "Type": "TOKEN",
                        "IdentitySource": format!("method.request.header.{KEY_HEADER}"),
                        "AuthorizerUri": Self::lambda_invocation_uri(&self.authorizer_arn),
                        // Revocation takes effect within this TTL: API
                        // Gateway keeps the answer for a key that long.
                        "AuthorizerResultTtlInSeconds": AUTHORIZER_CACHE_TTL_S,
                    },
                }),
            ),
            (
                self.method_logical_id(),
                json!({
                    "Type": "AWS::ApiGateway::Method",
                    "Properties": {
                        "RestApiId": api,
                        "ResourceId": cfn::reference(&self.proxy_logical_id()),
                        "HttpMethod": "ANY",
                        "AuthorizationType": "CUSTOM",
                        "AuthorizerId": cfn::reference(&self.authorizer_logical_id()),
                        "Integration": {
                            "Type": "AWS_PROXY",
                            // Lambda is always invoked with POST.
                            "IntegrationHttpMethod": "POST",
                            "Uri": Self::lambda_invocation_uri(&self.handler_arn),
                        },
                    },
                }),
            ),
        ]
    }
}

impl Construct for RestApi {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {
                    "Name": scope.physical_name(self.suffix),
                    "Description": format!("{}: the face recognition HTTPS API", scope.stack_name),
                    "EndpointConfiguration": { "Types": ["REGIONAL"] },
                    // Raw image bodies reach the function as base64.
                    "BinaryMediaTypes": BINARY_MEDIA_TYPES,
                    // Compress JSON replies of 1 KiB and more (search results).
                    "MinimumCompressionSize": 1024,
                    "Tags": scope.tags(),
                },
            }),
        );
        let routes = self.routes(scope);
        let responses: Vec<(String, Value)> = GATEWAY_RESPONSES
            .iter()
            .map(|r| {
                let mut properties = json!({
                    "RestApiId": self.id(),
                    "ResponseType": r.response_type,
                    "ResponseParameters": {
                        "gatewayresponse.header.Content-Type": "'application/json'",
                    },
                    "ResponseTemplates": { "application/json": r.template() },
                });
                if let Some(status) = r.status_code {
                    properties["StatusCode"] = Value::String(status.to_string());
                }
                (
                    self.id_of(&format!("Response{}", r.camel())),
                    json!({ "Type": "AWS::ApiGateway::GatewayResponse", "Properties": properties }),
                )
            })
            .collect();
        // A deployment is a snapshot of the routes, the gateway responses
        // and the binary media types: CloudFormation makes a new one only
        // when its logical id changes, so the id carries a hash of all of
        // them (a change to any is live after deploy).
        let snapshot: Vec<Value> = routes
            .iter()
            .chain(&responses)
            .map(|(_, r)| r.clone())
            .chain([json!(BINARY_MEDIA_TYPES)])
            .collect();
        let deployment_id = format!(
            "{}Deployment{:016x}",
            self.logical_id,
            fnv1a(Value::Array(snapshot).to_string())
        );
        // The method is not listed: the description's `Ref` below already
        // orders it (cfn-lint W3005).
        let depends_on: Vec<String> = responses.iter().map(|(id, _)| id.clone()).collect();
        for (id, resource) in routes.into_iter().chain(responses) {
            t.add_resource(&id, resource);
        }
        t.add_resource(
            &deployment_id,
            json!({
                "Type": "AWS::ApiGateway::Deployment",
                // A deployment of an API without methods fails. moto
                // creates a change set's resources in template order and
                // ignores `DependsOn`, following only `Ref`s: the
                // description's `Ref` makes it create the method first too.
                "DependsOn": depends_on,
                "Properties": {
                    "RestApiId": self.id(),
                    "Description": cfn::join([
                        cfn::text("face-stacks routes; method "),
                        cfn::reference(&self.method_logical_id()),
                    ]),
                },
            }),
        );
        t.add_resource(
            &self.stage_logical_id(),
            json!({
                "Type": "AWS::ApiGateway::Stage",
                "Properties": {
                    "RestApiId": self.id(),
                    "StageName": STAGE,
                    "DeploymentId": cfn::reference(&deployment_id),
                    // Stage-wide, over every key together; each key's own
                    // limits are the functions' to enforce.
                    "MethodSettings": [{
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": self.throttling.rate_per_s,
                        "ThrottlingBurstLimit": self.throttling.burst,
                        "MetricsEnabled": false,
                        // Access and execution logging stay off: they would
                        // need an account-wide CloudWatch role.
                        "LoggingLevel": "OFF",
                        "DataTraceEnabled": false,
                    }],
                    "Tags": scope.tags(),
                },
            }),
        );
        // API Gateway invokes each function as its service principal, from
        // this API only: the handler from any stage and method of `/v1/*`,
        // the authorizer as this API's authorizer.
        let permissions = [
            (
                "InvokesApi",
                &self.handler_arn,
                self.execute_api_arn(cfn::text("*/*/v1/*")),
            ),
            (
                "InvokesAuthorizer",
                &self.authorizer_arn,
                self.execute_api_arn(cfn::join([
                    cfn::text("authorizers/"),
                    cfn::reference(&self.authorizer_logical_id()),
                ])),
            ),
        ];
        for (suffix, function_arn, source_arn) in permissions {
            t.add_resource(
                &self.id_of(suffix),
                json!({
                    "Type": "AWS::Lambda::Permission",
                    "Properties": {
                        "Action": "lambda:InvokeFunction",
                        "FunctionName": function_arn,
                        "Principal": "apigateway.amazonaws.com",
                        "SourceAccount": cfn::account_id(),
                        "SourceArn": source_arn,
                    },
                }),
            );
        }
    }
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change
/// between Rust releases, which would churn deployment ids).
fn fnv1a(text: String) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_the_error_shape_and_ids_are_camel_case() {
        for r in GATEWAY_RESPONSES {
            let body = r
                .template()
                .replace("$context.error.messageString", "\"from the gateway\"");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["code"], r.code, "{}", r.response_type);
            assert!(v["error"]["message"].is_string());
            assert_eq!(v.as_object().unwrap().len(), 1);
        }
        assert_eq!(GATEWAY_RESPONSES[0].camel(), "Unauthorized");
        assert_eq!(GATEWAY_RESPONSES[8].camel(), "Default4xx");
        assert_eq!(fnv1a(String::new()), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a".into()), 0xaf63_dc4c_8601_ec8c);
    }
}
