//! A 3x3 convolution over a small image with many channels (the
//! recognizer's 8x8 and 4x4 stages: 128 and 256 channels), stride 1 or 2,
//! with an optional folded ReLU.
//!
//! On such images `conv3x3`'s step of 24 positions along a padded row
//! wastes most of its lanes, and tract's im2col product reached 45-65
//! GFLOP/s. Here the vectors run along the output channels instead: four
//! output positions of a row and 24 output channels accumulate in twelve
//! registers, and each of the `9C` taps costs three loads of packed
//! weights, four broadcasts of input values and twelve FMAs. The inputs
//! come from zero-bordered planes, as in `conv3x3`, so there is no `Pad`
//! node and no im2col.

use tract_onnx::tract_core::internal::{TractResult, ensure};
use wide::f32x8;

use super::depthwise::load;

/// Output positions (consecutive in a row) computed together.
pub(crate) const POSITIONS: usize = 4;

/// Output channels per vector.
const LANES: usize = 8;

/// How many values [`pack`] writes for a `[O, taps]` kernel of `len`
/// values: the groups of [`LANES`] output channels (the op is only swapped
/// in when O is a multiple of it).
pub(crate) fn packed_len(len: usize, taps: usize) -> usize {
    len.checked_div(taps).unwrap_or(0) / LANES * LANES * taps
}

/// A `[O, taps]` kernel (`O` a multiple of [`LANES`]) in the order the
/// product reads it: by group of 8 output channels, then tap, the group's
/// 8 weights of a tap adjacent, into `packed` ([`packed_len`] values).
/// Done once when the op is swapped in, straight into the constant's tensor.
pub(crate) fn pack(kernel: &[f32], taps: usize, packed: &mut [f32]) -> TractResult<()> {
    ensure!(packed.len() == packed_len(kernel.len(), taps));
    if taps == 0 {
        return Ok(());
    }
    let mut slots = packed.chunks_exact_mut(LANES);
    // Group by group, tap by tap: with the three indices divided out of a
    // flat one per weight, packing was a seventh of the recognizer's plan.
    for rows in kernel.chunks_exact(taps * LANES) {
        for tap in 0..taps {
            let Some(slot) = slots.next() else {
                break;
            };
            for (to, row) in slot.iter_mut().zip(rows.chunks_exact(taps)) {
                *to = row[tap];
            }
        }
    }
    Ok(())
}

/// Rows and columns out of `[h, w]` for a 3x3 window every `stride` pixels
/// over the image padded by `padding`.
pub(crate) fn output_size([h, w]: [usize; 2], stride: usize, padding: usize) -> [usize; 2] {
    [h, w].map(|n| super::windows(n, [3, stride, padding]))
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c *
/// 9]` `kernel` (packed by [`pack`]) at `stride` (1 or 2), zero-padded by
/// `padding`, plus `bias`, then clamped at 0 when `relu`: `[O,
/// output_size]` each, into `out`. The output's width must be a multiple
/// of [`POSITIONS`] and `O` of 8 (the op is only swapped in then).
pub(crate) fn conv_3x3_deep(
    image: &[f32],
    [c, h, w]: [usize; 3],
    [stride, padding]: [usize; 2],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    let [oh, ow] = output_size([h, w], stride, padding);
    if c * h * w * oh * ow == 0
        || outputs == 0
        || !outputs.is_multiple_of(LANES)
        || !ow.is_multiple_of(POSITIONS)
        || !matches!(stride, 1 | 2)
    {
        return;
    }
    let (wp, hp) = (w + 2 * padding, h + 2 * padding);
    // Each plane padded, plus a tail so that every block's nine values of a
    // row can be read as one fixed-size array.
    let plane = wp * hp + 16;
    super::with_scratch([c * plane], |[padded]| {
        for (x, o) in image
            .chunks_exact(c * h * w)
            .zip(out.chunks_exact_mut(outputs * oh * ow))
        {
            // Only the interior is written: the border stays zero.
            for (input, plane) in x.chunks_exact(h * w).zip(padded.chunks_exact_mut(plane)) {
                for (row, to) in input
                    .chunks_exact(w)
                    .zip(plane[padding * wp + padding..].chunks_mut(wp))
                {
                    to[..w].copy_from_slice(row);
                }
            }
            let geometry = [plane, wp, oh, ow, stride];
            let groups = outputs / LANES;
            let mut group = 0;
            while group < groups {
                // Three groups at a time (twelve accumulators), then what
                // is left.
                let take = (groups - group).min(3);
                match take {
                    3 => blocks::<3>(padded, geometry, c * 9, kernel, bias, group, relu, o),
                    2 => blocks::<2>(padded, geometry, c * 9, kernel, bias, group, relu, o),
                    _ => blocks::<1>(padded, geometry, c * 9, kernel, bias, group, relu, o),
                }
                group += take;
            }
        }
    });
}

/// Output channel groups `first..first + V` (8 channels each) at every
/// output position, four positions at a time. (A version with the stride
/// and each channel's 72 weights as constants, for fixed indices, ran 10%
/// slower.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn blocks<const V: usize>(
    padded: &[f32],
    [plane, wp, oh, ow, stride]: [usize; 5],
    taps: usize,
    kernel: &[f32],
    bias: &[f32],
    first: usize,
    relu: bool,
    out: &mut [f32],
) {
    let weights: [&[f32]; V] =
        std::array::from_fn(|v| &kernel[(first + v) * taps * LANES..][..taps * LANES]);
    let bias: [f32x8; V] = std::array::from_fn(|v| load(&bias[(first + v) * LANES..]));
    let channels = taps / 9;
    for y in 0..oh {
        for x0 in (0..ow).step_by(POSITIONS) {
            let mut acc = [bias; POSITIONS];
            let mut k = 0;
            for channel in 0..channels {
                for ky in 0..3 {
                    let start = channel * plane + (stride * y + ky) * wp + stride * x0;
                    // Nine values: the most four positions' three taps read
                    // at stride 2 (the planes' tail keeps them in bounds).
                    let Some(row) = padded[start..].first_chunk::<9>() else {
                        return;
                    };
                    for kx in 0..3 {
                        let w: [f32x8; V] = std::array::from_fn(|v| load(&weights[v][k..]));
                        for (i, acc) in acc.iter_mut().enumerate() {
                            let value = f32x8::splat(row[kx + stride * i]);
                            for (acc, w) in acc.iter_mut().zip(w) {
                                *acc = w.mul_add(value, *acc);
                            }
                        }
                        k += LANES;
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let at = y * ow + x0 + i;
                for (v, acc) in acc.iter().enumerate() {
                    let acc = if relu {
                        acc.fast_max(f32x8::ZERO)
                    } else {
                        *acc
                    };
                    for (j, &value) in acc.as_array().iter().enumerate() {
                        out[((first + v) * LANES + j) * oh * ow + at] = value;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::taps::definition::assert_matches_packed;
    use super::*;

    #[test]
    fn a_buffer_of_another_length_is_refused_not_left_partly_packed() {
        let kernel: Vec<f32> = (0..16 * 9).map(|i| i as f32).collect();
        let len = packed_len(kernel.len(), 9);
        assert_eq!(len, kernel.len());
        for wrong in [len - 1, len + 8] {
            let mut packed = vec![0.0; wrong];
            assert!(pack(&kernel, 9, &mut packed).is_err(), "{wrong} values");
            let mut packed = vec![0.0; wrong];
            assert!(
                super::super::taps::pack(&kernel, 9, &mut packed).is_err(),
                "{wrong} values"
            );
        }
        let mut packed = vec![0.0; len];
        pack(&kernel, 9, &mut packed).expect("packed_len values");
        // The first group's first tap: output channels 0..8, tap 0.
        let first: Vec<f32> = (0..8).map(|o| (o * 9) as f32).collect();
        assert_eq!(packed[..8], first[..]);
    }

    #[test]
    fn every_shape_matches_the_definition_at_both_strides() {
        // Output widths of 4 and 8, output channels of 1, 2 and 3+ groups
        // (the three block widths), one and two images.
        let cases = [
            (1, 16, 24, 8, 8),
            (2, 5, 16, 4, 4),
            (1, 3, 8, 4, 8),
            (1, 7, 40, 6, 12),
            (2, 2, 32, 2, 4),
        ];
        assert_matches_packed(
            &cases,
            [3, 1, 1],
            packed_len,
            pack,
            |image, shape, kernel, bias, relu, out| {
                conv_3x3_deep(image, shape, [1, 1], kernel, bias, relu, out)
            },
        );
        // Stride 2: 8 -> 4 with padding 1, 9 -> 4 and 17 -> 8 without.
        let cases = [(1, 16, 24, 8, 8), (1, 3, 16, 9, 9), (2, 4, 8, 17, 17)];
        for padding in [1, 0] {
            let cases: Vec<_> = cases
                .iter()
                .copied()
                .filter(|&(_, _, _, h, w)| {
                    output_size([h, w], 2, padding)[1].is_multiple_of(POSITIONS)
                })
                .collect();
            assert_matches_packed(
                &cases,
                [3, 2, padding],
                packed_len,
                pack,
                |image, shape, kernel, bias, relu, out| {
                    conv_3x3_deep(image, shape, [2, padding], kernel, bias, relu, out)
                },
            );
        }
    }
}
