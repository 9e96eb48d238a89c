//! One loaded ONNX model and its optimized tract plans, one per concrete
//! input shape, built once (on first use, or ahead of it on a background
//! thread) and shared between threads.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use once_cell::sync::OnceCell;
use prost::Message;
use tract_onnx::tract_core::internal::TractErrorContext;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::framework::Framework;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::source::TypedSource;
use tract_onnx::tract_core::optim::Optimizer;

use crate::error::ModelError;
use crate::kernels::{self, Kernels};

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// One shape's plan: empty until built. Whoever builds it holds the cell;
/// every other thread asking for that shape waits for it (a first plan
/// takes 15-25 ms to build, and a second build would only compete for the
/// CPU).
/// A failed build leaves it empty for the next caller to retry.
type PlanSlot = Arc<OnceCell<Plan>>;

#[derive(Debug)]
pub(crate) struct PlanCache {
    name: &'static str,
    /// Shared with the threads that build plans in the background.
    builder: ModelSlot,
    plans: Mutex<HashMap<[usize; 4], PlanSlot>>,
}

/// The parsed model, or why it could not be: set when the cache is made,
/// or by the thread parsing it ([`PlanCache::load_in_background`]), which
/// always sets it; whoever needs the model meanwhile waits for it.
type ModelSlot = Arc<OnceCell<Result<Arc<Builder>, String>>>;

/// What a plan is built from: the parsed model and, once the first plan
/// has been built, that plan's decluttered model (tract's typing and
/// declutter, then the project's kernels: most of a plan's build time).
/// YuNet is fully convolutional, so every later shape's plan starts from
/// that one with its shapes recomputed: about 1 ms against 15-25 for the
/// whole chain (`examples/plan_time`), so a new photo shape costs little
/// more than tract's codegen.
#[derive(Debug)]
struct Builder {
    name: &'static str,
    model: InferenceModel,
    kernels: Kernels,
    decluttered: OnceCell<TypedModel>,
}

/// Parses ONNX bytes, as every plan's model is parsed. The analysis of
/// declared output shapes and value_info is skipped: the dynamic YuNet
/// exports carry a symbolic batch there that would not unify with a
/// concrete input.
///
/// The protobuf is decoded from `bytes` in place: tract's own reader
/// (`model_for_read`) first copies the whole file into a buffer of its
/// own, 22 MB of memory more for the recognizer, touched for the first
/// time in a cold start (page faults, about 1 ms per MB in a microVM).
pub fn parse_onnx(bytes: &[u8]) -> TractResult<InferenceModel> {
    let proto = tract_onnx::pb::ModelProto::decode(bytes).context("Reading proto model")?;
    tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_proto_model(&proto)
        .context("Translating proto model to model")
}

impl PlanCache {
    /// Parses ONNX bytes ([`parse_onnx`]).
    pub(crate) fn from_onnx_bytes(
        name: &'static str,
        bytes: &[u8],
        kernels: Kernels,
    ) -> Result<Self, ModelError> {
        let builder = Builder::parse(name, bytes, kernels).map_err(|reason| ModelError::Load {
            model: name,
            reason,
        })?;
        Ok(Self::with(
            name,
            OnceCell::with_value(Ok(Arc::new(builder))),
        ))
    }

    /// Returns at once; the bytes `source` returns are parsed on a thread
    /// of its own ([`parse_onnx`]). Every use waits for that parse, and a
    /// failed one (`source`'s error, the parser's, a panic, or no thread to
    /// run it) is every use's [`ModelError::Load`].
    pub(crate) fn load_in_background<F>(name: &'static str, kernels: Kernels, source: F) -> Self
    where
        F: FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
    {
        let cache = Self::with(name, OnceCell::new());
        let slot = Arc::clone(&cache.builder);
        let parse = move || {
            // A panic is tract's bug; the slot must still be set, or every
            // use would wait for it forever.
            let parsed = catch_unwind(AssertUnwindSafe(|| {
                let bytes = source()?;
                Builder::parse(name, &bytes, kernels).map(Arc::new)
            }))
            .unwrap_or_else(|_| Err("the parser panicked".into()));
            let _ = slot.set(parsed);
        };
        if let Err(e) = std::thread::Builder::new()
            .name(format!("parse {name}"))
            .spawn(parse)
        {
            let _ = cache
                .builder
                .set(Err(format!("cannot start a thread to parse it: {e}")));
        }
        cache
    }

    fn with(name: &'static str, builder: OnceCell<Result<Arc<Builder>, String>>) -> Self {
        Self {
            name,
            builder: Arc::new(builder),
            plans: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed model, once parsed.
    fn builder(&self) -> Result<&Arc<Builder>, ModelError> {
        self.builder
            .wait()
            .as_ref()
            .map_err(|reason| ModelError::Load {
                model: self.name,
                reason: reason.clone(),
            })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The declared input shape when every dimension is concrete.
    pub(crate) fn fixed_input_shape(&self) -> Option<[usize; 4]> {
        let model = &self.builder().ok()?.model;
        let input = *model.input_outlets().ok()?.first()?;
        let fact = model.outlet_fact(input).ok()?;
        let dims = fact.shape.as_concrete_finite().ok()??;
        dims.as_slice().try_into().ok()
    }

    /// The optimized plan for a `[n, c, h, w]` f32 input, built here unless
    /// it is built or being built already (then this waits for it).
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan, ModelError> {
        let builder = self.builder()?;
        let slot = self.slot(shape).0;
        slot.get_or_try_init(|| builder.build(shape)).cloned()
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
        let builder = Arc::clone(&self.builder);
        std::thread::Builder::new()
            .name(format!("plan {shape:?}"))
            .spawn(move || {
                // A failure is reported to the first caller of `plan`,
                // which tries again.
                if let Ok(builder) = builder.wait() {
                    let _ = slot.get_or_try_init(|| builder.build(shape));
                }
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

/// A plan's decluttered model is kept for the later shapes only when built
/// for an input at least this many pixels high and wide. Below it YuNet's
/// coarsest maps (stride 32) are one cell high or wide, declutter removes
/// those axes, and no larger shape could be reshaped from it.
const MIN_KEPT_SIDE: usize = 64;

impl Builder {
    /// `bytes` parsed ([`parse_onnx`]), or why not.
    fn parse(name: &'static str, bytes: &[u8], kernels: Kernels) -> Result<Self, String> {
        let model = parse_onnx(bytes).map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            name,
            model,
            kernels,
            decluttered: OnceCell::new(),
        })
    }

    /// `shape`'s plan reshaped from the first decluttered model kept
    /// (building it for `shape` when there is none yet, or waiting for the
    /// thread building it). A model whose decluttered graph fixed another
    /// shape-dependent value does not take another shape; such a plan is
    /// built from the start instead.
    fn build(&self, shape: [usize; 4]) -> Result<Plan, ModelError> {
        let load_error = |e: TractError| ModelError::Load {
            model: self.name,
            reason: format!("input {shape:?}: {e:#}"),
        };
        let own = || decluttered_model(self.model.clone(), shape, self.kernels);
        let first = if shape[2] >= MIN_KEPT_SIDE && shape[3] >= MIN_KEPT_SIDE {
            Some(self.decluttered.get_or_try_init(own).map_err(load_error)?)
        } else {
            self.decluttered.get()
        };
        if let Some(Ok(plan)) = first.map(|first| reshaped_plan(first, shape)) {
            return Ok(plan);
        }
        own()
            .and_then(|own| reshaped_plan(&own, shape))
            .map_err(load_error)
    }
}

/// The runnable plan of `model` for a `[n, c, h, w]` f32 input: tract's
/// declutter (without its axis changes, see [`declutter`]), the project's
/// [`Kernels`] swapped in (unless `Stock`), then tract's codegen. Every
/// plan the pipeline runs is built this way (later shapes reuse the first
/// one's declutter, [`reshaped_plan`]); the profiling example uses it too.
pub fn optimized_plan(
    model: InferenceModel,
    shape: [usize; 4],
    kernels: Kernels,
) -> TractResult<Arc<TypedRunnableModel>> {
    reshaped_plan(&decluttered_model(model, shape, kernels)?, shape)
}

/// `model` typed for a `[n, c, h, w]` f32 input and decluttered, the
/// project's [`Kernels`] swapped in (unless `Stock`): a plan before codegen.
pub fn decluttered_model(
    model: InferenceModel,
    shape: [usize; 4],
    kernels: Kernels,
) -> TractResult<TypedModel> {
    let mut model = model
        .with_input_fact(0, f32::fact(shape).into())?
        .into_typed()?;
    declutter(&mut model)?;
    // Between declutter and codegen: the ops to replace are still tract's
    // generic ones (Conv, MaxPool) here.
    if kernels == Kernels::Project {
        kernels::swap_in(&mut model)?;
    }
    Ok(model)
}

/// The plan of a decluttered model (built for any shape) for a `[n, c, h,
/// w]` f32 input: its input set to that shape, every node's output shape
/// recomputed from its op, then codegen. Declutter leaves the sizes of its
/// shape at one kind of op: a reshape, which YuNet's heads use to flatten
/// each map's rows and columns into one axis; a flattening is rewritten
/// for the new sizes. Any other op that does not fit the new shape fails
/// here (a reshape checks its input's sizes, an addition its operands').
pub fn reshaped_plan(
    decluttered: &TypedModel,
    shape: [usize; 4],
) -> TractResult<Arc<TypedRunnableModel>> {
    let mut model = decluttered.clone();
    let input = *model
        .input_outlets()?
        .first()
        .ok_or_else(|| TractError::msg("the model has no input"))?;
    let fact = f32::fact(shape);
    model.node_mut(input.node).op = Box::new(TypedSource::new(fact.clone()));
    model.set_outlet_fact(input, fact)?;
    for id in model.eval_order()? {
        let inputs: TVec<TypedFact> = model.node_input_facts(id)?.into_iter().cloned().collect();
        if let Some(flatten) = model
            .node(id)
            .op_as::<AxisOp>()
            .and_then(|op| reflattened(op, inputs.first()?))
        {
            model.node_mut(id).op = Box::new(flatten);
        }
        let outputs = model
            .node(id)
            .op
            .output_facts(&inputs.iter().collect::<TVec<_>>())?;
        for (slot, fact) in outputs.into_iter().enumerate() {
            model.set_outlet_fact(OutletId::new(id, slot), fact)?;
        }
    }
    model.optimize()?;
    model.into_runnable()
}

/// A reshape that flattens consecutive axes into one, for `input`'s sizes
/// of those axes (row-major, so the same flattening at any size); `None`
/// when `op` is anything else or already fits.
fn reflattened(op: &AxisOp, input: &TypedFact) -> Option<AxisOp> {
    let AxisOp::Reshape(at, from, to) = op else {
        return None;
    };
    let sizes: TVec<TDim> = input
        .shape
        .iter()
        .skip(*at)
        .take(from.len())
        .cloned()
        .collect();
    (to.len() == 1 && sizes.len() == from.len() && sizes != *from).then(|| {
        let flat = sizes.iter().product();
        AxisOp::Reshape(*at, sizes, tvec!(flat))
    })
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
