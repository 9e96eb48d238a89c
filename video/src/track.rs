//! A simple IoU tracker: a face detected on consecutive analyzed frames
//! with overlapping boxes is the same track, so its identity carries over
//! and the recognizer does not run again.

use face_core::{DetectedFace, FaceMatch, PixelBox};

/// A face followed across frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u32,
    pub face: DetectedFace,
    /// The last known identity seen on this track: an unknown verdict on a
    /// later, worse view does not erase it.
    pub identity: Option<(String, f32)>,
    /// Analyzed frames since this track was last embedded.
    pub since_recognition: u32,
    /// Consecutive analyzed frames without a matching detection.
    pub missed: u32,
    /// Frame index where the track was last matched.
    pub last_seen: u64,
}

impl Track {
    pub fn record(&mut self, m: &FaceMatch) {
        self.since_recognition = 0;
        if let Some(c) = &m.identity {
            self.identity = Some((c.person.clone(), c.distance));
        }
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
