//! Idempotent consumers: a group records each message id it handled in the transaction of the
//! handling's effects, so a second delivery (after a crash, a rebalance, a relay's retry) is
//! acknowledged with no second effect.

use std::future::Future;
use std::time::Duration;

use messaging::{DecodedHandler, Handler, HandlerError, MissingHeader, Received, header};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

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

    /// Records that the group handled `message_id`, on `connection` (the transaction of the
    /// effects). `false`: it had been handled already, and the transaction should have no
    /// other effect. A concurrent delivery of the same id waits here for the first to commit
    /// or roll back.
    pub async fn record(
        &self,
        connection: &mut PgConnection,
        message_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO inbox (consumer_group, message_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.group)
        .bind(message_id)
        .execute(connection)
        .await?;
        Ok(inserted.rows_affected() == 1)
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
#[derive(Debug, Clone)]
pub struct Idempotent<H> {
    pool: PgPool,
    inbox: Inbox,
    inner: H,
}

impl<H> Idempotent<H> {
    pub fn new(pool: PgPool, group: impl Into<String>, inner: H) -> Self {
        Self {
            pool,
            inbox: Inbox::new(group),
            inner,
        }
    }

    /// Opens the transaction and records the message id in it; `None` for a duplicate.
    async fn begin(
        &self,
        message: &Received,
    ) -> Result<Option<Transaction<'static, Postgres>>, HandlerError> {
        let id = message.message.id().ok_or(HandlerError::permanent(
            "missing-header",
            MissingHeader { name: header::ID },
        ))?;
        let mut tx = self.pool.begin().await.map_err(HandlerError::transient)?;
        let first_time = self
            .inbox
            .record(&mut tx, id)
            .await
            .map_err(HandlerError::transient)?;
        if !first_time {
            tracing::debug!(message_id = id, "duplicate delivery: no effect");
            return Ok(None);
        }
        Ok(Some(tx))
    }
}

impl<V: Send, H: TransactionalHandler<V>> DecodedHandler<V> for Idempotent<H> {
    async fn handle(&self, message: &Received, value: V) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin(message).await? else {
            return Ok(());
        };
        self.inner.handle(&mut tx, message, value).await?;
        tx.commit().await.map_err(HandlerError::transient)
    }
}

impl<H: TransactionalHandler<()>> Handler for Idempotent<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin(message).await? else {
            return Ok(());
        };
        self.inner.handle(&mut tx, message, ()).await?;
        tx.commit().await.map_err(HandlerError::transient)
    }
}
