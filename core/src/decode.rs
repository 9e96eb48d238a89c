//! Safe image decoding from bytes: format sniffed from the content (file
//! extensions lie), size limits checked before any pixel buffer is
//! allocated, EXIF orientation applied, everything converted to RGB.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::DecodeError;

/// Limits enforced before decoding. Defaults: 15 MiB encoded (Rekognition's
/// S3 object limit) and 40 megapixels (a 7680x5200 photo fits; a
/// decompression bomb does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeLimits {
    pub max_encoded_bytes: u64,
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_encoded_bytes: 15 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// Formats the pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
}

impl SourceFormat {
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "JPEG",
            SourceFormat::Png => "PNG",
            SourceFormat::Webp => "WebP",
        }
    }
    fn image_format(self) -> ImageFormat {
        match self {
            SourceFormat::Jpeg => ImageFormat::Jpeg,
            SourceFormat::Png => ImageFormat::Png,
            SourceFormat::Webp => ImageFormat::WebP,
        }
    }
}

/// Names the format of `bytes` from its magic numbers, or says what it is
/// when it is something we refuse (a video, a GIF, ...).
pub fn sniff_format(bytes: &[u8]) -> Result<SourceFormat, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(SourceFormat::Webp);
    }
    Err(DecodeError::UnsupportedFormat(describe_unsupported(bytes)))
}

fn describe_unsupported(bytes: &[u8]) -> String {
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = String::from_utf8_lossy(&bytes[8..12]).trim().to_string();
        return if brand.starts_with("hei") || brand.starts_with("avi") || brand == "mif1" {
            format!("HEIF/AVIF image (brand {brand})")
        } else {
            format!("video container (ISO-BMFF/MP4, brand {brand}), not an image")
        };
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return "video container (Matroska/WebM), not an image".into();
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"AVI " {
        return "video container (AVI), not an image".into();
    }
    match image::guess_format(bytes) {
        Ok(format) => format!("{format:?}"),
        Err(_) => "unrecognized bytes".into(),
    }
}

/// A decoded image with where it came from.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    pub rgb: RgbImage,
    pub format: SourceFormat,
}

/// Decodes JPEG, PNG or WebP bytes into an upright RGB image.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    decode_image_with(bytes, limits, |_, _| {})
}

/// [`decode_image`], calling `on_dimensions` with the image's upright
/// (width, height) once its headers have passed every check and before its
/// pixels decode: a caller can start work that depends only on the image's
/// shape (the detector's plan for it) while they do.
pub fn decode_image_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    on_dimensions: impl FnOnce(u32, u32),
) -> Result<DecodedImage, DecodeError> {
    let Opened {
        decoder,
        format,
        orientation,
    } = open(bytes, limits)?;
    let (width, height) = decoder.dimensions();
    use image::metadata::Orientation::*;
    match orientation {
        Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => on_dimensions(height, width),
        NoTransforms | Rotate180 | FlipHorizontal | FlipVertical => on_dimensions(width, height),
    }
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| classify_image_error(format, e, limits))?;
    image.apply_orientation(orientation);
    let rgb = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    Ok(DecodedImage { rgb, format })
}

/// A decoder past every check that does not need the pixels.
struct Opened<D> {
    decoder: D,
    format: SourceFormat,
    orientation: image::metadata::Orientation,
}

/// Sniffs, checks the size limits and completeness, and reads the headers.
fn open<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<Opened<impl ImageDecoder + 'a>, DecodeError> {
    let size_bytes = bytes.len() as u64;
    if size_bytes > limits.max_encoded_bytes {
        return Err(DecodeError::EncodedTooLarge {
            size_bytes,
            limit_bytes: limits.max_encoded_bytes,
        });
    }
    let format = sniff_format(bytes)?;
    if format == SourceFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder pads a cut-off scan with grey instead of failing;
        // a half-grey photo would silently lose faces.
        return Err(DecodeError::Corrupt {
            format: format.name(),
            reason: "truncated: no end-of-image marker after the last scan".into(),
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut image_limits = Limits::default();
    // Room for the decoded RGBA buffer at the pixel limit plus codec scratch.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(image_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| classify_image_error(format, e, limits))?;

    // Dimensions come from the header: refuse bombs before allocating.
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::ZeroSized { width, height });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            pixels,
            limit_pixels: limits.max_pixels,
        });
    }
    // A broken EXIF block is not worth losing the photo over.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    Ok(Opened {
        decoder,
        format,
        orientation,
    })
}

/// A complete JPEG has an end-of-image marker (FF D9) after its last
/// start-of-scan (FF DA). Entropy-coded data stuffs every FF as FF 00, so
/// neither pair occurs inside a scan; an EXIF thumbnail's own markers come
/// before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| {
        bytes
            .windows(2)
            .rposition(|w| w[0] == 0xFF && w[1] == marker)
    };
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

fn classify_image_error(
    format: SourceFormat,
    error: image::ImageError,
    limits: &DecodeLimits,
) -> DecodeError {
    match error {
        image::ImageError::Limits(_) => DecodeError::TooManyPixels {
            width: 0,
            height: 0,
            pixels: 0,
            limit_pixels: limits.max_pixels,
        },
        image::ImageError::Unsupported(e) => {
            DecodeError::UnsupportedFormat(format!("{} variant: {e}", format.name()))
        }
        other => DecodeError::Corrupt {
            format: format.name(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encode test image");
        out.into_inner()
    }

    #[test]
    fn sniffs_by_content_not_name() {
        let img = DynamicImage::new_rgb8(8, 6);
        let png = encode(&img, ImageFormat::Png);
        assert_eq!(sniff_format(&png), Ok(SourceFormat::Png));
        let decoded = decode_image(&png, &DecodeLimits::default()).expect("decode png");
        assert_eq!(decoded.rgb.dimensions(), (8, 6));
    }

    #[test]
    fn grayscale_and_rgba_become_rgb() {
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 4, image::Luma([77])));
        let decoded = decode_image(&encode(&gray, ImageFormat::Png), &DecodeLimits::default())
            .expect("decode gray");
        assert_eq!(decoded.rgb.get_pixel(1, 1).0, [77, 77, 77]);
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            4,
            4,
            image::Rgba([1, 2, 3, 0]),
        ));
        let decoded = decode_image(&encode(&rgba, ImageFormat::Png), &DecodeLimits::default())
            .expect("decode rgba");
        assert_eq!(decoded.rgb.get_pixel(0, 0).0, [1, 2, 3]);
    }

    /// A 40x20 JPEG whose EXIF says "rotate 90 degrees clockwise", as a
    /// phone held upright writes it.
    fn jpeg_rotated_by_exif() -> Vec<u8> {
        use image::ImageEncoder;
        // Big-endian TIFF header, one IFD entry: Orientation (0x0112),
        // SHORT, count 1, value 6; no next IFD.
        let exif = [
            b"MM\0\x2a\0\0\0\x08".as_slice(),
            &[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        let pixels = RgbImage::from_fn(40, 20, |x, _| image::Rgb([(x * 6) as u8, 90, 30]));
        let mut out = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new(&mut out);
        encoder.set_exif_metadata(exif).expect("jpeg takes exif");
        encoder
            .write_image(pixels.as_raw(), 40, 20, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    }

    #[test]
    fn the_upright_dimensions_come_from_the_headers_before_the_pixels() {
        let limits = DecodeLimits::default();
        let rotated = jpeg_rotated_by_exif();
        let mut told = None;
        let decoded = decode_image_with(&rotated, &limits, |w, h| told = Some((w, h)))
            .expect("decode")
            .rgb;
        assert_eq!(told, Some((20, 40)));
        assert_eq!(decoded.dimensions(), (20, 40));
        let plain = encode(
            &DynamicImage::ImageRgb8(RgbImage::new(7, 3)),
            ImageFormat::Png,
        );
        let mut told = None;
        decode_image_with(&plain, &limits, |w, h| told = Some((w, h))).expect("decode");
        assert_eq!(told, Some((7, 3)));
        // Not for an image refused by its headers.
        let tiny = DecodeLimits {
            max_pixels: 20,
            ..limits
        };
        let mut told = None;
        let refused = decode_image_with(&plain, &tiny, |w, h| told = Some((w, h)));
        assert!(matches!(
            refused,
            Err(DecodeError::TooManyPixels { pixels: 21, .. })
        ));
        assert_eq!(told, None);
    }

    #[test]
    fn refuses_video_and_empty_and_garbage() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        match sniff_format(&mp4) {
            Err(DecodeError::UnsupportedFormat(why)) => assert!(why.contains("video"), "{why}"),
            other => panic!("expected unsupported, got {other:?}"),
        }
        assert_eq!(sniff_format(&[]), Err(DecodeError::Empty));
        assert!(matches!(
            decode_image(b"hello world, not an image", &DecodeLimits::default()),
            Err(DecodeError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn truncated_jpeg_is_corrupt_not_panic() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([x as u8 * 3, y as u8 * 3, 90])
        }));
        let jpeg = encode(&img, ImageFormat::Jpeg);
        for cut in [4, 20, 100, jpeg.len() / 2] {
            let result = decode_image(&jpeg[..cut], &DecodeLimits::default());
            assert!(
                matches!(result, Err(DecodeError::Corrupt { .. })),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let img = DynamicImage::new_rgb8(100, 100);
        let png = encode(&img, ImageFormat::Png);
        let tight = DecodeLimits {
            max_encoded_bytes: 10,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_image(&png, &tight),
            Err(DecodeError::EncodedTooLarge { .. })
        ));
        let few_pixels = DecodeLimits {
            max_pixels: 99 * 100,
            ..DecodeLimits::default()
        };
        assert!(matches!(
            decode_image(&png, &few_pixels),
            Err(DecodeError::TooManyPixels {
                width: 100,
                height: 100,
                ..
            })
        ));
    }

    #[test]
    fn decompression_bomb_header_fails_fast() {
        // A PNG header claiming 100000x100000 pixels with almost no data.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An empty IDAT: the decoder reads up to the first data chunk.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let result = decode_image(&png, &DecodeLimits::default());
        assert!(
            matches!(result, Err(DecodeError::TooManyPixels { .. })),
            "{result:?}"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
