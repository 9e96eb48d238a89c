//! Where a request's image comes from: an S3 object or inline base64.

use base64::Engine;
use serde::Deserialize;

use crate::error::ServiceError;
use crate::storage::ObjectStore;

/// An image in a request: a bare string is a key in the function's bucket;
/// an object names a bucket and key, or carries the bytes as base64 (up to
/// Lambda's 6 MB payload).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ImageInput {
    Key(String),
    Object(ImageObject),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageObject {
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub base64: Option<String>,
}

/// The fetched bytes and a name for them (for responses and logs).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedImage {
    pub source: String,
    pub bytes: Vec<u8>,
}

impl ImageInput {
    /// A short name for responses: the S3 URI, or `base64[i]`.
    pub fn describe(&self, default_bucket: &str, index: usize) -> String {
        match self {
            ImageInput::Key(key) => format!("s3://{default_bucket}/{key}"),
            ImageInput::Object(ImageObject {
                key: Some(key),
                bucket,
                ..
            }) => format!("s3://{}/{key}", bucket.as_deref().unwrap_or(default_bucket)),
            ImageInput::Object(_) => format!("base64[{index}]"),
        }
    }

    /// Reads the image, refusing more than `max_bytes` before reading it.
    pub async fn fetch<O: ObjectStore>(
        &self,
        objects: &O,
        default_bucket: &str,
        index: usize,
        max_bytes: u64,
    ) -> Result<FetchedImage, ServiceError> {
        let source = self.describe(default_bucket, index);
        let (bucket, key) = match self {
            ImageInput::Key(key) => (default_bucket, key.as_str()),
            ImageInput::Object(ImageObject {
                bucket,
                key: Some(key),
                base64: None,
            }) => (bucket.as_deref().unwrap_or(default_bucket), key.as_str()),
            ImageInput::Object(ImageObject {
                bucket: None,
                key: None,
                base64: Some(data),
            }) => {
                // base64 is 4/3 of the bytes: refuse before decoding.
                if data.len() as u64 / 4 * 3 > max_bytes {
                    return Err(ServiceError::BadRequest(format!(
                        "{source}: image is over the limit of {max_bytes} bytes"
                    )));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map_err(|e| {
                        ServiceError::BadRequest(format!("{source}: invalid base64: {e}"))
                    })?;
                return Ok(FetchedImage { source, bytes });
            }
            ImageInput::Object(_) => {
                return Err(ServiceError::BadRequest(
                    "an image is either {\"key\": ..., \"bucket\"?: ...} or {\"base64\": ...}"
                        .into(),
                ));
            }
        };
        if key.is_empty() {
            return Err(ServiceError::BadRequest("image key is empty".into()));
        }
        let object = objects.get(bucket, key, None, max_bytes).await?;
        Ok(FetchedImage {
            source,
            bytes: object.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryObjects;

    #[tokio::test]
    async fn the_three_shapes_resolve() {
        let objects = MemoryObjects::default();
        objects.insert("b", "k.jpg", vec![1, 2, 3]);
        objects.insert("other", "k.jpg", vec![4]);
        let parse = |s: &str| serde_json::from_str::<ImageInput>(s).unwrap();

        let key = parse(r#""k.jpg""#)
            .fetch(&objects, "b", 0, 10)
            .await
            .unwrap();
        assert_eq!(
            (key.source.as_str(), key.bytes),
            ("s3://b/k.jpg", vec![1, 2, 3])
        );
        let other = parse(r#"{"bucket": "other", "key": "k.jpg"}"#)
            .fetch(&objects, "b", 0, 10)
            .await
            .unwrap();
        assert_eq!(other.bytes, vec![4]);
        let inline = parse(r#"{"base64": "AQID"}"#)
            .fetch(&objects, "b", 2, 10)
            .await
            .unwrap();
        assert_eq!(
            (inline.source.as_str(), inline.bytes),
            ("base64[2]", vec![1, 2, 3])
        );
    }

    #[tokio::test]
    async fn bad_shapes_are_bad_requests() {
        let objects = MemoryObjects::default();
        let parse = |s: &str| serde_json::from_str::<ImageInput>(s).unwrap();
        for input in [
            r#"{"key": "a", "base64": "AQID"}"#,
            r#"{}"#,
            r#"{"base64": "!!"}"#,
        ] {
            let err = parse(input).fetch(&objects, "b", 0, 10).await.unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::BadInput, "{input}: {err}");
        }
        let missing = parse(r#""nope.jpg""#)
            .fetch(&objects, "b", 0, 10)
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), crate::ErrorKind::BadInput);
        let too_big = parse(r#"{"base64": "AQIDBAUGBwgJCgsMDQ4P"}"#)
            .fetch(&objects, "b", 0, 4)
            .await
            .unwrap_err();
        assert!(too_big.to_string().contains("over the limit"), "{too_big}");
        assert!(serde_json::from_str::<ImageInput>(r#"{"url": "x"}"#).is_err());
    }
}
