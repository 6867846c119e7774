//! Logs: one subscriber for every service. Structured fields, spans (`Traced` gives each
//! handled message one), JSON lines when `FTGO_LOG_FORMAT=json` (for a log pipeline), readable
//! lines otherwise; `RUST_LOG` picks what (default `info`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the process's subscriber, writing to stderr. Call once, first thing in `main`.
pub fn init_subscriber(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FTGO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let installed = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        tracing::info!(service, "logging started");
    }
}

/// For tests: logs only when `TEST_LOG` is set (then as `init_subscriber` does), so a failing
/// test can be rerun with its story. Safe to call from every test.
pub fn init_test_subscriber() {
    if std::env::var_os("TEST_LOG").is_some() {
        init_subscriber("test");
    }
}
