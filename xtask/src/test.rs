//! `cargo xtask test`: the project's whole test gate, the one command the
//! README gives and `.ci/run` calls: blobs, formatting, lints, the function
//! artifacts the end-to-end tests run, tests.

use std::path::Path;

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::{blobs, build};

pub fn run(sh: &Shell, root: &Path) -> Result<()> {
    blobs::fetch(root, &blobs::FetchArgs::default())?;
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    // The end-to-end tests (tests/) run the real musl bootstraps.
    build::build(root, build::Arch::X86_64, &[])?;
    cmd!(sh, "cargo test --workspace").run()?;
    Ok(())
}
