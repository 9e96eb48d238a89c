//! A 3x3 convolution of stride 2 and padding 1 over an image of few
//! channels (YuNet's first layer: 3 colours in, 16 channels out), with an
//! optional folded ReLU.
//!
//! tract runs it as a direct convolution that reads the image at stride 2
//! (13 GFLOP/s, the model's costliest node at 640x480). Here each input row
//! is split once into its even and odd columns, so every tap of eight
//! outputs is one unaligned load, and the product over the taps is
//! `taps`'s. The op is `conv3x3`'s, with stride 2.

use super::taps::{STEP, Taps, store};

/// Rows and columns out of `[h, w]`: a 3x3 window every 2 pixels over the
/// image padded by one pixel.
pub(crate) fn output_size([h, w]: [usize; 2]) -> [usize; 2] {
    [h.div_ceil(2), w.div_ceil(2)]
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c *
/// 9]` `kernel` (packed by `taps::pack`) at stride 2, zero-padded by one pixel, plus `bias`, then
/// clamped at 0 when `relu`: `[O, (h + 1) / 2, (w + 1) / 2]` each, into
/// `out`.
pub(crate) fn conv_3x3_stride_2(
    image: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    let [oh, ow] = output_size([h, w]);
    if c * h * w == 0 || outputs == 0 {
        return;
    }
    let taps = c * 9;
    let product = Taps::new(kernel, bias, taps);
    // Output column x reads input columns 2x - 1, 2x and 2x + 1: `odd[x]`,
    // `even[x]` and `odd[x + 1]`, where `odd[j]` holds column 2j - 1 (the
    // padding for j = 0) and `even[j]` column 2j. Both are zero past the
    // row and long enough for the last step's loads.
    let span = ow.next_multiple_of(STEP) + 8;
    let split = |row: Option<&[f32]>, into: &mut [f32]| {
        let (odd, even) = into.split_at_mut(span);
        let Some(row) = row else {
            odd.fill(0.0);
            even.fill(0.0);
            return;
        };
        // Whole pairs in a branch-free loop LLVM vectorizes; an odd last
        // column after it.
        let pairs = row.len() / 2;
        let (whole, last) = row.split_at(2 * pairs);
        for ((pair, even), odd) in whole
            .chunks_exact(2)
            .zip(&mut even[..pairs])
            .zip(&mut odd[1..=pairs])
        {
            *even = pair[0];
            *odd = pair[1];
        }
        odd[0] = 0.0;
        odd[pairs + 1..].fill(0.0);
        even[pairs..].fill(0.0);
        if let Some(&value) = last.first() {
            even[pairs] = value;
        }
    };
    // Per input row of the window, every channel's `[odd, even]`.
    let row_len = 2 * span;
    let mut window: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0f32; c * row_len]);
    for (x, o) in image
        .chunks_exact(c * h * w)
        .zip(out.chunks_exact_mut(outputs * oh * ow))
    {
        // The input row `r` of channel `channel`, if inside the image.
        let input_row = |channel: usize, r: isize| {
            let r = usize::try_from(r).ok().filter(|&r| r < h)?;
            Some(&x[(channel * h + r) * w..][..w])
        };
        for y in 0..oh {
            // Rows 2y - 1, 2y, 2y + 1; the first was the last row before.
            let top = 2 * y as isize - 1;
            if y == 0 {
                for channel in 0..c {
                    split(None, &mut window[0][channel * row_len..][..row_len]);
                }
            } else {
                window.swap(0, 2);
            }
            for (k, buffer) in window.iter_mut().enumerate().skip(1) {
                for channel in 0..c {
                    let row = input_row(channel, top + k as isize);
                    split(row, &mut buffer[channel * row_len..][..row_len]);
                }
            }
            // Per tap (`c * 9`, in the kernel's order), the values it
            // multiplies, from output column 0 on.
            let sources: Vec<&[f32]> = (0..taps)
                .map(|t| {
                    let (channel, ky, kx) = (t / 9, t / 3 % 3, t % 3);
                    let row = &window[ky][channel * row_len..][..row_len];
                    let (odd, even) = row.split_at(span);
                    match kx {
                        0 => odd,
                        1 => even,
                        _ => &odd[1..],
                    }
                })
                .collect();
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
            2,
            conv_3x3_stride_2,
        );
    }
}
