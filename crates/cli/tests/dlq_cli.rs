//! `ftgo dlq list | show | replay` run as an operator runs them, against real Kafka, on a
//! dead-letter topic and an origin topic of their own.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::ftgo;
use kafka::KafkaPublisher;
use messaging::{HandlerError, Message, Origin, Publisher, Received, dead_letter, header};
use test_support::{Platform, TestTopic, read_records};

/// Publishes the dead letter of a record of `origin` that failed with `reason`.
async fn dead_letter_of(
    publisher: &KafkaPublisher,
    dlt: &str,
    origin: &str,
    key: &str,
    reason: messaging::Reason,
) -> Result<Message> {
    let original = Message::new(
        Some(key.to_owned()),
        format!("payload of {key}").into_bytes(),
    )
    .with_header(header::TYPE, "ftgo.test.Probe");
    let received = Received {
        message: original.clone(),
        origin: Origin {
            topic: origin.to_owned(),
            partition: 1,
            offset: 17,
            timestamp_ms: Some(1_790_000_000_000),
        },
        trace: None,
    };
    let letter = dead_letter(
        &received,
        &HandlerError::permanent(reason, "it cannot be handled"),
        "test-group",
    );
    publisher.publish(dlt, &letter).await?;
    Ok(original)
}

#[tokio::test]
async fn an_operator_lists_shows_and_replays_dead_letters() -> Result<()> {
    let origin = TestTopic::create("dlq_origin", 3).await?;
    let dlt = TestTopic::create("dlq_letters", 1).await?;
    let publisher = KafkaPublisher::new(&Platform::from_env().bootstrap_servers, "dlq-test")?;
    let first = dead_letter_of(
        &publisher,
        dlt.name(),
        origin.name(),
        "order-1",
        messaging::Reason::InvalidContent,
    )
    .await?;
    dead_letter_of(
        &publisher,
        dlt.name(),
        origin.name(),
        "order-2",
        messaging::Reason::UnknownSchemaId,
    )
    .await?;

    let list = ftgo(&["dlq", "list", dlt.name()])?;
    ensure!(list.code == 0, "{}", list.stderr);
    for expected in [
        "order-1",
        "order-2",
        "invalid-content",
        "unknown-schema-id",
        "2 dead letter(s)",
        &format!("{}[1]@17", origin.name()),
    ] {
        ensure!(
            list.stdout.contains(expected),
            "no {expected} in:\n{}",
            list.stdout
        );
    }
    let json = ftgo(&["dlq", "list", dlt.name(), "--output", "json"])?;
    ensure!(json.code == 0, "{}", json.stderr);
    let letters: serde_json::Value = serde_json::from_str(&json.stdout)?;
    let letters = letters.as_array().context("an array of letters")?;
    ensure!(letters.len() == 2, "{}", json.stdout);
    ensure!(
        letters.iter().any(|l| l["key"] == "order-1"
            && l["reason"] == "invalid-content"
            && l["group"] == "test-group"
            && l["origin"]["topic"] == origin.name()
            && l["origin"]["partition"] == 1
            && l["origin"]["offset"] == 17),
        "{}",
        json.stdout
    );
    let filtered = ftgo(&["dlq", "list", dlt.name(), "--reason", "invalid-content"])?;
    ensure!(
        filtered.stdout.contains("order-1") && !filtered.stdout.contains("order-2"),
        "{}",
        filtered.stdout
    );

    let show = ftgo(&["dlq", "show", dlt.name(), "0:0"])?;
    ensure!(show.code == 0, "{}", show.stderr);
    for expected in [
        "key: order-1",
        "ftgo_dlt_reason: invalid-content",
        "ftgo_dlt_error: permanent failure (invalid-content): it cannot be handled",
        "ftgo_dlt_group: test-group",
        "not decodable",
    ] {
        ensure!(
            show.stdout.contains(expected),
            "no {expected} in:\n{}",
            show.stdout
        );
    }

    // Bad arguments say what to do.
    let bad_position = ftgo(&["dlq", "show", dlt.name(), "zero"])?;
    ensure!(bad_position.code == 2 && bad_position.stderr.contains("PARTITION:OFFSET"));
    let missing = ftgo(&["dlq", "show", dlt.name(), "0:99"])?;
    ensure!(
        missing.code == 2 && missing.stderr.contains("ftgo dlq list"),
        "{}",
        missing.stderr
    );
    let unselected = ftgo(&["dlq", "replay", dlt.name()])?;
    ensure!(
        unselected.code == 2 && unselected.stderr.contains("--all"),
        "{}",
        unselected.stderr
    );
    let unknown = ftgo(&["dlq", "list", "no-such-group-anywhere"])?;
    ensure!(
        unknown.code == 2
            && unknown
                .stderr
                .contains("ftgo.no-such-group-anywhere.dlt does not exist"),
        "{}",
        unknown.stderr
    );

    // Replay: the original goes back to its topic, same key, bytes and id, no dead-letter headers.
    let replay = ftgo(&["dlq", "replay", dlt.name(), "--reason", "invalid-content"])?;
    ensure!(replay.code == 0, "{}", replay.stderr);
    ensure!(
        replay.stdout.contains("1 of 1 dead letter(s) replayed"),
        "{}",
        replay.stdout
    );
    let replayed = read_records(origin.name(), 1, Duration::from_secs(30)).await?;
    let message = &replayed[0].message;
    ensure!(message.key == first.key);
    ensure!(message.payload == first.payload);
    ensure!(message.id() == first.id());
    ensure!(message.headers.get(header::TYPE) == Some("ftgo.test.Probe"));
    ensure!(
        message
            .headers
            .iter()
            .all(|(name, _)| !name.starts_with("ftgo_dlt_")),
        "{:?}",
        message.headers
    );
    ensure!(message.headers.get("ftgo_replay_of") == Some(&*format!("{}/0/0", dlt.name())));
    Ok(())
}
