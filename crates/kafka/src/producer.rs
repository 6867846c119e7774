//! The producer: idempotent, keyed, acknowledged by all in-sync replicas; and, for relays, the
//! same producer with Kafka transactions ([`KafkaPublisher::transactional`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging::{
    Delivery, Message, PublishError, PublishErrorKind, Publisher, TransactionalPublisher,
};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaError;

/// How long a publish may wait for the broker's acknowledgement (librdkafka's
/// `message.timeout.ms` bounds the retries inside; this bounds the local queue).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest record (key, value and headers) the producer sends: librdkafka's default
/// `message.max.bytes`, set explicitly so that it is one figure, below the broker's default
/// `max.message.bytes` (1,048,588). The outbox refuses larger messages when they are appended.
pub const MAX_MESSAGE_BYTES: usize = 1_000_000;

/// How long a transactional producer may keep a transaction open before the broker aborts it,
/// and so how long a relay that froze mid-batch can hold back read-committed consumers of the
/// partitions it wrote to (a new leader's producer aborts it at once).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(15);
/// A transactional record's delivery timeout: below the transaction's.
const TRANSACTIONAL_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the transaction calls (init, commit, abort) may block.
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a topic's existence check may wait for the broker's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes messages to Kafka: `enable.idempotence=true` and `acks=all`, so a retry inside
/// the client neither duplicates nor reorders a partition's records, and `Ok` means every
/// in-sync replica has the record. Messages with the same key go to the same partition (the
/// default murmur2 partitioner, as Java clients use) in the order they were published.
///
/// Made by [`KafkaPublisher::transactional`] it is also a [`TransactionalPublisher`]: what it
/// sends becomes visible to read-committed consumers (librdkafka's default, and ours) only when
/// its transaction commits.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    /// Whether `begin` must first register the transactional id (once per producer).
    transactions: Option<Arc<TransactionState>>,
    /// Topics seen to exist, so that `check` asks the broker once per topic.
    known_topics: Arc<Mutex<HashSet<String>>>,
}

#[derive(Default)]
struct TransactionState {
    initialized: Mutex<bool>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("transactional", &self.transactions.is_some())
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    pub fn new(bootstrap_servers: &str, client_id: &str) -> Result<Self, KafkaError> {
        Self::create(base_config(bootstrap_servers, client_id)?, None)
    }

    /// A producer with Kafka transactions under `transactional_id`: one per relay leader (the
    /// id is the service's, so a new leader fences the one before it). Use it through
    /// [`TransactionalPublisher`]: every publish must be inside `begin` and `commit`.
    pub fn transactional(
        bootstrap_servers: &str,
        client_id: &str,
        transactional_id: &str,
    ) -> Result<Self, KafkaError> {
        let mut config = base_config(bootstrap_servers, client_id)?;
        config
            .set("transactional.id", transactional_id)
            .set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            )
            .set(
                "message.timeout.ms",
                TRANSACTIONAL_MESSAGE_TIMEOUT.as_millis().to_string(),
            );
        Self::create(config, Some(Arc::default()))
    }

    fn create(
        config: ClientConfig,
        transactions: Option<Arc<TransactionState>>,
    ) -> Result<Self, KafkaError> {
        let producer = config.create().map_err(|source| KafkaError::Client {
            what: "creating the producer",
            source,
        })?;
        Ok(Self {
            producer,
            transactions,
            known_topics: Arc::default(),
        })
    }

    /// Runs a blocking transaction call of librdkafka's off the async threads.
    async fn blocking(
        &self,
        what: &'static str,
        call: impl FnOnce(&FutureProducer) -> Result<(), RdKafkaError> + Send + 'static,
    ) -> Result<(), PublishError> {
        let producer = self.producer.clone();
        match tokio::task::spawn_blocking(move || call(&producer)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(PublishError::of(
                transaction_error_kind(&error),
                "",
                format!("{what}: {error}"),
            )),
            Err(join) => Err(PublishError::transient("", format!("{what}: {join}"))),
        }
    }
}

fn base_config(bootstrap_servers: &str, client_id: &str) -> Result<ClientConfig, KafkaError> {
    let mut config = crate::client_config(bootstrap_servers)?;
    config
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // murmur2_random: the Java client's partitioner, so a key lands on the same
        // partition whichever language produced it.
        .set("partitioner", "murmur2_random")
        // A millisecond to gather a batch: relays hand over whole batches at once anyway,
        // and a saga's next step should not wait longer.
        .set("linger.ms", "1")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "30000")
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string());
    Ok(config)
}

/// The size librdkafka holds against `message.max.bytes`: key, value and headers.
pub fn record_size(message: &Message) -> usize {
    message.payload.len()
        + message.key.as_ref().map_or(0, String::len)
        + message
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

/// What a failed delivery means for its record. Errors that say the record itself can never
/// be written are permanent; the producer's own end (fenced, fatal) is `Fenced`; everything
/// else (timeouts, leaders moving, brokers down) may pass.
fn delivery_error_kind(error: &RdKafkaError) -> PublishErrorKind {
    use RDKafkaErrorCode as Code;
    match error.rdkafka_error_code() {
        Some(
            Code::MessageSizeTooLarge
            | Code::InvalidMessageSize
            | Code::MessageBatchTooLarge
            | Code::InvalidMessage
            | Code::InvalidRecord
            | Code::InvalidTimestamp
            | Code::PolicyViolation
            | Code::InvalidTopic
            | Code::TopicAuthorizationFailed
            | Code::UnknownTopic,
        ) => PublishErrorKind::Permanent,
        Some(
            Code::Fatal
            | Code::ProducerFenced
            | Code::InvalidProducerEpoch
            | Code::Fenced
            | Code::TransactionCoordinatorFenced,
        ) => PublishErrorKind::Fenced,
        _ => PublishErrorKind::Transient,
    }
}

/// What a failed transaction call means: a fatal error ends the producer (fenced by a newer
/// one with the same transactional id, most often); so does a call refused because another is
/// still in progress or the producer is in another state: an abort or commit that timed out
/// (a broker unreachable meanwhile) waits to be called again, and until then every
/// `begin_transaction` is refused, so only a new producer (which fences this one's
/// transaction) gets the relay going again (found by deploy/local/chaos kafka-cut at 5,000
/// orders). Anything else is worth another try.
fn transaction_error_kind(error: &RdKafkaError) -> PublishErrorKind {
    use RDKafkaErrorCode as Code;
    match error {
        RdKafkaError::Transaction(inner) if inner.is_fatal() => PublishErrorKind::Fenced,
        RdKafkaError::Transaction(inner)
            if matches!(inner.code(), Code::Conflict | Code::State) =>
        {
            PublishErrorKind::Fenced
        }
        other => match delivery_error_kind(other) {
            PublishErrorKind::Fenced => PublishErrorKind::Fenced,
            _ => PublishErrorKind::Transient,
        },
    }
}

pub(crate) fn kafka_headers(message: &Message) -> OwnedHeaders {
    message
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        })
}

impl Publisher for KafkaPublisher {
    async fn publish(&self, topic: &str, message: &Message) -> Result<Delivery, PublishError> {
        let mut record = FutureRecord::to(topic)
            .payload(&message.payload)
            .headers(kafka_headers(message));
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        match self.producer.send(record, QUEUE_TIMEOUT).await {
            Ok(delivery) => Ok(Delivery {
                topic: topic.to_owned(),
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((error, _)) => Err(PublishError::of(
                delivery_error_kind(&error),
                topic,
                error.to_string(),
            )),
        }
    }
}

impl TransactionalPublisher for KafkaPublisher {
    async fn check(&self, topic: &str, message: &Message) -> Result<(), PublishError> {
        let size = record_size(message);
        if size > MAX_MESSAGE_BYTES {
            return Err(PublishError::permanent(
                topic,
                format!(
                    "the record is {size} bytes, more than the producer's message.max.bytes \
                     ({MAX_MESSAGE_BYTES})"
                ),
            ));
        }
        if self
            .known_topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(topic)
        {
            return Ok(());
        }
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), METADATA_TIMEOUT)
        })
        .await
        .map_err(|join| PublishError::transient(topic, join.to_string()))?
        .map_err(|error| {
            PublishError::transient(topic, format!("cannot read the topic's metadata: {error}"))
        })?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found.and_then(|t| t.error()).map(RDKafkaErrorCode::from) {
            None if found.is_some_and(|t| !t.partitions().is_empty()) => {
                self.known_topics
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(topic.to_owned());
                Ok(())
            }
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) | None => Err(PublishError::permanent(
                topic,
                "the topic does not exist on the cluster",
            )),
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => Err(PublishError::permanent(
                topic,
                "not authorized to write to the topic",
            )),
            Some(other) => Err(PublishError::transient(
                topic,
                format!("the topic's metadata: {other}"),
            )),
        }
    }

    async fn begin(&self) -> Result<(), PublishError> {
        let Some(state) = &self.transactions else {
            return Err(PublishError::of(
                PublishErrorKind::Fenced,
                "",
                "this producer has no transactional id (KafkaPublisher::transactional)",
            ));
        };
        let initialized = *state
            .initialized
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !initialized {
            self.blocking("registering the transactional id", |producer| {
                producer.init_transactions(TRANSACTION_CALL_TIMEOUT)
            })
            .await?;
            *state
                .initialized
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        }
        self.blocking("beginning a transaction", |producer| {
            producer.begin_transaction()
        })
        .await
    }

    async fn commit(&self) -> Result<(), PublishError> {
        self.blocking("committing the transaction", |producer| {
            producer.commit_transaction(TRANSACTION_CALL_TIMEOUT)
        })
        .await
    }

    async fn abort(&self) -> Result<(), PublishError> {
        self.blocking("aborting the transaction", |producer| {
            producer.abort_transaction(TRANSACTION_CALL_TIMEOUT)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_size_counts_key_value_and_headers() {
        let message = Message {
            key: Some("abc".into()),
            headers: messaging::Headers::new().with("ce_id", "12345"),
            payload: vec![0; 10],
        };
        assert_eq!(record_size(&message), 10 + 3 + 5 + 5);
    }

    #[test]
    fn refusals_of_the_record_are_permanent_and_the_rest_transient() {
        let refused = RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(delivery_error_kind(&refused), PublishErrorKind::Permanent);
        let fenced = RdKafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced);
        assert_eq!(delivery_error_kind(&fenced), PublishErrorKind::Fenced);
        let timeout = RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(delivery_error_kind(&timeout), PublishErrorKind::Transient);
    }
}
