//! Reading what a topic holds now, as tools do: no consumer group, nothing committed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use messaging::Received;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::KafkaError;

pub(crate) fn client(what: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> KafkaError {
    move |source| KafkaError::Client { what, source }
}

/// A tool's consumer: it remembers the last error librdkafka reported on its own (a refused
/// login, a broker that closed the connection), which a request that fails says nothing of: it
/// only timed out, or met a transport failure.
pub(crate) type Standalone = BaseConsumer<Reported>;

#[derive(Default)]
pub(crate) struct Reported(Mutex<Option<String>>);

impl ClientContext for Reported {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "librdkafka reported an error");
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
    }
}

impl ConsumerContext for Reported {}

/// `error` of a request `what` of `consumer`, or [`KafkaError::Security`] when librdkafka said
/// meanwhile that the connection's security failed: a refused login, a TLS handshake (its
/// reports arrive by polling).
pub(crate) fn explained(
    consumer: &Standalone,
    what: &'static str,
    error: rdkafka::error::KafkaError,
) -> KafkaError {
    for _ in 0..5 {
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let reported = consumer
        .context()
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match reported {
        Some(reason)
            if ["Authentication failed", "SASL", "SSL", "security.protocol"]
                .iter()
                .any(|said| reason.contains(said)) =>
        {
            KafkaError::Security { what, reason }
        }
        _ => client(what)(error),
    }
}

/// A consumer that never subscribes, so it never joins `group` (a group id is needed to read
/// or write the group's offsets) and commits only when told to.
pub(crate) fn standalone(bootstrap_servers: &str, group: &str) -> Result<Standalone, KafkaError> {
    crate::client_config(bootstrap_servers)?
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create_with_context(Reported::default())
        .map_err(client("creating a consumer"))
}

/// A consumer that joins no group and commits nothing.
fn reader(bootstrap_servers: &str) -> Result<Standalone, KafkaError> {
    standalone(bootstrap_servers, "ftgo-topic-reader")
}

/// The partitions of `topic` in order, or [`KafkaError::UnknownTopic`].
pub(crate) fn partitions(
    consumer: &Standalone,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(client("fetching the topic's metadata"))?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaError::UnknownTopic(topic.to_owned()));
    }
    partitions.sort_unstable();
    Ok(partitions)
}

/// Follows a topic as a console consumer does, without a group: every partition from its
/// beginning or from its end (what is written from now on).
pub struct TopicTail {
    consumer: Standalone,
}

impl std::fmt::Debug for TopicTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicTail").finish_non_exhaustive()
    }
}

impl TopicTail {
    pub fn new(
        bootstrap_servers: &str,
        topic: &str,
        from_beginning: bool,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        let consumer = reader(bootstrap_servers)?;
        let mut assignment = TopicPartitionList::new();
        for partition in partitions(&consumer, topic, timeout)? {
            // The end as an offset, not `Offset::End`: that resolves only at the first fetch,
            // and a record written in between would be skipped.
            let start = if from_beginning {
                Offset::Beginning
            } else {
                let (_, high) = consumer
                    .fetch_watermarks(topic, partition, timeout)
                    .map_err(client("fetching a partition's end"))?;
                Offset::Offset(high)
            };
            assignment
                .add_partition_offset(topic, partition, start)
                .map_err(client("assigning a partition"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(client("assigning partitions"))?;
        Ok(Self { consumer })
    }

    /// Follows each `(partition, offset)` of `topic` from that offset. To wait for the answer
    /// to something about to be published, take the topic's high watermarks first, publish,
    /// then follow from them: however fast the answer is written, it is not missed.
    pub fn from_offsets(
        bootstrap_servers: &str,
        topic: &str,
        starts: &[(i32, i64)],
    ) -> Result<Self, KafkaError> {
        let consumer = reader(bootstrap_servers)?;
        let mut assignment = TopicPartitionList::new();
        for &(partition, offset) in starts {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(client("assigning a partition"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(client("assigning partitions"))?;
        Ok(Self { consumer })
    }

    /// The next record, waiting at most `wait` for one. An error is what librdkafka reported
    /// meanwhile: most pass while the cluster changes (a leader moving, a broker restarting),
    /// and the follower reads on past them; [`KafkaError::is_refused`] tells those that do not.
    pub fn next(&self, wait: Duration) -> Result<Option<Received>, KafkaError> {
        match self.consumer.poll(wait) {
            Some(Ok(record)) => Ok(Some(crate::consumer::received(&record))),
            Some(Err(error)) => Err(KafkaError::Client {
                what: "reading",
                source: error,
            }),
            None => Ok(None),
        }
    }
}

/// Every record `topic` holds now (up to each partition's end when called), in partition and
/// offset order. Joins no group and commits nothing, so it disturbs no one. For small topics,
/// such as dead-letter topics: everything is kept in memory.
pub fn read_topic(
    bootstrap_servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Received>, KafkaError> {
    read(bootstrap_servers, topic, None, timeout)
}

/// As [`read_topic`], but only the records timestamped `since` or later (each partition is
/// read from the first such offset, `offsetsForTimes`): what a test published, on a topic
/// that earlier runs have filled.
pub fn read_topic_since(
    bootstrap_servers: &str,
    topic: &str,
    since: SystemTime,
    timeout: Duration,
) -> Result<Vec<Received>, KafkaError> {
    read(bootstrap_servers, topic, Some(since), timeout)
}

/// Each partition's first offset timestamped `since` or later; `None` where there is none.
fn offsets_since(
    consumer: &Standalone,
    topic: &str,
    partitions: &[i32],
    since: SystemTime,
    timeout: Duration,
) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
    let millis = since
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut times = TopicPartitionList::new();
    for &partition in partitions {
        times
            .add_partition_offset(topic, partition, Offset::Offset(millis))
            .map_err(client("asking for offsets by time"))?;
    }
    let found = consumer
        .offsets_for_times(times, timeout)
        .map_err(client("fetching offsets by time"))?;
    Ok(partitions
        .iter()
        .map(|&partition| {
            let offset = found
                .find_partition(topic, partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                });
            (partition, offset)
        })
        .collect())
}

impl KafkaError {
    /// Whether this error will not pass by waiting: a broker refused the client (its
    /// credentials or its rights). A follower reads past the others (see [`TopicTail::next`]).
    pub fn is_refused(&self) -> bool {
        refused(self)
    }
}

/// Whether `error` will not pass by waiting: a broker refused the client (its credentials or
/// its rights). Everything else a reader meets while a cluster changes passes: a partition's
/// leader moving to another broker, a broker restarting, a request timing out, and librdkafka's
/// own "Local: Authentication failure", which it also reports when a broker goes away in the
/// middle of a connection's handshake (a broker killed during a read showed it).
fn refused(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    match error {
        KafkaError::Client { source, .. } => matches!(
            source.rdkafka_error_code(),
            Some(
                Code::TopicAuthorizationFailed
                    | Code::GroupAuthorizationFailed
                    | Code::ClusterAuthorizationFailed
                    | Code::SaslAuthenticationFailed
            )
        ),
        _ => true,
    }
}

/// Where reading starts and ends: each partition's first offset to read (`since`, or the
/// beginning) and its end now, for the partitions that hold anything to read.
fn bounds(
    consumer: &Standalone,
    topic: &str,
    since: Option<SystemTime>,
    timeout: Duration,
) -> Result<Vec<(i32, i64, i64)>, KafkaError> {
    let partitions = partitions(consumer, topic, timeout)?;
    let starts: Vec<(i32, Option<i64>)> = match since {
        Some(since) => offsets_since(consumer, topic, &partitions, since, timeout)?,
        None => partitions.iter().map(|&p| (p, Some(0))).collect(),
    };
    let mut bounds = Vec::new();
    for (partition, start) in starts {
        let Some(start) = start else { continue };
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(client("fetching a partition's offsets"))?;
        let low = low.max(start);
        if high > low {
            bounds.push((partition, low, high));
        }
    }
    Ok(bounds)
}

fn read(
    bootstrap_servers: &str,
    topic: &str,
    since: Option<SystemTime>,
    timeout: Duration,
) -> Result<Vec<Received>, KafkaError> {
    let consumer = reader(bootstrap_servers)?;
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    // A request may fail while the cluster changes (a leader election moves partitions to
    // other brokers): it is asked again until the deadline.
    let bounds = loop {
        match bounds(&consumer, topic, since, left()) {
            Ok(bounds) => break bounds,
            Err(error) if refused(&error) || left().is_zero() => return Err(error),
            Err(error) => {
                tracing::debug!(topic, %error, "reading a topic's bounds failed; asking again");
                std::thread::sleep(Duration::from_millis(500).min(left()));
            }
        }
    };
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut assignment = TopicPartitionList::new();
    for &(partition, low, _) in &bounds {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(low))
            .map_err(client("assigning a partition"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(client("assigning partitions"))?;
    let ends: Vec<(i32, i64)> = bounds.iter().map(|&(p, _, high)| (p, high)).collect();
    let mut records = Vec::new();
    let mut remaining = ends.clone();
    // The last error a poll returned: librdkafka goes on fetching after one (it finds a
    // partition's new leader itself), so it only explains a read that then times out.
    let mut last_error = None;
    while !remaining.is_empty() {
        if left().is_zero() {
            return Err(KafkaError::Timeout {
                what: match last_error {
                    Some(error) => format!("reading {topic} to its end (last error: {error})"),
                    None => format!("reading {topic} to its end"),
                },
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(record)) => {
                let received = crate::consumer::received(&record);
                let (partition, offset) = (received.origin.partition, received.origin.offset);
                remaining.retain(|(p, end)| !(*p == partition && offset + 1 >= *end));
                records.push(received);
            }
            Some(Err(error)) => {
                let error = client("reading")(error);
                if refused(&error) {
                    return Err(error);
                }
                tracing::debug!(topic, %error, "reading a topic: an error librdkafka recovers from");
                last_error = Some(error);
            }
            None => {
                // The last offsets of a partition written in Kafka transactions are commit
                // markers (and records of aborted transactions), which are never returned as
                // records: the position, which moves past them, tells that the end is read.
                let position = consumer.position().map_err(client("reading positions"))?;
                remaining.retain(|(p, end)| {
                    !matches!(position.find_partition(topic, *p).map(|e| e.offset()),
                        Some(Offset::Offset(at)) if at >= *end)
                });
            }
        }
    }
    // Stop at the ends seen when called; records written since are not this read's.
    records.retain(|r| {
        ends.iter()
            .any(|(p, end)| *p == r.origin.partition && r.origin.offset < *end)
    });
    records.sort_by_key(|r| (r.origin.partition, r.origin.offset));
    Ok(records)
}
