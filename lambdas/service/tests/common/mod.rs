//! What the handler tests share: the labelled data, the models (loaded
//! once per test binary), and a config for the in-memory stores.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use face_core::FacePipeline;
use face_service::ServiceConfig;

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
