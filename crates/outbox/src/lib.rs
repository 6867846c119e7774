//! Transactional messaging on PostgreSQL: a service changes its state and records the messages
//! that tell others in one transaction; a relay publishes them; consumers record what they
//! handled in the transaction of its effects. Effectively once across services, although
//! Kafka delivers at least once.
//!
//! # Layout
//! - [`schema`]: the `outbox` and `inbox` tables, created in the service's own schema.
//! - [`append`]: [`append`] a message to the outbox inside the caller's transaction.
//! - [`polling`]: [`PollingRelay`], which claims committed rows in batches and publishes them.
//! - [`tailing`]: [`TailingRelay`], which reads the outbox's inserts from the write-ahead log
//!   (logical replication) and publishes them in commit order; `pgoutput` decodes the two
//!   messages of the stream it needs.
//! - [`failed`]: rows that can never be published as they are, moved aside to
//!   `outbox_failed` with their reason (later rows of their key wait); listed, retried and
//!   discarded by the operator (`ftgo outbox`).
//! - [`leader`]: [`while_leader`], one active relay per service through an advisory lock.
//! - [`saga`]: [`SagaManager`], sagas stored in the service's database and advanced in the
//!   transaction that handles each reply (or missed deadline).
//! - [`inbox`]: [`Inbox`], the duplicate check, and [`Idempotent`], the handler shape every
//!   service uses: one transaction for the duplicate check, the state change and the outbox.

mod append;
mod batch;
pub mod failed;
mod group;
mod inbox;
mod leader;
mod pgoutput;
mod polling;
mod saga;
mod schema;
mod tailing;

pub use append::append;
pub use inbox::{
    IdConflict, Idempotent, Inbox, Recorded, TransactionalHandler, database_failure,
    database_unreachable,
};
pub use leader::while_leader;
pub use polling::{PollingRelay, RelayOutcome, RelaySettings};
pub use saga::{
    DEFAULT_MAX_RESENDS, LockedSaga, ReplyOutcome, SagaActions, SagaManager, SagaRef, lock_saga,
};
pub use schema::{ddl, install, notify_channel};
pub use tailing::{TailingRelay, TailingSettings, create_slot, drop_slot};

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the message has no {} header: every message needs a unique id",
        messaging::header::ID
    )]
    NoMessageId,
    #[error(transparent)]
    Publish(#[from] messaging::PublishError),
    #[error("headers are not a JSON array of [name, value] pairs: {0}")]
    Headers(#[source] serde_json::Error),
    #[error("the replication stream: {0}")]
    Replication(String),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(
        "a message for {topic} of {size} bytes (key, value and headers) is larger than the \
         most the producer sends, {limit} bytes (message.max.bytes): split it, or send a \
         reference to the data instead of the data"
    )]
    TooLarge {
        topic: String,
        size: usize,
        limit: usize,
    },
}

impl OutboxError {
    /// Whether a newer relay leader took over this relay's producer: it must stop.
    pub fn is_fenced(&self) -> bool {
        matches!(self, OutboxError::Publish(e) if e.kind == messaging::PublishErrorKind::Fenced)
    }
}
