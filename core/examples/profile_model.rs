//! Where does tract spend its time? Runs a model on zeros and prints the
//! time per operator kind. Developer tool:
//! `cargo run --release -p face-core --example profile_model -- MODEL.onnx N C H W`

use std::collections::HashMap;
use std::time::Instant;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: profile_model MODEL.onnx N C H W");
        std::process::exit(2);
    }
    let dims: Vec<usize> = args[2..6].iter().map(|a| a.parse().unwrap_or(1)).collect();
    let start = Instant::now();
    let model = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_path(&args[1])?;
    let parsed = start.elapsed();
    let model = model.with_input_fact(0, f32::fact(&dims).into())?;
    let optimized = model.into_optimized()?;
    let opt_time = start.elapsed() - parsed;
    let plan = optimized.into_runnable()?;
    println!("parse {parsed:?}, optimize+plan {opt_time:?}");
    let input: TValue = Tensor::zero::<f32>(&dims)?.into_tvalue();
    let mut per_op: HashMap<String, (f64, usize)> = HashMap::new();
    let runs = 20;
    for _ in 0..3 {
        plan.run(tvec!(input.clone()))?;
    }
    let t = Instant::now();
    for _ in 0..runs {
        plan.run(tvec!(input.clone()))?;
    }
    println!(
        "plain run: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0 / runs as f64
    );
    for _ in 0..runs {
        let mut state = plan.spawn()?;
        state.run_plan_with_eval(tvec!(input.clone()), |ctx, op_state, node, inputs| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            let e = per_op.entry(node.op().name().to_string()).or_default();
            e.0 += t.elapsed().as_secs_f64() * 1000.0;
            e.1 += 1;
            r
        })?;
    }
    let mut rows: Vec<_> = per_op.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (name, (ms, count)) in rows.iter().take(15) {
        println!(
            "{:>8.3} ms/run  {:>4} nodes  {name}",
            ms / runs as f64,
            count / runs
        );
    }
    Ok(())
}
