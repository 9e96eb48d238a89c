//! A collection of enrolled people and open-set matching against it.
//! Pure data (serde): where it is stored is the caller's business.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::embed::{EMBEDDING_DIM, Embedding, l2_distance};
use crate::quality::UnknownReason;

/// Bumped when the stored layout changes.
pub const COLLECTION_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CollectionError {
    #[error("invalid person name {0:?}: use 1-128 characters, no control characters or '/'")]
    InvalidName(String),
    #[error("no person named {0:?} in the collection")]
    UnknownPerson(String),
    #[error(
        "collection was built with face model {found:?}, this pipeline uses {expected:?}: re-enroll"
    )]
    ModelMismatch { expected: String, found: String },
    #[error(
        "collection format version {0} is not supported (expected {COLLECTION_FORMAT_VERSION})"
    )]
    FormatVersion(u32),
}

/// Settings of the open-set decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// A face is that person when its L2 distance to one of the person's
    /// embeddings is below this (default 0.55). dlib's 0.6 is a
    /// verification threshold (one pair, LFW); identifying among N people
    /// gives a stranger N chances to pass it (see `core/QUALITY.md`).
    pub threshold_l2: f32,
    /// How many ranked candidates to return per face.
    pub max_candidates: usize,
    /// The best person must be at least this much closer than the second
    /// best (default 0.05): a face about as near to two enrolled people is
    /// neither of them for sure (`ambiguous`).
    pub min_margin_l2: f32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            threshold_l2: 0.55,
            max_candidates: 3,
            min_margin_l2: 0.05,
        }
    }
}

/// One stored face of a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolledFace {
    /// Stable id: the hex sha256 prefix of the source bytes and face index.
    pub face_id: String,
    /// Where the photo came from (file name or object key), for people.
    pub source: String,
    /// How many augmented chips were averaged into the embedding.
    pub augmentations: u32,
    #[serde(with = "embedding_serde")]
    pub embedding: Embedding,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Free-form attributes (e.g. major, year), kept as given.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub faces: Vec<EnrolledFace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    pub format_version: u32,
    pub face_model_version: String,
    pub people: BTreeMap<String, Person>,
}

/// A ranked candidate for one face.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub person: String,
    pub distance: f32,
    /// 0..100, 50 exactly at the threshold (see [`similarity`]).
    pub similarity: f32,
}

/// The open-set answer for one face: `identity` is `None` for "unknown",
/// and then `unknown_reason` says why.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FaceMatch {
    pub identity: Option<Candidate>,
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<UnknownReason>,
}

impl FaceMatch {
    /// A face the quality gate kept from the search.
    pub fn unsearched(reason: UnknownReason) -> Self {
        Self {
            identity: None,
            candidates: Vec::new(),
            unknown_reason: Some(reason),
        }
    }
}

/// Maps an L2 distance to a 0..100 similarity with a logistic centred on
/// the threshold: 50 at the threshold, ~92 at threshold - 0.2, ~8 at
/// threshold + 0.2. Monotonic, so ranking by either is the same.
pub fn similarity(distance: f32, threshold_l2: f32) -> f32 {
    100.0 / (1.0 + (12.0 * (distance - threshold_l2)).exp())
}

impl Collection {
    pub fn new(face_model_version: impl Into<String>) -> Self {
        Self {
            format_version: COLLECTION_FORMAT_VERSION,
            face_model_version: face_model_version.into(),
            people: BTreeMap::new(),
        }
    }

    /// Refuses a collection made by another model or format, whose
    /// distances would mean nothing here.
    pub fn check_compatible(&self, face_model_version: &str) -> Result<(), CollectionError> {
        if self.format_version != COLLECTION_FORMAT_VERSION {
            return Err(CollectionError::FormatVersion(self.format_version));
        }
        if self.face_model_version != face_model_version {
            return Err(CollectionError::ModelMismatch {
                expected: face_model_version.into(),
                found: self.face_model_version.clone(),
            });
        }
        Ok(())
    }

    pub fn validate_name(name: &str) -> Result<(), CollectionError> {
        let ok = !name.trim().is_empty()
            && name.chars().count() <= 128
            && !name.chars().any(|c| c.is_control() || c == '/');
        if ok {
            Ok(())
        } else {
            Err(CollectionError::InvalidName(name.into()))
        }
    }

    /// Adds faces to a person (created when new). A face whose id is
    /// already stored is replaced, so re-enrolling a photo is idempotent.
    pub fn add_faces(
        &mut self,
        person: &str,
        faces: impl IntoIterator<Item = EnrolledFace>,
    ) -> Result<(), CollectionError> {
        Self::validate_name(person)?;
        let entry = self.people.entry(person.to_string()).or_default();
        for face in faces {
            entry.faces.retain(|f| f.face_id != face.face_id);
            entry.faces.push(face);
        }
        Ok(())
    }

    /// Removes a person and every stored embedding of theirs.
    pub fn forget(&mut self, person: &str) -> Result<Person, CollectionError> {
        self.people
            .remove(person)
            .ok_or_else(|| CollectionError::UnknownPerson(person.into()))
    }

    pub fn face_count(&self) -> usize {
        self.people.values().map(|p| p.faces.len()).sum()
    }

    /// Ranks people by their nearest stored embedding and applies the
    /// open-set rules: the best person is named when under the threshold
    /// and clear of the second best by the margin.
    pub fn match_embedding(&self, embedding: &Embedding, config: &MatchConfig) -> FaceMatch {
        let mut ranked: Vec<Candidate> = self
            .people
            .iter()
            .filter_map(|(name, person)| {
                let distance = person
                    .faces
                    .iter()
                    .map(|f| l2_distance(embedding, &f.embedding))
                    .min_by(f32::total_cmp)?;
                Some(Candidate {
                    person: name.clone(),
                    distance,
                    similarity: similarity(distance, config.threshold_l2),
                })
            })
            .collect();
        ranked.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        let unknown_reason = match ranked.as_slice() {
            [] => Some(UnknownReason::BelowThreshold),
            [best, ..] if best.distance >= config.threshold_l2 => {
                Some(UnknownReason::BelowThreshold)
            }
            [best, second, ..] if second.distance - best.distance < config.min_margin_l2 => {
                Some(UnknownReason::Ambiguous)
            }
            _ => None,
        };
        ranked.truncate(config.max_candidates.max(1));
        let identity = match unknown_reason {
            None => ranked.first().cloned(),
            Some(_) => None,
        };
        FaceMatch {
            identity,
            candidates: ranked,
            unknown_reason,
        }
    }
}

/// Serde for `[f32; 128]` as a plain JSON array, refusing other lengths.
mod embedding_serde {
    use super::{EMBEDDING_DIM, Embedding};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(e: &Embedding, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(e.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Embedding, D::Error> {
        let values = Vec::<f32>::deserialize(d)?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(D::Error::custom("embedding has a non-finite value"));
        }
        values.try_into().map_err(|v: Vec<f32>| {
            D::Error::custom(format!(
                "embedding has {} values, expected {EMBEDDING_DIM}",
                v.len()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(id: &str, v: f32) -> EnrolledFace {
        let mut embedding = [0.0; EMBEDDING_DIM];
        embedding[0] = v;
        EnrolledFace {
            face_id: id.into(),
            source: format!("{id}.jpg"),
            augmentations: 1,
            embedding,
        }
    }

    #[test]
    fn open_set_matching_ranks_and_rejects() {
        let mut c = Collection::new("m1");
        c.add_faces("ada", [face("a1", 0.0), face("a2", 0.1)])
            .expect("add");
        c.add_faces("bob", [face("b1", 1.0)]).expect("add");
        let mut q = [0.0; EMBEDDING_DIM];
        q[0] = 0.15;
        let m = c.match_embedding(&q, &MatchConfig::default());
        let id = m.identity.expect("known");
        assert_eq!(id.person, "ada");
        assert!((id.distance - 0.05).abs() < 1e-6);
        assert!(id.similarity > 90.0);
        assert_eq!(m.candidates.len(), 2);
        q[0] = 0.5;
        let far = MatchConfig {
            threshold_l2: 0.3,
            ..Default::default()
        };
        let rejected = c.match_embedding(&q, &far);
        assert_eq!(rejected.identity, None);
        assert_eq!(rejected.unknown_reason, Some(UnknownReason::BelowThreshold));
        assert!((similarity(0.6, 0.6) - 50.0).abs() < 1e-4);
        assert_eq!(
            Collection::new("m1")
                .match_embedding(&q, &MatchConfig::default())
                .unknown_reason,
            Some(UnknownReason::BelowThreshold)
        );
    }

    #[test]
    fn a_face_about_as_near_two_people_is_ambiguous() {
        let mut c = Collection::new("m1");
        c.add_faces("ada", [face("a1", 0.0)]).expect("add");
        c.add_faces("bea", [face("b1", 0.9)]).expect("add");
        let mut q = [0.0; EMBEDDING_DIM];
        // 0.43 from ada, 0.47 from bea: both under 0.6, 0.04 apart.
        q[0] = 0.43;
        let m = c.match_embedding(&q, &MatchConfig::default());
        assert_eq!(m.identity, None);
        assert_eq!(m.unknown_reason, Some(UnknownReason::Ambiguous));
        assert_eq!(m.candidates.len(), 2, "both still ranked: {m:?}");
        // 0.40 from ada, 0.50 from bea: clear by 0.1.
        q[0] = 0.40;
        let m = c.match_embedding(&q, &MatchConfig::default());
        assert_eq!(m.identity.expect("named").person, "ada");
        assert_eq!(m.unknown_reason, None);
        // The margin is measured before the candidates are cut to one.
        let one = MatchConfig {
            max_candidates: 1,
            ..Default::default()
        };
        q[0] = 0.43;
        assert_eq!(
            c.match_embedding(&q, &one).unknown_reason,
            Some(UnknownReason::Ambiguous)
        );
    }

    #[test]
    fn forget_removes_every_face_and_reenroll_is_idempotent() {
        let mut c = Collection::new("m1");
        c.add_faces("ada", [face("a1", 0.0)]).expect("add");
        c.add_faces("ada", [face("a1", 0.2)]).expect("add again");
        assert_eq!(c.face_count(), 1);
        assert_eq!(c.forget("ada").expect("forget").faces.len(), 1);
        assert_eq!(c.face_count(), 0);
        assert_eq!(
            c.forget("ada"),
            Err(CollectionError::UnknownPerson("ada".into()))
        );
        assert!(c.add_faces("a/b", []).is_err());
    }

    #[test]
    fn serde_round_trip_and_length_check() {
        let mut c = Collection::new("m1");
        c.add_faces("ada", [face("a1", 0.25)]).expect("add");
        let json = serde_json::to_string(&c).expect("serialize");
        let back: Collection = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, c);
        let short = json.replacen("[0.25,", "[", 1);
        assert!(serde_json::from_str::<Collection>(&short).is_err());
        assert!(back.check_compatible("m2").is_err());
    }
}
