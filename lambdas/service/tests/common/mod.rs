//! What the handler tests share: the labelled data, the models (loaded
//! once per test binary), and a config for the in-memory stores.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use face_core::FacePipeline;
use face_service::ServiceConfig;
use face_service::collections::StoredPerson;

pub const BUCKET: &str = "data";

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the labelled data set (`$FACE_DATA_DIR`, else ../shared/data).
pub fn data(rel: &str) -> Vec<u8> {
    let path = devset::data_dir(None, &workspace()).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set FACE_DATA_DIR)", path.display()))
}

pub fn pipeline() -> Arc<FacePipeline> {
    static PIPELINE: OnceLock<Arc<FacePipeline>> = OnceLock::new();
    PIPELINE
        .get_or_init(|| {
            let dir = std::env::var_os("FACECTL_MODELS")
                .map_or_else(|| workspace().join("blobs"), PathBuf::from);
            Arc::new(
                face_service::models::load_pipeline(&dir)
                    .expect("models load (run `cargo xtask fetch-blobs`, or set FACECTL_MODELS)"),
            )
        })
        .clone()
}

/// The functions' config over every table and queue the tests use.
pub fn config() -> ServiceConfig {
    let vars = [
        ("FACE_BUCKET", BUCKET),
        ("FACE_PEOPLE_TABLE", "people"),
        ("FACE_RESULTS_TABLE", "results"),
        ("FACE_RESULTS_QUEUE_URL", "queue"),
        ("FACE_API_KEYS_TABLE", "keys"),
    ];
    ServiceConfig::from_lookup(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        },
        PathBuf::from("."),
    )
    .unwrap()
}

/// `person` with their first face copied under new ids, and one source
/// padded, until the object is `target` bytes (within 16).
pub fn grown_to(person: &StoredPerson, target: usize) -> StoredPerson {
    let mut grown = person.clone();
    let mut face = person.faces[0].clone();
    let one = serde_json::to_vec(&face).unwrap().len() + 1;
    let mut n = 0u64;
    while grown.to_json().len() + 2 * one < target {
        // Same length as real ids (16 hex), so each copy adds `one` bytes.
        let copies = (target - grown.to_json().len()) / one - 1;
        for _ in 0..copies {
            face.face_id = format!("{n:016x}");
            grown.faces.push(face.clone());
            n += 1;
        }
    }
    let room = target - 16 - grown.to_json().len();
    if let Some(last) = grown.faces.last_mut() {
        last.source.push_str(&"x".repeat(room));
    }
    grown
}
