//! `ftgo groups reset --to-end` against real Kafka: a stopped group moves to the end of the
//! topics named (or every topic it has committed on), a live group is refused with what to do.

mod common;

use std::time::Duration;

use anyhow::{Result, ensure};
use common::ftgo;
use kafka::{ConsumerRunner, ConsumerSettings, GroupOffsets, KafkaPublisher, TopicAdmin};
use messaging::{Message, Publisher};
use test_support::{Platform, TestTopic, unique_group};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_moves_a_stopped_group_to_the_end_and_refuses_a_live_one() -> Result<()> {
    let platform = Platform::from_env();
    let timeout = Duration::from_secs(10);
    let topic = TestTopic::create("groups", 3).await?;
    let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "groups-test")?;
    for key in ["a", "b", "c", "d", "e", "f"] {
        publisher
            .publish(topic.name(), &Message::new(Some(key.into()), b"x".to_vec()))
            .await?;
    }
    let group = unique_group("groups");
    let offsets = GroupOffsets::new(&platform.bootstrap_servers, &group, timeout)?;
    offsets.commit(topic.name(), &[(0, 0), (1, 0), (2, 0)])?;
    let ends: Vec<(i32, Option<i64>)> = TopicAdmin::new(&platform.bootstrap_servers, timeout)?
        .watermarks(topic.name())?
        .iter()
        .map(|w| (w.partition, Some(w.high)))
        .collect();
    ensure!(
        offsets.committed(topic.name())? != ends,
        "already at the end"
    );

    let named = ftgo(&[
        "groups",
        "reset",
        &group,
        "--to-end",
        "--topic",
        topic.name(),
    ])?;
    ensure!(named.code == 0, "{}", named.stderr);
    ensure!(
        named.stdout.contains("3 partitions moved"),
        "{}",
        named.stdout
    );
    ensure!(offsets.committed(topic.name())? == ends);

    offsets.commit(topic.name(), &[(0, 0)])?;
    let all = ftgo(&["groups", "reset", &group, "--to-end", "--all-topics"])?;
    ensure!(all.code == 0, "{}", all.stderr);
    ensure!(offsets.committed(topic.name())? == ends);

    let unnamed = ftgo(&["groups", "reset", &group, "--to-end"])?;
    ensure!(
        unnamed.code == 2 && unnamed.stderr.contains("--topic"),
        "{}",
        unnamed.stderr
    );

    // A member joins.
    let stop = tokio_util::sync::CancellationToken::new();
    let member = ConsumerRunner::new(&ConsumerSettings::new(
        &platform.bootstrap_servers,
        &group,
        &[topic.name()],
    ))?;
    let running = tokio::spawn(member.run(
        messaging::handler_fn(|_| async { Ok(()) }),
        stop.clone().cancelled_owned(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while offsets.members()? != 1 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the member did not join"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = ftgo(&[
        "groups",
        "reset",
        &group,
        "--to-end",
        "--topic",
        topic.name(),
    ])?;
    ensure!(live.code == 2, "reset a live group: {}", live.stdout);
    ensure!(
        live.stderr
            .contains("has 1 members: stop its instances first"),
        "{}",
        live.stderr
    );
    stop.cancel();
    running.await??;
    Ok(())
}
