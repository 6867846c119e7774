//! Both relays under rows that can never be published, against the real Kafka and
//! PostgreSQL: such a row is moved aside with its reason, the other keys flow on, the later
//! rows of its key wait (never published ahead of it), and the operator's retry and discard
//! let the key go on in order. Every record of the topics is checked: each key's exact
//! sequence. Each scenario runs with the polling relay and with the log-tailing relay.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use messaging::{Message, header};
use outbox::failed::{self, Selection};
use outbox::{OutboxError, PollingRelay, RelaySettings, TailingRelay, TailingSettings};
use sqlx::PgPool;
use test_support::{Platform, TestDatabase, TestTopic, relay_publisher, unique_suffix, wait_until};
use tokio_util::sync::CancellationToken;

fn step(key: usize, sequence: u32, payload: Vec<u8>) -> Message {
    Message::new(Some(format!("order-{key}")), payload)
        .with_header(header::TYPE, "ftgo.test.Step")
        .with_header("sequence", sequence.to_string())
}

fn small(key: usize, sequence: u32) -> Message {
    step(key, sequence, sequence.to_string().into_bytes())
}

/// Bytes that lz4 cannot shrink.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Each key's sequence numbers as the topic holds them, every record in order.
fn sequences(topic: &str) -> Result<BTreeMap<String, Vec<u32>>> {
    let records = kafka::read_topic(
        &Platform::from_env().bootstrap_servers,
        topic,
        Duration::from_secs(60),
    )?;
    let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for record in records {
        let sequence = record
            .message
            .headers
            .get("sequence")
            .context("a record without its sequence")?
            .parse()?;
        by_key
            .entry(record.message.key.context("a record without a key")?)
            .or_default()
            .push(sequence);
    }
    Ok(by_key)
}

/// Checks every record of `key` in topic order: each is `wanted`'s next one or a copy of one
/// already seen (a relay that failed part way publishes again what it published: at least
/// once), never one that overtakes an earlier record not yet seen; and all of `wanted` is there,
/// and nothing else.
fn expect(sequences: &BTreeMap<String, Vec<u32>>, key: usize, wanted: &[u32]) -> Result<()> {
    let got = sequences
        .get(&format!("order-{key}"))
        .map_or(&[][..], Vec::as_slice);
    let mut seen = 0;
    for sequence in got {
        let index = wanted.iter().position(|w| w == sequence);
        ensure!(
            index.is_some_and(|i| i <= seen),
            "order-{key}: {sequence} out of place in {got:?}, expected {wanted:?}"
        );
        if index == Some(seen) {
            seen += 1;
        }
    }
    ensure!(
        seen == wanted.len(),
        "order-{key}: {got:?}, expected {wanted:?}"
    );
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Polling,
    Tailing,
}

/// A relay running in the background.
struct Relaying {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    slot: Option<TailingSettings>,
    pool: PgPool,
}

impl Relaying {
    async fn start(database: &TestDatabase, purpose: &str, kind: Kind) -> Result<Self> {
        let pool = database.pool().clone();
        let publisher = relay_publisher(purpose)?;
        let stop = CancellationToken::new();
        let until = stop.clone().cancelled_owned();
        let (task, slot) = match kind {
            Kind::Polling => {
                let relay = PollingRelay::new(
                    pool.clone(),
                    publisher,
                    RelaySettings {
                        batch_size: 500,
                        ..RelaySettings::default()
                    },
                );
                let task = tokio::spawn(async move {
                    relay.run(until).await;
                });
                (task, None)
            }
            Kind::Tailing => {
                let suffix = unique_suffix();
                let settings = TailingSettings::new(
                    &database.url(),
                    &format!("test_slot_{suffix}"),
                    &format!("test_publication_{suffix}"),
                );
                let relay = TailingRelay::new(pool.clone(), publisher, settings.clone());
                let task = tokio::spawn(async move {
                    relay.run(until).await.expect("the tailing relay failed");
                });
                database.wait_until_streaming(&settings.slot).await?;
                (task, Some(settings))
            }
        };
        Ok(Self {
            stop,
            task,
            slot,
            pool,
        })
    }

    async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.task.await?;
        if let Some(settings) = &self.slot {
            outbox::drop_slot(&self.pool, settings).await?;
        }
        Ok(())
    }
}

/// Waits until `waiting` rows wait (in the outbox, or set aside behind a failed row) and
/// `failed` rows are moved aside.
async fn settled(pool: &PgPool, waiting: i64, failed: i64) -> Result<()> {
    wait_until(
        &format!("{waiting} rows waiting and {failed} moved aside"),
        || async {
            let (now_waiting, now_failed): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM outbox)
                        + (SELECT count(*) FROM outbox_failed WHERE waiting_behind IS NOT NULL),
                        (SELECT count(*) FROM outbox_failed WHERE waiting_behind IS NULL)",
            )
            .fetch_one(pool)
            .await?;
            Ok(now_waiting == waiting && now_failed == failed)
        },
    )
    .await
}

const KEYS: usize = 40;
const PER_KEY: u32 = 50;

/// One row for a topic that does not exist and one larger than the producer sends (written
/// around `append`, which refuses it, as by an older version): each is moved aside with its
/// reason, the 38 other keys are published whole and exactly once, the two keys stop at their
/// bad rows, and nothing is republished in a loop. Then the operator creates the topic and
/// retries (the key goes on in order), and discards the other (its key goes on without it).
#[tokio::test]
async fn polling_a_row_that_can_never_be_published_moves_aside_and_only_its_key_waits() -> Result<()>
{
    a_row_that_can_never_be_published_moves_aside_and_only_its_key_waits(Kind::Polling).await
}

#[tokio::test]
async fn tailing_a_row_that_can_never_be_published_moves_aside_and_only_its_key_waits() -> Result<()>
{
    a_row_that_can_never_be_published_moves_aside_and_only_its_key_waits(Kind::Tailing).await
}

async fn a_row_that_can_never_be_published_moves_aside_and_only_its_key_waits(
    kind: Kind,
) -> Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool();
    outbox::install(pool).await?;
    let topic = TestTopic::create("outbox_bad_rows", 6).await?;
    let missing = TestTopic::unique_name("outbox_missing");
    let (bad_key, bad_at) = (0, 10);
    let (big_key, big_at) = (1, 20);

    // The producer's limit is refused at the append, with the limit named.
    let mut tx = pool.begin().await?;
    let too_large = step(big_key, big_at, vec![7; kafka::MAX_MESSAGE_BYTES + 1]);
    let refusal = outbox::append(&mut tx, topic.name(), &too_large).await;
    ensure!(
        matches!(&refusal, Err(OutboxError::TooLarge { limit, .. }) if *limit == kafka::MAX_MESSAGE_BYTES),
        "{refusal:?}"
    );
    let text = refusal.expect_err("refused").to_string();
    ensure!(
        text.contains("1000000") && text.contains("message.max.bytes"),
        "{text}"
    );
    tx.rollback().await?;

    let relay = Relaying::start(&database, "bad-rows", kind).await?;
    for sequence in 0..PER_KEY {
        let mut tx = pool.begin().await?;
        for key in 0..KEYS {
            let message = small(key, sequence);
            if (key, sequence) == (bad_key, bad_at) {
                outbox::append(&mut tx, &missing, &message).await?;
            } else if (key, sequence) == (big_key, big_at) {
                let headers: Vec<(&str, &str)> = too_large.headers.iter().collect();
                sqlx::query(
                    "INSERT INTO outbox (message_id, topic, key, headers, payload)
                     VALUES ($1, $2, $3, $4::jsonb, $5)",
                )
                .bind(too_large.id())
                .bind(topic.name())
                .bind(&too_large.key)
                .bind(serde_json::to_string(&headers)?)
                .bind(&too_large.payload)
                .execute(&mut *tx)
                .await?;
            } else {
                outbox::append(&mut tx, topic.name(), &message).await?;
            }
        }
        tx.commit().await?;
    }

    let waiting_bad = i64::from(PER_KEY - bad_at - 1);
    let waiting_big = i64::from(PER_KEY - big_at - 1);
    settled(pool, waiting_bad + waiting_big, 2).await?;
    let published = sequences(topic.name())?;
    let whole: Vec<u32> = (0..PER_KEY).collect();
    for key in 2..KEYS {
        expect(&published, key, &whole)?;
    }
    expect(&published, bad_key, &whole[..bad_at as usize])?;
    expect(&published, big_key, &whole[..big_at as usize])?;
    // No loop republishing what waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        sequences(topic.name())? == published,
        "the topic changed while nothing could be published"
    );

    let aside = failed::list(pool).await?;
    ensure!(aside.len() == 2, "{aside:?}");
    let (bad, big) = (&aside[0], &aside[1]);
    ensure!(
        bad.topic == missing && bad.reason.contains("does not exist") && bad.waiting == waiting_bad,
        "{bad:?}"
    );
    ensure!(
        big.reason.contains("message.max.bytes")
            && big.waiting == waiting_big
            && big.message_type.as_deref() == Some("ftgo.test.Step"),
        "{big:?}"
    );

    // The operator creates the missing topic and retries its row: it goes first, then the
    // rows that waited, in order.
    let created = TestTopic::create_named(missing.clone(), 1, &[]).await?;
    ensure!(failed::retry(pool, &Selection::Positions(vec![bad.position])).await? == 1);
    settled(pool, waiting_big, 1).await?;
    let published = sequences(topic.name())?;
    let without_bad: Vec<u32> = (0..PER_KEY).filter(|s| *s != bad_at).collect();
    expect(&published, bad_key, &without_bad)?;
    expect(&sequences(created.name())?, bad_key, &[bad_at])?;

    // Retrying the large one changes nothing (moved aside again); discarding it lets its key
    // go on without it.
    ensure!(failed::retry(pool, &Selection::All).await? == 1);
    settled(pool, waiting_big, 1).await?;
    ensure!(failed::discard(pool, &Selection::All).await? == 1);
    settled(pool, 0, 0).await?;
    let published = sequences(topic.name())?;
    let without_big: Vec<u32> = (0..PER_KEY).filter(|s| *s != big_at).collect();
    expect(&published, big_key, &without_big)?;
    for key in 2..KEYS {
        expect(&published, key, &whole)?;
    }
    relay.stop().await
}

/// A record the broker itself refuses (larger than the topic's `max.message.bytes`, though
/// within the producer's limit) fails after it was sent, with later records of its key in the
/// same batch acknowledged. The batch's Kafka transaction is aborted, so none of them shows:
/// the key's records stop exactly before the refused one. Raising the topic's limit and
/// retrying publishes the rest of the key in order.
#[tokio::test]
async fn polling_a_record_the_broker_refuses_never_lets_a_later_record_of_its_key_show_first()
-> Result<()> {
    a_record_the_broker_refuses_never_lets_a_later_record_of_its_key_show_first(Kind::Polling).await
}

#[tokio::test]
async fn tailing_a_record_the_broker_refuses_never_lets_a_later_record_of_its_key_show_first()
-> Result<()> {
    a_record_the_broker_refuses_never_lets_a_later_record_of_its_key_show_first(Kind::Tailing).await
}

async fn a_record_the_broker_refuses_never_lets_a_later_record_of_its_key_show_first(
    kind: Kind,
) -> Result<()> {
    const KEYS: usize = 20;
    const PER_KEY: u32 = 30;
    let database = TestDatabase::create().await?;
    let pool = database.pool();
    outbox::install(pool).await?;
    let topic = TestTopic::create_named(
        TestTopic::unique_name("outbox_refused"),
        3,
        &[("max.message.bytes", "8000")],
    )
    .await?;
    let (refused_key, refused_at) = (3, 5);
    let relay = Relaying::start(&database, "refused", kind).await?;
    for sequence in 0..PER_KEY {
        let mut tx = pool.begin().await?;
        for key in 0..KEYS {
            let message = if (key, sequence) == (refused_key, refused_at) {
                step(key, sequence, incompressible(20_000))
            } else {
                small(key, sequence)
            };
            outbox::append(&mut tx, topic.name(), &message).await?;
        }
        tx.commit().await?;
    }

    let waiting = i64::from(PER_KEY - refused_at - 1);
    settled(pool, waiting, 1).await?;
    let published = sequences(topic.name())?;
    let whole: Vec<u32> = (0..PER_KEY).collect();
    for key in (0..KEYS).filter(|k| *k != refused_key) {
        expect(&published, key, &whole)?;
    }
    expect(&published, refused_key, &whole[..refused_at as usize])?;
    let aside = failed::list(pool).await?;
    ensure!(
        aside.len() == 1 && aside[0].reason.to_lowercase().contains("too large"),
        "{aside:?}"
    );

    topic.set_config("max.message.bytes", "1000000").await?;
    ensure!(failed::retry(pool, &Selection::All).await? == 1);
    settled(pool, 0, 0).await?;
    let published = sequences(topic.name())?;
    for key in 0..KEYS {
        expect(&published, key, &whole)?;
    }
    relay.stop().await
}
