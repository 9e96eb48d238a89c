//! The enroll function's handler: enroll a person from photos, forget a
//! person, list a collection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use face_contracts::layout::person_key;
use face_contracts::metrics::Metric;
use face_core::{EnrollOutcome, FacePipeline, RelativeBox};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::collections::{
    PERSON_FORMAT_VERSION, StoredPerson, load_person, save_person, validate_collection_name,
    validate_person_name,
};
use crate::error::{ErrorKind, ServiceError};
use crate::image_input::ImageInput;
use crate::metrics::Metrics;
use crate::storage::{ObjectStore, PeopleTable, PersonRecord, now_rfc3339};

/// More photos than this per call would risk the function's timeout.
pub const MAX_IMAGES_PER_REQUEST: usize = 20;
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnrollRequest {
    Enroll {
        collection: String,
        person: String,
        /// Merged over the person's stored attributes.
        #[serde(default)]
        attributes: BTreeMap<String, String>,
        images: Vec<ImageInput>,
    },
    Forget {
        collection: String,
        person: String,
    },
    List {
        collection: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedPhoto {
    pub source: String,
    pub face_id: String,
    /// Detector score in percent.
    pub confidence: f32,
    pub bounding_box: RelativeBox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnindexedPhoto {
    pub source: String,
    /// `NO_FACE`, `EXCEEDS_MAX_FACES`, `SMALL_BOUNDING_BOX`,
    /// `LOW_CONFIDENCE` (Rekognition's names) or `BAD_IMAGE`.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonSummary {
    pub person: String,
    pub attributes: BTreeMap<String, String>,
    pub face_count: u32,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum EnrollResponse {
    Enroll {
        collection: String,
        person: String,
        indexed: Vec<IndexedPhoto>,
        unindexed: Vec<UnindexedPhoto>,
        /// Faces stored for the person after this call.
        face_count: u32,
        face_model_version: String,
    },
    Forget {
        collection: String,
        person: String,
        removed_faces: u32,
    },
    List {
        collection: String,
        people: Vec<PersonSummary>,
    },
}

#[derive(Debug)]
pub struct Enroller<O, P> {
    pipeline: Arc<FacePipeline>,
    objects: O,
    people: P,
    bucket: String,
    metrics: Metrics,
}

/// The limits on a person's attributes.
pub fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ServiceError::BadRequest(format!(
            "{} attributes, over the limit of {MAX_ATTRIBUTES}",
            attributes.len()
        )));
    }
    for (k, v) in attributes {
        if k.is_empty()
            || k.chars().count() > MAX_ATTRIBUTE_KEY_CHARS
            || v.chars().count() > MAX_ATTRIBUTE_VALUE_CHARS
        {
            return Err(ServiceError::BadRequest(format!(
                "attribute {k:?}: keys are 1-{MAX_ATTRIBUTE_KEY_CHARS} characters, values up to {MAX_ATTRIBUTE_VALUE_CHARS}"
            )));
        }
    }
    Ok(())
}

fn unindexed(source: String, error: &ServiceError) -> UnindexedPhoto {
    UnindexedPhoto {
        source,
        reason: "BAD_IMAGE".into(),
        message: error.to_string(),
    }
}

impl<O: ObjectStore, P: PeopleTable> Enroller<O, P> {
    pub fn new(pipeline: Arc<FacePipeline>, objects: O, people: P, bucket: String) -> Self {
        Self {
            pipeline,
            objects,
            people,
            bucket,
            metrics: Metrics::default(),
        }
    }

    /// Each enroll call writes its photo counts and time.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn emit_enrolled(&self, started: Instant, indexed: usize, refused: usize) {
        self.metrics.emit(&[
            (Metric::PhotosIndexed, indexed as f64),
            (Metric::PhotosUnindexed, refused as f64),
            (Metric::EnrollTime, started.elapsed().as_secs_f64() * 1e3),
        ]);
    }

    pub async fn handle(&self, payload: Value) -> Result<EnrollResponse, ServiceError> {
        let request: EnrollRequest = serde_json::from_value(payload)
            .map_err(|e| ServiceError::BadRequest(format!("invalid enroll request: {e}")))?;
        match request {
            EnrollRequest::Enroll {
                collection,
                person,
                attributes,
                images,
            } => self.enroll(collection, person, attributes, images).await,
            EnrollRequest::Forget { collection, person } => self.forget(collection, person).await,
            EnrollRequest::List { collection } => self.list(collection).await,
        }
    }

    /// Enrolls `person` from `images` (1-20), merging `attributes` over the stored ones.
    pub async fn enroll(
        &self,
        collection: String,
        person: String,
        attributes: BTreeMap<String, String>,
        images: Vec<ImageInput>,
    ) -> Result<EnrollResponse, ServiceError> {
        validate_collection_name(&collection)?;
        validate_person_name(&person)?;
        check_attributes(&attributes)?;
        if images.is_empty() || images.len() > MAX_IMAGES_PER_REQUEST {
            return Err(ServiceError::BadRequest(format!(
                "{} images: send 1-{MAX_IMAGES_PER_REQUEST} per call",
                images.len()
            )));
        }
        let started = Instant::now();
        let max_bytes = self.pipeline.config().decode_limits.max_encoded_bytes;
        let mut indexed = Vec::new();
        let mut faces = Vec::new();
        let mut refused = Vec::new();
        for (index, image) in images.iter().enumerate() {
            let source = image.describe(&self.bucket, index);
            let fetched = match image
                .fetch(&self.objects, &self.bucket, index, max_bytes)
                .await
            {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::BadInput => {
                    refused.push(unindexed(source, &e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let face_id = hex::encode(&Sha256::digest(&fetched.bytes)[..8]);
            let pipeline = Arc::clone(&self.pipeline);
            let outcome = tokio::task::spawn_blocking(move || {
                let image = pipeline.decode(&fetched.bytes)?;
                pipeline.enroll_image(&image)
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("enrollment task: {e}")))?;
            match outcome {
                Ok(EnrollOutcome::Indexed {
                    face,
                    embedding,
                    augmentations,
                }) => {
                    faces.push(FacePipeline::enrolled_face(
                        &source,
                        &face_id,
                        embedding,
                        augmentations,
                    ));
                    indexed.push(IndexedPhoto {
                        source,
                        face_id,
                        confidence: face.confidence * 100.0,
                        bounding_box: face.bounding_box,
                    });
                }
                Ok(EnrollOutcome::Unindexed(reason)) => {
                    let code = serde_json::to_value(&reason)
                        .ok()
                        .and_then(|v| v.get("reason").and_then(Value::as_str).map(String::from))
                        .unwrap_or_else(|| "UNINDEXED".into());
                    refused.push(UnindexedPhoto {
                        source,
                        reason: code,
                        message: reason.to_string(),
                    });
                }
                Err(e) => {
                    let e = ServiceError::from(e);
                    if e.kind() != ErrorKind::BadInput {
                        return Err(e);
                    }
                    refused.push(unindexed(source, &e));
                }
            }
        }

        let existing = load_person(&self.objects, &self.bucket, &collection, &person).await?;
        if faces.is_empty() {
            tracing::info!(%collection, %person, refused = refused.len(), "nothing indexed");
            self.emit_enrolled(started, 0, refused.len());
            return Ok(EnrollResponse::Enroll {
                face_count: existing.map_or(0, |p| p.faces.len() as u32),
                collection,
                person,
                indexed,
                unindexed: refused,
                face_model_version: self.pipeline.face_model_version().into(),
            });
        }
        let mut stored = match existing {
            Some(p) if p.face_model_version == self.pipeline.face_model_version() => p,
            // Faces of another model cannot be compared with the new ones.
            _ => StoredPerson {
                format_version: PERSON_FORMAT_VERSION,
                face_model_version: self.pipeline.face_model_version().into(),
                person: person.clone(),
                attributes: BTreeMap::new(),
                faces: Vec::new(),
            },
        };
        stored.attributes.extend(attributes);
        // Each call's attributes were checked alone; merged with the stored
        // ones they must fit the limit too (the record goes into every
        // match of the person, and DynamoDB refuses items past 400 KB).
        check_attributes(&stored.attributes)?;
        for face in faces {
            // Re-enrolling the same photo replaces its face: idempotent.
            stored.faces.retain(|f| f.face_id != face.face_id);
            stored.faces.push(face);
        }
        // Embeddings first: a record without embeddings would list a person
        // who can never be recognized. Past the cap nothing is written.
        save_person(&self.objects, &self.bucket, &collection, &stored).await?;
        let face_count = stored.faces.len() as u32;
        self.people
            .put(&PersonRecord {
                collection: collection.clone(),
                person: person.clone(),
                attributes: stored.attributes.clone(),
                face_count,
                updated_at: now_rfc3339(),
            })
            .await?;
        tracing::info!(%collection, %person, indexed = indexed.len(), refused = refused.len(), face_count, "enrolled");
        self.emit_enrolled(started, indexed.len(), refused.len());
        Ok(EnrollResponse::Enroll {
            collection,
            person,
            indexed,
            unindexed: refused,
            face_count,
            face_model_version: self.pipeline.face_model_version().into(),
        })
    }

    /// Forgets a person: the embeddings object first, then the record.
    pub async fn forget(
        &self,
        collection: String,
        person: String,
    ) -> Result<EnrollResponse, ServiceError> {
        validate_collection_name(&collection)?;
        validate_person_name(&person)?;
        // Faces removed: the object's, else the record's count (an object
        // over the cap is not read, but can always be forgotten).
        let removed_faces =
            match load_person(&self.objects, &self.bucket, &collection, &person).await {
                Ok(Some(existing)) => Some(existing.faces.len() as u32),
                Ok(None) => None,
                Err(ServiceError::PersonTooLarge { .. }) => Some(
                    self.people
                        .get(&collection, &person)
                        .await?
                        .map_or(0, |r| r.face_count),
                ),
                Err(e) => return Err(e),
            };
        // Embeddings first, so the person stops being recognized even if
        // the record's deletion fails and is retried.
        self.objects
            .delete(&self.bucket, &person_key(&collection, &person))
            .await?;
        let had_record = self.people.delete(&collection, &person).await?;
        if removed_faces.is_none() && !had_record {
            return Err(ServiceError::BadRequest(format!(
                "no person named {person:?} in collection {collection:?}"
            )));
        }
        let removed_faces = removed_faces.unwrap_or(0);
        tracing::info!(%collection, %person, removed_faces, "forgotten");
        Ok(EnrollResponse::Forget {
            collection,
            person,
            removed_faces,
        })
    }

    async fn list(&self, collection: String) -> Result<EnrollResponse, ServiceError> {
        validate_collection_name(&collection)?;
        let mut people: Vec<PersonSummary> = self
            .people
            .list(&collection)
            .await?
            .into_iter()
            .map(|r| PersonSummary {
                person: r.person,
                attributes: r.attributes,
                face_count: r.face_count,
                updated_at: r.updated_at,
            })
            .collect();
        people.sort_by(|a, b| a.person.cmp(&b.person));
        Ok(EnrollResponse::List { collection, people })
    }
}
