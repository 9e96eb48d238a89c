//! 1x1 convolution, channel-first: `out[o, p] = bias[o] + sum_c w[o, c] *
//! x[c, p]` over the pixels `p` of each image.
//!
//! tract lowers it to a matrix product whose input is packed into panels
//! first, a pass over the whole image through memory; on YuNet's shapes (16
//! to 64 channels, up to 76,800 pixels) the packing took as long as the
//! product. Here each tile of 96 pixels of every channel is copied into an
//! L1-sized buffer and four output channels accumulate 24 pixels each in
//! twelve registers.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use wide::f32x8;

use super::depthwise::load;

/// Inputs: the image (`channel_axis` its channel, the pixels every axis
/// after it), the `[O, C]` weights, the `[O]` bias. The output, laid out as
/// `[images, O, pixels]`, has `output_shape` (the einsum's, which may add or
/// drop an axis of size 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pointwise {
    pub(crate) channel_axis: usize,
    pub(crate) output_shape: TVec<usize>,
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "FacePointwise".into()
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (image, weights, bias) = args_3!(inputs);
        let shape = image.shape();
        ensure!(self.channel_axis < shape.len() && weights.rank() == 2);
        let (outputs, channels) = (weights.shape()[0], weights.shape()[1]);
        ensure!(shape[self.channel_axis] == channels && bias.len() == outputs);
        let pixels = shape[self.channel_axis + 1..].iter().product();
        let out = pointwise(
            super::floats(&image)?,
            [channels, pixels],
            super::floats(&weights)?,
            super::floats(&bias)?,
        );
        ensure!(out.len() == self.output_shape.iter().product::<usize>());
        super::output(self.output_shape.to_vec(), out)
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[1].rank() == 2);
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// Output channels computed together (twelve accumulators of 8 lanes:
/// three vectors of pixels for each).
const BLOCK: usize = 4;

/// Pixels per step of the inner loop.
const STEP: usize = 24;

/// Pixels per tile (a multiple of `STEP`): 64 channels of a tile fill 24 KiB.
const TILE: usize = 96;

/// Every image of `image` (`[channels, pixels]` each) through the `[O, C]`
/// `weights` plus `bias`: `[O, pixels]` each.
pub(crate) fn pointwise(
    image: &[f32],
    [channels, pixels]: [usize; 2],
    weights: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let outputs = bias.len();
    let images = image.len().checked_div(channels * pixels).unwrap_or(0);
    let mut out = vec![0.0f32; images * outputs * pixels];
    if images == 0 || outputs == 0 {
        return out;
    }
    // Weights by block of output channels, then input channel: the four
    // values one step of the inner loop broadcasts are adjacent.
    let blocks = outputs / BLOCK;
    let packed: Vec<[f32; BLOCK]> = (0..blocks * channels)
        .map(|i| {
            let (block, c) = (i / channels, i % channels);
            std::array::from_fn(|j| weights[(block * BLOCK + j) * channels + c])
        })
        .collect();
    // The pixels go in tiles of up to TILE, each copied first into one
    // contiguous `[channels, TILE]` block: read in place, the channels' rows
    // lie a multiple of 4 KiB apart on YuNet's shapes (76,800 pixels of 4
    // bytes is 75 pages), all in the same L1 set, and evicted each other.
    let mut tile = vec![0.0f32; channels * TILE];
    for (x, o) in image
        .chunks_exact(channels * pixels)
        .zip(out.chunks_exact_mut(outputs * pixels))
    {
        let full = pixels - pixels % STEP;
        for start in (0..full).step_by(TILE) {
            let width = TILE.min(full - start);
            for (c, row) in tile.chunks_exact_mut(TILE).enumerate() {
                row[..width].copy_from_slice(&x[c * pixels + start..][..width]);
            }
            for p in (0..width).step_by(STEP) {
                for block in 0..blocks {
                    let o0 = block * BLOCK;
                    let mut acc: [[f32x8; 3]; BLOCK] =
                        std::array::from_fn(|j| [f32x8::splat(bias[o0 + j]); 3]);
                    for (w, row) in packed[block * channels..(block + 1) * channels]
                        .iter()
                        .zip(tile.chunks_exact(TILE))
                    {
                        let x = [load(&row[p..]), load(&row[p + 8..]), load(&row[p + 16..])];
                        for (acc, &w) in acc.iter_mut().zip(w) {
                            let w = f32x8::splat(w);
                            for (acc, x) in acc.iter_mut().zip(x) {
                                *acc = x.mul_add(w, *acc);
                            }
                        }
                    }
                    for (j, acc) in acc.iter().enumerate() {
                        let at = (o0 + j) * pixels + start + p;
                        for (v, out) in acc.iter().zip(o[at..at + STEP].chunks_exact_mut(8)) {
                            out.copy_from_slice(v.as_array());
                        }
                    }
                }
                for oc in blocks * BLOCK..outputs {
                    let mut acc = [f32x8::splat(bias[oc]); 3];
                    for (c, row) in tile.chunks_exact(TILE).enumerate() {
                        let w = f32x8::splat(weights[oc * channels + c]);
                        for (i, acc) in acc.iter_mut().enumerate() {
                            *acc = load(&row[p + 8 * i..]).mul_add(w, *acc);
                        }
                    }
                    let at = oc * pixels + start + p;
                    for (v, out) in acc.iter().zip(o[at..at + STEP].chunks_exact_mut(8)) {
                        out.copy_from_slice(v.as_array());
                    }
                }
            }
        }
        // The last pixels (fewer than STEP), one at a time.
        for p in full..pixels {
            for oc in 0..outputs {
                let mut sum = bias[oc];
                for c in 0..channels {
                    sum = x[c * pixels + p].mul_add(weights[oc * channels + c], sum);
                }
                o[oc * pixels + p] = sum;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_and_tail_matches_the_definition() {
        // Output channels around the block of 4, pixels around 16 and the
        // tile of 64.
        for (images, channels, outputs, pixels) in [
            (1, 3, 4, 16),
            (2, 5, 7, 37),
            (1, 16, 16, 48),
            (1, 1, 1, 1),
            (1, 8, 10, 15),
            (3, 2, 9, 33),
            (1, 6, 9, 150),
            (2, 16, 64, 128),
        ] {
            let value =
                |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 211) as f32 / 105.0 - 1.0;
            let image: Vec<f32> = (0..images * channels * pixels)
                .map(|i| value(i, 1))
                .collect();
            let weights: Vec<f32> = (0..outputs * channels).map(|i| value(i, 2)).collect();
            let bias: Vec<f32> = (0..outputs).map(|i| value(i, 3)).collect();
            let out = pointwise(&image, [channels, pixels], &weights, &bias);
            assert_eq!(out.len(), images * outputs * pixels);
            for n in 0..images {
                for oc in 0..outputs {
                    for p in 0..pixels {
                        let want: f64 = bias[oc] as f64
                            + (0..channels)
                                .map(|c| {
                                    weights[oc * channels + c] as f64
                                        * image[(n * channels + c) * pixels + p] as f64
                                })
                                .sum::<f64>();
                        let got = out[(n * outputs + oc) * pixels + p];
                        assert!(
                            (got as f64 - want).abs() <= 1e-5,
                            "{images}x{channels}->{outputs}x{pixels} at {n},{oc},{p}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
