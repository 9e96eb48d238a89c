//! `cargo xtask test`: the project's whole test gate, the one command the
//! README gives and `.ci/run` calls: blobs, formatting, lints (clippy while
//! the tests compile), templates, the function artifacts the end-to-end
//! tests run, tests. Each phase prints its wall
//! time, so CI's budget (60 min on 2 cores, cold) can be watched.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use face_contracts::Architecture;
use xshell::{Shell, cmd};

use crate::{blobs, build};

/// The phases run so far and their wall times, printed again together at
/// the end (pass or fail), where CI's log tail shows them.
#[derive(Debug, Default)]
struct Phases(Vec<(&'static str, f64)>);

impl Phases {
    fn timed<T>(&mut self, phase: &'static str, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let outcome = run();
        let seconds = started.elapsed().as_secs_f64();
        println!("== test gate: {phase} took {seconds:.0} s");
        self.0.push((phase, seconds));
        outcome
    }

    fn summary(&self) -> String {
        let total: f64 = self.0.iter().map(|(_, s)| s).sum();
        let mut out = String::from("== test gate phases:\n");
        for (phase, seconds) in &self.0 {
            out.push_str(&format!("   {seconds:>6.0} s  {phase}\n"));
        }
        out.push_str(&format!("   {total:>6.0} s  in all"));
        out
    }
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

/// The lint every workspace crate is compiled under in the gate: clippy's
/// driver as cargo's workspace wrapper with `-D warnings`, which is what
/// `cargo clippy` runs, but in a full build instead of a check-only one.
/// The tests are then compiled once, linted as they compile, and the
/// dependencies are never compiled a second time in check mode (a whole
/// build of them on 2 cores). `CLIPPY_ARGS` is how `cargo clippy` hands its
/// `-- -D warnings` to the driver.
fn with_clippy<'a>(cmd: xshell::Cmd<'a>, driver: &Path) -> xshell::Cmd<'a> {
    crate::as_from_a_shell(cmd).envs(clippy_env(driver))
}

/// The environment of [`with_clippy`].
fn clippy_env(driver: &Path) -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("RUSTC_WORKSPACE_WRAPPER", driver.into()),
        (
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__".into(),
        ),
    ]
}

/// `clippy-driver` of the active toolchain (rustup's `clippy` component).
fn clippy_driver(sh: &Shell) -> Result<std::path::PathBuf> {
    let path = cmd!(sh, "rustup which clippy-driver")
        .quiet()
        .read()
        .context("clippy-driver not found: `rustup component add clippy`")?;
    Ok(path.trim().into())
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Then also build the arm64 functions (a second musl build of every
    /// dependency: tens of minutes cold on 2 cores, so not in CI's run) and
    /// check that recognize and scan-worker, run under QEMU's
    /// user-mode emulator (Debian's qemu-user-static), answer as the x86_64
    /// ones do (tests/tests/arm64.rs)
    #[arg(long)]
    pub arm64: bool,
}

pub fn run(sh: &Shell, root: &Path, args: &TestArgs) -> Result<()> {
    let mut phases = Phases::default();
    let mut outcome = run_phases(sh, root, &mut phases);
    if args.arm64 && outcome.is_ok() {
        outcome = run_arm64_phases(sh, root, &mut phases);
    }
    println!("{}", phases.summary());
    match &outcome {
        Ok(()) => println!("== test gate passed"),
        Err(_) => println!("== test gate FAILED (the error follows)"),
    }
    outcome
}

/// The functions tests/tests/arm64.rs runs.
const ARM64_FUNCTIONS: [&str; 2] = ["recognize", "scan-worker"];

/// `--arm64`: the arm64 artifacts, then the one test that runs them.
fn run_arm64_phases(sh: &Shell, root: &Path, phases: &mut Phases) -> Result<()> {
    let functions = ARM64_FUNCTIONS.map(String::from);
    phases.timed("build the arm64 functions", || {
        build::build(root, Architecture::Arm64, build::Profile::Ci, &functions)
    })?;
    let driver = clippy_driver(sh)?;
    // The tests phase's command and features, one test target: nothing is
    // compiled again (`-p e2e` alone would resolve other features).
    phases.timed("tests: arm64 under QEMU", || {
        Ok(with_clippy(
            cmd!(
                sh,
                "cargo test --workspace --features facectl/cloud --test arm64 -- --ignored --nocapture"
            ),
            &driver,
        )
        .run()?)
    })?;
    Ok(())
}

fn run_phases(sh: &Shell, root: &Path, phases: &mut Phases) -> Result<()> {
    phases.timed("fetch-blobs", || {
        blobs::fetch(root, &blobs::FetchArgs::default())
    })?;
    phases.timed("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    let driver = clippy_driver(sh)?;
    // facectl as `cargo install` builds it by default, without `cloud`: its
    // code without the cloud modules must lint clean too. Only e2e turns
    // `cloud` on, and leaving e2e out changes no dependency's features
    // (a tidy test holds that), so this build compiles the workspace's
    // dependencies once for both: the build with `cloud` after it adds only
    // facectl and e2e. (A `cargo clippy` check of facectl, as before, compiled
    // its whole tree a second time in check mode: 267 s cold.)
    phases.timed(
        "clippy: build the workspace but e2e (facectl without cloud)",
        || {
            Ok(with_clippy(
                cmd!(sh, "cargo test --workspace --exclude e2e --no-run"),
                &driver,
            )
            .run()?)
        },
    )?;
    // `facectl/cloud` explicitly: the xtask's end-to-end tests run the
    // facectl binary this build makes with its cloud commands (`results`,
    // `scan-status`, `--stack`); e2e's dependency on it turns the feature on
    // too, but the gate should not lean on feature unification.
    phases.timed("clippy: build every target of the workspace", || {
        Ok(with_clippy(
            cmd!(
                sh,
                "cargo test --workspace --features facectl/cloud --no-run"
            ),
            &driver,
        )
        .run()?)
    })?;
    phases.timed("cfn-lint", || lint_templates(sh, root))?;
    // The end-to-end tests (tests/) run the real musl bootstraps.
    phases.timed("build the Lambda functions", || {
        build::build(root, Architecture::X86_64, build::Profile::Ci, &[])
    })?;
    phases.timed("tests", || run_tests(sh, root, &driver))?;
    Ok(())
}

/// The test that runs beside all the others: its test target and name.
/// It spends most of its ~210 s waiting for a killed worker's message to
/// come back after the scan queue's visibility timeout (65 s of CPU in
/// 210 s measured), so alone it left a core idle for minutes; every
/// local-stack test keeps its own deploy state (`$FACE_DEPLOY_DIR`) and
/// kills only its own workers, so they may overlap.
const BESIDE: (&str, &str) = ("video_jobs_local", "video_jobs_on_the_local_stack");

/// Every test of the workspace, in two cargo processes at once: [`BESIDE`]
/// and the rest. The same command and environment as the builds before:
/// nothing is compiled again (and cargo holds its build lock only while it
/// builds). The one beside prints its output when both are done.
fn run_tests(sh: &Shell, root: &Path, driver: &Path) -> Result<()> {
    let (target, name) = BESIDE;
    let log_path = crate::target_dir(root).join(format!("test-gate-{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut beside = crate::command_from_a_shell("cargo");
    beside
        .current_dir(root)
        .args(["test", "--workspace", "--features", "facectl/cloud"])
        .args(["--no-fail-fast", "--test", target])
        .envs(clippy_env(driver))
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut beside = beside.spawn().context("starting cargo test")?;
    let rest = with_clippy(
        cmd!(
            sh,
            "cargo test --workspace --features facectl/cloud --no-fail-fast -- --skip {name}"
        ),
        driver,
    )
    .run();
    let beside = beside.wait().context("waiting for cargo test")?;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("== test gate: `--test {target}`, run beside the others:\n{output}");
    rest?;
    anyhow::ensure!(
        beside.success(),
        "cargo test --test {target} failed ({beside})"
    );
    Ok(())
}
