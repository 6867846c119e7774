//! The [`Traced`] layer: a tracing span per handled message, a child of the sender's span
//! when the message carries a `traceparent` ([`crate::trace`]).

use std::time::Instant;

use tracing::Instrument as _;

use crate::handler::{Handler, HandlerError};
use crate::message::{Received, header};
use crate::trace::TraceContext;

/// Handles each message in a span of its own (`handle`), a child of the sender's span when
/// the message carries a `traceparent`, and gives the handler that span's context in
/// [`Received::trace`]. The span records the message's type, id, key, origin, correlation id,
/// and its trace, span and parent span ids; the outcome and time taken are logged in it.
#[derive(Debug, Clone)]
pub struct Traced<H> {
    inner: H,
}

impl<H> Traced<H> {
    pub fn new(inner: H) -> Self {
        Self { inner }
    }
}

impl<H: Handler> Handler for Traced<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let headers = &message.message.headers;
        let parent = headers
            .get(header::TRACEPARENT)
            .and_then(TraceContext::parse);
        let context = parent.map_or_else(TraceContext::new_root, |parent| parent.child());
        let origin = &message.origin;
        let span = tracing::info_span!(
            "handle",
            message.r#type = headers.get(header::TYPE).unwrap_or("-"),
            message.id = headers.get(header::ID).unwrap_or("-"),
            message.key = message.message.key.as_deref().unwrap_or("-"),
            topic = %origin.topic,
            partition = origin.partition,
            offset = origin.offset,
            correlation_id = headers.get(header::CORRELATION_ID).unwrap_or("-"),
            trace_id = %context.trace_id_hex(),
            span_id = %context.span_id_hex(),
            parent_span_id = %parent.map_or_else(String::new, |p| p.span_id_hex()),
        );
        let mut traced = message.clone();
        traced.trace = Some(context);
        let started = Instant::now();
        let result = self.inner.handle(&traced).instrument(span.clone()).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        span.in_scope(|| match &result {
            Ok(()) => tracing::debug!(elapsed_ms, "handled"),
            Err(error) => {
                tracing::warn!(elapsed_ms, %error, reason = error.reason().as_str(), "handling failed")
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::handler::handler_fn;
    use crate::testing::received;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    async fn handling_context(message: Received) -> TraceContext {
        let seen = Arc::new(Mutex::new(None));
        let handler = Traced::new(handler_fn({
            let seen = seen.clone();
            move |received: Received| {
                *seen.lock().expect("lock") = received.trace;
                async { Ok(()) }
            }
        }));
        handler.handle(&message).await.expect("handled");
        seen.lock().expect("lock").expect("a trace context")
    }

    #[tokio::test]
    async fn the_handler_runs_in_a_child_of_the_senders_span() {
        let mut message = received("order-1", b"x");
        message.message.headers.set(header::TRACEPARENT, VALID);
        let context = handling_context(message).await;
        let sender = TraceContext::parse(VALID).expect("valid");
        assert_eq!(context.trace_id, sender.trace_id);
        assert_ne!(context.span_id, sender.span_id);
    }

    #[tokio::test]
    async fn a_message_without_a_valid_traceparent_starts_a_trace() {
        let mut message = received("order-1", b"x");
        message.message.headers.set(header::TRACEPARENT, "garbage");
        let context = handling_context(message).await;
        assert_ne!(context.trace_id, [0; 16]);
    }
}
