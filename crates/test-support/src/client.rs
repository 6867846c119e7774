//! Talking to services as their clients and peers do: records encoded with the catalog's codec,
//! headers as every producer of the project sets them, published with the project's producer;
//! and reading back, by key, what the services sent.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use contracts::{Channel, Codec, Contract};
use kafka::KafkaPublisher;
use messaging::AVRO_CONTENT_TYPE;
use messaging::{Message, Publisher, Received, header};

use crate::Platform;
use crate::platform::TESTS_STARTED;

pub use contracts::now_ms;

/// How long the waiting helpers wait.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Encodes and publishes records like an outside client or a peer service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    pub codec: Arc<Codec>,
    publisher: KafkaPublisher,
}

impl Client {
    /// A client of the local platform; `name` is its Kafka client id.
    pub fn new(name: &str) -> Result<Self> {
        let platform = Platform::from_env();
        Ok(Self {
            codec: Arc::new(Codec::for_catalog(&platform.registry()?)?),
            publisher: KafkaPublisher::new(&platform.bootstrap_servers, name)?,
        })
    }

    /// `record` as a message with a fresh `ce_id`, its type, source and content type, keyed by
    /// its catalog key.
    pub async fn message<T: Contract>(&self, record: &T) -> Result<Message> {
        Ok(
            Message::new(Some(record.key()), self.codec.encode(record).await?)
                .with_header(header::TYPE, T::FULL_NAME)
                .with_header(header::SOURCE, "/ftgo/tests")
                .with_header(header::CONTENT_TYPE, AVRO_CONTENT_TYPE),
        )
    }

    /// `record` as a saga's command: its reply goes to `reply_to`, in conversation `saga`.
    pub async fn saga_command<T: Contract>(
        &self,
        record: &T,
        saga: &str,
        reply_to: &str,
    ) -> Result<Message> {
        let message = self
            .message(record)
            .await?
            .with_header(header::CORRELATION_ID, saga);
        Ok(messaging::command(message, reply_to))
    }

    /// Publishes `message` to `topic` and waits for the broker's acknowledgement.
    pub async fn publish(&self, topic: &str, message: &Message) -> Result<()> {
        self.publisher.publish(topic, message).await?;
        Ok(())
    }

    /// A record of channel `C` (`Reply`, `Event`, ...) from what a service sent.
    pub async fn decode<C: Channel>(&self, record: &Received) -> Result<C> {
        let decoded = self
            .codec
            .decode_value(C::TOPIC, &record.message.payload)
            .await?;
        Ok(C::from_decoded(decoded)?)
    }

    /// Publishes `record` to its topic; returns the message sent.
    pub async fn send<T: Contract>(&self, record: &T) -> Result<Message> {
        let message = self.message(record).await?;
        self.publish(T::TOPIC, &message).await?;
        Ok(message)
    }
}

/// How long before [`TESTS_STARTED`] `records_of` still reads: clocks and timestamps are one
/// machine's, so this is only a margin.
const RECORDS_MARGIN: Duration = Duration::from_secs(60);

/// The records of `topic` keyed `key` written since this test process started (a minute's
/// margin), waiting (up to [`PATIENCE`]) until there are at least `count`. Earlier runs'
/// records are not read: a local topic holds hundreds of thousands after a few benchmarks.
pub async fn records_of(topic: &str, key: &str, count: usize) -> Result<Vec<Received>> {
    let since = *TESTS_STARTED - RECORDS_MARGIN;
    eventually(&format!("{count} records of {key} on {topic}"), || {
        let (key, topic) = (key.to_owned(), topic.to_owned());
        async move {
            let bootstrap = Platform::from_env().bootstrap_servers;
            // The reader blocks; a service under test may share this runtime.
            let records: Vec<Received> = tokio::task::spawn_blocking(move || {
                kafka::read_topic_since(&bootstrap, &topic, since, Duration::from_secs(30))
            })
            .await??
            .into_iter()
            .filter(|r| r.message.key.as_deref() == Some(key.as_str()))
            .collect();
            Ok((records.len() >= count).then_some(records))
        }
    })
    .await
}

/// What `check` finds, asked again every 200 ms until it finds something (up to
/// [`PATIENCE`]).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("gave up waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `check` says yes (up to [`PATIENCE`]).
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    eventually(what, || {
        let asked = check();
        async move { Ok(asked.await?.then_some(())) }
    })
    .await
}

/// Time for anything still on its way to arrive, before a test counts what must not be there.
pub async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}
