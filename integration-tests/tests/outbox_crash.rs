//! Effectively once through crashes, over real PostgreSQL and Kafka, each run ending with a
//! check of every record:
//! - a relay killed (SIGKILL) after Kafka acknowledged a batch but before it was marked: the
//!   topic gets duplicates, the consumers absorb them (polling and log-tailing relays);
//! - a consumer killed after its database commit but before its offset commit: the message
//!   comes again and has no second effect.
//!
//! After each: every outbox row was delivered, every effect happened exactly once, and every
//! key's effects happened in order. (Restarts of PostgreSQL and Kafka: outbox_restarts.rs, a
//! test binary of its own, as they would disturb these.)

mod outbox_common;

use std::time::Duration;

use anyhow::{Result, ensure};
use outbox::TailingSettings;
use outbox_common::{Run, TOTAL, terminate, wait_killed};
use test_support::unique_suffix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_relay_killed_after_kafka_acknowledged_makes_duplicates_that_have_no_effect()
-> Result<()> {
    let run = Run::new("crash_polling").await?;
    let url = run.database.url();
    run.write_all().await?;
    let mut consumer = run.consumer(None)?;

    // Batches of 100: killed when 500 are acknowledged, i.e. after its fifth batch's
    // acknowledgements and before that batch's rows were deleted.
    let mut relay = run.relay(&["polling", &url], Some(500))?;
    wait_killed(&mut relay, "the relay")?;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(run.pool())
        .await?;
    ensure!(
        left == (TOTAL - 400) as i64,
        "{left} rows left: not killed between ack and delete"
    );

    let mut relay = run.relay(&["polling", &url], None)?;
    run.wait_for_effects(TOTAL as i64, 120).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // the duplicates' deliveries
    terminate(&mut relay)?;
    terminate(&mut consumer)?;
    let (on_topic, deliveries) = run.check().await?;
    ensure!(
        on_topic >= TOTAL + 100,
        "{on_topic} records: the batch was not published twice"
    );
    ensure!(
        deliveries >= on_topic,
        "{deliveries} deliveries of {on_topic} records"
    );
    println!(
        "polling relay killed after 500 acks: {on_topic} records for {TOTAL} messages, {deliveries} deliveries, {TOTAL} effects"
    );
    std::fs::remove_dir_all(&run.dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_relay_killed_after_kafka_acknowledged_makes_duplicates_that_have_no_effect()
-> Result<()> {
    let run = Run::new("crash_tailing").await?;
    let url = run.database.url();
    let suffix = unique_suffix();
    let (slot, publication) = (
        format!("crash_slot_{suffix}"),
        format!("crash_pub_{suffix}"),
    );
    let settings = TailingSettings::new(&url, &slot, &publication);
    // The slot made whole before the rows are written: they come through its stream.
    outbox::TailingRelay::new(
        run.pool().clone(),
        test_support::relay_publisher("crash-prepare")?,
        settings.clone(),
    )
    .prepare()
    .await?;
    run.write_all().await?;
    let mut consumer = run.consumer(None)?;

    let mut relay = run.relay(&["tailing", &url, &slot, &publication], Some(700))?;
    wait_killed(&mut relay, "the relay")?;
    let mut relay = run.relay(&["tailing", &url, &slot, &publication], None)?;
    run.wait_for_effects(TOTAL as i64, 120).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    terminate(&mut relay)?;
    terminate(&mut consumer)?;
    // Rows published before the kill and not deleted are deleted by the next session once its
    // stream has passed them: nothing is left.
    let (on_topic, deliveries) = run.check().await?;
    ensure!(
        on_topic > TOTAL,
        "{on_topic} records: nothing was published twice"
    );
    println!(
        "log-tailing relay killed after 700 acks: {on_topic} records for {TOTAL} messages, {deliveries} deliveries, {TOTAL} effects"
    );
    outbox::drop_slot(run.pool(), &settings).await?;
    std::fs::remove_dir_all(&run.dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_after_its_commit_gets_the_message_again_without_a_second_effect()
-> Result<()> {
    let run = Run::new("crash_consumer").await?;
    let url = run.database.url();
    run.write_all().await?;
    let mut relay = run.relay(&["polling", &url], None)?;

    let mut consumer = run.consumer(Some(300))?;
    wait_killed(&mut consumer, "the consumer")?;
    let after_crash: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(run.pool())
        .await?;
    ensure!(after_crash >= 300, "{after_crash} effects before the crash");
    let mut consumer = run.consumer(None)?;
    run.wait_for_effects(TOTAL as i64, 120).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    terminate(&mut consumer)?;
    terminate(&mut relay)?;
    let (on_topic, deliveries) = run.check().await?;
    ensure!(
        on_topic == TOTAL,
        "{on_topic} records: the relay duplicated without a crash"
    );
    ensure!(
        deliveries > TOTAL,
        "{deliveries} deliveries: nothing was delivered again after the crash"
    );
    println!(
        "consumer killed after 300 commits: {} redeliveries, {TOTAL} effects",
        deliveries - TOTAL
    );
    std::fs::remove_dir_all(&run.dir)?;
    Ok(())
}
