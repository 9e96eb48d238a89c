//! The project's automation, in typed Rust: every `cargo xtask` command but
//! `fetch-blobs` and the demo's local part, which xtask-entry (the alias's
//! crate) runs itself before it hands the others here.

use anyhow::Result;
use clap::{Parser, Subcommand};
pub use xtask_entry::{
    as_from_a_shell, blobs, cargo_run_vars, command_from_a_shell, project_root, target_dir,
};

mod bench;
mod bench_lambda;
mod bench_scan;
mod build;
mod demo;
mod deploy;
mod fuzz;
mod simulate;
mod synth;
mod test;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The demo's second part: the local stack on moto, the real functions under the RIE, the HTTPS API, a video scan, teardown
    DemoLocalStack(demo::DemoLocalStackArgs),
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
    /// Fuzz the untrusted-input entry points with AFL++ (cargo-afl, installed pinned on first use); any crash fails
    Fuzz(fuzz::FuzzArgs),
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
        Command::DemoLocalStack(args) => demo::run(&sh, &root, args),
        Command::Fuzz(args) => fuzz::run_command(&root, &args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// xtask-entry's `cargo xtask --help` lists this crate's commands with
    /// the same descriptions (plus its own two, which it runs itself).
    #[test]
    fn the_entry_lists_every_command_of_this_crate_as_it_is_described_here() {
        let described = |command: &clap::Command| -> Vec<(String, String)> {
            command
                .get_subcommands()
                .map(|c| {
                    let about = c.get_about().map(ToString::to_string).unwrap_or_default();
                    (c.get_name().to_string(), about)
                })
                .collect()
        };
        let here = described(&super::Cli::command());
        let entry: Vec<_> = described(&xtask_entry::Cli::command())
            .into_iter()
            .filter(|(name, _)| name != "fetch-blobs" && name != "demo")
            .collect();
        assert!(here.len() > 10, "{here:?}");
        assert_eq!(entry, here);
    }
}
