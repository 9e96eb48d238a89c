//! `cargo xtask demo`: the main job on the embedded local default. Enrolls
//! the people of the labelled data set who have two or more photos (all but
//! their last photo), then recognizes the held-out photos and the group
//! photos, printing who was found where; then hands the local stack's part
//! to the `xtask` package (`demo-local-stack`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::blobs;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Labelled data folder [default: $FACE_DATA_DIR, else ../shared/data
    /// beside the checkout]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Skip the round trip through the local stack (deploy on moto, the
    /// real functions under the Runtime Interface Emulator, smoke test,
    /// teardown), which builds the functions first
    #[arg(long)]
    pub skip_local_stack: bool,
}

pub fn run(root: &Path, args: DemoArgs) -> Result<ExitStatus> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    let sh = &sh;

    let data = devset::data_dir(args.data.as_deref(), root);
    // `facectl` alone, without `cloud`: the first result waits for tract and
    // the decoders, not for the AWS SDKs; demo-local-stack's workspace build
    // below reuses every dependency (`FACECTL_ALONE`).
    // The dev profile: dependencies optimized, tract among them (`cargo
    // xtask bench` measures release). Started first, so the models are
    // fetched (a PyPI download on a fresh checkout) while it compiles.
    let build_args = [&["build"][..], &crate::FACECTL_ALONE, &["--bin", "facectl"]].concat();
    println!("$ cargo {}", build_args.join(" "));
    let mut build = crate::command_from_a_shell(crate::cargo())
        .current_dir(root)
        .args(&build_args)
        .spawn()
        .context("starting `cargo build --package facectl`")?;
    let fetched = blobs::fetch(root, &blobs::FetchArgs::default());
    if let Err(e) = &fetched {
        // Said now, not after the build; the build is let finish, so the
        // next run finds its work done.
        eprintln!("fetching the models failed: {e:#}; waiting for the build to end");
    }
    let built = build.wait().context("waiting for `cargo build`")?;
    fetched?;
    ensure!(built.success(), "building facectl failed ({built})");
    let facectl = crate::target_dir(root).join("debug/facectl");
    let store = crate::target_dir(root).join("demo-store");
    let _ = std::fs::remove_dir_all(&store);

    let mut photos: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for label in devset::recognition_labels(&data)? {
        photos
            .entry(label.identity)
            .or_default()
            .push(data.join(label.path));
    }
    let mut held_out = Vec::new();
    for (person, mut paths) in photos {
        if paths.len() < 2 {
            held_out.extend(paths);
            continue;
        }
        held_out.extend(paths.pop());
        println!("== enroll {person} from {} photo(s)", paths.len());
        cmd!(
            sh,
            "{facectl} --store {store} enroll --collection demo --person {person} {paths...}"
        )
        .run()?;
    }
    let groups: Vec<PathBuf> = devset::detection_labels(&data)?
        .into_iter()
        .map(|label| data.join(label.path))
        .collect();
    println!("== recognize held-out photos (people with one photo were never enrolled: unknown)");
    cmd!(
        sh,
        "{facectl} --store {store} recognize --collection demo {held_out...}"
    )
    .run()?;
    println!("== recognize group and face-free photos");
    cmd!(
        sh,
        "{facectl} --store {store} recognize --collection demo {groups...}"
    )
    .run()?;
    if args.skip_local_stack {
        return Ok(crate::success());
    }
    crate::forward_to_xtask(
        root,
        [
            "demo-local-stack".into(),
            "--data".into(),
            data.into_os_string(),
        ],
    )
}
