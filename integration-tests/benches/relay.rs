//! The relays' throughput and latency, against baselines measured in the same run.
//!
//! Needs the local platform (`deploy/local/up`). Run: `cargo bench -p integration-tests --bench relay`.
//!
//! - Kafka: `kafka-producer-perf-test`, MESSAGES records of 300 B, `acks=all`, idempotent.
//! - PostgreSQL: MESSAGES outbox appends of 300 B, 100 per transaction, 4 writers.
//! - Polling relay: the same MESSAGES rows drained by one relay (publish, acknowledge, delete).
//! - Log-tailing relay: MESSAGES rows written after its slot was made, read from the stream
//!   and published, from connecting to the last acknowledgement.
//! - Latency: 4 writers append one message per transaction at 1,000 messages/s in all for
//!   LATENCY_SECONDS while the relay runs; a consumer measures append-to-receipt time (an upper
//!   bound of outbox-to-topic: it includes the consumer's fetch).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::{
    Delivery, Message, PublishError, Publisher, Received, TransactionalPublisher, handler_fn,
};
use outbox::{PollingRelay, RelayOutcome, RelaySettings, TailingRelay, TailingSettings};
use sqlx::PgPool;
use test_support::{Platform, TestDatabase, TestTopic, unique_group};

const MESSAGES: usize = 50_000;
const PAYLOAD: usize = 300;
const WRITERS: usize = 4;
const LATENCY_RATE: u64 = 1_000;
const LATENCY_SECONDS: u64 = 10;
const APPENDED_AT: &str = "bench_appended_ns";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn message(n: usize) -> Message {
    Message::new(Some(format!("order-{}", n % 1_000)), vec![b'x'; PAYLOAD])
        .with_header(APPENDED_AT, now_ns().to_string())
}

/// Kafka's producer perf tool: records per second.
fn kafka_rate(topic: &str) -> Result<f64> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/kafka-tool");
    let bootstrap = Platform::from_env().bootstrap_servers;
    let output = Command::new(tool)
        .args(["kafka-producer-perf-test", "--topic", topic])
        .args([
            "--num-records",
            &MESSAGES.to_string(),
            "--record-size",
            &PAYLOAD.to_string(),
        ])
        .args(["--throughput", "-1", "--producer-props"])
        .args([
            format!("bootstrap.servers={bootstrap}"),
            "acks=all".into(),
            "enable.idempotence=true".into(),
        ])
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    let summary = stdout
        .lines()
        .rfind(|l| l.contains("records/sec"))
        .context("no summary from kafka-producer-perf-test")?;
    let rate = summary
        .split(", ")
        .nth(1)
        .and_then(|part| part.split(' ').next())
        .context("no rate in the summary")?;
    Ok(rate.parse()?)
}

/// Appends `count` messages, 100 per transaction, from WRITERS connections: messages per second.
async fn append_rate(pool: &PgPool, topic: &str, count: usize) -> Result<f64> {
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (pool, topic) = (pool.clone(), topic.to_owned());
            tokio::spawn(async move {
                for batch in (writer * 100..count).step_by(WRITERS * 100) {
                    let mut tx = pool.begin().await?;
                    for n in batch..(batch + 100).min(count) {
                        outbox::append(&mut tx, &topic, &message(n)).await?;
                    }
                    tx.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Drains the outbox with one relay: messages per second.
async fn relay_rate(relay: &PollingRelay<KafkaPublisher>, count: usize) -> Result<f64> {
    let started = Instant::now();
    let mut published = 0;
    while published < count {
        match relay.relay_once().await? {
            RelayOutcome::Published(n) => published += n,
            RelayOutcome::Idle => anyhow::bail!("the outbox ran dry at {published}"),
            RelayOutcome::MovedAside { moved, .. } => {
                anyhow::bail!("{moved} rows could not be published")
            }
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1e6
}

/// Append-to-receipt latency at a steady LATENCY_RATE: (p50, p99, max) in milliseconds.
async fn latency(pool: &PgPool, relay: Relay) -> Result<Latency> {
    let topic = TestTopic::create("bench_relay_latency", 12).await?;
    let platform = Platform::from_env();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    // Append to the record's timestamp (set by the relay's producer as it sends).
    let sent: Arc<Mutex<Vec<u64>>> = Arc::default();
    // Stops the relay and the consumer.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = ConsumerRunner::new(&ConsumerSettings::new(
        &platform.bootstrap_servers,
        &unique_group("bench-latency"),
        &[topic.name()],
    ))?;
    let consumer = {
        let (seen, sent) = (seen.clone(), sent.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(runner.run(
            handler_fn(move |received: Received| {
                let at = received
                    .message
                    .headers
                    .get(APPENDED_AT)
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(at) = at {
                    seen.lock().expect("lock").push(now_ns().saturating_sub(at));
                    if let Some(ms) = received.origin.timestamp_ms {
                        let sent_ns = (ms as u64).saturating_mul(1_000_000);
                        sent.lock().expect("lock").push(sent_ns.saturating_sub(at));
                    }
                }
                async { Ok(()) }
            }),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ))
    };
    let relaying = {
        let mut stopped = stopped.clone();
        let until = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        match relay {
            Relay::Polling(relay) => tokio::spawn(async move {
                relay.run(until).await;
            }),
            Relay::Tailing(relay) => tokio::spawn(async move {
                relay.run(until).await.expect("the tailing relay failed");
            }),
        }
    };
    // Warm up: the consumer has joined its group once a first message comes through.
    let mut tx = pool.begin().await?;
    outbox::append(&mut tx, topic.name(), &message(0)).await?;
    tx.commit().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().expect("lock").is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the consumer never got the warm-up message"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.lock().expect("lock").clear();
    sent.lock().expect("lock").clear();

    let total = (LATENCY_RATE * LATENCY_SECONDS) as usize;
    let per_writer_interval = Duration::from_micros(1_000_000 * WRITERS as u64 / LATENCY_RATE);
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (pool, topic) = (pool.clone(), topic.name().to_owned());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(per_writer_interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                for n in (writer..total).step_by(WRITERS) {
                    ticks.tick().await;
                    let mut tx = pool.begin().await?;
                    outbox::append(&mut tx, &topic, &message(n)).await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().expect("lock").len() < total {
        anyhow::ensure!(Instant::now() < deadline, "messages missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true)?;
    consumer.await??;
    relaying.await?;
    let mut latencies = seen.lock().expect("lock").clone();
    latencies.sort_unstable();
    let max = *latencies.last().context("no latencies")? as f64 / 1e6;
    let mut to_send = sent.lock().expect("lock").clone();
    to_send.sort_unstable();
    Ok(Latency {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max,
        measured: latencies.len(),
        send_p50: percentile(&to_send, 0.5),
        send_p99: percentile(&to_send, 0.99),
    })
}

/// Append-to-receipt latency (an upper bound of outbox-to-topic), and append-to-send (the
/// record's timestamp, millisecond resolution), in milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    measured: usize,
    send_p50: f64,
    send_p99: f64,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} messages (append-to-send p50 {:.1} ms, p99 {:.1} ms)",
            self.p50, self.p99, self.max, self.measured, self.send_p50, self.send_p99
        )
    }
}

enum Relay {
    Polling(PollingRelay<KafkaPublisher>),
    Tailing(TailingRelay<Counting>),
}

/// Counts published messages (acknowledged, and committed with their Kafka transaction), so
/// the tailing relay's progress can be timed.
#[derive(Clone)]
struct Counting {
    inner: KafkaPublisher,
    acknowledged: Arc<AtomicUsize>,
    /// Acknowledged in the open transaction.
    pending: Arc<AtomicUsize>,
}

impl Counting {
    fn new(inner: KafkaPublisher, acknowledged: Arc<AtomicUsize>) -> Self {
        Self {
            inner,
            acknowledged,
            pending: Arc::default(),
        }
    }
}

impl Publisher for Counting {
    async fn publish(&self, topic: &str, message: &Message) -> Result<Delivery, PublishError> {
        let delivery = self.inner.publish(topic, message).await?;
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(delivery)
    }
}

impl TransactionalPublisher for Counting {
    async fn check(&self, topic: &str, message: &Message) -> Result<(), PublishError> {
        self.inner.check(topic, message).await
    }

    async fn begin(&self) -> Result<(), PublishError> {
        self.pending.store(0, Ordering::Relaxed);
        self.inner.begin().await
    }

    async fn commit(&self) -> Result<(), PublishError> {
        self.inner.commit().await?;
        let committed = self.pending.swap(0, Ordering::Relaxed);
        self.acknowledged.fetch_add(committed, Ordering::Relaxed);
        Ok(())
    }

    async fn abort(&self) -> Result<(), PublishError> {
        self.pending.store(0, Ordering::Relaxed);
        self.inner.abort().await
    }
}

/// Publishes `count` messages already in the outbox with the tailing relay (its slot made
/// before they were written): messages per second, from connecting to the last
/// acknowledgement.
async fn tailing_rate(pool: &PgPool, settings: &TailingSettings, count: usize) -> Result<f64> {
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let publisher = Counting::new(
        test_support::relay_publisher("bench-tailing")?,
        acknowledged.clone(),
    );
    let relay = TailingRelay::new(pool.clone(), publisher, settings.clone());
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let running = tokio::spawn(async move {
        relay
            .run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.load(Ordering::Relaxed) < count {
        anyhow::ensure!(Instant::now() < deadline, "the tailing relay stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    stop.send(true)?;
    running.await??;
    Ok(rate)
}

#[tokio::main]
async fn main() -> Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().clone();
    outbox::install(&pool).await?;
    let platform = Platform::from_env();
    // The polling relay publishes each batch in a Kafka transaction, as the services' does.
    let transactional = KafkaPublisher::transactional(
        &platform.bootstrap_servers,
        "bench-relay",
        &format!("bench-relay-{}", uuid::Uuid::new_v4()),
    )?;
    let polling = PollingRelay::new(pool.clone(), transactional, RelaySettings::default());

    let baseline_topic = TestTopic::create("bench_relay_baseline", 12).await?;
    let kafka = kafka_rate(baseline_topic.name())?;
    let topic = TestTopic::create("bench_relay", 12).await?;

    // Polling: fill, then drain.
    let postgres = append_rate(&pool, topic.name(), MESSAGES).await?;
    let polled = relay_rate(&polling, MESSAGES).await?;
    let polling_latency = latency(&pool, Relay::Polling(polling)).await?;

    // Tailing: the slot first, then fill, then read the stream.
    let settings = TailingSettings::new(&database.url(), "bench_slot", "bench_publication");
    TailingRelay::new(
        pool.clone(),
        test_support::relay_publisher("bench-tailing-prepare")?,
        settings.clone(),
    )
    .prepare()
    .await?;
    append_rate(&pool, topic.name(), MESSAGES).await?;
    let tailed = tailing_rate(&pool, &settings, MESSAGES).await?;
    let tailing = TailingRelay::new(
        pool.clone(),
        Counting::new(
            test_support::relay_publisher("bench-tailing-latency")?,
            Arc::default(),
        ),
        settings.clone(),
    );
    let tailing_latency = latency(&pool, Relay::Tailing(tailing)).await?;
    outbox::drop_slot(&pool, &settings).await?;

    println!("outbox relay benchmark: {MESSAGES} messages of {PAYLOAD} B, 12 partitions");
    println!("kafka-producer-perf-test (acks=all)  {kafka:>10.0} msg/s");
    println!("outbox appends (100/tx, {WRITERS} writers)   {postgres:>10.0} msg/s");
    println!(
        "polling relay (batches of 1,000)     {polled:>10.0} msg/s   {:.2} of Kafka, {:.2} of the appends",
        polled / kafka,
        polled / postgres
    );
    println!(
        "log-tailing relay                    {tailed:>10.0} msg/s   {:.2} of Kafka, {:.2} of the appends",
        tailed / kafka,
        tailed / postgres
    );
    println!("at {LATENCY_RATE} msg/s, append to consumer:");
    println!("  polling relay      {polling_latency}");
    println!("  log-tailing relay  {tailing_latency}");
    Ok(())
}
