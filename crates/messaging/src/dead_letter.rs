//! Sending what can never be handled to the consuming group's dead-letter topic, so the
//! consumer can move on and nothing is dropped.
//!
//! The dead letter keeps the original key, headers and payload bytes untouched (so it can be
//! replayed as it was), and adds headers that say why and where from (`ftgo_dlt_*`, see
//! [`header::dead_letter`]).

use std::time::{Duration, SystemTime};

use crate::handler::{Handler, HandlerError};
use crate::message::{Message, Received, header, rfc3339};
use crate::publisher::Publisher;

/// Where a group's dead letters go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSettings {
    /// The dead-letter topic, `ftgo.<group>.dlt` by convention (declared in deploy/topics.toml).
    pub topic: String,
    /// The consumer group, recorded in each dead letter.
    pub group: String,
    /// The longest wait between tries to publish a dead letter while the broker refuses.
    pub max_republish_backoff: Duration,
}

impl DeadLetterSettings {
    pub fn new(group: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            group: group.into(),
            max_republish_backoff: Duration::from_secs(5),
        }
    }
}

/// The dead letter for `received`, which failed with `error` in `group`.
pub fn dead_letter(received: &Received, error: &HandlerError, group: &str) -> Message {
    use header::dead_letter as dlt;
    let attempts = match error {
        HandlerError::RetriesExhausted { attempts, .. } => *attempts,
        _ => 1,
    };
    let origin = &received.origin;
    let mut letter = received.message.clone();
    let headers = &mut letter.headers;
    headers.set(dlt::REASON, error.reason().as_str());
    headers.set(dlt::ERROR, error.to_string());
    headers.set(dlt::TOPIC, origin.topic.clone());
    headers.set(dlt::PARTITION, origin.partition.to_string());
    headers.set(dlt::OFFSET, origin.offset.to_string());
    headers.set(dlt::GROUP, group);
    headers.set(dlt::ATTEMPTS, attempts.to_string());
    headers.set(dlt::FAILED_AT, rfc3339(SystemTime::now()));
    if let Some(timestamp) = origin.timestamp_ms {
        headers.set(dlt::ORIGINAL_TIMESTAMP, timestamp.to_string());
    }
    letter
}

/// Dead-letters the inner handler's permanent failures and exhausted retries, then reports the
/// message as handled so its offset is committed. Transient failures pass through: they are
/// the retry layer's (put `Retry` inside this layer).
///
/// Publishing the dead letter is retried until the broker takes it: the message is never
/// dropped, and until then its partition waits. Cancelling the returned future (shutdown,
/// rebalance) leaves the offset uncommitted, so the message comes back.
#[derive(Debug, Clone)]
pub struct DeadLetter<H, P> {
    inner: H,
    publisher: P,
    settings: DeadLetterSettings,
}

impl<H, P> DeadLetter<H, P> {
    pub fn new(inner: H, publisher: P, settings: DeadLetterSettings) -> Self {
        Self {
            inner,
            publisher,
            settings,
        }
    }
}

impl<H: Handler, P: Publisher> Handler for DeadLetter<H, P> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let error = match self.inner.handle(message).await {
            Ok(()) => return Ok(()),
            Err(transient @ HandlerError::Transient(_)) => return Err(transient),
            Err(error) => error,
        };
        let letter = dead_letter(message, &error, &self.settings.group);
        let mut wait = Duration::from_millis(50);
        loop {
            match self.publisher.publish(&self.settings.topic, &letter).await {
                Ok(delivery) => {
                    tracing::error!(
                        reason = error.reason().as_str(),
                        error = %error,
                        topic = %message.origin.topic,
                        partition = message.origin.partition,
                        offset = message.origin.offset,
                        dead_letter_topic = %delivery.topic,
                        dead_letter_offset = delivery.offset,
                        "message dead-lettered"
                    );
                    return Ok(());
                }
                Err(publish_error) => {
                    tracing::warn!(error = %publish_error, wait_ms = wait.as_millis() as u64,
                        "could not publish a dead letter; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.settings.max_republish_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::handler::handler_fn;
    use crate::memory::MemoryBroker;
    use crate::retry::{Retry, RetryPolicy};
    use crate::testing::received;

    fn settings() -> DeadLetterSettings {
        DeadLetterSettings::new("order-service", "ftgo.order-service.dlt")
    }

    #[tokio::test]
    async fn a_permanent_failure_becomes_a_dead_letter_with_its_reason_and_origin() {
        let broker = MemoryBroker::new();
        broker.create_topic("ftgo.order-service.dlt", 1);
        let handler = DeadLetter::new(
            handler_fn(|_| async {
                Err(HandlerError::permanent(
                    crate::Reason::InvalidContent,
                    "truncated body",
                ))
            }),
            broker.clone(),
            settings(),
        );
        let original = received("order-1", b"\x00\x00\x00\x00\x07garbage");
        handler
            .handle(&original)
            .await
            .expect("handled by dead-lettering");

        let letters = broker.records("ftgo.order-service.dlt");
        assert_eq!(letters.len(), 1);
        let letter = &letters[0].message;
        assert_eq!(letter.key.as_deref(), Some("order-1"));
        assert_eq!(letter.payload, original.message.payload);
        assert_eq!(letter.id(), original.message.id());
        let h = |name| letter.headers.get(name);
        assert_eq!(h(header::dead_letter::REASON), Some("invalid-content"));
        assert!(h(header::dead_letter::ERROR).is_some_and(|e| e.contains("truncated body")));
        assert_eq!(h(header::dead_letter::TOPIC), Some("ftgo.order.commands"));
        assert_eq!(h(header::dead_letter::PARTITION), Some("3"));
        assert_eq!(h(header::dead_letter::OFFSET), Some("42"));
        assert_eq!(h(header::dead_letter::GROUP), Some("order-service"));
        assert_eq!(h(header::dead_letter::ATTEMPTS), Some("1"));
        assert_eq!(
            h(header::dead_letter::ORIGINAL_TIMESTAMP),
            Some("1790000000000")
        );
        assert!(h(header::dead_letter::FAILED_AT).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_are_dead_lettered_with_the_attempt_count() {
        let broker = MemoryBroker::new();
        broker.create_topic("ftgo.order-service.dlt", 1);
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let handler = DeadLetter::new(
            Retry::new(
                handler_fn(|_| async { Err(HandlerError::transient("db down")) }),
                policy,
            ),
            broker.clone(),
            settings(),
        );
        handler
            .handle(&received("order-2", b"x"))
            .await
            .expect("dead-lettered");
        let letters = broker.records("ftgo.order-service.dlt");
        let h = |name| letters[0].message.headers.get(name).map(str::to_owned);
        assert_eq!(
            h(header::dead_letter::REASON).as_deref(),
            Some("retries-exhausted")
        );
        assert_eq!(h(header::dead_letter::ATTEMPTS).as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn success_and_transient_failures_publish_nothing() {
        let broker = MemoryBroker::new();
        broker.create_topic("ftgo.order-service.dlt", 1);
        let ok = DeadLetter::new(handler_fn(|_| async { Ok(()) }), broker.clone(), settings());
        ok.handle(&received("k", b"x")).await.expect("ok");
        let transient = DeadLetter::new(
            handler_fn(|_| async { Err(HandlerError::transient("later")) }),
            broker.clone(),
            settings(),
        );
        let error = transient
            .handle(&received("k", b"x"))
            .await
            .expect_err("passes through");
        assert!(matches!(error, HandlerError::Transient(_)));
        assert!(broker.records("ftgo.order-service.dlt").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_letter_waits_for_its_topic_rather_than_being_dropped() {
        let broker = MemoryBroker::new();
        let handler = Arc::new(DeadLetter::new(
            handler_fn(|_| async {
                Err(HandlerError::permanent(crate::Reason::HandlerFailed, "bug"))
            }),
            broker.clone(),
            settings(),
        ));
        // The dead-letter topic does not exist yet: publishing fails, and the layer keeps trying.
        let task = tokio::spawn({
            let handler = handler.clone();
            async move { handler.handle(&received("k", b"x")).await }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!task.is_finished());
        broker.create_topic("ftgo.order-service.dlt", 1);
        task.await
            .expect("task")
            .expect("dead-lettered once the topic exists");
        assert_eq!(broker.records("ftgo.order-service.dlt").len(), 1);
    }
}
