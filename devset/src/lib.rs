//! The labelled development set's layout (see `../shared/data/SOURCES.md`):
//! `labels_recognition.csv` (photo → person), `labels_detection.csv` (photo →
//! face count, known people), `video_slideshow_shared.csv` (second of a
//! video → slide photo, people on it) and `video_segments.csv` (the real
//! footage), plus the choices the tools derive from them (the demo, the
//! smoke test, the benches), so that no file name of the set is written in
//! the tools' code and another set with the same layout works unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use face_contracts::env::DATA_DIR;
use serde::Deserialize;

/// The labelled data folder: `explicit` (a `--data` flag), else
/// `$FACE_DATA_DIR`, else `../shared/data` beside the checkout at
/// `workspace_root`.
pub fn data_dir(explicit: Option<&Path>, workspace_root: &Path) -> PathBuf {
    match (explicit, std::env::var_os(DATA_DIR)) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => workspace_root.join("../shared/data"),
    }
}

/// The recognition labels' file name in a data folder.
pub const RECOGNITION_LABELS: &str = "labels_recognition.csv";
/// The detection labels' file name in a data folder.
pub const DETECTION_LABELS: &str = "labels_detection.csv";
/// The slideshow video's labels' file name in a data folder.
pub const SLIDESHOW_LABELS: &str = "video_slideshow_shared.csv";
/// The real footage's labels' file name in a data folder.
pub const VIDEO_SEGMENTS: &str = "video_segments.csv";

#[derive(Debug, thiserror::Error)]
pub enum DevsetError {
    #[error(
        "reading {path}: {source} (is the labelled data folder there? see --data / {DATA_DIR})"
    )]
    Open { path: PathBuf, source: csv::Error },
    #[error("{path} row {row}: {source}")]
    Row {
        path: PathBuf,
        row: usize,
        source: csv::Error,
    },
    #[error("{path} row {row}: {problem}")]
    Invalid {
        path: PathBuf,
        row: usize,
        problem: String,
    },
}

/// One labelled recognition photo: one face, of `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecognitionLabel {
    /// Relative to the data folder.
    pub path: String,
    pub identity: String,
}

/// One labelled detection photo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DetectionLabel {
    /// Relative to the data folder.
    pub path: String,
    pub face_count: u32,
    pub min_faces: u32,
    pub max_faces: u32,
    /// `;`-separated people of the recognition set seen on the photo.
    #[serde(default)]
    pub known_identities: String,
    #[serde(default)]
    pub notes: String,
}

/// One labelled stretch of a video: the photo shown and who is on it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SlideLabel {
    /// The video, relative to the data folder.
    pub video: String,
    pub start_s: f64,
    pub end_s: f64,
    /// The photo on screen, relative to the data folder.
    pub source_image: String,
    /// `;`-separated people on the photo; empty for a face-free slide.
    #[serde(default)]
    pub identities: String,
    pub min_faces: u32,
}

impl SlideLabel {
    /// The people on the slide.
    pub fn people(&self) -> impl Iterator<Item = &str> {
        self.identities.split(';').filter(|s| !s.is_empty())
    }
}

/// One labelled stretch of real footage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VideoSegment {
    /// The video, relative to the data folder.
    pub video: String,
    pub first_frame: u64,
    pub last_frame: u64,
    pub start_pts_s: f64,
    pub end_pts_s: f64,
    /// `;`-separated people of the recognition set seen in the stretch.
    #[serde(default)]
    pub identities_visible: String,
    /// Faces per frame, roughly (`3-8`).
    pub approx_faces: String,
    #[serde(default)]
    pub notes: String,
}

/// A video of the set to time a scan on, and what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchVideo {
    /// Relative to the data folder.
    pub video: String,
    pub what: String,
}

/// A person to enroll and their photos, relative to the data folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub person: String,
    pub photos: Vec<String>,
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, DevsetError> {
    let mut reader = csv::Reader::from_path(path).map_err(|source| DevsetError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|source| DevsetError::Row {
                path: path.to_path_buf(),
                row: i + 2,
                source,
            })
        })
        .collect()
}

pub fn recognition_labels(data: &Path) -> Result<Vec<RecognitionLabel>, DevsetError> {
    read(&data.join(RECOGNITION_LABELS))
}

pub fn detection_labels(data: &Path) -> Result<Vec<DetectionLabel>, DevsetError> {
    read(&data.join(DETECTION_LABELS))
}

pub fn video_segments(data: &Path) -> Result<Vec<VideoSegment>, DevsetError> {
    read(&data.join(VIDEO_SEGMENTS))
}

/// Each person's recognition photos in label order, by person.
pub fn photos_by_person(labels: &[RecognitionLabel]) -> BTreeMap<&str, Vec<&str>> {
    let mut people: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for label in labels {
        people
            .entry(label.identity.as_str())
            .or_default()
            .push(label.path.as_str());
    }
    people
}

/// The photo the benches time a cold start on: the first recognition
/// photo in label order (its person's face is the main one; the benches
/// check it is the only one).
pub fn cold_start_photo(labels: &[RecognitionLabel]) -> Option<&RecognitionLabel> {
    labels.first()
}

/// The videos a scan is timed on: each video of the real footage in label
/// order, then the slideshow's.
pub fn bench_videos(data: &Path) -> Result<Vec<BenchVideo>, DevsetError> {
    let mut videos: Vec<BenchVideo> = Vec::new();
    for segment in video_segments(data)? {
        if !videos.iter().any(|v| v.video == segment.video) {
            videos.push(BenchVideo {
                what: format!("footage, {} faces per frame", segment.approx_faces),
                video: segment.video,
            });
        }
    }
    let slides = slideshow_labels(data)?;
    if let Some(first) = slides.first() {
        let most = slides.iter().map(|s| s.min_faces).max().unwrap_or(0);
        videos.push(BenchVideo {
            video: first.video.clone(),
            what: format!(
                "slideshow of {} labelled photos, 0-{most} faces",
                slides.len()
            ),
        });
    }
    Ok(videos)
}

/// The slideshow's labels in playing order; every slide names the same
/// video and ends after it starts.
pub fn slideshow_labels(data: &Path) -> Result<Vec<SlideLabel>, DevsetError> {
    let path = data.join(SLIDESHOW_LABELS);
    let slides: Vec<SlideLabel> = read(&path)?;
    for (i, slide) in slides.iter().enumerate() {
        let problem = if slide.video != slides[0].video {
            Some(format!(
                "video {} differs from {}",
                slide.video, slides[0].video
            ))
        } else if slide.start_s.is_nan()
            || slide.end_s.partial_cmp(&slide.start_s) != Some(std::cmp::Ordering::Greater)
        {
            Some(format!(
                "ends at {} s, not after its start {} s",
                slide.end_s, slide.start_s
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(DevsetError::Invalid {
                path,
                row: i + 2,
                problem,
            });
        }
    }
    Ok(slides)
}

/// Who to enroll before scanning the slideshow: everyone named on a slide,
/// each from all their recognition photos that are *not* shown in the
/// video (finding a person from other photos of them is the point). People
/// with no such photo are left out. Sorted by person; photos in label order.
pub fn slideshow_enrollment(slides: &[SlideLabel], labels: &[RecognitionLabel]) -> Vec<Enrollment> {
    let shown: BTreeSet<&str> = slides.iter().map(|s| s.source_image.as_str()).collect();
    let people: BTreeSet<&str> = slides.iter().flat_map(SlideLabel::people).collect();
    people
        .into_iter()
        .map(|person| Enrollment {
            person: person.to_string(),
            photos: labels
                .iter()
                .filter(|l| l.identity == person && !shown.contains(l.path.as_str()))
                .map(|l| l.path.clone())
                .collect(),
        })
        .filter(|e| !e.photos.is_empty())
        .collect()
}

/// A person of the recognition set who is also on a labelled group photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonInGroup {
    pub person: String,
    /// Their recognition photos in label order, at least two (one to
    /// enroll from, one to recognize).
    pub photos: Vec<String>,
    /// The group photo, relative to the data folder.
    pub group_photo: String,
}

/// Each labelled group photo, smallest first (fewest faces, then path),
/// with the people of the recognition set it names, by name, each with
/// their photos in label order.
fn groups_smallest_first<'a>(
    recognition: &'a [RecognitionLabel],
    detection: &'a [DetectionLabel],
) -> impl Iterator<Item = Vec<PersonInGroup>> + 'a {
    let mut groups: Vec<&DetectionLabel> = detection.iter().filter(|d| d.face_count >= 2).collect();
    groups.sort_by(|a, b| (a.face_count, &a.path).cmp(&(b.face_count, &b.path)));
    groups.into_iter().map(move |group| {
        let mut named: Vec<&str> = group
            .known_identities
            .split(';')
            .filter(|s| !s.is_empty())
            .collect();
        named.sort_unstable();
        named.dedup();
        named
            .into_iter()
            .map(|person| PersonInGroup {
                person: person.to_string(),
                photos: recognition
                    .iter()
                    .filter(|l| l.identity == person)
                    .map(|l| l.path.clone())
                    .collect(),
                group_photo: group.path.clone(),
            })
            .collect()
    })
}

/// A person to smoke-test with: on the smallest labelled group photo (fewest
/// faces, then path) that names someone of the recognition set with two or
/// more photos; of several such people on it, the first by name.
pub fn person_in_group(
    recognition: &[RecognitionLabel],
    detection: &[DetectionLabel],
) -> Option<PersonInGroup> {
    groups_smallest_first(recognition, detection)
        .find_map(|people| people.into_iter().find(|p| p.photos.len() >= 2))
}

/// A labelled group photo and everyone it names, each with two or more
/// recognition photos (enough to enroll from one and check another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOfPeople {
    /// Relative to the data folder.
    pub group_photo: String,
    /// By name; their photos in label order.
    pub people: Vec<PersonInGroup>,
}

/// The smallest labelled group photo (fewest faces, then path) naming at
/// least `min_people` people who all have two or more recognition photos:
/// what the API test enrolls and then searches for on the photo.
pub fn group_of_people(
    recognition: &[RecognitionLabel],
    detection: &[DetectionLabel],
    min_people: usize,
) -> Option<GroupOfPeople> {
    groups_smallest_first(recognition, detection).find_map(|people| {
        let enough = people.len() >= min_people.max(1);
        (enough && people.iter().all(|p| p.photos.len() >= 2)).then(|| GroupOfPeople {
            group_photo: people[0].group_photo.clone(),
            people,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// ann and cy have two photos, bob and dee one.
    const PHOTOS: &str = "path,identity\n\
                          recognition/ann/1.jpg,ann\n\
                          recognition/ann/2.jpg,ann\n\
                          recognition/bob/1.jpg,bob\n\
                          recognition/cy/1.jpg,cy\n\
                          recognition/cy/2.jpg,cy\n\
                          recognition/dee/1.jpg,dee\n";

    #[test]
    fn enrollment_leaves_out_the_slides_and_people_without_other_photos() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            SLIDESHOW_LABELS,
            "video,start_s,end_s,source_image,identities,min_faces\n\
             v.mp4,0,1,detection/empty.png,,0\n\
             v.mp4,1,2,recognition/ann/1.jpg,ann,1\n\
             v.mp4,2,3,detection/group.jpg,ann;bob,2\n\
             v.mp4,3,4,recognition/dee/1.jpg,dee,1\n",
        );
        write(dir.path(), RECOGNITION_LABELS, PHOTOS);
        let slides = slideshow_labels(dir.path()).unwrap();
        assert_eq!(slides[2].people().collect::<Vec<_>>(), ["ann", "bob"]);
        assert_eq!(slides[0].people().count(), 0);
        let labels = recognition_labels(dir.path()).unwrap();
        let plan = slideshow_enrollment(&slides, &labels);
        assert_eq!(
            plan,
            [
                Enrollment {
                    person: "ann".into(),
                    photos: vec!["recognition/ann/2.jpg".into()],
                },
                Enrollment {
                    person: "bob".into(),
                    photos: vec!["recognition/bob/1.jpg".into()],
                },
            ]
        );
    }

    #[test]
    fn the_person_in_group_is_on_the_smallest_group_with_two_photos() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            DETECTION_LABELS,
            "path,face_count,min_faces,max_faces,known_identities,notes\n\
             detection/solo.jpg,1,1,1,ann,\n\
             detection/party.jpg,5,5,5,ann,\n\
             detection/pair.jpg,2,2,2,cy;bob,\n\
             detection/crowd.jpg,9,9,9,,\n",
        );
        write(dir.path(), RECOGNITION_LABELS, PHOTOS);
        let recognition = recognition_labels(dir.path()).unwrap();
        let detection = detection_labels(dir.path()).unwrap();
        // bob is first by name on the pair photo but has one photo only.
        assert_eq!(
            person_in_group(&recognition, &detection),
            Some(PersonInGroup {
                person: "cy".into(),
                photos: vec!["recognition/cy/1.jpg".into(), "recognition/cy/2.jpg".into()],
                group_photo: "detection/pair.jpg".into(),
            })
        );
        assert_eq!(person_in_group(&recognition[2..3], &detection), None);
    }

    #[test]
    fn the_group_of_people_names_only_people_with_two_photos() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            DETECTION_LABELS,
            "path,face_count,min_faces,max_faces,known_identities,notes\n\
             detection/pair.jpg,2,2,2,cy;bob,\n\
             detection/trio.jpg,3,3,3,cy;ann,\n\
             detection/crowd.jpg,9,9,9,ann;cy;dee,\n",
        );
        write(dir.path(), RECOGNITION_LABELS, PHOTOS);
        let recognition = recognition_labels(dir.path()).unwrap();
        let detection = detection_labels(dir.path()).unwrap();
        // The pair names bob, who has one photo; the crowd names dee.
        let group = group_of_people(&recognition, &detection, 2).unwrap();
        assert_eq!(group.group_photo, "detection/trio.jpg");
        assert_eq!(
            group
                .people
                .iter()
                .map(|p| p.person.as_str())
                .collect::<Vec<_>>(),
            ["ann", "cy"]
        );
        assert_eq!(
            group.people[1].photos,
            ["recognition/cy/1.jpg", "recognition/cy/2.jpg"]
        );
        assert_eq!(group_of_people(&recognition, &detection, 3), None);
    }

    #[test]
    fn the_benches_time_the_first_photo_and_every_video_once() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), RECOGNITION_LABELS, PHOTOS);
        write(
            dir.path(),
            VIDEO_SEGMENTS,
            "video,first_frame,last_frame,start_pts_s,end_pts_s,identities_visible,approx_faces,notes\n\
             video/street.mp4,0,9,0.0,0.4,,3-8,\"crowd, walking\"\n\
             video/street.mp4,10,19,0.4,0.8,ann,2,\n\
             video/hall.mp4,0,4,0.0,0.2,,1,\n",
        );
        write(
            dir.path(),
            SLIDESHOW_LABELS,
            "video,start_s,end_s,source_image,identities,min_faces\n\
             video/show.mp4,0,1,detection/empty.png,,0\n\
             video/show.mp4,1,2,detection/group.jpg,ann;bob,2\n",
        );
        let labels = recognition_labels(dir.path()).unwrap();
        assert_eq!(
            cold_start_photo(&labels).map(|l| l.path.as_str()),
            Some("recognition/ann/1.jpg")
        );
        assert_eq!(cold_start_photo(&[]), None);
        let people = photos_by_person(&labels);
        assert_eq!(
            people["cy"],
            ["recognition/cy/1.jpg", "recognition/cy/2.jpg"]
        );
        assert_eq!(
            people.keys().copied().collect::<Vec<_>>(),
            ["ann", "bob", "cy", "dee"]
        );
        assert_eq!(
            bench_videos(dir.path()).unwrap(),
            [
                BenchVideo {
                    video: "video/street.mp4".into(),
                    what: "footage, 3-8 faces per frame".into(),
                },
                BenchVideo {
                    video: "video/hall.mp4".into(),
                    what: "footage, 1 faces per frame".into(),
                },
                BenchVideo {
                    video: "video/show.mp4".into(),
                    what: "slideshow of 2 labelled photos, 0-2 faces".into(),
                },
            ]
        );
    }

    #[test]
    fn bad_rows_name_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            SLIDESHOW_LABELS,
            "video,start_s,end_s,source_image,identities,min_faces\n\
             v.mp4,0,1,a.png,,0\n\
             v.mp4,2,1,b.png,,0\n",
        );
        let err = slideshow_labels(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("row 3") && err.contains("not after its start"),
            "{err}"
        );
        write(
            dir.path(),
            DETECTION_LABELS,
            "path,face_count,min_faces,max_faces\nx.png,two,0,0\n",
        );
        let err = detection_labels(dir.path()).unwrap_err().to_string();
        assert!(err.contains("labels_detection.csv row 2"), "{err}");
        let err = recognition_labels(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, DevsetError::Open { .. }), "{err}");
    }
}
