//! Finding the model files on disk and loading the pipeline once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use face_core::{FacePipeline, ModelBytes, PipelineConfig};

pub use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};

/// A folder the models may be in, and how it is named in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub dir: PathBuf,
    pub why: &'static str,
}

/// Where models are looked for when `--models` (or `$FACECTL_MODELS`, read
/// by the command line) names no folder, in order: `models/` of the data
/// folder, where an installed facectl keeps them ([`crate::xdg`]:
/// `$XDG_DATA_HOME/facectl/models`, by default
/// `~/.local/share/facectl/models`), then `blobs/` of the checkout this
/// binary was built from, where `cargo xtask fetch-blobs` puts them (a dev
/// build; once that checkout is gone it holds nothing).
pub fn default_places() -> Vec<Place> {
    let mut places = Vec::new();
    if let Some(data) = crate::xdg::data_dir() {
        places.push(Place {
            dir: data.join("models"),
            why: "$XDG_DATA_HOME/facectl/models, by default ~/.local/share/facectl/models",
        });
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")));
    places.push(Place {
        dir: checkout.join("blobs"),
        why: "blobs/ of the checkout facectl was built from",
    });
    places
}

/// The models folder: `--models` as given, else the first of
/// [`default_places`] that holds both model files.
pub fn models_dir(flag: Option<&Path>, detector_file: &str) -> Result<PathBuf> {
    match flag {
        Some(dir) => Ok(dir.to_path_buf()),
        None => find_models(&default_places(), detector_file),
    }
}

/// The first of `places` that holds `detector_file` and the recognizer;
/// else an error naming every place looked at and what it lacks.
pub fn find_models(places: &[Place], detector_file: &str) -> Result<PathBuf> {
    let mut looked = vec!["  --models / $FACECTL_MODELS: not set".to_string()];
    for place in places {
        let missing: Vec<&str> = [detector_file, RECOGNIZER]
            .into_iter()
            .filter(|file| !place.dir.join(file).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(place.dir.clone());
        }
        let lacks = if place.dir.is_dir() {
            format!("no {}", missing.join(", no "))
        } else {
            "no such folder".to_string()
        };
        looked.push(format!(
            "  {} ({}): {lacks}",
            place.dir.display(),
            place.why
        ));
    }
    let install = places.first().map_or_else(
        || "a folder".to_string(),
        |first| first.dir.display().to_string(),
    );
    bail!(
        "the model files ({detector_file}, {RECOGNIZER}) were not found; looked at:\n{}\n\
         copy both into {install} (`cargo xtask fetch-blobs` puts them in a checkout's blobs/), \
         or point --models / FACECTL_MODELS at the folder that has them",
        looked.join("\n")
    )
}

fn read_model(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    if !path.is_file() {
        bail!(
            "model file {} not found: run `cargo xtask fetch-blobs`, or point --models / FACECTL_MODELS at the folder that has it",
            path.display()
        );
    }
    std::fs::read(&path).with_context(|| format!("reading model {}", path.display()))
}

/// Reads both models and builds the pipeline.
pub fn load_pipeline(
    dir: &Path,
    detector_file: &str,
    config: PipelineConfig,
) -> Result<FacePipeline> {
    let detector = read_model(dir, detector_file)?;
    let recognizer = read_model(dir, RECOGNIZER)?;
    let version = face_model_version(detector_file);
    FacePipeline::new(
        ModelBytes {
            detector_onnx: &detector,
            recognizer_onnx: &recognizer,
            face_model_version: &version,
        },
        config,
    )
    .context("loading the face models")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(dir: &Path, why: &'static str) -> Place {
        Place {
            dir: dir.to_path_buf(),
            why,
        }
    }

    fn put_models(dir: &Path, detector: &str) {
        std::fs::create_dir_all(dir).expect("mkdir");
        for file in [detector, RECOGNIZER] {
            std::fs::write(dir.join(file), b"model").expect("write");
        }
    }

    #[test]
    fn the_first_place_with_both_models_wins() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (data, checkout) = (tmp.path().join("data"), tmp.path().join("blobs"));
        let places = [place(&data, "data"), place(&checkout, "checkout")];

        put_models(&checkout, DEFAULT_DETECTOR);
        assert_eq!(
            find_models(&places, DEFAULT_DETECTOR).expect("found"),
            checkout
        );
        // Only the recognizer in the data folder: not enough to stop there.
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join(RECOGNIZER), b"model").expect("write");
        assert_eq!(
            find_models(&places, DEFAULT_DETECTOR).expect("found"),
            checkout
        );
        put_models(&data, DEFAULT_DETECTOR);
        assert_eq!(find_models(&places, DEFAULT_DETECTOR).expect("found"), data);
    }

    #[test]
    fn the_error_names_every_place_and_what_it_lacks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (data, checkout) = (tmp.path().join("data"), tmp.path().join("gone"));
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join(RECOGNIZER), b"model").expect("write");
        let places = [place(&data, "data"), place(&checkout, "checkout")];
        let err = format!(
            "{:#}",
            find_models(&places, "yunet.onnx").expect_err("no models")
        );
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines[1], "  --models / $FACECTL_MODELS: not set", "{err}");
        assert_eq!(
            lines[2],
            format!("  {} (data): no yunet.onnx", data.display()),
            "{err}"
        );
        assert_eq!(
            lines[3],
            format!("  {} (checkout): no such folder", checkout.display()),
            "{err}"
        );
        assert!(err.contains("--models / FACECTL_MODELS"), "{err}");
    }

    #[test]
    fn the_data_folder_comes_before_the_checkout() {
        let places = default_places();
        let last = places.last().expect("the checkout");
        assert!(last.dir.ends_with("blobs"), "{places:?}");
        if let Some(data) = crate::xdg::data_dir() {
            assert_eq!(places[0].dir, data.join("models"), "{places:?}");
        }
    }
}
