//! An outbox relay as its own process, for the crash tests (`tests/outbox_crash.rs`).
//!
//!     outbox-relay polling DATABASE_URL
//!     outbox-relay tailing DATABASE_URL SLOT PUBLICATION
//!     outbox-relay leading DATABASE_URL NAME
//!
//! Relays until SIGTERM. With `FTGO_CRASH_AFTER_ACKS=N` it kills itself with SIGKILL as soon
//! as N messages are on the topic for readers (acknowledged by Kafka, and for the polling
//! relay's Kafka transactions, committed), before the relay can delete their rows or confirm
//! their position: the crash between "published" and "marked" that makes duplicates.
//!
//! `leading` runs the polling relay as the services do: only while this
//! process holds the leadership `NAME` (`outbox::while_leader`), with the transactional id
//! `outbox-relay-NAME` shared by every process of that name; it prints `leading` to standard
//! error each time it becomes the leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use integration_tests::init_logging;
use kafka::KafkaPublisher;
use messaging::{Delivery, Message, PublishError, Publisher, TransactionalPublisher};
use outbox::{PollingRelay, RelaySettings, TailingRelay, TailingSettings};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct CrashAfter {
    inner: KafkaPublisher,
    acknowledged: Arc<AtomicUsize>,
    limit: Option<usize>,
    /// Acknowledged in the open Kafka transaction, counted at its commit (polling relay).
    pending: Arc<AtomicUsize>,
    transactional: Arc<AtomicBool>,
}

impl CrashAfter {
    fn new(inner: KafkaPublisher, acknowledged: Arc<AtomicUsize>, limit: Option<usize>) -> Self {
        Self {
            inner,
            acknowledged,
            limit,
            pending: Arc::default(),
            transactional: Arc::default(),
        }
    }

    /// `count` more messages are on the topic for readers: dies when that reaches the limit.
    fn landed(&self, count: usize) {
        let total = self.acknowledged.fetch_add(count, Ordering::SeqCst) + count;
        if self.limit.is_some_and(|limit| total >= limit) {
            eprintln!("outbox-relay: killing myself after {total} acknowledgements");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            // The runtime has one thread: nothing else runs until the signal lands.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

impl Publisher for CrashAfter {
    async fn publish(&self, topic: &str, message: &Message) -> Result<Delivery, PublishError> {
        let delivery = self.inner.publish(topic, message).await?;
        if self.transactional.load(Ordering::SeqCst) {
            self.pending.fetch_add(1, Ordering::SeqCst);
        } else {
            self.landed(1);
        }
        Ok(delivery)
    }
}

/// In a Kafka transaction, messages are on the topic for readers once it commits: the crash
/// comes after the commit that reaches the limit, before the relay deletes the batch's rows
/// (polling) or confirms its position (log tailing).
impl TransactionalPublisher for CrashAfter {
    async fn check(&self, topic: &str, message: &Message) -> Result<(), PublishError> {
        self.inner.check(topic, message).await
    }

    async fn begin(&self) -> Result<(), PublishError> {
        self.transactional.store(true, Ordering::SeqCst);
        self.pending.store(0, Ordering::SeqCst);
        self.inner.begin().await
    }

    async fn commit(&self) -> Result<(), PublishError> {
        self.inner.commit().await?;
        self.landed(self.pending.swap(0, Ordering::SeqCst));
        Ok(())
    }

    async fn abort(&self) -> Result<(), PublishError> {
        self.pending.store(0, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let limit = match std::env::var("FTGO_CRASH_AFTER_ACKS") {
        Ok(n) => Some(n.parse().context("FTGO_CRASH_AFTER_ACKS")?),
        Err(_) => None,
    };
    let bootstrap = std::env::var("FTGO_KAFKA__BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let transactional_id = match args.as_slice() {
        [mode, _, name] if mode == "leading" => format!("outbox-relay-{name}"),
        // The slot or the database names the outbox: one transactional id per outbox.
        _ => format!("outbox-relay-{}", args.last().map_or("", String::as_str)),
    };
    let producer = KafkaPublisher::transactional(&bootstrap, "outbox-relay", &transactional_id)?;
    let publisher = CrashAfter::new(producer, Arc::default(), limit);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        terminate.recv().await;
    };
    match args.as_slice() {
        [mode, url] if mode == "polling" => {
            let pool = sqlx::PgPool::connect(url).await?;
            let settings = RelaySettings {
                batch_size: 100,
                ..RelaySettings::default()
            };
            let published = PollingRelay::new(pool, publisher, settings)
                .run(shutdown)
                .await;
            eprintln!("outbox-relay: published {published}");
        }
        [mode, url, slot, publication] if mode == "tailing" => {
            let pool = sqlx::PgPool::connect(url).await?;
            let settings = TailingSettings::new(url, slot, publication);
            let published = TailingRelay::new(pool, publisher, settings)
                .run(shutdown)
                .await?;
            eprintln!("outbox-relay: published {published}");
        }
        [mode, url, name] if mode == "leading" => {
            let pool = sqlx::PgPool::connect(url).await?;
            let stop = CancellationToken::new();
            let stopping = stop.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopping.cancel();
            });
            let settings = RelaySettings {
                batch_size: 100,
                ..RelaySettings::default()
            };
            let published = outbox::while_leader(pool.clone(), name, stop, |leading| {
                eprintln!("outbox-relay: leading");
                // A producer per term: one fenced by a newer leader cannot be used again.
                let publisher =
                    KafkaPublisher::transactional(&bootstrap, "outbox-relay", &transactional_id)
                        .map(|inner| CrashAfter::new(inner, publisher.acknowledged.clone(), limit));
                let (pool, settings) = (pool.clone(), settings.clone());
                async move {
                    match publisher {
                        Ok(publisher) => {
                            PollingRelay::new(pool, publisher, settings)
                                .run(leading.cancelled_owned())
                                .await
                        }
                        Err(error) => {
                            eprintln!("outbox-relay: {error}");
                            0
                        }
                    }
                }
            })
            .await;
            eprintln!("outbox-relay: published {published}");
        }
        _ => bail!(
            "usage: outbox-relay polling DATABASE_URL | tailing DATABASE_URL SLOT PUBLICATION \
             | leading DATABASE_URL NAME"
        ),
    }
    Ok(())
}
