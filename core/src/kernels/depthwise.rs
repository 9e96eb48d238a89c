//! 3x3 depthwise convolution, stride 1, padding 1, channel-first, with an
//! optional folded ReLU.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use wide::f32x8;

/// Inputs: the `[.., C, H, W]` image, the `[C, 9]` taps, the `[C]` bias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Depthwise3x3 {
    /// Whether `max(x, 0)` is applied to the output.
    pub(crate) relu: bool,
}

impl Op for Depthwise3x3 {
    fn name(&self) -> StaticName {
        "FaceDepthwise3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("relu: {}", self.relu)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (image, kernel, bias) = args_3!(inputs);
        let shape = image.shape().to_vec();
        let [.., c, h, w] = shape[..] else {
            bail!("depthwise input must have rank 3 or more, has shape {shape:?}");
        };
        let image = super::floats(&image)?;
        let kernel = super::floats(&kernel)?;
        let bias = super::floats(&bias)?;
        ensure!(kernel.len() == c * 9 && bias.len() == c);
        let out = depthwise_3x3(image, [c, h, w], kernel, bias, self.relu);
        super::output(shape, out)
    }
}

impl TypedOp for Depthwise3x3 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[0].rank() >= 3);
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// Every `[h, w]` plane of `image` (planes cycle through the `c` channels)
/// convolved with its channel's 9 taps, zero-padded by one pixel, plus its
/// bias, then clamped at 0 when `relu`.
///
/// The output is written once, row by row, never zero-filled first: on
/// YuNet's first layers a fill is a 5 MB pass of its own.
pub(crate) fn depthwise_3x3(
    image: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
) -> Vec<f32> {
    let plane = h * w;
    if plane == 0 || c == 0 {
        return vec![0.0; image.len()];
    }
    let mut out = Vec::with_capacity(image.len());
    let zeros = vec![0.0f32; w];
    let mut row_out = vec![0.0f32; w];
    for (index, input) in image.chunks_exact(plane).enumerate() {
        let channel = index % c;
        let taps: [f32; 9] = std::array::from_fn(|i| kernel[channel * 9 + i]);
        for y in 0..h {
            let above = if y > 0 {
                &input[(y - 1) * w..y * w]
            } else {
                &zeros
            };
            let below = if y + 1 < h {
                &input[(y + 1) * w..(y + 2) * w]
            } else {
                &zeros
            };
            let rows = [above, &input[y * w..(y + 1) * w], below];
            row_3x3(rows, &taps, bias[channel], relu, &mut row_out);
            out.extend_from_slice(&row_out);
        }
    }
    out
}

/// One output row from the input rows above, at and below it (zeros
/// outside the image).
pub(super) fn row_3x3(rows: [&[f32]; 3], taps: &[f32; 9], bias: f32, relu: bool, out: &mut [f32]) {
    let w = out.len();
    let k = taps.map(f32x8::splat);
    let b = f32x8::splat(bias);
    let zero = f32x8::ZERO;
    // Eight outputs from x read columns x - 1 ..= x + 8: the vector loop
    // covers the columns whose neighbours are all inside the row.
    let mut x = 1;
    while x + 9 <= w {
        // One partial sum per input row: three short dependency chains
        // instead of one of nine.
        let sum = row_sum(&rows[0][x - 1..], &k[0..3], b)
            + row_sum(&rows[1][x - 1..], &k[3..6], zero)
            + row_sum(&rows[2][x - 1..], &k[6..9], zero);
        let sum = if relu { sum.fast_max(zero) } else { sum };
        out[x..x + 8].copy_from_slice(sum.as_array());
        x += 8;
    }
    for column in std::iter::once(0).chain(x..w) {
        let mut sum = bias;
        for (r, row) in rows.iter().enumerate() {
            for dx in 0..3 {
                // Input column `column + dx - 1`, skipped outside the row.
                if let Some(value) = (column + dx).checked_sub(1).and_then(|ix| row.get(ix)) {
                    sum = value.mul_add(taps[r * 3 + dx], sum);
                }
            }
        }
        out[column] = if relu { sum.max(0.0) } else { sum };
    }
}

/// Three taps of one input row for eight outputs: `row` starts at the
/// first output's left neighbour and holds at least 10 values.
#[inline(always)]
fn row_sum(row: &[f32], k: &[f32x8], acc: f32x8) -> f32x8 {
    let window = row
        .first_chunk::<10>()
        .expect("padded rows hold 2 more values than outputs");
    let lanes = |offset: usize| f32x8::new(std::array::from_fn(|i| window[offset + i]));
    lanes(2).mul_add(k[2], lanes(1).mul_add(k[1], lanes(0).mul_add(k[0], acc)))
}

/// Eight floats from the front of `s` (an unaligned load).
#[inline(always)]
pub(super) fn load(s: &[f32]) -> f32x8 {
    f32x8::new(*s.first_chunk::<8>().expect("at least 8 values left"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, one output at a time.
    fn reference(
        image: &[f32],
        [c, h, w]: [usize; 3],
        kernel: &[f32],
        bias: &[f32],
        relu: bool,
    ) -> Vec<f32> {
        let mut out = vec![0.0; image.len()];
        for (p, plane) in image.chunks_exact(h * w).enumerate() {
            let ch = p % c;
            for y in 0..h {
                for x in 0..w {
                    let mut sum = bias[ch] as f64;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) =
                                (y as isize + ky as isize - 1, x as isize + kx as isize - 1);
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                sum += (plane[iy as usize * w + ix as usize]
                                    * kernel[ch * 9 + ky * 3 + kx])
                                    as f64;
                            }
                        }
                    }
                    let sum = sum as f32;
                    out[p * h * w + y * w + x] = if relu { sum.max(0.0) } else { sum };
                }
            }
        }
        out
    }

    /// Deterministic values in -1..1 (a small LCG: no dependency for tests).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_shape_matches_the_definition_including_borders_and_tails() {
        // Widths below, at and around the 8 lanes; one-pixel planes; two
        // images of the same channels.
        for (planes, c, h, w) in [
            (3, 3, 5, 13),
            (2, 2, 1, 1),
            (4, 4, 8, 8),
            (2, 1, 3, 17),
            (6, 3, 7, 20),
            (1, 1, 2, 9),
            (2, 2, 6, 3),
        ] {
            let image = values(planes * h * w, (c * 31 + h * 7 + w) as u32);
            let kernel = values(c * 9, 5);
            let bias = values(c, 9);
            for relu in [false, true] {
                let out = depthwise_3x3(&image, [c, h, w], &kernel, &bias, relu);
                let want = reference(&image, [c, h, w], &kernel, &bias, relu);
                for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() <= 1e-5,
                        "planes {planes} c {c} h {h} w {w} relu {relu} at {i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
