//! `facectl scan-video --stack NAME`, cloud mode: the scan runs on the
//! deployed regions' `scan-worker` functions through
//! `scan_coordinator::video_scan` (deployment, capacity, staging, fan-out,
//! merge); here it becomes the same report as a local scan, with the
//! contact sheet decoded from the local file, and a progress bar.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use face_video::{FrameMatches, ScanMode};
use scan_coordinator::Progress;
use scan_coordinator::video_scan::{self, CloudOptions};

use crate::scan::{LambdaAssumptions, ModeRun, ScanReport, Thumbnails, thumbnails_for};

/// Scans the video on the deployed regions and builds the report.
pub async fn scan_video(
    options: &CloudOptions,
    on_progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<(ScanReport, Thumbnails)> {
    let scan = video_scan::scan_video(options, on_progress).await?;
    let info = scan.index.info();
    let thumbs = thumbnails_for(&options.video, &scan.index, &scan.frames, &scan.timeline)?;
    let n = scan.stats.frames as f64;
    let per_frame_ms = if n > 0.0 {
        scan.stats.total_ms / n
    } else {
        0.0
    };
    let lambda = LambdaAssumptions {
        memory_mib: scan.cloud.regions[0].region.memory_mib,
        frames_per_chunk: options.frames_per_chunk,
        concurrency: scan.capacity as u64,
        ..LambdaAssumptions::default()
    };
    let people = scan
        .cloud
        .regions
        .first()
        .map_or(0, |r| r.collection.people);
    let lambda_estimate = lambda.estimate(info.frames, per_frame_ms);
    let report = ScanReport {
        video: options.video.display().to_string(),
        info,
        collection: options.collection.clone(),
        people_enrolled: people,
        config: scan.config,
        threads: scan.capacity,
        chunks: scan.chunks,
        tracked: ModeRun {
            mode: ScanMode::Tracked,
            wall_s: scan.wall_s,
            frames_per_s: if scan.wall_s > 0.0 {
                n / scan.wall_s
            } else {
                0.0
            },
            frames_per_s_per_core: if per_frame_ms > 0.0 {
                1000.0 / per_frame_ms
            } else {
                0.0
            },
            per_frame_ms,
            stats: scan.stats,
        },
        timeline: scan.timeline.appearances,
        lambda_estimate,
        comparison: None,
        cloud: Some(scan.cloud),
        frames: scan
            .frames
            .into_iter()
            .filter(|f: &FrameMatches| !f.faces.is_empty())
            .collect(),
    };
    Ok((report, thumbs))
}

/// Progress on a terminal: one bar of chunks, updated from any task.
pub fn progress_callback(bar: indicatif::ProgressBar) -> Arc<dyn Fn(Progress) + Send + Sync> {
    let bar = Mutex::new(bar);
    Arc::new(move |p: Progress| {
        let bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if p.retries > 0 {
            bar.set_message(format!("{} retries", p.retries));
        }
        if p.done == p.total {
            bar.finish_and_clear();
        }
    })
}
