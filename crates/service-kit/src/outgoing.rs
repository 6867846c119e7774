//! What a handler sends: events, commands and replies, encoded in the Confluent wire format
//! and appended to the outbox in the handler's transaction (never produced directly: the relay
//! publishes them once the transaction commits).

use std::sync::Arc;

use contracts::{Codec, Contract, EncodeError};
use messaging::AVRO_CONTENT_TYPE;
use messaging::{HandlerError, Message, Reason, Received, command, follow, header};
use sqlx::PgConnection;

/// Encodes and appends a service's outgoing messages. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outgoing {
    codec: Arc<Codec>,
    /// `ce_source` of everything the service sends (`/ftgo/order-service`).
    source: String,
}

impl Outgoing {
    pub fn new(codec: Arc<Codec>, service: &str) -> Self {
        Self {
            codec,
            source: format!("/ftgo/{service}"),
        }
    }

    pub fn codec(&self) -> &Arc<Codec> {
        &self.codec
    }

    /// `record` as a message with our headers (id, type, source, time, content type), keyed by
    /// its catalog key.
    pub async fn message<T: Contract>(&self, record: &T) -> Result<Message, HandlerError> {
        let bytes = self.codec.encode(record).await.map_err(encode_failure)?;
        Ok(Message::new(Some(record.key()), bytes)
            .with_header(header::TYPE, T::FULL_NAME)
            .with_header(header::SOURCE, self.source.as_str())
            .with_header(header::CONTENT_TYPE, AVRO_CONTENT_TYPE))
    }

    /// Appends an event (or a one-way message) to the outbox, following `cause` (its
    /// conversation and trace) when there is one; otherwise in the trace of the running span.
    pub async fn event<T: Contract>(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        event: &T,
    ) -> Result<(), HandlerError> {
        let message = self.message(event).await?;
        append(tx, T::TOPIC, &follow_or_trace(message, cause)).await
    }

    /// Appends a command whose reply goes to `reply_to`, in the conversation `correlation_id`
    /// (a saga's id), following `cause` when there is one.
    pub async fn command<T: Contract>(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        correlation_id: &str,
        reply_to: &str,
        record: &T,
    ) -> Result<(), HandlerError> {
        let message = self.message(record).await?;
        let mut message = follow_or_trace(message, cause);
        message
            .headers
            .set(header::CORRELATION_ID, correlation_id.to_owned());
        append(tx, T::TOPIC, &command(message, reply_to)).await
    }

    /// Appends the reply to `command`: to its reply-to topic, keyed and correlated like it. A
    /// command without a reply-to cannot be answered: permanent (`no-reply-to`); nor can one
    /// whose reply-to is not the reply's channel in the catalog (`invalid-reply-to`): a reply
    /// to a topic that does not exist would stall the outbox relay (the broker creates no
    /// topics), and one to another topic would carry a schema registered for this one.
    pub async fn reply<T: Contract>(
        &self,
        tx: &mut PgConnection,
        command: &Received,
        reply: &T,
    ) -> Result<(), HandlerError> {
        // The reply-to is checked before the reply is encoded: a command that cannot be
        // answered costs no registry lookup.
        let asked = command.message.headers.get(header::REPLY_TO);
        if let Some(asked) = asked.filter(|asked| *asked != T::TOPIC) {
            return Err(HandlerError::permanent(
                Reason::InvalidReplyTo,
                InvalidReplyTo {
                    asked: asked.to_owned(),
                    channel: T::TOPIC,
                },
            ));
        }
        let bytes = self.codec.encode(reply).await.map_err(encode_failure)?;
        let (topic, message) = messaging::reply(command, bytes)
            .map_err(|error| HandlerError::permanent(Reason::NoReplyTo, error))?;
        let message = message
            .with_header(header::TYPE, T::FULL_NAME)
            .with_header(header::SOURCE, self.source.as_str())
            .with_header(header::CONTENT_TYPE, AVRO_CONTENT_TYPE);
        append(tx, &topic, &message).await
    }
}

/// `message` following `cause`, or, without one (a REST request's work), in the trace of the
/// span the work runs in ([`messaging::trace::current`]).
fn follow_or_trace(message: Message, cause: Option<&Received>) -> Message {
    match cause {
        Some(cause) => follow(message, cause),
        None => match messaging::trace::current() {
            Some(context) => message.with_header(header::TRACEPARENT, context.to_string()),
            None => message,
        },
    }
}

/// A command asked for its reply on a topic that is not the reply's channel.
#[derive(Debug, thiserror::Error)]
#[error("the command asks for its reply on {asked}, but {channel} is the reply's channel")]
pub struct InvalidReplyTo {
    pub asked: String,
    pub channel: &'static str,
}

async fn append(tx: &mut PgConnection, topic: &str, message: &Message) -> Result<(), HandlerError> {
    outbox::append(tx, topic, message)
        .await
        .map_err(HandlerError::transient)
}

/// An unreachable registry, a schema the deployment step has not registered yet, or a refused
/// principal is worth retrying (the message waits until an operator mends it); a record that
/// does not encode is a bug.
fn encode_failure(error: EncodeError) -> HandlerError {
    match error {
        EncodeError::Registry { .. }
        | EncodeError::NotRegistered { .. }
        | EncodeError::Refused { .. } => HandlerError::transient(error),
        other => HandlerError::permanent(Reason::HandlerFailed, other),
    }
}
