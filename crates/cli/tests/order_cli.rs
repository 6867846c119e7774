//! `ftgo order create | cancel | show` run as a user runs them, against real Kafka and the
//! registry. The services that answer orders may or may not be running, so the answers these
//! tests wait for are records they publish themselves (with `ftgo send`), and where a running
//! service could answer first, either answer is accepted as long as the exit status matches it.

mod common;

use contracts::now_ms;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::{Run, ftgo, record_at, sent_position, spawn_ftgo};
use contracts::Codec;
use contracts::order::commands::CreateOrder;
use messaging::header;
use test_support::Platform;

fn new_id() -> String {
    apache_avro::Uuid::new_v4().to_string()
}

fn send(args: &[&str]) -> Result<()> {
    let run = ftgo(args)?;
    ensure!(run.code == 0, "ftgo {args:?}: {}", run.stderr);
    Ok(())
}

/// Runs `ftgo ARGS` (a command that waits); once it says it is waiting, calls `meanwhile`.
fn run_waiting(args: &[&str], meanwhile: impl FnOnce() -> Result<()>) -> Result<Run> {
    let mut child = spawn_ftgo(args)?;
    let stderr = child.stderr.take().context("stderr")?;
    let (lines, waiting) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("waiting up to") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = waiting.recv_timeout(Duration::from_secs(60)).is_ok();
    if started {
        meanwhile()?;
    }
    let status = child.wait()?;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)?;
    }
    let stderr = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    ensure!(
        started,
        "ftgo {args:?} never said it was waiting:\n{stderr}"
    );
    Ok(Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}

#[tokio::test]
async fn order_create_publishes_a_valid_create_order() -> Result<()> {
    let (consumer, restaurant) = (new_id(), new_id());
    let run = ftgo(&[
        "order",
        "create",
        "--consumer",
        &consumer,
        "--restaurant",
        &restaurant,
        "--item",
        "samosa:2",
        "--item",
        "garlic-naan",
        "--address",
        "1 Main St, Flat 3, Oakland, CA, 94612",
        "--deliver-in",
        "30m",
    ])?;
    ensure!(run.code == 0, "{}", run.stderr);
    let order_id = run
        .stdout
        .trim()
        .strip_prefix("order ")
        .with_context(|| format!("no order id in {}", run.stdout))?
        .to_owned();
    let (topic, partition, offset, _) = sent_position(&run.stderr)?;
    ensure!(topic == "ftgo.order.commands");
    ensure!(run.stderr.contains(&format!("ftgo order show {order_id}")));

    let record = record_at(&topic, partition, offset)?;
    ensure!(record.message.key.as_deref() == Some(order_id.as_str()));
    ensure!(record.message.headers.get(header::TYPE) == Some("ftgo.order.commands.CreateOrder"));
    let codec = Codec::for_catalog(&Platform::from_env().registry()?)?;
    let order: CreateOrder = codec.decode(&topic, &record.message.payload).await?;
    ensure!(order.order_id.to_string() == order_id);
    ensure!(order.consumer_id.to_string() == consumer);
    ensure!(order.restaurant_id.to_string() == restaurant);
    let lines: Vec<(&str, i32)> = order
        .line_items
        .iter()
        .map(|l| (l.menu_item_id.as_str(), l.quantity))
        .collect();
    ensure!(lines == [("samosa", 2), ("garlic-naan", 1)], "{lines:?}");
    ensure!(order.delivery_address.street2.as_deref() == Some("Flat 3"));
    ensure!(order.delivery_address.zip == "94612");
    let in_30m = now_ms() + 30 * 60 * 1000;
    ensure!(
        (order.delivery_time - in_30m).abs() < 60_000,
        "{}",
        order.delivery_time
    );

    // Bad arguments say what is expected.
    let bad = ftgo(&[
        "order",
        "create",
        "--consumer",
        &consumer,
        "--restaurant",
        &restaurant,
        "--item",
        "samosa:none",
    ])?;
    ensure!(
        bad.code == 2 && bad.stderr.contains("MENU_ITEM_ID[:QTY]"),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[test]
fn order_create_wait_ends_with_the_outcome_for_its_order() -> Result<()> {
    let (order_id, other) = (new_id(), new_id());
    let restaurant = new_id();
    let run = run_waiting(
        &[
            "order",
            "create",
            "--consumer",
            &new_id(),
            "--restaurant",
            &restaurant,
            "--item",
            "samosa",
            "--order-id",
            &order_id,
            "--wait",
            "--timeout",
            "60s",
        ],
        || {
            // Another order's outcome does not end the wait.
            send(&[
                "send",
                "OrderApproved",
                "--set",
                &format!("orderId={other}"),
                "--set",
                &format!("restaurantId={restaurant}"),
                "--set",
                "approvedAt=now",
            ])?;
            send(&[
                "send",
                "OrderRejected",
                "--set",
                &format!("orderId={order_id}"),
                "--set",
                "reason=CARD_AUTHORIZATION_FAILED",
                "--set",
                "detail=over the limit",
                "--set",
                "rejectedAt=now",
            ])
        },
    )?;
    ensure!(
        run.code == 2,
        "exit {}: {}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    ensure!(
        run.stdout
            .starts_with(&format!("order {order_id}\nREJECTED reason=")),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn order_create_wait_says_what_to_check_when_nothing_answers() -> Result<()> {
    let order_id = new_id();
    let run = ftgo(&[
        "order",
        "create",
        "--consumer",
        &new_id(),
        "--restaurant",
        &new_id(),
        "--item",
        "samosa",
        "--order-id",
        &order_id,
        "--wait",
        "--timeout",
        "3s",
    ])?;
    if run.code == 2 {
        // An order service is running and refused the unknown restaurant at once.
        ensure!(run.stdout.contains("REJECTED"), "{}", run.stdout);
        return Ok(());
    }
    ensure!(run.code == 1, "exit {}: {}", run.code, run.stderr);
    for hint in [
        format!("ftgo order show {order_id}"),
        "the services' logs".to_owned(),
        "deploy/local/status".to_owned(),
    ] {
        ensure!(run.stderr.contains(&hint), "no {hint} in {}", run.stderr);
    }
    Ok(())
}

#[test]
fn order_cancel_wait_ends_with_the_outcome() -> Result<()> {
    let order_id = new_id();
    let run = run_waiting(
        &[
            "order",
            "cancel",
            &order_id,
            "--reason",
            "changed my mind",
            "--wait",
        ],
        || {
            send(&[
                "send",
                "OrderCancelled",
                "--set",
                &format!("orderId={order_id}"),
                "--set",
                "reason=changed my mind",
                "--set",
                "cancelledAt=now",
            ])
        },
    )?;
    ensure!(
        run.stdout
            .starts_with(&format!("cancel requested for order {order_id}\n")),
        "{}",
        run.stdout
    );
    match run.code {
        0 => ensure!(
            run.stdout.contains("CANCELLED reason=\"changed my mind\""),
            "{}",
            run.stdout
        ),
        // A running order service refused to cancel an order it does not know.
        2 => ensure!(
            run.stdout.contains("CANCELLATION REJECTED"),
            "{}",
            run.stdout
        ),
        code => anyhow::bail!("exit {code}: {}", run.stderr),
    }
    Ok(())
}

#[test]
fn order_show_tells_an_order_s_history_and_state() -> Result<()> {
    let order_id = new_id();
    let (consumer, restaurant) = (new_id(), new_id());
    let order = format!("orderId={order_id}");
    send(&[
        "send",
        "OrderCreated",
        "--set",
        &order,
        "--set",
        &format!("consumerId={consumer}"),
        "--set",
        &format!("restaurantId={restaurant}"),
        "--set",
        r#"lineItems[0]={"menuItemId": "samosa", "name": "Samosa", "quantity": 2, "price": {"amountMinor": 450, "currency": "USD"}}"#,
        "--set",
        r#"orderTotal={"amountMinor": 900, "currency": "USD"}"#,
        "--set",
        r#"deliveryAddress={"street1": "1 Main St", "city": "Oakland", "state": "CA", "zip": "94612"}"#,
        "--set",
        "deliveryTime=now",
        "--set",
        "createdAt=now",
    ])?;
    send(&["send", "ValidateOrderByConsumerSucceeded", "--set", &order])?;
    send(&[
        "send",
        "CardAuthorized",
        "--set",
        &order,
        "--set",
        &format!("consumerId={consumer}"),
        "--set",
        &format!("authorizationId={}", new_id()),
        "--set",
        "amount.amountMinor=900",
        "--set",
        "amount.currency=USD",
        "--set",
        "authorizedAt=now",
    ])?;
    send(&[
        "send",
        "OrderApproved",
        "--set",
        &order,
        "--set",
        &format!("restaurantId={restaurant}"),
        "--set",
        "approvedAt=now",
    ])?;

    let show = ftgo(&["order", "show", &order_id])?;
    ensure!(show.code == 0, "{}", show.stderr);
    let lines: Vec<&str> = show.stdout.lines().collect();
    let position = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .with_context(|| format!("no {what} in:\n{}", show.stdout))
    };
    let created = position("ftgo.order.events        OrderCreated")?;
    let validated = position("ftgo.order.replies       ValidateOrderByConsumerSucceeded")?;
    let authorized = position("ftgo.accounting.events   CardAuthorized")?;
    let approved = position("ftgo.order.events        OrderApproved")?;
    ensure!(
        created < validated && validated < authorized && authorized < approved,
        "{}",
        show.stdout
    );
    ensure!(
        lines[created].contains("lineItems=[samosa:2] orderTotal=9.00 USD"),
        "{}",
        lines[created]
    );
    ensure!(lines[authorized].contains("amount=9.00 USD"));
    ensure!(lines.last() == Some(&"state: APPROVED"), "{}", show.stdout);

    let json = ftgo(&["order", "show", &order_id, "--output", "json"])?;
    ensure!(json.code == 0, "{}", json.stderr);
    let document: serde_json::Value =
        serde_json::from_str(&json.stdout).with_context(|| json.stdout.clone())?;
    let history = document["history"].as_array().context("a history")?;
    ensure!(
        history
            .iter()
            .any(|v| v["type"] == "ftgo.accounting.events.CardAuthorized"
                && v["value"]["amount"]["amountMinor"] == 900),
        "{}",
        json.stdout
    );
    ensure!(document["state"] == "APPROVED" && document["orderId"] == order_id.as_str());

    let unknown_id = new_id();
    let unknown = ftgo(&["order", "show", &unknown_id])?;
    ensure!(
        unknown.code == 1
            && unknown
                .stdout
                .contains(&format!("no record mentions order {unknown_id}")),
        "{}",
        unknown.stdout
    );
    Ok(())
}
