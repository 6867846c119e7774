//! Consumer throughput of `ConsumerRunner` with a no-op handler, against Kafka's own
//! `kafka-consumer-perf-test` reading the same records in the same run.
//!
//! Needs the local platform (`deploy/local/up`). Run: `cargo bench -p kafka --bench consumer`.
//! Fills a fresh 12-partition topic with RECORDS records of 100 bytes, reads them all with each
//! consumer in a group of its own, and prints records per second (time from the first record
//! to the last, so joining the group is not counted) and the ratio.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::{Message, Publisher, handler_fn};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tokio::sync::Notify;

const RECORDS: u64 = 200_000;
const PARTITIONS: i32 = 12;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn kafka_tool() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/kafka-tool")
}

async fn fill(bootstrap: &str, topic: &str) -> BenchResult<()> {
    let publisher = KafkaPublisher::new(bootstrap, "bench-fill")?;
    let payload = vec![b'x'; 100];
    let mut sent = 0;
    while sent < RECORDS {
        let batch = (sent..(sent + 5_000).min(RECORDS)).map(|n| {
            let publisher = publisher.clone();
            let message = Message {
                key: Some(format!("key-{}", n % 1000)),
                headers: Default::default(),
                payload: payload.clone(),
            };
            let topic = topic.to_owned();
            async move { publisher.publish(&topic, &message).await }
        });
        for result in futures::future::join_all(batch).await {
            result?;
        }
        sent = (sent + 5_000).min(RECORDS);
    }
    Ok(())
}

/// Our runner: records per second from the first record handled to the last.
async fn runner_rate(bootstrap: &str, topic: &str) -> BenchResult<f64> {
    let group = format!("bench-runner-{}", nanos());
    let runner = ConsumerRunner::new(&ConsumerSettings::new(bootstrap, &group, &[topic]))?;
    let count = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let done = Arc::new(Notify::new());
    let handler = {
        let (count, first, done) = (count.clone(), first.clone(), done.clone());
        handler_fn(move |_| {
            first.get_or_init(Instant::now);
            if count.fetch_add(1, Ordering::Relaxed) + 1 == RECORDS {
                done.notify_one();
            }
            async { Ok(()) }
        })
    };
    let stop = done.clone();
    let summary = runner
        .run(handler, async move { stop.notified().await })
        .await?;
    let elapsed = first.get().map(Instant::elapsed).unwrap_or_default();
    assert_eq!(summary.handled, RECORDS);
    Ok(RECORDS as f64 / elapsed.as_secs_f64())
}

/// Kafka's consumer perf tool: its `fetch.nMsg.sec` (records per second after joining).
fn perf_tool_rate(bootstrap: &str, topic: &str) -> BenchResult<f64> {
    let output = Command::new(kafka_tool())
        .args([
            "kafka-consumer-perf-test",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--num-records",
            &RECORDS.to_string(),
            "--group",
            &format!("bench-perf-tool-{}", nanos()),
            "--timeout",
            "60000",
        ])
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("no output")?
        .split(',')
        .map(str::trim)
        .collect();
    let values: Vec<&str> = lines
        .next()
        .ok_or("no figures")?
        .split(',')
        .map(str::trim)
        .collect();
    let column = header
        .iter()
        .position(|h| *h == "fetch.nMsg.sec")
        .ok_or("no fetch.nMsg.sec column")?;
    Ok(values[column].parse()?)
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let bootstrap = std::env::var("FTGO_KAFKA__BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let topic = format!("bench.consumer.t{}", nanos());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    fill(&bootstrap, &topic).await?;

    let baseline = perf_tool_rate(&bootstrap, &topic)?;
    let ours = runner_rate(&bootstrap, &topic).await?;
    println!(
        "consumer benchmark: {RECORDS} records of 100 B, {PARTITIONS} partitions, no-op handler"
    );
    println!("kafka-consumer-perf-test  {baseline:>12.0} records/s");
    println!("ConsumerRunner            {ours:>12.0} records/s");
    println!("ratio (ours / Kafka's)    {:>12.2}", ours / baseline);
    admin.delete_topics(&[&topic], &AdminOptions::new()).await?;
    Ok(())
}
