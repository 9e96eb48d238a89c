//! `facectl eval`: detection and recognition quality on a labelled folder
//! with the layout of shared/data. The JSON keys are a stable interface
//! (documented in the README).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use face_core::{
    Collection, EnrollOutcome, FacePipeline, MatchConfig, StageTimings, embed::Embedding,
    l2_distance,
};
use rayon::prelude::*;
use serde::Serialize;

use devset::{detection_labels, recognition_labels};

/// False-accept rate at which the TAR is reported.
const TARGET_FAR: f64 = 1e-3;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub detection: DetectionReport,
    pub recognition: RecognitionReport,
    pub open_set: OpenSetReport,
    /// Images that could not be processed, with the reason.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionReport {
    /// Σ min(detected, labelled) / Σ labelled faces.
    pub recall: f64,
    /// Σ min(detected, max_faces) / Σ detected.
    pub precision: f64,
    /// Images whose detected count lies in [min_faces, max_faces].
    pub images_in_range: usize,
    pub images_total: usize,
    /// Faces reported on the images labelled with no face at all.
    pub false_faces: usize,
    pub face_free_images: usize,
    pub images: Vec<DetectionRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionRow {
    pub path: String,
    pub detected: usize,
    pub min_faces: u32,
    pub max_faces: u32,
    pub in_range: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecognitionReport {
    /// Leave-one-out over people with 2+ photos, every other photo of
    /// those people enrolled: nearest person correct (closed set).
    pub rank1: f64,
    /// The same queries, counted correct only when the nearest person is
    /// right and within the threshold (open set).
    pub identification_rate: f64,
    /// Photos of single-photo people (never enrolled) that come out unknown.
    pub unknown_rejection: f64,
    /// True-accept rate over all same-person pairs at the distance where
    /// at most 1e-3 of the different-person pairs are accepted.
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    /// That distance.
    #[serde(rename = "threshold_at_far_1e-3")]
    pub threshold_at_far_1e_3: f32,
    /// The open-set L2 threshold in use.
    pub threshold: f32,
    pub queries: usize,
    pub unknown_queries: usize,
    pub genuine_pairs: usize,
    pub impostor_pairs: usize,
    pub max_genuine_distance: f32,
    pub min_impostor_distance: f32,
    /// Photos refused at enrollment, with the reason.
    pub unindexed: Vec<String>,
    /// Queries that were answered wrongly, for inspection.
    pub misses: Vec<String>,
}

/// Never name a stranger, on photos of groups: everyone of the
/// recognition set is enrolled, and every detection image with faces is
/// recognized as `facectl recognize` would (quality gate, threshold,
/// margin). Only the people its label names may be named.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSetReport {
    pub images: usize,
    pub faces: usize,
    /// Labelled identities (image, person) of the group photos...
    pub labelled_identities: usize,
    /// ... and how many of them were named on their photo.
    pub labelled_found: usize,
    /// Names given to anyone the image's label does not name.
    pub false_identifications: usize,
    /// Faces left unknown, by reason (the gate's and the matcher's).
    pub unknown_reasons: BTreeMap<String, usize>,
    pub rows: Vec<OpenSetRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenSetRow {
    pub path: String,
    pub known: Vec<String>,
    /// Who was named, with the distance.
    pub named: Vec<(String, f32)>,
}

/// One recognition photo, analyzed.
struct Photo {
    path: String,
    identity: String,
    /// The largest face's embedding (the labelled person's, per SOURCES.md).
    query: Option<Embedding>,
    /// The enrollment embedding, or why it was refused.
    enrolled: std::result::Result<Embedding, String>,
}

fn read(pipeline: &FacePipeline, data: &Path, rel: &str) -> Result<Vec<u8>> {
    let path: PathBuf = data.join(rel);
    crate::files::read_image_file(&path, pipeline.config().decode_limits.max_encoded_bytes)
        .with_context(|| path.display().to_string())
}

/// Runs the whole evaluation on `threads` worker threads.
pub fn evaluate(pipeline: &FacePipeline, data: &Path, threads: usize) -> Result<EvalReport> {
    let detection = detection_labels(data)?;
    let recognition = recognition_labels(data)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("starting the worker pool")?;
    let mut errors = Vec::new();

    let counts: Vec<Result<usize>> = pool.install(|| {
        detection
            .par_iter()
            .map(|label| {
                let bytes = read(pipeline, data, &label.path)?;
                let image = pipeline
                    .decode(&bytes)
                    .with_context(|| label.path.clone())?;
                Ok(pipeline
                    .detect(&image)
                    .with_context(|| label.path.clone())?
                    .len())
            })
            .collect()
    });
    let mut rows = Vec::new();
    // Summed beside the rows: a failed image has no row, so the labels and
    // the rows no longer pair up by position. A failed image's labelled
    // faces count as missed.
    let mut found: u64 = 0;
    for (label, count) in detection.iter().zip(counts) {
        match count {
            Ok(detected) => {
                found += (detected as u64).min(u64::from(label.face_count));
                rows.push(DetectionRow {
                    path: label.path.clone(),
                    detected,
                    min_faces: label.min_faces,
                    max_faces: label.max_faces,
                    in_range: (label.min_faces as usize..=label.max_faces as usize)
                        .contains(&detected),
                });
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let labelled: u64 = detection.iter().map(|l| u64::from(l.face_count)).sum();
    let detected: u64 = rows.iter().map(|r| r.detected as u64).sum();
    let plausible: u64 = rows
        .iter()
        .map(|r| (r.detected as u64).min(u64::from(r.max_faces)))
        .sum();
    let detection_report = DetectionReport {
        recall: ratio(found, labelled),
        precision: if detected == 0 {
            1.0
        } else {
            ratio(plausible, detected)
        },
        images_in_range: rows.iter().filter(|r| r.in_range).count(),
        images_total: detection.len(),
        false_faces: rows
            .iter()
            .filter(|r| r.max_faces == 0)
            .map(|r| r.detected)
            .sum(),
        face_free_images: rows.iter().filter(|r| r.max_faces == 0).count(),
        images: rows,
    };

    let photos: Vec<Result<Photo>> = pool.install(|| {
        recognition
            .par_iter()
            .map(|label| analyze_photo(pipeline, data, &label.path, &label.identity))
            .collect()
    });
    let mut analyzed = Vec::new();
    for photo in photos {
        match photo {
            Ok(p) => analyzed.push(p),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let recognition_report = recognition_metrics(&analyzed, &pipeline.config().matching);
    let everyone: Vec<&Photo> = analyzed.iter().collect();
    let everyone = gallery(&everyone, pipeline.face_model_version());
    let groups: Vec<&devset::DetectionLabel> =
        detection.iter().filter(|l| l.face_count > 0).collect();
    let recognized: Vec<Result<(OpenSetRow, usize, Vec<String>)>> = pool.install(|| {
        groups
            .par_iter()
            .map(|label| open_set_row(pipeline, data, label, &everyone))
            .collect()
    });
    let mut open_set = OpenSetReport {
        images: 0,
        faces: 0,
        labelled_identities: 0,
        labelled_found: 0,
        false_identifications: 0,
        unknown_reasons: BTreeMap::new(),
        rows: Vec::new(),
    };
    for row in recognized {
        match row {
            Ok((row, faces, reasons)) => {
                open_set.images += 1;
                open_set.faces += faces;
                open_set.labelled_identities += row.known.len();
                open_set.labelled_found += row
                    .known
                    .iter()
                    .filter(|k| row.named.iter().any(|(n, _)| n == *k))
                    .count();
                open_set.false_identifications += row
                    .named
                    .iter()
                    .filter(|(n, _)| !row.known.contains(n))
                    .count();
                for reason in reasons {
                    *open_set.unknown_reasons.entry(reason).or_default() += 1;
                }
                open_set.rows.push(row);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Ok(EvalReport {
        detection: detection_report,
        recognition: recognition_report,
        open_set,
        errors,
    })
}

/// One labelled detection image recognized against everyone: its row, its
/// face count and the reasons of its unknown faces.
fn open_set_row(
    pipeline: &FacePipeline,
    data: &Path,
    label: &devset::DetectionLabel,
    everyone: &Collection,
) -> Result<(OpenSetRow, usize, Vec<String>)> {
    let bytes = read(pipeline, data, &label.path)?;
    let image = pipeline
        .decode(&bytes)
        .with_context(|| label.path.clone())?;
    let faces = pipeline
        .recognize_image(&image, everyone, &mut StageTimings::default())
        .with_context(|| label.path.clone())?;
    let known = label
        .known_identities
        .split(';')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    let named = faces
        .iter()
        .filter_map(|f| {
            f.face_match
                .identity
                .as_ref()
                .map(|c| (c.person.clone(), c.distance))
        })
        .collect();
    let reasons = faces
        .iter()
        .filter_map(|f| f.face_match.unknown_reason.map(|r| r.as_str().to_string()))
        .collect();
    Ok((
        OpenSetRow {
            path: label.path.clone(),
            known,
            named,
        },
        faces.len(),
        reasons,
    ))
}

fn analyze_photo(
    pipeline: &FacePipeline,
    data: &Path,
    path: &str,
    identity: &str,
) -> Result<Photo> {
    let bytes = read(pipeline, data, path)?;
    let image = pipeline.decode(&bytes).with_context(|| path.to_string())?;
    let mut timings = StageTimings::default();
    let faces = pipeline
        .analyze_image(&image, &mut timings)
        .with_context(|| path.to_string())?;
    let query = faces
        .iter()
        .max_by(|a, b| a.face.bbox.area().total_cmp(&b.face.bbox.area()))
        .map(|f| f.embedding);
    let detected: Vec<_> = faces.iter().map(|f| f.face.clone()).collect();
    let enrolled = match pipeline
        .enroll_detected(&image, &detected)
        .with_context(|| path.to_string())?
    {
        EnrollOutcome::Indexed { embedding, .. } => Ok(embedding),
        EnrollOutcome::Unindexed(reason) => Err(reason.to_string()),
    };
    Ok(Photo {
        path: path.to_string(),
        identity: identity.to_string(),
        query,
        enrolled,
    })
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn gallery(photos: &[&Photo], version: &str) -> Collection {
    let mut collection = Collection::new(version);
    for p in photos {
        if let Ok(embedding) = &p.enrolled {
            let face = FacePipeline::enrolled_face(&p.path, &p.path, *embedding, 1);
            // Identities come from our own label file and are valid names.
            let _ = collection.add_faces(&p.identity, [face]);
        }
    }
    collection
}

fn recognition_metrics(photos: &[Photo], matching: &MatchConfig) -> RecognitionReport {
    let mut per_person: BTreeMap<&str, usize> = BTreeMap::new();
    for p in photos {
        *per_person.entry(p.identity.as_str()).or_default() += 1;
    }
    let enrolled_people: BTreeSet<&str> = per_person
        .iter()
        .filter(|(_, n)| **n >= 2)
        .map(|(name, _)| *name)
        .collect();
    let (known, unknown): (Vec<&Photo>, Vec<&Photo>) = photos
        .iter()
        .partition(|p| enrolled_people.contains(p.identity.as_str()));

    let mut misses = Vec::new();
    let (mut rank1, mut identified) = (0usize, 0usize);
    for (i, query) in known.iter().enumerate() {
        let others: Vec<&Photo> = known
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| *p)
            .collect();
        let collection = gallery(&others, "eval");
        let Some(embedding) = &query.query else {
            misses.push(format!("{}: no face found", query.path));
            continue;
        };
        let m = collection.match_embedding(embedding, matching);
        let nearest = m.candidates.first();
        if nearest.is_some_and(|c| c.person == query.identity) {
            rank1 += 1;
        }
        if m.identity
            .as_ref()
            .is_some_and(|c| c.person == query.identity)
        {
            identified += 1;
        } else {
            misses.push(format!(
                "{}: expected {}, got {} (nearest {} at {:.3})",
                query.path,
                query.identity,
                m.identity.as_ref().map_or("unknown", |c| c.person.as_str()),
                nearest.map_or("-", |c| c.person.as_str()),
                nearest.map_or(f32::NAN, |c| c.distance),
            ));
        }
    }
    let full = gallery(&known, "eval");
    let mut rejected = 0usize;
    for query in &unknown {
        match &query.query {
            None => rejected += 1,
            Some(embedding) => match full.match_embedding(embedding, matching).identity {
                None => rejected += 1,
                Some(c) => misses.push(format!(
                    "{}: never enrolled, taken for {} at {:.3}",
                    query.path, c.person, c.distance
                )),
            },
        }
    }

    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    let with_face: Vec<(&Photo, &Embedding)> = photos
        .iter()
        .filter_map(|p| p.query.as_ref().map(|e| (p, e)))
        .collect();
    for (i, (a, ea)) in with_face.iter().enumerate() {
        for (b, eb) in &with_face[i + 1..] {
            let d = l2_distance(ea, eb);
            if a.identity == b.identity {
                genuine.push(d)
            } else {
                impostor.push(d)
            }
        }
    }
    impostor.sort_by(f32::total_cmp);
    // Accept when d < t: allow floor(FAR * n) impostor pairs below t.
    let allowed = ((TARGET_FAR * impostor.len() as f64).floor() as usize).min(impostor.len());
    let threshold_at_far = impostor.get(allowed).copied().unwrap_or(f32::INFINITY);
    let accepted = genuine.iter().filter(|d| **d < threshold_at_far).count();

    RecognitionReport {
        rank1: ratio(rank1 as u64, known.len() as u64),
        identification_rate: ratio(identified as u64, known.len() as u64),
        unknown_rejection: ratio(rejected as u64, unknown.len() as u64),
        tar_at_far_1e_3: ratio(accepted as u64, genuine.len() as u64),
        threshold_at_far_1e_3: threshold_at_far,
        threshold: matching.threshold_l2,
        queries: known.len(),
        unknown_queries: unknown.len(),
        genuine_pairs: genuine.len(),
        impostor_pairs: impostor.len(),
        max_genuine_distance: genuine.iter().copied().fold(0.0, f32::max),
        min_impostor_distance: impostor.first().copied().unwrap_or(f32::INFINITY),
        unindexed: photos
            .iter()
            .filter_map(|p| {
                p.enrolled
                    .as_ref()
                    .err()
                    .map(|why| format!("{}: {why}", p.path))
            })
            .collect(),
        misses,
    }
}

/// A human-readable summary.
pub fn render(report: &EvalReport) -> String {
    let d = &report.detection;
    let r = &report.recognition;
    let mut out = String::new();
    out.push_str(&format!(
        "detection: {}/{} images in range, recall {:.3}, precision {:.3}, {} false faces on {} face-free images\n",
        d.images_in_range, d.images_total, d.recall, d.precision, d.false_faces, d.face_free_images
    ));
    for row in d.images.iter().filter(|r| !r.in_range) {
        out.push_str(&format!(
            "  out of range: {} detected {} (expected {}..={})\n",
            row.path, row.detected, row.min_faces, row.max_faces
        ));
    }
    out.push_str(&format!(
        "recognition: rank-1 {:.3} ({} queries), open-set identification {:.3}, unknown rejection {:.3} ({} queries)\n",
        r.rank1, r.queries, r.identification_rate, r.unknown_rejection, r.unknown_queries
    ));
    out.push_str(&format!(
        "  TAR {:.3} at FAR 1e-3 (distance < {:.3}); threshold {:.2}; genuine max {:.3}, impostor min {:.3} ({} / {} pairs)\n",
        r.tar_at_far_1e_3, r.threshold_at_far_1e_3, r.threshold, r.max_genuine_distance,
        r.min_impostor_distance, r.genuine_pairs, r.impostor_pairs
    ));
    let o = &report.open_set;
    out.push_str(&format!(
        "open set: {} photos, {} faces; {}/{} labelled people named, {} false identifications; unknown: {}\n",
        o.images,
        o.faces,
        o.labelled_found,
        o.labelled_identities,
        o.false_identifications,
        o.unknown_reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for row in &o.rows {
        for (name, d) in row.named.iter().filter(|(n, _)| !row.known.contains(n)) {
            out.push_str(&format!(
                "  false identification: {} named {name} at {d:.3}\n",
                row.path
            ));
        }
        for k in row
            .known
            .iter()
            .filter(|k| !row.named.iter().any(|(n, _)| n == *k))
        {
            out.push_str(&format!("  labelled but not named: {k} on {}\n", row.path));
        }
    }
    for u in &r.unindexed {
        out.push_str(&format!("  not enrolled: {u}\n"));
    }
    for m in &r.misses {
        out.push_str(&format!("  miss: {m}\n"));
    }
    for e in &report.errors {
        out.push_str(&format!("  error: {e}\n"));
    }
    out
}
