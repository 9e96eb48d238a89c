//! `FacePipeline::new_prepared` (both models parsed and planned on two
//! threads) and a pipeline whose plans are built in the background (as an
//! on-demand Lambda init leaves them) answer exactly as `FacePipeline::new`
//! (sequential, plans on first use), for a photo of the prepared shape and
//! one of another, and a broken model fails it with that model's typed
//! error. So does a pipeline whose recognizer is still being read and
//! parsed on another thread when it starts (`FacePipeline::with_embedder`,
//! an on-demand init's), and a recognizer that fails to load there fails
//! every embedding with the reason, instead of hanging it.

use std::path::{Path, PathBuf};

use face_core::align::Jitter;
use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};
use face_core::{
    Embedder, FaceError, FacePipeline, ModelBytes, ModelError, PipelineConfig, RgbImage,
    decode_image,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The detector's and the recognizer's bytes, from `$FACECTL_MODELS`, else
/// the checkout's `blobs/`, and their face model version.
struct Models {
    detector: Vec<u8>,
    recognizer: Vec<u8>,
    version: String,
}

impl Models {
    fn load() -> Self {
        let dir =
            std::env::var_os("FACECTL_MODELS").map_or_else(|| root().join("blobs"), PathBuf::from);
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (cargo xtask fetch-blobs)", path.display()))
        };
        Self {
            detector: read(DEFAULT_DETECTOR),
            recognizer: read(RECOGNIZER),
            version: face_model_version(DEFAULT_DETECTOR),
        }
    }

    fn bytes(&self) -> ModelBytes<'_> {
        ModelBytes {
            detector_onnx: &self.detector,
            recognizer_onnx: &self.recognizer,
            face_model_version: &self.version,
        }
    }
}

/// The two labelled photos with the most faces: two shapes, many chips.
fn group_photos() -> Vec<Vec<u8>> {
    let data = devset::data_dir(None, &root());
    let labels = devset::detection_labels(&data).expect("detection labels");
    let mut groups: Vec<_> = labels.iter().filter(|l| l.min_faces >= 2).collect();
    groups.sort_by_key(|l| std::cmp::Reverse(l.min_faces));
    groups
        .iter()
        .take(2)
        .map(|l| std::fs::read(data.join(&l.path)).expect("group photo"))
        .collect()
}

/// `pipeline` finds the same faces in `image` as `reference` and gives
/// their chips the same embeddings.
fn assert_same_answers(pipeline: &FacePipeline, reference: &FacePipeline, image: &RgbImage) {
    let faces = pipeline.detect(image).expect("detects");
    assert!(faces.len() >= 2, "a group photo has faces: {}", faces.len());
    assert_eq!(faces, reference.detect(image).expect("detects"));
    let chips = pipeline.chips(image, &faces, &[Jitter::NONE]);
    assert_eq!(
        pipeline.embed(&chips).expect("embeds"),
        reference.embed(&chips).expect("embeds")
    );
}

#[test]
fn a_prepared_pipeline_answers_as_one_built_on_first_use() {
    let models = Models::load();
    let photos = group_photos();
    assert_eq!(photos.len(), 2, "the data set has two group photos");
    let first = decode_image(&photos[0], &Default::default())
        .expect("decodes")
        .rgb;
    let (width, height) = first.dimensions();
    let prepared =
        FacePipeline::new_prepared(models.bytes(), PipelineConfig::default(), width, height)
            .expect("loads");
    let lazy = FacePipeline::new(models.bytes(), PipelineConfig::default()).expect("loads");
    assert_eq!(prepared.face_model_version(), lazy.face_model_version());
    for photo in &photos {
        let image = decode_image(photo, &Default::default())
            .expect("decodes")
            .rgb;
        assert_same_answers(&prepared, &lazy, &image);
    }
}

#[test]
fn plans_built_in_the_background_are_built_once_and_answer_as_on_first_use() {
    let models = Models::load();
    let background = FacePipeline::new(models.bytes(), PipelineConfig::default()).expect("loads");
    let lazy = FacePipeline::new(models.bytes(), PipelineConfig::default()).expect("loads");
    assert!(background.embedder().prepare_in_background(1));
    assert!(
        !background.embedder().prepare_in_background(1),
        "that plan is being built already"
    );
    for photo in group_photos() {
        // Decoding starts the detector's plan for the photo's shape.
        let image = background.decode(&photo).expect("decodes");
        let (width, height) = image.dimensions();
        assert!(
            !background.detector().prepare_in_background(width, height),
            "decoding the photo started its plan"
        );
        assert_same_answers(&background, &lazy, &image);
    }
}

#[test]
fn a_broken_model_fails_the_prepared_pipeline_with_its_name() {
    let Models {
        detector,
        recognizer,
        version,
    } = Models::load();
    let load = |detector: &[u8], recognizer: &[u8]| {
        FacePipeline::new_prepared(
            ModelBytes {
                detector_onnx: detector,
                recognizer_onnx: recognizer,
                face_model_version: &version,
            },
            PipelineConfig::default(),
            640,
            480,
        )
        .expect_err("half a model does not load")
    };
    let failed_model = |err: FaceError| match err {
        FaceError::Model(ModelError::Load { model, .. }) => model,
        other => panic!("expected a model's load error, got {other:?}"),
    };
    let half = |bytes: &[u8]| bytes[..bytes.len() / 2].to_vec();
    assert!(failed_model(load(&detector, &half(&recognizer))).contains("recognizer"));
    assert!(failed_model(load(&half(&detector), &recognizer)).contains("detector"));
}

#[test]
fn a_recognizer_loaded_in_the_background_answers_as_one_parsed_first() {
    let models = Models::load();
    let recognizer = models.recognizer.clone();
    let embedder = Embedder::load_in_background(move || Ok(recognizer));
    // Asked before the parse ends: the plan's thread waits for it.
    assert!(embedder.prepare_in_background(1));
    let background = FacePipeline::with_embedder(
        &models.detector,
        embedder,
        &models.version,
        PipelineConfig::default(),
    )
    .expect("loads");
    let lazy = FacePipeline::new(models.bytes(), PipelineConfig::default()).expect("loads");
    assert_eq!(background.face_model_version(), lazy.face_model_version());
    for photo in group_photos() {
        let image = background.decode(&photo).expect("decodes");
        assert_same_answers(&background, &lazy, &image);
    }
}

#[test]
fn a_recognizer_that_fails_to_load_in_the_background_fails_every_embedding_with_the_reason() {
    let models = Models::load();
    let half = models.recognizer[..models.recognizer.len() / 2].to_vec();
    let photo = &group_photos()[0];
    type Source = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;
    let sources: Vec<(Source, &str)> = vec![
        (
            Box::new(|| Err("the file is gone".into())),
            "the file is gone",
        ),
        (Box::new(move || Ok(half)), "proto"),
        (Box::new(|| panic!("a reader's bug")), "panicked"),
    ];
    for (source, reason) in sources {
        let pipeline = FacePipeline::with_embedder(
            &models.detector,
            Embedder::load_in_background(source),
            &models.version,
            PipelineConfig::default(),
        )
        .expect("the detector loads");
        assert!(pipeline.embedder().prepare_in_background(1));
        let image = pipeline.decode(photo).expect("decodes");
        let faces = pipeline.detect(&image).expect("the detector runs");
        assert!(!faces.is_empty());
        let chips = pipeline.chips(&image, &faces, &[Jitter::NONE]);
        // Twice: a failed load is kept, not waited for again.
        for _ in 0..2 {
            match pipeline.embed(&chips) {
                Err(FaceError::Model(ModelError::Load { model, reason: why })) => {
                    assert!(model.contains("recognizer"), "{model}");
                    assert!(why.contains(reason), "{why:?} should say {reason:?}");
                }
                other => panic!("expected the recognizer's load error, got {other:?}"),
            }
        }
        assert!(pipeline.embedder().prepare(1).is_err());
    }
}
