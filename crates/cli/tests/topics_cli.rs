//! `ftgo topics` run as an operator runs it, against real Kafka: a manifest of its own naming
//! a topic of its own (records in two partitions, a group that has handled some of them) and a
//! topic that does not exist; and the project's manifest.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::ftgo;
use kafka::{GroupOffsets, KafkaPublisher};
use messaging::{Message, Publisher};
use test_support::{Platform, TestTopic, unique_group, unique_suffix};

#[tokio::test]
async fn topics_shows_partitions_records_and_each_group_s_lag() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("topics", 2).await?;
    let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "topics-test")?;
    let mut deliveries = Vec::new();
    for key in ["a", "b", "c", "d", "e"] {
        deliveries.push(
            publisher
                .publish(topic.name(), &Message::new(Some(key.into()), b"x".to_vec()))
                .await?,
        );
    }
    // The group has handled the first record it saw on one partition, nothing on the other.
    let group = unique_group("topics");
    let first = &deliveries[0];
    GroupOffsets::new(&platform.bootstrap_servers, &group, Duration::from_secs(10))?
        .commit(topic.name(), &[(first.partition, first.offset + 1)])?;

    let missing = format!("test.topics.missing{}", unique_suffix());
    let manifest = std::env::temp_dir().join(format!("topics-{}.toml", unique_suffix()));
    std::fs::write(
        &manifest,
        format!(
            "[defaults]\npartitions = 2\n\n[[topic]]\nname = \"{}\"\nkey = \"k\"\n\n[[topic]]\nname = \"{missing}\"\n",
            topic.name()
        ),
    )?;
    let file = manifest.to_string_lossy().into_owned();
    let run = ftgo(&["topics", "--file", &file, "--group", &group])?;
    std::fs::remove_file(&manifest)?;
    ensure!(run.code == 0, "{}", run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with(topic.name()))
        .with_context(|| format!("no row of {} in:\n{}", topic.name(), run.stdout))?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    ensure!(
        cells[1..] == ["2", "5", group.as_str(), "4"],
        "{row}\n{}",
        run.stdout
    );
    ensure!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&missing) && l.contains("missing on the broker")),
        "{}",
        run.stdout
    );
    ensure!(
        run.stdout.lines().all(|l| l.len() <= 120),
        "wider than 120 columns:\n{}",
        run.stdout
    );

    // The project's manifest: every topic, whether or not a service ever ran.
    let workspace_manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/topics.toml");
    let project = ftgo(&["topics", "--file", workspace_manifest])?;
    ensure!(project.code == 0, "{}", project.stderr);
    for topic in [
        "ftgo.order.commands",
        "ftgo.restaurant.events",
        "ftgo.order-service.dlt",
    ] {
        ensure!(
            project.stdout.lines().any(|l| l.starts_with(topic)),
            "no {topic} in:\n{}",
            project.stdout
        );
    }
    ensure!(project.stdout.lines().all(|l| l.len() <= 120));

    // Without a manifest: the broker's ftgo.* topics.
    let no_file = ftgo(&["topics", "--file", "/nonexistent/topics.toml"])?;
    ensure!(no_file.code == 0, "{}", no_file.stderr);
    ensure!(
        no_file.stdout.contains("ftgo.order.events")
            && !no_file.stdout.contains(topic.name())
            && no_file.stdout.contains("the broker's ftgo.* topics"),
        "{}",
        no_file.stdout
    );
    Ok(())
}
