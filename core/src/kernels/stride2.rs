//! 3x3 convolution, stride 2, padding 1, over an image of few channels
//! (YuNet's first layer: 3 colour planes in, 16 channels out), with an
//! optional folded ReLU.
//!
//! Each input row is split once into its even and odd columns, so the
//! three taps of a row (`2x - 1`, `2x`, `2x + 1`) become plain 8-lane loads;
//! tract's direct convolution took a tenth of YuNet's time on this layer.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use wide::f32x8;

use super::depthwise::load;

/// Inputs: the `[.., C, H, W]` image, the `[O, C * 9]` weights, the `[O]`
/// bias. Output `[.., O, (H + 1) / 2, (W + 1) / 2]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Conv3x3Stride2 {
    pub(crate) relu: bool,
}

impl Op for Conv3x3Stride2 {
    fn name(&self) -> StaticName {
        "FaceConv3x3Stride2".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("relu: {}", self.relu)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Conv3x3Stride2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (image, weights, bias) = args_3!(inputs);
        let mut shape = image.shape().to_vec();
        let [.., c, h, w] = shape[..] else {
            bail!("convolution input must have rank 3 or more, has shape {shape:?}");
        };
        let outputs = bias.len();
        ensure!(weights.shape() == [outputs, c * 9]);
        let out = conv_3x3_stride_2(
            image.try_as_plain_ram()?.as_slice::<f32>()?,
            [c, h, w],
            weights.try_as_plain_ram()?.as_slice::<f32>()?,
            bias.try_as_plain_ram()?.as_slice::<f32>()?,
            self.relu,
        );
        let rank = shape.len();
        shape[rank - 3..].copy_from_slice(&[outputs, h.div_ceil(2), w.div_ceil(2)]);
        Ok(tvec!(
            tract_ndarray::ArrayD::from_shape_vec(shape, out)?
                .into_tensor()
                .into_tvalue()
        ))
    }
}

impl TypedOp for Conv3x3Stride2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[0].rank() >= 3 && inputs[1].rank() == 2);
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let rank = shape.len();
        shape[rank - 3] = inputs[1].shape[0].clone();
        for d in &mut shape[rank - 2..] {
            *d = TDim::Val((d.to_i64()? + 1) / 2);
        }
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c, 3,
/// 3]` `weights` (stride 2, zero padding 1) plus `bias`, clamped at 0 when
/// `relu`: `[O, ceil(h / 2), ceil(w / 2)]` each.
pub(crate) fn conv_3x3_stride_2(
    image: &[f32],
    [c, h, w]: [usize; 3],
    weights: &[f32],
    bias: &[f32],
    relu: bool,
) -> Vec<f32> {
    let outputs = bias.len();
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let images = image.len().checked_div(c * h * w).unwrap_or(0);
    let mut out = vec![0.0f32; images * outputs * oh * ow];
    if out.is_empty() {
        return out;
    }
    // Every input row split once into its even columns (`2x`, what output
    // x reads in the middle) and its odd ones behind a zero (`2x - 1` at x,
    // `2x + 1` at x + 1), zero up to a whole number of vectors.
    let padded = ow.next_multiple_of(8);
    let record = 2 * padded + 1;
    let mut split = vec![0.0f32; c * h * record];
    let zero = f32x8::ZERO;
    let taps: Vec<f32x8> = weights.iter().map(|&k| f32x8::splat(k)).collect();
    for (x_image, out_image) in image
        .chunks_exact(c * h * w)
        .zip(out.chunks_exact_mut(outputs * oh * ow))
    {
        for (row, columns) in x_image.chunks_exact(w).zip(split.chunks_exact_mut(record)) {
            let (even, odd) = columns.split_at_mut(padded);
            for ((pair, even), odd) in row.chunks_exact(2).zip(even.iter_mut()).zip(&mut odd[1..]) {
                *even = pair[0];
                *odd = pair[1];
            }
            if w % 2 == 1 {
                even[w / 2] = row[w - 1];
            }
        }
        for y in 0..oh {
            // The records of the 3 * c input rows (channel-major) inside
            // the image, with their slot in the taps.
            let active: Vec<(usize, usize)> = (0..c * 3)
                .filter_map(|slot| {
                    let (ci, ky) = (slot / 3, slot % 3);
                    let iy = (2 * y + ky).checked_sub(1).filter(|&iy| iy < h)?;
                    Some((slot, (ci * h + iy) * record))
                })
                .collect();
            for (o, plane) in out_image.chunks_exact_mut(oh * ow).enumerate() {
                let taps = &taps[o * c * 9..(o + 1) * c * 9];
                let out_row = &mut plane[y * ow..(y + 1) * ow];
                let finish = |sum: f32x8| if relu { sum.fast_max(zero) } else { sum };
                // Left, middle and right columns of a record for output x.
                let column = |at: usize, kx: usize, x: usize| match kx {
                    0 => at + padded + x,
                    1 => at + x,
                    _ => at + padded + 1 + x,
                };
                // Four vectors at a time: four independent chains of up to
                // 36 multiply-adds instead of one.
                let mut x = 0;
                while x + 32 <= ow {
                    let mut sums = [f32x8::splat(bias[o]); 4];
                    for &(slot, at) in &active {
                        for kx in 0..3 {
                            let values = &split[column(at, kx, x)..][..32];
                            let tap = taps[slot * 3 + kx];
                            for (i, sum) in sums.iter_mut().enumerate() {
                                *sum = load(&values[8 * i..]).mul_add(tap, *sum);
                            }
                        }
                    }
                    for (sum, out) in sums.iter().zip(out_row[x..x + 32].chunks_exact_mut(8)) {
                        out.copy_from_slice(finish(*sum).as_array());
                    }
                    x += 32;
                }
                for x in (x..ow).step_by(8) {
                    let mut sum = f32x8::splat(bias[o]);
                    for &(slot, at) in &active {
                        for kx in 0..3 {
                            sum =
                                load(&split[column(at, kx, x)..]).mul_add(taps[slot * 3 + kx], sum);
                        }
                    }
                    let lanes = (ow - x).min(8);
                    out_row[x..x + lanes].copy_from_slice(&finish(sum).as_array()[..lanes]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_matches_the_definition_including_borders_and_odd_sizes() {
        for (images, c, outputs, h, w) in [
            (1, 3, 16, 8, 16),
            (1, 3, 5, 7, 9),
            (2, 1, 2, 1, 1),
            (1, 2, 3, 5, 33),
            (1, 4, 1, 2, 20),
            (1, 3, 4, 5, 70),
            (1, 3, 2, 3, 128),
        ] {
            let value =
                |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 211) as f32 / 105.0 - 1.0;
            let image: Vec<f32> = (0..images * c * h * w).map(|i| value(i, 1)).collect();
            let weights: Vec<f32> = (0..outputs * c * 9).map(|i| value(i, 2)).collect();
            let bias: Vec<f32> = (0..outputs).map(|i| value(i, 3)).collect();
            let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
            for relu in [false, true] {
                let out = conv_3x3_stride_2(&image, [c, h, w], &weights, &bias, relu);
                assert_eq!(out.len(), images * outputs * oh * ow);
                for n in 0..images {
                    for o in 0..outputs {
                        for y in 0..oh {
                            for x in 0..ow {
                                let mut want = bias[o] as f64;
                                for ci in 0..c {
                                    for ky in 0..3 {
                                        for kx in 0..3 {
                                            let (iy, ix) = (2 * y + ky, 2 * x + kx);
                                            if iy == 0 || ix == 0 || iy > h || ix > w {
                                                continue;
                                            }
                                            want += (weights[((o * c + ci) * 3 + ky) * 3 + kx]
                                                * image[((n * c + ci) * h + iy - 1) * w + ix - 1])
                                                as f64;
                                        }
                                    }
                                }
                                let want = if relu { want.max(0.0) } else { want };
                                let got = out[((n * outputs + o) * oh + y) * ow + x] as f64;
                                assert!(
                                    (got - want).abs() <= 1e-5,
                                    "{images}x{c}x{h}x{w}->{outputs} relu {relu} at {n},{o},{y},{x}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
