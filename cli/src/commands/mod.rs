//! One module per command: its flags (a clap `Args` struct) and its body,
//! as `main.rs` dispatches them; and what several commands share.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub mod bench;
pub mod compare;
pub mod detect;
pub mod enroll;
pub mod eval;
pub mod forget;
pub mod images;
pub mod people;
pub mod recognize;
#[cfg(feature = "cloud")]
pub mod results;
#[cfg(feature = "cloud")]
pub mod scan_status;
pub mod scan_video;

/// A progress bar on a terminal, nothing otherwise.
fn progress(len: usize) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
        bar.set_style(style);
    }
    bar
}

/// Reports a per-file failure on one line and keeps going.
fn report_failure(path: &Path, error: &anyhow::Error) {
    eprintln!("facectl: {}: {error:#}", path.display());
}

/// The most `--frames-per-chunk` and `--lambda-frames-per-chunk` take: the
/// most frames a video may have, i.e. one chunk.
fn max_frames_per_chunk() -> u64 {
    face_video::VideoLimits::default().max_frames
}

/// A flag's frames per chunk: 1 to [`max_frames_per_chunk`].
pub fn frames_per_chunk() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=max_frames_per_chunk())
}

/// A flag in seconds: a number, finite, not negative, and within what a
/// `Duration` holds (clap's error names the flag).
pub fn seconds(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{s} is not a number of seconds (finite, 0 or more)"))?;
    Ok(value)
}

/// [`seconds`] as a `Duration`.
#[cfg(feature = "cloud")]
pub fn duration_s(s: &str) -> Result<Duration, String> {
    seconds(s).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_and_not_negative() {
        assert_eq!(seconds("1.5"), Ok(1.5));
        assert_eq!(seconds("0"), Ok(0.0));
        for bad in ["NaN", "nan", "inf", "-inf", "-1", "1e300", "x", ""] {
            assert!(seconds(bad).is_err(), "{bad} accepted");
        }
    }
}
