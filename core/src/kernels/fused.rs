//! A 1x1 convolution, the 3x3 depthwise one that reads it and, when one
//! follows, the 2x2 max pooling after that, in one pass over row bands.
//!
//! Run one after the other, each op writes its whole output through memory
//! and the next reads it back: 5 MB each way on YuNet's first layers at
//! 640x480, where these three took 35-40% of the model's time. Here the 1x1
//! convolution's rows are computed a band at a time into a buffer sized to
//! stay in L2, the depthwise rows are computed from it at once, and only
//! the last op's output goes to memory.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise::row_3x3;
use super::maxpool::pool_rows;
use super::pointwise::Product;

/// Inputs: the `[.., C, rows, columns]` image, the 1x1 convolution's `[O,
/// C]` weights and `[O]` bias, the depthwise `[O, 9]` taps and `[O]` bias.
/// The output is `[.., O, rows, columns]`, halved when pooled
/// ([`PointwiseDepthwise::output_shape`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PointwiseDepthwise {
    /// Whether the image goes through `max(x, 0)` first.
    pub(crate) relu_input: bool,
    /// Whether `max(x, 0)` is applied to the depthwise output.
    pub(crate) relu: bool,
    /// Whether a 2x2 stride-2 max pooling follows.
    pub(crate) pool: bool,
}

impl PointwiseDepthwise {
    /// The output's shape for an image of `shape` and `outputs` channels.
    pub(crate) fn output_shape(&self, shape: &[usize], outputs: usize) -> TractResult<TVec<usize>> {
        super::channels_and_size(shape, outputs, |h, w| {
            if self.pool { [h / 2, w / 2] } else { [h, w] }
        })
    }
}

impl Op for PointwiseDepthwise {
    fn name(&self) -> StaticName {
        "FacePointwiseDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "relu input: {}, relu: {}, pool: {}",
            self.relu_input, self.relu, self.pool
        )])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for PointwiseDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (image, weights, bias, taps, taps_bias) = args_5!(inputs);
        let shape = image.shape();
        let [.., c, h, w] = shape[..] else {
            bail!("the fused op's input must have rank 3 or more, has shape {shape:?}");
        };
        ensure!(weights.rank() == 2);
        let (outputs, channels) = (weights.shape()[0], weights.shape()[1]);
        ensure!(
            c == channels
                && bias.len() == outputs
                && taps.len() == outputs * 9
                && taps_bias.len() == outputs
        );
        let layer = Layer {
            weights: super::floats(&weights)?,
            bias: super::floats(&bias)?,
            taps: super::floats(&taps)?,
            taps_bias: super::floats(&taps_bias)?,
            relu_input: self.relu_input,
            relu: self.relu,
            pool: self.pool,
        };
        let output_shape = self.output_shape(shape, outputs)?;
        let image = super::floats(&image)?;
        super::output(&output_shape, |out| {
            layer.run(image, [channels, h, w], band_rows(outputs, w), out)
        })
    }
}

impl TypedOp for PointwiseDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 5 && inputs[1].rank() == 2);
        let shape = super::concrete(inputs[0])?;
        let outputs = super::concrete(inputs[1])?[0];
        Ok(tvec!(f32::fact(&*self.output_shape(&shape, outputs)?)))
    }

    as_op!();
}

/// The band buffer's budget: half of a 512 KiB L2 (Zen's, Neoverse N1's),
/// leaving room for the image's and the output's lines.
const BAND_BYTES: usize = 256 * 1024;

/// Rows per band for `outputs` channels of `w` columns: even (a pooled row
/// never straddles two bands), at least 2.
fn band_rows(outputs: usize, w: usize) -> usize {
    let row_bytes = (outputs * w * std::mem::size_of::<f32>()).max(1);
    let rows = (BAND_BYTES / row_bytes).saturating_sub(2);
    (rows - rows % 2).max(2)
}

/// The three ops' constants.
struct Layer<'a> {
    /// `[O, C]` and `[O]`: the 1x1 convolution.
    weights: &'a [f32],
    bias: &'a [f32],
    /// `[O, 9]` and `[O]`: the depthwise one.
    taps: &'a [f32],
    taps_bias: &'a [f32],
    relu_input: bool,
    relu: bool,
    pool: bool,
}

impl Layer<'_> {
    /// Every image of `image` (`[channels, h, w]` each): `[O, h, w]` each,
    /// or `[O, h / 2, w / 2]` when pooled, into `out`. `band` rows (even)
    /// at a time.
    fn run(&self, image: &[f32], [channels, h, w]: [usize; 3], band: usize, out: &mut [f32]) {
        let outputs = self.bias.len();
        let pixels = h * w;
        let images = image.len().checked_div(channels * pixels).unwrap_or(0);
        let (oh, ow) = if self.pool { (h / 2, w / 2) } else { (h, w) };
        if images == 0 || outputs == 0 || oh == 0 || ow == 0 {
            return;
        }
        debug_assert!(band >= 2 && band.is_multiple_of(2));
        let mut product = Product::new(self.weights, self.bias, channels, self.relu_input, w);
        // Per channel, `band + 2` rows: slot `s` holds the 1x1
        // convolution's row `r0 - 1 + s` of the band starting at row `r0`.
        let slots = band + 2;
        super::with_scratch([outputs * slots * w, 2 * w, w], |[mid, pair, rows_max]| {
            for (x, o) in image
                .chunks_exact(channels * pixels)
                .zip(out.chunks_exact_mut(outputs * oh * ow))
            {
                for r0 in (0..h).step_by(band) {
                    let rows = band.min(h - r0);
                    // Rows r0 - 1 and r0 were the previous band's last two.
                    let first_new = if r0 == 0 {
                        for channel in mid.chunks_exact_mut(slots * w) {
                            channel[..w].fill(0.0);
                        }
                        0
                    } else {
                        for channel in mid.chunks_exact_mut(slots * w) {
                            channel.copy_within(band * w..(band + 2) * w, 0);
                        }
                        r0 + 1
                    };
                    let last = (r0 + rows + 1).min(h);
                    let slot = first_new + 1 - r0;
                    product.run(
                        x,
                        pixels,
                        first_new * w..last * w,
                        &mut mid[slot * w..],
                        slots * w,
                    );
                    if r0 + rows == h {
                        // The zero padding below the image.
                        for channel in mid.chunks_exact_mut(slots * w) {
                            channel[(rows + 1) * w..(rows + 2) * w].fill(0.0);
                        }
                    }
                    for (oc, rows_in) in mid.chunks_exact(slots * w).enumerate() {
                        let taps: [f32; 9] = std::array::from_fn(|i| self.taps[oc * 9 + i]);
                        let bias = self.taps_bias[oc];
                        let plane = &mut o[oc * oh * ow..(oc + 1) * oh * ow];
                        let row_in = |y: usize| -> [&[f32]; 3] {
                            std::array::from_fn(|k| &rows_in[(y + k) * w..(y + k + 1) * w])
                        };
                        if self.pool {
                            for y in (0..rows - rows % 2).step_by(2) {
                                let (top, bottom) = pair.split_at_mut(w);
                                row_3x3(row_in(y), &taps, bias, self.relu, top);
                                row_3x3(row_in(y + 1), &taps, bias, self.relu, bottom);
                                let at = (r0 + y) / 2 * ow;
                                pool_rows(top, bottom, rows_max, &mut plane[at..at + ow]);
                            }
                        } else {
                            for y in 0..rows {
                                let at = (r0 + y) * w;
                                row_3x3(row_in(y), &taps, bias, self.relu, &mut plane[at..at + w]);
                            }
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::depthwise::depthwise_3x3;
    use super::super::maxpool::max_pool_2x2;
    use super::super::pointwise::pointwise;
    use super::*;

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + salt * 104_729) % 211) as f32 / 105.0 - 1.0)
            .collect()
    }

    #[test]
    fn equals_the_three_ops_one_after_the_other_for_any_band() {
        // Heights around the band and odd ones (a pooled last row dropped),
        // widths around the vector of 8 and the step of 24.
        for (images, channels, outputs, h, w) in [
            (1, 3, 4, 6, 20),
            (2, 5, 7, 7, 19),
            (1, 16, 16, 12, 40),
            (1, 8, 9, 1, 9),
            (1, 4, 5, 2, 3),
            (3, 2, 6, 9, 33),
            (1, 16, 32, 10, 80),
        ] {
            let image = values(images * channels * h * w, 1);
            let weights = values(outputs * channels, 2);
            let bias = values(outputs, 3);
            let taps = values(outputs * 9, 4);
            let taps_bias = values(outputs, 5);
            let relu_input = channels.is_multiple_of(2);
            let mut mid = vec![f32::NAN; images * outputs * h * w];
            pointwise(
                &image,
                [channels, h * w],
                &weights,
                &bias,
                relu_input,
                &mut mid,
            );
            for relu in [false, true] {
                let mut depthwise = vec![f32::NAN; mid.len()];
                depthwise_3x3(
                    &mid,
                    [outputs, h, w],
                    &taps,
                    &taps_bias,
                    relu,
                    &mut depthwise,
                );
                let mut pooled = vec![f32::NAN; images * outputs * (h / 2) * (w / 2)];
                max_pool_2x2(&depthwise, [h, w], &mut pooled);
                for pool in [false, true] {
                    let layer = Layer {
                        weights: &weights,
                        bias: &bias,
                        taps: &taps,
                        taps_bias: &taps_bias,
                        relu_input,
                        relu,
                        pool,
                    };
                    let want = if pool { &pooled } else { &depthwise };
                    for band in [2, 4, 6, 16] {
                        let mut got = vec![f32::NAN; want.len()];
                        layer.run(&image, [channels, h, w], band, &mut got);
                        assert_eq!(got.len(), want.len());
                        for (i, (g, e)) in got.iter().zip(want).enumerate() {
                            assert!(
                                (g - e).abs() <= 1e-5,
                                "{images}x{channels}->{outputs}x{h}x{w} relu {relu} pool {pool} \
                                 band {band} at {i}: {g} vs {e}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bands_fit_the_budget_and_stay_even() {
        assert_eq!(band_rows(16, 320), 10);
        assert_eq!(band_rows(64, 160), 4);
        assert_eq!(band_rows(1, 1), BAND_BYTES / 4 - 2);
        for (outputs, w) in [(16, 320), (64, 160), (3, 7), (1000, 1000)] {
            let band = band_rows(outputs, w);
            assert!(band >= 2 && band.is_multiple_of(2), "{outputs}x{w}: {band}");
        }
    }
}
