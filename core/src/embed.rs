//! Face embedding with dlib's ResNet (`dlib_face_recognition_resnet_model_v1`)
//! in tract: RGB 150x150 chips in, 128-d descriptors out (not normalized;
//! same person when the L2 distance is under ~0.6).

use tract_onnx::prelude::*;

use crate::align::CHIP_SIZE;
use crate::error::ModelError;
use crate::kernels::Kernels;
use crate::plans::PlanCache;

const MODEL: &str = "dlib ResNet recognizer";

/// Length of a descriptor.
pub const EMBEDDING_DIM: usize = 128;

/// A face descriptor.
pub type Embedding = [f32; EMBEDDING_DIM];

/// Values in one planar RGB chip.
pub const CHIP_VALUES: usize = 3 * CHIP_SIZE * CHIP_SIZE;

/// The recognizer, loaded once and shared between threads (`Arc`).
#[derive(Debug)]
pub struct Embedder {
    plans: PlanCache,
}

impl Embedder {
    pub fn from_onnx_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Ok(Self {
            plans: PlanCache::from_onnx_bytes(MODEL, bytes, Kernels::default())?,
        })
    }

    /// [`Embedder::from_onnx_bytes`] of the bytes `source` returns, on a
    /// thread of its own: returns at once, and every use waits for the
    /// parse. A failure (`source`'s error, the parser's, or its panic) is
    /// every use's [`ModelError::Load`]. For an on-demand cold start, where
    /// reading and parsing the recognizer's 22 MB would otherwise keep a
    /// waiting request from starting ([`crate::FacePipeline::with_embedder`]).
    pub fn load_in_background<F>(source: F) -> Self
    where
        F: FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
    {
        Self {
            plans: PlanCache::load_in_background(MODEL, Kernels::default(), source),
        }
    }

    /// Builds the optimized plan for batches of `batch` chips ahead of use.
    pub fn prepare(&self, batch: usize) -> Result<(), ModelError> {
        self.plans
            .plan([batch.max(1), 3, CHIP_SIZE, CHIP_SIZE])
            .map(|_| ())
    }

    /// [`Embedder::prepare`] on a thread of its own, returning at once;
    /// nothing to do when that plan is built or being built. Returns
    /// whether a thread was started. An embedding of that batch size
    /// meanwhile waits for the plan; a failed build is reported by it.
    pub fn prepare_in_background(&self, batch: usize) -> bool {
        self.plans
            .plan_in_background([batch.max(1), 3, CHIP_SIZE, CHIP_SIZE])
    }

    /// Embeds `chips.len() / CHIP_VALUES` chips in one model run.
    pub fn embed_chips(&self, chips: &[f32]) -> Result<Vec<Embedding>, ModelError> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        if !chips.len().is_multiple_of(CHIP_VALUES) {
            return Err(ModelError::Run {
                model: self.plans.name(),
                reason: format!("{} values is not a whole number of chips", chips.len()),
            });
        }
        let batch = chips.len() / CHIP_VALUES;
        let input = Tensor::from_shape(&[batch, 3, CHIP_SIZE, CHIP_SIZE], chips).map_err(|e| {
            ModelError::Run {
                model: MODEL,
                reason: e.to_string(),
            }
        })?;
        let outputs = self.plans.run(input)?;
        let output_error = |reason: String| ModelError::Output {
            model: MODEL,
            reason,
        };
        let values = outputs
            .first()
            .ok_or_else(|| output_error("no output".into()))?
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(|e| output_error(e.to_string()))?;
        if values.len() != batch * EMBEDDING_DIM {
            return Err(output_error(format!(
                "{} values for {batch} chips, expected {}",
                values.len(),
                batch * EMBEDDING_DIM
            )));
        }
        Ok(values
            .chunks_exact(EMBEDDING_DIM)
            .map(|c| {
                let mut e = [0.0; EMBEDDING_DIM];
                e.copy_from_slice(c);
                e
            })
            .collect())
    }
}

/// Euclidean distance between two descriptors.
pub fn l2_distance(a: &Embedding, b: &Embedding) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The element-wise mean of several descriptors (dlib's jitter averaging).
pub fn mean_embedding(embeddings: &[Embedding]) -> Option<Embedding> {
    if embeddings.is_empty() {
        return None;
    }
    let mut mean = [0.0f32; EMBEDDING_DIM];
    for e in embeddings {
        for (m, v) in mean.iter_mut().zip(e) {
            *m += v;
        }
    }
    let n = embeddings.len() as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    Some(mean)
}
