//! A deployed stack's outputs, and the file deploy writes them to.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use aws_sdk_cloudformation::Client;
use serde_json::Value;

/// Output key → value.
pub type Outputs = BTreeMap<String, String>;

/// The stack's outputs. moto omits outputs of stacks made through change
/// sets, so when none come back they are evaluated from the template over
/// the stack's physical resource ids (same values AWS would give).
pub async fn read(
    cfn: &Client,
    stack_name: &str,
    template: &serde_json::Map<String, Value>,
    account: &str,
    region: &str,
) -> Result<Outputs> {
    let described = cfn.describe_stacks().stack_name(stack_name).send().await?;
    let stack = described.stacks().first().context("stack vanished")?;
    let outputs: Outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    if !outputs.is_empty() {
        return Ok(outputs);
    }
    let resources = cfn
        .describe_stack_resources()
        .stack_name(stack_name)
        .send()
        .await?;
    let physical: BTreeMap<String, (String, String)> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_string(),
                (
                    r.resource_type()?.to_string(),
                    r.physical_resource_id()?.to_string(),
                ),
            ))
        })
        .collect();
    let eval = Evaluator {
        physical: &physical,
        account,
        region,
    };
    template
        .iter()
        .map(|(k, o)| Ok((k.clone(), eval.value(&o["Value"])?)))
        .collect()
}

struct Evaluator<'a> {
    physical: &'a BTreeMap<String, (String, String)>,
    account: &'a str,
    region: &'a str,
}

impl Evaluator<'_> {
    fn value(&self, v: &Value) -> Result<String> {
        if let Some(s) = v.as_str() {
            return Ok(s.to_string());
        }
        if let Some(id) = v.get("Ref").and_then(Value::as_str) {
            // moto's partition and URL suffix (the standard ones).
            return Ok(match id {
                "AWS::Region" => self.region.to_string(),
                "AWS::AccountId" => self.account.to_string(),
                "AWS::Partition" => "aws".to_string(),
                "AWS::URLSuffix" => "amazonaws.com".to_string(),
                _ => self.resource(id)?.1.clone(),
            });
        }
        if let Some([delimiter, parts]) = v
            .get("Fn::Join")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            let parts = parts
                .as_array()
                .with_context(|| format!("Fn::Join without a list: {v}"))?
                .iter()
                .map(|p| self.value(p))
                .collect::<Result<Vec<_>>>()?;
            return Ok(parts.join(delimiter.as_str().unwrap_or_default()));
        }
        if let Some([id, attr]) = v
            .get("Fn::GetAtt")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            let (ty, physical) = self.resource(id.as_str().unwrap_or_default())?;
            let (account, region) = (self.account, self.region);
            return match (ty.as_str(), attr.as_str()) {
                ("AWS::SQS::Queue", Some("Arn")) => {
                    let name = physical.rsplit('/').next().unwrap_or(physical);
                    Ok(format!("arn:aws:sqs:{region}:{account}:{name}"))
                }
                ("AWS::Lambda::Function", Some("Arn")) => Ok(format!(
                    "arn:aws:lambda:{region}:{account}:function:{physical}"
                )),
                other => bail!("cannot evaluate GetAtt {other:?}"),
            };
        }
        bail!("cannot evaluate output {v}")
    }

    fn resource(&self, id: &str) -> Result<&(String, String)> {
        self.physical
            .get(id)
            .with_context(|| format!("stack has no resource {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn joins_and_pseudo_parameters_evaluate_like_cloudformation() {
        let physical = BTreeMap::from([(
            "RestApi".to_string(),
            ("AWS::ApiGateway::RestApi".to_string(), "abc123".to_string()),
        )]);
        let eval = Evaluator {
            physical: &physical,
            account: "123456789012",
            region: "us-east-1",
        };
        let url = json!({"Fn::Join": ["", [
            "https://", {"Ref": "RestApi"}, ".execute-api.", {"Ref": "AWS::Region"},
            ".", {"Ref": "AWS::URLSuffix"}, "/live"
        ]]});
        assert_eq!(
            eval.value(&url).unwrap(),
            "https://abc123.execute-api.us-east-1.amazonaws.com/live"
        );
        assert_eq!(
            eval.value(&json!({"Ref": "AWS::AccountId"})).unwrap(),
            "123456789012"
        );
        assert!(eval.value(&json!({"Ref": "Nope"})).is_err());
    }
}
