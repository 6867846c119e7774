//! The outbox and the polling relay over real PostgreSQL and Kafka: what commits is published
//! and what rolls back is not; concurrent writers and two relays keep every key's order; an
//! open transaction is never overtaken; an idle relay wakes for an append; the inbox gives one
//! effect per message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{EFFECTS_TABLE, Effects};
use kafka::KafkaPublisher;
use messaging::{Handler, Message, Received, header};
use outbox::{Idempotent, PollingRelay, RelayOutcome, RelaySettings};
use sqlx::PgPool;
use test_support::{TestDatabase, TestTopic, read_records, relay_publisher};
use tokio_util::sync::CancellationToken;

fn publisher() -> Result<KafkaPublisher> {
    relay_publisher("outbox-test")
}

async fn database() -> Result<TestDatabase> {
    let database = TestDatabase::create().await?;
    outbox::install(database.pool()).await?;
    Ok(database)
}

fn relay(pool: &PgPool, batch_size: i64) -> Result<PollingRelay<KafkaPublisher>> {
    let settings = RelaySettings {
        batch_size,
        ..RelaySettings::default()
    };
    Ok(PollingRelay::new(pool.clone(), publisher()?, settings))
}

fn sequence_message(key: &str, sequence: u32) -> Message {
    Message::new(Some(key.to_owned()), sequence.to_string().into_bytes())
        .with_header(header::TYPE, "ftgo.test.Step")
}

async fn outbox_rows(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?)
}

#[tokio::test]
async fn what_commits_is_published_as_it_was_and_what_rolls_back_is_not() -> Result<()> {
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("outbox_commit", 3).await?;

    let kept = sequence_message("order-1", 0).with_header(header::CORRELATION_ID, "saga-1");
    let mut tx = pool.begin().await?;
    outbox::append(&mut tx, topic.name(), &kept).await?;
    tx.commit().await?;
    let mut tx = pool.begin().await?;
    outbox::append(&mut tx, topic.name(), &sequence_message("order-2", 0)).await?;
    tx.rollback().await?;

    let relay = relay(pool, 100)?;
    ensure!(relay.relay_once().await? == RelayOutcome::Published(1));
    ensure!(relay.relay_once().await? == RelayOutcome::Idle);
    ensure!(outbox_rows(pool).await? == 0, "published rows are deleted");
    let records = read_records(topic.name(), 1, Duration::from_secs(30)).await?;
    let got = &records[0].message;
    ensure!(got.key == kept.key && got.payload == kept.payload);
    ensure!(
        got.headers == kept.headers,
        "{:?} != {:?}",
        got.headers,
        kept.headers
    );
    // The same id twice in the outbox would publish a duplicate: refused.
    let mut tx = pool.begin().await?;
    outbox::append(&mut tx, topic.name(), &kept).await?;
    ensure!(outbox::append(&mut tx, topic.name(), &kept).await.is_err());
    Ok(())
}

#[tokio::test]
async fn an_open_transaction_is_not_overtaken_and_an_unrelated_one_does_not_hold_back() -> Result<()>
{
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("outbox_open", 1).await?;
    let relay = relay(pool, 100)?;

    // A transaction that writes elsewhere and stays open does not hold the relay back.
    let mut unrelated = pool.begin().await?;
    sqlx::query("CREATE TEMPORARY TABLE scratch (n int)")
        .execute(&mut *unrelated)
        .await?;
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *unrelated)
        .await?;

    // The first writer appends and stays open; a second, later one appends and commits.
    let mut first = pool.begin().await?;
    outbox::append(&mut first, topic.name(), &sequence_message("order-1", 0)).await?;
    let mut second = pool.begin().await?;
    outbox::append(&mut second, topic.name(), &sequence_message("order-2", 0)).await?;
    second.commit().await?;
    ensure!(
        relay.relay_once().await? == RelayOutcome::Idle,
        "published past a transaction that is still open"
    );
    first.commit().await?;
    ensure!(relay.relay_once().await? == RelayOutcome::Published(2));
    let records = read_records(topic.name(), 2, Duration::from_secs(30)).await?;
    let keys: Vec<_> = records.iter().map(|r| r.message.key.clone()).collect();
    ensure!(
        keys == [Some("order-1".to_owned()), Some("order-2".to_owned())],
        "{keys:?}"
    );
    unrelated.rollback().await?;
    Ok(())
}

/// Writers serialize on the key's row (as a handler does by updating its aggregate), then
/// append the key's next sequence number.
async fn write(pool: &PgPool, topic: &str, key: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let sequence: i32 = sqlx::query_scalar(
        "INSERT INTO sequences (key, next) VALUES ($1, 1)
         ON CONFLICT (key) DO UPDATE SET next = sequences.next + 1
         RETURNING next - 1",
    )
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    outbox::append(&mut tx, topic, &sequence_message(key, sequence as u32)).await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_two_relays_keep_every_keys_order() -> Result<()> {
    const KEYS: usize = 40;
    const PER_KEY: usize = 50;
    let database = database().await?;
    let pool = database.pool().clone();
    sqlx::query("CREATE TABLE sequences (key text PRIMARY KEY, next int NOT NULL)")
        .execute(&pool)
        .await?;
    let topic = TestTopic::create("outbox_order", 6).await?;

    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay = relay(&pool, 50)?;
            let stop = stop.clone();
            Ok(tokio::spawn(async move {
                relay.run(stop.cancelled_owned()).await
            }))
        })
        .collect::<Result<_>>()?;
    // Eight writers, each writing every key in turn: a key's writes come from all of them.
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (pool, topic) = (pool.clone(), topic.name().to_owned());
            tokio::spawn(async move {
                for round in 0..(KEYS * PER_KEY / 8) {
                    let key = format!("order-{}", (round + writer * 5) % KEYS);
                    write(&pool, &topic, &key).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let records = read_records(topic.name(), KEYS * PER_KEY, Duration::from_secs(120)).await?;
    stop.cancel();
    let mut published = Vec::new();
    for relay in relays {
        published.push(relay.await?);
    }
    ensure!(outbox_rows(&pool).await? == 0, "rows left in the outbox");
    ensure!(
        published.iter().all(|n| *n > 0),
        "one relay did all the work: {published:?}"
    );
    let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
    for record in &records {
        let sequence = String::from_utf8_lossy(&record.message.payload).parse()?;
        by_key
            .entry(record.message.key.clone().context("keyed")?)
            .or_default()
            .push(sequence);
    }
    ensure!(by_key.len() == KEYS);
    for (key, sequences) in by_key {
        ensure!(
            sequences == (0..PER_KEY as u32).collect::<Vec<_>>(),
            "{key}: {sequences:?}"
        );
    }
    println!(
        "{} messages over {KEYS} keys, relays published {published:?}",
        KEYS * PER_KEY
    );
    Ok(())
}

#[tokio::test]
async fn a_message_delivered_twice_has_one_effect() -> Result<()> {
    let database = database().await?;
    let pool = database.pool();
    sqlx::query(EFFECTS_TABLE).execute(pool).await?;
    let handler = Arc::new(Idempotent::new(pool.clone(), "kitchen-service", Effects));
    let message = Received {
        message: sequence_message("order-1", 0),
        origin: messaging::Origin {
            topic: "ftgo.kitchen.commands".into(),
            partition: 0,
            offset: 7,
            timestamp_ms: None,
        },
        trace: None,
    };
    // Twice in a row, and twice at once.
    handler.handle(&message).await?;
    handler.handle(&message).await?;
    let other = Received {
        message: sequence_message("order-1", 1),
        ..message.clone()
    };
    let (a, b) = tokio::join!(handler.handle(&other), handler.handle(&other));
    a?;
    b?;
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await?;
    ensure!(effects == 2, "{effects} effects of 2 messages");
    // Another group handles the same message once for itself.
    Idempotent::new(pool.clone(), "accounting-service", Effects)
        .handle(&message)
        .await?;
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await?;
    ensure!(effects == 3);
    ensure!(
        outbox::Inbox::expire(pool, Duration::from_secs(3600)).await? == 0,
        "fresh entries expired"
    );
    ensure!(outbox::Inbox::expire(pool, Duration::ZERO).await? == 3);
    Ok(())
}

/// An idle relay does not poll: it waits for the notification every appending transaction
/// sends at commit, and publishes at once. Its fallback poll here is a minute away, so only
/// the notification can wake it within the test's bound.
#[tokio::test]
async fn an_idle_relay_wakes_when_an_append_commits() -> Result<()> {
    let database = database().await?;
    let pool = database.pool().clone();
    let topic = TestTopic::create("outbox_wake", 1).await?;
    let relay = PollingRelay::new(
        pool.clone(),
        publisher()?,
        RelaySettings {
            idle_wait: Duration::from_secs(60),
            ..RelaySettings::default()
        },
    );
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    // Let it find the outbox empty and settle into waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for sequence in 0..3 {
        let mut tx = pool.begin().await?;
        outbox::append(
            &mut tx,
            topic.name(),
            &sequence_message("order-1", sequence),
        )
        .await?;
        tx.commit().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = read_records(topic.name(), 3, Duration::from_secs(5))
        .await
        .context("the relay did not wake for the appends")?;
    ensure!(records.len() == 3);
    stop.cancel();
    ensure!(running.await? == 3);
    Ok(())
}

/// A key whose earlier row this relay cannot claim (another claim holds it, or held it and
/// rolled back between the relay's look at the outbox and its lock on the key) waits: its
/// later rows are not published ahead of it.
#[tokio::test]
async fn a_later_row_never_goes_ahead_of_an_earlier_one_held_elsewhere() -> Result<()> {
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("outbox_held", 1).await?;
    let relay = relay(pool, 100)?;
    let mut tx = pool.begin().await?;
    for sequence in 0..2 {
        outbox::append(
            &mut tx,
            topic.name(),
            &sequence_message("order-1", sequence),
        )
        .await?;
    }
    outbox::append(&mut tx, topic.name(), &sequence_message("order-2", 0)).await?;
    tx.commit().await?;

    // Another session holds order-1's first row (but not the key's lock).
    let mut other = pool.begin().await?;
    sqlx::query(
        "SELECT FROM outbox WHERE position = (SELECT min(position) FROM outbox) FOR UPDATE",
    )
    .execute(&mut *other)
    .await?;
    let outcome = relay.relay_once().await?;
    ensure!(
        outcome == RelayOutcome::Published(1),
        "only order-2 may go while order-1's first row is held: {outcome:?}"
    );
    other.rollback().await?;
    ensure!(relay.relay_once().await? == RelayOutcome::Published(2));
    let records = read_records(topic.name(), 3, Duration::from_secs(30)).await?;
    let order: Vec<_> = records
        .iter()
        .map(|r| {
            let key = r.message.key.clone().unwrap_or_default();
            format!("{key}:{}", String::from_utf8_lossy(&r.message.payload))
        })
        .collect();
    ensure!(
        order == ["order-2:0", "order-1:0", "order-1:1"],
        "{order:?}"
    );
    Ok(())
}
