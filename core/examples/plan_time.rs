//! What a detector plan for a new photo shape costs: built from the start
//! (`optimized_plan`: typing, declutter, the project's kernels, codegen)
//! against reshaped from another shape's decluttered model
//! (`reshaped_plan`, what `PlanCache` does for every shape after its
//! first), alternated in one process, medians of 15 each. Developer tool:
//! `cargo run --profile ci -p face-core --example plan_time -- MODEL.onnx [H W]`
//! (default 640 640, reshaped from 480x640).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use face_core::{Kernels, decluttered_model, optimized_plan, parse_onnx, reshaped_plan};

type Error = Box<dyn std::error::Error>;

const ROUNDS: usize = 15;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let (path, side) = match &args[1..] {
        [path] => (path, [640, 640]),
        [path, h, w] => (path, [h.parse()?, w.parse()?]),
        _ => {
            eprintln!("usage: plan_time MODEL.onnx [H W]");
            std::process::exit(2);
        }
    };
    let bytes = std::fs::read(path)?;
    let parse = || parse_onnx(&bytes);
    let shape = [1, 3, side[0], side[1]];
    let first = decluttered_model(parse()?, [1, 3, 480, 640], Kernels::Project)?;
    let (mut full, mut reshaped) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let model = parse()?;
        let start = Instant::now();
        optimized_plan(model, shape, Kernels::Project)?;
        full.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        reshaped_plan(&first, shape)?;
        reshaped.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let median = |values: &[f64]| face_core::stats::median(values).unwrap_or(f64::NAN);
    let (full, reshaped) = (median(&full), median(&reshaped));
    println!(
        "plan for {}x{}: built from the start {full:.2} ms, reshaped from 640x480 {reshaped:.2} ms ({:.1}x)",
        side[1],
        side[0],
        full / reshaped
    );
    Ok(())
}
