//! `cargo xtask test`: the project's whole test gate, the one command the
//! README gives and `.ci/run` calls: blobs, formatting, lints, tests.

use std::path::Path;

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::blobs;

pub fn run(sh: &Shell, root: &Path) -> Result<()> {
    blobs::fetch(root, &blobs::FetchArgs::default())?;
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    cmd!(sh, "cargo test --workspace").run()?;
    Ok(())
}
