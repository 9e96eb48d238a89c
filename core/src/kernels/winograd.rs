//! A 3x3 convolution of stride 1 and padding 1 by Winograd's minimal
//! filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2015): each 2x2 block of outputs comes
//! from a 4x4 block of inputs with 16 multiplications per input and output
//! channel instead of 36. The recognizer's residual blocks (32 to 256
//! channels) ran at 60-95 GFLOP/s as direct products (`conv3x3`,
//! `deep3x3`), near this machine's peak: fewer multiplications is what was
//! left to gain.
//!
//! The kernel is transformed once, when the op is swapped in (`U = G g Gᵀ`,
//! 16 values per output and input channel). Each run copies the image
//! channels-last with a zero border, then, group of tiles by group of tiles:
//! transforms the inputs (`V = Bᵀ d B`, 8 channels per vector), runs the 16
//! products `M = U V` over the input channels (16 output channels by up to
//! six tiles in twelve registers), and transforms the outputs (`Aᵀ M A`)
//! plus bias, clamped at 0 when `relu`. A group's buffers stay in L1 or L2.
//! The transforms' coefficients are 0, ±1 and ±½: the results differ from
//! the direct sum's by rounding (`tests`, and `core/tests/kernels.rs` on the
//! whole recognizer).

use tract_onnx::tract_core::internal::{TractResult, ensure};
use wide::f32x8;

use super::depthwise::load;

const LANES: usize = 8;

/// Output channels per product block (two vectors): the op is only swapped
/// in when the output channels are a multiple of it.
pub(crate) const BLOCK: usize = 16;

/// Input channels per vector of the input transform: the op is only
/// swapped in when the input channels are a multiple of it.
pub(crate) const CHANNEL_LANES: usize = LANES;

/// Transformed values per tile (4x4).
const POINTS: usize = 16;

/// How many values [`pack`] writes for a `[O, C * 9]` kernel of `len`
/// values (`taps` = `C * 9`): 16 per output and input channel, for the
/// blocks of [`BLOCK`] output channels.
pub(crate) fn packed_len(len: usize, taps: usize) -> usize {
    if !taps.is_multiple_of(9) {
        return 0;
    }
    len.checked_div(taps).unwrap_or(0) / BLOCK * BLOCK * (taps / 9) * POINTS
}

/// `G g Gᵀ` of one 3x3 kernel `g` (row-major), row-major 4x4, computed in
/// f64 and rounded once.
fn transform_kernel(g: &[f32]) -> [f32; POINTS] {
    let g = |r: usize, c: usize| f64::from(g[r * 3 + c]);
    let rows: [[f64; 3]; 4] = std::array::from_fn(|r| {
        std::array::from_fn(|c| match r {
            0 => g(0, c),
            1 => 0.5 * (g(0, c) + g(1, c) + g(2, c)),
            2 => 0.5 * (g(0, c) - g(1, c) + g(2, c)),
            _ => g(2, c),
        })
    });
    std::array::from_fn(|i| {
        let [a, b, c] = rows[i / 4];
        (match i % 4 {
            0 => a,
            1 => 0.5 * (a + b + c),
            2 => 0.5 * (a - b + c),
            _ => c,
        }) as f32
    })
}

/// A `[O, C * 9]` kernel transformed and laid out as the products read it:
/// by point of the 4x4 transform, then block of [`BLOCK`] output channels,
/// then input channel, the block's 16 values adjacent; into `packed`
/// ([`packed_len`] values). Done once when the op is swapped in.
pub(crate) fn pack(kernel: &[f32], taps: usize, packed: &mut [f32]) -> TractResult<()> {
    ensure!(packed.len() == packed_len(kernel.len(), taps));
    if packed.is_empty() {
        return Ok(());
    }
    let channels = taps / 9;
    let per_point = packed.len() / POINTS;
    let outputs = per_point / channels;
    for (o, row) in kernel.chunks_exact(taps).take(outputs).enumerate() {
        let (block, lane) = (o / BLOCK, o % BLOCK);
        for (channel, g) in row.chunks_exact(9).enumerate() {
            let at = (block * channels + channel) * BLOCK + lane;
            for (point, value) in transform_kernel(g).into_iter().enumerate() {
                packed[point * per_point + at] = value;
            }
        }
    }
    Ok(())
}

fn store(value: f32x8, out: &mut [f32]) {
    if let Some(out) = out.first_chunk_mut::<LANES>() {
        *out = value.to_array();
    }
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c *
/// 9]` `kernel` (packed by [`pack`]), zero-padded by one pixel, plus
/// `bias`, then clamped at 0 when `relu`: `[O, h, w]` each, into `out`.
/// `c` must be a multiple of [`CHANNEL_LANES`] and `O` of [`BLOCK`] (the
/// op is only swapped in then).
pub(crate) fn conv_3x3_winograd(
    image: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    if c * h * w == 0
        || outputs == 0
        || !outputs.is_multiple_of(BLOCK)
        || !c.is_multiple_of(CHANNEL_LANES)
        || kernel.len() != outputs * c * POINTS
    {
        return;
    }
    let [th, tw] = [h.div_ceil(2), w.div_ceil(2)];
    let tiles = th * tw;
    // Tile (ty, tx) reads rows 2ty..2ty + 4 and columns 2tx..2tx + 4 of
    // the padded image: one zero row and column before it, one or two
    // after.
    let [ph, pw] = [2 * th + 2, 2 * tw + 2];
    // Six tiles by 16 output channels in twelve registers (four when
    // there are no more tiles). One group at a time keeps its transformed
    // inputs in L1: spans of groups sharing each block of the kernel, read
    // from L1, were slower on every stage (the 8x8 one: 0.15 ms against 0.13).
    let group = if tiles <= 4 { 4 } else { 6 };
    let geometry = Geometry {
        c,
        h,
        w,
        pw,
        tw,
        outputs,
        group,
    };
    super::with_scratch(
        [ph * pw * c, POINTS * group * c, POINTS * group * outputs],
        |[padded, v, m]| {
            for (x, o) in image
                .chunks_exact(c * h * w)
                .zip(out.chunks_exact_mut(outputs * h * w))
            {
                channels_last(x, [c, h, w], pw, padded);
                for first in (0..tiles).step_by(group) {
                    let n = (tiles - first).min(group);
                    geometry.transform_inputs(padded, first, n, v);
                    if group == 4 {
                        products::<4>(kernel, v, [c, outputs], m);
                    } else {
                        products::<6>(kernel, v, [c, outputs], m);
                    }
                    geometry.transform_outputs(m, bias, relu, first, n, o);
                }
            }
        },
    );
}

/// The `[c, h, w]` image `x` channels-last into `padded`, one pixel in
/// from its top and left: only the interior is written, the border stays
/// zero.
fn channels_last(x: &[f32], [c, h, w]: [usize; 3], pw: usize, padded: &mut [f32]) {
    for (channel, input) in x.chunks_exact(h * w).enumerate() {
        for (y, row) in input.chunks_exact(w).enumerate() {
            let start = ((y + 1) * pw + 1) * c + channel;
            for (value, to) in row.iter().zip(padded[start..].iter_mut().step_by(c)) {
                *to = *value;
            }
        }
    }
}

/// One run's sizes: the image's channels and size, the padded image's
/// width, tiles per row, output channels, tiles per group.
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    pw: usize,
    tw: usize,
    outputs: usize,
    group: usize,
}

impl Geometry {
    /// `Bᵀ d B` of tiles `first..first + n`, 8 channels at a time, into
    /// `v` as `[point][tile of the group][channel]`.
    fn transform_inputs(&self, padded: &[f32], first: usize, n: usize, v: &mut [f32]) {
        let Geometry {
            c, pw, tw, group, ..
        } = *self;
        for k in 0..n {
            let (ty, tx) = ((first + k) / tw, (first + k) % tw);
            let base = (2 * ty * pw + 2 * tx) * c;
            for lane in (0..c).step_by(LANES) {
                let d: [[f32x8; 4]; 4] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| load(&padded[base + (i * pw + j) * c + lane..]))
                });
                // Bᵀ d (rows), then times B (columns).
                let rows = [
                    rows_sub(d[0], d[2]),
                    rows_add(d[1], d[2]),
                    rows_sub(d[2], d[1]),
                    rows_sub(d[1], d[3]),
                ];
                for (i, r) in rows.iter().enumerate() {
                    let columns = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
                    for (j, value) in columns.into_iter().enumerate() {
                        store(value, &mut v[((i * 4 + j) * group + k) * c + lane..]);
                    }
                }
            }
        }
    }

    /// `Aᵀ M A` of tiles `first..first + n` from `m` (`[point][tile of the
    /// group][output channel]`), plus bias, clamped when `relu`: each
    /// tile's 2x2 outputs (those inside the image) into `out`.
    fn transform_outputs(
        &self,
        m: &[f32],
        bias: &[f32],
        relu: bool,
        first: usize,
        n: usize,
        out: &mut [f32],
    ) {
        let Geometry {
            h,
            w,
            tw,
            outputs,
            group,
            ..
        } = *self;
        for k in 0..n {
            let (y0, x0) = (2 * ((first + k) / tw), 2 * ((first + k) % tw));
            for lane in (0..outputs).step_by(LANES) {
                let p: [f32x8; POINTS] =
                    std::array::from_fn(|point| load(&m[(point * group + k) * outputs + lane..]));
                // Aᵀ M (rows), then times A (columns).
                let top: [f32x8; 4] = std::array::from_fn(|j| p[j] + p[4 + j] + p[8 + j]);
                let bottom: [f32x8; 4] = std::array::from_fn(|j| p[4 + j] - p[8 + j] - p[12 + j]);
                let b = load(&bias[lane..]);
                for (dy, r) in [top, bottom].iter().enumerate() {
                    let y = y0 + dy;
                    if y >= h {
                        break;
                    }
                    for (dx, value) in [r[0] + r[1] + r[2], r[1] - r[2] - r[3]]
                        .into_iter()
                        .enumerate()
                    {
                        let x = x0 + dx;
                        if x >= w {
                            break;
                        }
                        let value = value + b;
                        let value = if relu {
                            value.fast_max(f32x8::ZERO)
                        } else {
                            value
                        };
                        for (j, value) in value.to_array().into_iter().enumerate() {
                            out[((lane + j) * h + y) * w + x] = value;
                        }
                    }
                }
            }
        }
    }
}

fn rows_add(a: [f32x8; 4], b: [f32x8; 4]) -> [f32x8; 4] {
    std::array::from_fn(|j| a[j] + b[j])
}

fn rows_sub(a: [f32x8; 4], b: [f32x8; 4]) -> [f32x8; 4] {
    std::array::from_fn(|j| a[j] - b[j])
}

/// The 16 products of a group of `G` tiles: for each point, every block of
/// 16 output channels summed over the `c` input channels, 16 channels by `G`
/// tiles in `2G` registers; from `v` (`[point][tile][input channel]`) into
/// `m` as `[point][tile][output channel]`.
fn products<const G: usize>(kernel: &[f32], v: &[f32], [c, outputs]: [usize; 2], m: &mut [f32]) {
    let per_point = outputs * c;
    for (((u, v), m), _) in kernel
        .chunks_exact(per_point)
        .zip(v.chunks_exact(G * c))
        .zip(m.chunks_exact_mut(G * outputs))
        .zip(0..POINTS)
    {
        let rows: [&[f32]; G] = std::array::from_fn(|k| &v[k * c..][..c]);
        for (block, u) in u.chunks_exact(c * BLOCK).enumerate() {
            let mut acc = [[f32x8::ZERO; 2]; G];
            for (channel, weights) in u.chunks_exact(BLOCK).enumerate() {
                let w = [load(weights), load(&weights[LANES..])];
                for (acc, row) in acc.iter_mut().zip(rows) {
                    let value = f32x8::splat(row[channel]);
                    acc[0] = w[0].mul_add(value, acc[0]);
                    acc[1] = w[1].mul_add(value, acc[1]);
                }
            }
            for (k, acc) in acc.iter().enumerate() {
                let at = k * outputs + block * BLOCK;
                store(acc[0], &mut m[at..]);
                store(acc[1], &mut m[at + LANES..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::taps::definition::assert_matches_packed;
    use super::*;

    #[test]
    fn a_buffer_of_another_length_is_refused() {
        let kernel: Vec<f32> = (0..16 * 8 * 9).map(|i| i as f32).collect();
        let len = packed_len(kernel.len(), 8 * 9);
        assert_eq!(len, 16 * 8 * 16);
        for wrong in [len - 1, len + 16] {
            let mut packed = vec![0.0; wrong];
            assert!(pack(&kernel, 8 * 9, &mut packed).is_err(), "{wrong} values");
        }
    }

    #[test]
    fn a_kernel_transforms_as_g_g_gt() {
        // A kernel of ones: G 1 Gᵀ is the outer product of (1, 1.5, 0.5, 1).
        let side = [1.0, 1.5, 0.5, 1.0];
        let u = transform_kernel(&[1.0; 9]);
        for (i, value) in u.iter().enumerate() {
            assert_eq!(*value, side[i / 4] * side[i % 4], "point {i}");
        }
    }

    #[test]
    fn every_shape_matches_the_definition_including_odd_sides_and_tails() {
        // Odd and even sides (a tile half outside the image), a single
        // pixel, group sizes 4 and 6 with partial last groups, one to
        // three blocks of output channels, two images.
        assert_matches_packed(
            &[
                (1, 8, 16, 4, 4),
                (2, 8, 16, 5, 5),
                (1, 8, 32, 1, 1),
                (1, 16, 48, 8, 8),
                (1, 8, 16, 3, 7),
                (2, 24, 16, 9, 9),
                (1, 32, 32, 35, 35),
                (1, 16, 16, 17, 2),
            ],
            [3, 1, 1],
            packed_len,
            pack,
            conv_3x3_winograd,
        );
    }
}
