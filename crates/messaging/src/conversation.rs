//! The metadata that ties messages into conversations: commands and their replies, and the
//! messages a handler sends because of the one it is handling.
//!
//! - A **command** gets a reply-to topic and a correlation id (a new conversation's id is the
//!   command's own id).
//! - A **reply** goes to the command's reply-to topic, with the command's key (so it lands on
//!   the partition of the same order as everything else about it) and correlation id, and
//!   names the command as its cause.
//! - Anything else a handler sends **follows** the message it handles: same correlation id,
//!   caused by it, same trace.

use crate::message::{Message, Received, header};

/// Why a reply cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error(
        "the command {command_id:?} has no {} header: nobody waits for a reply",
        header::REPLY_TO
    )]
    NoReplyTo { command_id: Option<String> },
}

/// Marks `message` as a command whose reply goes to `reply_to`. It keeps a correlation id it
/// already has (a saga's); otherwise the command starts a conversation of its own.
pub fn command(message: Message, reply_to: &str) -> Message {
    let correlation = message
        .headers
        .get(header::CORRELATION_ID)
        .or(message.id())
        .map(str::to_owned);
    let mut message = message.with_header(header::REPLY_TO, reply_to);
    if let Some(correlation) = correlation {
        message.headers.set(header::CORRELATION_ID, correlation);
    }
    message
}

/// Makes `message` follow `cause`: the same conversation (correlation id), caused by it, in the
/// same trace (a child of the span handling `cause` when the [`Traced`](crate::Traced) layer
/// runs; otherwise the cause's own `traceparent`).
pub fn follow(mut message: Message, cause: &Received) -> Message {
    let traceparent = cause.trace.map(|context| context.to_string()).or_else(|| {
        cause
            .message
            .headers
            .get(header::TRACEPARENT)
            .map(str::to_owned)
    });
    let cause = &cause.message;
    let correlation = cause
        .headers
        .get(header::CORRELATION_ID)
        .or(cause.id())
        .map(str::to_owned);
    if let Some(correlation) = correlation {
        message.headers.set(header::CORRELATION_ID, correlation);
    }
    if let Some(id) = cause.id() {
        message.headers.set(header::CAUSATION_ID, id);
    }
    if let Some(traceparent) = traceparent {
        message.headers.set(header::TRACEPARENT, traceparent);
    }
    message
}

/// The reply to `command` carrying `payload`: the topic it goes to, and the message, keyed
/// like the command and in its conversation.
pub fn reply(command: &Received, payload: Vec<u8>) -> Result<(String, Message), ReplyError> {
    let to = command
        .message
        .headers
        .get(header::REPLY_TO)
        .ok_or_else(|| ReplyError::NoReplyTo {
            command_id: command.message.id().map(str::to_owned),
        })?
        .to_owned();
    let reply = follow(Message::new(command.message.key.clone(), payload), command);
    Ok((to, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::received;

    #[test]
    fn a_new_command_starts_a_conversation_named_after_itself() {
        let message = command(
            Message::new(Some("order-1".into()), vec![]),
            "ftgo.order.replies",
        );
        assert_eq!(
            message.headers.get(header::REPLY_TO),
            Some("ftgo.order.replies")
        );
        assert_eq!(message.headers.get(header::CORRELATION_ID), message.id());
    }

    #[test]
    fn a_command_within_a_conversation_keeps_its_correlation_id() {
        let message = command(
            Message::new(Some("order-1".into()), vec![])
                .with_header(header::CORRELATION_ID, "saga-7"),
            "ftgo.order.replies",
        );
        assert_eq!(message.headers.get(header::CORRELATION_ID), Some("saga-7"));
    }

    #[test]
    fn a_reply_goes_back_with_the_commands_key_and_conversation() {
        let mut incoming = received("order-1", b"CreateTicket");
        incoming.message = command(incoming.message, "ftgo.order.replies").with_header(
            header::TRACEPARENT,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        let (to, reply) = reply(&incoming, b"CreateTicketSucceeded".to_vec()).expect("reply");
        assert_eq!(to, "ftgo.order.replies");
        assert_eq!(reply.key.as_deref(), Some("order-1"));
        assert_ne!(reply.id(), incoming.message.id());
        assert_eq!(
            reply.headers.get(header::CAUSATION_ID),
            incoming.message.id()
        );
        assert_eq!(
            reply.headers.get(header::CORRELATION_ID),
            incoming.message.headers.get(header::CORRELATION_ID)
        );
        assert_eq!(
            reply.headers.get(header::TRACEPARENT),
            incoming.message.headers.get(header::TRACEPARENT)
        );
        assert_eq!(reply.headers.get(header::REPLY_TO), None);
    }

    #[test]
    fn a_one_way_command_has_no_reply() {
        let incoming = received("order-1", b"AcceptTicket");
        let error = reply(&incoming, vec![]).expect_err("no reply-to");
        assert!(matches!(error, ReplyError::NoReplyTo { .. }));
    }
}
