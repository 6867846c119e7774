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

#[derive(Debug, thiserror::Error)]
#[error("publishing to {topic} failed: {detail}")]
pub struct PublishError {
    pub topic: String,
    pub detail: String,
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

impl<P: Publisher> Publisher for std::sync::Arc<P> {
    fn publish(
        &self,
        topic: &str,
        message: &Message,
    ) -> impl Future<Output = Result<Delivery, PublishError>> + Send {
        (**self).publish(topic, message)
    }
}
