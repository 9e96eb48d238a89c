//! `cargo xtask`'s entry (the alias in .cargo/config.toml runs this crate's
//! binary). It runs `fetch-blobs` and the demo's local part itself and hands
//! every other command to the `xtask` package (`cargo run --package xtask`),
//! which compiles the AWS SDKs, tract and tokio. This crate compiles none of
//! them, so `cargo xtask demo` on a fresh machine starts building `facectl`
//! within a minute instead of after the whole automation (15 minutes on 2
//! cores), and prints its first recognition as soon as `facectl` is built.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

pub mod blobs;
mod demo;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation",
    disable_help_subcommand = true,
    after_help = "The commands but fetch-blobs and demo run in the `xtask` package, \
                  built on first use: `cargo xtask <command> --help` shows each one's flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every command of `cargo xtask`. The ones with [`Forwarded`] arguments
/// are the `xtask` package's; its tests check that both lists name the
/// same commands with the same descriptions.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch and verify the model files listed in blobs/manifest.toml
    FetchBlobs(blobs::FetchArgs),
    /// Enroll the labelled people locally and recognize the held-out and group photos; then the same through the local stack (demo-local-stack)
    Demo(demo::DemoArgs),
    /// The demo's second part: the local stack on moto, the real functions under the RIE, the HTTPS API, a video scan, teardown
    #[command(disable_help_flag = true)]
    DemoLocalStack(Forwarded),
    /// Build every Lambda function as a static musl bootstrap zip (target/lambda-dist/<arch>/)
    #[command(disable_help_flag = true)]
    Build(Forwarded),
    /// Time the pipeline per stage against Python onnxruntime on the same images
    #[command(disable_help_flag = true)]
    Bench(Forwarded),
    /// Cold start and warm latency of the real recognize bootstrap under the RIE, against moto
    #[command(disable_help_flag = true)]
    BenchLambda(Forwarded),
    /// Frames/s per core of the tracked video scan beside the every-frame baseline
    #[command(disable_help_flag = true)]
    BenchScan(Forwarded),
    /// Predict wall time and cost of a 6-hour video scan on Lambda in 1, 3 and 5 regions
    #[command(disable_help_flag = true)]
    SimulateScan(Forwarded),
    /// Print or write the CloudFormation template of each region of a deployment
    #[command(disable_help_flag = true)]
    Synth(Forwarded),
    /// Build, upload and create/update each region's stack (default: the local stack on moto)
    #[command(disable_help_flag = true)]
    Deploy(Forwarded),
    /// Delete every resource, object, asset bucket and log group of a deployment
    #[command(disable_help_flag = true)]
    Teardown(Forwarded),
    /// Enroll a person, upload photos and check the results arrive in a deployed stack's table and queue
    #[command(disable_help_flag = true)]
    SmokeTest(Forwarded),
    /// Create, list or revoke the HTTPS API's keys of a deployed stack
    #[command(disable_help_flag = true)]
    ApiKey(Forwarded),
    /// Serve the local stack's HTTPS API on loopback (API Gateway's part: key check, limits, the real functions under the RIE)
    #[command(disable_help_flag = true)]
    Serve(Forwarded),
    /// Mixed uploads (photos, corrupt files, repeats, overwrites; S3 and the API) into the local stack while a function is killed and the dispatcher restarted; counts lost and duplicated results, latency, throughput
    #[command(disable_help_flag = true)]
    LoadTest(Forwarded),
    /// The whole test gate: fetch blobs, cargo fmt --check, clippy -D warnings, cfn-lint, the musl functions, cargo test
    #[command(disable_help_flag = true)]
    Test(Forwarded),
    /// Fuzz the untrusted-input entry points with AFL++ (cargo-afl, installed pinned on first use); any crash fails
    #[command(disable_help_flag = true)]
    Fuzz(Forwarded),
}

/// A command the `xtask` package runs: its arguments, passed on untouched.
#[derive(Debug, clap::Args)]
pub struct Forwarded {
    /// The command's own arguments (`--help` lists them)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// Runs `cli`; `argv` is this process's command line without the program,
/// handed on as is for a forwarded command.
pub fn run(cli: Cli, argv: Vec<OsString>) -> Result<ExitStatus> {
    let root = project_root();
    match cli.command {
        Command::FetchBlobs(args) => blobs::fetch(&root, &args).map(|()| success()),
        Command::Demo(args) => demo::run(&root, args),
        // The rest carry `Forwarded`; a new command this crate runs itself
        // gets its arm above, and `xtask`'s test of the two lists fails
        // until it does.
        _ => forward_to_xtask(&root, argv),
    }
}

/// `cargo run --package xtask -- ARGS`, from a shell's environment and in
/// the caller's folder (relative paths in ARGS mean what they meant to the
/// user); its exit status.
pub fn forward_to_xtask<I, S>(root: &Path, args: I) -> Result<ExitStatus>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    command_from_a_shell(cargo())
        .arg("run")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--package", "xtask", "--"])
        .args(args.into_iter().map(Into::into))
        .status()
        .context("running `cargo run --package xtask`")
}

/// The packages of a build of `facectl` alone, before the workspace's: with
/// `workspace-hack`, every dependency resolves as the workspace build does,
/// so neither build compiles tract twice (tests/tests/tidy.rs). The demo's
/// first build and the dlib-model converter's (`--package dlib-model`
/// added) use it.
pub const FACECTL_ALONE: [&str; 4] = ["--package", "facectl", "--package", "workspace-hack"];

/// The cargo that runs this process (`$CARGO`, which `cargo run` sets),
/// else the one on `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A status that says success, for the commands this crate runs itself.
pub(crate) fn success() -> ExitStatus {
    ExitStatus::default()
}

/// The workspace root, from where this crate lives.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where cargo builds: `$CARGO_TARGET_DIR` (relative to the root, as the
/// builds xtask runs from there see it), else `target/` in the root.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// The variables `cargo run` set for xtask itself (its package's
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...). The builds xtask runs (the
/// gate's, the functions', `facectl`) go without them: build scripts that
/// watch them (ring's watches `CARGO_MANIFEST_DIR`) would otherwise see them
/// change between a `cargo test` typed in a shell and the same command run
/// by `cargo xtask test`, and each would rebuild ring and everything above
/// it (rustls, the AWS SDK) for the other.
pub fn cargo_run_vars() -> Vec<OsString> {
    const EXACT: [&str; 5] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
    ];
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            name.to_str().is_some_and(|name| {
                EXACT.contains(&name)
                    || name.starts_with("CARGO_PKG_")
                    || name.starts_with("CARGO_MANIFEST_")
            })
        })
        .collect()
}

/// `cmd` without [`cargo_run_vars`], so a cargo command xtask runs shares
/// its build with the same command typed in a shell.
pub fn as_from_a_shell(cmd: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    cargo_run_vars()
        .into_iter()
        .fold(cmd, |cmd, name| cmd.env_remove(name))
}

/// [`as_from_a_shell`] for a process xtask spawns and waits on itself.
pub fn command_from_a_shell(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    for name in cargo_run_vars() {
        command.env_remove(name);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(line.iter().copied()))
            .map(|cli| cli.command)
    }

    fn forwarded(line: &[&str]) -> Vec<String> {
        let args = match parsed(line).expect("parses") {
            Command::Build(f) | Command::Test(f) | Command::Deploy(f) => f.args,
            other => panic!("not forwarded: {other:?}"),
        };
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_forwarded_commands_arguments_pass_untouched_help_included() {
        assert_eq!(forwarded(&["build", "--help"]), ["--help"]);
        assert_eq!(
            forwarded(&["build", "--arch", "arm64", "--profile", "ci"]),
            ["--arch", "arm64", "--profile", "ci"]
        );
        assert_eq!(
            forwarded(&["deploy", "--stack", "dev.yaml", "-h"]),
            ["--stack", "dev.yaml", "-h"]
        );
        assert!(forwarded(&["test"]).is_empty());
    }

    #[test]
    fn the_commands_run_here_are_parsed_here() {
        let demo = parsed(&["demo", "--skip-local-stack", "--data", "d"]).expect("parses");
        assert!(
            matches!(&demo, Command::Demo(a) if a.skip_local_stack && a.data.as_deref() == Some(Path::new("d"))),
            "{demo:?}"
        );
        let err = parsed(&["demo", "--no-such-flag"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(parsed(&["no-such-command"]).is_err());
    }
}
