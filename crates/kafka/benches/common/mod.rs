//! What the Kafka benchmarks share: the broker's address, a fresh topic filled with records,
//! and a run of `ConsumerRunner` timed from the first record handled to the last.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher, RunSummary};
use messaging::{HandlerError, Message, Publisher, Received, handler_fn};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tokio::sync::Notify;

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

pub fn bootstrap() -> String {
    std::env::var("FTGO_KAFKA__BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

pub fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A fresh topic, deleted by [`BenchTopic::delete`].
pub struct BenchTopic {
    pub name: String,
    admin: AdminClient<DefaultClientContext>,
}

impl BenchTopic {
    pub async fn create(purpose: &str, partitions: i32) -> BenchResult<Self> {
        let name = format!("bench.{purpose}.t{}", nanos());
        let admin: AdminClient<DefaultClientContext> =
            kafka::client_config(&bootstrap())?.create()?;
        admin
            .create_topics(
                // The broker's default replication (-1), as the platform's topics have.
                &[NewTopic::new(
                    &name,
                    partitions,
                    TopicReplication::Fixed(-1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await?;
        Ok(Self { name, admin })
    }

    /// Writes `records` records of `payload_bytes` bytes over `keys` keys (`key-0`, ...).
    pub async fn fill(&self, records: u64, keys: u64, payload_bytes: usize) -> BenchResult<()> {
        let publisher = KafkaPublisher::new(&bootstrap(), "bench-fill")?;
        let payload = vec![b'x'; payload_bytes];
        let mut sent = 0;
        while sent < records {
            let end = (sent + 5_000).min(records);
            let batch = (sent..end).map(|n| {
                let publisher = publisher.clone();
                let message = Message {
                    key: Some(format!("key-{}", n % keys)),
                    headers: Default::default(),
                    payload: payload.clone(),
                };
                let topic = self.name.clone();
                async move { publisher.publish(&topic, &message).await }
            });
            for result in futures::future::join_all(batch).await {
                result?;
            }
            sent = end;
        }
        Ok(())
    }

    pub async fn delete(self) -> BenchResult<()> {
        self.admin
            .delete_topics(&[&self.name], &AdminOptions::new())
            .await?;
        Ok(())
    }
}

/// Runs `work` over all `records` records of `settings`' topics in a group of its own and
/// returns records per second from the first record handled to the last (joining the group is
/// not counted), and what the runner says of its run (its pauses).
pub async fn runner_rate<F, Fut>(
    mut settings: ConsumerSettings,
    records: u64,
    work: F,
) -> BenchResult<(f64, RunSummary)>
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    settings.group = format!("bench-runner-{}", nanos());
    let runner = ConsumerRunner::new(&settings)?;
    let count = Arc::new(AtomicU64::new(0));
    let first = Arc::new(OnceLock::<Instant>::new());
    let last = Arc::new(OnceLock::<Instant>::new());
    let done = Arc::new(Notify::new());
    let handler = {
        let (count, first, last, done) = (count.clone(), first.clone(), last.clone(), done.clone());
        let work = Arc::new(work);
        handler_fn(move |received: Received| {
            first.get_or_init(Instant::now);
            let (count, last, done, work) =
                (count.clone(), last.clone(), done.clone(), work.clone());
            async move {
                work(received).await?;
                if count.fetch_add(1, Ordering::Relaxed) + 1 == records {
                    last.get_or_init(Instant::now);
                    done.notify_one();
                }
                Ok(())
            }
        })
    };
    let stop = done.clone();
    let summary = runner
        .run(handler, async move { stop.notified().await })
        .await?;
    assert_eq!(summary.handled, records);
    let (first, last) = (
        first.get().ok_or("nothing handled")?,
        last.get().ok_or("not all handled")?,
    );
    let rate = records as f64 / last.duration_since(*first).as_secs_f64();
    Ok((rate, summary))
}
