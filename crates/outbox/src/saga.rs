//! The saga manager on PostgreSQL: each saga instance is a row (its definition's state as JSON,
//! whether it runs or how it ended, the deadline of the reply it waits for). A reply advances
//! the saga in the transaction that records the reply (the inbox) and appends the next command
//! (the outbox): the row is locked, the definition applied, the row and the actions written,
//! all or nothing. A deadline that passes is handled the same way, by whichever instance of the
//! service gets to the row first.

use std::future::Future;
use std::time::Duration;

use messaging::{HandlerError, Next, Reason, Received, SagaDefinition, Transition};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The saga instances of a service.
///
/// - `subject`: what the saga is about (an order id): for people and queries.
/// - `status`: `running`; `stalled` (it asked the same thing [`DEFAULT_MAX_RESENDS`] times
///   without an answer and waits for an operator, or for a late reply); or how it ended.
/// - `deadline`: when the reply the saga waits for is late; `NULL` once it is over or stalled.
/// - `resends`: how many times in a row a deadline re-sent the same command.
pub const SAGAS: &str = r"
CREATE TABLE IF NOT EXISTS saga_instances (
    id          uuid PRIMARY KEY,
    saga_type   text NOT NULL,
    subject     text NOT NULL,
    state       jsonb NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('running', 'stalled', 'succeeded', 'compensated')),
    deadline    timestamptz,
    resends     integer NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
)";

/// Brings a saga table created before sagas could stall up to date (idempotent; the check
/// is rewritten only while it lacks `stalled`).
pub(crate) const SAGAS_UPGRADE: &str = r"
DO $$
BEGIN
    -- Checked first: ALTER TABLE locks the table even when there is nothing to do, and every
    -- instance of every service runs this at start.
    IF NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = 'saga_instances'::regclass AND attname = 'resends'
    ) THEN
        ALTER TABLE saga_instances ADD COLUMN resends integer NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_constraint
        WHERE conrelid = 'saga_instances'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%stalled%'
    ) THEN
        ALTER TABLE saga_instances DROP CONSTRAINT IF EXISTS saga_instances_status_check;
        ALTER TABLE saga_instances ADD CONSTRAINT saga_instances_status_check
            CHECK (status IN ('running', 'stalled', 'succeeded', 'compensated'));
    END IF;
END
$$";

pub(crate) const SAGA_INDEXES: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS saga_instances_due ON saga_instances (deadline)
     WHERE status = 'running'",
    "CREATE INDEX IF NOT EXISTS saga_instances_subject ON saga_instances (subject)",
    "CREATE INDEX IF NOT EXISTS saga_instances_stalled ON saga_instances (updated_at)
     WHERE status = 'stalled'",
];

/// How many times in a row a saga may send the same command again because its deadline
/// passed before it stalls (see [`SagaManager::with_max_resends`]).
pub const DEFAULT_MAX_RESENDS: u32 = 10;

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
    resends: i32,
}

/// Locks saga `id`, of whatever type, on `tx` and reads it; `None` if there is none. One query
/// for a reply: the type picks the [`SagaManager`] to hand it to.
pub async fn lock_saga(
    tx: &mut PgConnection,
    id: Uuid,
) -> Result<Option<LockedSaga>, HandlerError> {
    let row: Option<(String, String, String, serde_json::Value, i32)> = sqlx::query_as(
        "SELECT saga_type, subject, status, state, resends FROM saga_instances
         WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(
        row.map(|(saga_type, subject, status, state, resends)| LockedSaga {
            saga: SagaRef { id, subject },
            saga_type,
            status,
            state,
            resends,
        }),
    )
}

/// Runs sagas of definition `D`.
#[derive(Debug, Clone)]
pub struct SagaManager<D> {
    definition: D,
    max_resends: u32,
}

impl<D: SagaDefinition> SagaManager<D> {
    pub fn new(definition: D) -> Self {
        Self {
            definition,
            max_resends: DEFAULT_MAX_RESENDS,
        }
    }

    /// A saga whose deadline passes and whose definition answers by sending the same command
    /// again (its state unchanged) does so at most `max_resends` times in a row; at the next
    /// deadline it stalls instead: status `stalled`, no deadline, nothing sent, an error in
    /// the log and in the `ftgo_sagas_stalled` gauge. A participant that dead-letters the
    /// command would otherwise be asked forever. A reply that comes later (the command
    /// replayed from the dead-letter topic, say) still advances a stalled saga.
    pub fn with_max_resends(mut self, max_resends: u32) -> Self {
        self.max_resends = max_resends;
        self
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
            ..
        } = locked;
        if saga_type != D::TYPE {
            return Ok(ReplyOutcome::UnknownSaga);
        }
        let id = saga.id;
        // A stalled saga waits for this reply too: it is how a saga resumes once the
        // participant answers after all.
        if status != "running" && status != "stalled" {
            tracing::info!(saga = D::TYPE, %id, status, ?reply, "reply to a finished saga ignored");
            return Ok(ReplyOutcome::Ignored);
        }
        let state = Self::state(state)?;
        let Some(transition) = self.definition.on_reply(&state, reply) else {
            tracing::info!(saga = D::TYPE, %id, ?state, ?reply, "reply not awaited: ignored");
            return Ok(ReplyOutcome::Ignored);
        };
        self.advance(tx, &saga, transition, 0, Some(cause), effects)
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
            // The same state, waiting again: the definition sends its command once more. Both
            // sides serialized here, so jsonb's own representation does not matter.
            let resend = matches!(transition.next, Next::AwaitReply { .. })
                && Self::stored(&transition.state)? == Self::stored(&state)?;
            let resends = if resend { locked.resends + 1 } else { 0 };
            if resend && resends > i32::try_from(self.max_resends).unwrap_or(i32::MAX) {
                self.stall(&mut tx, &saga, &state, locked.resends).await?;
            } else {
                tracing::warn!(saga = D::TYPE, %id, subject = saga.subject, ?state, resends,
                    "no reply within the deadline");
                self.advance(&mut tx, &saga, transition, resends, None, effects)
                    .await?;
            }
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
            .map_err(|error| HandlerError::permanent(Reason::SagaStateUnreadable, error))
    }

    /// Parks a saga that asked `resends` times in vain: nothing is sent, and it waits for a
    /// late reply or an operator (docs/operations.md).
    async fn stall(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        state: &D::State,
        resends: i32,
    ) -> Result<(), HandlerError> {
        sqlx::query(
            "UPDATE saga_instances SET status = 'stalled', deadline = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(saga.id)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        tracing::error!(saga = D::TYPE, id = %saga.id, subject = saga.subject, ?state, resends,
            "saga stalled: its command was sent again {resends} times without a reply; \
             look for it on the participant's dead-letter topic (ftgo dlq list), then replay \
             it or resume the saga (docs/operations.md)");
        Ok(())
    }

    /// Stores the saga's next state; `resends` counts the deadlines in a row that sent the
    /// same command again (0 after a reply or any other step).
    async fn advance<E: SagaActions<D::Action>>(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        transition: Transition<D::State, D::Action>,
        resends: i32,
        cause: Option<&Received>,
        effects: &E,
    ) -> Result<(), HandlerError> {
        let (status, deadline) = Self::progress(&transition);
        sqlx::query(
            "UPDATE saga_instances SET state = $2, status = $3,
                 deadline = now() + make_interval(secs => $4), resends = $5, updated_at = now()
             WHERE id = $1",
        )
        .bind(saga.id)
        .bind(Self::stored(&transition.state)?)
        .bind(status)
        .bind(deadline)
        .bind(resends)
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
            .map_err(|error| HandlerError::permanent(Reason::HandlerFailed, error))
    }
}
