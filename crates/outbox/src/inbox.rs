//! Idempotent consumers: a group records each message id it handled in the transaction of the
//! handling's effects, so a second delivery (after a crash, a rebalance, a relay's retry) is
//! acknowledged with no second effect.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use messaging::{
    DecodedHandler, Handler, HandlerError, Message, MissingHeader, Reason, Received, header,
};
use sqlx::{PgConnection, PgPool};

use crate::group::GroupCommit;

/// The record of what one consumer group handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbox {
    group: String,
}

impl Inbox {
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
        }
    }

    /// Records that the group handled `message`, on `connection` (the transaction of the
    /// effects), with its type and a digest of its payload. Anything but
    /// [`Recorded::First`] means the transaction should have no other effect. A concurrent
    /// delivery of the same id waits here for the first to commit or roll back.
    pub async fn record(
        &self,
        connection: &mut PgConnection,
        message_id: &str,
        message: &Message,
    ) -> Result<Recorded, sqlx::Error> {
        let message_type = message.headers.get(header::TYPE);
        let inserted = sqlx::query(
            "INSERT INTO inbox (consumer_group, message_id, message_type, digest)
             VALUES ($1, $2, $3, sha256($4))
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.group)
        .bind(message_id)
        .bind(message_type)
        .bind(&message.payload)
        .execute(&mut *connection)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Recorded::First);
        }
        // Handled before: the same message again, or another one that reuses its id. Entries
        // from before the digest was kept (NULL) count as the same message.
        let (stored_type, same): (Option<String>, Option<bool>) = sqlx::query_as(
            "SELECT message_type, digest = sha256($3) FROM inbox
             WHERE consumer_group = $1 AND message_id = $2",
        )
        .bind(&self.group)
        .bind(message_id)
        .bind(&message.payload)
        .fetch_one(connection)
        .await?;
        let same_type = stored_type.is_none()
            || message_type.is_none()
            || stored_type.as_deref() == message_type;
        Ok(if same_type && same != Some(false) {
            Recorded::Duplicate
        } else {
            Recorded::Conflict {
                stored_type: stored_type.unwrap_or_default(),
            }
        })
    }

    /// Forgets what was handled more than `retention` ago (all groups of the database). Safe
    /// when `retention` is longer than any redelivery window: see docs/outbox.md.
    pub async fn expire(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
        let deleted =
            sqlx::query("DELETE FROM inbox WHERE handled_at < now() - make_interval(secs => $1)")
                .bind(retention.as_secs_f64())
                .execute(pool)
                .await?;
        Ok(deleted.rows_affected())
    }
}

/// A database failure as a handler's: the database unreachable (connection refused or lost,
/// no connection to be had, the server shutting down or starting) is an unavailable
/// dependency, waited out ([`HandlerError::unavailable`]); anything else transient.
pub fn database_failure(error: sqlx::Error) -> HandlerError {
    if database_unreachable(&error) {
        HandlerError::unavailable("database", error)
    } else {
        HandlerError::transient(error)
    }
}

/// Whether `error` says the database cannot be reached (rather than refusing a statement).
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exceptions; 57P01-03: shutting down, crashed, starting up;
        // 53300: too many connections.
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// What the inbox said about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Not handled before: go on.
    First,
    /// The same message (id, type and payload) was handled before: no second effect.
    Duplicate,
    /// Another message with the same id was handled before: this one must not be taken for a
    /// duplicate and dropped silently (dead-lettered as `id-conflict`).
    Conflict { stored_type: String },
}

/// A message reuses the id of another that was handled: not a duplicate.
#[derive(Debug, thiserror::Error)]
#[error(
    "message id {id} was handled before for a different message (then a {stored_type}, now a \
     {message_type} with other content): every message needs an id of its own"
)]
pub struct IdConflict {
    pub id: String,
    pub stored_type: String,
    pub message_type: String,
}

/// The work of a message inside a transaction: change the service's state and append what it
/// sends to the outbox, both on `tx`. Effectively once when run by [`Idempotent`].
pub trait TransactionalHandler<V>: Send + Sync {
    fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        value: V,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// The handler shape of every service: receive → open a transaction → check and record the
/// message id → change state and append to the outbox (the inner handler) → commit. The
/// offset is stored by the runner after this returns. A duplicate commits nothing and
/// succeeds. Database failures of its own are transient (retried).
///
/// With [`Idempotent::grouped`], messages handled at the same time share a transaction (group
/// commit, see [`crate::group`]); each still succeeds or fails as it would alone.
#[derive(Debug, Clone)]
pub struct Idempotent<H> {
    pool: PgPool,
    inbox: Inbox,
    inner: H,
    group: Option<Arc<GroupCommit>>,
}

impl<H> Idempotent<H> {
    pub fn new(pool: PgPool, group: impl Into<String>, inner: H) -> Self {
        Self {
            pool,
            inbox: Inbox::new(group),
            inner,
            group: None,
        }
    }

    /// Messages handled at the same time (on different partitions) share one transaction, up
    /// to `max_messages`; 1 (or 0) turns it off.
    pub fn grouped(mut self, max_messages: usize) -> Self {
        self.group =
            (max_messages > 1).then(|| Arc::new(GroupCommit::new(self.pool.clone(), max_messages)));
        self
    }

    fn message_id(message: &Received) -> Result<&str, HandlerError> {
        message.message.id().ok_or(HandlerError::permanent(
            Reason::MissingHeader,
            MissingHeader { name: header::ID },
        ))
    }
}

impl<H> Idempotent<H> {
    /// The message's work on `connection`: the duplicate check, then the inner handler.
    async fn work<V>(
        &self,
        connection: &mut PgConnection,
        id: &str,
        message: &Received,
        value: V,
    ) -> Result<(), HandlerError>
    where
        H: TransactionalHandler<V>,
    {
        match self
            .inbox
            .record(connection, id, &message.message)
            .await
            .map_err(database_failure)?
        {
            Recorded::First => self.inner.handle(connection, message, value).await,
            Recorded::Duplicate => {
                tracing::debug!(message_id = id, "duplicate delivery: no effect");
                Ok(())
            }
            Recorded::Conflict { stored_type } => Err(HandlerError::permanent(
                Reason::IdConflict,
                IdConflict {
                    id: id.to_owned(),
                    stored_type,
                    message_type: message
                        .message
                        .headers
                        .get(header::TYPE)
                        .unwrap_or("message")
                        .to_owned(),
                },
            )),
        }
    }

    /// One transaction of the message's own.
    async fn alone<V>(&self, id: &str, message: &Received, value: V) -> Result<(), HandlerError>
    where
        H: TransactionalHandler<V>,
    {
        let mut tx = self.pool.begin().await.map_err(database_failure)?;
        self.work(&mut tx, id, message, value).await?;
        tx.commit().await.map_err(database_failure)
    }

    async fn handle_value<V: Clone>(&self, message: &Received, value: V) -> Result<(), HandlerError>
    where
        H: TransactionalHandler<V>,
    {
        let id = Self::message_id(message)?;
        let Some(group) = &self.group else {
            return self.alone(id, message, value).await;
        };
        let mut seat = group.seat().await;
        let succeeded = match seat.connection() {
            Some(connection) => self
                .work(connection, id, message, value.clone())
                .await
                .is_ok(),
            None => false,
        };
        if seat.finish(succeeded).await {
            return Ok(());
        }
        // The batch rolled back (this message failed, another did, or the commit): alone, this
        // message gets its own outcome.
        self.alone(id, message, value).await
    }
}

impl<V: Send + Clone, H: TransactionalHandler<V>> DecodedHandler<V> for Idempotent<H> {
    async fn handle(&self, message: &Received, value: V) -> Result<(), HandlerError> {
        self.handle_value(message, value).await
    }
}

impl<H: TransactionalHandler<()>> Handler for Idempotent<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        self.handle_value(message, ()).await
    }
}
