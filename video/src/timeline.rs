//! Per-frame matches folded into time ranges per person: the answer to
//! "where does this person appear?".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scan::FrameMatches;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimelineConfig {
    /// Sightings of a person closer than this merge into one appearance
    /// (default 1 s: a turned head or a missed detection is not an exit).
    pub max_gap_s: f64,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self { max_gap_s: 1.0 }
    }
}

/// One continuous appearance of a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appearance {
    pub person: String,
    pub start_s: f64,
    /// Presentation time of the last frame the person was seen in, plus
    /// one frame interval.
    pub end_s: f64,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Frames in the range with the person in them.
    pub frames_seen: u64,
    /// Best (lowest) recognition distance in the range.
    pub best_distance: f32,
    /// The frame of that best distance (for a thumbnail).
    pub best_frame: u64,
}

/// The duration of one frame at `fps` (0 when the rate is unknown): what
/// [`Timeline::build`] adds to a sighting's presentation time.
pub fn frame_interval_s(fps: f64) -> f64 {
    if fps > 0.0 { 1.0 / fps } else { 0.0 }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timeline {
    pub appearances: Vec<Appearance>,
}

impl Timeline {
    /// Builds the timeline from frames in any order (chunks may arrive out
    /// of order); `frame_interval_s` is the duration of one frame.
    pub fn build<'a>(
        frames: impl IntoIterator<Item = &'a FrameMatches>,
        frame_interval_s: f64,
        config: &TimelineConfig,
    ) -> Self {
        // person -> (frame, pts, best distance in that frame)
        let mut seen: BTreeMap<&str, Vec<(u64, f64, f32)>> = BTreeMap::new();
        for m in frames {
            let mut in_frame: BTreeMap<&str, f32> = BTreeMap::new();
            for f in &m.faces {
                if let Some(p) = &f.person {
                    let d = f.distance.unwrap_or(f32::MAX);
                    let e = in_frame.entry(p.as_str()).or_insert(d);
                    *e = e.min(d);
                }
            }
            for (p, d) in in_frame {
                seen.entry(p).or_default().push((m.frame, m.pts_s, d));
            }
        }
        let mut appearances = Vec::new();
        for (person, mut sightings) in seen {
            sightings.sort_by_key(|s| s.0);
            let mut current: Option<Appearance> = None;
            for (frame, pts, d) in sightings {
                let end = pts + frame_interval_s;
                match &mut current {
                    Some(a) if pts - a.end_s <= config.max_gap_s => {
                        a.end_s = a.end_s.max(end);
                        a.last_frame = frame;
                        a.frames_seen += 1;
                        if d < a.best_distance {
                            a.best_distance = d;
                            a.best_frame = frame;
                        }
                    }
                    _ => {
                        appearances.extend(current.take());
                        current = Some(Appearance {
                            person: person.to_string(),
                            start_s: pts,
                            end_s: end,
                            first_frame: frame,
                            last_frame: frame,
                            frames_seen: 1,
                            best_distance: d,
                            best_frame: frame,
                        });
                    }
                }
            }
            appearances.extend(current);
        }
        appearances.sort_by(|a, b| {
            a.start_s
                .total_cmp(&b.start_s)
                .then(a.person.cmp(&b.person))
        });
        Self { appearances }
    }

    pub fn people(&self) -> Vec<&str> {
        let mut p: Vec<&str> = self.appearances.iter().map(|a| a.person.as_str()).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::FaceInFrame;
    use face_core::PixelBox;

    fn frame(i: u64, who: Option<&str>) -> FrameMatches {
        FrameMatches {
            frame: i,
            pts_s: i as f64 * 0.1,
            faces: who
                .map(|p| FaceInFrame {
                    track: None,
                    bbox: PixelBox {
                        x: 0.0,
                        y: 0.0,
                        width: 1.0,
                        height: 1.0,
                    },
                    confidence: 1.0,
                    person: Some(p.into()),
                    distance: Some(0.4 - i as f32 * 0.001),
                    unknown_reason: None,
                    recognized: true,
                    detected: true,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn small_gaps_merge_and_large_ones_split() {
        // ann at 0.0-0.3, gap 0.5 s (merged), 0.9-1.0; again at 3.0 (split).
        let frames: Vec<FrameMatches> = (0..40)
            .map(|i| {
                let who = matches!(i, 0..=2 | 8..=9 | 30).then_some("ann");
                frame(i, who)
            })
            .collect();
        let t = Timeline::build(frames.iter().rev(), 0.1, &TimelineConfig::default());
        assert_eq!(t.appearances.len(), 2, "{t:?}");
        let a = &t.appearances[0];
        assert_eq!((a.first_frame, a.last_frame, a.frames_seen), (0, 9, 5));
        assert!((a.end_s - 1.0).abs() < 1e-9);
        assert_eq!(a.best_frame, 9);
        assert_eq!(t.appearances[1].first_frame, 30);
        assert_eq!(t.people(), vec!["ann"]);
    }
}
