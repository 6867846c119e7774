//! A participant that does not answer in time: the saga treats the step as failed and
//! compensates. Here accounting is down when the card is to be authorized; after the deadline
//! the order service asks it to reverse whatever it may authorize, and when accounting comes
//! back it handles both commands in order (authorize, then reverse), the ticket is cancelled
//! and the order rejected. Its own binary: a stack of its own (see `stack`).

mod stack;

use std::time::Duration;

use anyhow::{Result, ensure};
use integration_tests::flow::short_type;
use stack::{Stack, order, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_participant_fails_its_step_and_the_saga_compensates() -> Result<()> {
    service_kit::init_test_subscriber();
    let mut stack = Stack::start(
        &["restaurant", "consumer", "accounting", "kitchen", "order"],
        |name, figment| match name {
            "order" => figment.merge(("saga.reply_timeout_ms", 2_000)),
            _ => figment,
        },
    )
    .await?;
    let world = seed(&stack).await?;
    // Accounting goes away; its group keeps its place, so it picks up where it stopped.
    let accounting = stack
        .services
        .iter()
        .position(|s| s.name == "accounting")
        .expect("started");
    let accounting = stack.services.remove(accounting);
    let group = accounting.group.clone();
    accounting.stop().await?;

    let create = order(&world, world.alice, &[("samosa", 2)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let within = Duration::from_secs(60);
    stack
        .recorder
        .wait_for(&id, "ReverseAuthorization", within)
        .await?;
    ensure!(
        stack
            .recorder
            .of(&id)
            .iter()
            .all(|r| short_type(r) != "OrderRejected"),
        "rejected before the authorization was reversed"
    );

    // Back in its group (on a new database: what it answers does not matter to the saga now,
    // which only waits for the reversal).
    let accounting =
        test_support::TestService::start_in("accounting", group, |s, i, stop, started| {
            accounting_service::run(s, i, stop.cancelled_owned(), Some(started))
        })
        .await?;
    let rejected = stack
        .recorder
        .wait_for(&id, "OrderRejected", within)
        .await?;
    let event = stack
        .client
        .codec
        .decode::<contracts::order::events::OrderRejected>(
            "ftgo.order.events",
            &rejected.message.payload,
        )
        .await?;
    ensure!(
        event.detail.as_deref() == Some("no reply from the accounting service within 2s"),
        "{:?}",
        event.detail
    );
    let kitchen = stack.recorder.types_on(&id, "ftgo.kitchen.commands");
    ensure!(
        kitchen == ["CreateTicket", "CancelCreateTicket"],
        "kitchen: {kitchen:?}"
    );
    let accounting_commands = stack.recorder.types_on(&id, "ftgo.accounting.commands");
    ensure!(
        accounting_commands == ["AuthorizeCard", "ReverseAuthorization"],
        "accounting: {accounting_commands:?}"
    );
    stack
        .recorder
        .wait_for(&id, "TicketCancelled", within)
        .await?;
    let events = stack.recorder.types_on(&id, "ftgo.order.events");
    ensure!(
        events == ["OrderCreated", "OrderRejected"],
        "order events: {events:?}"
    );
    accounting.stop().await?;
    for service in stack.services {
        service.stop().await?;
    }
    Ok(())
}
