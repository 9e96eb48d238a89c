//! Standard output that a reader who stops reading (`facectl detect ... |
//! head -1`) does not turn into a panic: `println!` panics when stdout's
//! pipe is closed, these return the `BrokenPipe` error, which `main` turns
//! into a quiet exit with status [`BROKEN_PIPE_EXIT`] (`unsafe` is not
//! allowed here, so SIGPIPE's default action cannot be restored). Every
//! command prints through [`outln!`](crate::outln) and [`out!`](crate::out).

use std::fmt;
use std::io::{self, Write};

/// The exit status when stdout's reader went away: 128 + SIGPIPE, what a
/// shell reports for a program SIGPIPE ended (as `yes | head -1` does), so
/// `set -o pipefail` treats facectl like any other command.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// Writes `args` to stdout and flushes, so a closed pipe is reported here.
pub fn write_stdout(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// Writes `args` and a newline to stdout.
pub fn write_stdout_line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Whether `error` comes from writing to a pipe nobody reads any more.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that returns `io::Result<()>` instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout_line(format_args!($($arg)*))
    };
}

/// `print!` that returns `io::Result<()>` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn a_broken_pipe_is_found_under_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("printing the report");
        assert!(is_broken_pipe(&e));
        let e = Err::<(), _>(io::Error::from(io::ErrorKind::NotFound))
            .context("reading")
            .expect_err("an error");
        assert!(!is_broken_pipe(&e));
    }
}
