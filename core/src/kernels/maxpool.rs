//! 2x2 max pooling, stride 2, unpadded, channel-first.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise::load;

/// Input `[.., H, W]`, output `[.., H / 2, W / 2]` (a last odd row or column
/// is dropped, as ONNX's floor rounding does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MaxPool2x2;

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "FaceMaxPool2x2".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let image = args_1!(inputs);
        let mut shape = image.shape().to_vec();
        let [.., h, w] = shape[..] else {
            bail!("max pool input must have rank 2 or more, has shape {shape:?}");
        };
        let rank = shape.len();
        shape[rank - 2] = h / 2;
        shape[rank - 1] = w / 2;
        let image = super::floats(&image)?;
        super::output(&shape, |out| max_pool_2x2(image, [h, w], out))
    }
}

impl TypedOp for MaxPool2x2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].rank() >= 2);
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        let rank = shape.len();
        for d in &mut shape[rank - 2..] {
            *d = TDim::Val(d.to_i64()? / 2);
        }
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
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
