//! Logs and traces: one subscriber for every service.
//!
//! - Logs: structured fields, spans (`Traced` gives each handled message one), JSON lines when
//!   `FTGO_LOG_FORMAT=json` (for a log pipeline), readable lines otherwise; `RUST_LOG` picks
//!   what (default `info`).
//! - Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set,
//!   the spans of handled messages, of the relay's publications and of REST requests are
//!   exported over OTLP (HTTP, protobuf) in batches, whatever `RUST_LOG` says, with warnings
//!   and errors as their events. The resource's `service.name` is `<name>-service` unless
//!   `OTEL_SERVICE_NAME` says otherwise; `OTEL_BSP_*` tune the batches, `OTEL_TRACES_SAMPLER`
//!   the sampling (parent-based, always on, by default).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, FilterFn, LevelFilter};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// The crates whose spans are exported: the message, publication and request spans.
const TRACED: [&str; 3] = ["messaging", "outbox", "service_kit"];

/// What the subscriber installed; dropping it flushes the spans not yet exported. Keep it
/// until the service has stopped.
#[derive(Debug, Default)]
#[must_use = "dropping it stops the export of spans"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exports_traces(&self) -> bool {
        self.traces.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            messaging::trace::set_exporting(false);
            if let Err(error) = provider.shutdown() {
                eprintln!("exporting the last spans failed: {error}");
            }
        }
    }
}

/// Whether OTLP export is asked for (an endpoint is set).
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The tracer provider exporting `service`'s spans over OTLP/HTTP, as the `OTEL_*` variables
/// configure it.
fn otlp_provider(
    service: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Installs the process's subscriber, writing logs to stderr and, when an OTLP endpoint is
/// set, exporting spans. Call once, first thing in `main`, and keep what it returns.
pub fn init_subscriber(service: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FTGO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_span_events(FmtSpan::NONE)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_span_events(FmtSpan::NONE)
            .with_filter(filter)
            .boxed()
    };
    let mut telemetry = Telemetry::default();
    let mut failure = None;
    let traces = if otlp_configured() {
        match otlp_provider(service) {
            Ok(provider) => {
                let tracer = provider.tracer(service.to_owned());
                telemetry.traces = Some(provider);
                let exported = FilterFn::new(|meta| {
                    if meta.is_span() {
                        *meta.level() <= tracing::Level::INFO
                            && TRACED.iter().any(|krate| {
                                meta.target()
                                    .strip_prefix(krate)
                                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
                            })
                    } else {
                        *meta.level() <= tracing::Level::WARN
                    }
                })
                .with_max_level_hint(LevelFilter::INFO);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(exported),
                )
            }
            Err(error) => {
                failure = Some(error);
                None
            }
        }
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    if installed.is_err() {
        // A subscriber was installed before (a test's): its spans are not ours to export.
        return Telemetry::default();
    }
    messaging::trace::set_exporting(telemetry.exports_traces());
    tracing::info!(
        service,
        traces = telemetry.exports_traces(),
        "logging started"
    );
    if let Some(error) = failure {
        tracing::warn!(%error, "an OTLP endpoint is set, but its exporter could not be made: spans are not exported");
    }
    telemetry
}

/// For tests: logs only when `TEST_LOG` is set (then as `init_subscriber` does), so a failing
/// test can be rerun with its story. Safe to call from every test.
pub fn init_test_subscriber() {
    if std::env::var_os("TEST_LOG").is_some() {
        std::mem::forget(init_subscriber("test"));
    }
}
