//! The project's kernels (`Kernels::Project`: 1x1 convolutions, depthwise
//! 3x3 convolutions with their ReLU, 2x2 max pooling, the three fused, the
//! detector's stride-2 first layer and the recognizer's 3x3 convolutions)
//! against tract's stock ops (`Kernels::Stock`) on the data set's labelled
//! photos: every raw output of YuNet and of the recognizer within float
//! rounding, and the same faces found.

use std::path::{Path, PathBuf};

use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER};
use face_core::resample::{ChannelOrder, letterbox_into_planes};
use face_core::{
    Detector, DetectorConfig, Kernels, decluttered_model, decode_image, optimized_plan, parse_onnx,
    reshaped_plan,
};
use tract_onnx::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn detector_bytes() -> Vec<u8> {
    model_bytes(DEFAULT_DETECTOR)
}

fn model_bytes(file: &str) -> Vec<u8> {
    let dir =
        std::env::var_os("FACECTL_MODELS").map_or_else(|| root().join("blobs"), PathBuf::from);
    let path = dir.join(file);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (cargo xtask fetch-blobs)", path.display()))
}

/// Every photo of the detection labels (groups, single faces, no faces).
fn photos() -> Vec<(String, face_core::RgbImage)> {
    let data = devset::data_dir(None, &root());
    let labels = devset::detection_labels(&data).expect("detection labels");
    labels
        .iter()
        .map(|label| {
            let bytes = std::fs::read(data.join(&label.path)).expect("photo");
            let image = decode_image(&bytes, &Default::default())
                .unwrap_or_else(|e| panic!("{}: {e}", label.path))
                .rgb;
            (label.path.clone(), image)
        })
        .collect()
}

/// The model in `bytes`, parsed as `face-core` parses it.
fn parse(bytes: &[u8]) -> InferenceModel {
    parse_onnx(bytes).expect("parses")
}

/// `image` scaled by `scale` and letterboxed into `[3, h, w]` planes.
fn letterboxed(
    image: &face_core::RgbImage,
    scale: f32,
    [h, w]: [usize; 2],
    order: ChannelOrder,
) -> Vec<f32> {
    let mut planes = vec![0.0f32; 3 * h * w];
    letterbox_into_planes(image, scale, w, h, order, &mut planes);
    planes
}

/// `image` letterboxed into `[3, h, w]` planes at the largest scale that
/// fits.
fn fitted(image: &face_core::RgbImage, [h, w]: [usize; 2], order: ChannelOrder) -> Vec<f32> {
    let (width, height) = image.dimensions();
    let scale = (w as f32 / width as f32).min(h as f32 / height as f32);
    letterboxed(image, scale, [h, w], order)
}

/// Each output of `plan` run on `planes` as a `shape` tensor: its shape
/// and its values.
fn outputs(
    plan: &std::sync::Arc<TypedRunnableModel>,
    planes: Vec<f32>,
    shape: [usize; 4],
) -> Vec<(Vec<usize>, Vec<f32>)> {
    let input = tract_ndarray::Array4::from_shape_vec(shape, planes)
        .expect("shape")
        .into_tensor()
        .into_tvalue();
    plan.run(tvec!(input))
        .expect("runs")
        .iter()
        .map(|output| {
            let values = output
                .try_as_plain_ram()
                .expect("plain")
                .as_slice::<f32>()
                .expect("f32s");
            (output.shape().to_vec(), values.to_vec())
        })
        .collect()
}

/// How many nodes of each op name a plan of YuNet at 640x480 has.
fn op_counts(kernels: Kernels) -> std::collections::BTreeMap<String, usize> {
    plan_op_counts(&detector_bytes(), [1, 3, 480, 640], kernels)
}

/// How many nodes of each op name a plan of the model for `shape` has
/// (a fused op with its pooling counted apart).
fn plan_op_counts(
    bytes: &[u8],
    shape: [usize; 4],
    kernels: Kernels,
) -> std::collections::BTreeMap<String, usize> {
    let plan = optimized_plan(parse(bytes), shape, kernels).expect("plans");
    let mut counts = std::collections::BTreeMap::new();
    for node in plan.model().nodes() {
        let info = node.op().info().expect("op info").join(", ");
        let pooled = if info.contains("pool: true") {
            " pooled"
        } else {
            ""
        };
        *counts
            .entry(format!("{}{pooled}", node.op().name()))
            .or_insert(0) += 1;
    }
    counts
}

// On aarch64 (run under QEMU) tract 0.23.9's plan keeps most depthwise
// convolutions as its own NEON `DepthWiseConv` (14 nodes), so only 2 pairs
// are fused there; the outputs still match the stock ops (the tests below).
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "counts the x86-64 plan's nodes; aarch64's keeps tract's depthwise ops"
)]
fn every_1x1_and_depthwise_pair_of_yunet_runs_fused() {
    // YuNet-s: 14 channel-first 1x1 convolutions each read only by a 3x3
    // depthwise one, two of those with a 2x2 max pooling after them, and
    // the 12 heads' pairs (64 channels to 1, 4 or 10); its other two
    // poolings stay the project's own op.
    let (project, stock) = (op_counts(Kernels::Project), op_counts(Kernels::Stock));
    let count = |name: &str| project.get(name).copied().unwrap_or(0);
    assert_eq!(count("FacePointwiseDepthwise"), 24, "{project:?}");
    assert_eq!(count("FacePointwiseDepthwise pooled"), 2, "{project:?}");
    assert_eq!(count("FaceMaxPool2x2"), 2, "{project:?}");
    // Every ReLU is folded into the convolution before it.
    assert_eq!(count("OptMaxByScalar"), 0, "{project:?}");
    assert!(
        stock.get("OptMaxByScalar").is_some_and(|&n| n > 0),
        "{stock:?}"
    );
    // The heads stay channel-first (the plan skips tract's ChangeAxes,
    // which wrote them channel-last): each output of 1 to 10 channels is
    // then moved channel-last by tract's MoveAxis for its reshape. No 1x1
    // or depthwise convolution is left alone, nor any of tract's packing,
    // matrix products or padding.
    assert_eq!(count("MoveAxis"), 12, "{project:?}");
    assert_eq!(count("FacePointwise"), 0, "{project:?}");
    assert_eq!(count("FaceDepthwise3x3"), 0, "{project:?}");
    assert_eq!(count("OptMatMulPack"), 0, "{project:?}");
    assert_eq!(count("DepthWiseConv"), 0, "{project:?}");
    assert_eq!(count("OptMatMul"), 0, "{project:?}");
    assert_eq!(count("Pad"), 0, "{project:?}");
    // The first layer (3 colours in, stride 2) is the project's, its ReLU
    // folded; tract's direct convolution is gone.
    assert_eq!(count("FaceConv3x3Stride2"), 1, "{project:?}");
    assert_eq!(count("DirectSpatialConv"), 0, "{project:?}");
    assert_eq!(stock.get("DirectSpatialConv"), Some(&1), "{stock:?}");
    assert!(
        stock.keys().all(|name| !name.starts_with("Face")),
        "{stock:?}"
    );
}

#[test]
fn the_recognizer_runs_its_first_layers_and_wide_3x3_convolutions_as_the_project_ops() {
    // dlib's ResNet at 150x150: a 7x7 stride-2 first layer over the 3
    // colours and a 3x3 stride-2 max pooling, then 3x3 stride-1
    // convolutions at 35x35 (6), 17x17 (7), 8x8 (5), 4x4 (4) and 3x3 (1),
    // and stride-2 ones between the stages; the project's ops take the
    // first two, every 3x3 stride-1 one over at least 2x2 (Winograd's:
    // their channels are multiples of 8 and 16), a stride-2 one of 16
    // channels or more whose output is a multiple of 4 wide, and the last
    // 3x3 one, over a 1x1 map, as the 1x1 convolution by its centre taps it
    // is (with the 256 -> 128 descriptor, 2 `FacePointwise`); tract keeps
    // the rest (and its padding nodes).
    let bytes = model_bytes(RECOGNIZER);
    let project = plan_op_counts(&bytes, [1, 3, 150, 150], Kernels::Project);
    let stock = plan_op_counts(&bytes, [1, 3, 150, 150], Kernels::Stock);
    let count = |counts: &std::collections::BTreeMap<String, usize>, name: &str| {
        counts.get(name).copied().unwrap_or(0)
    };
    assert_eq!(count(&project, "FaceConv3x3Winograd"), 23, "{project:?}");
    assert_eq!(count(&project, "FaceConv3x3"), 0, "{project:?}");
    assert_eq!(count(&project, "FaceConv3x3Deep1"), 0, "{project:?}");
    assert_eq!(count(&project, "FaceConv3x3Deep2"), 1, "{project:?}");
    assert_eq!(count(&project, "FaceConv7x7Stride2"), 1, "{project:?}");
    assert_eq!(count(&project, "FaceMaxPool3x3"), 1, "{project:?}");
    assert_eq!(count(&project, "OptMaxPool"), 0, "{project:?}");
    assert_eq!(count(&project, "FacePointwise"), 2, "{project:?}");
    assert_eq!(
        count(&project, "Pad") + 23 + 1,
        count(&stock, "Pad"),
        "{project:?} {stock:?}"
    );
}

#[test]
fn every_raw_output_of_yunet_matches_the_stock_ops() {
    let bytes = detector_bytes();
    let geometry = Detector::from_onnx_bytes(&bytes, DetectorConfig::default()).expect("loads");
    let photos = photos();
    assert!(photos.len() >= 10, "{} labelled photos", photos.len());
    // One plan pair per input shape (the photos share a few).
    let mut plans = std::collections::HashMap::new();
    let mut worst = 0.0f32;
    for (path, image) in photos.iter().take(12) {
        let (width, height) = image.dimensions();
        let (in_w, in_h, scale) = geometry.input_geometry(width, height);
        let planes = letterboxed(image, scale, [in_h, in_w], ChannelOrder::Bgr);
        let shape = [1, 3, in_h, in_w];
        let (stock, project) = plans.entry(shape).or_insert_with(|| {
            (
                optimized_plan(parse(&bytes), shape, Kernels::Stock).expect("stock plan"),
                optimized_plan(parse(&bytes), shape, Kernels::Project).expect("project plan"),
            )
        });
        let want = outputs(stock, planes.clone(), shape);
        let got = outputs(project, planes, shape);
        assert_eq!(want.len(), got.len());
        for (output, ((want_shape, want), (got_shape, got))) in want.iter().zip(&got).enumerate() {
            assert_eq!(want_shape, got_shape, "{path}: output {output}");
            for (w, g) in want.iter().zip(got) {
                let error = (w - g).abs() / w.abs().max(1.0);
                worst = worst.max(error);
                assert!(
                    error <= 1e-4,
                    "{path}: output {output}: stock {w} project {g}"
                );
            }
        }
    }
    eprintln!("worst relative difference: {worst:e}");
}

/// The recognizer's 128 outputs on photos scaled to its 150x150 input,
/// through the project's ops (Winograd's 3x3 convolutions among them), stay
/// within rounding of tract's.
#[test]
fn the_recognizer_answers_as_with_the_stock_ops() {
    let bytes = model_bytes(RECOGNIZER);
    let shape = [1, 3, 150, 150];
    let stock = optimized_plan(parse(&bytes), shape, Kernels::Stock).expect("stock plan");
    let project = optimized_plan(parse(&bytes), shape, Kernels::Project).expect("project plan");
    let mut worst = 0.0f32;
    for (path, image) in photos().iter().take(4) {
        let planes = fitted(image, [150, 150], ChannelOrder::Rgb);
        let (_, want) = &outputs(&stock, planes.clone(), shape)[0];
        let (_, got) = &outputs(&project, planes, shape)[0];
        assert_eq!(want.len(), got.len());
        for (w, g) in want.iter().zip(got) {
            worst = worst.max((w - g).abs());
            assert!((w - g).abs() <= 1e-4, "{path}: stock {w} project {g}");
        }
    }
    eprintln!("worst difference: {worst:e}");
}

#[test]
fn the_same_faces_are_found_with_either_kernels() {
    let bytes = detector_bytes();
    // A low threshold compares the borderline candidates too.
    let config = DetectorConfig {
        score_threshold: 0.3,
        ..Default::default()
    };
    let stock =
        Detector::from_onnx_bytes_with_kernels(&bytes, config, Kernels::Stock).expect("loads");
    let project =
        Detector::from_onnx_bytes_with_kernels(&bytes, config, Kernels::Project).expect("loads");
    let mut faces = 0;
    for (path, image) in photos() {
        let want = stock.detect(&image).expect("stock detects");
        let got = project.detect(&image).expect("project detects");
        assert_eq!(want.len(), got.len(), "{path}: face count");
        for (w, g) in want.iter().zip(&got) {
            let close = |a: f32, b: f32| (a - b).abs() <= 0.01;
            assert!(
                close(w.bbox.x, g.bbox.x)
                    && close(w.bbox.y, g.bbox.y)
                    && close(w.bbox.width, g.bbox.width)
                    && close(w.bbox.height, g.bbox.height),
                "{path}: box {:?} vs {:?}",
                w.bbox,
                g.bbox
            );
            for (a, b) in w.landmarks.iter().zip(&g.landmarks) {
                assert!(
                    close(a.x, b.x) && close(a.y, b.y),
                    "{path}: landmark {a:?} vs {b:?}"
                );
            }
            assert!(
                (w.confidence - g.confidence).abs() <= 1e-4,
                "{path}: confidence"
            );
        }
        faces += want.len();
    }
    assert!(faces >= 20, "the photos hold {faces} faces");
}

/// Every detector plan after the first starts from the first one's
/// decluttered model with only its shapes recomputed. On both YuNet files,
/// with both kernel sets, such a plan gives the raw outputs of a plan built
/// for its shape from the start, bit for bit: square, portrait, landscape,
/// a long strip, and 32x32, where the coarsest maps are 1x1.
#[test]
fn a_plan_reshaped_from_another_shape_answers_as_one_built_for_it() {
    // The labelled photo with the most faces.
    let data = devset::data_dir(None, &root());
    let labels = devset::detection_labels(&data).expect("detection labels");
    let path = &labels
        .iter()
        .max_by_key(|label| label.face_count)
        .expect("a labelled photo")
        .path;
    let bytes = std::fs::read(data.join(path)).expect("photo");
    let image = decode_image(&bytes, &Default::default())
        .expect("decodes")
        .rgb;
    for file in [DEFAULT_DETECTOR, "yunet_n_dynamic.onnx"] {
        let bytes = model_bytes(file);
        // A first plan for a strip whose coarsest map is one cell high (a
        // panorama's) loses that axis in declutter: reshaping it to another
        // shape may fail (the cache does not keep such a first plan), but
        // never answers wrong.
        for (kernels, [first_h, first_w]) in [
            (Kernels::Project, [480, 640]),
            (Kernels::Stock, [480, 640]),
            (Kernels::Project, [32, 640]),
        ] {
            let first = decluttered_model(parse(&bytes), [1, 3, first_h, first_w], kernels)
                .expect("declutters");
            for (in_h, in_w) in [(640, 640), (640, 480), (480, 640), (96, 1024), (32, 32)] {
                let shape = [1, 3, in_h, in_w];
                let what = format!("{file}, {kernels:?}, {first_w}x{first_h} to {in_w}x{in_h}");
                let reshaped = match reshaped_plan(&first, shape) {
                    Ok(plan) => plan,
                    Err(_) if first_h < 64 => continue,
                    Err(e) => panic!("{what}: not reshaped: {e:#}"),
                };
                let fresh = optimized_plan(parse(&bytes), shape, kernels).expect("fresh plan");
                let planes = fitted(&image, [in_h, in_w], ChannelOrder::Bgr);
                let want = outputs(&fresh, planes.clone(), shape);
                assert!(
                    outputs(&reshaped, planes, shape) == want,
                    "{what}, {path}: the outputs differ"
                );
            }
        }
    }
}

/// The recognizer's plans for other batch sizes are reshaped from its
/// first one's too: three chips at once give the outputs of a plan built
/// for three from the start, bit for bit.
#[test]
fn a_recognizer_plan_reshaped_to_another_batch_answers_as_one_built_for_it() {
    let bytes = model_bytes(RECOGNIZER);
    let first =
        decluttered_model(parse(&bytes), [1, 3, 150, 150], Kernels::Project).expect("declutters");
    let shape = [3, 3, 150, 150];
    let reshaped = reshaped_plan(&first, shape).expect("reshaped to a batch of 3");
    let fresh = optimized_plan(parse(&bytes), shape, Kernels::Project).expect("fresh plan");
    let planes: Vec<f32> = photos()
        .iter()
        .take(3)
        .flat_map(|(_, image)| fitted(image, [150, 150], ChannelOrder::Rgb))
        .collect();
    let want = outputs(&fresh, planes.clone(), shape);
    assert_eq!(want[0].0, [3, 128]);
    assert!(
        outputs(&reshaped, planes, shape) == want,
        "descriptors differ"
    );
}
