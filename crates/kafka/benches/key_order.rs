//! What key order buys: one partition, 100 keys, a handler that takes 5 ms (a database round
//! trip, say). Partition order handles one record at a time; key order handles the records of
//! different keys side by side, each key still in order. Both read the same records in the
//! same run; the benchmark prints records per second and the speed-up.
//!
//! Needs the local platform (`deploy/local/up`). Run: `cargo bench -p kafka --bench key_order`.

mod common;

use std::time::Duration;

use common::{BenchResult, BenchTopic, bootstrap, runner_rate};
use kafka::{ConsumerSettings, Ordering};

const RECORDS: u64 = 1_000;
const KEYS: u64 = 100;
const WORK: Duration = Duration::from_millis(5);
const MAX_CONCURRENT: usize = 100;

async fn rate(topic: &str, ordering: Ordering) -> BenchResult<f64> {
    let mut settings = ConsumerSettings::new(&bootstrap(), "bench", &[topic]);
    settings.ordering = ordering;
    let (rate, _) = runner_rate(settings, RECORDS, |_| async {
        tokio::time::sleep(WORK).await;
        Ok(())
    })
    .await?;
    Ok(rate)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let topic = BenchTopic::create("key-order", 1).await?;
    topic.fill(RECORDS, KEYS, 100).await?;

    let by_partition = rate(&topic.name, Ordering::Partition).await?;
    let by_key = rate(
        &topic.name,
        Ordering::Key {
            max_concurrent: MAX_CONCURRENT,
        },
    )
    .await?;
    println!(
        "key-order benchmark: {RECORDS} records, 1 partition, {KEYS} keys, {} ms handler",
        WORK.as_millis()
    );
    println!("partition order           {by_partition:>10.0} records/s");
    println!("key order (up to {MAX_CONCURRENT} at once) {by_key:>8.0} records/s");
    println!("speed-up                  {:>10.1}x", by_key / by_partition);
    topic.delete().await
}
