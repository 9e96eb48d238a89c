//! The product both direct convolutions (`stem`, `conv3x3`) run: for
//! every output channel, 24 consecutive positions summed over the taps, where
//! each tap is one row of inputs (a slice read from the step's position on)
//! times one weight.
//!
//! Four output channels accumulate three vectors of 8 positions each in
//! twelve registers; each tap costs three loads, four broadcasts and twelve
//! FMAs, as the 1x1 convolution's product does.

use tract_onnx::tract_core::internal::{TractResult, ensure};
use wide::f32x8;

use super::depthwise::load;

/// Output channels computed together.
const BLOCK: usize = 4;

/// Positions per step.
pub(super) const STEP: usize = 24;

/// How many values [`pack`] writes for a kernel of `len` values: as many.
pub(crate) fn packed_len(len: usize, _taps: usize) -> usize {
    len
}

/// A `[O, taps]` kernel in the order the product reads it: by block of
/// four output channels, then tap (the four weights one step broadcasts
/// are adjacent), then the rows of the channels left over as they are,
/// into `packed` (as long as `kernel`).
/// Done once when the op is swapped in: packed on each call, a 64-channel
/// layer's weights were a 150 KB allocation and copy every time.
pub(crate) fn pack(kernel: &[f32], taps: usize, packed: &mut [f32]) -> TractResult<()> {
    ensure!(packed.len() == packed_len(kernel.len(), taps));
    let outputs = kernel.len().checked_div(taps).unwrap_or(0);
    let blocked = outputs / BLOCK * BLOCK * taps;
    if taps == 0 {
        return Ok(());
    }
    let (blocks, rest) = packed.split_at_mut(blocked);
    let mut slots = blocks.chunks_exact_mut(BLOCK);
    // Block by block, tap by tap (as `deep3x3::pack`, no division per
    // weight).
    for rows in kernel.chunks_exact(taps * BLOCK) {
        for tap in 0..taps {
            let Some(slot) = slots.next() else {
                break;
            };
            for (to, row) in slot.iter_mut().zip(rows.chunks_exact(taps)) {
                *to = row[tap];
            }
        }
    }
    rest.copy_from_slice(&kernel[blocked..]);
    Ok(())
}

/// A convolution's kernel, as [`pack`] leaves it, and its `[O]` bias.
pub(super) struct Taps<'a> {
    packed: &'a [f32],
    bias: &'a [f32],
    taps: usize,
}

impl<'a> Taps<'a> {
    pub(super) fn new(packed: &'a [f32], bias: &'a [f32], taps: usize) -> Self {
        Self { packed, bias, taps }
    }

    /// Every output channel's 24 values at positions `x0..x0 + 24`, each
    /// `sources[t][x0 + i]` (every source holds at least `x0 + 24` values)
    /// times tap `t`'s weight, summed with the bias: handed to `emit` as
    /// three vectors with the channel's index.
    #[inline(always)]
    pub(super) fn step(
        &self,
        sources: &[&[f32]],
        x0: usize,
        mut emit: impl FnMut(usize, &[f32x8; 3]),
    ) {
        let (taps, bias) = (self.taps, self.bias);
        debug_assert_eq!(sources.len(), taps);
        let blocks = bias.len() / BLOCK;
        for block in 0..blocks {
            let o0 = block * BLOCK;
            let mut acc: [[f32x8; 3]; BLOCK] =
                std::array::from_fn(|j| [f32x8::splat(bias[o0 + j]); 3]);
            for (weights, source) in self.packed[block * taps * BLOCK..][..taps * BLOCK]
                .chunks_exact(BLOCK)
                .zip(sources)
            {
                let from = &source[x0..x0 + STEP];
                accumulate(
                    &mut acc,
                    [load(from), load(&from[8..]), load(&from[16..])],
                    weights,
                );
            }
            for (j, acc) in acc.iter().enumerate() {
                emit(o0 + j, acc);
            }
        }
        for (oc, &bias) in bias.iter().enumerate().skip(blocks * BLOCK) {
            let mut acc = [f32x8::splat(bias); 3];
            for (&weight, source) in self.packed[oc * taps..(oc + 1) * taps].iter().zip(sources) {
                let from = &source[x0..x0 + STEP];
                let weight = f32x8::splat(weight);
                for (i, acc) in acc.iter_mut().enumerate() {
                    *acc = load(&from[8 * i..]).mul_add(weight, *acc);
                }
            }
            emit(oc, &acc);
        }
    }
}

impl Taps<'_> {
    /// [`step`](Taps::step) for a 3x3 kernel over zero-bordered planes
    /// (`conv3x3`): tap `(channel, ky, kx)` of position `x0 + i` is
    /// `padded[channel * plane + ky * wp + kx + x0 + i]`. Each channel's three
    /// rows are bounds-checked once as windows of 26 values, and its nine
    /// taps read at fixed offsets into them: through a slice per tap, the
    /// loop loaded each tap's pointer and length and checked it, nine
    /// times per channel.
    #[inline(always)]
    pub(super) fn step_3x3(
        &self,
        padded: &[f32],
        [plane, wp]: [usize; 2],
        x0: usize,
        mut emit: impl FnMut(usize, &[f32x8; 3]),
    ) {
        let (taps, bias) = (self.taps, self.bias);
        let blocks = bias.len() / BLOCK;
        let windows = |channel: usize| -> Option<[&[f32; STEP + 2]; 3]> {
            let at = channel * plane + x0;
            Some([
                padded.get(at..)?.first_chunk()?,
                padded.get(at + wp..)?.first_chunk()?,
                padded.get(at + 2 * wp..)?.first_chunk()?,
            ])
        };
        for block in 0..blocks {
            let o0 = block * BLOCK;
            let mut acc: [[f32x8; 3]; BLOCK] =
                std::array::from_fn(|j| [f32x8::splat(bias[o0 + j]); 3]);
            for (channel, weights) in self.packed[block * taps * BLOCK..][..taps * BLOCK]
                .chunks_exact(9 * BLOCK)
                .enumerate()
            {
                let Some(rows) = windows(channel) else {
                    continue;
                };
                for (row, weights) in rows.iter().zip(weights.chunks_exact(3 * BLOCK)) {
                    for (kx, weights) in weights.chunks_exact(BLOCK).enumerate() {
                        let v = [
                            load(&row[kx..]),
                            load(&row[kx + 8..]),
                            load(&row[kx + 16..]),
                        ];
                        accumulate(&mut acc, v, weights);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                emit(o0 + j, acc);
            }
        }
        for (oc, &bias) in bias.iter().enumerate().skip(blocks * BLOCK) {
            let mut acc = [f32x8::splat(bias); 3];
            for (channel, weights) in self.packed[oc * taps..(oc + 1) * taps]
                .chunks_exact(9)
                .enumerate()
            {
                let Some(rows) = windows(channel) else {
                    continue;
                };
                for (row, weights) in rows.iter().zip(weights.chunks_exact(3)) {
                    for (kx, &weight) in weights.iter().enumerate() {
                        let weight = f32x8::splat(weight);
                        for (i, acc) in acc.iter_mut().enumerate() {
                            *acc = load(&row[kx + 8 * i..]).mul_add(weight, *acc);
                        }
                    }
                }
            }
            emit(oc, &acc);
        }
    }
}

/// One tap of a block: its three vectors of inputs times each of the
/// block's output channels' weights, added into their accumulators.
#[inline(always)]
fn accumulate(acc: &mut [[f32x8; 3]; BLOCK], v: [f32x8; 3], weights: &[f32]) {
    for (acc, &weight) in acc.iter_mut().zip(weights) {
        let weight = f32x8::splat(weight);
        for (acc, v) in acc.iter_mut().zip(v) {
            *acc = v.mul_add(weight, *acc);
        }
    }
}

/// The first `out.len()` (at most 24) values of three vectors, clamped at
/// 0 when `relu`. Whole steps are stored as vectors (a `memcpy` of a length
/// known only at run time was a call).
#[inline(always)]
pub(super) fn store(acc: &[f32x8; 3], relu: bool, out: &mut [f32]) {
    let acc = acc.map(|v| if relu { v.fast_max(f32x8::ZERO) } else { v });
    if let Some(out) = out.first_chunk_mut::<STEP>() {
        for (v, out) in acc.iter().zip(out.chunks_exact_mut(8)) {
            out.copy_from_slice(v.as_array());
        }
    } else {
        for (v, out) in acc.iter().zip(out.chunks_mut(8)) {
            out.copy_from_slice(&v.as_array()[..out.len()]);
        }
    }
}

/// The direct convolutions' shared test: the op against the definition.
#[cfg(test)]
pub(super) mod definition {
    /// A `size` x `size` convolution of `stride` and `padding` by its
    /// definition, one output at a time in f64.
    fn reference(
        image: &[f32],
        [c, h, w]: [usize; 3],
        kernel: &[f32],
        bias: &[f32],
        relu: bool,
        [size, stride, padding]: [usize; 3],
    ) -> Vec<f32> {
        let outputs = bias.len();
        let (oh, ow) = (
            (h + 2 * padding - size) / stride + 1,
            (w + 2 * padding - size) / stride + 1,
        );
        let images = image.len() / (c * h * w);
        let mut out = vec![0.0; images * outputs * oh * ow];
        for n in 0..images {
            for o in 0..outputs {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut sum = bias[o] as f64;
                        for ch in 0..c {
                            for ky in 0..size {
                                for kx in 0..size {
                                    let iy = (stride * y + ky) as isize - padding as isize;
                                    let ix = (stride * x + kx) as isize - padding as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                        continue;
                                    }
                                    let value =
                                        image[((n * c + ch) * h + iy as usize) * w + ix as usize];
                                    let weight = kernel[((o * c + ch) * size + ky) * size + kx];
                                    sum += (value * weight) as f64;
                                }
                            }
                        }
                        let sum = sum as f32;
                        out[((n * outputs + o) * oh + y) * ow + x] =
                            if relu { sum.max(0.0) } else { sum };
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + salt * 104_729) % 211) as f32 / 105.0 - 1.0)
            .collect()
    }

    /// The convolution `run` (image, `[c, h, w]`, the kernel packed by
    /// `pack`, bias, relu, output) of `[size, stride, padding]` against the
    /// definition on every `(images, c, outputs, h, w)` of `cases`, with
    /// and without the ReLU, within 1e-5 (relative past 1: the sums'
    /// rounding); its output starts as NaN, so a value left unwritten
    /// fails.
    pub(in crate::kernels) fn assert_matches(
        cases: &[(usize, usize, usize, usize, usize)],
        geometry: [usize; 3],
        run: impl Fn(&[f32], [usize; 3], &[f32], &[f32], bool, &mut [f32]),
    ) {
        assert_matches_packed(cases, geometry, super::packed_len, super::pack, run);
    }

    /// [`assert_matches`] for a kernel packed by `pack` (`[O, taps]`, the
    /// number of taps) instead of `taps::pack`.
    pub(in crate::kernels) fn assert_matches_packed(
        cases: &[(usize, usize, usize, usize, usize)],
        [size, stride, padding]: [usize; 3],
        packed_len: impl Fn(usize, usize) -> usize,
        pack: impl Fn(&[f32], usize, &mut [f32]) -> super::TractResult<()>,
        run: impl Fn(&[f32], [usize; 3], &[f32], &[f32], bool, &mut [f32]),
    ) {
        for &(images, c, outputs, h, w) in cases {
            let image = values(images * c * h * w, 1);
            let kernel = values(outputs * c * size * size, 2);
            let bias = values(outputs, 3);
            let taps = c * size * size;
            let mut packed = vec![f32::NAN; packed_len(kernel.len(), taps)];
            pack(&kernel, taps, &mut packed).expect("a buffer of packed_len values");
            for relu in [false, true] {
                let geometry = [size, stride, padding];
                let want = reference(&image, [c, h, w], &kernel, &bias, relu, geometry);
                let mut got = vec![f32::NAN; want.len()];
                run(&image, [c, h, w], &packed, &bias, relu, &mut got);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "{images}x{c}->{outputs}x{h}x{w} {size}x{size} stride {stride} \
                         padding {padding} relu {relu} at {i}: {g} vs {e}"
                    );
                }
            }
        }
    }
}
