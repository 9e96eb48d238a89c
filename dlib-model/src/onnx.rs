//! Writes a [`DlibNet`] as an ONNX (opset 13) graph, with the same folding as
//! the hand-converted reference model:
//!
//! * the input normalization `(x - avg) / 256` is folded into the first
//!   convolution (exact because that convolution has no padding; otherwise
//!   explicit `Sub`/`Mul` nodes are written);
//! * each conv-mode affine that directly follows a convolution is folded
//!   into that convolution's weights and bias;
//! * `add_prev` zero-pads the smaller operand at the end of the channel axis
//!   and at the bottom/right of the spatial axes (`Pad` nodes);
//! * `fc_no_bias` becomes `Flatten` + `MatMul`.
//!
//! The folding arithmetic is done in f64 and rounded once to f32.

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::{Error, Result};
use crate::layers::{Affine, AffineMode, Conv, Fc, Layer, Pool};
use crate::network::DlibNet;

/// Name of the model's input: float32 `[N, 3, 150, 150]`, RGB, raw 0..255.
pub const INPUT_NAME: &str = "input";
/// Name of the model's output: float32 `[N, 128]`.
pub const OUTPUT_NAME: &str = "descriptor";
/// Name of the symbolic batch dimension.
pub const BATCH_SYMBOL: &str = "N";

const OPSET: i64 = 13;

/// A value of the graph: its name and per-sample shape.
#[derive(Debug, Clone)]
struct Val {
    name: String,
    /// `[k, nr, nc]`, or `[features, 1, 1]` once flattened.
    shape: [usize; 3],
    flat: bool,
}

#[derive(Debug, Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    counter: usize,
}

fn attr_ints(name: &str, ints: &[usize]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.iter().map(|&i| i as i64).collect(),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

impl Graph {
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    fn constant_f32(&mut self, prefix: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(prefix);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn constant_i64(&mut self, prefix: &str, data: &[i64]) -> String {
        let name = self.fresh(prefix);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<pb::AttributeProto>) -> String {
        let name = self.fresh(&op.to_lowercase());
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute: attributes,
            ..Default::default()
        });
        name
    }
}

fn conv_out(input: usize, window: usize, stride: usize, pad: usize) -> Result<usize> {
    let padded = input + 2 * pad;
    if padded < window || stride == 0 {
        return Err(Error::Network(format!(
            "window {window} (stride {stride}, padding {pad}) does not fit an input of {input}"
        )));
    }
    Ok((padded - window) / stride + 1)
}

fn spatial(v: &Val, what: &str) -> Result<()> {
    if v.flat {
        Err(Error::Network(format!(
            "{what} after a fully connected layer"
        )))
    } else {
        Ok(())
    }
}

/// Folds the input normalization (if `norm` is given) and a following
/// conv-mode affine (if any) into `conv`; returns f32 weights and bias.
fn fold_conv(conv: &Conv, norm: Option<[f32; 3]>, affine: Option<&Affine>) -> (Vec<f32>, Vec<f32>) {
    let per_filter = conv.in_channels * conv.nr * conv.nc;
    let plane = conv.nr * conv.nc;
    let mut weights: Vec<f64> = conv.weights.iter().map(|&w| f64::from(w)).collect();
    let mut bias: Vec<f64> = match &conv.bias {
        Some(b) => b.iter().map(|&b| f64::from(b)).collect(),
        None => vec![0.0; conv.num_filters],
    };
    if let Some(avg) = norm {
        // conv(W, (x - avg) / 256) + b = conv(W / 256, x) + b - sum(W * avg) / 256
        for (o, b) in bias.iter_mut().enumerate() {
            let filter = &weights[o * per_filter..(o + 1) * per_filter];
            let shift: f64 = filter
                .chunks_exact(plane)
                .zip(avg)
                .map(|(w, a)| w.iter().sum::<f64>() * f64::from(a))
                .sum();
            *b -= shift / 256.0;
        }
        weights.iter_mut().for_each(|w| *w /= 256.0);
    }
    if let Some(a) = affine {
        for (o, b) in bias.iter_mut().enumerate() {
            let g = f64::from(a.gamma[o]);
            weights[o * per_filter..(o + 1) * per_filter]
                .iter_mut()
                .for_each(|w| *w *= g);
            *b = *b * g + f64::from(a.beta[o]);
        }
    }
    (
        weights.into_iter().map(|w| w as f32).collect(),
        bias.into_iter().map(|b| b as f32).collect(),
    )
}

fn affine_fits(a: &Affine, v: &Val) -> bool {
    let [k, nr, nc] = v.shape;
    match a.mode {
        AffineMode::Conv => a.gamma.len() == k && a.beta.len() == k,
        AffineMode::Fc => a.gamma.len() == k * nr * nc && a.beta.len() == k * nr * nc,
    }
}

fn emit_conv(
    g: &mut Graph,
    cur: &Val,
    conv: &Conv,
    norm: Option<[f32; 3]>,
    affine: Option<&Affine>,
) -> Result<Val> {
    spatial(cur, "convolution")?;
    let [k, nr, nc] = cur.shape;
    if conv.in_channels != k {
        return Err(Error::Network(format!(
            "convolution expects {} input channels, gets {k}",
            conv.in_channels
        )));
    }
    let out = [
        conv.num_filters,
        conv_out(nr, conv.nr, conv.stride_y, conv.padding_y)?,
        conv_out(nc, conv.nc, conv.stride_x, conv.padding_x)?,
    ];
    let (weights, bias) = fold_conv(conv, norm, affine);
    let w = g.constant_f32(
        "conv_weight",
        &[conv.num_filters, conv.in_channels, conv.nr, conv.nc],
        &weights,
    );
    let b = g.constant_f32("conv_bias", &[conv.num_filters], &bias);
    let name = g.node(
        "Conv",
        &[&cur.name, &w, &b],
        vec![
            attr_ints("kernel_shape", &[conv.nr, conv.nc]),
            attr_ints("strides", &[conv.stride_y, conv.stride_x]),
            attr_ints(
                "pads",
                &[
                    conv.padding_y,
                    conv.padding_x,
                    conv.padding_y,
                    conv.padding_x,
                ],
            ),
            attr_ints("dilations", &[1, 1]),
            attr_int("group", 1),
        ],
    );
    Ok(Val {
        name,
        shape: out,
        flat: false,
    })
}

fn emit_affine(g: &mut Graph, cur: &Val, a: &Affine) -> Result<Val> {
    if !affine_fits(a, cur) {
        return Err(Error::Network(format!(
            "affine with {} parameters on a {:?} input",
            a.gamma.len(),
            cur.shape
        )));
    }
    let [k, nr, nc] = cur.shape;
    let dims: Vec<usize> = match (a.mode, cur.flat) {
        (AffineMode::Conv, false) => vec![1, k, 1, 1],
        (AffineMode::Fc, false) => vec![1, k, nr, nc],
        (_, true) => vec![1, k],
    };
    let gamma = g.constant_f32("affine_gamma", &dims, &a.gamma);
    let beta = g.constant_f32("affine_beta", &dims, &a.beta);
    let scaled = g.node("Mul", &[&cur.name, &gamma], vec![]);
    let name = g.node("Add", &[&scaled, &beta], vec![]);
    Ok(Val {
        name,
        ..cur.clone()
    })
}

fn emit_pool(g: &mut Graph, cur: &Val, p: &Pool, max: bool) -> Result<Val> {
    spatial(cur, "pooling")?;
    let [k, nr, nc] = cur.shape;
    if p.is_global() {
        let op = if max {
            "GlobalMaxPool"
        } else {
            "GlobalAveragePool"
        };
        let name = g.node(op, &[&cur.name], vec![]);
        return Ok(Val {
            name,
            shape: [k, 1, 1],
            flat: false,
        });
    }
    // A zero window on one axis only means "the whole axis" in dlib.
    let (wy, wx) = (
        if p.nr == 0 { nr } else { p.nr },
        if p.nc == 0 { nc } else { p.nc },
    );
    let out = [
        k,
        conv_out(nr, wy, p.stride_y, p.padding_y)?,
        conv_out(nc, wx, p.stride_x, p.padding_x)?,
    ];
    let mut attributes = vec![
        attr_ints("kernel_shape", &[wy, wx]),
        attr_ints("strides", &[p.stride_y, p.stride_x]),
        attr_ints(
            "pads",
            &[p.padding_y, p.padding_x, p.padding_y, p.padding_x],
        ),
    ];
    if !max {
        // dlib (cuDNN and CPU) averages over the valid part of the window.
        attributes.push(attr_int("count_include_pad", 0));
    }
    let name = g.node(
        if max { "MaxPool" } else { "AveragePool" },
        &[&cur.name],
        attributes,
    );
    Ok(Val {
        name,
        shape: out,
        flat: false,
    })
}

/// Zero-pads `v` at the end of each axis up to `target`.
fn pad_to(g: &mut Graph, v: &Val, target: [usize; 3]) -> String {
    if v.shape == target {
        return v.name.clone();
    }
    let end: Vec<i64> = v
        .shape
        .iter()
        .zip(target)
        .map(|(&s, t)| (t - s) as i64)
        .collect();
    // ONNX pads: [begin of each axis..., end of each axis...] for N, C, H, W.
    let pads = g.constant_i64("pads", &[0, 0, 0, 0, 0, end[0], end[1], end[2]]);
    g.node("Pad", &[&v.name, &pads], vec![])
}

fn emit_add_prev(g: &mut Graph, cur: &Val, other: &Val) -> Result<Val> {
    if cur.flat != other.flat {
        return Err(Error::Network(
            "add_prev between flat and spatial outputs".into(),
        ));
    }
    let target = [0, 1, 2].map(|i| cur.shape[i].max(other.shape[i]));
    let a = pad_to(g, cur, target);
    let b = pad_to(g, other, target);
    let name = g.node("Add", &[&a, &b], vec![]);
    Ok(Val {
        name,
        shape: target,
        flat: cur.flat,
    })
}

fn emit_fc(g: &mut Graph, cur: &Val, fc: &Fc) -> Result<Val> {
    let features = cur.shape.iter().product::<usize>();
    if features != fc.num_inputs {
        return Err(Error::Network(format!(
            "fc expects {} inputs, gets {:?}",
            fc.num_inputs, cur.shape
        )));
    }
    let flat = if cur.flat {
        cur.name.clone()
    } else {
        g.node("Flatten", &[&cur.name], vec![attr_int("axis", 1)])
    };
    let w = g.constant_f32("fc_weight", &[fc.num_inputs, fc.num_outputs], &fc.weights);
    let mut name = g.node("MatMul", &[&flat, &w], vec![]);
    if let Some(bias) = &fc.bias {
        let b = g.constant_f32("fc_bias", &[fc.num_outputs], bias);
        name = g.node("Add", &[&name, &b], vec![]);
    }
    Ok(Val {
        name,
        shape: [fc.num_outputs, 1, 1],
        flat: true,
    })
}

fn tensor_type(dims: &[Option<usize>]) -> Option<pb::TypeProto> {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v as i64),
                None => Value::DimParam(BATCH_SYMBOL.into()),
            }),
            ..Default::default()
        })
        .collect();
    Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: DataType::Float as i32,
            shape: Some(pb::TensorShapeProto { dim }),
        })),
        ..Default::default()
    })
}

/// Builds the ONNX model of `net`.
pub(crate) fn build(net: &DlibNet) -> Result<pb::ModelProto> {
    let mut g = Graph::default();
    let mut cur = Val {
        name: INPUT_NAME.into(),
        shape: [3, net.input.nr, net.input.nc],
        flat: false,
    };

    // Fold the normalization into the first layer if it is an unpadded conv.
    let fold_norm = matches!(
        net.layers.first(),
        Some(Layer::Conv(c)) if c.padding_y == 0 && c.padding_x == 0
    );
    if !fold_norm {
        let mean = g.constant_f32("input_mean", &[1, 3, 1, 1], &net.input.avg);
        let scale = g.constant_f32("input_scale", &[1], &[1.0 / 256.0]);
        let centred = g.node("Sub", &[&cur.name, &mean], vec![]);
        cur.name = g.node("Mul", &[&centred, &scale], vec![]);
    }

    let mut tags: HashMap<u8, Val> = HashMap::new();
    let mut i = 0;
    while i < net.layers.len() {
        let layer = &net.layers[i];
        let context = |e: Error| Error::Layer {
            index: i,
            layer: layer.describe(),
            source: Box::new(e),
        };
        match layer {
            Layer::Conv(conv) => {
                let norm = (i == 0 && fold_norm).then_some(net.input.avg);
                let affine = match net.layers.get(i + 1) {
                    Some(Layer::Affine(a))
                        if a.mode == AffineMode::Conv
                            && !a.disabled
                            && a.gamma.len() == conv.num_filters
                            && a.beta.len() == conv.num_filters =>
                    {
                        Some(a)
                    }
                    _ => None,
                };
                cur = emit_conv(&mut g, &cur, conv, norm, affine).map_err(context)?;
                if affine.is_some() {
                    i += 1;
                }
            }
            Layer::Affine(a) if a.disabled => {}
            Layer::Affine(a) => cur = emit_affine(&mut g, &cur, a).map_err(context)?,
            Layer::Relu => {
                cur = Val {
                    name: g.node("Relu", &[&cur.name], vec![]),
                    ..cur
                }
            }
            Layer::MaxPool(p) => cur = emit_pool(&mut g, &cur, p, true).map_err(context)?,
            Layer::AvgPool(p) => cur = emit_pool(&mut g, &cur, p, false).map_err(context)?,
            Layer::Tag { id } => {
                tags.insert(*id, cur.clone());
            }
            Layer::Skip { tag } => {
                cur = tags
                    .get(tag)
                    .cloned()
                    .ok_or_else(|| context(Error::Network(format!("no tag{tag} below"))))?;
            }
            Layer::AddPrev { tag } => {
                let other = tags
                    .get(tag)
                    .ok_or_else(|| context(Error::Network(format!("no tag{tag} below"))))?;
                cur = emit_add_prev(&mut g, &cur, other).map_err(context)?;
            }
            Layer::Fc(fc) => cur = emit_fc(&mut g, &cur, fc).map_err(context)?,
        }
        i += 1;
    }

    if !cur.flat {
        return Err(Error::Network(
            "the network does not end with a fully connected layer".into(),
        ));
    }
    // Name the final value.
    let last = g
        .nodes
        .last_mut()
        .filter(|n| n.output.first() == Some(&cur.name))
        .ok_or_else(|| Error::Network("the output is not produced by the last node".into()))?;
    last.output = vec![OUTPUT_NAME.into()];

    let graph = pb::GraphProto {
        name: "dlib_face_recognition_resnet_model_v1".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![pb::ValueInfoProto {
            name: INPUT_NAME.into(),
            r#type: tensor_type(&[None, Some(3), Some(net.input.nr), Some(net.input.nc)]),
            ..Default::default()
        }],
        output: vec![pb::ValueInfoProto {
            name: OUTPUT_NAME.into(),
            r#type: tensor_type(&[None, Some(cur.shape[0])]),
            ..Default::default()
        }],
        doc_string: "Converted from dlib's dlib_face_recognition_resnet_model_v1.dat by the \
                     dlib-model crate. Input: RGB, raw 0..255, NCHW. Output: 128-d descriptor, \
                     not normalized."
            .into(),
        ..Default::default()
    };
    Ok(pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "dlib-model".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        ..Default::default()
    })
}
