//! Cold-start comparison: wall time to turn model bytes already in memory
//! into a runnable plan (`into_optimized().into_runnable()`) at batch 1, for
//! an NNEF tar and an ONNX file of the recognizer, with the time split into
//! reading the container, building the tract model, and optimizing.
//!
//! `cargo run -p dlib-model --example load_time -- NNEF_TAR ONNX [REPEATS]`

use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

/// Durations of: read, build, optimize+runnable, total, inference, and
/// creating the framework object (`nnef()` / `onnx()`).
type Phases = [Vec<Duration>; 6];

fn median_ms(v: &[Duration]) -> f64 {
    let ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    face_core::stats::median(&ms).unwrap_or_default()
}

fn time<T>(acc: &mut Vec<Duration>, f: impl FnOnce() -> TractResult<T>) -> TractResult<T> {
    let t = Instant::now();
    let out = f()?;
    acc.push(t.elapsed());
    Ok(out)
}

fn nnef_plan(bytes: &[u8], p: &mut Phases) -> TractResult<Arc<TypedRunnableModel>> {
    let nnef = time(&mut p[5], || Ok(tract_nnef::nnef()))?;
    let proto = time(&mut p[0], || nnef.proto_model_for_read(&mut &bytes[..]))?;
    let model = time(&mut p[1], || {
        let mut model = nnef.model_for_proto_model(&proto)?;
        if !model.input_fact(0)?.shape.is_concrete() {
            // A tar with a symbolic batch: fix it to 1.
            let subs = std::collections::HashMap::from([(
                model.symbols.sym(dlib_model::BATCH_SYMBOL),
                TDim::Val(1),
            )]);
            model = model.set_symbols(&subs)?;
        }
        Ok(model)
    })?;
    time(&mut p[2], || model.into_optimized()?.into_runnable())
}

/// As face-core loads its ONNX models.
fn onnx_plan(bytes: &[u8], p: &mut Phases) -> TractResult<Arc<TypedRunnableModel>> {
    let onnx = time(&mut p[5], || {
        Ok(tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true))
    })?;
    let proto = time(&mut p[0], || onnx.proto_model_for_read(&mut &bytes[..]))?;
    let model = time(&mut p[1], || {
        onnx.model_for_proto_model(&proto)?
            .with_input_fact(0, f32::fact([1, 3, 150, 150]).into())
    })?;
    time(&mut p[2], || model.into_optimized()?.into_runnable())
}

fn measure(
    name: &str,
    bytes: &[u8],
    repeats: usize,
    load: fn(&[u8], &mut Phases) -> TractResult<Arc<TypedRunnableModel>>,
) -> TractResult<()> {
    let mut p: Phases = Default::default();
    let input = Tensor::zero::<f32>(&[1, 3, 150, 150])?;
    for _ in 0..repeats {
        let t = Instant::now();
        let plan = load(bytes, &mut p)?;
        p[3].push(t.elapsed());
        plan.run(tvec!(input.clone().into_tvalue()))?;
        let t = Instant::now();
        for _ in 0..10 {
            plan.run(tvec!(input.clone().into_tvalue()))?;
        }
        p[4].push(t.elapsed() / 10);
    }
    println!(
        "{name}\n  bytes -> runnable: median {:.1} ms over {repeats} \
         (framework {:.1} + read {:.1} + build {:.1} + optimize {:.1}); inference {:.2} ms",
        median_ms(&p[3]),
        median_ms(&p[5]),
        median_ms(&p[0]),
        median_ms(&p[1]),
        median_ms(&p[2]),
        median_ms(&p[4]),
    );
    Ok(())
}

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: load_time NNEF_TAR ONNX [REPEATS]");
        std::process::exit(2);
    }
    let repeats = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(9);
    let nnef = std::fs::read(&args[0])?;
    let onnx = std::fs::read(&args[1])?;
    // Alternate so that machine noise hits both alike.
    for _ in 0..2 {
        measure(&format!("NNEF {}", args[0]), &nnef, repeats, nnef_plan)?;
        measure(&format!("ONNX {}", args[1]), &onnx, repeats, onnx_plan)?;
    }
    Ok(())
}
