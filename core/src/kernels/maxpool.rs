//! Max pooling of stride 2, unpadded, channel-first: 2x2 (YuNet's) and
//! 3x3 (the recognizer's, after its first layer).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise::load;

/// Input `[.., H, W]`, output `[.., (H - size) / 2 + 1, (W - size) / 2 +
/// 1]` (ONNX's floor rounding: a last row or column no window covers is
/// dropped). `size` is 2 or 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MaxPoolStride2 {
    pub(crate) size: usize,
}

/// Pooled rows or columns out of `n`.
fn pooled(n: usize, size: usize) -> usize {
    super::windows(n, [size, 2, 0])
}

impl Op for MaxPoolStride2 {
    fn name(&self) -> StaticName {
        let size = self.size;
        format!("FaceMaxPool{size}x{size}").into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPoolStride2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let image = args_1!(inputs);
        let mut shape = image.shape().to_vec();
        let [.., h, w] = shape[..] else {
            bail!("max pool input must have rank 2 or more, has shape {shape:?}");
        };
        let rank = shape.len();
        shape[rank - 2] = pooled(h, self.size);
        shape[rank - 1] = pooled(w, self.size);
        let image = super::floats(&image)?;
        match self.size {
            2 => super::output(&shape, |out| max_pool_2x2(image, [h, w], out)),
            3 => super::output(&shape, |out| max_pool_3x3_stride_2(image, [h, w], out)),
            size => bail!("max pool of size {size}: only 2 and 3 are implemented"),
        }
    }
}

impl TypedOp for MaxPoolStride2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].rank() >= 2);
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let rank = shape.len();
        for d in &mut shape[rank - 2..] {
            *d = TDim::Val(pooled(usize::try_from(d.to_i64()?)?, self.size) as i64);
        }
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// Each `[h, w]` plane of `image` pooled by 3x3 windows every 2 pixels into
/// a `[(h - 3) / 2 + 1, (w - 3) / 2 + 1]` one of `out`: the three rows'
/// maximum column by column (eight at a time), then each window's three
/// columns of it.
pub(crate) fn max_pool_3x3_stride_2(image: &[f32], [h, w]: [usize; 2], out: &mut [f32]) {
    let (oh, ow) = (pooled(h, 3), pooled(w, 3));
    if oh == 0 || ow == 0 {
        return;
    }
    let columns = 2 * ow + 1;
    let mut rows_max = vec![0.0f32; columns];
    for (input, plane) in image.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for (oy, row) in plane.chunks_exact_mut(ow).enumerate() {
            let rows: [&[f32]; 3] = std::array::from_fn(|k| &input[(2 * oy + k) * w..][..columns]);
            let mut x = 0;
            while x + 8 <= columns {
                let max = load(&rows[0][x..])
                    .fast_max(load(&rows[1][x..]))
                    .fast_max(load(&rows[2][x..]));
                rows_max[x..x + 8].copy_from_slice(max.as_array());
                x += 8;
            }
            for x in x..columns {
                rows_max[x] = rows[0][x].max(rows[1][x]).max(rows[2][x]);
            }
            for (x, out) in row.iter_mut().enumerate() {
                let window = &rows_max[2 * x..2 * x + 3];
                *out = window[0].max(window[1]).max(window[2]);
            }
        }
    }
}

/// Each `[h, w]` plane of `image` pooled into a `[h / 2, w / 2]` one of
/// `out`.
pub(crate) fn max_pool_2x2(image: &[f32], [h, w]: [usize; 2], out: &mut [f32]) {
    let (oh, ow) = (h / 2, w / 2);
    if oh == 0 || ow == 0 {
        return;
    }
    let mut rows_max = vec![0.0f32; 2 * ow];
    for (input, plane) in image.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for (oy, row) in plane.chunks_exact_mut(ow).enumerate() {
            let top = &input[2 * oy * w..][..2 * ow];
            let bottom = &input[(2 * oy + 1) * w..][..2 * ow];
            pool_rows(top, bottom, &mut rows_max, row);
        }
    }
}

/// One pooled row (`out`, `n` values) from two input rows of at least
/// `2n`: their vertical maximum goes through `rows_max` (`2n` values).
pub(super) fn pool_rows(top: &[f32], bottom: &[f32], rows_max: &mut [f32], out: &mut [f32]) {
    let n = 2 * out.len();
    let mut x = 0;
    while x + 8 <= n {
        rows_max[x..x + 8].copy_from_slice(load(&top[x..]).fast_max(load(&bottom[x..])).as_array());
        x += 8;
    }
    for x in x..n {
        rows_max[x] = top[x].max(bottom[x]);
    }
    for (out, pair) in out.iter_mut().zip(rows_max.chunks_exact(2)) {
        *out = pair[0].max(pair[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_3x3_windows_every_2_pixels_and_drops_what_no_window_covers() {
        for (planes, h, w) in [
            (2, 7, 9),
            (1, 72, 72),
            (3, 3, 3),
            (1, 4, 20),
            (2, 9, 34),
            (1, 2, 5),
        ] {
            let image: Vec<f32> = (0..planes * h * w)
                .map(|i| ((i * 7919) % 101) as f32 - 50.0)
                .collect();
            let (oh, ow) = (pooled(h, 3), pooled(w, 3));
            let mut out = vec![f32::NAN; planes * oh * ow];
            max_pool_3x3_stride_2(&image, [h, w], &mut out);
            for p in 0..planes {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut want = f32::NEG_INFINITY;
                        for yy in 2 * y..2 * y + 3 {
                            for xx in 2 * x..2 * x + 3 {
                                want = want.max(image[p * h * w + yy * w + xx]);
                            }
                        }
                        assert_eq!(
                            out[p * oh * ow + y * ow + x],
                            want,
                            "{planes}x{h}x{w} at {p},{y},{x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pools_every_plane_and_drops_an_odd_last_row_and_column() {
        for (planes, h, w) in [(2, 4, 6), (3, 5, 19), (1, 2, 2), (2, 7, 33), (1, 1, 4)] {
            let image: Vec<f32> = (0..planes * h * w)
                .map(|i| ((i * 7919) % 101) as f32 - 50.0)
                .collect();
            let (oh, ow) = (h / 2, w / 2);
            let mut out = vec![f32::NAN; planes * oh * ow];
            max_pool_2x2(&image, [h, w], &mut out);
            for p in 0..planes {
                for y in 0..oh {
                    for x in 0..ow {
                        let at = |yy: usize, xx: usize| image[p * h * w + yy * w + xx];
                        let want = at(2 * y, 2 * x)
                            .max(at(2 * y, 2 * x + 1))
                            .max(at(2 * y + 1, 2 * x))
                            .max(at(2 * y + 1, 2 * x + 1));
                        assert_eq!(
                            out[p * oh * ow + y * ow + x],
                            want,
                            "{planes}x{h}x{w} at {p},{y},{x}"
                        );
                    }
                }
            }
        }
    }
}
