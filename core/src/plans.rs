//! One loaded ONNX model and its optimized tract plans, one per concrete
//! input shape, built once (on first use, or ahead of it on a background
//! thread) and shared between threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use once_cell::sync::OnceCell;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::optim::Optimizer;

use crate::error::ModelError;
use crate::kernels::{self, Kernels};

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// One shape's plan: empty until built. Whoever builds it holds the cell;
/// every other thread asking for that shape waits for it (a plan takes
/// 18-25 ms to build, and a second build would only compete for the CPU).
/// A failed build leaves it empty for the next caller to retry.
type PlanSlot = Arc<OnceCell<Plan>>;

#[derive(Debug)]
pub(crate) struct PlanCache {
    name: &'static str,
    /// Shared with the threads that build plans in the background.
    model: Arc<InferenceModel>,
    kernels: Kernels,
    plans: Mutex<HashMap<[usize; 4], PlanSlot>>,
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
            model: Arc::new(model),
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

    /// The optimized plan for a `[n, c, h, w]` f32 input, built here unless
    /// it is built or being built already (then this waits for it).
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan, ModelError> {
        let slot = self.slot(shape).0;
        slot.get_or_try_init(|| build(self.name, &self.model, shape, self.kernels))
            .cloned()
    }

    /// Starts building the plan for `shape` on a thread of its own and
    /// returns at once, unless that plan is built or being built already.
    /// Returns whether a thread was started. A build that fails (or a
    /// thread that cannot be started) only leaves the plan to be built,
    /// and its error reported, on first use.
    pub(crate) fn plan_in_background(&self, shape: [usize; 4]) -> bool {
        let (slot, new) = self.slot(shape);
        if !new {
            return false;
        }
        let (name, model, kernels) = (self.name, Arc::clone(&self.model), self.kernels);
        std::thread::Builder::new()
            .name(format!("plan {shape:?}"))
            .spawn(move || {
                // A failure is reported to the first caller of `plan`,
                // which tries again.
                let _ = slot.get_or_try_init(|| build(name, &model, shape, kernels));
            })
            .is_ok()
    }

    /// `shape`'s slot, and whether this call created it.
    fn slot(&self, shape: [usize; 4]) -> (PlanSlot, bool) {
        let mut plans = self.lock();
        match plans.get(&shape) {
            Some(slot) => (Arc::clone(slot), false),
            None => {
                let slot = PlanSlot::default();
                plans.insert(shape, Arc::clone(&slot));
                (slot, true)
            }
        }
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

    fn lock(&self) -> MutexGuard<'_, HashMap<[usize; 4], PlanSlot>> {
        // Poisoning only means another thread panicked mid-insert; the map
        // itself is intact.
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn build(
    name: &'static str,
    model: &InferenceModel,
    shape: [usize; 4],
    kernels: Kernels,
) -> Result<Plan, ModelError> {
    optimized_plan(model.clone(), shape, kernels).map_err(|e| ModelError::Load {
        model: name,
        reason: format!("input {shape:?}: {e:#}"),
    })
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
