//! The API's TOKEN authorizer: the `x-api-key` header's key, hashed,
//! looked up in the keys table. A known key that is not revoked gets an
//! Allow policy for the whole stage (so API Gateway may cache it across
//! routes) with the key's name and limits in the context; anything else a
//! Deny policy (API Gateway answers 403). A table that cannot be read is an
//! error (500), never a cached Deny. The key itself is never logged.

use face_api::keys::{self, context, hash_api_key, looks_like_api_key};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ServiceError;
use crate::storage::ApiKeys;

/// `{"type": "TOKEN", "authorizationToken", "methodArn"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAuthorizerEvent {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub authorization_token: Option<String>,
    pub method_arn: String,
}

/// `arn:aws:execute-api:<region>:<account>:<api id>/<stage>/*/*` from a
/// method ARN `.../<stage>/<METHOD>/<path...>`: every route of the stage.
pub fn stage_resource(method_arn: &str) -> Result<String, ServiceError> {
    let mut parts = method_arn.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(api), Some(stage))
            if api.starts_with("arn:") && api.contains(":execute-api:") && !stage.is_empty() =>
        {
            Ok(format!("{api}/{stage}/*/*"))
        }
        _ => Err(ServiceError::BadRequest(format!(
            "not an execute-api method ARN: {method_arn:?}"
        ))),
    }
}

fn policy(principal: &str, effect: &str, resource: &str) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": resource,
            }],
        },
    })
}

/// The authorizer's answer to one event.
pub async fn authorize<K: ApiKeys>(keys_table: &K, event: Value) -> Result<Value, ServiceError> {
    let event: TokenAuthorizerEvent = serde_json::from_value(event)
        .map_err(|e| ServiceError::BadRequest(format!("not a TOKEN authorizer event: {e}")))?;
    if event.kind.as_deref().is_some_and(|k| k != "TOKEN") {
        return Err(ServiceError::BadRequest(format!(
            "authorizer event of type {:?}: only TOKEN is handled",
            event.kind
        )));
    }
    let resource = stage_resource(&event.method_arn)?;
    let deny = |why: &str| {
        tracing::info!(why, "API key refused");
        Ok(policy("anonymous", "Deny", &resource))
    };
    let token = event.authorization_token.as_deref().unwrap_or("").trim();
    if !looks_like_api_key(token) {
        return deny("not a key");
    }
    let hash = hash_api_key(token);
    let Some(record) = keys_table.get_key(&hash).await? else {
        return deny("unknown key");
    };
    if record.revoked_at.is_some() {
        tracing::info!(key_name = %record.name, "revoked API key refused");
        return deny("revoked key");
    }
    if keys::validate_key_name(&record.name).is_err() {
        return deny("key item without a valid name");
    }
    let mut answer = policy(&record.name, "Allow", &resource);
    answer["context"] = json!({
        context::KEY_NAME: record.name,
        context::RATE_PER_MINUTE: record.rate_per_minute,
        context::QUOTA_PER_DAY: record.quota_per_day,
    });
    tracing::info!(key_name = %record.name, "API key allowed");
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryApiKeys;
    use crate::storage::ApiKeyRecord;

    const ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/POST/v1/detect";

    fn event(token: &str) -> Value {
        json!({"type": "TOKEN", "authorizationToken": token, "methodArn": ARN})
    }

    fn effect(answer: &Value) -> &str {
        answer["policyDocument"]["Statement"][0]["Effect"]
            .as_str()
            .unwrap()
    }

    #[tokio::test]
    async fn known_keys_are_allowed_with_their_limits_others_denied() {
        let table = MemoryApiKeys::default();
        let key = keys::format_api_key(&[42; keys::API_KEY_RANDOM_BYTES]);
        table.insert_key(
            &key,
            ApiKeyRecord {
                name: "pi-cam".into(),
                created_at: "2025-01-01T00:00:00Z".into(),
                rate_per_minute: 5,
                quota_per_day: 50,
                revoked_at: None,
            },
        );
        let allowed = authorize(&table, event(&key)).await.unwrap();
        assert_eq!(effect(&allowed), "Allow");
        assert_eq!(allowed["principalId"], "pi-cam");
        assert_eq!(
            allowed["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/*/*"
        );
        assert_eq!(
            allowed["policyDocument"]["Statement"][0]["Action"],
            "execute-api:Invoke"
        );
        assert_eq!(
            allowed["context"],
            json!({"key_name": "pi-cam", "rate_per_minute": 5, "quota_per_day": 50})
        );

        let unknown = keys::format_api_key(&[1; keys::API_KEY_RANDOM_BYTES]);
        for token in [unknown.as_str(), "", "garbage", &key[..key.len() - 1]] {
            let denied = authorize(&table, event(token)).await.unwrap();
            assert_eq!(effect(&denied), "Deny", "{token}");
            assert!(denied.get("context").is_none());
        }

        assert!(table.revoke("pi-cam"));
        let revoked = authorize(&table, event(&key)).await.unwrap();
        assert_eq!(effect(&revoked), "Deny");
    }

    #[tokio::test]
    async fn malformed_events_are_errors() {
        let table = MemoryApiKeys::default();
        assert!(
            authorize(&table, json!({"type": "TOKEN", "methodArn": "nope"}))
                .await
                .is_err()
        );
        assert!(
            authorize(&table, json!({"type": "REQUEST", "methodArn": ARN}))
                .await
                .is_err()
        );
        assert!(authorize(&table, json!({})).await.is_err());
    }
}
