//! The trigger payloads the recognize function receives, parsed tolerantly:
//! moto's S3 events lack fields real S3 sends (e.g. `versionId`, `size`),
//! and only the fields used here are required. Hence these few types rather
//! than `aws_lambda_events`' complete ones (and its dependency tree in
//! every function).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ServiceError;

/// One invocation of the recognize function, told apart by its shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `{"Records": [{"eventSource": "aws:sqs", ...}]}`
    Sqs(SqsEvent),
    /// `{"Records": [{"eventSource": "aws:s3", ...}]}`
    S3(S3Event),
    /// Anything else: a direct request.
    Direct(Value),
}

impl Invocation {
    pub fn classify(payload: Value) -> Result<Self, ServiceError> {
        let source = payload
            .get("Records")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let parse_err = |what: &str, e: serde_json::Error| {
            ServiceError::BadRequest(format!("malformed {what} event: {e}"))
        };
        match source.as_deref() {
            Some("aws:sqs") => Ok(Invocation::Sqs(
                serde_json::from_value(payload).map_err(|e| parse_err("SQS", e))?,
            )),
            Some("aws:s3") => Ok(Invocation::S3(
                serde_json::from_value(payload).map_err(|e| parse_err("S3", e))?,
            )),
            _ if payload.get("Records").is_some() => Err(ServiceError::BadRequest(
                "event with Records from an unsupported source".into(),
            )),
            _ => Ok(Invocation::Direct(payload)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3EventRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: Option<String>,
    /// RFC 3339, when S3 created the object.
    #[serde(rename = "eventTime", default)]
    pub event_time: Option<String>,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct S3Object {
    /// URL-encoded, as S3 sends it: use [`S3Object::decoded_key`].
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(rename = "eTag", default)]
    pub e_tag: Option<String>,
    #[serde(rename = "versionId", default)]
    pub version_id: Option<String>,
}

impl S3Object {
    /// The key as stored: S3 events form-encode it (`+` for space, `%XX`).
    pub fn decoded_key(&self) -> Result<String, ServiceError> {
        form_decode(&self.key)
            .ok_or_else(|| ServiceError::BadRequest(format!("undecodable key {:?}", self.key)))
    }

    /// The version the event is about, when the bucket is versioned (S3
    /// says `"null"` for an object written while versioning was off).
    pub fn version_id(&self) -> Option<&str> {
        self.version_id
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "null")
    }

    /// What identifies this version of the object: the version id when the
    /// bucket is versioned, else the ETag.
    pub fn version_tag(&self) -> Option<&str> {
        self.version_id()
            .or(self.e_tag.as_deref().filter(|e| !e.is_empty()))
    }
}

fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SqsMessage>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SqsMessage {
    #[serde(rename = "messageId")]
    pub message_id: String,
    #[serde(default)]
    pub body: String,
    /// SQS's system attributes (`ApproximateReceiveCount`, ...).
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, Value>,
}

impl SqsMessage {
    /// How many times SQS handed this message out, this time included (1
    /// when the event does not say).
    pub fn receive_count(&self) -> u32 {
        match self.attributes.get("ApproximateReceiveCount") {
            Some(Value::String(s)) => s.parse().unwrap_or(1),
            Some(Value::Number(n)) => n.as_u64().map_or(1, |n| n.min(u64::from(u32::MAX)) as u32),
            _ => 1,
        }
    }
}

/// The partial batch response: only the failed messages are retried.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SqsBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// A body of the work queue: an S3 event, or S3's one-off test message
/// (`"Event": "s3:TestEvent"`) sent when the notification is configured.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueBody {
    S3(S3Event),
    TestEvent,
}

impl QueueBody {
    pub fn parse(body: &str) -> Result<Self, ServiceError> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| ServiceError::BadRequest(format!("message body is not JSON: {e}")))?;
        if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Ok(QueueBody::TestEvent);
        }
        serde_json::from_value(value)
            .map(QueueBody::S3)
            .map_err(|e| ServiceError::BadRequest(format!("message body is not an S3 event: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(key: &str) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
                   "object": {"key": key, "size": 3, "eTag": "abc", "sequencer": "0A"}}
        }]})
    }

    #[test]
    fn classifies_by_shape() {
        assert!(matches!(
            Invocation::classify(s3_event("uploads/a.jpg")).unwrap(),
            Invocation::S3(_)
        ));
        let sqs = json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs",
            "body": s3_event("uploads/a.jpg").to_string()}]});
        assert!(matches!(
            Invocation::classify(sqs).unwrap(),
            Invocation::Sqs(_)
        ));
        let direct = json!({"collection": "c", "image": "k"});
        assert!(matches!(
            Invocation::classify(direct).unwrap(),
            Invocation::Direct(_)
        ));
        let other = json!({"Records": [{"eventSource": "aws:sns"}]});
        assert!(Invocation::classify(other).is_err());
    }

    #[test]
    fn moto_style_events_without_optional_fields_parse() {
        let minimal = json!({"Records": [{"eventSource": "aws:s3",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads/My+photo%281%29.jpg"}}}]});
        let Invocation::S3(event) = Invocation::classify(minimal).unwrap() else {
            panic!("not S3")
        };
        let object = &event.records[0].s3.object;
        assert_eq!(object.decoded_key().unwrap(), "uploads/My photo(1).jpg");
        assert_eq!(object.version_tag(), None);
    }

    #[test]
    fn version_id_wins_over_etag() {
        let object = S3Object {
            key: "k".into(),
            size: None,
            e_tag: Some("e".into()),
            version_id: Some("v1".into()),
        };
        assert_eq!(object.version_tag(), Some("v1"));
        assert_eq!(object.version_id(), Some("v1"));
        let unversioned = S3Object {
            version_id: Some("null".into()),
            ..object
        };
        assert_eq!(unversioned.version_tag(), Some("e"));
        assert_eq!(unversioned.version_id(), None);
    }

    #[test]
    fn queue_bodies() {
        assert_eq!(
            QueueBody::parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap(),
            QueueBody::TestEvent
        );
        assert!(matches!(
            QueueBody::parse(&s3_event("k").to_string()).unwrap(),
            QueueBody::S3(_)
        ));
        assert!(QueueBody::parse("not json").is_err());
        assert!(form_decode("%zz").is_none());
    }
}
