//! Face alignment: a least-squares similarity from the 5 YuNet landmarks
//! onto dlib's mean-face template, then a bilinear warp into the 150x150
//! chip the recognizer expects (dlib's `get_face_chip_details(150, 0.25)`).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::geometry::{Point, Similarity};
use crate::resample::{ChannelOrder, box_downscale, prefilter_factor, warp_into_planes};

/// Side of the square chip, in pixels.
pub const CHIP_SIZE: usize = 150;

/// dlib's 5-point template in units of the face box, in YuNet's landmark
/// order: right eye, left eye, nose tip, right and left mouth corner.
pub const TEMPLATE_UNIT: [Point; 5] = [
    Point::new(0.22549, 0.21599),
    Point::new(0.75476, 0.21599),
    Point::new(0.490_127, 0.515_625),
    Point::new(0.254_149, 0.780_233),
    Point::new(0.726_104, 0.780_233),
];

/// Padding around the face box, as a fraction of it (dlib's default 0.25).
const PADDING: f32 = 0.25;

/// The template in chip pixels: `(padding + p) / (1 + 2 padding) * size`.
pub fn template_in_chip() -> [Point; 5] {
    let k = CHIP_SIZE as f32 / (1.0 + 2.0 * PADDING);
    TEMPLATE_UNIT.map(|p| Point::new((PADDING + p.x) * k, (PADDING + p.y) * k))
}

/// A small, explicit perturbation of the alignment, for enrollment
/// augmentation. Applied in chip space around the chip centre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    pub rotate_deg: f32,
    pub scale: f32,
    pub shift_x_px: f32,
    pub shift_y_px: f32,
    pub mirror: bool,
}

impl Jitter {
    pub const NONE: Jitter = Jitter {
        rotate_deg: 0.0,
        scale: 1.0,
        shift_x_px: 0.0,
        shift_y_px: 0.0,
        mirror: false,
    };

    fn transform(&self) -> Similarity {
        let c = CHIP_SIZE as f32 / 2.0;
        let mut t = Similarity::around(Point::new(c, c), self.rotate_deg.to_radians(), self.scale);
        t.tx += self.shift_x_px;
        t.ty += self.shift_y_px;
        t
    }
}

/// The image-to-chip transform for these landmarks, or `None` when they
/// are degenerate (all on one point).
pub fn alignment_transform(landmarks: &[Point; 5]) -> Option<Similarity> {
    Similarity::umeyama(landmarks, &template_in_chip())
}

/// Warps the face into a planar RGB `[3, 150, 150]` f32 chip (0..255).
/// Returns `false` when the landmarks are degenerate.
pub fn extract_chip(
    image: &RgbImage,
    landmarks: &[Point; 5],
    jitter: &Jitter,
    chip: &mut [f32],
) -> bool {
    let Some(to_chip) = alignment_transform(landmarks) else {
        return false;
    };
    let to_chip = jitter.transform().compose(&to_chip);
    let Some(chip_to_image) = to_chip.inverse() else {
        return false;
    };
    let factor = prefilter_factor(to_chip.scale());
    if factor > 1 {
        // Shrinking a lot: box-filter only the region the chip covers.
        let (region, origin) = chip_footprint(image, &chip_to_image, factor);
        let reduced = box_downscale(&region, factor);
        let image_to_reduced = Similarity {
            a: 1.0 / factor as f32,
            b: 0.0,
            tx: -(origin.x) / factor as f32,
            ty: -(origin.y) / factor as f32,
        };
        let chip_to_reduced = image_to_reduced.compose(&chip_to_image);
        warp_into_planes(
            &reduced,
            &chip_to_reduced,
            CHIP_SIZE,
            CHIP_SIZE,
            ChannelOrder::Rgb,
            chip,
        );
    } else {
        warp_into_planes(
            image,
            &chip_to_image,
            CHIP_SIZE,
            CHIP_SIZE,
            ChannelOrder::Rgb,
            chip,
        );
    }
    if jitter.mirror {
        mirror_planes(chip);
    }
    true
}

/// The part of the image the chip samples, with a margin, aligned to the
/// box-filter grid; and its top-left corner in image pixels.
fn chip_footprint(image: &RgbImage, chip_to_image: &Similarity, factor: u32) -> (RgbImage, Point) {
    let s = CHIP_SIZE as f32;
    let corners = [(0.0, 0.0), (s, 0.0), (0.0, s), (s, s)]
        .map(|(x, y)| chip_to_image.apply(Point::new(x, y)));
    let margin = 2.0 * factor as f32;
    let (w, h) = image.dimensions();
    let min_x = corners.iter().map(|p| p.x).fold(f32::INFINITY, f32::min) - margin;
    let min_y = corners.iter().map(|p| p.y).fold(f32::INFINITY, f32::min) - margin;
    let max_x = corners
        .iter()
        .map(|p| p.x)
        .fold(f32::NEG_INFINITY, f32::max)
        + margin;
    let max_y = corners
        .iter()
        .map(|p| p.y)
        .fold(f32::NEG_INFINITY, f32::max)
        + margin;
    let snap = |v: f32, limit: u32| ((v.max(0.0) as u32) / factor * factor).min(limit);
    let (x0, y0) = (snap(min_x, w), snap(min_y, h));
    let x1 = (max_x.max(0.0).ceil() as u32).min(w);
    let y1 = (max_y.max(0.0).ceil() as u32).min(h);
    let region =
        image::imageops::crop_imm(image, x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
            .to_image();
    (region, Point::new(x0 as f32, y0 as f32))
}

fn mirror_planes(chip: &mut [f32]) {
    for row in chip.chunks_exact_mut(CHIP_SIZE) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmarks_on_the_template_give_identity() {
        let t = alignment_transform(&template_in_chip()).expect("fit");
        assert!((t.a - 1.0).abs() < 1e-5 && t.b.abs() < 1e-5);
        assert!(t.tx.abs() < 1e-3 && t.ty.abs() < 1e-3);
    }

    #[test]
    fn chip_of_a_scaled_face_samples_the_face() {
        // A synthetic "face" whose landmarks are the template scaled by 4
        // (a 600 px face): the chip must come from the 4x-larger image and
        // reproduce its content through the box pre-filter.
        let big = RgbImage::from_fn(600, 600, |x, y| {
            image::Rgb([(x / 4) as u8, (y / 4) as u8, 128])
        });
        let landmarks = template_in_chip().map(|p| Point::new(p.x * 4.0, p.y * 4.0));
        let mut chip = vec![0.0; 3 * CHIP_SIZE * CHIP_SIZE];
        assert!(extract_chip(&big, &landmarks, &Jitter::NONE, &mut chip));
        let red_at = |x: usize, y: usize| chip[y * CHIP_SIZE + x];
        assert!((red_at(75, 75) - 75.0).abs() < 1.5, "{}", red_at(75, 75));
        assert!((chip[CHIP_SIZE * CHIP_SIZE + 40 * CHIP_SIZE + 10] - 40.0).abs() < 1.5);
        let mut mirrored = vec![0.0; chip.len()];
        let flip = Jitter {
            mirror: true,
            ..Jitter::NONE
        };
        assert!(extract_chip(&big, &landmarks, &flip, &mut mirrored));
        assert!((mirrored[10] - chip[CHIP_SIZE - 11]).abs() < 1e-4);
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        let img = RgbImage::new(10, 10);
        let mut chip = vec![0.0; 3 * CHIP_SIZE * CHIP_SIZE];
        assert!(!extract_chip(
            &img,
            &[Point::new(3.0, 3.0); 5],
            &Jitter::NONE,
            &mut chip
        ));
    }
}
