//! Consumer throughput of `ConsumerRunner` with a no-op handler, against Kafka's own
//! `kafka-consumer-perf-test` reading the same records in the same run.
//!
//! Needs the local platform (`deploy/local/up`). Run: `cargo bench -p kafka --bench consumer`.
//! Fills a fresh 12-partition topic with RECORDS records of 100 bytes, reads them all with each
//! consumer in a group of its own, and prints records per second (time from the first record
//! to the last, so joining the group is not counted) and the ratio.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BenchResult, BenchTopic, bootstrap, nanos, runner_rate};
use kafka::ConsumerSettings;

const RECORDS: u64 = 200_000;
const PARTITIONS: i32 = 12;

fn kafka_tool() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/kafka-tool")
}

/// Kafka's consumer perf tool: its `fetch.nMsg.sec` (records per second after joining).
fn perf_tool_rate(topic: &str) -> BenchResult<f64> {
    let output = Command::new(kafka_tool())
        .args([
            "kafka-consumer-perf-test",
            "--bootstrap-server",
            &bootstrap(),
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
        .ok_or_else(|| {
            format!(
                "no figures from kafka-consumer-perf-test: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?
        .split(',')
        .map(str::trim)
        .collect();
    let column = header
        .iter()
        .position(|h| *h == "fetch.nMsg.sec")
        .ok_or("no fetch.nMsg.sec column")?;
    Ok(values[column].parse()?)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let topic = BenchTopic::create("consumer", PARTITIONS).await?;
    topic.fill(RECORDS, 1_000, 100).await?;

    let baseline = perf_tool_rate(&topic.name)?;
    let settings = ConsumerSettings::new(&bootstrap(), "bench", &[&topic.name]);
    let (ours, summary) = runner_rate(settings, RECORDS, |_| async { Ok(()) }).await?;
    println!(
        "consumer benchmark: {RECORDS} records of 100 B, {PARTITIONS} partitions, no-op handler"
    );
    println!("kafka-consumer-perf-test  {baseline:>12.0} records/s");
    println!(
        "ConsumerRunner            {ours:>12.0} records/s ({} pause(s); at most {} records waited for one partition)",
        summary.pauses, summary.peak_buffered
    );
    println!("ratio (ours / Kafka's)    {:>12.2}", ours / baseline);
    topic.delete().await
}
