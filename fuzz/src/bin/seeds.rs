//! Writes the seed corpus, `corpus/<target>/`, from generated inputs (no
//! file of the data set): tiny images in every accepted format, a few
//! frames of H.264 in MP4 (as the montage writes it, fast-start, rotated),
//! and one payload of each shape the functions take. Run by
//! `cargo xtask fuzz --seeds`; the output is committed, so it only needs
//! rerunning when the inputs here change.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use face_fuzz_targets::KNOWN_KEY;
use face_video::{EncodeSettings, Rotation, encode_images, set_display_rotation};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let corpus = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let images = images()?;
    let videos = videos()?;
    write(&corpus.join("image-decode"), &images)?;
    for target in ["mp4-index", "h264-chunk", "mp4-sparse-header"] {
        write(&corpus.join(target), &videos)?;
    }
    let events: Vec<(String, Vec<u8>)> = events(&images[1].1)
        .into_iter()
        .map(|(name, value)| (format!("{name}.json"), value.to_string().into_bytes()))
        .collect();
    write(&corpus.join("events"), &events)?;
    Ok(())
}

/// Replaces `dir`'s files with `files`.
fn write(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
        println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
    }
    Ok(())
}

fn gradient(width: u32, height: u32, phase: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let square = (x + phase * 6) % width < 16 && (16..32).contains(&y);
        if square {
            Rgb([240, 40, 40])
        } else {
            Rgb([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8])
        }
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

fn images() -> Result<Vec<(String, Vec<u8>)>> {
    let rgb = DynamicImage::ImageRgb8(gradient(24, 16, 0));
    let jpeg = encode(&rgb, ImageFormat::Jpeg)?;
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(8, 8, |x, y| {
        image::Luma([(x * 30 + y) as u8])
    }));
    let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(8, 6, |x, y| {
        image::Rgba([x as u8 * 30, y as u8 * 40, 90, (x * y) as u8])
    }));
    Ok(vec![
        ("rgb.jpg".into(), jpeg.clone()),
        ("rgb.png".into(), encode(&rgb, ImageFormat::Png)?),
        ("gray.png".into(), encode(&gray, ImageFormat::Png)?),
        ("rgba.png".into(), encode(&rgba, ImageFormat::Png)?),
        ("gray.jpg".into(), encode(&gray, ImageFormat::Jpeg)?),
        ("rgb.webp".into(), encode(&rgb, ImageFormat::WebP)?),
        ("rgba.webp".into(), encode(&rgba, ImageFormat::WebP)?),
        ("exif-rotated.jpg".into(), with_exif_orientation(&jpeg, 6)),
    ])
}

/// A JPEG with an EXIF block (APP1) whose only tag is the orientation.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Named `.mp4.bin`: the repository keeps videos out by extension, and
/// these are a few KB of generated frames, not data.
fn videos() -> Result<Vec<(String, Vec<u8>)>> {
    let settings = EncodeSettings {
        max_height: 64,
        bitrate_bps: 50_000,
        // An IDR frame every other frame: several chunks in a few frames.
        keyframe_interval_s: 0.2,
    };
    let frames = |n: u32, w: u32, h: u32| (0..n).map(move |i| gradient(w, h, i));
    let clip = encode_images(frames(6, 64, 48), 10, &settings)?;
    let mut rotated = encode_images(frames(3, 32, 48), 10, &settings)?;
    set_display_rotation(&mut rotated, Rotation::Clockwise90)?;
    let long_gop = encode_images(
        frames(5, 48, 32),
        10,
        &EncodeSettings {
            keyframe_interval_s: 10.0,
            ..settings
        },
    )?;
    // `.mp4.bin`: generated seeds of a few KB; real videos stay out of the
    // repository by their extension.
    Ok(vec![
        ("clip.mp4.bin".into(), clip.clone()),
        ("fast-start.mp4.bin".into(), fast_start(&clip)?),
        ("rotated.mp4.bin".into(), rotated),
        ("one-gop.mp4.bin".into(), long_gop),
    ])
}

/// The top-level boxes of an MP4: (type, bytes), 32-bit sizes only (what
/// the montage writes).
fn boxes(mp4: &[u8]) -> Result<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= mp4.len() {
        let size = u32::from_be_bytes(mp4[at..at + 4].try_into()?) as usize;
        if size < 8 || at + size > mp4.len() {
            return Err(format!("box of {size} bytes at {at}").into());
        }
        out.push((mp4[at + 4..at + 8].try_into()?, &mp4[at..at + size]));
        at += size;
    }
    Ok(out)
}

/// `moov` moved before `mdat` ("fast start"), every chunk offset (`stco`)
/// shifted by its size: the layout of a phone's or a web video.
fn fast_start(mp4: &[u8]) -> Result<Vec<u8>> {
    let boxes = boxes(mp4)?;
    let find = |kind: &[u8; 4]| {
        boxes
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("no {}", String::from_utf8_lossy(kind)))
    };
    let (ftyp, mdat) = (find(b"ftyp")?, find(b"mdat")?);
    let mut moov = find(b"moov")?.to_vec();
    let shift = moov.len() as u32;
    let mut at = 0;
    while let Some(found) = moov[at..].windows(4).position(|w| w == b"stco") {
        let body = at + found + 4;
        let count = u32::from_be_bytes(moov[body + 4..body + 8].try_into()?) as usize;
        for entry in 0..count {
            let e = body + 8 + entry * 4;
            let offset = u32::from_be_bytes(moov[e..e + 4].try_into()?);
            moov[e..e + 4].copy_from_slice(&(offset + shift).to_be_bytes());
        }
        at = body + 8 + count * 4;
    }
    let mut out = ftyp.to_vec();
    out.extend_from_slice(&moov);
    for (kind, bytes) in &boxes {
        if !matches!(kind, b"ftyp" | b"moov") {
            out.extend_from_slice(bytes);
        }
    }
    debug_assert!(out.len() == mp4.len() && mdat.len() < out.len());
    Ok(out)
}

/// One payload of each shape the functions take.
fn events(png: &[u8]) -> Vec<(&'static str, Value)> {
    let png64 = base64(png);
    let s3_event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "faces-data", "arn": "arn:aws:s3:::faces-data"},
               "object": {"key": "uploads/staff/My+Photo%2B1.jpg", "size": 1024,
                          "eTag": "0123456789abcdef", "versionId": "v1",
                          "sequencer": "0055AED6DCD90281E5"}}}]});
    let sqs = |body: String| {
        json!({"Records": [{
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1545082649183"},
            "messageAttributes": {}, "md5OfBody": "098f6bcd4621d373cade4e832627b4f6",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
            "awsRegion": "us-east-1"}]})
    };
    let proxy = |method: &str, path: &str, headers: Value, body: Value, base64: bool| {
        json!({
            "resource": "/{proxy+}", "path": path, "httpMethod": method,
            "headers": headers, "queryStringParameters": {"max": "10"},
            "body": body, "isBase64Encoded": base64,
            "requestContext": {"stage": "live", "authorizer": {
                "principalId": "team-a", "key_name": "team-a",
                "rate_per_minute": "60", "quota_per_day": 1000}}})
    };
    let json_headers = json!({"Content-Type": "application/json", "x-api-key": KNOWN_KEY});
    vec![
        ("s3-event", s3_event.clone()),
        ("sqs-s3-event", sqs(s3_event.to_string())),
        (
            "sqs-s3-test-event",
            sqs(json!({"Service": "Amazon S3", "Event": "s3:TestEvent",
                       "Time": "2026-01-01T12:00:00.000Z", "Bucket": "faces-data"})
            .to_string()),
        ),
        (
            "sqs-scan-plan",
            sqs(json!({"type": "plan", "job_id": "0123456789abcdef0123456789abcdef"}).to_string()),
        ),
        (
            "sqs-scan-chunk",
            sqs(
                json!({"type": "chunk", "job_id": "0123456789abcdef0123456789abcdef",
                       "chunk": 3, "start_frame": 90, "end_frame": 120})
                .to_string(),
            ),
        ),
        (
            "recognize-key",
            json!({"collection": "staff", "image": "uploads/a.jpg"}),
        ),
        (
            "recognize-base64",
            json!({"image": {"base64": png64.clone()}}),
        ),
        (
            "enroll",
            json!({"action": "enroll", "collection": "staff", "person": "ada",
                   "attributes": {"team": "research"},
                   "images": [{"bucket": "faces-data", "key": "enroll/ada.jpg"},
                              {"base64": png64.clone()}, "enroll/ada2.jpg"]}),
        ),
        (
            "enroll-forget",
            json!({"action": "forget", "collection": "staff", "person": "ada"}),
        ),
        (
            "scan-chunk",
            json!({"bucket": "faces-data", "key": "videos/talk.mp4", "collection": "staff",
                   "frames": {"start": 0, "end": 75},
                   "config": {"mode": "tracked", "detect_every_n_frames": 3}}),
        ),
        (
            "api-enroll",
            proxy(
                "POST",
                "/live/v1/collections/staff/people/ada%20l/faces",
                json_headers.clone(),
                json!(
                    json!({"images": [{"base64": png64.clone()}],
                             "attributes": {"team": "research"}})
                    .to_string()
                ),
                false,
            ),
        ),
        (
            "api-search-raw",
            proxy(
                "POST",
                "/v1/collections/staff/search",
                json!({"content-type": "image/png"}),
                json!(png64),
                true,
            ),
        ),
        (
            "api-upload",
            proxy(
                "POST",
                "/v1/uploads",
                json_headers.clone(),
                json!(
                    json!({"collection": "staff", "content_type": "image/jpeg",
                             "content_length": 52311})
                    .to_string()
                ),
                false,
            ),
        ),
        (
            "api-patch-person",
            proxy(
                "PATCH",
                "/v1/collections/staff/people/ada",
                json_headers.clone(),
                json!(json!({"attributes": {"team": null, "desk": "4b"}}).to_string()),
                false,
            ),
        ),
        (
            "api-result",
            proxy(
                "GET",
                "/v1/results/staff~0123456789abcdef0123456789abcdef",
                json!({}),
                Value::Null,
                false,
            ),
        ),
        (
            "api-scan",
            proxy(
                "POST",
                "/v1/scans",
                json_headers,
                json!(json!({"collection": "staff", "s3_key": "uploads/staff/v.mp4"}).to_string()),
                false,
            ),
        ),
        (
            "authorizer",
            json!({"type": "TOKEN", "authorizationToken": KNOWN_KEY,
                   "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/live/POST/v1/detect"}),
        ),
    ]
}

/// Standard base64 with padding (the only encoder this crate needs).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
