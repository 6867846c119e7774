//! The consumer runner: one member of a service's consumer group.
//!
//! Records are handled one at a time, in partition order, so the records of a key (which share
//! a partition) are handled in the order they were written. A record's offset is stored only
//! after its handler succeeded (or dead-lettered it); librdkafka commits stored offsets every
//! second, before partitions are revoked in a rebalance, and at shutdown. So a crash or a
//! rebalance can only cause a record to be handled again (at least once), never skipped, and a
//! partition is handed over only between records, never in the middle of one.

use std::future::Future;
use std::time::Duration;

use messaging::{Handler, HandlerError, Headers, Message, Origin, Received};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::KafkaError;

/// Where and as whom to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    pub bootstrap_servers: String,
    /// The consumer group: one per service; its instances share the partitions.
    pub group: String,
    pub topics: Vec<String>,
    /// This instance's name in logs and in the broker's group listing.
    pub client_id: String,
    /// How long the group waits for a silent member before giving its partitions to others.
    pub session_timeout: Duration,
}

impl ConsumerSettings {
    pub fn new(bootstrap_servers: &str, group: &str, topics: &[&str]) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_owned(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            client_id: group.to_owned(),
            session_timeout: Duration::from_secs(10),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.group.is_empty() {
            return Err("the consumer group must be named".into());
        }
        if self.topics.is_empty() {
            return Err("subscribe to at least one topic".into());
        }
        Ok(())
    }
}

/// Logs rebalances and commits what is done before partitions are taken away.
struct GroupContext {
    group: String,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(group = %self.group, partitions = ?partitions.elements().iter()
                    .map(|p| (p.topic().to_owned(), p.partition())).collect::<Vec<_>>(),
                    "partitions revoked; committing finished work");
                // The runner polls only between records, so every stored offset is finished
                // work, and no record is in the middle of being handled.
                commit(consumer, &self.group);
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(group = %self.group, partitions = ?partitions.elements().iter()
                    .map(|p| (p.topic().to_owned(), p.partition())).collect::<Vec<_>>(),
                    "partitions assigned");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance error");
            }
        }
    }
}

fn commit<C: Consumer<GroupContext>>(consumer: &C, group: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(RdKafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(group, %error, "commit failed"),
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records whose handler succeeded (or dead-lettered them).
    pub handled: u64,
    /// Handler calls that failed transiently and were tried again.
    pub retries: u64,
}

/// One member of a consumer group, running a handler over its share of the partitions.
pub struct ConsumerRunner {
    consumer: StreamConsumer<GroupContext>,
    group: String,
}

impl std::fmt::Debug for ConsumerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRunner")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The longest wait before handling a record again after a transient failure that got past
/// the handler's own layers.
const MAX_REDO_BACKOFF: Duration = Duration::from_secs(30);

impl ConsumerRunner {
    /// Joins the group and subscribes; partitions are assigned once [`ConsumerRunner::run`]
    /// polls.
    pub fn new(settings: &ConsumerSettings) -> Result<Self, KafkaError> {
        settings.validate().map_err(KafkaError::Settings)?;
        let consumer: StreamConsumer<GroupContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", &settings.group)
            .set("client.id", &settings.client_id)
            // Offsets are stored by the runner after each record's work is done; librdkafka
            // commits what is stored every second.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", "earliest")
            // Incremental rebalancing: a joining or leaving member moves only the partitions
            // that must move; the others keep being handled.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .create_with_context(GroupContext {
                group: settings.group.clone(),
            })
            .map_err(|source| KafkaError::Client {
                what: "creating the consumer",
                source,
            })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaError::Client {
                what: "subscribing",
                source,
            })?;
        Ok(Self {
            consumer,
            group: settings.group.clone(),
        })
    }

    /// Handles records until `shutdown` completes, then drains: the record being handled is
    /// finished, finished work is committed, and the member leaves the group (its partitions
    /// move to the other members at once, not after the session timeout).
    pub async fn run<H: Handler>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunSummary, KafkaError> {
        let mut summary = RunSummary::default();
        tokio::pin!(shutdown);
        loop {
            let record = tokio::select! {
                biased;
                () = &mut shutdown => break,
                record = self.consumer.recv() => record,
            };
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!(group = %self.group, %error, "consumer error");
                    continue;
                }
            };
            let received = received(&record);
            let mut backoff = Duration::from_millis(100);
            loop {
                match handler.handle(&received).await {
                    Ok(()) => break,
                    Err(error @ HandlerError::Transient(_)) => {
                        summary.retries += 1;
                        tracing::warn!(group = %self.group, topic = %received.origin.topic,
                            partition = received.origin.partition, offset = received.origin.offset,
                            %error, wait_ms = backoff.as_millis() as u64,
                            "transient failure past the handler's layers; handling again");
                        tokio::select! {
                            biased;
                            // Leave it unstored: the next owner of the partition handles it.
                            () = &mut shutdown => return self.close(summary),
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_REDO_BACKOFF);
                    }
                    Err(error) => {
                        // A permanent failure with no dead-letter layer around the handler:
                        // stop rather than skip the record.
                        return Err(KafkaError::Unhandled {
                            topic: received.origin.topic.clone(),
                            partition: received.origin.partition,
                            offset: received.origin.offset,
                            error: error.to_string(),
                        });
                    }
                }
            }
            self.consumer
                .store_offset_from_message(&record)
                .map_err(|source| KafkaError::Client {
                    what: "storing an offset",
                    source,
                })?;
            summary.handled += 1;
        }
        self.close(summary)
    }

    fn close(self, summary: RunSummary) -> Result<RunSummary, KafkaError> {
        commit(&self.consumer, &self.group);
        tracing::info!(group = %self.group, handled = summary.handled, "leaving the group");
        // Dropping the consumer closes it: it leaves the group.
        drop(self.consumer);
        Ok(summary)
    }
}

/// A record as a [`Received`] message. Kafka headers that are not UTF-8 text are kept as
/// lossy text (our headers are text; a binary one is someone else's and only informative).
fn received(record: &BorrowedMessage<'_>) -> Received {
    let mut headers = Headers::new();
    if let Some(kafka_headers) = record.headers() {
        for header in kafka_headers.iter() {
            let value = header
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            headers.set(header.key, value);
        }
    }
    Received {
        message: Message {
            key: record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            payload: record.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        },
        origin: Origin {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset(),
            timestamp_ms: record.timestamp().to_millis(),
        },
    }
}
