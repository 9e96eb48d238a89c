//! Standard output that a reader who stops reading (`facectl detect ... |
//! head -1`) does not turn into a panic: `println!` panics when stdout's
//! pipe is closed, these return a [`StdoutClosed`] error, which `main` turns
//! into a quiet exit with status [`BROKEN_PIPE_EXIT`] (`unsafe` is not
//! allowed here, so SIGPIPE's default action cannot be restored). Every
//! command prints through [`outln!`](crate::outln) and [`out!`](crate::out).
//! Only stdout's closed pipe is quiet: a `BrokenPipe` from anything else (a
//! socket under an SDK error, an output file) is an error like any other.

use std::fmt;
use std::io::{self, Write};

/// The exit status when stdout's reader went away: 128 + SIGPIPE, what a
/// shell reports for a program SIGPIPE ended (as `yes | head -1` does), so
/// `set -o pipefail` treats facectl like any other command.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// The error of a write to stdout whose reader went away (the `BrokenPipe`
/// it got is its source): the one error [`is_broken_pipe`] looks for.
#[derive(Debug)]
pub struct StdoutClosed(pub io::Error);

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Writes `args` to stdout and flushes, so a closed pipe is reported here.
pub fn write_stdout(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    stdout_result(out.write_fmt(args).and_then(|()| out.flush()))
}

/// Writes `args` and a newline to stdout.
pub fn write_stdout_line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    stdout_result(
        out.write_fmt(args)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    )
}

/// A write to stdout's result: a closed pipe as [`StdoutClosed`].
fn stdout_result(written: io::Result<()>) -> anyhow::Result<()> {
    written.map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            anyhow::Error::new(StdoutClosed(e))
        } else {
            anyhow::Error::new(e).context("writing to stdout")
        }
    })
}

/// Whether `error` comes from writing to stdout when its reader went away
/// (a [`StdoutClosed`] anywhere in its chain), not from any broken pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<StdoutClosed>().is_some())
}

/// `println!` that returns an error instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout_line(format_args!($($arg)*))
    };
}

/// `print!` that returns an error instead of panicking.
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
    fn a_closed_stdout_is_found_under_context() {
        let closed = stdout_result(Err(io::Error::from(io::ErrorKind::BrokenPipe)))
            .context("printing the report")
            .expect_err("an error");
        assert!(is_broken_pipe(&closed), "{closed:#}");
        let e = Err::<(), _>(io::Error::from(io::ErrorKind::NotFound))
            .context("reading")
            .expect_err("an error");
        assert!(!is_broken_pipe(&e));
        // Any other failure to write stdout is an error.
        let full =
            stdout_result(Err(io::Error::from(io::ErrorKind::StorageFull))).expect_err("an error");
        assert!(!is_broken_pipe(&full), "{full:#}");
        assert!(
            format!("{full:#}").starts_with("writing to stdout: "),
            "{full:#}"
        );
    }

    /// A socket's `BrokenPipe` deep in another error's sources (as under
    /// an SDK error `results` wraps) is a failure, not a closed stdout.
    #[test]
    fn a_broken_pipe_not_from_stdout_is_an_error() {
        #[derive(Debug)]
        struct Dispatch(io::Error);
        impl fmt::Display for Dispatch {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("dispatch failure")
            }
        }
        impl std::error::Error for Dispatch {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Dispatch(io::Error::from(io::ErrorKind::BrokenPipe)))
            .context("sqs:ReceiveMessage");
        assert!(!is_broken_pipe(&e), "{e:#}");
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("--report");
        assert!(!is_broken_pipe(&e), "{e:#}");
    }
}
