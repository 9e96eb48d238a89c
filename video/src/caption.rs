//! Burning captions into frames: outlined boxes and text in the public
//! domain 8x8 bitmap font of `font8x8`, scaled up by whole pixels.

use face_core::RgbImage;
use font8x8::legacy::BASIC_LEGACY;

pub(crate) type Rgb = [u8; 3];

pub(crate) const BLACK: Rgb = [0, 0, 0];
pub(crate) const WHITE: Rgb = [255, 255, 255];

/// Box colours, one per person (by name), all legible on black.
const PALETTE: [Rgb; 6] = [
    [255, 214, 0],
    [0, 230, 118],
    [0, 176, 255],
    [255, 64, 129],
    [255, 145, 0],
    [213, 0, 249],
];

/// A stable colour for a name.
pub(crate) fn colour_of(name: &str) -> Rgb {
    let h = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[h as usize % PALETTE.len()]
}

/// Glyph size in pixels at `scale`.
pub(crate) const GLYPH: u32 = 8;

/// `s` seconds as `hh:mm:ss.d`.
pub(crate) fn clock(s: f64) -> String {
    let tenths = (s.max(0.0) * 10.0).round() as u64;
    let (h, rest) = (tenths / 36_000, tenths % 36_000);
    let (m, rest) = (rest / 600, rest % 600);
    format!("{h:02}:{m:02}:{:02}.{}", rest / 10, rest % 10)
}

/// Fills a rectangle, clipped to the image.
pub(crate) fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for py in y.max(0)..(y + h).min(ih) {
        for px in x.max(0)..(x + w).min(iw) {
            img.put_pixel(px as u32, py as u32, image::Rgb(c));
        }
    }
}

/// An unfilled rectangle with lines `t` pixels thick, clipped.
pub(crate) fn outline(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, t: i64, c: Rgb) {
    fill(img, x, y, w, t, c);
    fill(img, x, y + h - t, w, t, c);
    fill(img, x, y, t, h, c);
    fill(img, x + w - t, y, t, h, c);
}

/// Size in pixels of `text` drawn at `scale` with a `scale`-pixel margin.
pub(crate) fn label_size(text: &str, scale: u32) -> (i64, i64) {
    let s = i64::from(scale);
    let n = text.chars().count() as i64;
    (
        n * i64::from(GLYPH) * s + 2 * s,
        i64::from(GLYPH) * s + 2 * s,
    )
}

/// `text` in colour `fg` on a `bg` plate whose top-left corner is (x, y),
/// clipped to the image. Characters outside ASCII are drawn as `?`.
pub(crate) fn label(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, fg: Rgb, bg: Rgb) {
    let (w, h) = label_size(text, scale);
    fill(img, x, y, w, h, bg);
    let s = i64::from(scale);
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for (i, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() && !ch.is_ascii_control() {
            ch as usize
        } else {
            usize::from(b'?')
        };
        let glyph = BASIC_LEGACY[code];
        let gx = x + s + i as i64 * i64::from(GLYPH) * s;
        if gx >= iw {
            break;
        }
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                // Bit 0 is the leftmost pixel.
                if bits & (1 << col) != 0 {
                    fill(img, gx + col * s, y + s + row as i64 * s, s, s, fg);
                }
            }
        }
        if y >= ih {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_hours_minutes_seconds_tenths() {
        assert_eq!(clock(0.0), "00:00:00.0");
        assert_eq!(clock(83.44), "00:01:23.4");
        assert_eq!(clock(3723.96), "01:02:04.0");
    }

    #[test]
    fn text_is_drawn_inside_its_plate_and_clipped_at_the_edge() {
        let mut img = RgbImage::new(64, 32);
        label(&mut img, 2, 2, "Hi", 2, WHITE, [1, 2, 3]);
        let (w, h) = label_size("Hi", 2);
        assert_eq!((w, h), (36, 20));
        let lit = img.pixels().filter(|p| p.0 == WHITE).count();
        assert!(lit > 20, "{lit} pixels of text");
        // Nothing outside the plate.
        for (x, y, p) in img.enumerate_pixels() {
            let inside = (2..2 + w).contains(&i64::from(x)) && (2..2 + h).contains(&i64::from(y));
            assert!(inside || p.0 == BLACK, "({x},{y}) = {:?}", p.0);
        }
        // Off the image entirely: no panic.
        label(&mut img, 60, 30, "clipped\u{e9}", 3, WHITE, BLACK);
        outline(&mut img, -5, -5, 200, 200, 2, WHITE);
    }
}
