//! `Deployment::load`: the one way every tool (xtask, the coordinator,
//! `facectl --stack`) turns `--stack` into a deployment.

use std::path::Path;

use face_stacks::{Deployment, LoadError, StackError};

#[test]
fn a_name_is_the_compiled_in_copy_and_a_path_is_read_from_disk() {
    let by_name = Deployment::load("dev").expect("dev");
    assert_eq!(by_name, Deployment::embedded("dev").unwrap().unwrap());
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("dev.yaml");
    let by_path = Deployment::load(file.to_str().unwrap()).expect("dev.yaml");
    assert_eq!(by_path, by_name);
}

#[test]
fn unknown_names_missing_files_and_bad_yaml_are_told_apart() {
    // A name is never looked up on disk, even beside the checkout's YAML.
    assert!(matches!(
        Deployment::load("stacks/dev"),
        Err(LoadError::Unknown(name)) if name == "stacks/dev"
    ));
    assert!(matches!(
        Deployment::load("/nonexistent/stack.yml"),
        Err(LoadError::Read { path, .. }) if path == Path::new("/nonexistent/stack.yml")
    ));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: face-t\nregions: {}\n").unwrap();
    let err = Deployment::load(bad.to_str().unwrap()).unwrap_err();
    assert!(
        matches!(
            &err,
            LoadError::Invalid {
                source: StackError::NoRegions,
                ..
            }
        ),
        "{err:?}"
    );
}
