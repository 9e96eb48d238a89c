//! `cargo xtask <command>`: the project's automation, in typed Rust.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod bench_lambda;
mod bench_scan;
mod blobs;
mod build;
mod demo;
mod deploy;
mod fuzz;
mod simulate;
mod synth;
mod test;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch and verify the model files listed in blobs/manifest.toml
    FetchBlobs(blobs::FetchArgs),
    /// Build every Lambda function as a static musl bootstrap zip (target/lambda-dist/<arch>/)
    Build(build::BuildArgs),
    /// Time the pipeline per stage against Python onnxruntime on the same images
    Bench(bench::BenchArgs),
    /// Cold start and warm latency of the real recognize bootstrap under the RIE, against moto
    BenchLambda(bench_lambda::BenchLambdaArgs),
    /// Frames/s per core of the tracked video scan beside the every-frame baseline
    BenchScan(bench_scan::BenchScanArgs),
    /// Predict wall time and cost of a 6-hour video scan on Lambda in 1, 3 and 5 regions
    SimulateScan(simulate::SimulateArgs),
    /// Print or write the CloudFormation template of each region of a deployment
    Synth(synth::SynthArgs),
    /// Build, upload and create/update each region's stack (default: the local stack on moto)
    Deploy(deploy::apply::DeployArgs),
    /// Delete every resource, object, asset bucket and log group of a deployment
    Teardown(deploy::teardown::TeardownArgs),
    /// Enroll a person, upload photos and check the results arrive in a deployed stack's table and queue
    SmokeTest(deploy::smoke::SmokeArgs),
    /// Create, list or revoke the HTTPS API's keys of a deployed stack
    ApiKey(deploy::api_key::ApiKeyArgs),
    /// Serve the local stack's HTTPS API on loopback (API Gateway's part: key check, limits, the real functions under the RIE)
    Serve(deploy::serve::ServeArgs),
    /// Mixed uploads (photos, corrupt files, repeats, overwrites; S3 and the API) into the local stack while a function is killed and the dispatcher restarted; counts lost and duplicated results, latency, throughput
    LoadTest(deploy::load::LoadArgs),
    /// The whole test gate: fetch blobs, cargo fmt --check, clippy -D warnings, cfn-lint, the musl functions, cargo test
    Test(test::TestArgs),
    /// Enroll the labelled people locally and recognize the held-out and group photos
    Demo(demo::DemoArgs),
    /// Fuzz the untrusted-input entry points with AFL++ (cargo-afl, installed pinned on first use); any crash fails
    Fuzz(fuzz::FuzzArgs),
}

/// The workspace root, from where this crate lives.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The variables `cargo run` set for xtask itself (its package's
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...). The builds xtask runs (the
/// gate's, the functions', the release `facectl`) go without them: build
/// scripts that watch them (ring's watches `CARGO_MANIFEST_DIR`) would
/// otherwise see them change between a `cargo test` typed in a shell and
/// the same command run by `cargo xtask test`, and each would rebuild ring
/// and everything above it (rustls, the AWS SDK) for the other.
pub fn cargo_run_vars() -> Vec<std::ffi::OsString> {
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

/// What a timed process must not inherit from a developer's shell: with a
/// backtrace requested, every error tract creates and drops while it plans
/// a model captures one (YuNet's declutter took 52 ms instead of 25 in the
/// musl bootstrap). Lambda sets neither variable, and the benches time what
/// it runs.
pub const BACKTRACE_OFF: [(&str, &str); 2] = [("RUST_BACKTRACE", "0"), ("RUST_LIB_BACKTRACE", "0")];

/// [`BACKTRACE_OFF`] for every command `sh` runs.
fn time_as_deployed(sh: &xshell::Shell) {
    for (name, value) in BACKTRACE_OFF {
        sh.set_var(name, value);
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    let sh = xshell::Shell::new()?;
    sh.change_dir(&root);
    match cli.command {
        Command::FetchBlobs(args) => blobs::fetch(&root, &args),
        Command::Build(args) => build::run(&root, &args),
        Command::Bench(args) => {
            time_as_deployed(&sh);
            bench::run(&sh, &root, args)
        }
        Command::BenchLambda(args) => {
            time_as_deployed(&sh);
            bench_lambda::run(&sh, &root, args)
        }
        Command::BenchScan(args) => {
            time_as_deployed(&sh);
            bench_scan::run(&sh, &root, args)
        }
        Command::SimulateScan(args) => simulate::run(&root, args),
        Command::Synth(args) => synth::run(&root, &args),
        Command::Deploy(args) => deploy::deploy_command(&root, &args),
        Command::Teardown(args) => deploy::teardown_command(&root, &args),
        Command::SmokeTest(args) => deploy::smoke_command(&root, &args),
        Command::ApiKey(args) => deploy::api_key::command(&root, &args),
        Command::Serve(args) => deploy::serve_command(&root, &args),
        Command::LoadTest(args) => deploy::load_command(&root, &args),
        Command::Test(args) => test::run(&sh, &root, &args),
        Command::Demo(args) => demo::run(&sh, &root, args),
        Command::Fuzz(args) => fuzz::run_command(&root, &args),
    }
}
