//! What a scan worker should receive, measured: a chunk's compressed H.264
//! bytes (what `scan-worker` reads with one ranged GET) against the same
//! frames extracted as JPEG (what the CSE546 frame extractor stored), with
//! the time to decode a frame beside the time to encode it as JPEG.
//!
//! `cargo run --release -p face-video --example chunk_payload -- VIDEO.mp4 [FRAMES_PER_CHUNK]`

use std::time::Instant;

use face_video::{FrameReader, Sampling, VideoIndex, VideoLimits, plan_chunks};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: chunk_payload VIDEO.mp4 [FRAMES_PER_CHUNK]")?;
    let per_chunk: u64 = args.next().map_or(Ok(75), |s| s.parse())?;
    let bytes = std::fs::read(&path)?;
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default())?;
    let info = index.info();
    let chunks = plan_chunks(&index, per_chunk)?;
    let (mut h264_bytes, mut jpeg90_bytes, mut jpeg75_bytes) = (0u64, 0u64, 0u64);
    let (mut decode_s, mut encode_s, mut frames) = (0.0f64, 0.0f64, 0u64);
    for chunk in &chunks {
        h264_bytes += chunk.span.bytes_end - chunk.span.bytes_start;
        let data = &bytes[chunk.span.bytes_start as usize..chunk.span.bytes_end as usize];
        let mut reader = FrameReader::new(
            &index,
            data,
            chunk.span.bytes_start,
            chunk.frames,
            Sampling::default(),
        )?;
        loop {
            let started = Instant::now();
            let Some(frame) = reader.next_frame()? else {
                break;
            };
            decode_s += started.elapsed().as_secs_f64();
            let Some(image) = frame.image else { continue };
            frames += 1;
            for (quality, total) in [(90u8, &mut jpeg90_bytes), (75, &mut jpeg75_bytes)] {
                let started = Instant::now();
                let mut out = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                    .encode_image(&image)?;
                if quality == 90 {
                    encode_s += started.elapsed().as_secs_f64();
                }
                *total += out.len() as u64;
            }
        }
    }
    let mb = |b: u64| b as f64 / 1e6;
    let per = |s: f64| 1000.0 * s / frames.max(1) as f64;
    println!(
        "{path}: {}x{}, {frames} frames in {} chunk(s) of ~{per_chunk}",
        info.width,
        info.height,
        chunks.len()
    );
    println!(
        "payload per chunk: H.264 {:.2} MB, JPEG q90 {:.2} MB ({:.1}x), JPEG q75 {:.2} MB ({:.1}x)",
        mb(h264_bytes) / chunks.len() as f64,
        mb(jpeg90_bytes) / chunks.len() as f64,
        jpeg90_bytes as f64 / h264_bytes.max(1) as f64,
        mb(jpeg75_bytes) / chunks.len() as f64,
        jpeg75_bytes as f64 / h264_bytes.max(1) as f64,
    );
    println!(
        "per frame: H.264 decode {:.2} ms (the worker does it anyway), JPEG q90 encode {:.2} ms (an extractor would add it, and the worker would decode the JPEG again)",
        per(decode_s),
        per(encode_s)
    );
    Ok(())
}
