//! A Lambda function with its own log group and its own least-privilege
//! role.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::{self, Statement, Template};
use crate::config::FunctionName;
use crate::plan::FunctionConfig;

/// Where the function's zip is: the caller uploads it there first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLocation {
    pub bucket: Value,
    pub key: Value,
    /// The key's parameter default: the artifact's content-hash key.
    pub default_key: String,
}

/// Everything a function needs besides its scope.
#[derive(Debug, Clone)]
pub struct FunctionProps {
    pub function: FunctionName,
    pub config: FunctionConfig,
    pub code: CodeLocation,
    pub environment: BTreeMap<&'static str, Value>,
    /// The only permissions the role gets, besides writing its own logs.
    pub grants: Vec<Statement>,
    pub log_retention_days: u32,
    /// X-Ray active tracing.
    pub xray_tracing: bool,
}

/// `AWS::Lambda::Function` + `AWS::Logs::LogGroup` + `AWS::IAM::Role`.
#[derive(Debug, Clone)]
pub struct Function {
    pub props: FunctionProps,
}

impl Function {
    /// `<stack>-<function>`.
    pub fn physical_name(scope: &Scope, function: FunctionName) -> String {
        scope.physical_name(function.as_str())
    }

    /// Lambda's own convention, so the runtime writes where we created.
    pub fn log_group_name(scope: &Scope, function: FunctionName) -> String {
        format!("/aws/lambda/{}", Self::physical_name(scope, function))
    }

    pub fn logical_id(&self) -> String {
        format!("{}Function", self.props.function.camel())
    }

    pub fn role_logical_id(&self) -> String {
        format!("{}Role", self.props.function.camel())
    }

    pub fn log_group_logical_id(&self) -> String {
        format!("{}LogGroup", self.props.function.camel())
    }

    pub fn name(&self) -> Value {
        cfn::reference(&self.logical_id())
    }

    pub fn arn(&self) -> Value {
        cfn::get_att(&self.logical_id(), "Arn")
    }

    /// Every statement of the role's inline policy.
    pub fn statements(&self, scope: &Scope) -> Vec<Statement> {
        let log_group = Self::log_group_name(scope, self.props.function);
        let mut statements = self.props.grants.clone();
        if self.props.xray_tracing {
            // X-Ray's write actions take no resource but "*".
            statements.push(Statement::allow(
                &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                [cfn::text("*")],
            ));
        }
        statements.push(Statement::allow(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            // The log group's streams: `log-group:<name>:log-stream:<stream>`.
            [cfn::arn_here(
                "logs",
                cfn::text(format!("log-group:{log_group}:*")),
            )],
        ));
        statements
    }
}

impl Construct for Function {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        let p = &self.props;
        let name = Self::physical_name(scope, p.function);
        t.add_resource(
            &self.log_group_logical_id(),
            json!({
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Delete",
                "UpdateReplacePolicy": "Delete",
                "Properties": {
                    "LogGroupName": Self::log_group_name(scope, p.function),
                    "RetentionInDays": p.log_retention_days,
                    "Tags": scope.tags(),
                },
            }),
        );
        t.add_resource(
            &self.role_logical_id(),
            json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Description": format!("{name}: least privilege"),
                    "AssumeRolePolicyDocument": cfn::policy_document([json!({
                        "Effect": "Allow",
                        "Principal": { "Service": "lambda.amazonaws.com" },
                        "Action": "sts:AssumeRole",
                    })]),
                    "Policies": [{
                        "PolicyName": format!("{}-least-privilege", p.function),
                        "PolicyDocument": cfn::policy_document(
                            self.statements(scope).iter().map(Statement::to_json),
                        ),
                    }],
                    "Tags": scope.tags(),
                },
            }),
        );
        let mut properties = json!({
            "FunctionName": name,
            "Description": format!("face recognition: {}", p.function),
            "Role": cfn::get_att(&self.role_logical_id(), "Arn"),
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "Architectures": [p.config.architecture.as_str()],
            "MemorySize": p.config.memory_mib,
            "Timeout": p.config.timeout_s,
            "Code": { "S3Bucket": p.code.bucket, "S3Key": p.code.key },
            "Environment": { "Variables": p.environment },
            // Lambda's structured logs into the group made above: the
            // runtime sets AWS_LAMBDA_LOG_FORMAT/LEVEL, which the functions'
            // subscriber honours.
            "LoggingConfig": {
                "LogFormat": "JSON",
                "ApplicationLogLevel": "INFO",
                "SystemLogLevel": "WARN",
                "LogGroup": Self::log_group_name(scope, p.function),
            },
            "Tags": scope.tags(),
        });
        if p.xray_tracing {
            properties["TracingConfig"] = json!({ "Mode": "Active" });
        }
        if let Some(reserved) = p.config.reserved_concurrency {
            properties["ReservedConcurrentExecutions"] = reserved.into();
        }
        t.add_resource(
            &self.logical_id(),
            json!({
                "Type": "AWS::Lambda::Function",
                // The log group exists (with its retention) before the
                // runtime could create one without.
                "DependsOn": [self.log_group_logical_id()],
                "Properties": properties,
            }),
        );
        let camel = p.function.camel();
        t.add_output(
            &format!("{camel}FunctionName"),
            &format!("{} function name", p.function),
            self.name(),
        );
        t.add_output(
            &format!("{camel}FunctionArn"),
            &format!("{} function ARN", p.function),
            self.arn(),
        );
    }
}
