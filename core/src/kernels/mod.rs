//! Project-owned tract ops for the detector's hot spots, swapped into a
//! model between tract's declutter and codegen passes.
//!
//! Why: tract 0.23.9 has vectorized depthwise kernels only for arm64 and
//! wasm; on x86-64 YuNet's channel-first 3x3 depthwise convolutions run its
//! scalar zone walk, and its 2x2 max pooling a generic one. Profiled at
//! 640x480 these were about a third and a sixth of YuNet's time. The ops
//! here do the same arithmetic with 8-lane SIMD (`wide`, safe Rust, AVX2+FMA
//! under the workspace's x86-64-v3, NEON on arm64) and fold the ReLU that
//! follows each depthwise convolution into it. Results match the stock ops
//! within float rounding (the order of the additions differs); tests hold
//! them to tract's own ops on real images.
//!
//! Only shapes the ops implement are swapped; everything else stays tract's.

mod depthwise;
mod maxpool;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::math::Max;
use tract_onnx::tract_core::ops::nn::DataFormat;

use depthwise::Depthwise3x3;
use maxpool::MaxPool2x2;

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

/// What [`swap_in`] replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Swapped {
    pub(crate) depthwise: usize,
    pub(crate) relu_folded: usize,
    pub(crate) max_pool: usize,
}

/// Replaces every eligible node of a decluttered model by the project's op.
pub(crate) fn swap_in(model: &mut TypedModel) -> TractResult<Swapped> {
    let mut swapped = Swapped::default();
    for id in model.eval_order()? {
        if let Some(conv) = model.node(id).op_as::<Conv>()
            && let Some(weights) = depthwise_weights(model, id, conv)?
        {
            let relu = relu_after(model, id)?;
            let node = model.node(id);
            let name = node.name.clone();
            let mut patch = TypedModelPatch::new(format!("project depthwise {name}"));
            let x = patch.tap_model(model, node.inputs[0])?;
            let kernel = patch.add_const(format!("{name}.kernel_c9"), weights.kernel)?;
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
            swapped.depthwise += 1;
            swapped.relu_folded += usize::from(relu.is_some());
        } else if let Some(pool) = model.node(id).op_as::<MaxPool>()
            && is_max_pool_2x2(model, id, pool)?
        {
            let node = model.node(id);
            let name = node.name.clone();
            let mut patch = TypedModelPatch::new(format!("project max pool {name}"));
            let x = patch.tap_model(model, node.inputs[0])?;
            let out = patch.wire_node(format!("{name}.project"), MaxPool2x2, &[x])?[0];
            patch.shunt_outside(model, OutletId::new(id, 0), out)?;
            patch.apply(model)?;
            swapped.max_pool += 1;
        }
    }
    model.compact()?;
    Ok(swapped)
}

struct DepthwiseWeights {
    /// `[C, 9]`: each channel's taps, row-major.
    kernel: Tensor,
    /// `[C]`.
    bias: Tensor,
}

/// The weights of a float, channel-first, 3x3, stride 1, dilation 1,
/// padding 1 depthwise convolution with constant kernel and bias; `None`
/// for any other convolution.
fn depthwise_weights(
    model: &TypedModel,
    id: usize,
    conv: &Conv,
) -> TractResult<Option<DepthwiseWeights>> {
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&s| s == 1));
    let pad_one = match &spec.padding {
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false) => {
            before.as_slice() == [1, 1] && after.as_slice() == [1, 1]
        }
        _ => false,
    };
    let node = model.node(id);
    if conv.q_params.is_some()
        || conv.group != channels
        || spec.output_channels != channels
        || channels == 0
        || spec.kernel_shape.as_slice() != [3, 3]
        || conv.kernel_fmt != KernelFormat::OIHW
        || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        || !ones(&spec.strides)
        || !ones(&spec.dilations)
        || !pad_one
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let kernel = model.outlet_fact(node.inputs[1])?;
    let bias = model.outlet_fact(node.inputs[2])?;
    let (Some(kernel), Some(bias)) = (kernel.konst.as_ref(), bias.konst.as_ref()) else {
        return Ok(None);
    };
    if input.datum_type != f32::datum_type()
        || input.shape.as_concrete().is_none()
        || kernel.datum_type() != f32::datum_type()
        || kernel.len() != channels * 9
        || bias.datum_type() != f32::datum_type()
        || !(bias.len() == channels || bias.len() == 1)
    {
        return Ok(None);
    }
    let kernel = kernel.clone().into_tensor().into_shape(&[channels, 9])?;
    let bias = if bias.len() == channels {
        bias.clone().into_tensor().into_shape(&[channels])?
    } else {
        let value = bias.try_as_plain_ram()?.as_slice::<f32>()?[0];
        Tensor::from(tract_ndarray::Array1::from_elem(channels, value))
    };
    Ok(Some(DepthwiseWeights { kernel, bias }))
}

/// The node computing `max(x, 0)` on node `id`'s output when it is that
/// output's only reader, so the ReLU can be folded into the convolution.
fn relu_after(model: &TypedModel, id: usize) -> TractResult<Option<usize>> {
    let node = model.node(id);
    let outlet = OutletId::new(id, 0);
    if node.outputs.len() != 1
        || node.outputs[0].successors.len() != 1
        || model.output_outlets()?.contains(&outlet)
    {
        return Ok(None);
    }
    let next = model.node(node.outputs[0].successors[0].node);
    let Some(bin) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    if !bin.0.is::<Max>() || next.inputs.len() != 2 {
        return Ok(None);
    }
    let Some(&other) = next.inputs.iter().find(|&&i| i != outlet) else {
        return Ok(None);
    };
    let other = model.outlet_fact(other)?;
    let fact = model.outlet_fact(outlet)?;
    let zero_scalar = other.konst.as_ref().is_some_and(|k| {
        k.len() == 1
            && k.datum_type() == f32::datum_type()
            && k.try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .is_ok_and(|s| s[0] == 0.0)
    });
    // The other input must broadcast without changing the shape.
    let same_shape = model.outlet_fact(OutletId::new(next.id, 0))?.shape == fact.shape;
    Ok((zero_scalar && same_shape).then_some(next.id))
}

/// Whether the node is a float, channel-first, 2x2, stride 2, unpadded max
/// pooling without index output.
fn is_max_pool_2x2(model: &TypedModel, id: usize, pool: &MaxPool) -> TractResult<bool> {
    let spec = &pool.pool_spec;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after)
        | PaddingSpec::ExplicitOnnxPool(before, after, false) => {
            before.iter().chain(after).all(|&p| p == 0)
        }
        _ => false,
    };
    let input = model.outlet_fact(model.node(id).inputs[0])?;
    Ok(pool.with_index_outputs.is_none()
        && spec.kernel_shape.as_slice() == [2, 2]
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
        && input.shape.as_concrete().is_some_and(|s| s.len() >= 3))
}
