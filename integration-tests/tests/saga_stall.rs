//! The saga manager on PostgreSQL, when a participant never answers: a saga whose deadline
//! makes it send the same command again does so a bounded number of times in a row, then
//! stalls (nothing more is sent) until a reply comes after all. A reply that moves the saga
//! on starts the count again.

use std::time::Duration;

use anyhow::{Result, ensure};
use messaging::{
    HandlerError, Message, Next, Origin, Received, SagaDefinition, SagaOutcome, Transition, header,
};
use outbox::{ReplyOutcome, SagaActions, SagaManager, SagaRef};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use test_support::TestDatabase;
use uuid::Uuid;

const SENT: &str = "CREATE TABLE sent (saga uuid NOT NULL, action text NOT NULL, at serial)";

/// Asks a participant at each step; a deadline asks again (as sagas past their point of no
/// return and compensations do), a reply moves to the next step.
struct Asking;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step(u32);

#[derive(Debug)]
struct Answer;

impl SagaDefinition for Asking {
    const TYPE: &'static str = "asking";
    type State = Step;
    type Reply = Answer;
    type Action = String;

    fn start(&self, state: Step) -> Transition<Step, String> {
        self.ask(state)
    }

    fn on_reply(&self, state: &Step, _: &Answer) -> Option<Transition<Step, String>> {
        Some(match state.0 {
            0 => self.ask(Step(1)),
            _ => Transition {
                state: Step(2),
                actions: vec!["done".into()],
                next: Next::Finished(SagaOutcome::Succeeded),
            },
        })
    }

    fn on_deadline(&self, state: &Step) -> Transition<Step, String> {
        self.ask(state.clone())
    }
}

impl Asking {
    fn ask(&self, state: Step) -> Transition<Step, String> {
        Transition {
            actions: vec![format!("ask {}", state.0)],
            state,
            next: Next::AwaitReply {
                within: Duration::from_millis(1),
            },
        }
    }
}

/// Records what the saga does in table `sent`, on the saga's transaction.
#[derive(Clone)]
struct Record;

impl SagaActions<String> for Record {
    async fn apply(
        &self,
        tx: &mut PgConnection,
        saga: &SagaRef,
        _: Option<&Received>,
        actions: Vec<String>,
    ) -> Result<(), HandlerError> {
        for action in actions {
            sqlx::query("INSERT INTO sent (saga, action) VALUES ($1, $2)")
                .bind(saga.id)
                .bind(action)
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::transient)?;
        }
        Ok(())
    }
}

fn reply() -> Received {
    Received {
        message: Message::new(None, b"answer".to_vec()).with_header(header::TYPE, "Answer"),
        origin: Origin {
            topic: "ftgo.test.replies".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
        },
        trace: None,
    }
}

async fn setup(max_resends: u32) -> Result<(TestDatabase, SagaManager<Asking>, Uuid)> {
    let database = TestDatabase::create().await?;
    outbox::install(database.pool()).await?;
    sqlx::query(SENT).execute(database.pool()).await?;
    let manager = SagaManager::new(Asking).with_max_resends(max_resends);
    let mut tx = database.pool().begin().await?;
    let id = manager
        .start(&mut tx, "subject-1", Step(0), None, &Record)
        .await?;
    tx.commit().await?;
    Ok((database, manager, id))
}

/// Lets deadlines pass `rounds` times (each round waits for the 1 ms deadline, then sweeps).
async fn sweep(manager: &SagaManager<Asking>, pool: &PgPool, rounds: usize) -> Result<usize> {
    let mut expired = 0;
    for _ in 0..rounds {
        tokio::time::sleep(Duration::from_millis(5)).await;
        expired += manager.expire_due(pool, &Record).await?;
    }
    Ok(expired)
}

async fn sent(pool: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT action FROM sent ORDER BY at")
        .fetch_all(pool)
        .await?)
}

/// (status, resends, whether a deadline is set)
async fn saga_row(pool: &PgPool, id: Uuid) -> Result<(String, i32, bool)> {
    Ok(sqlx::query_as(
        "SELECT status, resends, deadline IS NOT NULL FROM saga_instances WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await?)
}

async fn answer(manager: &SagaManager<Asking>, pool: &PgPool, id: Uuid) -> Result<ReplyOutcome> {
    let mut tx = pool.begin().await?;
    let outcome = manager
        .on_reply(&mut tx, id, &Answer, &reply(), &Record)
        .await?;
    tx.commit().await?;
    Ok(outcome)
}

#[tokio::test]
async fn a_saga_asked_in_vain_stalls_after_its_resends_and_a_late_reply_resumes_it() -> Result<()> {
    let (database, manager, id) = setup(3).await?;
    let pool = database.pool();

    // Three re-sends, then the fourth deadline stalls the saga; later sweeps leave it alone.
    let expired = sweep(&manager, pool, 10).await?;
    ensure!(expired == 4, "deadlines handled: {expired}");
    let asked = sent(pool).await?;
    ensure!(asked == ["ask 0"; 4], "sent: {asked:?}");
    let row = saga_row(pool, id).await?;
    ensure!(row == ("stalled".into(), 3, false), "saga: {row:?}");

    // The participant answers after all (its command replayed from a dead-letter topic):
    // the stalled saga goes on where it was.
    ensure!(answer(&manager, pool, id).await? == ReplyOutcome::Advanced);
    let row = saga_row(pool, id).await?;
    ensure!(row == ("running".into(), 0, true), "saga: {row:?}");
    ensure!(sent(pool).await?.last().map(String::as_str) == Some("ask 1"));
    Ok(())
}

#[tokio::test]
async fn a_reply_starts_the_count_of_resends_again() -> Result<()> {
    let (database, manager, id) = setup(2).await?;
    let pool = database.pool();

    ensure!(sweep(&manager, pool, 2).await? == 2);
    ensure!(saga_row(pool, id).await? == ("running".into(), 2, true));
    // The reply comes just in time: the next step has two re-sends of its own.
    ensure!(answer(&manager, pool, id).await? == ReplyOutcome::Advanced);
    ensure!(sweep(&manager, pool, 2).await? == 2);
    let row = saga_row(pool, id).await?;
    ensure!(row == ("running".into(), 2, true), "saga: {row:?}");
    ensure!(sweep(&manager, pool, 3).await? == 1);
    ensure!(saga_row(pool, id).await? == ("stalled".into(), 2, false));
    let asked = sent(pool).await?;
    ensure!(
        asked == ["ask 0", "ask 0", "ask 0", "ask 1", "ask 1", "ask 1"],
        "sent: {asked:?}"
    );
    ensure!(answer(&manager, pool, id).await? == ReplyOutcome::Advanced);
    ensure!(saga_row(pool, id).await? == ("succeeded".into(), 0, false));
    Ok(())
}

#[tokio::test]
async fn a_saga_table_from_before_stalls_is_brought_up_to_date() -> Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool();
    // The table as earlier versions created it, with a saga in it.
    sqlx::query(
        "CREATE TABLE saga_instances (
            id uuid PRIMARY KEY, saga_type text NOT NULL, subject text NOT NULL,
            state jsonb NOT NULL,
            status text NOT NULL CHECK (status IN ('running', 'succeeded', 'compensated')),
            deadline timestamptz, started_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await?;
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO saga_instances (id, saga_type, subject, state, status, deadline)
         VALUES ($1, 'asking', 'subject-1', '0', 'running', now())",
    )
    .bind(id)
    .execute(pool)
    .await?;
    outbox::install(pool).await?;
    outbox::install(pool).await?;
    sqlx::query(SENT).execute(pool).await?;

    let manager = SagaManager::new(Asking).with_max_resends(1);
    ensure!(sweep(&manager, pool, 4).await? == 2);
    ensure!(saga_row(pool, id).await? == ("stalled".into(), 1, false));
    Ok(())
}
