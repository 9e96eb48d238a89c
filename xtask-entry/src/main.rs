//! `cargo xtask <command>` (see the library's documentation).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xtask_entry::Cli::parse();
    match xtask_entry::run(cli, std::env::args_os().skip(1).collect()) {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        // The forwarded command has printed why; its code, or a shell's
        // 128 + N for a command ended by signal N.
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status
                .code()
                .or_else(|| status.signal().map(|n| 128 + n))
                .unwrap_or(1);
            ExitCode::from(u8::try_from(code.clamp(1, 255)).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
