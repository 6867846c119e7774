//! W3C trace context (`traceparent`), so one trace follows a message from service to service;
//! the [`Traced`](crate::Traced) layer (`traced.rs`) opens a span per handled message, joined
//! to the sender's.
//!
//! A `traceparent` is `00-<trace id: 32 hex>-<parent span id: 16 hex>-<flags: 2 hex>`. The
//! layer reads it from the message, opens a span for the handling with a new span id in the
//! same trace, and hands the handler the span's context ([`Received::trace`]); whatever the
//! handler sends because of the message ([`crate::follow`], [`crate::reply`]) carries that
//! context as its own `traceparent`, so the next service's span is this one's child. A message
//! without a valid `traceparent` starts a new trace.
//!
//! Spans carry `trace_id`, `span_id` and `parent_span_id` as fields, so the logs of every
//! service can be joined by trace id. When the service kit exports spans over OTLP
//! ([`set_exporting`]), [`join`] makes the exported span the one whose ids travel: its parent
//! is the sender's span and its own ids are the ones the next `traceparent` carries.
//!
//! Work that starts outside a message (a REST request) runs [`within`] its span's context, and
//! what it sends takes [`current`] as its `traceparent`.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A position in a trace: the trace, the span, and whether the trace is sampled.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            u8::from(self.sampled)
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

impl TraceContext {
    /// Parses a `traceparent` value. Version `00` must be exactly four fields; a later version
    /// may append fields, which are ignored (as the W3C spec asks). Invalid values (wrong
    /// lengths, upper-case hex, all-zero ids, version `ff`) give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let version = unhex::<1>(fields.next()?)?[0];
        let trace_id = unhex::<16>(fields.next()?)?;
        let span_id = unhex::<8>(fields.next()?)?;
        let flags = unhex::<1>(fields.next()?)?[0];
        let extra = fields.next().is_some();
        if version == 0xff || (version == 0 && extra) {
            return None;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The start of a new trace.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        while trace_id == [0; 16] {
            trace_id = rand::random();
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            sampled: true,
        }
    }

    /// A new span in the same trace, whose parent is this one.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// Whether spans are exported (an OpenTelemetry layer is installed): only then are spans
/// opened for work that logs nothing of its own (the relay's publications).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Says spans are exported from now on; the service kit's subscriber calls it when it
/// installs an OTLP exporter.
pub fn set_exporting(exporting: bool) {
    EXPORTING.store(exporting, Ordering::Relaxed);
}

pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Makes `span` part of the trace that `parent` (the sender's span, in another process)
/// belongs to, or of a new trace, and gives its context: the one to send on as `traceparent`.
///
/// When the span is exported it is the OpenTelemetry span's own context (the exporter chose
/// its span id, and its parent is `parent`); otherwise a new span id in `parent`'s trace. The
/// span's `trace_id`, `span_id` and `parent_span_id` fields are recorded either way.
pub fn join(span: &tracing::Span, parent: Option<TraceContext>) -> TraceContext {
    let exported = exporting()
        .then(|| {
            if let Some(parent) = parent {
                let remote = opentelemetry::Context::new().with_remote_span_context(parent.into());
                // Fails only when the span is not exported (filtered out): handled below.
                let _ = span.set_parent(remote);
            }
            TraceContext::from_otel(span.context().span().span_context())
        })
        .flatten();
    let context = exported
        .unwrap_or_else(|| parent.map_or_else(TraceContext::new_root, |parent| parent.child()));
    span.record("trace_id", context.trace_id_hex());
    span.record("span_id", context.span_id_hex());
    if let Some(parent) = parent {
        span.record("parent_span_id", parent.span_id_hex());
    }
    context
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `work` in the span whose context is `context`: what it sends without a message to
/// follow ([`current`]) continues that span's trace.
pub async fn within<F: Future>(context: TraceContext, work: F) -> F::Output {
    CURRENT.scope(context, work).await
}

/// The context [`within`] gave the running task, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

impl TraceContext {
    fn from_otel(context: &SpanContext) -> Option<Self> {
        context.is_valid().then(|| Self {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        })
    }
}

impl From<TraceContext> for SpanContext {
    fn from(context: TraceContext) -> Self {
        let flags = if context.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from_bytes(context.trace_id),
            SpanId::from_bytes(context.span_id),
            flags,
            true,
            TraceState::default(),
        )
    }
}

fn new_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    while id == [0; 8] {
        id = rand::random();
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_parses_and_prints_back() {
        let context = TraceContext::parse(VALID).expect("valid");
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id_hex(), "00f067aa0ba902b7");
        assert!(context.sampled);
        assert_eq!(context.to_string(), VALID);
        let unsampled = TraceContext::parse(&VALID.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled);
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_span_of_its_own() {
        let parent = TraceContext::parse(VALID).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_ne!(
            TraceContext::new_root().trace_id,
            TraceContext::new_root().trace_id
        );
    }
}
