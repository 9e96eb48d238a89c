//! JSON logs for CloudWatch; the runtime's per-invocation span carries the
//! request id into every line.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber (`RUST_LOG` filters, default `info`).
pub fn init_json_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}
