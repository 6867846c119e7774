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
    // Accounting goes away; its group keeps its place and its database its accounts.
    let accounting = stack
        .services
        .iter()
        .position(|s| s.name == "accounting")
        .expect("started");
    let mut accounting = stack.services.remove(accounting);
    accounting.pause().await?;

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

    // Back, where its group stopped and with its accounts: it authorizes the waiting
    // AuthorizeCard (a reply the saga, now reversing, ignores), then reverses it.
    accounting.resume().await?;
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
    // The reversal is asked again each time its own deadline passes before accounting is
    // back (a compensation must finish): one or more.
    let accounting_commands = stack.recorder.types_on(&id, "ftgo.accounting.commands");
    ensure!(
        accounting_commands.first().map(String::as_str) == Some("AuthorizeCard")
            && accounting_commands.len() >= 2
            && accounting_commands[1..]
                .iter()
                .all(|c| c == "ReverseAuthorization"),
        "accounting: {accounting_commands:?}"
    );
    // Accounting, back in its group where it stopped, handled the AuthorizeCard that waited
    // for it: the authorization it then made was reversed.
    stack
        .recorder
        .wait_for(&id, "AuthorizationReversed", within)
        .await?;
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
