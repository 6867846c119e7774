//! Every kind of bad input lands in the group's dead-letter topic with the right reason, its
//! key, bytes and headers kept, while good records of other keys keep flowing. The handler is
//! what a service runs: `Traced(DeadLetter(Retry(Decode(CatalogDecoder, handler))))` over real
//! Kafka and the real registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use apache_avro::types::Value;
use contracts::{Codec, Decoded};
use kafka::{ConsumerRunner, ConsumerSettings, KafkaPublisher};
use messaging::{
    DeadLetter, DeadLetterSettings, Decode, Message, Publisher, Received, Retry, RetryPolicy,
    Traced, decoded_fn, header,
};
use service_kit::CatalogDecoder;
use test_support::{Platform, TestTopic, read_records, unique_group};

fn probe_schema(namespace: &str, name: &str) -> String {
    format!(
        r#"{{"type": "record", "name": "{name}", "namespace": "{namespace}",
            "fields": [{{"name": "orderId", "type": "string"}},
                       {{"name": "sequence", "type": "int"}}]}}"#
    )
}

fn probe(order: &str, sequence: i32) -> Value {
    Value::Record(vec![
        ("orderId".into(), Value::String(order.into())),
        ("sequence".into(), Value::Int(sequence)),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dead_lettered_with_its_reason_while_good_records_flow() -> Result<()> {
    let platform = Platform::from_env();
    let topic = TestTopic::create("bad_input", 3).await?;
    let elsewhere = TestTopic::create("bad_input_elsewhere", 1).await?;
    let dead_letters = TestTopic::create("bad_input_dlt", 1).await?;
    let group = unique_group("bad-input");

    // What the topic carries: Probe records. Another topic carries Other records.
    let probe_name = format!("{}.Probe", topic.name());
    let probe_text = probe_schema(topic.name(), "Probe");
    let other_text = probe_schema(elsewhere.name(), "Other");
    let codec = Arc::new(Codec::new(
        &platform.registry()?.registering(),
        [(topic.name(), probe_text.as_str())],
    )?);
    let other_codec = Codec::new(
        &platform.registry()?.registering(),
        [(elsewhere.name(), other_text.as_str())],
    )?;

    let good: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let publisher = KafkaPublisher::new(&platform.bootstrap_servers, "bad-input-test")?;
    let handler = Traced::new(DeadLetter::new(
        Retry::new(
            Decode::new(
                CatalogDecoder::new(codec.clone()),
                decoded_fn({
                    let good = good.clone();
                    move |received: Received, decoded: Decoded| {
                        let good = good.clone();
                        async move {
                            let sequence = match &decoded.value {
                                Value::Record(fields) => match fields.get(1) {
                                    Some((_, Value::Int(n))) => *n,
                                    _ => -1,
                                },
                                _ => -1,
                            };
                            let key = received.message.key.unwrap_or_default();
                            good.lock().expect("lock").push((key, sequence));
                            Ok(())
                        }
                    }
                }),
            ),
            RetryPolicy::default(),
        ),
        publisher.clone(),
        DeadLetterSettings::new(&group, dead_letters.name()),
    ));
    let runner = ConsumerRunner::new(&ConsumerSettings::new(
        &platform.bootstrap_servers,
        &group,
        &[topic.name()],
    ))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(handler, async {
        stopped.await.ok();
    }));

    let good_bytes = codec
        .encode_value(topic.name(), &probe_name, probe("o", 0))
        .await?;
    let typed = |key: &str, payload: Vec<u8>, record_type: &str| {
        Message::new(Some(key.to_owned()), payload).with_header(header::TYPE, record_type)
    };
    let mut invalid_body = good_bytes[..5].to_vec();
    invalid_body.extend_from_slice(&[0xff; 12]);
    let other_bytes = other_codec
        .encode_value(
            elsewhere.name(),
            &format!("{}.Other", elsewhere.name()),
            probe("x", 1),
        )
        .await?;
    let bad: Vec<(&str, Message)> = vec![
        (
            "not-confluent-framed",
            typed("bad-garbage", b"garbage".to_vec(), &probe_name),
        ),
        (
            "unknown-schema-id",
            typed(
                "bad-unknown-id",
                vec![0, 0x7f, 0xff, 0xff, 0x00, 2, 3],
                &probe_name,
            ),
        ),
        (
            "record-not-allowed-on-topic",
            typed(
                "bad-wrong-record",
                other_bytes,
                &format!("{}.Other", elsewhere.name()),
            ),
        ),
        (
            "invalid-content",
            typed("bad-body", invalid_body, &probe_name),
        ),
        (
            "missing-header",
            Message::new(Some("bad-no-type".to_owned()), good_bytes.clone()),
        ),
        (
            "type-mismatch",
            typed(
                "bad-type",
                good_bytes.clone(),
                "ftgo.order.commands.CreateOrder",
            ),
        ),
    ];
    // Good records of ten keys before, between and after the bad ones.
    let mut expected_good = 0;
    for (round, (_, bad_message)) in bad.iter().enumerate() {
        for key in 0..10 {
            let order = format!("good-{key}");
            let bytes = codec
                .encode_value(topic.name(), &probe_name, probe(&order, round as i32))
                .await?;
            publisher
                .publish(topic.name(), &typed(&order, bytes, &probe_name))
                .await?;
            expected_good += 1;
        }
        publisher.publish(topic.name(), bad_message).await?;
    }

    let letters = read_records(dead_letters.name(), bad.len(), Duration::from_secs(60)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while good.lock().expect("lock").len() < expected_good {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "good records stalled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).ok();
    task.await??;

    // Each bad record once, with its reason, key, bytes and original headers.
    let by_key: BTreeMap<String, &Received> = letters
        .iter()
        .map(|l| (l.message.key.clone().unwrap_or_default(), l))
        .collect();
    ensure!(by_key.len() == bad.len(), "{by_key:?}");
    for (reason, original) in &bad {
        let key = original.key.clone().context("keyed")?;
        let letter = by_key
            .get(&key)
            .with_context(|| format!("no dead letter for {key}"))?;
        let h = |name| letter.message.headers.get(name);
        ensure!(
            h(header::dead_letter::REASON) == Some(*reason),
            "{key}: reason {:?}, expected {reason}; error {:?}",
            h(header::dead_letter::REASON),
            h(header::dead_letter::ERROR)
        );
        ensure!(
            letter.message.payload == original.payload,
            "{key}: bytes changed"
        );
        ensure!(h(header::ID) == original.id(), "{key}: id changed");
        ensure!(h(header::dead_letter::TOPIC) == Some(topic.name()));
        ensure!(h(header::dead_letter::GROUP) == Some(group.as_str()));
    }
    // Every good record handled, each key in order.
    let good = good.lock().expect("lock").clone();
    ensure!(
        good.len() == expected_good,
        "{} good records handled",
        good.len()
    );
    for key in 0..10 {
        let order = format!("good-{key}");
        let sequence: Vec<i32> = good
            .iter()
            .filter(|(k, _)| *k == order)
            .map(|(_, s)| *s)
            .collect();
        ensure!(
            sequence == (0..bad.len() as i32).collect::<Vec<_>>(),
            "{order}: {sequence:?}"
        );
    }
    Ok(())
}
