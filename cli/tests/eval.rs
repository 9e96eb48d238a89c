//! `facectl eval` on the labelled development set meets the project's bar:
//! every detection count in its labelled range, no face on face-free
//! images, rank-1 and unknown rejection of at least 0.95, and on the group
//! photos, with everyone enrolled, their labelled people named and no one
//! else.

mod common;

use common::{data_dir, facectl, json};

#[test]
fn eval_on_the_development_set_meets_the_bar() {
    let store = tempfile::tempdir().expect("tempdir");
    let data = data_dir();
    let out = facectl(
        store.path(),
        &[
            "eval",
            "--data",
            data.to_str().expect("utf-8 path"),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "eval failed: {}",
        common::stderr(&out)
    );
    let report = json(&out);
    let detection = &report["detection"];
    let recognition = &report["recognition"];
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));

    assert_eq!(
        detection["images_in_range"], detection["images_total"],
        "detection counts out of range: {detection:#}"
    );
    assert!(num(&detection["images_total"]) >= 17.0);
    assert_eq!(
        num(&detection["false_faces"]),
        0.0,
        "faces on face-free images"
    );
    assert!(num(&detection["recall"]) >= 0.95);
    assert!(num(&detection["precision"]) >= 0.95);

    assert!(num(&recognition["rank1"]) >= 0.95, "{recognition:#}");
    assert!(
        num(&recognition["identification_rate"]) >= 0.95,
        "{recognition:#}"
    );
    assert!(
        num(&recognition["unknown_rejection"]) >= 0.95,
        "{recognition:#}"
    );
    assert!(num(&recognition["queries"]) >= 50.0);
    assert!(num(&recognition["unknown_queries"]) >= 4.0);
    let tar = num(&recognition["tar_at_far_1e-3"]);
    assert!((0.9..=1.0).contains(&tar), "TAR at FAR 1e-3 = {tar}");
    assert!((num(&recognition["threshold"]) - 0.55).abs() < 1e-6);
    assert!(report["errors"].as_array().is_some_and(|e| e.is_empty()));

    // Never name a stranger: with everyone enrolled, the group photos name
    // their labelled people and no one else.
    let open_set = &report["open_set"];
    assert_eq!(num(&open_set["false_identifications"]), 0.0, "{open_set:#}");
    assert!(num(&open_set["labelled_identities"]) >= 4.0, "{open_set:#}");
    assert_eq!(
        open_set["labelled_found"], open_set["labelled_identities"],
        "{open_set:#}"
    );
}
