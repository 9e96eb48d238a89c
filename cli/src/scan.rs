//! `facectl scan-video`, local mode: plan keyframe-aligned chunks, scan
//! them on this machine's cores (rayon, one decoder per chunk), fold the
//! per-frame matches into a timeline, and estimate what the same scan
//! would cost on Lambda. Optionally also runs the naive every-frame
//! baseline on the same chunks, for the throughput/recall trade-off.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine;
use face_api::pricing;
use face_core::{Collection, FacePipeline, RgbImage};
use face_video::{
    Appearance, Chunk, FrameMatches, FrameRange, FrameReader, MontageConfig, Sampling, ScanConfig,
    ScanMode, ScanStats, Timeline, TimelineConfig, VideoIndex, VideoInfo, VideoLimits,
    concat_montage, frame_interval_s, montage_chunk, montage_moments, plan_chunks, scan_chunk,
};
use image::Rgb;
use rayon::prelude::*;
#[cfg(feature = "cloud")]
use scan_coordinator::video_scan::CloudRun;
use serde::Serialize;

/// Width of the contact-sheet thumbnails, in pixels.
const THUMB_WIDTH_PX: u32 = 320;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub video: PathBuf,
    pub config: ScanConfig,
    pub timeline: TimelineConfig,
    /// Frames per local chunk; default: on one thread a Lambda worker's
    /// chunk (300), else enough chunks to keep every thread busy (4 per
    /// thread), at least 30 frames each.
    pub frames_per_chunk: Option<u64>,
    pub threads: usize,
    /// Also run the every-frame baseline and compare.
    pub compare_naive: bool,
    pub lambda: LambdaAssumptions,
}

/// What the Lambda estimate assumes; every figure is printed with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LambdaAssumptions {
    pub memory_mib: u32,
    /// Frames per worker invocation.
    pub frames_per_chunk: u64,
    /// Per invocation: ranged S3 GET of the chunk and header parse.
    pub invoke_overhead_ms: f64,
    /// Per new environment: process start and model load, billed (Lambda
    /// bills the INIT phase since August 2025).
    pub init_ms: f64,
    /// Concurrent environments available (one region's default quota).
    pub concurrency: u64,
    /// One Lambda vCPU-second does the work of one second of one core of
    /// this machine (the scan is single-threaded per chunk).
    pub lambda_core_speed_vs_local: f64,
}

impl Default for LambdaAssumptions {
    fn default() -> Self {
        Self {
            memory_mib: 2048,
            frames_per_chunk: 300,
            invoke_overhead_ms: 150.0,
            init_ms: 1_000.0,
            concurrency: 1_000,
            lambda_core_speed_vs_local: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LambdaEstimate {
    pub assumptions: LambdaAssumptions,
    pub requests: u64,
    pub environments: u64,
    pub billed_s: f64,
    pub gb_s: f64,
    pub usd: f64,
}

impl LambdaAssumptions {
    /// Cost of scanning `frames` frames at `per_frame_ms` of one core each.
    pub fn estimate(&self, frames: u64, per_frame_ms: f64) -> LambdaEstimate {
        let requests = frames.div_ceil(self.frames_per_chunk.max(1));
        let environments = requests.min(self.concurrency.max(1));
        let compute_ms = frames as f64 * per_frame_ms / self.lambda_core_speed_vs_local;
        let billed_ms = compute_ms
            + requests as f64 * self.invoke_overhead_ms
            + environments as f64 * self.init_ms;
        let billed_s = billed_ms / 1000.0;
        let gb_s = pricing::gb_s(billed_ms, self.memory_mib);
        LambdaEstimate {
            assumptions: *self,
            requests,
            environments,
            billed_s,
            gb_s,
            // The estimate is for x86 workers.
            usd: pricing::usd(gb_s, requests, false),
        }
    }
}

/// One scan mode's run over the whole video.
#[derive(Debug, Clone, Serialize)]
pub struct ModeRun {
    pub mode: ScanMode,
    pub wall_s: f64,
    pub frames_per_s: f64,
    /// Frames per second of one core's busy time (sum of chunk times).
    pub frames_per_s_per_core: f64,
    pub per_frame_ms: f64,
    pub stats: ScanStats,
}

/// The naive baseline beside the tracked scan.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub naive: ModeRun,
    /// Tracked per-core throughput over the baseline's.
    pub speedup_per_core: f64,
    /// Of the (frame, person) sightings of the baseline, the share the
    /// tracked scan reports too.
    pub sighting_recall: f64,
    /// Of the baseline's appearances, the share the tracked timeline
    /// overlaps with the same person.
    pub appearance_recall: f64,
    /// (frame, person) sightings the tracked scan reports and the baseline
    /// does not.
    pub extra_sightings: u64,
    /// Everyone either path named: on how many frames, and how close.
    pub names: BTreeMap<String, NamedBy>,
    pub naive_timeline: Vec<Appearance>,
}

/// How often, and at what best L2 distance, each path named one person.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NamedBy {
    pub tracked_frames: u64,
    pub naive_frames: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracked_best_distance: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub naive_best_distance: Option<f32>,
}

/// Per person named in `frames`: frames named and the best distance.
fn names_in(frames: &[FrameMatches]) -> BTreeMap<String, (u64, Option<f32>)> {
    let mut out: BTreeMap<String, (u64, Option<f32>)> = BTreeMap::new();
    for (_, person) in sightings(frames) {
        out.entry(person.to_string()).or_default().0 += 1;
    }
    for face in frames.iter().flat_map(|f| &f.faces) {
        if let (Some(p), Some(d)) = (&face.person, face.distance)
            && let Some(entry) = out.get_mut(p)
        {
            entry.1 = Some(entry.1.map_or(d, |best: f32| best.min(d)));
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub video: String,
    pub info: VideoInfo,
    pub collection: String,
    pub people_enrolled: usize,
    pub config: ScanConfig,
    pub threads: usize,
    pub chunks: usize,
    pub tracked: ModeRun,
    pub timeline: Vec<Appearance>,
    pub lambda_estimate: LambdaEstimate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Set when the scan ran on deployed regions (`--stack`).
    #[cfg(feature = "cloud")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudRun>,
    /// Frames with at least one face.
    pub frames: Vec<FrameMatches>,
}

/// The best view of each person (lowest distance) kept as a JPEG.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub frame: u64,
    pub pts_s: f64,
    pub distance: f32,
    pub jpeg: Vec<u8>,
}

/// Per person, the thumbnails of the contact sheet.
pub type Thumbnails = BTreeMap<String, Vec<Thumbnail>>;

/// Thumbnails one person may get on the contact sheet.
const MAX_THUMBS_PER_PERSON: usize = 24;

/// Scans the video and builds the report (and the thumbnails).
pub fn scan_video(
    pipeline: &FacePipeline,
    collection: &Collection,
    collection_name: &str,
    options: &ScanOptions,
) -> Result<(ScanReport, Thumbnails)> {
    let path = &options.video;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let index = VideoIndex::from_reader(BufReader::new(file), size, &VideoLimits::default())
        .with_context(|| format!("reading {}", path.display()))?;
    let info = index.info();
    let threads = options.threads.max(1);
    let per_chunk = chunk_frames(&info, options.frames_per_chunk, threads);
    let chunks = plan_chunks(&index, per_chunk)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the worker threads")?;

    let thumbs = Mutex::new(Thumbnails::new());
    let config = |mode| ScanConfig {
        mode,
        ..options.config
    };
    // One mode over every chunk, on the pool's threads.
    let run = |mode, thumbs| {
        pool.install(|| {
            run_mode(
                pipeline,
                collection,
                &index,
                path,
                &chunks,
                &config(mode),
                thumbs,
            )
        })
    };
    let tracked_config = config(ScanMode::Tracked);
    let (tracked, frames) = run(ScanMode::Tracked, Some(&thumbs))?;
    let interval = frame_interval_s(info.fps);
    let timeline = Timeline::build(&frames, interval, &options.timeline);

    let comparison = if options.compare_naive {
        let (naive, naive_frames) = run(ScanMode::EveryFrame, None)?;
        let naive_timeline = Timeline::build(&naive_frames, interval, &options.timeline);
        Some(compare(
            &tracked,
            &frames,
            &timeline,
            naive,
            &naive_frames,
            naive_timeline,
        ))
    } else {
        None
    };

    let lambda_estimate = options.lambda.estimate(info.frames, tracked.per_frame_ms);
    let report = ScanReport {
        video: path.display().to_string(),
        info,
        collection: collection_name.to_string(),
        people_enrolled: collection.people.len(),
        config: tracked_config,
        threads,
        chunks: chunks.len(),
        tracked,
        timeline: timeline.appearances,
        lambda_estimate,
        comparison,
        #[cfg(feature = "cloud")]
        cloud: None,
        frames: frames.into_iter().filter(|f| !f.faces.is_empty()).collect(),
    };
    let mut thumbs = thumbs.into_inner().unwrap_or_else(|e| e.into_inner());
    for list in thumbs.values_mut() {
        list.sort_by_key(|t| t.frame);
    }
    Ok((report, thumbs))
}

/// Frames per local chunk: `frames_per_chunk`; on one thread, as many as
/// a Lambda worker's chunk (bounded, as a chunk's bytes are read whole):
/// one thread gains nothing from smaller chunks, and every cut inside a
/// GOP decodes the GOP's start again (the street clip, one keyframe in 105
/// frames, decoded 290 frames in 30-frame chunks); else enough chunks to
/// keep every thread busy (4 per thread), at least 30 frames each.
fn chunk_frames(info: &VideoInfo, frames_per_chunk: Option<u64>, threads: usize) -> u64 {
    frames_per_chunk.unwrap_or_else(|| match threads {
        0 | 1 => LambdaAssumptions::default().frames_per_chunk,
        // Saturating: any thread count beyond the frames means 30 frames.
        n => info
            .frames
            .div_ceil(4u64.saturating_mul(u64::try_from(n).unwrap_or(u64::MAX)))
            .max(30),
    })
}

/// What `--montage` wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MontageSummary {
    /// Chunks with a moment (one segment each).
    pub segments: usize,
    pub moments: usize,
    pub frames: u64,
    pub bytes: usize,
}

/// `--montage`: as the scan workers do, one segment per chunk (decoded
/// from only that chunk's bytes) of the moments `frames` show, then the
/// segments joined in order and written to `out`. The chunks are planned
/// as the scan planned them (`frames_per_chunk`, `threads`: see
/// [`ScanOptions`]). `None` (and no file) when nobody wanted appears.
pub fn write_montage(
    path: &Path,
    frames: &[FrameMatches],
    frames_per_chunk: Option<u64>,
    threads: usize,
    config: &MontageConfig,
    out: &Path,
) -> Result<Option<MontageSummary>> {
    config.validate()?;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let index = VideoIndex::from_reader(BufReader::new(file), size, &VideoLimits::default())
        .with_context(|| format!("reading {}", path.display()))?;
    let chunks = plan_chunks(
        &index,
        chunk_frames(&index.info(), frames_per_chunk, threads),
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("starting the worker threads")?;
    let segments = pool.install(|| {
        chunks
            .par_iter()
            .map(|chunk| {
                let matches: Vec<FrameMatches> = frames
                    .iter()
                    .filter(|m| chunk.frames.contains(m.frame))
                    .cloned()
                    .collect();
                let moments = montage_moments(&index, chunk.frames, &matches, config)?;
                if moments.is_empty() {
                    return Ok(None);
                }
                let bytes = read_span(path, chunk)?;
                let segment = montage_chunk(
                    &index,
                    &bytes,
                    chunk.span.bytes_start,
                    chunk.frames,
                    &matches,
                    config,
                )
                .with_context(|| format!("montage of chunk {}", chunk.chunk))?;
                Ok(segment.map(|s| (moments, s)))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let segments: Vec<_> = segments.into_iter().flatten().collect();
    if segments.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&[u8]> = segments.iter().map(|(_, s)| s.as_slice()).collect();
    let montage = concat_montage(&parts)?;
    crate::files::write_atomically(out, &montage)?;
    Ok(Some(MontageSummary {
        segments: segments.len(),
        moments: segments.iter().map(|(m, _)| m.len()).sum(),
        frames: segments
            .iter()
            .flat_map(|(m, _)| m)
            .map(FrameRange::len)
            .sum(),
        bytes: montage.len(),
    }))
}

/// Reads bytes `[start, end)` of the file: what a worker would fetch with
/// a ranged GET.
fn read_bytes(path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading bytes {start}..{end} of {}", path.display()))?;
    Ok(bytes)
}

fn read_span(path: &Path, chunk: &Chunk) -> Result<Vec<u8>> {
    read_bytes(path, chunk.span.bytes_start, chunk.span.bytes_end)
}

/// The contact sheet of a scan whose frames were analyzed elsewhere (on
/// Lambda): per appearance, its closest recognition, decoded from the
/// local file.
pub fn thumbnails_for(
    path: &Path,
    index: &VideoIndex,
    frames: &[FrameMatches],
    timeline: &Timeline,
) -> Result<Thumbnails> {
    let mut thumbs = Thumbnails::new();
    for a in &timeline.appearances {
        if thumbs.get(&a.person).map_or(0, Vec::len) >= MAX_THUMBS_PER_PERSON {
            continue;
        }
        let best = frames
            .iter()
            .filter(|f| (a.first_frame..=a.last_frame).contains(&f.frame))
            .flat_map(|f| {
                f.faces
                    .iter()
                    .filter(|face| face.recognized && face.person.as_deref() == Some(&a.person))
                    .filter_map(move |face| face.distance.map(|d| (d, f)))
            })
            .min_by(|x, y| x.0.total_cmp(&y.0));
        let Some((distance, m)) = best else {
            continue;
        };
        let range = FrameRange {
            start: m.frame,
            end: m.frame + 1,
        };
        let span = index.decode_span(range)?;
        let bytes = read_bytes(path, span.bytes_start, span.bytes_end)?;
        let mut reader =
            FrameReader::new(index, &bytes, span.bytes_start, range, Sampling::default())?;
        while let Some(frame) = reader.next_frame()? {
            let Some(image) = frame.image.filter(|_| frame.index == m.frame) else {
                continue;
            };
            if let Some(jpeg) = thumbnail_jpeg(&image, m) {
                thumbs.entry(a.person.clone()).or_default().push(Thumbnail {
                    frame: m.frame,
                    pts_s: m.pts_s,
                    distance,
                    jpeg,
                });
            }
        }
    }
    Ok(thumbs)
}

fn run_mode(
    pipeline: &FacePipeline,
    collection: &Collection,
    index: &VideoIndex,
    path: &Path,
    chunks: &[Chunk],
    config: &ScanConfig,
    thumbs: Option<&Mutex<Thumbnails>>,
) -> Result<(ModeRun, Vec<FrameMatches>)> {
    let start = Instant::now();
    let results: Vec<_> = chunks
        .par_iter()
        .map(|chunk| -> Result<_> {
            let bytes = read_span(path, chunk)?;
            let mut local: Thumbnails = Thumbnails::new();
            let mut keep = |image: &RgbImage, m: &FrameMatches| {
                if thumbs.is_some() {
                    keep_thumbnail(&mut local, image, m);
                }
            };
            let scan = scan_chunk(
                pipeline,
                collection,
                index,
                &bytes,
                chunk.span.bytes_start,
                chunk.frames,
                config,
                &mut keep,
            )
            .with_context(|| {
                format!("scanning chunk {} (frames {:?})", chunk.chunk, chunk.frames)
            })?;
            if let Some(all) = thumbs {
                let mut all = all.lock().unwrap_or_else(|e| e.into_inner());
                for (person, list) in local {
                    all.entry(person).or_default().extend(list);
                }
            }
            Ok(scan)
        })
        .collect();
    let wall_s = start.elapsed().as_secs_f64();
    let mut stats = ScanStats::default();
    let mut frames = Vec::new();
    for r in results {
        let scan = r?;
        stats.add(&scan.stats);
        frames.extend(scan.matches);
    }
    frames.sort_by_key(|f| f.frame);
    let n = stats.frames as f64;
    let per_frame_ms = if n > 0.0 { stats.total_ms / n } else { 0.0 };
    Ok((
        ModeRun {
            mode: config.mode,
            wall_s,
            frames_per_s: if wall_s > 0.0 { n / wall_s } else { 0.0 },
            frames_per_s_per_core: if per_frame_ms > 0.0 {
                1000.0 / per_frame_ms
            } else {
                0.0
            },
            per_frame_ms,
            stats,
        },
        frames,
    ))
}

/// Keeps, per person and chunk, the frame with the closest recognition
/// (one JPEG per person per chunk bounds the memory).
fn keep_thumbnail(local: &mut Thumbnails, image: &RgbImage, m: &FrameMatches) {
    for face in m.faces.iter().filter(|f| f.recognized) {
        let (Some(person), Some(distance)) = (&face.person, face.distance) else {
            continue;
        };
        let list = local.entry(person.clone()).or_default();
        if list.first().is_some_and(|t| t.distance <= distance) {
            continue;
        }
        if let Some(jpeg) = thumbnail_jpeg(image, m) {
            list.clear();
            list.push(Thumbnail {
                frame: m.frame,
                pts_s: m.pts_s,
                distance,
                jpeg,
            });
        }
    }
}

fn thumbnail_jpeg(image: &RgbImage, m: &FrameMatches) -> Option<Vec<u8>> {
    let scale = THUMB_WIDTH_PX as f32 / image.width().max(1) as f32;
    let height = ((image.height() as f32 * scale).round() as u32).max(1);
    let mut thumb = image::imageops::resize(
        image,
        THUMB_WIDTH_PX,
        height,
        image::imageops::FilterType::Triangle,
    );
    for f in &m.faces {
        let color = if f.person.is_some() {
            Rgb([0, 230, 64])
        } else {
            Rgb([255, 160, 0])
        };
        let b = f.bbox;
        draw_box(
            &mut thumb,
            (b.x * scale) as i64,
            (b.y * scale) as i64,
            ((b.x + b.width) * scale) as i64,
            ((b.y + b.height) * scale) as i64,
            color,
        );
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&thumb)
        .ok()?;
    Some(out)
}

fn draw_box(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            img.put_pixel(x as u32, y as u32, color);
        }
    };
    for t in 0..2 {
        for x in x0..=x1 {
            put(x, y0 + t);
            put(x, y1 - t);
        }
        for y in y0..=y1 {
            put(x0 + t, y);
            put(x1 - t, y);
        }
    }
}

fn sightings(frames: &[FrameMatches]) -> BTreeSet<(u64, &str)> {
    frames
        .iter()
        .flat_map(|f| {
            f.faces
                .iter()
                .filter_map(move |face| face.person.as_deref().map(|p| (f.frame, p)))
        })
        .collect()
}

fn compare(
    tracked: &ModeRun,
    tracked_frames: &[FrameMatches],
    tracked_timeline: &Timeline,
    naive: ModeRun,
    naive_frames: &[FrameMatches],
    naive_timeline: Timeline,
) -> Comparison {
    let t = sightings(tracked_frames);
    let n = sightings(naive_frames);
    let found = n.intersection(&t).count();
    let overlaps = |a: &Appearance| {
        tracked_timeline.appearances.iter().any(|b| {
            b.person == a.person && b.first_frame <= a.last_frame && a.first_frame <= b.last_frame
        })
    };
    let covered = naive_timeline
        .appearances
        .iter()
        .filter(|a| overlaps(a))
        .count();
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    let mut names: BTreeMap<String, NamedBy> = BTreeMap::new();
    for (person, (frames, best)) in names_in(tracked_frames) {
        let entry = names.entry(person).or_default();
        entry.tracked_frames = frames;
        entry.tracked_best_distance = best;
    }
    for (person, (frames, best)) in names_in(naive_frames) {
        let entry = names.entry(person).or_default();
        entry.naive_frames = frames;
        entry.naive_best_distance = best;
    }
    Comparison {
        speedup_per_core: if tracked.per_frame_ms > 0.0 {
            naive.per_frame_ms / tracked.per_frame_ms
        } else {
            0.0
        },
        naive,
        sighting_recall: ratio(found, n.len()),
        appearance_recall: ratio(covered, naive_timeline.appearances.len()),
        extra_sightings: t.difference(&n).count() as u64,
        names,
        naive_timeline: naive_timeline.appearances,
    }
}

/// The human summary printed without `--json`.
pub fn render_text(r: &ScanReport) -> String {
    let rotated = match r.info.rotation_deg {
        0 => String::new(),
        deg => format!(" (turned {deg} degrees upright)"),
    };
    let mut s = format!(
        "{}: {}x{}{rotated}, {} frames, {:.1} s at {:.2} fps; {} chunk(s) on {} thread(s)\n",
        r.video,
        r.info.width,
        r.info.height,
        r.info.frames,
        r.info.duration_s,
        r.info.fps,
        r.chunks,
        r.threads
    );
    if r.timeline.is_empty() {
        s.push_str("no enrolled person found\n");
    }
    for a in &r.timeline {
        s.push_str(&format!(
            "  {:>8.2}-{:<8.2} s  {}  (frames {}-{}, seen in {}, best distance {:.3})\n",
            a.start_s,
            a.end_s,
            a.person,
            a.first_frame,
            a.last_frame,
            a.frames_seen,
            a.best_distance
        ));
    }
    let t = &r.tracked;
    s.push_str(&format!(
        "tracked scan: {:.2} s wall, {:.1} frames/s, {:.1} frames/s per core; detector on {} of {} frames, recognizer on {} of {} faces\n",
        t.wall_s,
        t.frames_per_s,
        t.frames_per_s_per_core,
        t.stats.frames_detected,
        t.stats.frames,
        t.stats.faces_recognized,
        t.stats.faces_detected
    ));
    #[cfg(feature = "cloud")]
    if let Some(c) = &r.cloud {
        s.push_str(&cloud_text(c));
    }
    if let Some(c) = &r.comparison {
        s.push_str(&format!(
            "every-frame baseline: {:.2} s wall, {:.1} frames/s per core; tracked is {:.2}x per core, sighting recall {:.3}, appearance recall {:.3}\n",
            c.naive.wall_s,
            c.naive.frames_per_s_per_core,
            c.speedup_per_core,
            c.sighting_recall,
            c.appearance_recall
        ));
        let distance = |d: Option<f32>| d.map_or("-".to_string(), |d| format!("{d:.3}"));
        for (person, n) in &c.names {
            s.push_str(&format!(
                "  {person}: tracked {} frame(s) (best {}), every-frame {} frame(s) (best {})\n",
                n.tracked_frames,
                distance(n.tracked_best_distance),
                n.naive_frames,
                distance(n.naive_best_distance)
            ));
        }
    }
    let e = &r.lambda_estimate;
    s.push_str(&format!(
        "Lambda estimate: {} request(s), {:.1} GB-s, ${:.6} ({} MiB, {} frames per invoke, {:.0} ms init per environment, {:.0} ms per invoke)\n",
        e.requests,
        e.gb_s,
        e.usd,
        e.assumptions.memory_mib,
        e.assumptions.frames_per_chunk,
        e.assumptions.init_ms,
        e.assumptions.invoke_overhead_ms
    ));
    s
}

#[cfg(feature = "cloud")]
fn cloud_text(c: &CloudRun) -> String {
    let mut s = format!(
        "on stack {}: video staged as {} ({:.2} s staging), {} retries; measured {} invocation(s), {:.1} GB-s, ${:.6}\n",
        c.stack,
        c.video_key,
        c.staging_s,
        c.retries,
        c.usage.invocations,
        c.usage.gb_s,
        c.usage.usd
    );
    for r in &c.regions {
        s.push_str(&format!(
            "  {}: {} chunk(s), peak {} of {} in flight, {} failure(s){}{}\n",
            r.region.name,
            r.work.jobs_done,
            r.work.peak_in_flight,
            r.region.max_in_flight,
            r.work.failures,
            if r.work.lost {
                ", region lost (its chunks moved)"
            } else {
                ""
            },
            if r.video_uploaded {
                ", video uploaded"
            } else {
                ""
            },
        ));
    }
    s
}

#[cfg(feature = "cloud")]
fn cloud_html(c: &CloudRun) -> String {
    let mut rows = String::new();
    for r in &c.regions {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.region.name),
            escape(&r.region.function_name),
            r.work.jobs_done,
            r.work.peak_in_flight,
            r.region.max_in_flight,
            r.work.failures,
            if r.work.lost {
                "lost; chunks moved"
            } else {
                "ok"
            },
        ));
    }
    format!(
        "<h2>Regions</h2><p>Stack <b>{}</b>; video staged as <code>{}</code> in {:.2} s; {} retries. \
         Measured: {} invocation(s), {:.1} GB-s, <b>${:.6}</b> (each invocation's round trip at its memory size).</p>\
         <table><tr><th>region</th><th>function</th><th>chunks</th><th>peak / capacity</th><th>failures</th><th>state</th></tr>{rows}</table>",
        escape(&c.stack),
        escape(&c.video_key),
        c.staging_s,
        c.retries,
        c.usage.invocations,
        c.usage.gb_s,
        c.usage.usd,
    )
}

/// The HTML report's part about the deployed regions, and whether the scan
/// ran there.
#[cfg(feature = "cloud")]
fn cloud_section(r: &ScanReport) -> (String, bool) {
    (
        r.cloud.as_ref().map_or(String::new(), cloud_html),
        r.cloud.is_some(),
    )
}

/// Without the `cloud` feature every scan ran on this machine.
#[cfg(not(feature = "cloud"))]
fn cloud_section(_: &ScanReport) -> (String, bool) {
    (String::new(), false)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page: the timeline as bars per person, a contact
/// sheet of matched frames (inline JPEG), wall time and the Lambda cost.
pub fn render_html(r: &ScanReport, thumbs: &Thumbnails) -> String {
    let duration = r.info.duration_s.max(1e-6);
    let people: BTreeSet<&str> = r.timeline.iter().map(|a| a.person.as_str()).collect();
    let mut rows = String::new();
    for p in &people {
        let mut bars = String::new();
        for a in r.timeline.iter().filter(|a| a.person == *p) {
            let left = 100.0 * a.start_s / duration;
            let width = (100.0 * (a.end_s - a.start_s) / duration).max(0.3);
            bars.push_str(&format!(
                r#"<div class="bar" style="left:{left:.3}%;width:{width:.3}%" title="{:.2}-{:.2} s, frames {}-{}"></div>"#,
                a.start_s, a.end_s, a.first_frame, a.last_frame
            ));
        }
        rows.push_str(&format!(
            r#"<div class="row"><div class="name">{}</div><div class="track">{bars}</div></div>"#,
            escape(p)
        ));
    }
    let mut sheet = String::new();
    let b64 = base64::engine::general_purpose::STANDARD;
    for (person, list) in thumbs {
        for t in list {
            sheet.push_str(&format!(
                r#"<figure><img src="data:image/jpeg;base64,{}" alt="{}"><figcaption>{} at {:.2} s (frame {}, distance {:.3})</figcaption></figure>"#,
                b64.encode(&t.jpeg),
                escape(person),
                escape(person),
                t.pts_s,
                t.frame,
                t.distance
            ));
        }
    }
    let e = &r.lambda_estimate;
    let a = &e.assumptions;
    let (cloud, on_stack) = cloud_section(r);
    let comparison = r.comparison.as_ref().map_or(String::new(), |c| {
        format!(
            "<li>Every-frame baseline: {:.2} s wall, {:.1} frames/s per core; the tracked scan is {:.2}x faster per core with sighting recall {:.3} and appearance recall {:.3} against it.</li>",
            c.naive.wall_s,
            c.naive.frames_per_s_per_core,
            c.speedup_per_core,
            c.sighting_recall,
            c.appearance_recall
        )
    });
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Scan of {video}</title>
<style>
body{{font-family:sans-serif;margin:2em;color:#222}}
.row{{display:flex;align-items:center;margin:4px 0}}
.name{{width:12em;font-weight:bold}}
.track{{position:relative;flex:1;height:18px;background:#eee;border-radius:3px}}
.bar{{position:absolute;top:0;height:18px;background:#2a8f4a;border-radius:3px}}
.axis{{display:flex;justify-content:space-between;margin-left:12em;color:#666;font-size:80%}}
figure{{display:inline-block;margin:6px;vertical-align:top}}
figcaption{{font-size:80%;max-width:{thumb}px}}
table{{border-collapse:collapse}}
td,th{{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}}
</style></head><body>
<h1>Where they appear: {video}</h1>
<p>{w}x{h}, {frames} frames, {dur:.1} s at {fps:.2} fps. Collection <b>{collection}</b> ({enrolled} people).</p>
<h2>Timeline</h2>
{rows}
<div class="axis"><span>0 s</span><span>{dur:.1} s</span></div>
{none}
<h2>Contact sheet</h2>
<p>The closest match of each person per chunk; green boxes are recognized faces, orange unknown.</p>
{sheet}
<h2>Cost and time</h2>
{cloud}
<ul>
<li>Wall time {where_}: {wall:.2} s on {threads} {unit}, {chunks} chunk(s); {fps_core:.1} frames/s per core ({per_frame:.1} ms per frame).</li>
<li>Detector on {detected} of {frames} frames; recognizer on {recognized} of {faces} detected faces.</li>
{comparison}
<li>Estimated on Lambda: {requests} request(s), {gbs:.1} GB-s, <b>${usd:.6}</b>
 at ${gb_price} per GB-s and $0.20 per million requests (x86).
 Assumes {mem} MiB functions, {fpc} frames per invocation, {init:.0} ms billed init per environment ({envs} environments),
 {overhead:.0} ms per invocation for the ranged S3 read, and one Lambda vCPU as fast as one core here.</li>
</ul>
</body></html>
"#,
        video = escape(&r.video),
        thumb = THUMB_WIDTH_PX,
        w = r.info.width,
        h = r.info.height,
        frames = r.info.frames,
        dur = r.info.duration_s,
        fps = r.info.fps,
        collection = escape(&r.collection),
        enrolled = r.people_enrolled,
        none = if people.is_empty() {
            "<p>No enrolled person was found.</p>"
        } else {
            ""
        },
        where_ = if on_stack {
            "on Lambda"
        } else {
            "on this machine"
        },
        unit = if on_stack {
            "worker slot(s)"
        } else {
            "thread(s)"
        },
        wall = r.tracked.wall_s,
        threads = r.threads,
        chunks = r.chunks,
        fps_core = r.tracked.frames_per_s_per_core,
        per_frame = r.tracked.per_frame_ms,
        detected = r.tracked.stats.frames_detected,
        recognized = r.tracked.stats.faces_recognized,
        faces = r.tracked.stats.faces_detected,
        requests = e.requests,
        gbs = e.gb_s,
        usd = e.usd,
        gb_price = pricing::USD_PER_GB_S_X86_64,
        mem = a.memory_mib,
        fpc = a.frames_per_chunk,
        init = a.init_ms,
        envs = e.environments,
        overhead = a.invoke_overhead_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_scans_in_worker_sized_chunks_more_threads_in_four_each() {
        let info = VideoInfo {
            width: 1920,
            height: 1080,
            rotation_deg: 0,
            frames: 105,
            duration_s: 4.2,
            fps: 25.0,
            keyframes: 1,
        };
        assert_eq!(chunk_frames(&info, None, 1), 300);
        assert_eq!(chunk_frames(&info, None, 2), 30);
        let long = VideoInfo {
            frames: 9_000,
            ..info
        };
        assert_eq!(chunk_frames(&long, None, 1), 300);
        assert_eq!(chunk_frames(&long, None, 4), 563);
        assert_eq!(chunk_frames(&info, Some(10), 1), 10);
        // Thread counts whose 4 chunks each overflow a u64.
        assert_eq!(chunk_frames(&long, None, usize::MAX), 30);
        assert_eq!(chunk_frames(&long, None, usize::MAX / 4 + 1), 30);
    }

    #[test]
    fn lambda_estimate_arithmetic() {
        let a = LambdaAssumptions {
            memory_mib: 2048,
            frames_per_chunk: 100,
            invoke_overhead_ms: 100.0,
            init_ms: 1000.0,
            concurrency: 5,
            lambda_core_speed_vs_local: 1.0,
        };
        // 1,000 frames at 10 ms: 10 s compute, 10 requests (1 s overhead),
        // 5 environments (5 s init) = 16 s billed at 2 GB = 32 GB-s.
        let e = a.estimate(1000, 10.0);
        assert_eq!((e.requests, e.environments), (10, 5));
        assert!((e.billed_s - 16.0).abs() < 1e-9);
        assert!((e.gb_s - 32.0).abs() < 1e-9);
        let usd = 32.0 * pricing::USD_PER_GB_S_X86_64 + 10.0 * 0.2e-6;
        assert!((e.usd - usd).abs() < 1e-12);
    }
}
