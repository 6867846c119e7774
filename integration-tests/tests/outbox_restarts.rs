//! PostgreSQL and then the Kafka broker restarted in the middle of a run (a writer, the polling
//! relay and an idempotent consumer in-process): every message has exactly one effect, in key
//! order. A test binary of its own: the restarts would disturb tests running beside it.

mod outbox_common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use integration_tests::Effects;
use kafka::{ConsumerRunner, ConsumerSettings};
use outbox::{Idempotent, PollingRelay, RelaySettings};
use outbox_common::{Run, TOTAL, local, write_through_outages};
use test_support::Platform;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_the_broker_restart_mid_run_and_every_message_has_one_effect() -> Result<()> {
    let run = Run::new("crash_restarts").await?;
    let platform = Platform::from_env();
    let stop = CancellationToken::new();
    let relay = PollingRelay::new(
        run.pool().clone(),
        test_support::relay_publisher("restart-relay")?,
        RelaySettings::default(),
    );
    let relaying = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    let handler = Arc::new(Idempotent::new(
        run.pool().clone(),
        run.group.clone(),
        Effects,
    ));
    let runner = ConsumerRunner::new(&ConsumerSettings::new(
        &platform.bootstrap_servers,
        &run.group,
        &[run.topic.name()],
    ))?;
    let consuming = tokio::spawn(runner.run(handler, stop.clone().cancelled_owned()));
    let writing = tokio::spawn(write_through_outages(
        run.pool().clone(),
        run.topic.name().to_owned(),
    ));

    run.wait_for_effects(TOTAL as i64 / 4, 120).await?;
    local("down", &["postgres"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    local("up", &["--quiet"])?;
    run.wait_for_effects(TOTAL as i64 / 2, 180).await?;
    local("down", &["kafka"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    local("up", &["--quiet"])?;
    writing.await??;
    run.wait_for_effects(TOTAL as i64, 240).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let published = relaying.await?;
    let summary = consuming.await??;
    let (on_topic, _) = run.check().await?;
    println!(
        "restarts of PostgreSQL and Kafka mid-run: {published} published, {on_topic} records, {} handled ({} retries), {TOTAL} effects",
        summary.handled, summary.retries
    );
    std::fs::remove_dir_all(&run.dir)?;
    Ok(())
}
