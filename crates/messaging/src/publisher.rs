//! Sending messages to a topic.

use std::future::Future;

use crate::message::Message;

/// Where a published message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Why a publication failed, and so what its caller should do.
#[derive(Debug, thiserror::Error)]
#[error("publishing to {topic} failed ({}): {detail}", kind.as_str())]
pub struct PublishError {
    pub topic: String,
    pub detail: String,
    pub kind: PublishErrorKind,
}

/// What a failure means for the record that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishErrorKind {
    /// May succeed later: the broker was unreachable or busy, a leader moved, a timeout.
    Transient,
    /// This record can never be published as it is: its topic does not exist, it is larger
    /// than the broker accepts, the broker refuses its value. Retrying it changes nothing;
    /// it must be moved aside until someone mends the cause.
    Permanent,
    /// Another publisher took over this one's transactional identity (a newer relay leader):
    /// this one must stop, and what it sent in its open transaction is never visible.
    Fenced,
}

impl PublishErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishErrorKind::Transient => "transient",
            PublishErrorKind::Permanent => "permanent",
            PublishErrorKind::Fenced => "fenced",
        }
    }
}

impl PublishError {
    pub fn transient(topic: &str, detail: impl Into<String>) -> Self {
        Self::of(PublishErrorKind::Transient, topic, detail)
    }

    pub fn permanent(topic: &str, detail: impl Into<String>) -> Self {
        Self::of(PublishErrorKind::Permanent, topic, detail)
    }

    pub fn of(kind: PublishErrorKind, topic: &str, detail: impl Into<String>) -> Self {
        Self {
            topic: topic.to_owned(),
            detail: detail.into(),
            kind,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.kind == PublishErrorKind::Permanent
    }

    pub fn is_fenced(&self) -> bool {
        self.kind == PublishErrorKind::Fenced
    }
}

/// Sends messages to topics, keyed by `message.key`.
///
/// **At least once**: `Ok` means the transport has the message durably (Kafka: acknowledged by
/// all in-sync replicas); after an error it may or may not have been written, so a caller that
/// retries may write it twice, and consumers deduplicate by message id. Messages published one
/// after the other with the same key keep their order.
///
/// Handlers never publish directly: they write to the outbox, whose relay is the publisher.
/// The dead-letter layer is the exception: a dead letter has no business effect to commit with.
pub trait Publisher: Send + Sync {
    fn publish(
        &self,
        topic: &str,
        message: &Message,
    ) -> impl Future<Output = Result<Delivery, PublishError>> + Send;
}

/// A publisher whose records become visible to readers a group at a time: all records sent
/// between [`begin`](Self::begin) and a successful [`commit`](Self::commit), or none of them
/// (Kafka transactions; consumers read committed records only). A relay publishes a whole
/// batch at once and still never shows a later record of a key whose earlier record failed:
/// after any failure it aborts, and the batch is invisible.
///
/// One transaction at a time per publisher. A second publisher with the same transactional
/// identity fences the first ([`PublishErrorKind::Fenced`]), whose open transaction is then
/// aborted: a relay leader that lost its leadership while paused cannot publish afterwards.
pub trait TransactionalPublisher: Publisher {
    /// Checks a record before it is sent, without sending it: a permanent error if it can
    /// never be published (its topic does not exist, it is too large), a transient one if that
    /// cannot be told now.
    fn check(
        &self,
        topic: &str,
        message: &Message,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// Opens a transaction (and first registers the publisher's identity, fencing older ones).
    fn begin(&self) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// Makes what was sent since `begin` visible, atomically. After an error, call `abort`.
    fn commit(&self) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// Drops what was sent since `begin`: readers never see it.
    fn abort(&self) -> impl Future<Output = Result<(), PublishError>> + Send;
}

impl<P: Publisher> Publisher for std::sync::Arc<P> {
    fn publish(
        &self,
        topic: &str,
        message: &Message,
    ) -> impl Future<Output = Result<Delivery, PublishError>> + Send {
        (**self).publish(topic, message)
    }
}
