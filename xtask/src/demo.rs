//! `cargo xtask demo`: the main job on the embedded local default. Enrolls
//! the people of the labelled data set who have two or more photos (all but
//! their last photo), then recognizes the held-out photos and the group
//! photos, printing who was found where.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
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

pub fn run(sh: &Shell, root: &Path, args: DemoArgs) -> Result<()> {
    let data = devset::data_dir(args.data.as_deref(), root);
    blobs::fetch(root, &blobs::FetchArgs::default())?;
    // `--endpoint` and `scan-video --stack local` below: the cloud commands.
    // The dev profile (dependencies optimized, tract among them) with the
    // workspace's features: the dependencies this xtask was just built with
    // are reused, so this adds minutes to a cold first run where a release
    // build with fat LTO took 18 (`cargo xtask bench` measures release).
    crate::as_from_a_shell(cmd!(
        sh,
        "cargo build --workspace --features facectl/cloud --bin facectl"
    ))
    .run()?;
    let facectl = crate::build::target_dir(root).join("debug/facectl");
    let store = root.join("target/demo-store");
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
    if !args.skip_local_stack {
        // Built now, not found stale from an earlier build: the functions
        // of the same build as the facectl above (a link each where this
        // machine runs its own binaries under the RIE).
        let arch = face_contracts::Architecture::X86_64;
        crate::build::build(root, arch, crate::build::Profile::local_default(arch), &[])?;
        local_stack_round_trip(root, &data, &facectl)?;
    }
    Ok(())
}

/// The same system as deployed: the local stack on moto, uploads recognized
/// by the real `recognize` bootstrap, results read back from the results
/// table and queue, a video scanned by the real `scan-worker` through
/// `facectl scan-video --stack local`; then everything is torn down again.
fn local_stack_round_trip(root: &Path, data: &Path, facectl: &Path) -> Result<()> {
    use crate::deploy::{self, StackArg};
    let stack = || StackArg {
        stack: "local".into(),
    };
    println!("== local stack: deploy on moto, smoke test through the real functions, teardown");
    deploy::deploy_command(
        root,
        &deploy::apply::DeployArgs {
            stack: stack(),
            regions: Vec::new(),
        },
    )?;
    let smoke = deploy::smoke_command(
        root,
        &deploy::smoke::SmokeArgs {
            stack: stack(),
            regions: Vec::new(),
            timeout_s: 180,
            data: Some(data.to_path_buf()),
        },
    );
    println!("== local stack: the HTTPS API (API keys, the real api and authorizer functions)");
    let smoke = smoke.and_then(|()| deploy::local_api_demo(root, data, facectl));
    println!("== local stack: find the enrolled people in the slideshow video");
    let smoke = smoke.and_then(|()| deploy::local_scan_command(root, data, facectl));
    // Torn down whether or not the smoke test passed: nothing may remain.
    let teardown = deploy::teardown_command(
        root,
        &deploy::teardown::TeardownArgs {
            stack: stack(),
            yes: true,
            delete_data: false,
        },
    );
    smoke.and(teardown)
}
