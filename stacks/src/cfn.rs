//! CloudFormation building blocks: intrinsic functions and the template.
//!
//! Expressions are plain `serde_json::Value`s; the helpers keep their
//! shapes right. Joins are used rather than `Fn::Sub` so that a reference
//! is visible to every tool as a `Ref`/`Fn::GetAtt` node.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// `{"Ref": id}`: a resource's primary id (name, URL) or a pseudo parameter.
pub fn reference(logical_id: &str) -> Value {
    json!({ "Ref": logical_id })
}

/// `{"Fn::GetAtt": [id, attribute]}`.
pub fn get_att(logical_id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [logical_id, attribute] })
}

/// `{"Fn::Join": ["", parts]}`.
pub fn join(parts: impl IntoIterator<Item = Value>) -> Value {
    json!({ "Fn::Join": ["", parts.into_iter().collect::<Vec<_>>()] })
}

/// Literal text inside [`join`].
pub fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// `{"Fn::If": [condition, then, else]}`.
pub fn if_then(condition: &str, then: Value, otherwise: Value) -> Value {
    json!({ "Fn::If": [condition, then, otherwise] })
}

/// `AWS::AccountId`.
pub fn account_id() -> Value {
    reference("AWS::AccountId")
}

/// `AWS::Region`.
pub fn region() -> Value {
    reference("AWS::Region")
}

/// `AWS::Partition` (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition() -> Value {
    reference("AWS::Partition")
}

/// `arn:<partition>:<service>:<region>:<account>:<rest>` in this stack's
/// own region and account.
pub fn arn_here(service: &str, rest: Value) -> Value {
    join([
        text("arn:"),
        partition(),
        text(format!(":{service}:")),
        region(),
        text(":"),
        account_id(),
        text(":"),
        rest,
    ])
}

/// Tags as every taggable type used here wants them: `[{Key, Value}]`.
pub fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// One IAM policy statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub actions: Vec<&'static str>,
    pub resources: Vec<Value>,
    /// IAM's `Condition` block, when the grant has one.
    pub condition: Option<Value>,
}

impl Statement {
    pub fn allow(actions: &[&'static str], resources: impl IntoIterator<Item = Value>) -> Self {
        Statement {
            actions: actions.to_vec(),
            resources: resources.into_iter().collect(),
            condition: None,
        }
    }

    /// The grant only under `condition`, e.g. `{"StringLike": {"s3:prefix": [...]}}`.
    pub fn when(mut self, condition: Value) -> Self {
        self.condition = Some(condition);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut statement = json!({
            "Effect": "Allow",
            "Action": self.actions,
            "Resource": self.resources,
        });
        if let Some(condition) = &self.condition {
            statement["Condition"] = condition.clone();
        }
        statement
    }
}

/// A policy document.
pub fn policy_document(statements: impl IntoIterator<Item = Value>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": statements.into_iter().collect::<Vec<_>>(),
    })
}

/// A whole template. Keys serialize sorted, so output is deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    pub description: String,
    pub parameters: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub resources: Map<String, Value>,
    pub outputs: Map<String, Value>,
}

impl Template {
    pub fn new(description: impl Into<String>) -> Self {
        Template {
            description: description.into(),
            ..Template::default()
        }
    }

    /// Adds a resource. A logical id used twice is a bug in a construct.
    pub fn add_resource(&mut self, logical_id: &str, resource: Value) {
        let previous = self.resources.insert(logical_id.into(), resource);
        debug_assert!(previous.is_none(), "duplicate logical id {logical_id}");
    }

    /// Adds a string parameter with a default, so a deploy that passes
    /// none (ours) gets the default and any other tool may override it.
    pub fn add_parameter(&mut self, name: &str, description: &str, default: &str) {
        self.parameters.insert(
            name.into(),
            json!({ "Type": "String", "Description": description, "Default": default }),
        );
    }

    /// Adds a condition (an `Fn::Equals`, `Fn::Not`, ... expression).
    pub fn add_condition(&mut self, name: &str, condition: Value) {
        self.conditions.insert(name.into(), condition);
    }

    /// Adds an output, described for people reading the console.
    pub fn add_output(&mut self, key: &str, description: &str, value: Value) {
        self.outputs.insert(
            key.into(),
            json!({ "Description": description, "Value": value }),
        );
    }

    pub fn to_json(&self) -> Value {
        let mut template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": self.description,
            "Resources": self.resources,
            "Outputs": self.outputs,
        });
        if !self.parameters.is_empty() {
            template["Parameters"] = Value::Object(self.parameters.clone());
        }
        if !self.conditions.is_empty() {
            template["Conditions"] = Value::Object(self.conditions.clone());
        }
        template
    }
}
