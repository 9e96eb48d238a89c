//! `cargo xtask <command>` (see the library's documentation).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xtask_entry::Cli::parse();
    match xtask_entry::run(cli, std::env::args_os().skip(1).collect()) {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        // The forwarded command has printed why.
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
