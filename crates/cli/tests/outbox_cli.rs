//! `ftgo outbox` against a real outbox in PostgreSQL, with rows a relay really moved aside.

mod common;

use anyhow::{Result, ensure};
use common::ftgo;
use messaging::{Message, header};
use outbox::{PollingRelay, RelayOutcome, RelaySettings};
use test_support::{TestDatabase, TestTopic, relay_publisher};

#[tokio::test]
async fn failed_rows_are_listed_retried_and_discarded() -> Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool();
    outbox::install(pool).await?;
    let topic = TestTopic::create("outbox_cli", 1).await?;
    let missing = TestTopic::unique_name("outbox_cli_missing");
    let mut tx = pool.begin().await?;
    for (key, target) in [
        ("order-1", &missing),
        ("order-1", &topic.name().to_owned()),
        ("order-2", &missing),
    ] {
        let message = Message::new(Some(key.to_owned()), b"x".to_vec())
            .with_header(header::TYPE, "ftgo.order.events.OrderCreated");
        outbox::append(&mut tx, target, &message).await?;
    }
    tx.commit().await?;
    let relay = PollingRelay::new(
        pool.clone(),
        relay_publisher("outbox-cli")?,
        RelaySettings::default(),
    );
    let outcome = relay.relay_once().await?;
    ensure!(
        outcome
            == RelayOutcome::MovedAside {
                moved: 2,
                published: 0
            },
        "{outcome:?}"
    );
    let url = database.url();

    let list = ftgo(&["outbox", "list", "order", "--database-url", &url])?;
    ensure!(list.code == 0, "{}", list.stderr);
    let lines: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.contains(&missing))
        .collect();
    ensure!(lines.len() == 2, "{}", list.stdout);
    ensure!(
        lines[0].contains("order-1")
            && lines[0].contains("OrderCreated")
            && lines[0].contains("does not exist")
            && lines[0].split_whitespace().any(|w| w == "1"),
        "the first row, with one row of its key waiting: {}",
        lines[0]
    );
    let first: i64 = lines[0]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()?;
    let second: i64 = lines[1]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()?;

    // A position that is not a failed row changes nothing and says so.
    let typo = ftgo(&["outbox", "retry", "order", "--database-url", &url, "999999"])?;
    ensure!(
        typo.code == 2 && typo.stderr.contains("no failed row at position 999999"),
        "{}",
        typo.stderr
    );
    let neither = ftgo(&["outbox", "retry", "order", "--database-url", &url])?;
    ensure!(
        neither.code == 2 && neither.stderr.contains("<POSITION>"),
        "{}",
        neither.stderr
    );
    let bad_service = ftgo(&["outbox", "list", "Order!", "--database-url", &url])?;
    ensure!(
        bad_service.code == 2 && bad_service.stderr.contains("not a service name"),
        "{}",
        bad_service.stderr
    );
    let no_url = ftgo(&["outbox", "list", "nosuchservice"])?;
    ensure!(
        no_url.code == 2 && no_url.stderr.contains("FTGO_NOSUCHSERVICE_DATABASE__URL"),
        "{}",
        no_url.stderr
    );

    // Discarding order-1's row lets the row that waited behind it go out.
    let discard = ftgo(&[
        "outbox",
        "discard",
        "order",
        "--database-url",
        &url,
        &first.to_string(),
    ])?;
    ensure!(
        discard.code == 0 && discard.stdout.contains("1 rows discarded"),
        "{}",
        discard.stderr
    );
    ensure!(relay.relay_once().await? == RelayOutcome::Published(1));
    // Retrying order-2's row while its topic is still missing moves it aside again.
    let retry = ftgo(&["outbox", "retry", "order", "--database-url", &url, "--all"])?;
    ensure!(
        retry.code == 0 && retry.stdout.contains("1 rows back"),
        "{}",
        retry.stderr
    );
    ensure!(
        relay.relay_once().await?
            == RelayOutcome::MovedAside {
                moved: 1,
                published: 0
            }
    );
    let list = ftgo(&["outbox", "list", "order", "--database-url", &url])?;
    ensure!(
        list.stdout.lines().filter(|l| l.contains(&missing)).count() == 1,
        "{}",
        list.stdout
    );
    ensure!(list.stdout.contains(&second.to_string()));
    Ok(())
}
