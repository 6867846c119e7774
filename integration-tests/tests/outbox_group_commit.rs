//! Group commit (`Idempotent::grouped`) over real PostgreSQL: messages handled at the same
//! time share a transaction, and each still ends as it would alone: a failing message takes
//! nobody's effects with it, a duplicate has no effect, and a message whose caller gives up
//! leaves the others to finish.

use std::time::Duration;

use anyhow::{Result, ensure};
use futures::future::join_all;
use messaging::{Handler, HandlerError, Message, Origin, Received, header};
use outbox::{Idempotent, TransactionalHandler};
use sqlx::{PgConnection, PgPool};
use test_support::TestDatabase;

const HANDLED: &str = "CREATE TABLE handled (
    key text NOT NULL, message_id text NOT NULL, tx text NOT NULL)";

/// Records the message and the transaction it ran in; takes a little time, so that messages
/// handled at once overlap; refuses keys that start with `poison` after writing.
#[derive(Debug, Clone, Copy)]
struct Recording;

impl TransactionalHandler<()> for Recording {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        _: (),
    ) -> Result<(), HandlerError> {
        let key = message.message.key.clone().unwrap_or_default();
        sqlx::query(
            "INSERT INTO handled (key, message_id, tx)
             SELECT $1, $2, pg_current_xact_id()::text FROM pg_sleep(0.01)",
        )
        .bind(&key)
        .bind(message.message.id())
        .execute(tx)
        .await
        .map_err(HandlerError::transient)?;
        if key.starts_with("poison") {
            return Err(HandlerError::permanent(
                messaging::Reason::HandlerFailed,
                format!("{key} is refused"),
            ));
        }
        Ok(())
    }
}

fn received(key: &str) -> Received {
    Received {
        message: Message::new(Some(key.to_owned()), b"x".to_vec())
            .with_header(header::TYPE, "ftgo.test.Step"),
        origin: Origin {
            topic: "ftgo.test".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
        },
        trace: None,
    }
}

async fn setup() -> Result<(TestDatabase, Idempotent<Recording>)> {
    let database = TestDatabase::create().await?;
    outbox::install(database.pool()).await?;
    sqlx::query(HANDLED).execute(database.pool()).await?;
    let handler = Idempotent::new(database.pool().clone(), "test-group", Recording).grouped(16);
    Ok((database, handler))
}

/// Rows of `handled`: (key, transaction) in key order.
async fn handled(pool: &PgPool) -> Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT key, tx FROM handled ORDER BY key, tx")
            .fetch_all(pool)
            .await?,
    )
}

#[tokio::test]
async fn messages_handled_at_once_share_a_transaction() -> Result<()> {
    let (database, handler) = setup().await?;
    let messages: Vec<Received> = (0..8).map(|i| received(&format!("order-{i}"))).collect();
    for result in join_all(messages.iter().map(|m| handler.handle(m))).await {
        result?;
    }
    let rows = handled(database.pool()).await?;
    ensure!(rows.len() == 8, "{rows:?}");
    let mut transactions: Vec<&String> = rows.iter().map(|(_, tx)| tx).collect();
    transactions.sort();
    transactions.dedup();
    ensure!(
        transactions.len() < 8,
        "8 messages at once ran in {} transactions: {rows:?}",
        transactions.len()
    );
    // One at a time, each has a transaction of its own.
    for i in 8..10 {
        handler.handle(&received(&format!("order-{i}"))).await?;
    }
    ensure!(handled(database.pool()).await?.len() == 10);
    Ok(())
}

#[tokio::test]
async fn a_failing_message_takes_no_other_messages_effects_with_it() -> Result<()> {
    let (database, handler) = setup().await?;
    let mut messages: Vec<Received> = (0..7).map(|i| received(&format!("order-{i}"))).collect();
    messages.insert(3, received("poison-1"));
    let results = join_all(messages.iter().map(|m| handler.handle(m))).await;
    for (message, result) in messages.iter().zip(&results) {
        match (message.message.key.as_deref(), result) {
            (Some("poison-1"), Err(HandlerError::Permanent { reason, .. })) => {
                ensure!(*reason == messaging::Reason::HandlerFailed, "{reason}");
            }
            (Some("poison-1"), other) => anyhow::bail!("the poison message ended {other:?}"),
            (key, other) => ensure!(other.is_ok(), "{key:?} ended {other:?}"),
        }
    }
    let rows = handled(database.pool()).await?;
    let keys: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
    let expected: Vec<String> = (0..7).map(|i| format!("order-{i}")).collect();
    ensure!(keys == expected, "effects {keys:?}");
    Ok(())
}

#[tokio::test]
async fn a_message_twice_in_one_batch_has_one_effect() -> Result<()> {
    let (database, handler) = setup().await?;
    let once = received("order-1");
    let messages = [once.clone(), received("order-2"), once.clone(), once];
    for result in join_all(messages.iter().map(|m| handler.handle(m))).await {
        result?;
    }
    let rows = handled(database.pool()).await?;
    let keys: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
    ensure!(keys == ["order-1", "order-2"], "effects {keys:?}");
    Ok(())
}

#[tokio::test]
async fn a_message_given_up_on_leaves_the_others_to_finish() -> Result<()> {
    let (database, handler) = setup().await?;
    let messages: Vec<Received> = (0..6).map(|i| received(&format!("order-{i}"))).collect();
    let abandoned = received("abandoned");
    // Its caller stops waiting while it waits for its turn (5 ms; every turn takes 10 ms).
    let given_up = tokio::time::timeout(Duration::from_millis(5), handler.handle(&abandoned));
    let (results, given_up) = tokio::join!(
        join_all(messages.iter().map(|m| handler.handle(m))),
        given_up
    );
    ensure!(given_up.is_err(), "the abandoned message finished in 5 ms");
    for result in results {
        result?;
    }
    let rows = handled(database.pool()).await?;
    let keys: Vec<&str> = rows.iter().map(|(key, _)| key.as_str()).collect();
    let expected: Vec<String> = (0..6).map(|i| format!("order-{i}")).collect();
    ensure!(keys == expected, "effects {keys:?}");
    Ok(())
}
