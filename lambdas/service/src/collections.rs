//! Collections in S3: one object per person under
//! `collections/<collection>/people/<person>.json`, so concurrent
//! enrollments of different people never overwrite each other, and a warm
//! container's cache that re-reads only the objects whose ETag changed.
//! A person object never grows past [`MAX_PERSON_OBJECT_BYTES`]
//! ([`save_person`] refuses the write), and one that is over it anyway
//! (written before the cap, or by hand) is left out of recognition, logged,
//! rather than failing every recognition of its collection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use face_contracts::layout::{people_prefix, person_key};
use face_core::{Collection, EnrolledFace, collection::Person};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::ServiceError;
use crate::storage::ObjectStore;

/// Bumped when the person object's layout changes.
pub const PERSON_FORMAT_VERSION: u32 = 1;
/// The cap of one person's object (~1.6 KB a face: ~5,000 faces);
/// reads refuse anything larger without downloading it.
pub const MAX_PERSON_OBJECT_BYTES: u64 = 8 * 1024 * 1024;

/// `face_api::ids::validate_collection_name`, refused as bad input.
pub fn validate_collection_name(name: &str) -> Result<(), ServiceError> {
    face_api::ids::validate_collection_name(name)
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

pub fn validate_person_name(name: &str) -> Result<(), ServiceError> {
    Collection::validate_name(name).map_err(|e| ServiceError::BadRequest(e.to_string()))
}

/// The stored form of one person's enrolled faces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredPerson {
    pub format_version: u32,
    pub face_model_version: String,
    pub person: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub faces: Vec<EnrolledFace>,
}

impl StoredPerson {
    pub fn parse(location: &str, bytes: &[u8]) -> Result<Self, ServiceError> {
        let stored: StoredPerson =
            serde_json::from_slice(bytes).map_err(|e| ServiceError::CorruptStore {
                location: location.into(),
                message: e.to_string(),
            })?;
        if stored.format_version != PERSON_FORMAT_VERSION {
            return Err(ServiceError::CorruptStore {
                location: location.into(),
                message: format!(
                    "format version {} (expected {PERSON_FORMAT_VERSION})",
                    stored.format_version
                ),
            });
        }
        Ok(stored)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Reads one person (None when not enrolled).
pub async fn load_person<O: ObjectStore>(
    objects: &O,
    bucket: &str,
    collection: &str,
    person: &str,
) -> Result<Option<StoredPerson>, ServiceError> {
    let key = person_key(collection, person);
    match objects
        .get(bucket, &key, None, MAX_PERSON_OBJECT_BYTES)
        .await
    {
        Ok(object) => Ok(Some(StoredPerson::parse(&key, &object.bytes)?)),
        Err(crate::StorageError::NotFound { .. }) => Ok(None),
        Err(crate::StorageError::TooLarge { size_bytes, .. }) => {
            Err(ServiceError::PersonTooLarge {
                collection: collection.into(),
                person: person.into(),
                size_bytes,
                limit_bytes: MAX_PERSON_OBJECT_BYTES,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes one person, unless their object would be over
/// [`MAX_PERSON_OBJECT_BYTES`]: then nothing is written and the caller's
/// request fails ([`ServiceError::PersonTooLarge`]), instead of every later
/// read of the collection.
pub async fn save_person<O: ObjectStore>(
    objects: &O,
    bucket: &str,
    collection: &str,
    stored: &StoredPerson,
) -> Result<(), ServiceError> {
    let bytes = stored.to_json();
    if bytes.len() as u64 > MAX_PERSON_OBJECT_BYTES {
        return Err(ServiceError::PersonTooLarge {
            collection: collection.into(),
            person: stored.person.clone(),
            size_bytes: bytes.len() as u64,
            limit_bytes: MAX_PERSON_OBJECT_BYTES,
        });
    }
    objects
        .put(bucket, &person_key(collection, &stored.person), bytes)
        .await?;
    Ok(())
}

#[derive(Debug, Default)]
struct CachedCollection {
    /// person object key → (etag, person name, person)
    people: HashMap<String, (String, String, Person)>,
    /// Objects left out (unreadable, too large, another model) → their
    /// ETag: the same bytes are not fetched and logged again.
    ignored: HashMap<String, String>,
    collection: Option<Arc<Collection>>,
}

/// Per-container cache of collections. Each call lists the collection's
/// prefix (one request) and fetches only new or changed people.
#[derive(Debug, Default)]
pub struct CollectionCache {
    collections: Mutex<HashMap<String, CachedCollection>>,
}

impl CollectionCache {
    /// The current collection. People enrolled with another model version
    /// are left out (their distances would mean nothing) and logged.
    pub async fn current<O: ObjectStore>(
        &self,
        objects: &O,
        bucket: &str,
        collection: &str,
        face_model_version: &str,
    ) -> Result<Arc<Collection>, ServiceError> {
        let listing = objects.list(bucket, &people_prefix(collection)).await?;
        let mut cache = self.collections.lock().await;
        let cached = cache.entry(collection.to_string()).or_default();
        let mut changed = cached.collection.is_none();

        let listed: HashMap<&str, &str> = listing
            .iter()
            .filter(|o| o.key.ends_with(".json"))
            .map(|o| (o.key.as_str(), o.etag.as_str()))
            .collect();
        let before = cached.people.len();
        cached
            .people
            .retain(|key, _| listed.contains_key(key.as_str()));
        changed |= cached.people.len() != before;
        cached
            .ignored
            .retain(|key, etag| listed.get(key.as_str()) == Some(&etag.as_str()));

        for (key, etag) in listed {
            if cached.people.get(key).is_some_and(|(e, _, _)| e == etag)
                || cached.ignored.get(key).is_some_and(|e| e == etag)
            {
                continue;
            }
            changed = true;
            cached.ignored.remove(key);
            let object = match objects
                .get(bucket, key, None, MAX_PERSON_OBJECT_BYTES)
                .await
            {
                Ok(o) => o,
                // Deleted between the listing and the read.
                Err(crate::StorageError::NotFound { .. }) => {
                    cached.people.remove(key);
                    continue;
                }
                // Not a bad input of this request, and not worth retrying:
                // the others are still recognized.
                Err(e @ crate::StorageError::TooLarge { .. }) => {
                    tracing::error!(key, error = %e, "person object over the cap is ignored: forget and re-enroll them");
                    cached.people.remove(key);
                    cached.ignored.insert(key.to_string(), etag.to_string());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match StoredPerson::parse(key, &object.bytes) {
                Ok(stored) if stored.face_model_version != face_model_version => {
                    tracing::warn!(
                        key,
                        found = %stored.face_model_version,
                        expected = face_model_version,
                        "person enrolled with another face model is ignored: re-enroll"
                    );
                    cached.people.remove(key);
                    cached.ignored.insert(key.to_string(), etag.to_string());
                }
                Ok(stored) => {
                    let person = Person {
                        attributes: stored.attributes,
                        faces: stored.faces,
                    };
                    cached
                        .people
                        .insert(key.to_string(), (etag.to_string(), stored.person, person));
                }
                Err(e) => {
                    // One unreadable object must not stop recognition of everyone else.
                    tracing::error!(key, error = %e, "unreadable person object is ignored");
                    cached.people.remove(key);
                    cached.ignored.insert(key.to_string(), etag.to_string());
                }
            }
        }

        if changed || cached.collection.is_none() {
            let mut collection = Collection::new(face_model_version);
            for (_, name, person) in cached.people.values() {
                collection.people.insert(name.clone(), person.clone());
            }
            tracing::info!(
                people = collection.people.len(),
                faces = collection.face_count(),
                "collection refreshed"
            );
            cached.collection = Some(Arc::new(collection));
        }
        cached
            .collection
            .clone()
            .ok_or_else(|| ServiceError::Internal("collection cache is empty".into()))
    }
}
