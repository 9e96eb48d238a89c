//! DynamoDB tables, on-demand.

use serde_json::{Value, json};

use super::{Construct, Scope};
use crate::cfn::{self, Template};

/// A PAY_PER_REQUEST table with string keys. DynamoDB encrypts every table
/// at rest; the default (AWS owned key) needs no KMS grants.
#[derive(Debug, Clone)]
pub struct Table {
    pub logical_id: &'static str,
    /// Physical name suffix: the table is `<stack>-<suffix>`.
    pub suffix: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub point_in_time_recovery: bool,
    /// DynamoDB deletes an item some time after the epoch seconds (N) in
    /// this attribute have passed; items without it stay.
    pub ttl_attribute: Option<&'static str>,
    /// Production: retained on stack deletion, with deletion protection.
    pub retain: bool,
}

impl Table {
    pub fn name(&self) -> Value {
        cfn::reference(self.logical_id)
    }

    pub fn arn(&self) -> Value {
        cfn::get_att(self.logical_id, "Arn")
    }
}

impl Construct for Table {
    fn synth(&self, scope: &Scope, t: &mut Template) {
        let mut keys = vec![json!({ "AttributeName": self.partition_key, "KeyType": "HASH" })];
        let mut attributes =
            vec![json!({ "AttributeName": self.partition_key, "AttributeType": "S" })];
        if let Some(sort) = self.sort_key {
            keys.push(json!({ "AttributeName": sort, "KeyType": "RANGE" }));
            attributes.push(json!({ "AttributeName": sort, "AttributeType": "S" }));
        }
        let mut properties = json!({
            "TableName": scope.physical_name(self.suffix),
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": keys,
            "AttributeDefinitions": attributes,
            "Tags": scope.tags(),
        });
        if self.point_in_time_recovery {
            properties["PointInTimeRecoverySpecification"] =
                json!({ "PointInTimeRecoveryEnabled": true });
        }
        if self.retain {
            properties["DeletionProtectionEnabled"] = json!(true);
        }
        if let Some(attribute) = self.ttl_attribute {
            properties["TimeToLiveSpecification"] =
                json!({ "AttributeName": attribute, "Enabled": true });
        }
        t.add_resource(
            self.logical_id,
            json!({
                "Type": "AWS::DynamoDB::Table",
                "DeletionPolicy": super::data_policy(self.retain),
                "UpdateReplacePolicy": super::data_policy(self.retain),
                "Properties": properties,
            }),
        );
    }
}
