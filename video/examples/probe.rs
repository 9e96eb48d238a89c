//! Prints what the demuxer sees in an MP4 file: size, frames, keyframes,
//! reordering, and the chunk plan. `cargo run -p face-video --example probe -- FILE [FRAMES_PER_CHUNK]`

use face_video::{VideoIndex, VideoLimits, plan_chunks};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: probe FILE [FRAMES_PER_CHUNK]")?;
    let per_chunk: u64 = args.next().map_or(Ok(75), |s| s.parse())?;
    let bytes = std::fs::read(&path)?;
    let index = VideoIndex::from_bytes(&bytes, &VideoLimits::default())?;
    println!("{:?}", index.info());
    let reordered = (0..index.samples.len() as u32)
        .filter(|&s| index.frame_of_sample(s) != u64::from(s))
        .count();
    println!("samples out of presentation order: {reordered}");
    for c in plan_chunks(&index, per_chunk)? {
        println!("{c:?}");
    }
    Ok(())
}
