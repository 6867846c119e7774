//! `ftgo send` run as a user runs it, against real Kafka and the registry: records written as
//! JSON and with --set land on their topic, keyed by their key field, with the project's
//! headers, and decode as their type; misfits name the field.

mod common;

use anyhow::{Result, ensure};
use common::{ftgo, record_at, sent_position};
use contracts::Codec;
use contracts::order::commands::CancelOrder;
use contracts::order::events::OrderRejected;
use contracts::order::events::order_rejected::OrderRejectionReason;
use messaging::header;
use test_support::Platform;

fn new_id() -> String {
    apache_avro::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn send_publishes_json_with_the_project_s_headers() -> Result<()> {
    let order_id = new_id();
    let json = format!(r#"{{"orderId": "{order_id}", "reason": "changed my mind"}}"#);
    let run = ftgo(&["send", "CancelOrder", "--json", &json])?;
    ensure!(run.code == 0, "{}", run.stderr);
    let (topic, partition, offset, id) = sent_position(&run.stdout)?;
    ensure!(topic == "ftgo.order.commands", "{}", run.stdout);
    ensure!(
        run.stdout.contains(&format!("key={order_id}")),
        "{}",
        run.stdout
    );

    let record = record_at(&topic, partition, offset)?;
    let headers = &record.message.headers;
    ensure!(record.message.key.as_deref() == Some(order_id.as_str()));
    ensure!(record.message.id() == Some(id.as_str()));
    for (name, value) in [
        (header::TYPE, "ftgo.order.commands.CancelOrder"),
        (header::SOURCE, "/ftgo/cli"),
        (header::SPEC_VERSION, "1.0"),
        (header::CONTENT_TYPE, "application/vnd.confluent.avro"),
    ] {
        ensure!(headers.get(name) == Some(value), "{name}: {headers:?}");
    }
    ensure!(
        headers
            .get(header::TIME)
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok()),
        "{headers:?}"
    );
    ensure!(headers.get(header::REPLY_TO).is_none());
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    let cancel: CancelOrder = codec.decode(&topic, &record.message.payload).await?;
    ensure!(cancel.order_id.to_string() == order_id);
    ensure!(cancel.reason.as_deref() == Some("changed my mind"));
    Ok(())
}

#[tokio::test]
async fn send_builds_records_with_set_and_asks_for_replies() -> Result<()> {
    let order_id = new_id();
    let set_id = format!("orderId={order_id}");
    let run = ftgo(&[
        "send",
        "ftgo.order.events.OrderRejected",
        "--json",
        r#"{"reason": "INVALID_ORDER", "rejectedAt": 1790000000000}"#,
        "--set",
        &set_id,
        "--set",
        "reason=CARD_AUTHORIZATION_FAILED",
        "--set",
        "detail=over the limit",
        "--reply-to",
        "ftgo.order.replies",
    ])?;
    ensure!(run.code == 0, "{}", run.stderr);
    let (topic, partition, offset, id) = sent_position(&run.stdout)?;
    ensure!(topic == "ftgo.order.events");
    let record = record_at(&topic, partition, offset)?;
    let headers = &record.message.headers;
    ensure!(headers.get(header::REPLY_TO) == Some("ftgo.order.replies"));
    ensure!(headers.get(header::CORRELATION_ID) == Some(id.as_str()));
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    let rejected: OrderRejected = codec.decode(&topic, &record.message.payload).await?;
    ensure!(rejected.order_id.to_string() == order_id);
    ensure!(rejected.reason == OrderRejectionReason::CardAuthorizationFailed);
    ensure!(rejected.detail.as_deref() == Some("over the limit"));
    ensure!(rejected.rejected_at == 1_790_000_000_000);

    // --json @FILE reads the record from a file; --key overrides the key field.
    let file = std::env::temp_dir().join(format!("cancel-{order_id}.json"));
    std::fs::write(&file, format!(r#"{{"orderId": "{order_id}"}}"#))?;
    let at_file = format!("@{}", file.display());
    let run = ftgo(&[
        "send",
        "CancelOrder",
        "--json",
        &at_file,
        "--key",
        "another-key",
    ])?;
    std::fs::remove_file(&file)?;
    ensure!(run.code == 0, "{}", run.stderr);
    let (topic, partition, offset, _) = sent_position(&run.stdout)?;
    let record = record_at(&topic, partition, offset)?;
    ensure!(record.message.key.as_deref() == Some("another-key"));
    Ok(())
}

#[test]
fn send_refuses_what_does_not_fit_and_says_where() -> Result<()> {
    let order_id = new_id();
    let set_id = format!("orderId={order_id}");
    let cases: [(&[&str], &[&str]); 5] = [
        (
            &[
                "send",
                "CreateOrder",
                "--set",
                &set_id,
                "--set",
                "lineItems[0].quantity=two",
            ],
            &["field `lineItems[0].quantity`", "expected a whole number"],
        ),
        (
            &["send", "CancelOrder", "--json", r#"{"orderId": "order-1"}"#],
            &["field `orderId`", "a uuid"],
        ),
        (
            &["send", "CancelOrder", "--set", &set_id, "--set", "why=no"],
            &["field `why`", "its fields: orderId, reason"],
        ),
        (
            &["send", "CreatOrder", "--json", "{}"],
            &[
                "no record type CreatOrder",
                "ftgo.order.commands.CreateOrder",
            ],
        ),
        (
            &["send", "CancelOrder", "--json", "{orderId: 1}"],
            &["--json is not valid JSON"],
        ),
    ];
    for (args, expected) in cases {
        let run = ftgo(args)?;
        ensure!(
            run.code == 2,
            "{args:?} exited {}: {}",
            run.code,
            run.stdout
        );
        for text in expected {
            ensure!(
                run.stderr.contains(text),
                "{args:?}: no {text} in {}",
                run.stderr
            );
        }
    }
    Ok(())
}
