//! The transport-agnostic core of FTGO's messaging.
//!
//! # Layout
//! - [`message`]: [`Message`] (key, headers, payload), [`Headers`], the header names
//!   ([`header`]: CloudEvents Kafka binding, correlation, causation, reply-to, traceparent,
//!   dead-letter headers), and [`Received`] (a message with its topic, partition and offset).
//! - [`conversation`]: commands with a reply-to and correlation id, replies keyed and
//!   correlated like their command, messages that follow the one being handled (causation,
//!   trace).
//! - [`handler`]: the [`Handler`] trait (at-least-once delivery) and [`HandlerError`]
//!   (transient, permanent, retries exhausted).
//! - [`retry`]: the [`Retry`] layer: transient failures retried in place with exponential
//!   backoff and full jitter, bounded by a [`RetryPolicy`].
//! - [`decode`]: the [`Decode`] layer: required headers checked, the payload decoded by a
//!   [`Decoder`], the value handed to a [`DecodedHandler`]; failures are permanent with a reason.
//! - [`dead_letter`]: the [`DeadLetter`] layer: what can never succeed goes to the group's
//!   dead-letter topic with its reason and origin, and the consumer moves on.
//! - [`saga`]: [`SagaDefinition`], a saga as a pure state machine over replies and deadlines
//!   ([`Transition`]s); the outbox crate's manager stores and advances it.
//! - [`publisher`]: the [`Publisher`] trait (at least once, per-key order).
//! - [`trace`]: W3C [`TraceContext`]; [`traced`]: the [`Traced`] layer, a span per handled
//!   message, joined to the sender's through `traceparent`.
//! - `memory` (feature `testing`): `MemoryBroker`, an in-memory transport for fast unit tests.
//! - `conformance` (feature `testing`): the suite every transport passes
//!   (`conformance_tests!`).
//!
//! Layers nest like this (outermost first): `Traced(DeadLetter(Retry(Decode(handler))))`.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod conversation;
mod dead_letter;
mod decode;
mod handler;
#[cfg(any(test, feature = "testing"))]
mod memory;
mod message;
mod publisher;
mod reason;
mod retry;
mod saga;
pub mod trace;
mod traced;

pub use conversation::{ReplyError, command, follow, reply};
pub use dead_letter::{DeadLetter, DeadLetterSettings, dead_letter};
pub use decode::{Decode, DecodedHandler, Decoder, MissingHeader, REQUIRED_HEADERS, decoded_fn};
pub use handler::{BoxError, Handler, HandlerError, Unavailable, handler_fn};
#[cfg(any(test, feature = "testing"))]
pub use memory::{MemoryBroker, MemorySubscription};
pub use message::{AVRO_CONTENT_TYPE, Headers, Message, Origin, Received, header};
pub use publisher::{Delivery, PublishError, PublishErrorKind, Publisher, TransactionalPublisher};
pub use reason::Reason;
pub use retry::{OutageReporter, Retry, RetryPolicy};
pub use saga::{Next, SagaDefinition, SagaOutcome, Transition};
pub use trace::TraceContext;
pub use traced::Traced;

#[cfg(test)]
pub(crate) mod testing {
    use crate::message::{Message, Origin, Received, header};

    /// A received message on `ftgo.order.commands`, partition 3, offset 42.
    pub fn received(key: &str, payload: &[u8]) -> Received {
        Received {
            message: Message::new(Some(key.to_owned()), payload.to_vec())
                .with_header(header::TYPE, "ftgo.order.commands.CreateOrder"),
            origin: Origin {
                topic: "ftgo.order.commands".to_owned(),
                partition: 3,
                offset: 42,
                timestamp_ms: Some(1_790_000_000_000),
            },
            trace: None,
        }
    }
}
