//! The producer: idempotent, keyed, acknowledged by all in-sync replicas.

use std::time::Duration;

use messaging::{Delivery, Message, PublishError, Publisher};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::KafkaError;

/// How long a publish may wait for the broker's acknowledgement (librdkafka's
/// `message.timeout.ms` bounds the retries inside; this bounds the local queue).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes messages to Kafka: `enable.idempotence=true` and `acks=all`, so a retry inside
/// the client neither duplicates nor reorders a partition's records, and `Ok` means every
/// in-sync replica has the record. Messages with the same key go to the same partition (the
/// default murmur2 partitioner, as Java clients use) in the order they were published.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher").finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    pub fn new(bootstrap_servers: &str, client_id: &str) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
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
            .create()
            .map_err(|source| KafkaError::Client {
                what: "creating the producer",
                source,
            })?;
        Ok(Self { producer })
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
            Err((error, _)) => Err(PublishError {
                topic: topic.to_owned(),
                detail: error.to_string(),
            }),
        }
    }
}
