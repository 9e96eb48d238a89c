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

/// Every shipped deployment's templates through `cfn-lint`: no error, no
/// warning (it exits non-zero on either).
fn lint_templates(sh: &Shell, root: &Path) -> Result<()> {
    let tools = local_aws::Tools::ensure_default()?;
    let out = root.join("target/synth");
    let mut templates = Vec::new();
    for stack in ["local", "dev", "prod"] {
        let dir = out.join(stack);
        std::fs::remove_dir_all(&dir).ok();
        crate::synth::run(
            root,
            &crate::synth::SynthArgs {
                stack: stack.into(),
                out: Some(dir.clone()),
            },
        )?;
        for entry in std::fs::read_dir(&dir)? {
            templates.push(entry?.path());
        }
    }
    let (cfn_lint, count) = (&tools.cfn_lint, templates.len());
    cmd!(sh, "{cfn_lint} {templates...}").run()?;
    println!("cfn-lint: {count} templates, no error or warning");
    Ok(())
}

pub fn run(sh: &Shell, root: &Path) -> Result<()> {
    let started = Instant::now();
    timed("fetch-blobs", || {
        blobs::fetch(root, &blobs::FetchArgs::default())
    })?;
    timed("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    // `facectl/cloud` explicitly: the xtask's end-to-end tests run the
    // facectl binary this build makes with its cloud commands (`results`,
    // `scan-status`, `--stack`); e2e's dependency on it turns the feature on
    // too, but the gate should not lean on feature unification.
    timed("clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --workspace --all-targets --features facectl/cloud -- -D warnings"
        )
        .run()?)
    })?;
    // And facectl as `cargo install` builds it by default, without `cloud`.
    timed("clippy (facectl without cloud)", || {
        Ok(cmd!(sh, "cargo clippy -p facectl --all-targets -- -D warnings").run()?)
    })?;
    timed("cfn-lint", || lint_templates(sh, root))?;
    // The end-to-end tests (tests/) run the real musl bootstraps.
    timed("build the Lambda functions", || {
        build::build(root, build::Arch::X86_64, build::Profile::Ci, &[])
    })?;
    timed("tests", || {
        Ok(cmd!(sh, "cargo test --workspace --features facectl/cloud").run()?)
    })?;
    println!(
        "== test gate passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
