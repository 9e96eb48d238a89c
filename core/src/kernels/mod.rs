//! Project-owned tract ops for the detector's hot spots, swapped into a
//! model between tract's declutter and codegen passes.
//!
//! What and why (YuNet at 640x480, profiled with `examples/profile_model`):
//! - 1x1 convolutions (`pointwise`): tract packs the whole image into
//!   panels before its matrix product, a pass through memory as long as the
//!   product on these shapes; the bias added after it is folded in.
//! - 3x3 depthwise convolutions (`depthwise`): tract 0.23.9 has vectorized
//!   kernels for them only on arm64 and wasm; the ReLU after each is folded
//!   in, which saves a pass over its output. Channel-first only: `plans`
//!   skips tract's `ChangeAxes`, which wrote YuNet's heads channel-last.
//! - Max pooling of stride 2 (`maxpool`: YuNet's 2x2, the recognizer's
//!   3x3): tract's generic pooling took a sixth of YuNet's time, and 0.29
//!   ms of the recognizer's 8.5 (the project's, 0.06).
//! - The first layers, convolutions of stride 2 over the 3 colours
//!   (`stem`: YuNet's 3x3, the recognizer's 7x7): tract's direct
//!   convolution reads the image at stride 2, its im2col product packs 147
//!   rows; here each row is split once into even and odd columns, and the
//!   product runs as the 1x1 convolution's does.
//! - The recognizer's 3x3 convolutions of stride 1 (`winograd`, all 23 of
//!   them from 35x35 down to 3x3: their input channels are multiples of 8,
//!   their outputs of 16): Winograd's F(2x2, 3x3), 16 multiplications per
//!   2x2 outputs instead of 36. Before it, tract padded the image, then
//!   packed an im2col of it; the direct ops that replaced that ran near this
//!   machine's peak, so fewer multiplications was what was left.
//! - Other 3x3 convolutions of stride 1 (`conv3x3`, at least 16 wide): each
//!   channel copied once into a zero-bordered plane, where every tap is a
//!   fixed offset.
//! - 3x3 convolutions over small images with many channels (`deep3x3`:
//!   the recognizer's stride-2 one at 8x8, and stride-1 ones Winograd's op
//!   does not take): there `conv3x3`'s rows of 24 positions are mostly
//!   padding; the vectors run along the output channels instead.
//! - A convolution over a 1x1 map whose padding leaves only its kernel's
//!   centre on the image (the recognizer's last 3x3 one) is the 1x1
//!   convolution by the centre taps; a 1x1 convolution of fewer than 8
//!   pixels (that one, the 256 -> 128 descriptor) runs as dot products
//!   along the channels, its weights not packed.
//! - A 1x1 convolution read only by a depthwise one, and the max pooling
//!   after that if any (`fused`): one pass over row bands that stay in L2
//!   instead of each op's output going through memory; the ReLU before a
//!   1x1 convolution is folded into its reading of the image.
//!
//! All use 8-lane SIMD through `wide` (safe Rust: AVX2+FMA under the
//! workspace's x86-64-v3, NEON on arm64). Results match the stock ops within
//! float rounding (the order of the additions differs); `core/tests/kernels.rs`
//! holds them to tract's own ops on the data set's photos.
//!
//! Only shapes the ops implement are swapped; everything else stays tract's.

mod conv3x3;
mod deep3x3;
mod depthwise;
mod fused;
mod maxpool;
mod pointwise;
mod stem;
mod taps;
mod winograd;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max};
use tract_onnx::tract_core::ops::nn::DataFormat;

use conv3x3::{Direct, DirectConv};
use depthwise::Depthwise3x3;
use fused::PointwiseDepthwise;
use maxpool::MaxPoolStride2;
use pointwise::Pointwise;

/// Output positions along an axis of `n`: a `size` window every `stride`
/// pixels over the axis padded by `padding` at both ends, floor rounding
/// as ONNX's (none when the window does not fit). Every project
/// convolution and pooling sizes its output with it.
fn windows(n: usize, [size, stride, padding]: [usize; 3]) -> usize {
    (n + 2 * padding)
        .checked_sub(size)
        .map_or(0, |room| room / stride + 1)
}

/// `image`'s `[.., C, H, W]` shape with its last three sizes replaced by
/// `[outputs, rows, columns]`: the output of an op that keeps the leading
/// (image) axes, given the output rows and columns for `H` and `W`.
fn channels_and_size(
    image: &[usize],
    outputs: usize,
    size: impl FnOnce(usize, usize) -> [usize; 2],
) -> TractResult<TVec<usize>> {
    let rank = image.len();
    if rank < 3 {
        return Err(TractError::msg(format!(
            "the input must have rank 3 or more, has shape {image:?}"
        )));
    }
    let [rows, columns] = size(image[rank - 2], image[rank - 1]);
    let mut output: TVec<usize> = image.into();
    output[rank - 3..].copy_from_slice(&[outputs, rows, columns]);
    Ok(output)
}

/// A fact's concrete shape: the project's ops run only on those.
fn concrete(fact: &TypedFact) -> TractResult<TVec<usize>> {
    fact.shape.as_concrete().map(TVec::from).ok_or_else(|| {
        TractError::msg(format!(
            "the project's ops take concrete shapes, not {:?}",
            fact.shape
        ))
    })
}

/// A tensor's values as f32, or the error saying why not.
fn floats(tensor: &Tensor) -> TractResult<&[f32]> {
    tensor.try_as_plain_ram()?.as_slice::<f32>()
}

/// An op's f32 result of `shape`, written by `fill` straight into the
/// tensor tract takes. (Built as a `Vec` first, tract copied it into a new
/// tensor: 5% of the detector's time. The tensor is zeroed first, as safe
/// code cannot take uninitialized memory; `fill` writes every value.)
fn output(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> TractResult<TVec<TValue>> {
    let mut tensor = Tensor::zero::<f32>(shape)?;
    fill(tensor.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
    Ok(tvec!(tensor.into_tvalue()))
}

thread_local! {
    /// Scratch buffers kept between an op's calls on a thread.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `N` zeroed scratch buffers of `lens`, kept per thread from
/// one call to the next (so bounded by the largest layer's needs).
/// Allocated anew on each call, they were fresh pages each time, which the
/// kernel faulted in and zeroed: a sixth of the recognizer's time.
fn with_scratch<const N: usize, R>(lens: [usize; N], f: impl FnOnce([&mut [f32]; N]) -> R) -> R {
    let mut buffers = SCRATCH.with(|scratch| std::mem::take(&mut *scratch.borrow_mut()));
    if buffers.len() < N {
        buffers.resize_with(N, Vec::new);
    }
    for (buffer, &len) in buffers.iter_mut().zip(&lens) {
        buffer.clear();
        buffer.resize(len, 0.0);
    }
    let result = {
        let mut slices = buffers.iter_mut().map(Vec::as_mut_slice);
        f(std::array::from_fn(|_| slices.next().unwrap_or_default()))
    };
    SCRATCH.with(|scratch| *scratch.borrow_mut() = buffers);
    result
}

/// Which implementation runs the ops this module covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The project's ops where they apply (the default).
    #[default]
    Project,
    /// tract's own ops everywhere: the reference the tests and the bench
    /// compare against.
    Stock,
}

/// Replaces every eligible node of a decluttered model by the project's op.
pub(crate) fn swap_in(model: &mut TypedModel) -> TractResult<()> {
    for id in model.eval_order()? {
        if let Some(conv) = model.node(id).op_as::<Conv>()
            && let Some(weights) = depthwise_weights(model, id, conv)?
        {
            let relu = relu_after(model, id)?;
            let node = model.node(id);
            let name = node.name.clone();
            let mut patch = TypedModelPatch::new(format!("project depthwise {name}"));
            let x = patch.tap_model(model, node.inputs[0])?;
            let kernel = patch.add_const(format!("{name}.kernel_c9"), weights.kernel_matrix()?)?;
            let bias = patch.add_const(format!("{name}.bias_c"), weights.bias)?;
            let out = patch.wire_node(
                format!("{name}.project"),
                Depthwise3x3 {
                    relu: relu.is_some(),
                },
                &[x, kernel, bias],
            )?[0];
            let replaced = relu.unwrap_or(id);
            patch.shunt_outside(model, OutletId::new(replaced, 0), out)?;
            patch.apply(model)?;
        } else if let Some(conv) = model.node(id).op_as::<Conv>()
            && let Some((direct, weights)) = direct_weights(model, id, conv)?
        {
            swap_direct(model, id, weights, direct)?;
        } else if let Some(pool) = model.node(id).op_as::<MaxPool>()
            && let Some(size) = max_pool_stride_2(model, id, pool)?
        {
            let node = model.node(id);
            let name = node.name.clone();
            let mut patch = TypedModelPatch::new(format!("project max pool {name}"));
            let x = patch.tap_model(model, node.inputs[0])?;
            let out = patch.wire_node(format!("{name}.project"), MaxPoolStride2 { size }, &[x])?[0];
            patch.shunt_outside(model, OutletId::new(id, 0), out)?;
            patch.apply(model)?;
        } else if let Some(conv) = model.node(id).op_as::<Conv>()
            && let Some(found) = centre_tap_weights(model, id, conv)?
        {
            swap_pointwise(model, id, found)?;
        } else if let Some(einsum) = model.node(id).op_as::<EinSum>()
            && let Some(found) = pointwise_weights(model, id, einsum)?
        {
            swap_pointwise(model, id, found)?;
        }
    }
    model.compact()?;
    fuse(model)?;
    model.compact()
}

/// Replaces node `id` (and the bias addition after it, when `found` took
/// one in) by the project's 1x1 convolution, the ReLU before it folded in
/// if it alone reads that.
fn swap_pointwise(model: &mut TypedModel, id: usize, found: PointwiseWeights) -> TractResult<()> {
    let node = model.node(id);
    let name = node.name.clone();
    let relu = relu_before(model, id)?;
    let image = relu.unwrap_or(node.inputs[0]);
    let op = Pointwise {
        channel_axis: found.channel_axis,
        relu_input: relu.is_some(),
    };
    // The op's output is its image's shape with the output channels: left
    // as is where the graph's differs (an axis added or dropped).
    let outputs = found.weights.shape()[0];
    if op.output_shape(&concrete(model.outlet_fact(image)?)?, outputs)? != found.output_shape {
        return Ok(());
    }
    let mut patch = TypedModelPatch::new(format!("project pointwise {name}"));
    let x = patch.tap_model(model, image)?;
    let weights = patch.add_const(format!("{name}.weights_oc"), found.weights)?;
    let bias = patch.add_const(format!("{name}.bias_o"), found.bias)?;
    let out = patch.wire_node(format!("{name}.project"), op, &[x, weights, bias])?[0];
    patch.shunt_outside(model, OutletId::new(found.replaces, 0), out)?;
    patch.apply(model)
}

/// A kernel packing: `[O, taps]` kernel, taps, the buffer it fills.
type PackFn = fn(&[f32], usize, &mut [f32]) -> TractResult<()>;

/// Replaces the convolution `id`, and the ReLU that alone reads it if any,
/// by the project's `DirectConv` running `direct`, its kernel packed for
/// `taps`' product. Left as is when the output's shape is not concrete, or
/// not the one the op derives from its input's.
fn swap_direct(
    model: &mut TypedModel,
    id: usize,
    weights: ConvWeights,
    direct: Direct,
) -> TractResult<()> {
    let relu = relu_after(model, id)?;
    let replaced = relu.unwrap_or(id);
    let Some(output_shape) = model
        .outlet_fact(OutletId::new(replaced, 0))?
        .shape
        .as_concrete()
        .map(TVec::from)
    else {
        return Ok(());
    };
    let node = model.node(id);
    let name = node.name.clone();
    let op = DirectConv {
        direct,
        relu: relu.is_some(),
    };
    let outputs = weights.bias.len();
    if op.output_shape(&concrete(model.outlet_fact(node.inputs[0])?)?, outputs)? != output_shape {
        return Ok(());
    }
    let mut patch = TypedModelPatch::new(format!("project direct conv {direct:?} {name}"));
    let x = patch.tap_model(model, node.inputs[0])?;
    let (kernel, taps) = (weights.kernel_values()?, weights.taps);
    // Packed straight into the constant's tensor (a `Vec` first, then a
    // tensor copied from it, touched twice the recognizer's 22 MB).
    let (packed_len, pack): (fn(usize, usize) -> usize, PackFn) = match direct {
        Direct::Deep { .. } => (deep3x3::packed_len, deep3x3::pack),
        Direct::Winograd => (winograd::packed_len, winograd::pack),
        Direct::Stride1 | Direct::Stride2 { .. } => (taps::packed_len, taps::pack),
    };
    let mut packed = Tensor::zero::<f32>(&[packed_len(kernel.len(), taps)])?;
    let mut storage = packed.try_as_plain_ram_mut()?;
    pack(kernel, taps, storage.as_slice_mut::<f32>()?)?;
    let kernel = patch.add_const(format!("{name}.kernel_packed"), packed)?;
    let bias = patch.add_const(format!("{name}.bias_o"), weights.bias)?;
    let out = patch.wire_node(format!("{name}.project"), op, &[x, kernel, bias])?[0];
    patch.shunt_outside(model, OutletId::new(replaced, 0), out)?;
    patch.apply(model)
}

/// The only node reading node `id`'s only output, which is not a model
/// output: what a project op may fold into `id` without anyone else
/// missing the value in between.
fn sole_reader(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let node = model.node(id);
    if node.outputs.len() != 1
        || node.outputs[0].successors.len() != 1
        || model.output_outlets()?.contains(&OutletId::new(id, 0))
    {
        return Ok(None);
    }
    Ok(Some(node.outputs[0].successors[0].node))
}

/// [`sole_reader`], when it has op `O` and reads `id` as its first input.
fn sole_reader_of<O: Op>(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    Ok(sole_reader(model, id)?.filter(|&next| {
        let next = model.node(next);
        next.op_is::<O>() && next.inputs.first() == Some(&OutletId::new(id, 0))
    }))
}

/// Replaces each project 1x1 convolution read only by a project depthwise
/// one (and the max pooling reading only that, if any) by the fused op.
fn fuse(model: &mut TypedModel) -> TractResult<()> {
    for id in model.eval_order()? {
        let Some(pointwise) = model.node(id).op_as::<Pointwise>() else {
            continue;
        };
        let Some(depthwise_id) = sole_reader_of::<Depthwise3x3>(model, id)? else {
            continue;
        };
        let pool_id = sole_reader_of::<MaxPoolStride2>(model, depthwise_id)?.filter(|&pool| {
            model
                .node(pool)
                .op_as::<MaxPoolStride2>()
                .is_some_and(|p| p.size == 2)
        });
        let last = pool_id.unwrap_or(depthwise_id);
        let Some(output_shape) = model
            .outlet_fact(OutletId::new(last, 0))?
            .shape
            .as_concrete()
            .map(TVec::from)
        else {
            continue;
        };
        let relu = model
            .node(depthwise_id)
            .op_as::<Depthwise3x3>()
            .is_some_and(|d| d.relu);
        let op = PointwiseDepthwise {
            relu_input: pointwise.relu_input,
            relu,
            pool: pool_id.is_some(),
        };
        // The fused op takes `[.., C, rows, columns]` images and derives
        // its output's shape from theirs: left apart where the graph's
        // layout is another.
        let node = model.node(id);
        let image = concrete(model.outlet_fact(node.inputs[0])?)?;
        let outputs = concrete(model.outlet_fact(node.inputs[1])?)?[0];
        if pointwise.channel_axis + 3 != image.len()
            || op.output_shape(&image, outputs)? != output_shape
        {
            continue;
        }
        let (node, depthwise) = (model.node(id), model.node(depthwise_id));
        let name = node.name.clone();
        let mut patch = TypedModelPatch::new(format!("project fused {name}"));
        let inputs = [
            node.inputs[0],
            node.inputs[1],
            node.inputs[2],
            depthwise.inputs[1],
            depthwise.inputs[2],
        ]
        .iter()
        .map(|&outlet| patch.tap_model(model, outlet))
        .collect::<TractResult<TVec<_>>>()?;
        let out = patch.wire_node(format!("{name}.fused"), op, &inputs)?[0];
        patch.shunt_outside(model, OutletId::new(last, 0), out)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// A convolution's constant weights, as the project's ops take them.
struct ConvWeights {
    /// The model's constant itself, read as `[O, taps]`: each output
    /// channel's taps, row-major (for a depthwise convolution O is its
    /// channels and taps 9). Shared with the parsed model, so it is read in
    /// place: an owned copy deep-cloned every kernel, 22 MB of the
    /// recognizer's, in every cold start's plan.
    kernel: Arc<Tensor>,
    taps: usize,
    /// `[O]`.
    bias: Tensor,
}

impl ConvWeights {
    fn kernel_values(&self) -> TractResult<&[f32]> {
        floats(&self.kernel)
    }

    /// The kernel as its own `[O, taps]` tensor.
    fn kernel_matrix(&self) -> TractResult<Tensor> {
        Tensor::from_shape(&[self.bias.len(), self.taps], self.kernel_values()?)
    }
}

/// A convolution node's constant f32 kernel as `[outputs, taps]` and its
/// bias as `[outputs]` (a single value repeated), when its image is a
/// concrete f32 tensor.
fn constant_weights(
    model: &TypedModel,
    node: &TypedNode,
    outputs: usize,
    taps: usize,
) -> TractResult<Option<ConvWeights>> {
    let input = model.outlet_fact(node.inputs[0])?;
    let kernel = model.outlet_fact(node.inputs[1])?;
    let bias = model.outlet_fact(node.inputs[2])?;
    let (Some(kernel), Some(bias)) = (kernel.konst.as_ref(), bias.konst.as_ref()) else {
        return Ok(None);
    };
    if input.datum_type != f32::datum_type()
        || input.shape.as_concrete().is_none()
        || kernel.datum_type() != f32::datum_type()
        || kernel.len() != outputs * taps
        || bias.datum_type() != f32::datum_type()
        || !(bias.len() == outputs || bias.len() == 1)
    {
        return Ok(None);
    }
    let kernel = Arc::clone(kernel);
    let bias = if bias.len() == outputs {
        bias.clone().into_tensor().into_shape(&[outputs])?
    } else {
        let value = floats(bias)?[0];
        Tensor::from(tract_ndarray::Array1::from_elem(outputs, value))
    };
    Ok(Some(ConvWeights { kernel, taps, bias }))
}

/// The weights of a float, 3x3, stride 1, dilation 1, padding 1 depthwise
/// convolution, channel-first (single-channel ones count), with constant
/// kernel and bias; `None` for any other convolution.
fn depthwise_weights(
    model: &TypedModel,
    id: usize,
    conv: &Conv,
) -> TractResult<Option<ConvWeights>> {
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
    let node = model.node(id);
    if conv.q_params.is_some()
        || conv.group != channels
        || spec.output_channels != channels
        || channels == 0
        || spec.kernel_shape.as_slice() != [3, 3]
        || conv.kernel_fmt != KernelFormat::OIHW
        || spec.data_format.c_is_last()
        || !ones(&spec.strides)
        || !ones(&spec.dilations)
        || uniform_padding(&spec.padding) != Some(1)
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    constant_weights(model, node, channels, 9)
}

/// Input channels up to which the stride-2 op replaces tract's (colour
/// images, with or without alpha): with more, each tap's loads serve fewer
/// products than tract's matrix product reaches.
const STEM_MAX_CHANNELS: usize = 4;

/// The narrowest image the stride-1 op takes: each padded row computes 2
/// border columns it drops, 11% of the work at this width (the
/// recognizer's 9x9 and 5x5 stages stay tract's).
const CONV3X3_MIN_WIDTH: usize = 16;

/// Input channels from which a narrower 3x3 convolution, or a stride-2 one,
/// runs on `deep3x3`'s op (whose vectors run along the output channels).
const DEEP_MIN_CHANNELS: usize = 16;

/// The same padding on every side of both axes, when explicit (or none):
/// what every project convolution and pooling checks its padding with.
fn uniform_padding(padding: &PaddingSpec) -> Option<usize> {
    match padding {
        PaddingSpec::Valid => Some(0),
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false) => {
            let p = *before.first()?;
            (before.iter().chain(after).all(|&v| v == p) && before.len() == 2 && after.len() == 2)
                .then_some(p)
        }
        _ => None,
    }
}

/// A convolution node without quantization or groups, channel-first, its
/// kernel `OIHW`, dilation 1, with its bias as a third input: what the
/// project's ungrouped convolutions take (each checks its own geometry).
fn plain_conv(node: &TypedNode, conv: &Conv) -> bool {
    let spec = &conv.pool_spec;
    conv.q_params.is_none()
        && conv.group == 1
        && conv.kernel_fmt == KernelFormat::OIHW
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && spec
            .dilations
            .as_ref()
            .is_none_or(|d| d.iter().all(|&s| s == 1))
        && node.inputs.len() == 3
}

/// What the project's `DirectConv` runs for a float, channel-first,
/// square, dilation 1, ungrouped convolution with constant kernel and
/// bias, and its weights (kernel as `[O, C * size * size]`): stride 2 over
/// at most [`STEM_MAX_CHANNELS`] input channels (a side up to
/// `stem::MAX_SIZE`, any padding smaller than it); 3x3 stride 1 with
/// padding 1 over an image at least 2 wide by Winograd's F(2x2, 3x3) when
/// its channels suit it, else over one at least [`CONV3X3_MIN_WIDTH`] wide;
/// `None` for any other convolution.
fn direct_weights(
    model: &TypedModel,
    id: usize,
    conv: &Conv,
) -> TractResult<Option<(Direct, ConvWeights)>> {
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    let node = model.node(id);
    let strides = spec.strides.as_ref().map_or(&[1, 1][..], |s| s.as_slice());
    let &[size, side] = spec.kernel_shape.as_slice() else {
        return Ok(None);
    };
    let Some(padding) = uniform_padding(&spec.padding) else {
        return Ok(None);
    };
    let width = model
        .outlet_fact(node.inputs[0])?
        .shape
        .as_concrete()
        .and_then(|shape| shape.last().copied())
        .unwrap_or(0);
    let direct = match strides {
        [2, 2]
            if channels <= STEM_MAX_CHANNELS
                && (1..=stem::MAX_SIZE).contains(&size)
                && padding < size =>
        {
            Direct::Stride2 { size, padding }
        }
        [1, 1]
            if size == 3
                && padding == 1
                && width >= 2
                && channels.is_multiple_of(winograd::CHANNEL_LANES)
                && spec.output_channels.is_multiple_of(winograd::BLOCK) =>
        {
            Direct::Winograd
        }
        [1, 1] if size == 3 && padding == 1 && width >= CONV3X3_MIN_WIDTH => Direct::Stride1,
        &[stride, across]
            if stride == across
                && matches!(stride, 1 | 2)
                && size == 3
                && padding <= 1
                && width > 0
                && channels >= DEEP_MIN_CHANNELS
                && spec.output_channels.is_multiple_of(8)
                && deep3x3::output_size([width, width], stride, padding)[1]
                    .is_multiple_of(deep3x3::POSITIONS) =>
        {
            Direct::Deep { stride, padding }
        }
        _ => return Ok(None),
    };
    if side != size || channels == 0 || spec.output_channels == 0 || !plain_conv(node, conv) {
        return Ok(None);
    }
    Ok(
        constant_weights(model, node, spec.output_channels, channels * size * size)?
            .map(|weights| (direct, weights)),
    )
}

/// A float, channel-first, ungrouped convolution with constant kernel and
/// bias over a 1x1 image, whose padding leaves only its kernel's centre on
/// the image (a square side of `2p + 1`, padding `p`, any stride, dilation
/// 1): a 1x1 convolution by the centre taps. (The recognizer's last 3x3
/// convolution runs over a 1x1 map: tract padded it and multiplied all nine
/// taps' weights, eight of them by zeros.)
fn centre_tap_weights(
    model: &TypedModel,
    id: usize,
    conv: &Conv,
) -> TractResult<Option<PointwiseWeights>> {
    let spec = &conv.pool_spec;
    let node = model.node(id);
    let (&[size, side], Some(padding)) =
        (spec.kernel_shape.as_slice(), uniform_padding(&spec.padding))
    else {
        return Ok(None);
    };
    let x_shape = model
        .outlet_fact(node.inputs[0])?
        .shape
        .as_concrete()
        .map(TVec::from);
    let out_shape = model
        .outlet_fact(OutletId::new(id, 0))?
        .shape
        .as_concrete()
        .map(TVec::from);
    let (Some(x_shape), Some(out_shape)) = (x_shape, out_shape) else {
        return Ok(None);
    };
    let rank = x_shape.len();
    let (inputs, outputs) = (spec.input_channels, spec.output_channels);
    if side != size
        || size != 2 * padding + 1
        || rank < 3
        || x_shape[rank - 2..] != [1, 1]
        || x_shape[rank - 3] != inputs
        || inputs * outputs == 0
        || !plain_conv(node, conv)
    {
        return Ok(None);
    }
    let taps = size * size;
    let Some(weights) = constant_weights(model, node, outputs, inputs * taps)? else {
        return Ok(None);
    };
    let kernel = weights.kernel_values()?;
    let centre: Vec<f32> = kernel
        .chunks_exact(taps)
        .map(|channel_taps| channel_taps[taps / 2])
        .collect();
    Ok(Some(PointwiseWeights {
        weights: tensor1(&centre).into_shape(&[outputs, inputs])?,
        bias: weights.bias,
        channel_axis: rank - 3,
        output_shape: out_shape,
        replaces: id,
    }))
}

struct PointwiseWeights {
    /// `[O, C]`.
    weights: Tensor,
    /// `[O]`: the constant added right after, or zeros.
    bias: Tensor,
    channel_axis: usize,
    output_shape: TVec<usize>,
    /// The node whose output the op's replaces: the einsum, or the bias
    /// addition after it.
    replaces: usize,
}

/// A float einsum that is a 1x1 convolution: the image and the output have
/// the same axes but one, the image's channel `c` where the output has `o`,
/// and a constant `[o, c]` or `[c, o]` weight matrix. A constant added right
/// after along `o` becomes the bias.
fn pointwise_weights(
    model: &TypedModel,
    id: usize,
    einsum: &EinSum,
) -> TractResult<Option<PointwiseWeights>> {
    let node = model.node(id);
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let (inputs, outputs) = einsum.axes.to_strs();
    let [image, weight] = &inputs[..] else {
        return Ok(None);
    };
    let [output] = &outputs[..] else {
        return Ok(None);
    };
    let (image, weight, output): (Vec<char>, Vec<char>, Vec<char>) = (
        image.chars().collect(),
        weight.chars().collect(),
        output.chars().collect(),
    );
    let x = model.outlet_fact(node.inputs[0])?;
    let w = model.outlet_fact(node.inputs[1])?;
    let out = model.outlet_fact(OutletId::new(id, 0))?;
    let (Some(x_shape), Some(out_shape), Some(w)) = (
        x.shape.as_concrete(),
        out.shape.as_concrete(),
        w.konst.as_ref(),
    ) else {
        return Ok(None);
    };
    if x.datum_type != f32::datum_type()
        || w.datum_type() != f32::datum_type()
        || w.rank() != 2
        || weight.len() != 2
        || x_shape.len() != image.len()
        || out_shape.len() != output.len()
    {
        return Ok(None);
    }
    // Axes only the image or only the output has (an image index of size
    // 1) change nothing in memory: compare the others.
    let kept = |axes: &[char], shape: &[usize], other: &[char]| {
        let kept: Vec<(usize, char)> = axes
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, a)| other.contains(a) || weight.contains(a))
            .collect();
        let dropped_are_unit = axes
            .iter()
            .enumerate()
            .all(|(i, a)| other.contains(a) || weight.contains(a) || shape[i] == 1);
        dropped_are_unit.then_some(kept)
    };
    let (Some(image), Some(output)) = (
        kept(&image, x_shape, &output),
        kept(&output, out_shape, &image),
    ) else {
        return Ok(None);
    };
    if image.len() != output.len() {
        return Ok(None);
    }
    let differing: Vec<usize> = (0..image.len())
        .filter(|&i| image[i].1 != output[i].1)
        .collect();
    let [k] = differing[..] else {
        return Ok(None);
    };
    let ((channel_axis, c), (out_channel_axis, o)) = (image[k], output[k]);
    if output.iter().any(|a| a.1 == c) || image.iter().any(|a| a.1 == o) {
        return Ok(None);
    }
    let transposed = if weight == [o, c] {
        false
    } else if weight == [c, o] {
        true
    } else {
        return Ok(None);
    };
    let weights = if transposed {
        w.clone().into_tensor().permute_axes(&[1, 0])?
    } else {
        w.clone().into_tensor()
    };
    with_bias(
        model,
        id,
        weights,
        [channel_axis, out_channel_axis],
        out_shape,
    )
}

/// The 1x1 convolution einsum `id` with `[O, C]` `weights`, the image's
/// channel at `channel_axis` and the output's at `out_channel_axis` of its
/// `out_shape`: with the constant added
/// right after along that axis as its bias (and that addition replaced
/// too), or zeros.
fn with_bias(
    model: &TypedModel,
    id: usize,
    weights: Tensor,
    [channel_axis, out_channel_axis]: [usize; 2],
    out_shape: &[usize],
) -> TractResult<Option<PointwiseWeights>> {
    let out_channels = weights.shape()[0];
    let (bias, replaces) = match bias_after(model, id, out_channel_axis, out_channels)? {
        Some((bias, add)) => (bias, add),
        None => (
            Tensor::from(tract_ndarray::Array1::from_elem(out_channels, 0.0f32)),
            id,
        ),
    };
    Ok(Some(PointwiseWeights {
        weights,
        bias,
        channel_axis,
        output_shape: out_shape.into(),
        replaces,
    }))
}

/// The `[O]` constant that the only reader of node `id`'s output adds to
/// it along `channel_axis`, and that reader's id.
fn bias_after(
    model: &TypedModel,
    id: usize,
    channel_axis: usize,
    channels: usize,
) -> TractResult<Option<(Tensor, usize)>> {
    let Some((next, other)) = sole_binary_reader(model, id)? else {
        return Ok(None);
    };
    if !model
        .node(next)
        .op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<Add>())
    {
        return Ok(None);
    }
    let fact = model.outlet_fact(OutletId::new(id, 0))?;
    let Some(konst) = other.konst.as_ref() else {
        return Ok(None);
    };
    let along_channels = konst.rank() == fact.rank()
        && konst
            .shape()
            .iter()
            .enumerate()
            .all(|(axis, &d)| d == if axis == channel_axis { channels } else { 1 });
    if !along_channels || konst.datum_type() != f32::datum_type() {
        return Ok(None);
    }
    Ok(Some((
        konst.clone().into_tensor().into_shape(&[channels])?,
        next,
    )))
}

/// The binary node that is the only reader of node `id`'s output (which is
/// not a model output), and the fact of that node's other input, when the
/// node's output has the same shape as `id`'s.
fn sole_binary_reader(model: &TypedModel, id: usize) -> TractResult<Option<(usize, TypedFact)>> {
    let outlet = OutletId::new(id, 0);
    let Some(next) = sole_reader(model, id)? else {
        return Ok(None);
    };
    let next = model.node(next);
    if next.inputs.len() != 2 || !next.op_is::<TypedBinOp>() {
        return Ok(None);
    }
    let Some(&other) = next.inputs.iter().find(|&&i| i != outlet) else {
        return Ok(None);
    };
    let same_shape =
        model.outlet_fact(OutletId::new(next.id, 0))?.shape == model.outlet_fact(outlet)?.shape;
    if !same_shape {
        return Ok(None);
    }
    Ok(Some((next.id, model.outlet_fact(other)?.clone())))
}

/// The node computing `max(x, 0)` on node `id`'s output when it is that
/// output's only reader, so the ReLU can be folded into the convolution.
fn relu_after(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let Some((next, other)) = sole_binary_reader(model, id)? else {
        return Ok(None);
    };
    let is_max = model
        .node(next)
        .op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<Max>());
    Ok((is_max && is_zero_scalar(&other)).then_some(next))
}

/// The input of the `max(x, 0)` node whose output is node `id`'s image and
/// read by nothing else, so the ReLU can be folded into `id`'s reading.
fn relu_before(model: &TypedModel, id: usize) -> TractResult<Option<OutletId>> {
    let image = model.node(id).inputs[0];
    let relu = model.node(image.node);
    let is_max = relu.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Max>());
    if !is_max || relu.inputs.len() != 2 || sole_reader(model, relu.id)? != Some(id) {
        return Ok(None);
    }
    let image_fact = model.outlet_fact(image)?;
    for (x, zero) in [(0, 1), (1, 0)] {
        let (x, zero) = (relu.inputs[x], model.outlet_fact(relu.inputs[zero])?);
        if is_zero_scalar(zero) && model.outlet_fact(x)?.shape == image_fact.shape {
            return Ok(Some(x));
        }
    }
    Ok(None)
}

/// A constant single 0.0 (the other side of a ReLU's `max`).
fn is_zero_scalar(fact: &TypedFact) -> bool {
    fact.konst.as_ref().is_some_and(|k| {
        k.len() == 1 && k.datum_type() == f32::datum_type() && floats(k).is_ok_and(|s| s[0] == 0.0)
    })
}

/// The window's side of a float, channel-first, unpadded max pooling of
/// stride 2 and a 2x2 or 3x3 window (floor rounding, no index output) over
/// a concrete input; `None` for any other pooling.
fn max_pool_stride_2(model: &TypedModel, id: usize, pool: &MaxPool) -> TractResult<Option<usize>> {
    let spec = &pool.pool_spec;
    let unpadded = uniform_padding(&spec.padding) == Some(0);
    let input = model.outlet_fact(model.node(id).inputs[0])?;
    let eligible = pool.with_index_outputs.is_none()
        && spec
            .strides
            .as_ref()
            .is_some_and(|s| s.as_slice() == [2, 2])
        && spec
            .dilations
            .as_ref()
            .is_none_or(|d| d.iter().all(|&s| s == 1))
        && unpadded
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && input.datum_type == f32::datum_type()
        && input.shape.as_concrete().is_some_and(|s| s.len() >= 3);
    Ok(match spec.kernel_shape.as_slice() {
        [2, 2] if eligible => Some(2),
        [3, 3] if eligible => Some(3),
        _ => None,
    })
}
