//! `ftgo tail` run as a user runs it, against real Kafka and the registry, on a topic of its
//! own holding Avro records, a record that is not Avro, and records of several keys.

mod common;

use anyhow::{Context, Result, ensure};
use apache_avro::types::Value;
use common::ftgo;
use contracts::Codec;
use kafka::KafkaPublisher;
use messaging::{Message, Publisher, header};
use test_support::{Platform, TestTopic};

fn schema(topic: &str) -> String {
    format!(
        r#"{{"type": "record", "name": "Shipped", "namespace": "{topic}",
            "fields": [{{"name": "orderId", "type": "string"}}, {{"name": "boxes", "type": "int"}}]}}"#
    )
}

#[tokio::test]
async fn tail_shows_keys_positions_types_and_decoded_values_with_filters() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("tail", 2).await?;
    let text = schema(topic.name());
    let codec = Codec::new(
        &platform.registry()?.registering(),
        [(topic.name(), text.as_str())],
    )?;
    let record_type = format!("{}.Shipped", topic.name());
    let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "tail-test")?;
    for (key, boxes) in [("order-1", 1), ("order-2", 2), ("order-1", 3)] {
        let value = Value::Record(vec![
            ("orderId".into(), Value::String(key.into())),
            ("boxes".into(), Value::Int(boxes)),
        ]);
        let bytes = codec
            .encode_value(topic.name(), &record_type, value)
            .await?;
        let message = Message::new(Some(key.to_owned()), bytes)
            .with_header(header::TYPE, record_type.as_str());
        publisher.publish(topic.name(), &message).await?;
    }
    publisher
        .publish(
            topic.name(),
            &Message::new(Some("order-3".into()), b"plain text".to_vec()),
        )
        .await?;

    let all = ftgo(&[
        "tail",
        topic.name(),
        "--from-beginning",
        "--idle-timeout",
        "3s",
    ])?;
    ensure!(all.code == 0, "{}", all.stderr);
    ensure!(all.stdout.matches(" key=").count() == 4, "{}", all.stdout);
    for expected in [
        format!("key=order-2 type={record_type}"),
        r#"{"boxes":2,"orderId":"order-2"}"#.to_owned(),
        "(not decodable: not Confluent-framed".to_owned(),
        format!("{}[", topic.name()),
    ] {
        ensure!(
            all.stdout.contains(&expected),
            "no {expected} in:\n{}",
            all.stdout
        );
    }

    let one_key = ftgo(&[
        "tail",
        topic.name(),
        "--from-beginning",
        "--key",
        "order-1",
        "--type",
        "Shipped",
        "--headers",
        "--max",
        "2",
    ])?;
    ensure!(one_key.code == 0, "{}", one_key.stderr);
    let boxes: Vec<&str> = one_key
        .stdout
        .lines()
        .filter(|l| l.contains("\"boxes\""))
        .collect();
    ensure!(
        boxes.len() == 2 && boxes[0].contains("\"boxes\":1") && boxes[1].contains("\"boxes\":3"),
        "order-1 in order: {}",
        one_key.stdout
    );
    ensure!(one_key.stdout.contains("  ce_id: "), "{}", one_key.stdout);

    // NDJSON: one object a record, its value decoded, an undecodable one with its error.
    let json = ftgo(&[
        "tail",
        topic.name(),
        "--from-beginning",
        "--idle-timeout",
        "3s",
        "--output",
        "json",
    ])?;
    ensure!(json.code == 0, "{}", json.stderr);
    let records: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| json.stdout.clone())?;
    ensure!(records.len() == 4, "{}", json.stdout);
    ensure!(
        records.iter().any(|r| r["key"] == "order-2"
            && r["type"] == record_type.as_str()
            && r["value"]["boxes"] == 2
            && r["topic"] == topic.name()),
        "{}",
        json.stdout
    );
    ensure!(
        records
            .iter()
            .any(|r| r["key"] == "order-3" && r["error"].as_str().is_some()),
        "{}",
        json.stdout
    );

    let unknown = ftgo(&["tail", "no.such.topic.anywhere", "--max", "1"])?;
    ensure!(
        unknown.code == 2
            && unknown
                .stderr
                .contains("no.such.topic.anywhere does not exist"),
        "{}",
        unknown.stderr
    );
    let bad = ftgo(&["tail", topic.name(), "--idle-timeout", "soon"])?;
    ensure!(
        bad.code == 2 && bad.stderr.contains("--idle-timeout"),
        "{}",
        bad.stderr
    );
    Ok(())
}
