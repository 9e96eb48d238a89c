//! Where does a cold start go? Times, in one fresh process, each phase of
//! getting from model bytes to the first answer: parsing each ONNX file,
//! optimizing each plan (the detector's for the photo's shape, the
//! recognizer's at batch 1), and the first detection and embedding; then
//! `FacePipeline::new_prepared`, which does the same parsing and planning
//! for both models on two threads; or `overlapped`, as an on-demand Lambda
//! init does: both parsed, the recognizer and the detector at 4:3
//! planned in the background, the detector's plan for the photo started by
//! its headers (reshaped from the 4:3 one). Developer tool (run it once per
//! fresh process, the first phases include page faults of the binary):
//! `cargo run --release -p face-core --example cold_start -- MODELS_DIR PHOTO sequential|parallel|overlapped`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use face_core::align::{Jitter, extract_chip};
use face_core::embed::CHIP_VALUES;
use face_core::model_files::{DEFAULT_DETECTOR, RECOGNIZER, face_model_version};
use face_core::{
    DecodeLimits, Detector, DetectorConfig, Embedder, FacePipeline, ModelBytes, PipelineConfig,
    decode_image,
};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 || !matches!(args[3].as_str(), "sequential" | "parallel" | "overlapped") {
        eprintln!("usage: cold_start MODELS_DIR PHOTO sequential|parallel|overlapped");
        std::process::exit(2);
    }
    let start = Instant::now();
    let mut last = start;
    let mut phase = |name: &str| {
        let now = Instant::now();
        println!(
            "{name:<36} {:>8.1} ms  (at {:>7.1} ms)  {}",
            (now - last).as_secs_f64() * 1e3,
            (now - start).as_secs_f64() * 1e3,
            resident()
        );
        last = now;
    };
    let dir = std::path::Path::new(&args[1]);
    let detector_bytes = std::fs::read(dir.join(DEFAULT_DETECTOR))?;
    let recognizer_bytes = std::fs::read(dir.join(RECOGNIZER))?;
    let photo = std::fs::read(&args[2])?;
    phase("read models and photo");
    let version = face_model_version(DEFAULT_DETECTOR);
    let models = ModelBytes {
        detector_onnx: &detector_bytes,
        recognizer_onnx: &recognizer_bytes,
        face_model_version: &version,
    };
    if args[3] == "overlapped" {
        let pipeline = FacePipeline::new(models, PipelineConfig::default())?;
        // As the functions do: the files' bytes are not kept.
        drop((detector_bytes, recognizer_bytes));
        pipeline.embedder().prepare_in_background(1);
        pipeline.detector().prepare_in_background(640, 480);
        phase("parse both, both plans started");
        let image = pipeline.decode(&photo)?;
        phase("decode photo, detector plan started");
        return answer_twice(&pipeline, &image, phase);
    }
    let image = decode_image(&photo, &DecodeLimits::default())?.rgb;
    phase("decode photo");
    let (width, height) = image.dimensions();
    println!("photo {width}x{height}");
    if args[3] == "sequential" {
        let detector = Detector::from_onnx_bytes(&detector_bytes, DetectorConfig::default())?;
        phase("parse detector");
        let embedder = Embedder::from_onnx_bytes(&recognizer_bytes)?;
        phase("parse recognizer");
        detector.prepare_for(width, height)?;
        phase("optimize detector plan");
        embedder.prepare(1)?;
        phase("optimize recognizer plan");
        let faces = detector.detect(&image)?;
        phase("first detection");
        detector.detect(&image)?;
        phase("second detection");
        let mut chips = vec![0.0; faces.len() * CHIP_VALUES];
        for (face, chip) in faces.iter().zip(chips.chunks_exact_mut(CHIP_VALUES)) {
            extract_chip(&image, &face.landmarks, &Jitter::NONE, chip);
        }
        for chip in chips.chunks_exact(CHIP_VALUES) {
            embedder.embed_chips(chip)?;
        }
        phase(&format!("first embedding ({} faces)", faces.len()));
        for chip in chips.chunks_exact(CHIP_VALUES) {
            embedder.embed_chips(chip)?;
        }
        phase("second embedding");
    } else {
        let pipeline =
            FacePipeline::new_prepared(models, PipelineConfig::default(), width, height)?;
        phase("parse and plan both, two threads");
        return answer_twice(&pipeline, &image, phase);
    }
    Ok(())
}

/// Resident memory now and at its peak (Linux): memory a fresh process
/// touches for the first time is paid for in page faults, about 1 ms per MB
/// in a microVM such as Lambda's.
fn resident() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
            .map_or("?".to_string(), |kb| format!("{:.0}", kb / 1024.0))
    };
    format!("rss {} MB, peak {} MB", field("VmRSS:"), field("VmHWM:"))
}

/// The first detection and embedding of `image` (each waiting for its plan
/// if still being built), then the same again, warm.
fn answer_twice(
    pipeline: &FacePipeline,
    image: &face_core::RgbImage,
    mut phase: impl FnMut(&str),
) -> Result<(), Error> {
    let faces = pipeline.detect(image)?;
    phase("first detection");
    pipeline.detect(image)?;
    phase("second detection");
    let chips = pipeline.chips(image, &faces, &[Jitter::NONE]);
    pipeline.embed(&chips)?;
    phase(&format!("first embedding ({} faces)", faces.len()));
    pipeline.embed(&chips)?;
    phase("second embedding");
    Ok(())
}
