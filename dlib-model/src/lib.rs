//! Converts dlib's face recognition ResNet
//! (`dlib_face_recognition_resnet_model_v1.dat`, dlib's own binary
//! serialization of the `anet_type` network of
//! `examples/dnn_face_recognition_ex.cpp`) into models tract loads: ONNX bytes
//! and an NNEF tar.
//!
//! The converted model takes `input`, float32 `[N, 3, 150, 150]`, RGB, raw
//! 0..255, and returns `descriptor`, float32 `[N, 128]` (not normalized), as
//! the hand-converted reference ONNX does. Batch-norm affines are folded into
//! the convolutions and the input normalization into the first convolution.
//!
//! The library does no I/O: bytes in, bytes out.
//!
//! ```no_run
//! # fn main() -> Result<(), dlib_model::Error> {
//! let dat: Vec<u8> = Vec::new(); // the .dat file's bytes
//! let model = dlib_model::convert(&dat)?;
//! let nnef_tar: Vec<u8> = model.to_nnef_tar()?;
//! let onnx: Vec<u8> = model.to_onnx_bytes();
//! # Ok(()) }
//! ```

mod error;
mod layers;
mod network;
mod onnx;
mod ser;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

pub use error::{Error, Result};
pub use layers::{Affine, AffineMode, Conv, Fc, InputRgb, Layer, LossMetric, Pool};
pub use network::{DlibNet, parse_face_recognition_net};
pub use onnx::{BATCH_SYMBOL, INPUT_NAME, OUTPUT_NAME};

/// sha256 of the upstream `dlib_face_recognition_resnet_model_v1.dat`.
pub const DAT_SHA256: &str = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30";
/// Size in bytes of the upstream `dlib_face_recognition_resnet_model_v1.dat`.
pub const DAT_LEN: u64 = 22_466_066;

/// Parses `dlib_face_recognition_resnet_model_v1.dat` and converts it.
pub fn convert(dat: &[u8]) -> Result<ConvertedModel> {
    let net = parse_face_recognition_net(dat)?;
    ConvertedModel::from_net(net)
}

/// The converted recognizer.
#[derive(Clone)]
pub struct ConvertedModel {
    net: DlibNet,
    proto: pb::ModelProto,
}

impl std::fmt::Debug for ConvertedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvertedModel")
            .field("input", &self.net.input)
            .field("layers", &self.net.layers.len())
            .field("parameters", &self.net.num_parameters())
            .field(
                "onnx_nodes",
                &self.proto.graph.as_ref().map_or(0, |g| g.node.len()),
            )
            .finish()
    }
}

impl ConvertedModel {
    /// Converts an already parsed network.
    pub fn from_net(net: DlibNet) -> Result<Self> {
        let proto = onnx::build(&net)?;
        Ok(Self { net, proto })
    }

    /// The network as read from the `.dat`.
    pub fn net(&self) -> &DlibNet {
        &self.net
    }

    /// The ONNX model (opset 13), batch dimension symbolic (`N`).
    pub fn onnx_proto(&self) -> &pb::ModelProto {
        &self.proto
    }

    /// The ONNX model as protobuf bytes.
    pub fn to_onnx_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }

    /// The model as a decluttered tract `TypedModel` with a symbolic batch
    /// dimension `N` (see [`BATCH_SYMBOL`]).
    pub fn to_typed_model(&self) -> Result<TypedModel> {
        tract_onnx::onnx()
            .model_for_proto_model(&self.proto)
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .map_err(Error::tract)
    }

    /// The model as a decluttered tract `TypedModel` for a fixed batch size.
    pub fn to_typed_model_with_batch(&self, batch: usize) -> Result<TypedModel> {
        let model = self.to_typed_model()?;
        let batch =
            TDim::Val(i64::try_from(batch).map_err(|_| Error::Network(format!("batch {batch}")))?);
        let subs = std::collections::HashMap::from([(model.symbols.sym(BATCH_SYMBOL), batch)]);
        model
            .set_symbols(&subs)
            .and_then(|m| m.into_decluttered())
            .map_err(Error::tract)
    }

    /// The model as an (uncompressed, deterministic) NNEF tar with a symbolic
    /// batch dimension. Load it with
    /// `tract_nnef::nnef().model_for_read(&mut bytes.as_slice())`.
    pub fn to_nnef_tar(&self) -> Result<Vec<u8>> {
        write_nnef(&self.to_typed_model()?)
    }

    /// The model as an NNEF tar for a fixed batch size.
    pub fn to_nnef_tar_with_batch(&self, batch: usize) -> Result<Vec<u8>> {
        write_nnef(&self.to_typed_model_with_batch(batch)?)
    }
}

fn write_nnef(model: &TypedModel) -> Result<Vec<u8>> {
    tract_nnef::nnef()
        .write_to_tar_with_config(model, Vec::new(), false, true)
        .map_err(Error::tract)
}
