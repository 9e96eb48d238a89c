//! Logs as Lambda's advanced logging controls (`LoggingConfig`) ask for:
//! `AWS_LAMBDA_LOG_FORMAT` picks JSON or text, `AWS_LAMBDA_LOG_LEVEL` the
//! level, else `RUST_LOG`, else `info`. The runtime's per-invocation span
//! carries the request id into every line.
//!
//! The same rules as `lambda_runtime::tracing::init_default_subscriber`
//! (1.5), which is not used because there `RUST_LOG` overrides
//! `AWS_LAMBDA_LOG_LEVEL`, `FATAL` reads as `info`, text lines carry ANSI
//! colour codes (this workspace enables tracing-subscriber's `ansi`) and a
//! second call panics.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// How a log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (`level`, `fields`, `span`): what Lambda's
    /// JSON format expects, and what it filters by level.
    Json,
    /// tracing's plain text, Lambda's default format.
    Text,
}

/// The format and filter a function logs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub filter: String,
}

impl LogSettings {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var` (a variable's value by name): `AWS_LAMBDA_LOG_FORMAT`
    /// `JSON` is JSON, anything else text; a known `AWS_LAMBDA_LOG_LEVEL`
    /// wins over `RUST_LOG`, which wins over `info`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let format = match var("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let lambda_level = var("AWS_LAMBDA_LOG_LEVEL").and_then(|l| lambda_level(&l));
        let rust_log = var("RUST_LOG").filter(|f| !f.trim().is_empty());
        let filter = lambda_level
            .map(str::to_string)
            .or(rust_log)
            .unwrap_or_else(|| "info".into());
        Self { format, filter }
    }
}

/// Lambda's level names (`TRACE` .. `FATAL`) as tracing's; tracing has no
/// fatal, so `FATAL` keeps errors.
fn lambda_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// The subscriber for `settings`, writing to `writer`.
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Lossy: a bad `RUST_LOG` directive is skipped (and said on stderr),
    // never a failed init.
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(&settings.filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        // CloudWatch stamps every line, and shows escape codes verbatim.
        .without_time()
        .with_ansi(false);
    match settings.format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.finish()),
    }
}

/// Installs the subscriber of [`LogSettings::from_env`] on stdout, and
/// routes the `log` crate's records (tract's) through it.
pub fn init_logs() {
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = subscriber(&LogSettings::from_env(), std::io::stdout).try_init();
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogSettings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn format_and_level_come_from_lambdas_logging_config_first() {
        let json = |filter: &str| LogSettings {
            format: LogFormat::Json,
            filter: filter.into(),
        };
        let text = |filter: &str| LogSettings {
            format: LogFormat::Text,
            filter: filter.into(),
        };
        assert_eq!(settings(&[]), text("info"));
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]), json("info"));
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "json")]), json("info"));
        assert_eq!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]), text("info"));
        // Lambda's level wins over RUST_LOG.
        assert_eq!(
            settings(&[
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "warn,face_service=trace"),
            ]),
            json("debug")
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]),
            text("error")
        );
        // RUST_LOG when Lambda sets no level (or one it does not define).
        assert_eq!(
            settings(&[("RUST_LOG", "warn,face_service=debug")]),
            text("warn,face_service=debug")
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD"), ("RUST_LOG", "warn")]),
            text("warn")
        );
        assert_eq!(settings(&[("RUST_LOG", " ")]), text("info"));
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `settings` writes for an info and a debug event inside a span
    /// like the runtime's.
    fn log_lines(settings: &LogSettings) -> Vec<String> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = subscriber(settings, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "req-1");
            let _entered = span.enter();
            tracing::info!(faces = 2, "recognized");
            tracing::debug!("hidden at info");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn json_lines_carry_the_level_fields_and_request_id() {
        let lines = log_lines(&settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "recognized");
        assert_eq!(line["fields"]["faces"], 2);
        assert_eq!(line["span"]["requestId"], "req-1");
        assert!(line.get("timestamp").is_none(), "{line}");
    }

    #[test]
    fn text_lines_are_plain_and_follow_the_level() {
        let lines = log_lines(&settings(&[]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            !lines[0].contains('\u{1b}'),
            "no colour codes: {:?}",
            lines[0]
        );
        assert!(lines[0].starts_with(" INFO"), "{:?}", lines[0]);
        assert!(lines[0].contains("requestId=\"req-1\""), "{:?}", lines[0]);
        assert!(lines[0].contains("recognized faces=2"), "{:?}", lines[0]);

        let debug = log_lines(&settings(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]));
        assert_eq!(debug.len(), 2, "{debug:?}");
        assert!(debug[1].contains("hidden at info"), "{debug:?}");
    }
}
