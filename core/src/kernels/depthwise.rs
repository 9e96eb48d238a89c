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
        super::output(&shape, |out| {
            depthwise_3x3(image, [c, h, w], kernel, bias, self.relu, out)
        })
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
/// bias, then clamped at 0 when `relu`, into `out` (as long as `image`).
pub(crate) fn depthwise_3x3(
    image: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let plane = h * w;
    if plane == 0 || c == 0 {
        return;
    }
    let zeros = vec![0.0f32; w];
    for (index, (input, plane_out)) in image
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(plane))
        .enumerate()
    {
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
            row_3x3(
                rows,
                &taps,
                bias[channel],
                relu,
                &mut plane_out[y * w..(y + 1) * w],
            );
        }
    }
}

/// One output row from the input rows above, at and below it (zeros
/// outside the image).
///
/// Eight outputs at column `x` take each input row's eight values at
/// `x - 1`, `x` and `x + 1`: three unaligned loads. The first and last
/// columns (whose outer neighbour is the zero padding) are computed alone;
/// the columns between them in vectors, the last one overlapping the
/// loop's. Building the shifted vectors from one 10-value window instead
/// made LLVM assemble them with shuffles, and the shuffle port, not the
/// FMAs, bounded the loop; building a border vector in a stack array
/// stalled on store forwarding.
pub(super) fn row_3x3(rows: [&[f32]; 3], taps: &[f32; 9], bias: f32, relu: bool, out: &mut [f32]) {
    let w = out.len();
    if w < 10 {
        for (column, out) in out.iter_mut().enumerate() {
            *out = column_3x3(rows, taps, bias, relu, column);
        }
        return;
    }
    let k = taps.map(f32x8::splat);
    let b = f32x8::splat(bias);
    // Eight outputs from column `x`, all of whose neighbours are inside
    // the row. The windows are built row by row, not with `array::map`:
    // LLVM left its closure calls in the loop.
    let vector = |x: usize| {
        // One bounds check per row: the three loads are then inside it.
        let at = |row: &[f32]| {
            let window = &row[x - 1..x + 9];
            [load(window), load(&window[1..]), load(&window[2..])]
        };
        eight([at(rows[0]), at(rows[1]), at(rows[2])], &k, b, relu)
    };
    // The border columns without a bounds check per tap: the general
    // `column_3x3` cost as much as ten vectors on each row.
    let clamp = |sum: f32| if relu { sum.max(0.0) } else { sum };
    let [a, b, c] = rows.map(|row| &row[..w]);
    out[0] = clamp(
        [a, b, c]
            .iter()
            .zip(taps.chunks_exact(3))
            .fold(bias, |sum, (row, t)| {
                row[1].mul_add(t[2], row[0].mul_add(t[1], sum))
            }),
    );
    let mut x = 1;
    while x + 9 <= w {
        out[x..x + 8].copy_from_slice(vector(x).as_array());
        x += 8;
    }
    if x < w - 1 {
        let x = w - 9;
        out[x..x + 8].copy_from_slice(vector(x).as_array());
    }
    out[w - 1] = clamp(
        [a, b, c]
            .iter()
            .zip(taps.chunks_exact(3))
            .fold(bias, |sum, (row, t)| {
                row[w - 1].mul_add(t[1], row[w - 2].mul_add(t[0], sum))
            }),
    );
}

/// The output at `column` alone.
fn column_3x3(rows: [&[f32]; 3], taps: &[f32; 9], bias: f32, relu: bool, column: usize) -> f32 {
    let mut sum = bias;
    for (r, row) in rows.iter().enumerate() {
        for dx in 0..3 {
            // Input column `column + dx - 1`, skipped outside the row.
            if let Some(value) = (column + dx).checked_sub(1).and_then(|ix| row.get(ix)) {
                sum = value.mul_add(taps[r * 3 + dx], sum);
            }
        }
    }
    if relu { sum.max(0.0) } else { sum }
}

/// Eight outputs from each input row's values left of, at and right of
/// them. One partial sum per input row: three short dependency chains
/// instead of one of nine.
#[inline(always)]
fn eight(windows: [[f32x8; 3]; 3], k: &[f32x8; 9], bias: f32x8, relu: bool) -> f32x8 {
    let zero = f32x8::ZERO;
    let row = |r: usize, acc: f32x8| {
        let [left, centre, right] = windows[r];
        right.mul_add(
            k[3 * r + 2],
            centre.mul_add(k[3 * r + 1], left.mul_add(k[3 * r], acc)),
        )
    };
    let sum = row(0, bias) + row(1, zero) + row(2, zero);
    if relu { sum.fast_max(zero) } else { sum }
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
        // Widths below, at and around the 8 lanes and a multiple of them
        // (the last vector overlapping the loop's, or not); one-pixel
        // planes; two images of the same channels.
        for (planes, c, h, w) in [
            (3, 3, 5, 13),
            (2, 2, 1, 1),
            (4, 4, 8, 8),
            (2, 1, 3, 17),
            (6, 3, 7, 20),
            (1, 1, 2, 9),
            (2, 2, 6, 3),
            (1, 1, 3, 16),
            (2, 2, 4, 25),
            (1, 1, 2, 10),
        ] {
            let image = values(planes * h * w, (c * 31 + h * 7 + w) as u32);
            let kernel = values(c * 9, 5);
            let bias = values(c, 9);
            for relu in [false, true] {
                let mut out = vec![f32::NAN; image.len()];
                depthwise_3x3(&image, [c, h, w], &kernel, &bias, relu, &mut out);
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
