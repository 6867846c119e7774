//! Relay leadership when the leader is alive but silent: two relay processes share an outbox
//! as a service's instances do (`outbox::while_leader`, one transactional id); the leader is
//! paused with SIGSTOP in the middle of a stream of appends. The standby must publish within
//! 15 s, and the old leader, woken 25 s later, must publish nothing out of order. Every record
//! on the topic is checked.

mod outbox_common;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use outbox_common::{KEYS, PER_KEY, Run, step, terminate};
use test_support::unique_suffix;

async fn outbox_rows(run: &Run, at_or_below: i64) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE position <= $1")
            .bind(at_or_below)
            .fetch_one(run.pool())
            .await?,
    )
}

async fn write_round(run: &Run, sequence: u32) -> Result<()> {
    let mut tx = run.pool().begin().await?;
    for key in 0..KEYS {
        outbox::append(&mut tx, run.topic.name(), &step(key, sequence)).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn drained(run: &Run, at_or_below: i64, within: Duration) -> Result<Duration> {
    let started = Instant::now();
    while outbox_rows(run, at_or_below).await? > 0 {
        ensure!(
            started.elapsed() < within,
            "rows up to position {at_or_below} still unpublished after {within:?} (logs in {})",
            run.dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_within_seconds_and_publishes_nothing_out_of_order_after()
-> Result<()> {
    let run = Run::new("relay_failover").await?;
    let url = run.database.url();
    let name = format!("failover-{}", unique_suffix());
    let args = ["leading", url.as_str(), name.as_str()];

    // The first process leads: it alone runs while the first round is published.
    let mut leader = run.relay(&args, None)?;
    write_round(&run, 0).await?;
    drained(&run, i64::MAX, Duration::from_secs(30)).await?;
    let mut standby = run.relay(&args, None)?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let writing = tokio::spawn({
        let pool = run.pool().clone();
        let topic = run.topic.name().to_owned();
        async move {
            for sequence in 1..PER_KEY {
                let mut tx = pool.begin().await?;
                for key in 0..KEYS {
                    outbox::append(&mut tx, &topic, &step(key, sequence)).await?;
                }
                tx.commit().await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            anyhow::Ok(())
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    integration_tests::signal(leader.id(), "STOP")?;
    let paused = Instant::now();
    // Rows appended after the pause can only be published by the standby: it must have
    // published them within 15 s of the pause.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let appended: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM outbox")
        .fetch_one(run.pool())
        .await?;
    ensure!(appended > 0, "nothing was appended after the pause");
    drained(
        &run,
        appended,
        Duration::from_secs(15).saturating_sub(paused.elapsed()),
    )
    .await?;
    let took = paused.elapsed();
    writing.await??;
    drained(&run, i64::MAX, Duration::from_secs(30)).await?;
    // The old leader wakes long after it lost the lead, and must not publish out of order.
    tokio::time::sleep(Duration::from_secs(25).saturating_sub(paused.elapsed())).await;
    integration_tests::signal(leader.id(), "CONT")?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    terminate(&mut leader)?;
    terminate(&mut standby)?;

    let (records, duplicates) = run.check_topic()?;
    let left: i64 = outbox_rows(&run, i64::MAX).await?;
    ensure!(left == 0, "{left} rows left in the outbox");
    println!(
        "relay failover: the standby published what the paused leader left within {:.1} s; \
         {records} records for {} messages ({duplicates} duplicates), every key in order",
        took.as_secs_f64(),
        KEYS * PER_KEY
    );
    std::fs::remove_dir_all(&run.dir)?;
    Ok(())
}
