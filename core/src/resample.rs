//! Pixel resampling shared by the detector input and the face chips:
//! integer box-filter downscaling (anti-aliasing before big reductions, as
//! dlib's pyramid does) and bilinear affine warps into planar f32 tensors.

use image::RgbImage;

use crate::geometry::{Point, Similarity};

/// Channel order of a planar tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

impl ChannelOrder {
    /// The plane each source channel (R, G, B) goes to.
    fn planes(self) -> [usize; 3] {
        match self {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        }
    }
}

/// An RGB image sampled bilinearly, black outside (as OpenCV and dlib pad).
struct Bilinear<'a> {
    raw: &'a [u8],
    stride: usize,
    width: i64,
    height: i64,
}

impl<'a> Bilinear<'a> {
    fn new(src: &'a RgbImage) -> Self {
        let (w, h) = src.dimensions();
        Self {
            raw: src.as_raw(),
            stride: w as usize * 3,
            width: i64::from(w),
            height: i64::from(h),
        }
    }

    /// R, G and B at `(x0 + dx, y0 + dy)`, `dx` and `dy` in 0..1.
    #[inline]
    fn rgb(&self, x0: i64, y0: i64, dx: f32, dy: f32) -> [f32; 3] {
        if x0 >= 0 && y0 >= 0 && x0 + 1 < self.width && y0 + 1 < self.height {
            // The two pixels of each of the two rows, read once.
            let base = y0 as usize * self.stride + x0 as usize * 3;
            let top_row = &self.raw[base..base + 6];
            let bottom_row = &self.raw[base + self.stride..base + self.stride + 6];
            std::array::from_fn(|c| {
                let p00 = f32::from(top_row[c]);
                let p01 = f32::from(top_row[c + 3]);
                let p10 = f32::from(bottom_row[c]);
                let p11 = f32::from(bottom_row[c + 3]);
                let top = p00 + (p01 - p00) * dx;
                let bottom = p10 + (p11 - p10) * dx;
                top + (bottom - top) * dy
            })
        } else {
            std::array::from_fn(|c| {
                let top = self.fetch(x0, y0, c) * (1.0 - dx) + self.fetch(x0 + 1, y0, c) * dx;
                let bottom =
                    self.fetch(x0, y0 + 1, c) * (1.0 - dx) + self.fetch(x0 + 1, y0 + 1, c) * dx;
                top * (1.0 - dy) + bottom * dy
            })
        }
    }

    fn fetch(&self, x: i64, y: i64, c: usize) -> f32 {
        if x < 0 || y < 0 || x >= self.width || y >= self.height {
            0.0
        } else {
            f32::from(self.raw[y as usize * self.stride + x as usize * 3 + c])
        }
    }
}

/// Averages each `factor` x `factor` block into one pixel. The last partial
/// row/column of blocks averages what is there.
pub fn box_downscale(src: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return src.clone();
    }
    let (w, h) = src.dimensions();
    let (ow, oh) = (w.div_ceil(factor), h.div_ceil(factor));
    let (f, w, h) = (factor as usize, w as usize, h as usize);
    let raw = src.as_raw();
    let stride = w * 3;
    let mut out = vec![0u8; ow as usize * oh as usize * 3];
    // The block's rows are first summed column by column (`column_sums`);
    // each block of `factor` columns is then summed once per output row.
    // (Summing pixel by pixel into the blocks was 5% of the whole pipeline
    // on the data set's photos.)
    let mut columns = vec![0u32; stride];
    let whole = (w / f) * f * 3;
    for (oy, out_row) in out.chunks_exact_mut(ow as usize * 3).enumerate() {
        let (y0, y1) = (oy * f, (oy * f + f).min(h));
        column_sums(&raw[y0 * stride..y1 * stride], stride, &mut columns);
        let rows = (y1 - y0) as u32;
        // One multiplication per channel instead of a division by the
        // pixel count, which is the same for every full block of the row.
        let full = MeanDivisor::new(rows * f as u32);
        let (blocks, partial) = columns.split_at(whole);
        let (out_blocks, out_partial) = out_row.split_at_mut(whole / f);
        // The common factors with the block width known to the compiler:
        // with a run-time width, the block loop cost four times the
        // column sums.
        match f {
            2 => block_means_of::<2>(blocks, full, out_blocks),
            3 => block_means_of::<3>(blocks, full, out_blocks),
            4 => block_means_of::<4>(blocks, full, out_blocks),
            _ => block_means(blocks, f, full, out_blocks),
        }
        if !partial.is_empty() {
            let width = partial.len() / 3;
            let divisor = MeanDivisor::new(rows * width as u32);
            block_means(partial, width, divisor, out_partial);
        }
    }
    RgbImage::from_raw(ow, oh, out).unwrap_or_else(|| RgbImage::new(ow, oh))
}

/// The sums down the rows of `band` (rows of `stride` bytes) of each of
/// its columns, into `columns`. Sixteen columns at a time summed down every
/// row in registers, then stored once: adding each row into `columns` in
/// turn read and wrote four bytes of sums per byte of image, and that
/// traffic was half of the box filter's time.
fn column_sums(band: &[u8], stride: usize, columns: &mut [u32]) {
    const LANES: usize = 16;
    let whole = stride - stride % LANES;
    let (vectors, tail) = columns[..stride].split_at_mut(whole);
    for (i, sums) in vectors.chunks_exact_mut(LANES).enumerate() {
        let mut acc = [0u32; LANES];
        for row in band.chunks_exact(stride) {
            let Some(values) = row[i * LANES..].first_chunk::<LANES>() else {
                continue;
            };
            for (acc, &value) in acc.iter_mut().zip(values) {
                *acc += u32::from(value);
            }
        }
        sums.copy_from_slice(&acc);
    }
    for (j, sum) in tail.iter_mut().enumerate() {
        *sum = band
            .chunks_exact(stride)
            .map(|row| u32::from(row[whole + j]))
            .sum();
    }
}

/// Each block of `width` pixels of `columns` (column sums, RGB
/// interleaved): the rounded means of its three channels by `divisor`,
/// into one pixel of `out`.
#[inline(always)]
fn block_means(columns: &[u32], width: usize, divisor: MeanDivisor, out: &mut [u8]) {
    for (block, pixel) in columns.chunks_exact(3 * width).zip(out.chunks_exact_mut(3)) {
        let mut sum = [0u32; 3];
        for px in block.chunks_exact(3) {
            sum[0] += px[0];
            sum[1] += px[1];
            sum[2] += px[2];
        }
        pixel.copy_from_slice(&sum.map(|v| divisor.rounded_mean(v)));
    }
}

/// [`block_means`] for blocks `F` pixels wide.
fn block_means_of<const F: usize>(columns: &[u32], divisor: MeanDivisor, out: &mut [u8]) {
    block_means(columns, F, divisor, out);
}

/// `(sum + n / 2) / n` for the sum of `n` bytes, as a multiplication by
/// `m = ceil(2^32 / n)`: exact while `n < 2^12`. The quotient's error,
/// `(sum + n / 2) * (m - 2^32 / n) / 2^32`, is then below
/// `256 * n / 2^32 < 1 / n`, the least distance of a non-integer
/// `x / n` to the next integer, so the floor is the quotient's.
#[derive(Debug, Clone, Copy)]
struct MeanDivisor {
    n: u32,
    /// 0 when `n` is too large for the multiplication to be exact.
    reciprocal: u64,
}

impl MeanDivisor {
    const EXACT_BELOW: u32 = 1 << 12;

    fn new(n: u32) -> Self {
        let n = n.max(1);
        let reciprocal = if n < Self::EXACT_BELOW {
            (1u64 << 32).div_ceil(u64::from(n))
        } else {
            0
        };
        Self { n, reciprocal }
    }

    fn rounded_mean(self, sum: u32) -> u8 {
        let v = sum + self.n / 2;
        let mean = if self.reciprocal == 0 {
            v / self.n
        } else {
            ((u64::from(v) * self.reciprocal) >> 32) as u32
        };
        mean as u8
    }
}

/// Fills a planar `[3, out_h, out_w]` f32 tensor (values 0..255) by sampling
/// `src` bilinearly at `out_to_src(x, y)` for every output pixel centre.
/// Samples outside the image are 0 (black), as OpenCV and dlib pad.
pub fn warp_into_planes(
    src: &RgbImage,
    out_to_src: &Similarity,
    out_w: usize,
    out_h: usize,
    order: ChannelOrder,
    planes: &mut [f32],
) {
    debug_assert_eq!(planes.len(), 3 * out_w * out_h);
    let source = Bilinear::new(src);
    let plane = out_w * out_h;
    let dst = order.planes();
    for oy in 0..out_h {
        for ox in 0..out_w {
            // Pixel centres map to pixel centres.
            let p = out_to_src.apply(Point::new(ox as f32 + 0.5, oy as f32 + 0.5));
            let (sx, sy) = (p.x - 0.5, p.y - 0.5);
            let (fx, fy) = (sx.floor(), sy.floor());
            let rgb = source.rgb(fx as i64, fy as i64, sx - fx, sy - fy);
            for (value, dst) in rgb.into_iter().zip(dst) {
                planes[dst * plane + oy * out_w + ox] = value;
            }
        }
    }
}

/// Resamples `src` by the uniform factor `scale` into the top-left corner of
/// a planar `[3, out_h, out_w]` tensor, and zeroes the rest (letterbox:
/// padding 0 at the bottom and right). Big reductions are box-filtered
/// first so that small details do not alias.
pub fn letterbox_into_planes(
    src: &RgbImage,
    scale: f32,
    out_w: usize,
    out_h: usize,
    order: ChannelOrder,
    planes: &mut [f32],
) {
    let factor = prefilter_factor(scale);
    let reduced;
    let (img, residual) = if factor > 1 {
        reduced = box_downscale(src, factor);
        (&reduced, scale * factor as f32)
    } else {
        (src, scale)
    };
    let (w, h) = img.dimensions();
    let used_w = ((w as f32 * residual).round() as usize).min(out_w);
    let used_h = ((h as f32 * residual).round() as usize).min(out_h);
    let inv = Similarity {
        a: 1.0 / residual,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };
    scale_into_planes(img, inv.a, [used_w, used_h], [out_w, out_h], order, planes);
    // Only the padding is zeroed: the used corner was just written.
    for plane in planes.chunks_exact_mut(out_w * out_h) {
        for row in plane[..used_h * out_w].chunks_exact_mut(out_w) {
            row[used_w..].fill(0.0);
        }
        plane[used_h * out_w..].fill(0.0);
    }
}

/// `warp_into_planes` for a pure scale by `1 / inv_scale`, into the top-left
/// `used` corner of `[3, out_h, out_w]` planes: the same samples, computed
/// separably. Enlarging (or at scale 1), bit for bit: each source row is
/// interpolated across once (into a cache of the two rows an output row
/// blends), and each output row is then one blend of two cached rows per
/// plane, a flat loop LLVM vectorizes. Reducing, within 1e-3: the two rows
/// are blended down first, then interpolated across. (Sampling pixel by
/// pixel, each output row interpolated both of its source rows again: 5%
/// of the whole pipeline's time.) Samples whose 2x2 neighbourhood leaves
/// the image keep the per-pixel path, the general warp's arithmetic.
fn scale_into_planes(
    src: &RgbImage,
    inv_scale: f32,
    [used_w, used_h]: [usize; 2],
    [out_w, out_h]: [usize; 2],
    order: ChannelOrder,
    planes: &mut [f32],
) {
    let source = Bilinear::new(src);
    let plane = out_w * out_h;
    let dst = order.planes();
    // Pixel centres map to pixel centres, as in `warp_into_planes`.
    let position = |o: usize| {
        let s = inv_scale * (o as f32 + 0.5) - 0.5;
        let f = s.floor();
        (f as i64, s - f)
    };
    let columns: Vec<(i64, f32)> = (0..used_w).map(position).collect();
    // The columns whose two source pixels are both inside: one run, since
    // the position grows with the column.
    let inside = |&(x0, _): &(i64, f32)| x0 >= 0 && x0 + 1 < source.width;
    let first = columns.iter().position(inside).unwrap_or(used_w);
    let end = first + columns[first..].iter().take_while(|c| inside(c)).count();
    let span = end - first;
    let mut cache = RowCache::new(span);
    // Reducing, an output row's two source rows are seldom the row
    // before's: blending them first, down the source row (one flat loop),
    // then interpolating across once per output row halves the work. Not
    // bit for bit the general warp (the two passes' order differs): within
    // 1e-3 of it on values 0-255 (tested).
    let mut blended = vec![0.0f32; if inv_scale > 1.0 { source.stride } else { 0 }];
    for oy in 0..used_h {
        let (y0, dy) = position(oy);
        let row = oy * out_w;
        let rows_inside = y0 >= 0 && y0 + 1 < source.height;
        if rows_inside && span > 0 && !blended.is_empty() {
            let start = y0 as usize * source.stride;
            let top = &source.raw[start..start + source.stride];
            let bottom = &source.raw[start + source.stride..start + 2 * source.stride];
            for ((value, &t), &b) in blended.iter_mut().zip(top).zip(bottom) {
                let t = f32::from(t);
                *value = t + (f32::from(b) - t) * dy;
            }
            let (p0, rest) = planes.split_at_mut(plane);
            let (p1, p2) = rest.split_at_mut(plane);
            let (r, g, b) = match order {
                ChannelOrder::Rgb => (p0, p1, p2),
                ChannelOrder::Bgr => (p2, p1, p0),
            };
            let inside = row + first..row + end;
            interpolate_across(
                &blended,
                &columns[first..end],
                [
                    &mut r[inside.clone()],
                    &mut g[inside.clone()],
                    &mut b[inside],
                ],
            );
        } else if rows_inside && span > 0 {
            let top = cache.slot(y0, y0 + 1, &source, &columns[first..end]);
            let bottom = cache.slot(y0 + 1, y0, &source, &columns[first..end]);
            for (c, &d) in dst.iter().enumerate() {
                let out = &mut planes[d * plane + row + first..d * plane + row + end];
                let top = &cache.rows[top].1[c * span..(c + 1) * span];
                let bottom = &cache.rows[bottom].1[c * span..(c + 1) * span];
                for ((value, &t), &b) in out.iter_mut().zip(top).zip(bottom) {
                    *value = t + (b - t) * dy;
                }
            }
        }
        for (ox, &(x0, dx)) in columns.iter().enumerate() {
            if rows_inside && (first..end).contains(&ox) {
                continue;
            }
            let rgb = source.rgb(x0, y0, dx, dy);
            for (value, d) in rgb.into_iter().zip(dst) {
                planes[d * plane + row + ox] = value;
            }
        }
    }
}

/// One row interpolated across at the inside `columns` from a source row
/// (`line`, RGB interleaved: the bytes of the image, or a row already
/// blended down): `out[c][i]` is channel `c` (R, G, B) at `columns[i]`,
/// whose two pixels are inside. One column's three channels per step (one
/// bounds check for its six values); the in-bounds arithmetic of
/// `Bilinear::rgb`. The values go through a block on the stack, pixel by
/// pixel, then into each plane in turn: stored straight into the three
/// planes, the loop ran twice as long when a plane was 640x448 (a 3:2
/// photo's letterbox; 1200x800: 2.1 against 0.93 ms), as three store
/// streams that far apart collided in the cache.
fn interpolate_across<T: Copy + Into<f32>>(
    line: &[T],
    columns: &[(i64, f32)],
    out: [&mut [f32]; 3],
) {
    const BLOCK: usize = 64;
    let [red, green, blue] = out;
    for (((red, green), blue), columns) in red
        .chunks_mut(BLOCK)
        .zip(green.chunks_mut(BLOCK))
        .zip(blue.chunks_mut(BLOCK))
        .zip(columns.chunks(BLOCK))
    {
        let mut block = [[0.0f32; 3]; BLOCK];
        for (px, &(x0, dx)) in block.iter_mut().zip(columns) {
            let at = x0 as usize * 3;
            let Some(&[l0, l1, l2, r0, r1, r2]) = line.get(at..at + 6) else {
                continue;
            };
            let lerp = |l: T, r: T| {
                let (l, r): (f32, f32) = (l.into(), r.into());
                l + (r - l) * dx
            };
            *px = [lerp(l0, r0), lerp(l1, r1), lerp(l2, r2)];
        }
        for (c, plane) in [red, green, blue].into_iter().enumerate() {
            for (value, px) in plane.iter_mut().zip(&block) {
                *value = px[c];
            }
        }
    }
}

/// Source rows interpolated across the inside columns, `[3, span]` each,
/// keyed by their row: the two an output row blends.
struct RowCache {
    rows: [(i64, Vec<f32>); 2],
    span: usize,
}

impl RowCache {
    fn new(span: usize) -> Self {
        Self {
            rows: [(-1, vec![0.0; 3 * span]), (-1, vec![0.0; 3 * span])],
            span,
        }
    }

    /// The slot holding source row `y`, filled if neither does, never the
    /// one holding `keep` (the other row the caller needs).
    fn slot(&mut self, y: i64, keep: i64, source: &Bilinear, columns: &[(i64, f32)]) -> usize {
        if let Some(slot) = self.rows.iter().position(|(row, _)| *row == y) {
            return slot;
        }
        let slot = usize::from(self.rows[0].0 == keep);
        let (row, values) = &mut self.rows[slot];
        *row = y;
        let start = y as usize * source.stride;
        let line = &source.raw[start..start + source.stride];
        let (first, rest) = values.split_at_mut(self.span);
        let (second, third) = rest.split_at_mut(self.span);
        interpolate_across(line, columns, [first, second, third]);
        slot
    }
}

/// The integer box-filter factor to apply before a resample by `scale`:
/// bilinear sampling is fine down to half size, below that it aliases.
pub fn prefilter_factor(scale: f32) -> u32 {
    if scale.is_finite() && scale > 0.0 && scale < 0.5 {
        ((1.0 / scale) / 1.5).floor().max(1.0) as u32
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_downscale_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            image::Rgb([if x < 2 { 10 } else { 30 }, 0, 255])
        });
        let out = box_downscale(&img, 2);
        assert_eq!(out.dimensions(), (2, 1));
        assert_eq!(out.get_pixel(0, 0).0, [10, 0, 255]);
        assert_eq!(out.get_pixel(1, 0).0, [30, 0, 255]);
    }

    #[test]
    fn identity_warp_copies_and_swaps_channels() {
        let img = RgbImage::from_fn(3, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut planes = vec![0.0; 27];
        warp_into_planes(
            &img,
            &Similarity::IDENTITY,
            3,
            3,
            ChannelOrder::Bgr,
            &mut planes,
        );
        // BGR: plane 0 is blue (7), plane 2 is red (= x).
        assert_eq!(planes[0], 7.0);
        assert_eq!(planes[18 + 3 + 2], 2.0);
        assert_eq!(planes[9 + 3 + 2], 1.0);
    }

    /// The letterbox's scale path gives the same floats as the general warp
    /// it replaced (copied into the padded planes): bit for bit when it
    /// enlarges, within 1e-3 (of values 0-255) when it reduces and blends
    /// down first. (Reductions below one half box-filter first, which the
    /// general warp does not: those are not compared.)
    #[test]
    fn letterbox_equals_the_general_warp() {
        let img = RgbImage::from_fn(97, 61, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (x * y) as u8, (x + 3 * y) as u8])
        });
        for scale in [1.0f32, 0.73, 1.6, 2.0, 0.51, 6.6, 0.9, 0.6] {
            let (out_w, out_h) = (160, 128);
            let mut fast = vec![1.0; 3 * out_w * out_h];
            letterbox_into_planes(&img, scale, out_w, out_h, ChannelOrder::Bgr, &mut fast);
            let used_w = ((97.0 * scale).round() as usize).min(out_w);
            let used_h = ((61.0 * scale).round() as usize).min(out_h);
            let inv = Similarity {
                a: 1.0 / scale,
                b: 0.0,
                tx: 0.0,
                ty: 0.0,
            };
            let mut region = vec![0.0; 3 * used_w * used_h];
            warp_into_planes(&img, &inv, used_w, used_h, ChannelOrder::Bgr, &mut region);
            for c in 0..3 {
                for y in 0..out_h {
                    for x in 0..out_w {
                        let want = if x < used_w && y < used_h {
                            region[c * used_w * used_h + y * used_w + x]
                        } else {
                            0.0
                        };
                        let got = fast[c * out_w * out_h + y * out_w + x];
                        if scale >= 1.0 {
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "scale {scale} at {c},{y},{x}"
                            );
                        } else {
                            assert!(
                                (got - want).abs() <= 1e-3,
                                "scale {scale} at {c},{y},{x}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn box_downscale_equals_the_rounded_mean_of_each_block() {
        let img = RgbImage::from_fn(23, 17, |x, y| {
            image::Rgb([
                (x * 37 + y * 11) as u8,
                (x * y * 5) as u8,
                (250 - x - y) as u8,
            ])
        });
        for factor in [2u32, 3, 4, 7, 16, 30] {
            let out = box_downscale(&img, factor);
            assert_eq!(
                out.dimensions(),
                (23u32.div_ceil(factor), 17u32.div_ceil(factor))
            );
            for (ox, oy, px) in out.enumerate_pixels() {
                for c in 0..3 {
                    let (mut sum, mut n) = (0u32, 0u32);
                    for y in oy * factor..((oy + 1) * factor).min(17) {
                        for x in ox * factor..((ox + 1) * factor).min(23) {
                            sum += u32::from(img.get_pixel(x, y).0[c]);
                            n += 1;
                        }
                    }
                    assert_eq!(
                        u32::from(px.0[c]),
                        (sum + n / 2) / n,
                        "factor {factor} at {ox},{oy},{c}"
                    );
                }
            }
        }
    }

    /// Every pixel count the multiplication is used for, at each mean and
    /// at each mean's edges (one below a multiple of `n`, the multiple, and
    /// the rounding point), against the division.
    #[test]
    fn mean_divisor_matches_the_division() {
        for n in 1..MeanDivisor::EXACT_BELOW + 3 {
            let divisor = MeanDivisor::new(n);
            for k in 0..=255u32 {
                for sum in [
                    k * n,
                    (k * n).saturating_sub(1),
                    k * n + n / 2,
                    k * n + n - 1,
                ] {
                    if sum > 255 * n {
                        continue;
                    }
                    assert_eq!(
                        u32::from(divisor.rounded_mean(sum)),
                        (sum + n / 2) / n,
                        "sum {sum} over {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn box_downscale_averages_partial_blocks_too() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(10 * x + y) as u8, 7, 200]));
        let out = box_downscale(&img, 2);
        assert_eq!(out.dimensions(), (3, 2));
        // Top-left block: x 0..2, y 0..2: (0 + 1 + 10 + 11) / 4 = 5.5 -> 6.
        assert_eq!(out.get_pixel(0, 0).0, [6, 7, 200]);
        // Right column, bottom row: the single pixel (4, 2) = 42.
        assert_eq!(out.get_pixel(2, 1).0, [42, 7, 200]);
        // Right column, top row: x 4, y 0..2: (40 + 41) / 2 = 40.5 -> 41.
        assert_eq!(out.get_pixel(2, 0).0, [41, 7, 200]);
    }

    #[test]
    fn letterbox_pads_bottom_right_with_zero() {
        let img = RgbImage::from_pixel(4, 2, image::Rgb([100, 100, 100]));
        let mut planes = vec![1.0; 3 * 4 * 4];
        letterbox_into_planes(&img, 1.0, 4, 4, ChannelOrder::Rgb, &mut planes);
        assert_eq!(planes[0], 100.0);
        assert_eq!(planes[4 + 3], 100.0);
        assert_eq!(planes[2 * 4], 0.0);
        assert_eq!(planes[15], 0.0);
    }
}
