//! A simple IoU tracker: a face detected on consecutive analyzed frames
//! with overlapping boxes is the same track, so the recognizer need not
//! run on every frame, and a name is decided for the whole track from
//! all of its recognitions (see [`TrackPolicy`]), not frame by frame.

use std::collections::BTreeMap;

use face_core::{DetectedFace, FaceMatch, PixelBox, UnknownReason};
use serde::{Deserialize, Serialize};

/// When a track is named: its recognitions must agree and its best one
/// must be close. Each recognition that passes the quality gate votes for
/// its nearest person when under `vote_threshold_l2` and clear of the
/// second best by the matcher's margin, else for "unknown"; the track is
/// named when a strict majority votes for one person and the best of those
/// votes is under the matching threshold (`MatchConfig::threshold_l2`). A
/// stranger who resembles someone enrolled draws a vote here and there; a
/// person enrolled draws most votes, and a close one on the best view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackPolicy {
    /// The person must have more than this share of the track's votes
    /// (default 0.5: a strict majority).
    pub min_agreement: f32,
    /// A recognition votes for its nearest person under this L2 distance
    /// (default 0.6, dlib's verification threshold: looser than naming,
    /// so that a person's poorer views still count for them).
    pub vote_threshold_l2: f32,
    /// Recognize a track again when its face is this many times wider than
    /// at its widest recognition so far (default 1.25): a closer view is a
    /// better one.
    pub recheck_growth: f32,
}

impl Default for TrackPolicy {
    fn default() -> Self {
        Self {
            min_agreement: 0.5,
            vote_threshold_l2: 0.6,
            recheck_growth: 1.25,
        }
    }
}

/// Everything a track's recognitions said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackVotes {
    /// Per person named: (times named, best distance).
    named: BTreeMap<String, (u32, f32)>,
    /// Recognitions that passed the quality gate (named or not).
    searched: u32,
    /// The widest face a searched recognition saw, in source pixels.
    pub widest_searched_px: f32,
    /// Why the last recognition left the face unknown.
    pub last_reason: Option<UnknownReason>,
}

impl TrackVotes {
    /// Adds one recognition of a face `face_px` wide.
    pub fn record(&mut self, m: &FaceMatch, face_px: f32) {
        self.last_reason = m.unknown_reason;
        if m.unknown_reason.is_some_and(UnknownReason::unsearched) {
            return;
        }
        self.searched += 1;
        self.widest_searched_px = self.widest_searched_px.max(face_px);
        if let Some(c) = &m.identity {
            let entry = self
                .named
                .entry(c.person.clone())
                .or_insert((0, f32::INFINITY));
            entry.0 += 1;
            entry.1 = entry.1.min(c.distance);
        }
    }

    /// Whether any recognition passed the gate.
    pub fn searched(&self) -> bool {
        self.searched > 0
    }

    /// The track's name and its best distance, if the policy allows one;
    /// `threshold_l2` is the matching threshold the best vote must beat.
    pub fn decide(&self, policy: &TrackPolicy, threshold_l2: f32) -> Option<(String, f32)> {
        let (person, &(count, best)) = self
            .named
            .iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.total_cmp(&a.1.1)))?;
        let agreed = count as f32 > policy.min_agreement * self.searched as f32;
        (agreed && best < threshold_l2).then(|| (person.clone(), best))
    }
}

/// A face followed across frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u32,
    pub face: DetectedFace,
    /// The recognitions so far, and the name they add up to.
    pub votes: TrackVotes,
    pub identity: Option<(String, f32)>,
    /// Analyzed frames since this track was last embedded.
    pub since_recognition: u32,
    /// Consecutive analyzed frames without a matching detection.
    pub missed: u32,
    /// Frame index where the track was last matched.
    pub last_seen: u64,
}

impl Track {
    /// Adds a recognition (matched at the policy's vote threshold) and
    /// decides the track's name again.
    pub fn record(&mut self, m: &FaceMatch, face_px: f32, policy: &TrackPolicy, threshold_l2: f32) {
        self.since_recognition = 0;
        self.votes.record(m, face_px);
        self.identity = self.votes.decide(policy, threshold_l2);
    }

    /// Whether the face in view now deserves another recognition: none
    /// passed the gate yet, or it is much wider than at the widest one.
    pub fn improved(&self, policy: &TrackPolicy) -> bool {
        !self.votes.searched()
            || self.face.bbox.width >= policy.recheck_growth * self.votes.widest_searched_px
    }
}

#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub tracks: Vec<Track>,
    next_id: u32,
    iou_threshold: f32,
    max_missed: u32,
}

/// What became of one detection of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Association {
    /// Index into `tracks`.
    pub track: usize,
    pub is_new: bool,
}

impl Tracker {
    pub fn new(iou_threshold: f32, max_missed: u32) -> Self {
        Self {
            tracks: Vec::new(),
            next_id: 0,
            iou_threshold,
            max_missed,
        }
    }

    /// Ends every track (a scene cut); ids keep counting, so they stay
    /// unique within the chunk.
    pub fn clear(&mut self) {
        self.tracks.clear();
    }

    /// Greedy matching by IoU, best pairs first; unmatched detections open
    /// tracks, tracks missed too often are dropped. Returns, per detection,
    /// its track (indices valid until the next call).
    pub fn update(&mut self, frame: u64, detections: &[DetectedFace]) -> Vec<Association> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let iou = iou(&det.bbox, &track.face.bbox);
                if iou >= self.iou_threshold {
                    pairs.push((iou, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track: Vec<Option<usize>> = vec![None; detections.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if det_track[d].is_none() && !track_taken[t] {
                det_track[d] = Some(t);
                track_taken[t] = true;
            }
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if track_taken[t] {
                track.missed = 0;
            } else {
                track.missed += 1;
            }
            track.since_recognition = track.since_recognition.saturating_add(1);
        }
        let mut out = Vec::with_capacity(detections.len());
        for (d, det) in detections.iter().enumerate() {
            match det_track[d] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    track.face = det.clone();
                    track.last_seen = frame;
                    out.push((t, false));
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        face: det.clone(),
                        votes: TrackVotes::default(),
                        identity: None,
                        since_recognition: 0,
                        missed: 0,
                        last_seen: frame,
                    });
                    self.next_id += 1;
                    out.push((self.tracks.len() - 1, true));
                }
            }
        }
        // Drop stale tracks, remapping the indices handed out.
        let max_missed = self.max_missed;
        let mut new_index = vec![usize::MAX; self.tracks.len()];
        let mut kept = 0;
        for (i, t) in self.tracks.iter().enumerate() {
            if t.missed <= max_missed {
                new_index[i] = kept;
                kept += 1;
            }
        }
        self.tracks.retain(|t| t.missed <= max_missed);
        out.into_iter()
            .map(|(t, is_new)| Association {
                track: new_index[t],
                is_new,
            })
            .collect()
    }
}

pub fn iou(a: &PixelBox, b: &PixelBox) -> f32 {
    a.intersection_over_union(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use face_core::{Point, RelativeBox};

    fn face(x: f32) -> DetectedFace {
        DetectedFace {
            bbox: PixelBox {
                x,
                y: 10.0,
                width: 50.0,
                height: 60.0,
            },
            bounding_box: RelativeBox {
                left: 0.0,
                top: 0.0,
                width: 0.1,
                height: 0.1,
            },
            landmarks: [Point::new(0.0, 0.0); 5],
            confidence: 0.9,
        }
    }

    fn seen(person: Option<&str>, distance: f32, reason: Option<UnknownReason>) -> FaceMatch {
        let candidate = |p: &str| face_core::Candidate {
            person: p.into(),
            distance,
            similarity: 50.0,
        };
        FaceMatch {
            identity: person.map(candidate),
            candidates: person.map(candidate).into_iter().collect(),
            unknown_reason: reason,
        }
    }

    #[test]
    fn a_track_is_named_by_a_majority_with_one_close_view() {
        let policy = TrackPolicy::default();
        let mut votes = TrackVotes::default();
        // One close view names the track.
        votes.record(&seen(Some("ada"), 0.45, None), 80.0);
        assert_eq!(votes.decide(&policy, 0.55), Some(("ada".into(), 0.45)));
        // Two unknown views out of three: no majority any more.
        votes.record(&seen(None, 0.7, Some(UnknownReason::BelowThreshold)), 80.0);
        votes.record(&seen(None, 0.7, Some(UnknownReason::Ambiguous)), 80.0);
        assert_eq!(votes.decide(&policy, 0.55), None);
        // Gated views do not vote.
        let mut gated = TrackVotes::default();
        gated.record(&seen(Some("ada"), 0.4, None), 80.0);
        gated.record(&FaceMatch::unsearched(UnknownReason::Blurry), 30.0);
        gated.record(&FaceMatch::unsearched(UnknownReason::Pose), 90.0);
        assert_eq!(gated.decide(&policy, 0.55), Some(("ada".into(), 0.4)));
        assert_eq!(gated.widest_searched_px, 80.0);
        assert_eq!(gated.last_reason, Some(UnknownReason::Pose));
    }

    #[test]
    fn a_stranger_named_only_near_the_threshold_stays_unknown() {
        let policy = TrackPolicy::default();
        let mut votes = TrackVotes::default();
        for _ in 0..5 {
            votes.record(&seen(Some("ada"), 0.58, None), 60.0);
        }
        assert_eq!(votes.decide(&policy, 0.55), None, "agreed but never close");
        // Two people named equally often: the closer one leads, and must
        // still win a majority.
        let mut split = TrackVotes::default();
        split.record(&seen(Some("ada"), 0.5, None), 60.0);
        split.record(&seen(Some("bea"), 0.4, None), 60.0);
        assert_eq!(split.decide(&policy, 0.55), None);
        split.record(&seen(Some("bea"), 0.45, None), 60.0);
        assert_eq!(split.decide(&policy, 0.55), Some(("bea".into(), 0.4)));
    }

    #[test]
    fn overlapping_boxes_keep_their_track_and_stale_tracks_end() {
        let mut t = Tracker::new(0.3, 1);
        let a = t.update(0, &[face(0.0), face(200.0)]);
        assert!(a.iter().all(|a| a.is_new));
        let b = t.update(1, &[face(210.0), face(5.0)]);
        assert!(b.iter().all(|a| !a.is_new));
        assert_eq!(t.tracks[b[0].track].id, 1);
        assert_eq!(t.tracks[b[1].track].id, 0);
        // The face at 200 leaves: missed once is kept, twice is dropped.
        t.update(2, &[face(8.0)]);
        assert_eq!(t.tracks.len(), 2);
        let c = t.update(3, &[face(10.0), face(400.0)]);
        assert_eq!(t.tracks.len(), 2);
        assert!(!c[0].is_new && c[1].is_new);
        assert_eq!(t.tracks[c[0].track].id, 0);
        assert_eq!(t.tracks[c[1].track].id, 2);
    }
}
