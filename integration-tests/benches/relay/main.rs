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
//! - A peer (`debezium.rs`): Debezium's PostgreSQL connector with its outbox event router,
//!   under Kafka Connect standalone, against the log-tailing relay on equal terms: MESSAGES
//!   rows written while each was stopped (its slot made first), then published by it; records
//!   per second from the first record a consumer receives to the last, and the CPU time of the
//!   relay's process over that span per message; then the same latency run.

mod debezium;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use debezium::{Debezium, cpu_time};
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

/// When the bench appended the message: its header, or in the header Debezium's event router
/// carries our `headers` column in.
fn appended_at(received: &Received) -> Option<u64> {
    let headers = &received.message.headers;
    if let Some(at) = headers.get(APPENDED_AT) {
        return at.parse().ok();
    }
    let pairs: Vec<(String, String)> =
        serde_json::from_str(headers.get(debezium::HEADERS)?).ok()?;
    pairs
        .into_iter()
        .find(|(name, _)| name == APPENDED_AT)
        .and_then(|(_, at)| at.parse().ok())
}

/// Append-to-receipt latency at a steady LATENCY_RATE: (p50, p99, max) in milliseconds.
async fn latency(pool: &PgPool, relay: Relay) -> Result<Latency> {
    let debezium = matches!(relay, Relay::Debezium(..));
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
                if let Some(at) = appended_at(&received) {
                    seen.lock().expect("lock").push(now_ns().saturating_sub(at));
                    // (Debezium's records carry the time of the row's commit instead.)
                    if let Some(ms) = received.origin.timestamp_ms.filter(|_| !debezium) {
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
            Relay::Debezium(connect, pool) => tokio::spawn(async move {
                until.await;
                connect.stop(&pool).await.expect("stopping Kafka Connect");
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
        send: (!to_send.is_empty())
            .then(|| (percentile(&to_send, 0.5), percentile(&to_send, 0.99))),
    })
}

/// Append-to-receipt latency (an upper bound of outbox-to-topic), and append-to-send (the
/// record's timestamp, millisecond resolution), in milliseconds.
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    measured: usize,
    /// Append-to-send (p50, p99), where the record's timestamp is its send time.
    send: Option<(f64, f64)>,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} messages",
            self.p50, self.p99, self.max, self.measured
        )?;
        if let Some((p50, p99)) = self.send {
            write!(f, " (append-to-send p50 {p50:.1} ms, p99 {p99:.1} ms)")?;
        }
        Ok(())
    }
}

enum Relay {
    Polling(PollingRelay<KafkaPublisher>),
    Tailing(TailingRelay<Counting>),
    /// A running Kafka Connect worker, stopped when the run ends.
    Debezium(Debezium, PgPool),
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

/// A moment of a peer run: when, and the CPU time the relay's process and this one had used.
#[derive(Clone, Copy)]
struct Moment {
    at: Instant,
    relay_cpu: Duration,
    own_cpu: Duration,
}

/// A consumer timing the stream a relay publishes to a topic: it joins (a warm-up record
/// comes through) before the relay starts, then notes the first and the `count`th record.
struct StreamWatch {
    relay_pid: Arc<std::sync::atomic::AtomicU32>,
    first: Arc<OnceLock<Moment>>,
    last: Arc<OnceLock<Moment>>,
    stop: tokio::sync::oneshot::Sender<()>,
    consumer: tokio::task::JoinHandle<Result<kafka::RunSummary, kafka::KafkaError>>,
}

/// What a peer run measured: records per second from the first record received to the
/// last, and CPU time per message of the relay's process and of this one over that span.
struct PeerRun {
    rate: f64,
    relay_cpu_us: f64,
    own_cpu_us: f64,
}

const WARM_UP: &str = "bench-warm-up";

impl StreamWatch {
    async fn join(topic: &str, count: usize) -> Result<Self> {
        let platform = Platform::from_env();
        let relay_pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (first, last) = (Arc::new(OnceLock::new()), Arc::new(OnceLock::new()));
        let joined = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counted = Arc::new(AtomicUsize::new(0));
        let runner = ConsumerRunner::new(&ConsumerSettings::new(
            &platform.bootstrap_servers,
            &unique_group("bench-peer"),
            &[topic],
        ))?;
        let handler = {
            let (relay_pid, first, last, joined, counted) = (
                relay_pid.clone(),
                first.clone(),
                last.clone(),
                joined.clone(),
                counted.clone(),
            );
            handler_fn(move |received: Received| {
                if received.message.key.as_deref() == Some(WARM_UP) {
                    joined.store(true, Ordering::Relaxed);
                } else {
                    let moment = || Moment {
                        at: Instant::now(),
                        relay_cpu: cpu_time(relay_pid.load(Ordering::Relaxed)).unwrap_or_default(),
                        own_cpu: cpu_time(std::process::id()).unwrap_or_default(),
                    };
                    let n = counted.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == 1 {
                        let _ = first.set(moment());
                    }
                    if n == count {
                        let _ = last.set(moment());
                    }
                }
                async { Ok(()) }
            })
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let consumer = tokio::spawn(runner.run(handler, async move {
            let _ = stopped.await;
        }));
        let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "bench-warm-up")?;
        publisher
            .publish(topic, &Message::new(Some(WARM_UP.to_owned()), vec![]))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !joined.load(Ordering::Relaxed) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the timing consumer never joined"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            relay_pid,
            first,
            last,
            stop,
            consumer,
        })
    }

    /// The process whose CPU time is the relay's.
    fn relay_is(&self, pid: u32) {
        self.relay_pid.store(pid, Ordering::Relaxed);
    }

    async fn finish(self, count: usize) -> Result<PeerRun> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.last.get().is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the relay did not publish {count} records within 300 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.stop.send(());
        self.consumer.await??;
        let (first, last) = (
            *self.first.get().context("no first record")?,
            *self.last.get().context("no last record")?,
        );
        let per_message =
            |a: Duration, b: Duration| (b.saturating_sub(a)).as_secs_f64() * 1e6 / count as f64;
        Ok(PeerRun {
            rate: count as f64 / last.at.duration_since(first.at).as_secs_f64(),
            relay_cpu_us: per_message(first.relay_cpu, last.relay_cpu),
            own_cpu_us: per_message(first.own_cpu, last.own_cpu),
        })
    }
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

    // The peer comparison, on equal terms: rows written while the relay is stopped (its slot
    // made first), then the relay started; a consumer times the stream.
    let peer_topic = TestTopic::create("bench_relay_peer_tailing", 12).await?;
    append_rate(&pool, peer_topic.name(), MESSAGES).await?;
    let tailing_peer = {
        let watch = StreamWatch::join(peer_topic.name(), MESSAGES).await?;
        watch.relay_is(std::process::id());
        let relay = TailingRelay::new(
            pool.clone(),
            test_support::relay_publisher("bench-tailing-peer")?,
            settings.clone(),
        );
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(async move {
            relay
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        let run = watch.finish(MESSAGES).await?;
        stop.send(true)?;
        running.await??;
        run
    };
    outbox::drop_slot(&pool, &settings).await?;

    let connect_dir =
        std::env::temp_dir().join(format!("ftgo-bench-debezium-{}", uuid::Uuid::new_v4()));
    Debezium::configure(&connect_dir, &database.url())?;
    // Its first start makes its slot and publication.
    Debezium::start(&connect_dir, &pool)
        .await?
        .stop(&pool)
        .await?;
    let peer_topic = TestTopic::create("bench_relay_peer_debezium", 12).await?;
    append_rate(&pool, peer_topic.name(), MESSAGES).await?;
    let debezium_peer = {
        let watch = StreamWatch::join(peer_topic.name(), MESSAGES).await?;
        let connect = Debezium::spawn(&connect_dir)?;
        watch.relay_is(connect.pid());
        let run = watch.finish(MESSAGES).await?;
        connect.stop(&pool).await?;
        run
    };
    let connect = Debezium::start(&connect_dir, &pool).await?;
    let debezium_latency = latency(&pool, Relay::Debezium(connect, pool.clone())).await?;
    Debezium::clean_up(&pool).await?;
    let _ = std::fs::remove_dir_all(&connect_dir);

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
    println!(
        "peer: {MESSAGES} rows written while the relay was stopped, then published; first to last record received"
    );
    println!(
        "  log-tailing relay                  {:>10.0} msg/s   CPU {:.1} us/msg (this process, with the timing consumer; {:.1} without it)",
        tailing_peer.rate,
        tailing_peer.relay_cpu_us,
        tailing_peer.relay_cpu_us - debezium_peer.own_cpu_us
    );
    println!(
        "  Debezium 3.6.1 (Kafka Connect)     {:>10.0} msg/s   CPU {:.1} us/msg (Connect's JVM)",
        debezium_peer.rate, debezium_peer.relay_cpu_us
    );
    println!(
        "  log-tailing / Debezium: {:.2}x the throughput, {:.2} of the CPU per message",
        tailing_peer.rate / debezium_peer.rate,
        (tailing_peer.relay_cpu_us - debezium_peer.own_cpu_us) / debezium_peer.relay_cpu_us
    );
    println!("at {LATENCY_RATE} msg/s, append to consumer:");
    println!("  polling relay      {polling_latency}");
    println!("  log-tailing relay  {tailing_latency}");
    println!("  Debezium           {debezium_latency}");
    Ok(())
}
