//! The [`Traced`] layer: a tracing span per handled message, a child of the sender's span
//! when the message carries a `traceparent` ([`crate::trace`]).

use std::time::Instant;

use tracing::Instrument as _;

use crate::handler::{Handler, HandlerError};
use crate::message::{Received, header};
use crate::trace::TraceContext;

/// Handles each message in a span of its own (`handle`), a child of the sender's span when
/// the message carries a `traceparent`, and gives the handler that span's context in
/// [`Received::trace`]. The span follows OpenTelemetry's messaging conventions (a consumer
/// span `process <topic>` with `messaging.*` attributes: topic, group, partition, offset, key,
/// message id, conversation id) and records the message's type and the trace, span and parent
/// span ids; the outcome and time taken are logged in it, and a failure marks it an error.
#[derive(Debug, Clone)]
pub struct Traced<H> {
    inner: H,
    group: Option<String>,
}

impl<H> Traced<H> {
    pub fn new(inner: H) -> Self {
        Self { inner, group: None }
    }

    /// Names the consumer group the messages are handled for (`messaging.consumer.group.name`).
    pub fn in_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }
}

impl<H: Handler> Handler for Traced<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let headers = &message.message.headers;
        let parent = headers
            .get(header::TRACEPARENT)
            .and_then(TraceContext::parse);
        let origin = &message.origin;
        let span = tracing::info_span!(
            "handle",
            otel.name = %format_args!("process {}", origin.topic),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = %origin.topic,
            messaging.consumer.group.name = self.group.as_deref().unwrap_or("-"),
            messaging.destination.partition.id = origin.partition,
            messaging.kafka.offset = origin.offset,
            messaging.kafka.message.key = message.message.key.as_deref().unwrap_or("-"),
            messaging.message.id = headers.get(header::ID).unwrap_or("-"),
            messaging.message.conversation_id = headers.get(header::CORRELATION_ID).unwrap_or("-"),
            cloudevents.event_type = headers.get(header::TYPE).unwrap_or("-"),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let context = crate::trace::join(&span, parent);
        let mut traced = message.clone();
        traced.trace = Some(context);
        let started = Instant::now();
        let result = self.inner.handle(&traced).instrument(span.clone()).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
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
