//! Request and response bodies of every route. Faces are `face-core`'s own
//! serde shapes ([`DetectedFace`], [`Candidate`]), so `facectl` renders a
//! remote result exactly like a local one.

use std::collections::BTreeMap;

use face_core::{Candidate, DetectedFace, RelativeBox, UnknownReason};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An image in a JSON body: inline bytes or an object of the stack's
/// bucket (e.g. one uploaded through `POST /v1/uploads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// The encoded image (JPEG, PNG, WebP), standard base64.
    Base64(String),
    /// A key in the stack's data bucket.
    S3Key(String),
}

/// `POST /v1/detect`. The body may also be the raw image, sent with
/// `Content-Type: image/*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectRequest {
    pub image: Image,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DetectResponse {
    pub image_width: u32,
    pub image_height: u32,
    /// Largest first.
    pub faces: Vec<DetectedFace>,
}

/// `POST /v1/compare`: the largest face of each image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub source: Image,
    pub target: Image,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompareResponse {
    /// L2 distance between the two descriptors.
    pub distance: f32,
    /// 0..100, 50 at the threshold.
    pub similarity: f32,
    /// `distance` is under the matching threshold (0.55).
    pub same_person: bool,
    pub source_face: DetectedFace,
    pub target_face: DetectedFace,
}

/// `POST /v1/collections/{collection}/people/{person}/faces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// 1-20 photos of the person, one main face each.
    pub images: Vec<Image>,
    /// Merged over the person's stored attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IndexedFace {
    /// `base64[i]` or `s3://bucket/key`.
    pub source: String,
    pub face_id: String,
    /// Detector score in percent.
    pub confidence: f32,
    pub bounding_box: RelativeBox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnindexedImage {
    pub source: String,
    /// `NO_FACE`, `EXCEEDS_MAX_FACES`, `SMALL_BOUNDING_BOX`,
    /// `LOW_CONFIDENCE` (Rekognition's names) or `BAD_IMAGE`.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnrollResponse {
    pub collection: String,
    pub person: String,
    pub indexed: Vec<IndexedFace>,
    pub unindexed: Vec<UnindexedImage>,
    /// Faces stored for the person after this call.
    pub face_count: u32,
    pub face_model_version: String,
}

/// One person of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonSummary {
    pub person: String,
    pub attributes: BTreeMap<String, String>,
    pub face_count: u32,
    /// RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/collections/{collection}/people?limit&next`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PeoplePage {
    /// By name.
    pub people: Vec<PersonSummary>,
    /// Pass as `?next=` for the following page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FaceRef {
    pub face_id: String,
    pub source: String,
}

/// `GET /v1/collections/{collection}/people/{person}` (and the answer to
/// `PATCH`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonDetail {
    pub person: String,
    pub attributes: BTreeMap<String, String>,
    pub face_count: u32,
    pub updated_at: String,
    pub faces: Vec<FaceRef>,
}

/// `PATCH /v1/collections/{collection}/people/{person}`: a string sets an
/// attribute, `null` removes it, the others are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPersonRequest {
    pub attributes: BTreeMap<String, Option<String>>,
}

/// `DELETE /v1/collections/{collection}/people/{person}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ForgetResponse {
    pub collection: String,
    pub person: String,
    pub removed_faces: u32,
}

/// `DELETE /v1/collections/{collection}/faces/{face_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteFaceResponse {
    pub collection: String,
    pub person: String,
    pub face_id: String,
    /// Faces the person has left (a person with none left is forgotten).
    pub remaining_faces: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionSummary {
    pub collection: String,
    /// People enrolled in it.
    pub people: u32,
}

/// `GET /v1/collections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CollectionsResponse {
    /// By name.
    pub collections: Vec<CollectionSummary>,
}

/// `DELETE /v1/collections/{collection}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteCollectionResponse {
    pub collection: String,
    pub removed_people: u32,
    pub removed_faces: u32,
}

/// `POST /v1/collections/{collection}/search`. The body may also be the
/// raw image (`Content-Type: image/*`), the options then in the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub image: Image,
    /// L2 distance under which a face is a person (default 0.55).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Faces to answer for, largest first (default and maximum 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_faces: Option<u32>,
    /// Ranked candidates per face (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_candidates: Option<u32>,
}

/// Who a face is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchMatch {
    pub person: String,
    pub distance: f32,
    /// 0..100, 50 at the threshold.
    pub similarity: f32,
    /// The person's attributes.
    pub attributes: BTreeMap<String, String>,
}

/// One face of a search: the detected face, flattened, with its match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchFace {
    #[serde(flatten)]
    pub face: DetectedFace,
    /// `null` when no enrolled person is within the threshold.
    #[serde(rename = "match")]
    pub face_match: Option<SearchMatch>,
    /// Nearest people first, the match (if any) among them; empty when the
    /// face was not searched.
    pub candidates: Vec<Candidate>,
    /// Why `match` is `null`: the quality gate's reason (`small_face`,
    /// `low_confidence`, `pose`, `blurry`: not searched) or the matcher's
    /// (`below_threshold`, `ambiguous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchResponse {
    pub collection: String,
    pub face_model_version: String,
    pub image_width: u32,
    pub image_height: u32,
    /// Largest first.
    pub faces: Vec<SearchFace>,
}

/// `POST /v1/uploads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The collection the upload is recognized against.
    pub collection: String,
    /// `image/jpeg`, `image/png` or `image/webp`; signed, so the PUT must
    /// send it.
    pub content_type: String,
    /// The exact byte length of the upload; signed, so the PUT must send it.
    pub content_length: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UploadResponse {
    /// The presigned S3 URL.
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// The headers the client must send with the PUT, exactly.
    pub headers: BTreeMap<String, String>,
    /// The object's key in the stack's bucket (usable as `{"s3_key": ...}`).
    pub key: String,
    /// For `GET /v1/results/{result_id}`.
    pub result_id: String,
    pub expires_in_s: u64,
}

/// What the recognition of an upload came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Recognized: `result` holds the faces.
    Ok,
    /// Not a usable image or video: `error` says why.
    BadInput,
    /// A video job that could not finish (chunks kept failing): `error`
    /// names them.
    Failed,
}

/// `GET /v1/results/{result_id}`: 404 until the upload arrived and its
/// recognition was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResultResponse {
    pub result_id: String,
    pub status: ResultStatus,
    /// The recognize function's result, as the results queue carries it:
    /// `{collection, face_model_version, collection_people, image_width,
    /// image_height, faces: [{BoundingBox, Landmarks, Confidence, Match,
    /// PersonDetails?}], timings_ms}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An uploaded MP4: its scan job (status, progress, and when done the
    /// timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::jobs::ScanJobResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_are_base64_or_s3_key() {
        let a: Image = serde_json::from_value(json!({"base64": "AQID"})).unwrap();
        assert_eq!(a, Image::Base64("AQID".into()));
        let b: Image = serde_json::from_value(json!({"s3_key": "uploads/x"})).unwrap();
        assert_eq!(b, Image::S3Key("uploads/x".into()));
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"s3_key": "uploads/x"})
        );
        assert!(serde_json::from_value::<Image>(json!({"url": "x"})).is_err());
        assert!(serde_json::from_value::<Image>(json!("k")).is_err());
    }

    #[test]
    fn search_faces_flatten_the_detected_face() {
        let face = DetectedFace {
            bbox: face_core::PixelBox {
                x: 1.0,
                y: 2.0,
                width: 3.0,
                height: 4.0,
            },
            bounding_box: RelativeBox::default(),
            landmarks: [face_core::Point::default(); 5],
            confidence: 0.9,
        };
        let f = SearchFace {
            face,
            face_match: None,
            candidates: vec![],
            unknown_reason: Some(UnknownReason::Blurry),
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["unknown_reason"], "blurry");
        assert_eq!(v["bbox"]["width"], 3.0);
        assert!(v["BoundingBox"].is_null() && v["bounding_box"]["Left"] == 0.0);
        assert_eq!(v["match"], serde_json::Value::Null);
        assert!(v.as_object().unwrap().contains_key("match"));
        let back: SearchFace = serde_json::from_value(v).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn patch_null_removes() {
        let p: PatchPersonRequest =
            serde_json::from_value(json!({"attributes": {"year": "2", "major": null}})).unwrap();
        assert_eq!(p.attributes["year"].as_deref(), Some("2"));
        assert_eq!(p.attributes["major"], None);
    }
}
