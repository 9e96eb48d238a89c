//! The network: dlib's `anet_type` topology and the reader for its
//! serialization (`dlib/dnn/core.h`).
//!
//! dlib does not store a network's topology: the C++ type defines it, and
//! `tag`/`skip`/`add_prev` ids are template arguments that are never
//! written. So the topology is spelled out here as in
//! `examples/dnn_face_recognition_ex.cpp`, and the stream is read against it.
//!
//! A network serializes recursively from its outermost layer:
//! `add_loss_layer` writes its version, the loss details, then its
//! subnetwork; `add_layer` writes its version, its subnetwork, then its
//! layer details and bookkeeping (bools and cached tensors);
//! `add_tag_layer` and `add_skip_layer` write their version and subnetwork
//! only. Hence the stream holds every layer's version first (outermost
//! first), then the input layer, then each layer's details from the bottom
//! up.

use crate::error::{Error, Result};
use crate::layers::{self, InputRgb, Layer, LossMetric};
use crate::ser::Reader;

/// One step of a dlib network definition, in computation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    Con {
        filters: usize,
        size: usize,
        stride: usize,
    },
    Affine,
    Relu,
    MaxPool {
        size: usize,
        stride: usize,
    },
    AvgPool {
        size: usize,
        stride: usize,
    },
    AvgPoolEverything,
    AddPrev(u8),
    Tag(u8),
    Skip(u8),
    FcNoBias(usize),
}

impl Spec {
    fn is_computational(self) -> bool {
        !matches!(self, Spec::Tag(_) | Spec::Skip(_))
    }
}

/// `block<N, affine, stride>`: `affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>`.
fn block(spec: &mut Vec<Spec>, filters: usize, stride: usize) {
    spec.extend([
        Spec::Con {
            filters,
            size: 3,
            stride,
        },
        Spec::Affine,
        Spec::Relu,
        Spec::Con {
            filters,
            size: 3,
            stride: 1,
        },
        Spec::Affine,
    ]);
}

/// `ares<N>`: `relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>`.
fn ares(spec: &mut Vec<Spec>, filters: usize) {
    spec.push(Spec::Tag(1));
    block(spec, filters, 1);
    spec.extend([Spec::AddPrev(1), Spec::Relu]);
}

/// `ares_down<N>`:
/// `relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>`.
fn ares_down(spec: &mut Vec<Spec>, filters: usize) {
    spec.push(Spec::Tag(1));
    block(spec, filters, 2);
    spec.extend([
        Spec::Tag(2),
        Spec::Skip(1),
        Spec::AvgPool { size: 2, stride: 2 },
        Spec::AddPrev(2),
        Spec::Relu,
    ]);
}

/// `anet_type` of `dnn_face_recognition_ex.cpp` between its input
/// (`input_rgb_image_sized<150>`) and its loss (`loss_metric`):
/// `fc_no_bias<128,avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
/// max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,INPUT>>>>>>>>>>>`.
pub(crate) fn anet_spec() -> Vec<Spec> {
    let mut s = vec![
        Spec::Con {
            filters: 32,
            size: 7,
            stride: 2,
        },
        Spec::Affine,
        Spec::Relu,
        Spec::MaxPool { size: 3, stride: 2 },
    ];
    // alevel4 = ares<32,ares<32,ares<32,SUBNET>>>
    (0..3).for_each(|_| ares(&mut s, 32));
    // alevel3 = ares<64,ares<64,ares<64,ares_down<64,SUBNET>>>>
    ares_down(&mut s, 64);
    (0..3).for_each(|_| ares(&mut s, 64));
    // alevel2 = ares<128,ares<128,ares_down<128,SUBNET>>>
    ares_down(&mut s, 128);
    (0..2).for_each(|_| ares(&mut s, 128));
    // alevel1 = ares<256,ares<256,ares_down<256,SUBNET>>>
    ares_down(&mut s, 256);
    (0..2).for_each(|_| ares(&mut s, 256));
    // alevel0 = ares_down<256,SUBNET>
    ares_down(&mut s, 256);
    s.extend([Spec::AvgPoolEverything, Spec::FcNoBias(128)]);
    s
}

/// A dlib network read from its serialized form.
#[derive(Debug, Clone, PartialEq)]
pub struct DlibNet {
    pub input: InputRgb,
    /// Layers in computation order (input side first).
    pub layers: Vec<Layer>,
    pub loss: LossMetric,
}

impl DlibNet {
    /// Number of convolution layers.
    pub fn num_conv_layers(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, Layer::Conv(_)))
            .count()
    }

    /// Number of learned parameters (weights and biases of conv and fc
    /// layers, gamma and beta of affine layers).
    pub fn num_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Conv(c) => c.weights.len() + c.bias.as_ref().map_or(0, Vec::len),
                Layer::Affine(a) => a.gamma.len() + a.beta.len(),
                Layer::Fc(f) => f.weights.len() + f.bias.as_ref().map_or(0, Vec::len),
                _ => 0,
            })
            .sum()
    }
}

/// Reads `dlib_face_recognition_resnet_model_v1.dat` (dlib's `anet_type`).
pub fn parse_face_recognition_net(dat: &[u8]) -> Result<DlibNet> {
    parse_with_spec(dat, &anet_spec())
}

fn layer_error(index: usize, spec: Spec, source: Error) -> Error {
    Error::Layer {
        index,
        layer: format!("{spec:?}"),
        source: Box::new(source),
    }
}

pub(crate) fn parse_with_spec(dat: &[u8], spec: &[Spec]) -> Result<DlibNet> {
    let first_is_computational = spec.first().is_some_and(|s| s.is_computational());
    if !first_is_computational {
        return Err(Error::Network(
            "the layer above the input must be a computational layer".into(),
        ));
    }
    let mut r = Reader::new(dat);

    let not_dnn = |e: Error| Error::NotDnn(Box::new(e));
    let loss_version = r.read_i32("add_loss_layer version").map_err(not_dnn)?;
    if loss_version != 1 {
        return Err(r.malformed(
            "add_loss_layer version",
            format!("{loss_version}, expected 1 (is this a dlib DNN file?)"),
        ));
    }
    let loss = layers::read_loss_metric(&mut r).map_err(not_dnn)?;

    // Versions of the wrappers, outermost first.
    let mut versions = vec![0; spec.len()];
    for (index, &s) in spec.iter().enumerate().rev() {
        let version = r
            .read_i32("layer version")
            .map_err(|e| layer_error(index, s, e))?;
        let accepted = match (s.is_computational(), index) {
            // add_layer directly on the input layer
            (true, 0) => 2..=3,
            // add_layer
            (true, _) => 1..=2,
            // add_tag_layer / add_skip_layer
            (false, _) => 1..=1,
        };
        if !accepted.contains(&version) {
            let e = r.malformed(
                "layer version",
                format!("{version}, expected {accepted:?} for a {s:?} layer"),
            );
            return Err(layer_error(index, s, e));
        }
        versions[index] = version;
    }

    let input = layers::read_input_rgb_sized(&mut r)?;

    let mut out = Vec::with_capacity(spec.len());
    for (index, (&s, &version)) in spec.iter().zip(&versions).enumerate() {
        let layer = read_layer(&mut r, s).map_err(|e| layer_error(index, s, e))?;
        if s.is_computational() {
            read_add_layer_state(&mut r, index == 0, version)
                .map_err(|e| layer_error(index, s, e))?;
        }
        out.push(layer);
    }

    if r.remaining() != 0 {
        return Err(Error::TrailingBytes {
            offset: r.pos(),
            count: r.remaining(),
        });
    }
    Ok(DlibNet {
        input,
        layers: out,
        loss,
    })
}

/// Reads one layer's details and checks them against the definition, as
/// dlib's `deserialize` does for the template parameters.
fn read_layer(r: &mut Reader<'_>, spec: Spec) -> Result<Layer> {
    let check = |ok: bool, r: &Reader<'_>, what: String| {
        if ok {
            Ok(())
        } else {
            Err(r.malformed("layer parameters", what))
        }
    };
    Ok(match spec {
        Spec::Con {
            filters,
            size,
            stride,
        } => {
            let c = layers::read_conv(r)?;
            // dlib's default padding: size/2 for stride 1, else 0.
            let pad = if stride == 1 { size / 2 } else { 0 };
            let expected = (filters, size, size, stride, stride, pad, pad);
            let found = (
                c.num_filters,
                c.nr,
                c.nc,
                c.stride_y,
                c.stride_x,
                c.padding_y,
                c.padding_x,
            );
            check(
                found == expected,
                r,
                format!(
                    "con (filters, nr, nc, stride_y, stride_x, padding_y, padding_x) is \
                     {found:?}, the network definition says {expected:?}"
                ),
            )?;
            Layer::Conv(c)
        }
        Spec::Affine => Layer::Affine(layers::read_affine(r)?),
        Spec::Relu => {
            layers::read_relu(r)?;
            Layer::Relu
        }
        Spec::MaxPool { size, stride } | Spec::AvgPool { size, stride } => {
            let is_max = matches!(spec, Spec::MaxPool { .. });
            let p = layers::read_pool(r, if is_max { "max_pool_2" } else { "avg_pool_2" })?;
            let pad = if stride == 1 { size / 2 } else { 0 };
            let expected = (size, size, stride, stride, pad, pad);
            let found = (p.nr, p.nc, p.stride_y, p.stride_x, p.padding_y, p.padding_x);
            check(
                found == expected,
                r,
                format!("pool is {found:?}, the network definition says {expected:?}"),
            )?;
            if is_max {
                Layer::MaxPool(p)
            } else {
                Layer::AvgPool(p)
            }
        }
        Spec::AvgPoolEverything => {
            let p = layers::read_pool(r, "avg_pool_2")?;
            let found = (p.nr, p.nc, p.stride_y, p.stride_x, p.padding_y, p.padding_x);
            check(
                found == (0, 0, 1, 1, 0, 0),
                r,
                format!("avg_pool_everything is {found:?}"),
            )?;
            Layer::AvgPool(p)
        }
        Spec::AddPrev(tag) => {
            layers::read_add_prev(r)?;
            Layer::AddPrev { tag }
        }
        Spec::Tag(id) => Layer::Tag { id },
        Spec::Skip(tag) => Layer::Skip { tag },
        Spec::FcNoBias(outputs) => {
            let f = layers::read_fc(r, false)?;
            check(
                f.num_outputs == outputs,
                r,
                format!("fc has {} outputs, expected {outputs}", f.num_outputs),
            )?;
            Layer::Fc(f)
        }
    })
}

/// The bookkeeping `add_layer` writes after its details: flags and cached
/// tensors (normally empty in a saved model; read and dropped).
fn read_add_layer_state(r: &mut Reader<'_>, on_input: bool, version: i32) -> Result<()> {
    r.read_bool("this_layer_setup_called")?;
    r.read_bool("gradient_input_is_stale")?;
    r.read_bool("get_output_and_gradient_input_disabled")?;
    r.read_tensor("x_grad")?;
    r.read_tensor("cached_output")?;
    if on_input {
        r.read_tensor("grad_final")?;
        if version >= 3 {
            r.read_u64("_sample_expansion_factor")?;
        }
    } else if version >= 2 {
        r.read_tensor("params_grad")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anet_has_29_convs_and_one_fc() {
        let spec = anet_spec();
        let convs = spec
            .iter()
            .filter(|s| matches!(s, Spec::Con { .. }))
            .count();
        assert_eq!(convs, 29);
        assert_eq!(spec.last(), Some(&Spec::FcNoBias(128)));
    }

    #[test]
    fn rejects_non_dnn_bytes() {
        assert!(parse_face_recognition_net(b"").is_err());
        assert!(parse_face_recognition_net(&[0x01, 0x02, 0x00]).is_err());
        assert!(parse_face_recognition_net(&[0x01, 0x01, 0x01, 0x03, b'a', b'b', b'c']).is_err());
    }
}
