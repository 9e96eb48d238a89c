//! Draws detected faces on a copy of the image: a box per face, its five
//! landmarks, and a confidence bar, so a person can check results by eye.

use face_core::{DetectedFace, RgbImage};
use image::Rgb;

const BOX: Rgb<u8> = Rgb([0, 230, 64]);
const UNKNOWN: Rgb<u8> = Rgb([255, 160, 0]);
const LANDMARK_COLORS: [Rgb<u8>; 5] = [
    Rgb([255, 40, 40]),
    Rgb([40, 120, 255]),
    Rgb([255, 255, 0]),
    Rgb([255, 0, 255]),
    Rgb([0, 255, 255]),
];

/// Draws every face; faces flagged in `known` get the "match" colour,
/// the others the "unknown" one (all boxes are green when `known` is empty).
pub fn draw_faces(image: &mut RgbImage, faces: &[DetectedFace], known: &[bool]) {
    let thickness = (image.width().max(image.height()) / 300).max(2) as i64;
    for (i, face) in faces.iter().enumerate() {
        let color = match known.get(i) {
            Some(false) => UNKNOWN,
            _ => BOX,
        };
        let b = face.bbox;
        draw_rect(
            image,
            b.x as i64,
            b.y as i64,
            (b.x + b.width) as i64,
            (b.y + b.height) as i64,
            thickness,
            color,
        );
        for (p, c) in face.landmarks.iter().zip(LANDMARK_COLORS) {
            fill_disc(image, p.x as i64, p.y as i64, thickness + 1, c);
        }
        // Confidence bar above the box, its length proportional to it.
        let bar = ((b.width * face.confidence) as i64).max(1);
        let top = b.y as i64 - 2 * thickness;
        fill_rect(
            image,
            b.x as i64,
            top,
            b.x as i64 + bar,
            top + thickness,
            color,
        );
    }
}

fn put(image: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0
        && y >= 0
        && (x as u64) < u64::from(image.width())
        && (y as u64) < u64::from(image.height())
    {
        image.put_pixel(x as u32, y as u32, color);
    }
}

fn fill_rect(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            put(image, x, y, color);
        }
    }
}

fn draw_rect(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, t: i64, color: Rgb<u8>) {
    fill_rect(image, x0, y0, x1, y0 + t, color);
    fill_rect(image, x0, y1 - t, x1, y1, color);
    fill_rect(image, x0, y0, x0 + t, y1, color);
    fill_rect(image, x1 - t, y0, x1, y1, color);
}

fn fill_disc(image: &mut RgbImage, cx: i64, cy: i64, r: i64, color: Rgb<u8>) {
    for y in cy - r..=cy + r {
        for x in cx - r..=cx + r {
            if (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r {
                put(image, x, y, color);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use face_core::{PixelBox, Point, RelativeBox};

    #[test]
    fn draws_inside_and_ignores_out_of_bounds() {
        let mut img = RgbImage::new(50, 50);
        let face = DetectedFace {
            bbox: PixelBox {
                x: 10.0,
                y: 10.0,
                width: 20.0,
                height: 20.0,
            },
            bounding_box: RelativeBox::default(),
            landmarks: [
                Point::new(15.0, 15.0),
                Point::new(-5.0, 100.0),
                Point::default(),
                Point::default(),
                Point::default(),
            ],
            confidence: 0.9,
        };
        draw_faces(&mut img, &[face], &[]);
        assert_eq!(*img.get_pixel(10, 20), BOX);
        assert_eq!(*img.get_pixel(15, 15), LANDMARK_COLORS[0]);
        assert_eq!(*img.get_pixel(20, 20), Rgb([0, 0, 0]));
    }
}
