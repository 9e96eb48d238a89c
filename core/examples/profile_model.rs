//! Where does tract spend its time? Runs a model on zeros and prints the
//! time per operator kind. Developer tool:
//! `cargo run --release -p face-core --example profile_model -- MODEL.onnx N C H W [stock] [per-node]`
//! (`stock`: tract's own ops instead of the project's kernels; `per-node`:
//! one line per node, with its first input's shape, instead of per kind).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::time::Instant;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 || args[6..].iter().any(|a| a != "stock" && a != "per-node") {
        eprintln!("usage: profile_model MODEL.onnx N C H W [stock] [per-node]");
        std::process::exit(2);
    }
    let dims: [usize; 4] = std::array::from_fn(|i| args[2 + i].parse().unwrap_or(1));
    let per_node = args[6..].iter().any(|a| a == "per-node");
    let kernels = if args[6..].iter().any(|a| a == "stock") {
        face_core::Kernels::Stock
    } else {
        face_core::Kernels::Project
    };
    let start = Instant::now();
    let model = face_core::parse_onnx(&std::fs::read(&args[1])?)?;
    let parsed = start.elapsed();
    let plan = face_core::optimized_plan(model, dims, kernels)?;
    let opt_time = start.elapsed() - parsed;
    println!("parse {parsed:?}, optimize+plan {opt_time:?}");
    let input: TValue = Tensor::zero::<f32>(&dims)?.into_tvalue();
    let mut per_op: HashMap<String, (f64, usize)> = HashMap::new();
    let runs = 20;
    for _ in 0..3 {
        plan.run(tvec!(input.clone()))?;
    }
    let t = Instant::now();
    let mut fastest = f64::INFINITY;
    for _ in 0..runs {
        let run = Instant::now();
        plan.run(tvec!(input.clone()))?;
        fastest = fastest.min(run.elapsed().as_secs_f64() * 1000.0);
    }
    // The fastest run is the least disturbed by a noisy machine.
    println!(
        "plain run: {:.2} ms (fastest {fastest:.2} ms)",
        t.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
    for _ in 0..runs {
        let mut state = plan.spawn()?;
        state.run_plan_with_eval(tvec!(input.clone()), |ctx, op_state, node, inputs| {
            let shape = inputs.first().map(|i| i.shape().to_vec());
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            let key = if per_node {
                format!("{} {} {:?}", node.op().name(), node.name, shape)
            } else {
                node.op().name().to_string()
            };
            let e = per_op.entry(key).or_default();
            e.0 += t.elapsed().as_secs_f64() * 1000.0;
            e.1 += 1;
            r
        })?;
    }
    let mut rows: Vec<_> = per_op.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (name, (ms, count)) in rows.iter().take(if per_node { usize::MAX } else { 15 }) {
        println!(
            "{:>8.3} ms/run  {:>4} nodes  {name}",
            ms / runs as f64,
            count / runs
        );
    }
    Ok(())
}
