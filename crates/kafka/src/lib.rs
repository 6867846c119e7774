//! FTGO's Kafka adapter: the only crate that uses rdkafka.
//!
//! # Layout
//! - [`producer`]: [`KafkaPublisher`], the idempotent keyed producer (a
//!   [`messaging::Publisher`]): what relays and the dead-letter layer publish with.
//! - [`consumer`]: [`ConsumerRunner`], one member of a service's consumer group, running a
//!   [`messaging::Handler`] over its partitions with offsets stored only after the work is done,
//!   committing on rebalance and shutdown, pausing partitions that are too far behind.
//! - `reader`: [`read_topic`] (what a topic holds now) and [`TopicTail`] (following a topic
//!   from its beginning, its end or given offsets), for tools: no group, no commit.
//! - [`admin`]: what tools ask about topics and groups without joining one: topics and
//!   partitions, [`Watermarks`], a group's committed offsets ([`GroupOffsets`]).
//! - `partition`: the task that handles one partition's records in partition or key
//!   [`Ordering`] and tracks up to where they are done.

mod admin;
mod client;
mod consumer;
pub mod manifest;
mod pace;
mod partition;
mod producer;
mod provision;
mod reader;

pub use admin::{GroupOffsets, TopicAdmin, TopicInfo, Watermarks, committed_offsets, watermarks};
pub use client::{ClientProperties, PROPERTY_PREFIX, client_config};
pub use consumer::{
    ConsumerRunner, ConsumerSettings, DEFAULT_DRAIN_TIMEOUT, LAG_INTERVAL, LagReporter, POLL_BATCH,
    RunSummary,
};
pub use partition::Ordering;
pub use producer::{KafkaPublisher, MAX_MESSAGE_BYTES, record_size};
pub use provision::{TopicChange, TopicSpec, apply_topics};
pub use reader::{TopicTail, read_topic, read_topic_since};

/// Why the adapter failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("{what}: {source}")]
    Client {
        what: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The connection's security failed: the broker refused the client's SASL credentials, or
    /// the TLS handshake failed (a certificate not trusted, a protocol other than the
    /// listener's), as librdkafka reported.
    #[error("{what}: the connection's security failed: {reason}")]
    Security { what: &'static str, reason: String },
    #[error("invalid settings: {0}")]
    Settings(String),
    /// A handler failed permanently and nothing dead-lettered the record: the runner stops
    /// rather than skip it.
    #[error("{topic}[{partition}]@{offset} failed and was not dead-lettered: {error}")]
    Unhandled {
        topic: String,
        partition: i32,
        offset: i64,
        error: String,
    },
    #[error("a handler panicked: {0}")]
    HandlerPanicked(String),
    #[error("the consumer thread: {0}")]
    Thread(String),
    #[error("group {group} has {members} members: stop its instances first")]
    GroupActive { group: String, members: usize },
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("timed out {what}")]
    Timeout { what: String },
}
