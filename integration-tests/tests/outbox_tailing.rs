//! The log-tailing relay over real PostgreSQL logical replication and Kafka: commit order,
//! nothing published that rolled back, rows cleaned up, a restart resumes without loss, and an
//! idle outbox does not make the slot hold back the WAL other tables write.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use messaging::{Message, Received, header};
use outbox::{TailingRelay, TailingSettings};
use sqlx::PgPool;
use test_support::{TestDatabase, TestTopic, read_records, unique_suffix};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

async fn database() -> Result<TestDatabase> {
    let database = TestDatabase::create().await?;
    outbox::install(database.pool()).await?;
    Ok(database)
}

fn settings(database: &TestDatabase) -> TailingSettings {
    let suffix = unique_suffix();
    TailingSettings::new(
        &database.url(),
        &format!("test_slot_{suffix}"),
        &format!("test_publication_{suffix}"),
    )
}

/// A running relay and how to stop it.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<u64, outbox::OutboxError>>,
}

impl Running {
    async fn stop(self) -> Result<u64> {
        self.stop.cancel();
        Ok(self.task.await??)
    }
}

async fn start(database: &TestDatabase, settings: &TailingSettings) -> Result<Running> {
    let publisher = test_support::relay_publisher("tailing-test")?;
    let relay = TailingRelay::new(database.pool().clone(), publisher, settings.clone());
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    // Streaming: the relay first publishes what the table holds, then reads the slot.
    database.wait_until_streaming(&settings.slot).await?;
    Ok(Running { stop, task })
}

fn step(key: &str, sequence: u32) -> Message {
    Message::new(Some(key.to_owned()), sequence.to_string().into_bytes())
        .with_header(header::TYPE, "ftgo.test.Step")
}

async fn append_committed(pool: &PgPool, topic: &str, message: &Message) -> Result<()> {
    let mut tx = pool.begin().await?;
    outbox::append(&mut tx, topic, message).await?;
    tx.commit().await?;
    Ok(())
}

async fn wait_until_empty(pool: &PgPool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await?;
        if rows == 0 {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{rows} published rows not cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn messages_are_published_in_commit_order_and_rolled_back_ones_never() -> Result<()> {
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("tailing_order", 1).await?;
    let settings = settings(&database);
    let relay = start(&database, &settings).await?;

    // Appended first, committed last.
    let mut early = pool.begin().await?;
    outbox::append(&mut early, topic.name(), &step("order-1", 1)).await?;
    append_committed(pool, topic.name(), &step("order-2", 0)).await?;
    let mut rolled_back = pool.begin().await?;
    outbox::append(&mut rolled_back, topic.name(), &step("order-3", 0)).await?;
    rolled_back.rollback().await?;
    early.commit().await?;

    let records = read_records(topic.name(), 2, Duration::from_secs(30)).await?;
    let keys: Vec<_> = records
        .iter()
        .map(|r| r.message.key.clone().unwrap_or_default())
        .collect();
    ensure!(
        keys == ["order-2", "order-1"],
        "not in commit order: {keys:?}"
    );
    ensure!(records[1].message.headers.get(header::TYPE) == Some("ftgo.test.Step"));
    wait_until_empty(pool).await?;
    // Nothing more comes (the rolled-back message, or the deletes).
    append_committed(pool, topic.name(), &step("order-4", 0)).await?;
    let records = read_records(topic.name(), 3, Duration::from_secs(30)).await?;
    ensure!(
        records[2].message.key.as_deref() == Some("order-4"),
        "{records:?}"
    );
    ensure!(relay.stop().await? == 3);
    outbox::drop_slot(pool, &settings).await?;
    Ok(())
}

fn sequences(records: &[Received]) -> Result<HashMap<String, Vec<u32>>> {
    let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
    for record in records {
        by_key
            .entry(record.message.key.clone().context("keyed")?)
            .or_default()
            .push(String::from_utf8_lossy(&record.message.payload).parse()?);
    }
    Ok(by_key)
}

#[tokio::test]
async fn a_restart_resumes_from_the_confirmed_position_without_loss() -> Result<()> {
    const KEYS: u32 = 10;
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("tailing_restart", 3).await?;
    let settings = settings(&database);

    let relay = start(&database, &settings).await?;
    for sequence in 0..20 {
        for key in 0..KEYS {
            append_committed(pool, topic.name(), &step(&format!("order-{key}"), sequence)).await?;
        }
    }
    read_records(topic.name(), 200, Duration::from_secs(30)).await?;
    relay.stop().await?;
    // Written while no relay runs: the slot keeps them.
    for sequence in 20..30 {
        for key in 0..KEYS {
            append_committed(pool, topic.name(), &step(&format!("order-{key}"), sequence)).await?;
        }
    }
    let relay = start(&database, &settings).await?;
    read_records(topic.name(), 300, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay.stop().await?;
    // Every record: all 300 there, no key's record before the first of an earlier one. A clean
    // restart normally publishes nothing twice, but a session that failed on a loaded machine
    // resumes from the confirmed position (at least once), so copies are counted, not refused.
    let all = kafka::read_topic(
        &test_support::Platform::from_env().bootstrap_servers,
        topic.name(),
        Duration::from_secs(30),
    )?;
    let steps = all
        .iter()
        .map(|r| {
            let sequence: u32 = String::from_utf8_lossy(&r.message.payload).parse()?;
            Ok((r.message.key.as_deref().unwrap_or_default(), sequence))
        })
        .collect::<Result<Vec<_>>>()?;
    let copies = test_support::check_per_key_order(steps, KEYS as usize, 30)?;
    println!(
        "restart: {} records for 300 messages ({copies} copies)",
        all.len()
    );
    wait_until_empty(pool).await?;
    outbox::drop_slot(pool, &settings).await?;
    Ok(())
}

#[tokio::test]
async fn an_idle_outbox_does_not_hold_back_the_wal() -> Result<()> {
    let database = database().await?;
    let pool = database.pool();
    let settings = settings(&database);
    let relay = start(&database, &settings).await?;
    sqlx::query("CREATE TABLE busy (n int, filler text)")
        .execute(pool)
        .await?;
    // About 30 MB of WAL from another table while the outbox stays idle.
    for _ in 0..10 {
        sqlx::query("INSERT INTO busy SELECT n, repeat('x', 200) FROM generate_series(1, 10000) n")
            .execute(pool)
            .await?;
    }
    let written: i64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .fetch_one(pool)
            .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let lag = loop {
        let confirmed: Option<i64> = sqlx::query_scalar(
            "SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint
             FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&settings.slot)
        .fetch_one(pool)
        .await?;
        let lag = written - confirmed.unwrap_or(0);
        if lag < 1 << 20 || tokio::time::Instant::now() > deadline {
            break lag;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    relay.stop().await?;
    ensure!(
        lag < 1 << 20,
        "the slot lags {lag} bytes behind an idle outbox"
    );
    println!("idle outbox: the slot confirmed up to {lag} bytes behind the WAL written");
    outbox::drop_slot(pool, &settings).await?;
    Ok(())
}

/// A slot that is gone (dropped by someone, or invalidated) is made again, and the rows
/// appended while it was gone, which its stream never brings, are published first, in order,
/// whatever their age; nothing unpublished is deleted.
#[tokio::test]
async fn rows_appended_while_the_slot_was_gone_are_published_in_order() -> Result<()> {
    const KEYS: u32 = 10;
    let database = database().await?;
    let pool = database.pool();
    let topic = TestTopic::create("tailing_slot_gone", 3).await?;
    let settings = settings(&database);
    let relay = start(&database, &settings).await?;
    for sequence in 0..10 {
        for key in 0..KEYS {
            append_committed(pool, topic.name(), &step(&format!("order-{key}"), sequence)).await?;
        }
    }
    read_records(topic.name(), 100, Duration::from_secs(30)).await?;
    // Everything published is deleted before the stop: a row published but not yet deleted
    // would be published again (at least once) from the new slot's table, which is not what
    // this test is about.
    wait_until_empty(pool).await?;
    relay.stop().await?;
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&settings.slot)
        .execute(pool)
        .await?;
    for sequence in 10..30 {
        for key in 0..KEYS {
            append_committed(pool, topic.name(), &step(&format!("order-{key}"), sequence)).await?;
        }
    }
    // Older than the hour after which the relay used to sweep rows away unpublished.
    sqlx::query("UPDATE outbox SET created_at = created_at - interval '2 hours'")
        .execute(pool)
        .await?;
    let relay = start(&database, &settings).await?;
    for sequence in 30..40 {
        for key in 0..KEYS {
            append_committed(pool, topic.name(), &step(&format!("order-{key}"), sequence)).await?;
        }
    }
    let records = read_records(topic.name(), 400, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay.stop().await?;
    let all = read_records(topic.name(), 400, Duration::from_secs(30)).await?;
    ensure!(
        all.len() == records.len() && all.len() == 400,
        "{} records",
        all.len()
    );
    for (key, sequence) in sequences(&records)? {
        ensure!(
            sequence == (0..40).collect::<Vec<_>>(),
            "{key}: {sequence:?}"
        );
    }
    wait_until_empty(pool).await?;
    outbox::drop_slot(pool, &settings).await?;
    Ok(())
}
