//! One loaded ONNX model and its optimized tract plans, one per concrete
//! input shape, built on first use and shared between threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::optim::Optimizer;

use crate::error::ModelError;
use crate::kernels::{self, Kernels};

pub(crate) type Plan = Arc<TypedRunnableModel>;

#[derive(Debug)]
pub(crate) struct PlanCache {
    name: &'static str,
    model: InferenceModel,
    kernels: Kernels,
    plans: Mutex<HashMap<[usize; 4], Plan>>,
}

impl PlanCache {
    /// Parses ONNX bytes. The analysis of declared output shapes and
    /// value_info is skipped: the dynamic YuNet exports carry a symbolic
    /// batch there that would not unify with a concrete input.
    pub(crate) fn from_onnx_bytes(
        name: &'static str,
        bytes: &[u8],
        kernels: Kernels,
    ) -> Result<Self, ModelError> {
        let model = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| ModelError::Load {
                model: name,
                reason: format!("{e:#}"),
            })?;
        Ok(Self {
            name,
            model,
            kernels,
            plans: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The declared input shape when every dimension is concrete.
    pub(crate) fn fixed_input_shape(&self) -> Option<[usize; 4]> {
        let input = *self.model.input_outlets().ok()?.first()?;
        let fact = self.model.outlet_fact(input).ok()?;
        let dims = fact.shape.as_concrete_finite().ok()??;
        dims.as_slice().try_into().ok()
    }

    /// The optimized plan for a `[n, c, h, w]` f32 input.
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan, ModelError> {
        if let Some(plan) = self.lock().get(&shape) {
            return Ok(plan.clone());
        }
        // Optimizing outside the lock: two threads may both build the same
        // plan on a cold start, which costs time but never blocks a shape
        // that is already cached.
        let plan = optimized_plan(self.model.clone(), shape, self.kernels).map_err(|e| {
            ModelError::Load {
                model: self.name,
                reason: format!("input {shape:?}: {e:#}"),
            }
        })?;
        Ok(self.lock().entry(shape).or_insert(plan).clone())
    }

    /// Runs the plan for `input`'s shape.
    pub(crate) fn run(&self, input: Tensor) -> Result<TVec<TValue>, ModelError> {
        let shape: [usize; 4] = input.shape().try_into().map_err(|_| ModelError::Run {
            model: self.name,
            reason: format!("input must have rank 4, has shape {:?}", input.shape()),
        })?;
        self.plan(shape)?
            .run(tvec!(input.into_tvalue()))
            .map_err(|e| ModelError::Run {
                model: self.name,
                reason: format!("{e:#}"),
            })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[usize; 4], Plan>> {
        // Poisoning only means another thread panicked mid-insert; the map
        // itself is intact.
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The runnable plan of `model` for a `[n, c, h, w]` f32 input: tract's
/// declutter (without its axis changes, see [`declutter`]), the project's
/// [`Kernels`] swapped in (unless `Stock`), then tract's codegen. Every
/// plan the pipeline runs is built here; the profiling example uses it too.
pub fn optimized_plan(
    model: InferenceModel,
    shape: [usize; 4],
    kernels: Kernels,
) -> TractResult<Arc<TypedRunnableModel>> {
    let mut model = model
        .with_input_fact(0, f32::fact(shape).into())?
        .into_typed()?;
    declutter(&mut model)?;
    // Between declutter and codegen: the ops to replace are still tract's
    // generic ones (Conv, MaxPool) here.
    if kernels == Kernels::Project {
        kernels::swap_in(&mut model)?;
    }
    model.optimize()?;
    model.into_runnable()
}

/// tract's declutter passes but `ChangeAxes`. On YuNet that pass moved
/// each head's layout change up through its two convolutions, writing them
/// channel-last: 164 patches, half the detector's plan time (36 -> 18 ms
/// at 640x640), for no gain when the plan runs (the project's fused op
/// runs the heads as they are; tract's `MoveAxis` then transposes outputs
/// of 1 to 10 channels). On the recognizer it changed two nodes, also for
/// nothing. A plan is built on a cold start's first request of each new
/// shape, so this time is latency a caller sees.
fn declutter(model: &mut TypedModel) -> TractResult<()> {
    let mut optimizer = Optimizer::declutter();
    let passes = optimizer.passes.len();
    // tract's passes are named only by their Debug output.
    optimizer
        .passes
        .retain(|pass| !format!("{pass:?}").starts_with("ChangeAxes"));
    if optimizer.passes.len() + 1 != passes {
        return Err(TractError::msg(
            "tract's declutter no longer has exactly one ChangeAxes pass: revisit plans::declutter",
        ));
    }
    optimizer.optimize(model)
}
