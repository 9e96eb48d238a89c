//! A 3x3 convolution of stride 1 and padding 1, channels to channels (the
//! recognizer's residual blocks), with an optional folded ReLU.
//!
//! tract lowers it to a matrix product over an im2col of the image, which it
//! pads first (a `Pad` node) and packs lazily panel by panel: about a fifth
//! of the recognizer's time went to those copies. Here each channel is
//! copied once into a plane with a zero border of one pixel; in that plane,
//! output pixel `(y, x)` and its input under tap `(ky, kx)` are a fixed
//! distance apart, `ky * (w + 2) + kx`, so every tap of a run of 24 outputs
//! is three unaligned loads from the same plane, and `taps` does the
//! product. The two border columns of each padded row are computed too and
//! dropped (2 of `w + 2`: the op is only swapped in for wide enough images).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::deep3x3::conv_3x3_deep;
use super::stem::{self, conv_stride_2};
use super::taps::{STEP, Taps, store};
use super::winograd;

/// Which direct convolution a [`DirectConv`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Direct {
    /// 3x3, stride 1, padding 1 (this module's).
    Stride1,
    /// `size` x `size`, stride 2, `padding` on every side (`stem`'s).
    Stride2 { size: usize, padding: usize },
    /// 3x3 over a small image with many channels, stride 1 or 2
    /// (`deep3x3`'s).
    Deep { stride: usize, padding: usize },
    /// 3x3, stride 1, padding 1 by Winograd's F(2x2, 3x3) (`winograd`'s).
    Winograd,
}

impl Direct {
    /// The kernel's side, the stride and the padding.
    fn geometry(self) -> [usize; 3] {
        match self {
            Direct::Stride1 | Direct::Winograd => [3, 1, 1],
            Direct::Stride2 { size, padding } => [size, 2, padding],
            Direct::Deep { stride, padding } => [3, stride, padding],
        }
    }
}

/// The project's direct convolutions. Inputs: the `[.., C, H, W]` image,
/// the `[O, C * size * size]` kernel (each input channel's taps,
/// row-major) as `taps::pack` leaves it, the `[O]` bias. The output is `[..,
/// O, (H + 2 * padding - size) / stride + 1, (W + ..) / stride + 1]`
/// ([`DirectConv::output_shape`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DirectConv {
    pub(crate) direct: Direct,
    /// Whether `max(x, 0)` is applied to the output.
    pub(crate) relu: bool,
}

impl DirectConv {
    /// The output's shape for an image of `shape` and `outputs` channels.
    pub(crate) fn output_shape(&self, shape: &[usize], outputs: usize) -> TractResult<TVec<usize>> {
        let geometry = self.direct.geometry();
        super::channels_and_size(shape, outputs, |h, w| {
            [h, w].map(|n| super::windows(n, geometry))
        })
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        match self.direct {
            Direct::Stride1 => "FaceConv3x3".into(),
            Direct::Stride2 { size, .. } => format!("FaceConv{size}x{size}Stride2").into(),
            Direct::Deep { stride, .. } => format!("FaceConv3x3Deep{stride}").into(),
            Direct::Winograd => "FaceConv3x3Winograd".into(),
        }
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}, relu: {}", self.direct, self.relu)])
    }

    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (image, kernel, bias) = args_3!(inputs);
        let shape = image.shape();
        let [.., c, h, w] = shape[..] else {
            bail!("convolution input must have rank 3 or more, has shape {shape:?}");
        };
        let geometry = self.direct.geometry();
        let size = geometry[0];
        ensure!(h > 0 && w > 0 && (1..=stem::MAX_SIZE).contains(&size));
        let outputs = bias.len();
        ensure!(match self.direct {
            Direct::Winograd => kernel.len() == winograd::packed_len(outputs * c * 9, c * 9),
            _ => kernel.len() == outputs * c * size * size,
        });
        let output_shape = self.output_shape(shape, outputs)?;
        let (image, kernel, bias) = (
            super::floats(&image)?,
            super::floats(&kernel)?,
            super::floats(&bias)?,
        );
        super::output(&output_shape, |out| match self.direct {
            Direct::Stride1 => conv_3x3(image, [c, h, w], kernel, bias, self.relu, out),
            Direct::Stride2 { size, padding } => conv_stride_2(
                image,
                [c, h, w],
                [size, padding],
                kernel,
                bias,
                self.relu,
                out,
            ),
            Direct::Winograd => {
                winograd::conv_3x3_winograd(image, [c, h, w], kernel, bias, self.relu, out)
            }
            Direct::Deep { stride, padding } => conv_3x3_deep(
                image,
                [c, h, w],
                [stride, padding],
                kernel,
                bias,
                self.relu,
                out,
            ),
        })
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 3 && inputs[0].rank() >= 3);
        let shape = super::concrete(inputs[0])?;
        let outputs = super::concrete(inputs[2])?.iter().product();
        Ok(tvec!(f32::fact(&*self.output_shape(&shape, outputs)?)))
    }

    as_op!();
}

/// Every image of `image` (`[c, h, w]` each) convolved with the `[O, c *
/// 9]` `kernel` (packed by `taps::pack`), zero-padded by one pixel, plus
/// `bias`, then clamped at 0 when `relu`: `[O, h, w]` each, into `out`.
pub(crate) fn conv_3x3(
    image: &[f32],
    [c, h, w]: [usize; 3],
    kernel: &[f32],
    bias: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    let outputs = bias.len();
    if c * h * w == 0 || outputs == 0 {
        return;
    }
    let product = Taps::new(kernel, bias, c * 9);
    // Position p = y * (w + 2) + x is output (y, x) for x < w; the padded
    // plane holds input row r at rows r + 1, column x at x + 1, so tap (ky,
    // kx) of position p is the plane's value p + ky * (w + 2) + kx.
    let wp = w + 2;
    let positions = ((h - 1) * wp + w).next_multiple_of(STEP);
    // Long enough for the last step's farthest tap, zero past the image.
    let plane = positions + 2 * wp + 2;
    super::with_scratch([c * plane, outputs * positions], |[padded, by_position]| {
        for (x, o) in image
            .chunks_exact(c * h * w)
            .zip(out.chunks_exact_mut(outputs * h * w))
        {
            // Only the interior is written: the border stays zero.
            for (input, plane) in x.chunks_exact(h * w).zip(padded.chunks_exact_mut(plane)) {
                for (row, to) in input.chunks_exact(w).zip(plane[wp + 1..].chunks_mut(wp)) {
                    to[..w].copy_from_slice(row);
                }
            }
            for x0 in (0..positions).step_by(STEP) {
                product.step_3x3(padded, [plane, wp], x0, |oc, acc| {
                    store(acc, relu, &mut by_position[oc * positions + x0..][..STEP]);
                });
            }
            // Each output row, without the two border columns.
            for (channel, o) in by_position
                .chunks_exact(positions)
                .zip(o.chunks_exact_mut(h * w))
            {
                for (y, row) in o.chunks_exact_mut(w).enumerate() {
                    row.copy_from_slice(&channel[y * wp..][..w]);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::taps::definition::assert_matches;
    use super::*;

    #[test]
    fn every_shape_matches_the_definition_including_borders_and_tails() {
        // Single rows and columns, positions around the step of 24, output
        // channels around the block of 4, two images (the padded planes are
        // reused).
        assert_matches(
            &[
                (1, 8, 8, 6, 6),
                (2, 3, 5, 5, 17),
                (1, 1, 1, 1, 1),
                (1, 2, 7, 1, 30),
                (1, 5, 4, 30, 1),
                (2, 16, 9, 9, 20),
                (1, 32, 32, 12, 12),
            ],
            [3, 1, 1],
            conv_3x3,
        );
    }
}
