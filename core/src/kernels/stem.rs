//! A square convolution of stride 2 over an image of few channels (the
//! models' first layers: YuNet's 3x3 with padding 1, 3 colours in, 16
//! channels out; the recognizer's 7x7 without padding, 3 in, 32 out), with
//! an optional folded ReLU.
//!
//! tract runs YuNet's as a direct convolution that reads the image at
//! stride 2 (13 GFLOP/s, the model's costliest node at 640x480), and the
//! recognizer's as a matrix product over an im2col of 147 rows (its
//! costliest node). Here each input row is split once into its even and
//! odd columns, so every tap of eight outputs is one unaligned load, and
//! the product over the taps is `taps`'s. The op is `conv3x3`'s, with
//! stride 2.

use super::taps::{STEP, Taps, store};

/// The largest kernel side the op takes (its rows are kept in a window of
/// that many).
pub(crate) const MAX_SIZE: usize = 7;

/// Rows and columns out of `[h, w]`: a `size` x `size` window every 2
/// pixels over the image padded by `padding` pixels (none when the window
/// does not fit).
pub(crate) fn output_size([h, w]: [usize; 2], size: usize, padding: usize) -> [usize; 2] {
    [h, w].map(|n| super::windows(n, [size, 2, padding]))
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c *
/// size * size]` `kernel` (packed by `taps::pack`) at stride 2, zero-padded
/// by `padding` pixels, plus `bias`, then clamped at 0 when `relu`: `[O,
/// output_size]` each, into `out`. `size` is at most [`MAX_SIZE`].
pub(crate) fn conv_stride_2(
    image: &[f32],
    [c, h, w]: [usize; 3],
    [size, padding]: [usize; 2],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    let [oh, ow] = output_size([h, w], size, padding);
    if c * h * w * oh * ow == 0 || outputs == 0 || size == 0 || size > MAX_SIZE {
        return;
    }
    let taps = c * size * size;
    let product = Taps::new(kernel, bias, taps);
    // In the padded row `P` (`P[i]` is column `i - padding`, zero outside),
    // output column x reads `P[2x + kx]` under tap kx: `even[x + kx / 2]`
    // for an even kx, `odd[x + kx / 2]` for an odd one, where `even[j]`
    // holds `P[2j]` and `odd[j]` `P[2j + 1]`. Both are zero past the row
    // and long enough for the last step's loads.
    let span = ow.next_multiple_of(STEP) + size / 2 + 8;
    let split = |row: Option<&[f32]>, into: &mut [f32]| {
        let Some(row) = row else {
            into.fill(0.0);
            return;
        };
        let (even, odd) = into.split_at_mut(span);
        // Column 2m goes to `P[2m + padding]`, 2m + 1 to the next.
        let (first, second, at) = if padding % 2 == 0 {
            (even, odd, [padding / 2; 2])
        } else {
            (odd, even, [padding / 2, padding / 2 + 1])
        };
        // Whole pairs in a branch-free loop LLVM vectorizes; an odd last
        // column after it; zeros around what the row fills (and only
        // there: a pass over the whole row first cost the stem a tenth).
        let pairs = row.len() / 2;
        let (whole, last) = row.split_at(2 * pairs);
        for ((pair, a), b) in whole
            .chunks_exact(2)
            .zip(&mut first[at[0]..at[0] + pairs])
            .zip(&mut second[at[1]..at[1] + pairs])
        {
            *a = pair[0];
            *b = pair[1];
        }
        let mut filled = pairs;
        if let Some(&value) = last.first() {
            first[at[0] + pairs] = value;
            filled += 1;
        }
        first[..at[0]].fill(0.0);
        first[at[0] + filled..].fill(0.0);
        second[..at[1]].fill(0.0);
        second[at[1] + pairs..].fill(0.0);
    };
    // The window's input rows, each every channel's `[even, odd]`; input
    // row r in slot `r mod size`, so the `size` consecutive rows an output
    // row reads never share one, and the rows it shares with the output
    // row before stay.
    let row_len = 2 * span;
    let mut window: Vec<(Option<isize>, Vec<f32>)> = (0..size)
        .map(|_| (None, vec![0.0f32; c * row_len]))
        .collect();
    for (x, o) in image
        .chunks_exact(c * h * w)
        .zip(out.chunks_exact_mut(outputs * oh * ow))
    {
        for slot in &mut window {
            slot.0 = None;
        }
        for y in 0..oh {
            let top = 2 * y as isize - padding as isize;
            for r in top..top + size as isize {
                let (held, rows) = &mut window[r.rem_euclid(size as isize) as usize];
                if *held == Some(r) {
                    continue;
                }
                *held = Some(r);
                let inside = usize::try_from(r).ok().filter(|&r| r < h);
                for (channel, into) in rows.chunks_exact_mut(row_len).enumerate() {
                    split(inside.map(|r| &x[(channel * h + r) * w..][..w]), into);
                }
            }
            // Per tap (`c * size * size`, in the kernel's order), the
            // values it multiplies, from output column 0 on. (Nested loops:
            // dividing the tap index by a size known only at run time cost
            // the stem a twentieth.)
            let mut sources: Vec<&[f32]> = Vec::with_capacity(taps);
            for channel in 0..c {
                for r in top..top + size as isize {
                    let rows = &window[r.rem_euclid(size as isize) as usize].1;
                    let (even, odd) = rows[channel * row_len..][..row_len].split_at(span);
                    for kx in 0..size {
                        let half = if kx % 2 == 0 { even } else { odd };
                        sources.push(&half[kx / 2..]);
                    }
                }
            }
            for x0 in (0..ow).step_by(STEP) {
                let n = (ow - x0).min(STEP);
                product.step(&sources, x0, |oc, acc| {
                    store(acc, relu, &mut o[(oc * oh + y) * ow + x0..][..n]);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::taps::definition::assert_matches;
    use super::*;

    #[test]
    fn every_shape_matches_the_definition_including_borders_and_tails() {
        // Odd and even sizes (an odd one's last output reads the padding),
        // output widths around the 8 lanes and the step of 24, output
        // channels around the block of 4, two images.
        assert_matches(
            &[
                (1, 3, 16, 12, 40),
                (1, 3, 16, 7, 49),
                (2, 3, 5, 5, 17),
                (1, 1, 1, 1, 1),
                (1, 2, 7, 2, 3),
                (1, 4, 4, 9, 100),
                (2, 3, 9, 6, 48),
            ],
            [3, 2, 1],
            |image, shape, kernel, bias, relu, out| {
                conv_stride_2(image, shape, [3, 1], kernel, bias, relu, out)
            },
        );
    }

    #[test]
    fn larger_kernels_match_the_definition_with_and_without_padding() {
        // The recognizer's first layer (7x7, no padding) at small sizes,
        // an odd padding and an even one, an image the window just fits.
        let cases = [
            (1, 3, 8, 20, 30),
            (2, 3, 5, 9, 7),
            (1, 1, 4, 7, 7),
            (1, 4, 9, 15, 61),
        ];
        for (size, padding) in [(7, 0), (7, 3), (5, 2), (5, 1), (1, 0)] {
            assert_matches(
                &cases,
                [size, 2, padding],
                |image, shape, kernel, bias, relu, out| {
                    conv_stride_2(image, shape, [size, padding], kernel, bias, relu, out)
                },
            );
        }
    }
}
