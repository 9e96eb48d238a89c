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
/// after it), the `[O, C]` weights, the `[O]` bias. The output is the
/// image's shape with O channels ([`Pointwise::output_shape`]), so a plan
/// reshaped for another input size stays right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pointwise {
    pub(crate) channel_axis: usize,
    /// Whether the image goes through `max(x, 0)` first (a ReLU before
    /// the convolution, folded into its tile copy).
    pub(crate) relu_input: bool,
}

impl Pointwise {
    /// The output's shape for an image of `shape`: its channel axis holds
    /// the `outputs` channels.
    pub(crate) fn output_shape(&self, shape: &[usize], outputs: usize) -> TractResult<TVec<usize>> {
        ensure!(self.channel_axis < shape.len());
        let mut output: TVec<usize> = shape.into();
        output[self.channel_axis] = outputs;
        Ok(output)
    }
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
        let pixels: usize = shape[self.channel_axis + 1..].iter().product();
        let output_shape = self.output_shape(shape, outputs)?;
        let (image, weights, bias) = (
            super::floats(&image)?,
            super::floats(&weights)?,
            super::floats(&bias)?,
        );
        super::output(&output_shape, |out| {
            pointwise(
                image,
                [channels, pixels],
                weights,
                bias,
                self.relu_input,
                out,
            )
        })
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[1].rank() == 2);
        let shape = super::concrete(inputs[0])?;
        let outputs = super::concrete(inputs[1])?[0];
        Ok(tvec!(f32::fact(&*self.output_shape(&shape, outputs)?)))
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

/// Every image of `image` (`[channels, pixels]` each, clamped at 0 first
/// when `relu_input`) through the `[O, C]` `weights` plus `bias`: `[O,
/// pixels]` each, into `out`.
pub(crate) fn pointwise(
    image: &[f32],
    [channels, pixels]: [usize; 2],
    weights: &[f32],
    bias: &[f32],
    relu_input: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    let images = image.len().checked_div(channels * pixels).unwrap_or(0);
    if images == 0 || outputs == 0 {
        return;
    }
    let mut product = Product::new(weights, bias, channels, relu_input, pixels);
    for (x, o) in image
        .chunks_exact(channels * pixels)
        .zip(out.chunks_exact_mut(outputs * pixels))
    {
        product.run(x, pixels, 0..pixels, o, pixels);
    }
}

/// The weights of one 1x1 convolution, packed for its inner loop, and the
/// tile buffer it copies pixels into.
pub(crate) struct Product<'w> {
    weights: &'w [f32],
    bias: &'w [f32],
    channels: usize,
    /// Weights by block of output channels, then input channel: the four
    /// values one step of the inner loop broadcasts are adjacent.
    packed: Vec<[f32; BLOCK]>,
    tile: Vec<f32>,
    relu_input: bool,
    /// Whether the weights are packed for the vector steps (else every
    /// pixel takes the dot products).
    vectors: bool,
}

impl<'w> Product<'w> {
    /// `weights` `[O, C]` and `bias` `[O]`, for images of `channels` (C),
    /// clamped at 0 first when `relu_input`, `pixels` long. Below 8 pixels
    /// the weights are not packed (only the dot products run): packing a
    /// 256 x 256 kernel took as long as the recognizer's 1x1-map product.
    pub(crate) fn new(
        weights: &'w [f32],
        bias: &'w [f32],
        channels: usize,
        relu_input: bool,
        pixels: usize,
    ) -> Self {
        let vectors = pixels >= 8;
        let blocks = if vectors { bias.len() / BLOCK } else { 0 };
        let packed = (0..blocks * channels)
            .map(|i| {
                let (block, c) = (i / channels, i % channels);
                std::array::from_fn(|j| weights[(block * BLOCK + j) * channels + c])
            })
            .collect();
        Self {
            weights,
            bias,
            channels,
            packed,
            tile: vec![0.0f32; channels * if vectors { TILE } else { 1 }],
            relu_input,
            vectors,
        }
    }

    /// Output pixels `range` of one image `x` (`[C, pixels]`), written to
    /// `out[o * out_stride + p - range.start]` for each output channel `o`.
    pub(crate) fn run(
        &mut self,
        x: &[f32],
        pixels: usize,
        range: std::ops::Range<usize>,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let (channels, bias, outputs) = (self.channels, self.bias, self.bias.len());
        let blocks = outputs / BLOCK;
        let (first, len) = (range.start, range.len());
        // The pixels go in tiles of up to TILE, each copied first into one
        // contiguous `[channels, TILE]` block: read in place, the channels'
        // rows lie a multiple of 4 KiB apart on YuNet's shapes (76,800
        // pixels of 4 bytes is 75 pages), all in the same L1 set, and
        // evicted each other.
        let full = if self.vectors { len - len % 8 } else { 0 };
        for start in (0..full).step_by(TILE) {
            let width = TILE.min(full - start);
            // Eight values at a time in registers: as a `memcpy` call per
            // channel row (a few hundred bytes each), the copy took 13% of
            // the detector's time.
            for (c, row) in self.tile.chunks_exact_mut(TILE).enumerate() {
                let from = &x[c * pixels + first + start..][..width];
                for (to, from) in row[..width].chunks_exact_mut(8).zip(from.chunks_exact(8)) {
                    let v = load(from);
                    let v = if self.relu_input {
                        v.fast_max(f32x8::ZERO)
                    } else {
                        v
                    };
                    to.copy_from_slice(v.as_array());
                }
            }
            let tile = &self.tile;
            let mut p = 0;
            while p + STEP <= width {
                for block in 0..blocks {
                    let o0 = block * BLOCK;
                    let mut acc: [[f32x8; 3]; BLOCK] =
                        std::array::from_fn(|j| [f32x8::splat(bias[o0 + j]); 3]);
                    for (w, row) in self.packed[block * channels..(block + 1) * channels]
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
                        let at = (o0 + j) * out_stride + start + p;
                        for (v, out) in acc.iter().zip(out[at..at + STEP].chunks_exact_mut(8)) {
                            out.copy_from_slice(v.as_array());
                        }
                    }
                }
                for oc in blocks * BLOCK..outputs {
                    self.vectors::<3>(oc, p, start, out, out_stride);
                }
                p += STEP;
            }
            // Fewer than STEP pixels left in the tile: eight at a time.
            while p < width {
                for oc in 0..outputs {
                    self.vectors::<1>(oc, p, start, out, out_stride);
                }
                p += 8;
            }
        }
        // The last pixels (fewer than 8), one at a time: the pixel's
        // channels gathered once, then each output channel one dot product
        // along them, eight channels a vector. (One chain of `channels`
        // dependent FMAs per output took 70 us for the recognizer's 256 ->
        // 128 descriptor, a single pixel.)
        for p in full..len {
            let column = &mut self.tile[..channels];
            for (c, value) in column.iter_mut().enumerate() {
                let v = x[c * pixels + first + p];
                *value = if self.relu_input { v.max(0.0) } else { v };
            }
            for (oc, (weights, &bias)) in self
                .weights
                .chunks_exact(channels)
                .zip(bias.iter())
                .enumerate()
            {
                out[oc * out_stride + p] = bias + dot(weights, column);
            }
        }
    }

    /// `N` vectors of output channel `oc` from the tile at `p` (the tile
    /// starting `start` pixels into the range).
    fn vectors<const N: usize>(
        &self,
        oc: usize,
        p: usize,
        start: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        let channels = self.channels;
        let mut acc = [f32x8::splat(self.bias[oc]); N];
        for (c, row) in self.tile.chunks_exact(TILE).enumerate() {
            let w = f32x8::splat(self.weights[oc * channels + c]);
            for (i, acc) in acc.iter_mut().enumerate() {
                *acc = load(&row[p + 8 * i..]).mul_add(w, *acc);
            }
        }
        let at = oc * out_stride + start + p;
        for (v, out) in acc.iter().zip(out[at..at + 8 * N].chunks_exact_mut(8)) {
            out.copy_from_slice(v.as_array());
        }
    }
}

/// The sum of the products of `a` and `b` (as long as each other): four
/// vectors of partial sums, then the rest.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a32, b32) = (a.chunks_exact(32), b.chunks_exact(32));
    let (a_rest, b_rest) = (a32.remainder(), b32.remainder());
    let mut acc = [f32x8::ZERO; 4];
    for (a, b) in a32.zip(b32) {
        for (i, acc) in acc.iter_mut().enumerate() {
            *acc = load(&a[8 * i..]).mul_add(load(&b[8 * i..]), *acc);
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let (a8, b8) = (a_rest.chunks_exact(8), b_rest.chunks_exact(8));
    let (a_rest, b_rest) = (a8.remainder(), b8.remainder());
    for (a, b) in a8.zip(b8) {
        sum = load(a).mul_add(load(b), sum);
    }
    a_rest
        .iter()
        .zip(b_rest)
        .fold(sum.reduce_add(), |total, (a, b)| a.mul_add(*b, total))
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
            // Pixels left over a multiple of 8 take a dot product along
            // the channels: 32 at a time, 8, then one by one.
            (1, 45, 5, 3),
            (2, 256, 3, 1),
            (1, 77, 6, 13),
        ] {
            let value =
                |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 211) as f32 / 105.0 - 1.0;
            let image: Vec<f32> = (0..images * channels * pixels)
                .map(|i| value(i, 1))
                .collect();
            let weights: Vec<f32> = (0..outputs * channels).map(|i| value(i, 2)).collect();
            let bias: Vec<f32> = (0..outputs).map(|i| value(i, 3)).collect();
            for relu_input in [false, true] {
                let mut out = vec![f32::NAN; images * outputs * pixels];
                pointwise(
                    &image,
                    [channels, pixels],
                    &weights,
                    &bias,
                    relu_input,
                    &mut out,
                );
                for n in 0..images {
                    for oc in 0..outputs {
                        for p in 0..pixels {
                            let want: f64 = bias[oc] as f64
                                + (0..channels)
                                    .map(|c| {
                                        let x = image[(n * channels + c) * pixels + p];
                                        let x = if relu_input { x.max(0.0) } else { x };
                                        weights[oc * channels + c] as f64 * x as f64
                                    })
                                    .sum::<f64>();
                            let got = out[(n * outputs + oc) * pixels + p];
                            assert!(
                                (got as f64 - want).abs() <= 1e-5,
                                "{images}x{channels}->{outputs}x{pixels} relu {relu_input} at \
                             {n},{oc},{p}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
