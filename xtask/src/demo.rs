//! `cargo xtask demo-local-stack`: the demo's second part (the first,
//! local, is xtask-entry's `demo`, which runs this one after it): the same
//! system as deployed, on this machine.

use std::path::{Path, PathBuf};

use anyhow::Result;
use xshell::{Shell, cmd};

#[derive(Debug, clap::Args)]
pub struct DemoLocalStackArgs {
    /// Labelled data folder [default: $FACE_DATA_DIR, else ../shared/data
    /// beside the checkout]
    #[arg(long)]
    pub data: Option<PathBuf>,
}

pub fn run(sh: &Shell, root: &Path, args: DemoLocalStackArgs) -> Result<()> {
    let data = devset::data_dir(args.data.as_deref(), root);
    // `--endpoint` and `scan-video --stack local` below: the cloud commands.
    // The workspace's features, so the dependencies this xtask and the
    // demo's first `facectl` were built with are reused (the dev profile:
    // dependencies optimized, tract among them).
    crate::as_from_a_shell(cmd!(
        sh,
        "cargo build --workspace --features facectl/cloud --bin facectl"
    ))
    .run()?;
    let facectl = crate::target_dir(root).join("debug/facectl");
    // Built now, not found stale from an earlier build: the functions of
    // the same build as the facectl above (a link each where this machine
    // runs its own binaries under the RIE). The build fetches the models
    // they and `facectl` load when one is missing.
    let arch = face_contracts::Architecture::X86_64;
    crate::build::build(root, arch, crate::build::Profile::local_default(arch), &[])?;
    local_stack_round_trip(root, &data, &facectl)
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
