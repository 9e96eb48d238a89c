//! One module per command: its flags (a clap `Args` struct) and its body,
//! as `main.rs` dispatches them; and what several commands share.

use std::io::IsTerminal;
use std::path::Path;

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
