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

/// Averages each `factor` x `factor` block into one pixel. The last partial
/// row/column of blocks averages what is there.
pub fn box_downscale(src: &RgbImage, factor: u32) -> RgbImage {
    if factor <= 1 {
        return src.clone();
    }
    let (w, h) = src.dimensions();
    let (ow, oh) = (w.div_ceil(factor), h.div_ceil(factor));
    let raw = src.as_raw();
    let stride = w as usize * 3;
    let mut out = vec![0u8; ow as usize * oh as usize * 3];
    let mut acc = vec![0u32; ow as usize * 3];
    let mut count = vec![0u32; ow as usize];
    for oy in 0..oh {
        acc.iter_mut().for_each(|a| *a = 0);
        count.iter_mut().for_each(|c| *c = 0);
        let y0 = oy * factor;
        let y1 = (y0 + factor).min(h);
        for y in y0..y1 {
            let row = &raw[y as usize * stride..(y as usize + 1) * stride];
            for x in 0..w as usize {
                let ox = x / factor as usize;
                let px = &row[x * 3..x * 3 + 3];
                acc[ox * 3] += u32::from(px[0]);
                acc[ox * 3 + 1] += u32::from(px[1]);
                acc[ox * 3 + 2] += u32::from(px[2]);
                count[ox] += 1;
            }
        }
        let out_row = &mut out[oy as usize * ow as usize * 3..(oy as usize + 1) * ow as usize * 3];
        for ox in 0..ow as usize {
            let n = count[ox].max(1);
            for c in 0..3 {
                out_row[ox * 3 + c] = ((acc[ox * 3 + c] + n / 2) / n) as u8;
            }
        }
    }
    RgbImage::from_raw(ow, oh, out).unwrap_or_else(|| RgbImage::new(ow, oh))
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
    let (w, h) = src.dimensions();
    let (wi, hi) = (w as i64, h as i64);
    let raw = src.as_raw();
    let stride = w as usize * 3;
    let plane = out_w * out_h;
    let (c0, c2) = match order {
        ChannelOrder::Rgb => (0, 2),
        ChannelOrder::Bgr => (2, 0),
    };
    let fetch = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= wi || y >= hi {
            0.0
        } else {
            f32::from(raw[y as usize * stride + x as usize * 3 + c])
        }
    };
    for oy in 0..out_h {
        for ox in 0..out_w {
            // Pixel centres map to pixel centres.
            let p = out_to_src.apply(Point::new(ox as f32 + 0.5, oy as f32 + 0.5));
            let (sx, sy) = (p.x - 0.5, p.y - 0.5);
            let (fx, fy) = (sx.floor(), sy.floor());
            let (dx, dy) = (sx - fx, sy - fy);
            let (x0, y0) = (fx as i64, fy as i64);
            let idx = oy * out_w + ox;
            let inside = x0 >= 0 && y0 >= 0 && x0 + 1 < wi && y0 + 1 < hi;
            for (c, dst) in [(0usize, c0), (1, 1), (2, c2)] {
                let v = if inside {
                    let base = y0 as usize * stride + x0 as usize * 3 + c;
                    let p00 = f32::from(raw[base]);
                    let p01 = f32::from(raw[base + 3]);
                    let p10 = f32::from(raw[base + stride]);
                    let p11 = f32::from(raw[base + stride + 3]);
                    let top = p00 + (p01 - p00) * dx;
                    let bottom = p10 + (p11 - p10) * dx;
                    top + (bottom - top) * dy
                } else {
                    let top = fetch(x0, y0, c) * (1.0 - dx) + fetch(x0 + 1, y0, c) * dx;
                    let bottom = fetch(x0, y0 + 1, c) * (1.0 - dx) + fetch(x0 + 1, y0 + 1, c) * dx;
                    top * (1.0 - dy) + bottom * dy
                };
                planes[dst * plane + idx] = v;
            }
        }
    }
}

/// Resamples `src` by the uniform factor `scale` into the top-left corner of
/// a zeroed planar `[3, out_h, out_w]` tensor (letterbox: padding stays 0 at
/// the bottom and right). Big reductions are box-filtered first so that
/// small details do not alias.
pub fn letterbox_into_planes(
    src: &RgbImage,
    scale: f32,
    out_w: usize,
    out_h: usize,
    order: ChannelOrder,
    planes: &mut [f32],
) {
    planes.iter_mut().for_each(|v| *v = 0.0);
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
    if used_w == out_w && used_h == out_h {
        warp_into_planes(img, &inv, out_w, out_h, order, planes);
        return;
    }
    let mut region = vec![0.0f32; 3 * used_w * used_h];
    warp_into_planes(img, &inv, used_w, used_h, order, &mut region);
    for c in 0..3 {
        for y in 0..used_h {
            let from = &region[c * used_w * used_h + y * used_w..][..used_w];
            planes[c * out_w * out_h + y * out_w..][..used_w].copy_from_slice(from);
        }
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
