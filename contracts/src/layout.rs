//! The data bucket's key layout. The functions write and read these keys,
//! the coordinator stages under them, and the stack grants each function
//! exactly the prefixes it writes.
//!
//! - `collections/<collection>/people/<person>.json`: one person's enrolled
//!   faces ([`person_key`]).
//! - `collections/<collection>/mirrored.json`: in a region the client-side
//!   scan mirrored the collection into, the people it copied there
//!   ([`mirror_manifest_key`]).
//! - `<upload prefix><collection>/<anything>`: uploads recognized against
//!   `<collection>` (the prefix is the stack's, default
//!   [`crate::env::defaults::UPLOAD_PREFIX`]).
//! - `scans/<job_id>/...`: everything a video job writes ([`job_prefix`]).
//! - `scans/videos/<sha256>.mp4`: videos the client-side coordinator staged
//!   ([`staged_video_key`]).

/// Every collection's people.
pub const COLLECTIONS_PREFIX: &str = "collections/";
/// Video scans: the jobs' objects and the staged videos.
pub const SCANS_PREFIX: &str = "scans/";
/// Videos the client-side coordinator staged, by content hash (under
/// [`SCANS_PREFIX`]; a job id is hex, never `videos`).
pub const STAGED_VIDEOS_PREFIX: &str = "scans/videos/";

/// `collections/<collection>/people/`.
pub fn people_prefix(collection: &str) -> String {
    format!("{COLLECTIONS_PREFIX}{collection}/people/")
}

/// `collections/<collection>/people/<person>.json`.
pub fn person_key(collection: &str, person: &str) -> String {
    format!("{}{person}.json", people_prefix(collection))
}

/// `collections/<collection>/mirrored.json`: which people of the
/// collection a video scan copied into this bucket from its source region
/// (and may remove once the source forgot them); outside `people/`, so no
/// listing of people sees it.
pub fn mirror_manifest_key(collection: &str) -> String {
    format!("{COLLECTIONS_PREFIX}{collection}/mirrored.json")
}

/// The collection and person of a [`person_key`]; `None` for any other
/// key (deeper, or not `.json`).
pub fn parse_person_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(COLLECTIONS_PREFIX)?;
    let (collection, file) = rest.split_once("/people/")?;
    let person = file.strip_suffix(".json")?;
    (!collection.is_empty() && !person.is_empty() && !file.contains('/'))
        .then_some((collection, person))
}

/// `scans/videos/<sha256 hex>.mp4`.
pub fn staged_video_key(sha256_hex: &str) -> String {
    format!("{STAGED_VIDEOS_PREFIX}{sha256_hex}.mp4")
}

/// `scans/<job_id>/`: everything a job writes lives under it.
pub fn job_prefix(job_id: &str) -> String {
    format!("{SCANS_PREFIX}{job_id}/")
}

/// `scans/<job_id>/chunks/<chunk, 6 digits>.json`: one chunk's frames.
pub fn chunk_result_key(job_id: &str, chunk: u32) -> String {
    format!("{}chunks/{chunk:06}.json", job_prefix(job_id))
}

/// `scans/<job_id>/montage/`: the chunks' montage segments.
pub fn montage_segments_prefix(job_id: &str) -> String {
    format!("{}montage/", job_prefix(job_id))
}

/// `scans/<job_id>/montage/<chunk, 6 digits>.mp4`: one chunk's montage
/// segment.
pub fn montage_segment_key(job_id: &str, chunk: u32) -> String {
    format!("{}{chunk:06}.mp4", montage_segments_prefix(job_id))
}

/// `scans/<job_id>/result.json`: the finished job's whole result.
pub fn result_key(job_id: &str) -> String {
    format!("{}result.json", job_prefix(job_id))
}

/// `scans/<job_id>/montage.mp4`: the job's montage.
pub fn montage_key(job_id: &str) -> String {
    format!("{}montage.mp4", job_prefix(job_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            person_key("got", "arya"),
            "collections/got/people/arya.json"
        );
        assert_eq!(
            parse_person_key("collections/got/people/arya.json"),
            Some(("got", "arya"))
        );
        for other in [
            "collections/got/people/x/arya.json",
            "collections/got/people/arya.jpg",
            "collections/got/arya.json",
            "uploads/got/people/arya.json",
        ] {
            assert_eq!(parse_person_key(other), None, "{other}");
        }
        let job = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            chunk_result_key(job, 7),
            format!("scans/{job}/chunks/000007.json")
        );
        assert_eq!(
            montage_segment_key(job, 7),
            format!("scans/{job}/montage/000007.mp4")
        );
        assert_eq!(result_key(job), format!("scans/{job}/result.json"));
        assert_eq!(montage_key(job), format!("scans/{job}/montage.mp4"));
        assert_eq!(staged_video_key("ab"), "scans/videos/ab.mp4");
        assert!(STAGED_VIDEOS_PREFIX.starts_with(SCANS_PREFIX));
    }
}
