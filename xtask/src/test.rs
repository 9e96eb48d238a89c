//! `cargo xtask test`: the project's whole test gate, the one command the
//! README gives and `.ci/run` calls: blobs, formatting, lints, the function
//! artifacts the end-to-end tests run, tests. Each phase prints its wall
//! time, so CI's budget (60 min on 2 cores, cold) can be watched.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::{blobs, build};

fn timed<T>(phase: &str, run: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let outcome = run();
    println!(
        "== test gate: {phase} took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    outcome
}

pub fn run(sh: &Shell, root: &Path) -> Result<()> {
    let started = Instant::now();
    timed("fetch-blobs", || {
        blobs::fetch(root, &blobs::FetchArgs::default())
    })?;
    timed("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    timed("clippy", || {
        Ok(cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?)
    })?;
    // The end-to-end tests (tests/) run the real musl bootstraps.
    timed("build the Lambda functions", || {
        build::build(root, build::Arch::X86_64, build::Profile::Ci, &[])
    })?;
    timed("tests", || Ok(cmd!(sh, "cargo test --workspace").run()?))?;
    println!(
        "== test gate passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
