//! The saga manager on PostgreSQL: each saga instance is a row (its definition's state as JSON,
//! whether it runs or how it ended, the deadline of the reply it waits for). A reply advances
//! the saga in the transaction that records the reply (the inbox) and appends the next command
//! (the outbox): the row is locked, the definition applied, the row and the actions written,
//! all or nothing. A deadline that passes is handled the same way, by whichever instance of the
//! service gets to the row first.

use std::future::Future;
use std::time::Duration;

use messaging::{HandlerError, Next, Received, SagaDefinition, Transition};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The saga instances of a service.
///
/// - `subject`: what the saga is about (an order id): for people and queries.
/// - `deadline`: when the reply the saga waits for is late; `NULL` once it is over.
pub const SAGAS: &str = r"
CREATE TABLE IF NOT EXISTS saga_instances (
    id          uuid PRIMARY KEY,
    saga_type   text NOT NULL,
    subject     text NOT NULL,
    state       jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'compensated')),
    deadline    timestamptz,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
)";

pub(crate) const SAGA_INDEXES: [&str; 2] = [
    "CREATE INDEX IF NOT EXISTS saga_instances_due ON saga_instances (deadline)
     WHERE status = 'running'",
    "CREATE INDEX IF NOT EXISTS saga_instances_subject ON saga_instances (subject)",
];

/// How often the deadline sweep looks for late replies.
pub const DEADLINE_SWEEP: Duration = Duration::from_millis(500);

/// One saga instance, as its actions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaRef {
    pub id: Uuid,
    pub subject: String,
}

/// What the owning service does with a saga's actions, on the transaction that advances the
/// saga: append commands to the outbox (correlated by the saga id), change its own tables.
/// `cause` is the reply (or command) being handled; `None` when a deadline passed.
pub trait SagaActions<A>: Send + Sync {
    fn apply(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        cause: Option<&Received>,
        actions: Vec<A>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// What a reply did to its saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The saga took a step.
    Advanced,
    /// The saga did not wait for this reply (late, duplicate) or is over: nothing changed.
    Ignored,
    /// No saga of this type has that id.
    UnknownSaga,
}

/// A saga instance locked (`FOR UPDATE`) on a transaction, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedSaga {
    pub saga: SagaRef,
    pub saga_type: String,
    status: String,
    state: serde_json::Value,
}

/// Locks saga `id`, of whatever type, on `tx` and reads it; `None` if there is none. One query
/// for a reply: the type picks the [`SagaManager`] to hand it to.
pub async fn lock_saga(
    tx: &mut PgConnection,
    id: Uuid,
) -> Result<Option<LockedSaga>, HandlerError> {
    let row: Option<(String, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT saga_type, subject, status, state FROM saga_instances WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(row.map(|(saga_type, subject, status, state)| LockedSaga {
        saga: SagaRef { id, subject },
        saga_type,
        status,
        state,
    }))
}

/// Runs sagas of definition `D`.
#[derive(Debug, Clone)]
pub struct SagaManager<D> {
    definition: D,
}

impl<D: SagaDefinition> SagaManager<D> {
    pub fn new(definition: D) -> Self {
        Self { definition }
    }

    /// Starts a saga about `subject` on `tx`: stores it and applies its first step. Returns
    /// the saga's id (the correlation id of its commands).
    pub async fn start<E: SagaActions<D::Action>>(
        &self,
        tx: &mut PgConnection,
        subject: &str,
        state: D::State,
        cause: Option<&Received>,
        effects: &E,
    ) -> Result<Uuid, HandlerError> {
        let saga = SagaRef {
            id: Uuid::now_v7(),
            subject: subject.to_owned(),
        };
        let transition = self.definition.start(state);
        let (status, deadline) = Self::progress(&transition);
        sqlx::query(
            "INSERT INTO saga_instances (id, saga_type, subject, state, status, deadline)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        )
        .bind(saga.id)
        .bind(D::TYPE)
        .bind(subject)
        .bind(Self::stored(&transition.state)?)
        .bind(status)
        .bind(deadline)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        tracing::info!(saga = D::TYPE, id = %saga.id, subject, ?transition.next, "saga started");
        effects.apply(tx, &saga, cause, transition.actions).await?;
        Ok(saga.id)
    }

    /// Hands `reply` to saga `id` on `tx`: the row is locked until `tx` ends, so replies and
    /// deadlines of one saga take turns.
    pub async fn on_reply<E: SagaActions<D::Action>>(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        reply: &D::Reply,
        cause: &Received,
        effects: &E,
    ) -> Result<ReplyOutcome, HandlerError> {
        match lock_saga(tx, id).await? {
            Some(locked) if locked.saga_type == D::TYPE => {
                self.on_locked_reply(tx, locked, reply, cause, effects)
                    .await
            }
            _ => Ok(ReplyOutcome::UnknownSaga),
        }
    }

    /// Hands `reply` to a saga of this type that [`lock_saga`] locked on `tx` (a service with
    /// several saga types locks first, then picks the manager by [`LockedSaga::saga_type`]).
    pub async fn on_locked_reply<E: SagaActions<D::Action>>(
        &self,
        tx: &mut PgConnection,
        locked: LockedSaga,
        reply: &D::Reply,
        cause: &Received,
        effects: &E,
    ) -> Result<ReplyOutcome, HandlerError> {
        let LockedSaga {
            saga,
            saga_type,
            status,
            state,
        } = locked;
        if saga_type != D::TYPE {
            return Ok(ReplyOutcome::UnknownSaga);
        }
        let id = saga.id;
        if status != "running" {
            tracing::info!(saga = D::TYPE, %id, status, ?reply, "reply to a finished saga ignored");
            return Ok(ReplyOutcome::Ignored);
        }
        let state = Self::state(state)?;
        let Some(transition) = self.definition.on_reply(&state, reply) else {
            tracing::info!(saga = D::TYPE, %id, ?state, ?reply, "reply not awaited: ignored");
            return Ok(ReplyOutcome::Ignored);
        };
        self.advance(tx, &saga, transition, Some(cause), effects)
            .await?;
        Ok(ReplyOutcome::Advanced)
    }

    /// Handles every saga of this type whose deadline has passed, each in a transaction of
    /// its own; returns how many.
    pub async fn expire_due<E: SagaActions<D::Action>>(
        &self,
        pool: &PgPool,
        effects: &E,
    ) -> Result<usize, HandlerError> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM saga_instances
             WHERE saga_type = $1 AND status = 'running' AND deadline < now()
             ORDER BY deadline LIMIT 100",
        )
        .bind(D::TYPE)
        .fetch_all(pool)
        .await
        .map_err(HandlerError::transient)?;
        let mut expired = 0;
        for id in due {
            let mut tx = pool.begin().await.map_err(HandlerError::transient)?;
            // Skip a saga another instance (or a reply) is advancing right now; look again
            // whether it is still late once locked.
            let late: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM saga_instances
                 WHERE id = $1 AND status = 'running' AND deadline < now()
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
            if late.is_none() {
                continue;
            }
            let Some(locked) = lock_saga(&mut tx, id).await? else {
                continue;
            };
            let (saga, state) = (locked.saga, Self::state(locked.state)?);
            let transition = self.definition.on_deadline(&state);
            tracing::warn!(saga = D::TYPE, %id, subject = saga.subject, ?state,
                "no reply within the deadline");
            self.advance(&mut tx, &saga, transition, None, effects)
                .await?;
            tx.commit().await.map_err(HandlerError::transient)?;
            expired += 1;
        }
        Ok(expired)
    }

    /// Sweeps deadlines every [`DEADLINE_SWEEP`] until `stop`.
    pub async fn run_deadlines<E: SagaActions<D::Action>>(
        &self,
        pool: PgPool,
        effects: E,
        stop: CancellationToken,
    ) {
        loop {
            if let Err(error) = self.expire_due(&pool, &effects).await {
                tracing::warn!(saga = D::TYPE, %error, "sweeping saga deadlines failed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(DEADLINE_SWEEP) => {}
            }
        }
    }

    fn state(stored: serde_json::Value) -> Result<D::State, HandlerError> {
        serde_json::from_value(stored)
            .map_err(|error| HandlerError::permanent("saga-state-unreadable", error))
    }

    async fn advance<E: SagaActions<D::Action>>(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        transition: Transition<D::State, D::Action>,
        cause: Option<&Received>,
        effects: &E,
    ) -> Result<(), HandlerError> {
        let (status, deadline) = Self::progress(&transition);
        sqlx::query(
            "UPDATE saga_instances SET state = $2, status = $3,
                 deadline = now() + make_interval(secs => $4), updated_at = now()
             WHERE id = $1",
        )
        .bind(saga.id)
        .bind(Self::stored(&transition.state)?)
        .bind(status)
        .bind(deadline)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        tracing::info!(saga = D::TYPE, id = %saga.id, subject = saga.subject,
            ?transition.next, "saga advanced");
        effects.apply(tx, saga, cause, transition.actions).await
    }

    /// The stored status and the deadline (seconds from now; `None` once over).
    fn progress(transition: &Transition<D::State, D::Action>) -> (&'static str, Option<f64>) {
        match transition.next {
            Next::AwaitReply { within } => ("running", Some(within.as_secs_f64())),
            Next::Finished(outcome) => (outcome.status(), None),
        }
    }

    fn stored(state: &D::State) -> Result<serde_json::Value, HandlerError> {
        serde_json::to_value(state)
            .map_err(|error| HandlerError::permanent("handler-failed", error))
    }
}
