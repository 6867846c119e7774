//! The whole back end over the real platform: every path of the Create Order and Cancel Order
//! sagas, an order for an unknown menu item, and a CreateOrder published twice, each checked
//! record by record on the topics.

mod stack;

use std::time::Duration;

use anyhow::{Result, ensure};
use contracts::Channel;
use contracts::kitchen::commands::{AcceptTicket, StartTicketPreparation};
use contracts::order::commands::CancelOrder;
use contracts::order::events::Event as OrderEvent;
use contracts::order::events::order_rejected::OrderRejectionReason;
use integration_tests::flow::short_type;
use messaging::Received;
use stack::{Stack, World, order, seed, wait_until};

const WITHIN: Duration = Duration::from_secs(60);

const ORDER_EVENTS: &str = "ftgo.order.events";
const KITCHEN: &str = "ftgo.kitchen.commands";
const ACCOUNTING: &str = "ftgo.accounting.commands";
const CONSUMER: &str = "ftgo.consumer.commands";
const TICKETS: &str = "ftgo.ticket.events";

async fn decode_order_event(stack: &Stack, record: &Received) -> Result<OrderEvent> {
    let decoded = stack
        .client
        .codec
        .decode_value(&record.origin.topic, &record.message.payload)
        .await?;
    Ok(OrderEvent::from_decoded(decoded)?)
}

/// Waits for the order's outcome and checks it is a rejection for `reason`.
async fn rejected_for(stack: &Stack, id: &str, reason: OrderRejectionReason) -> Result<String> {
    let outcome = stack
        .recorder
        .wait_for_any(id, &["OrderApproved", "OrderRejected"], WITHIN)
        .await?;
    let OrderEvent::OrderRejected(rejected) = decode_order_event(stack, &outcome).await? else {
        anyhow::bail!(
            "{id}: {} instead of a rejection for {reason:?}",
            short_type(&outcome)
        );
    };
    ensure!(
        rejected.reason == reason,
        "{id}: rejected for {:?}, not {reason:?}",
        rejected.reason
    );
    Ok(rejected.detail.unwrap_or_default())
}

fn check_types(stack: &Stack, id: &str, topic: &str, expected: &[&str]) -> Result<()> {
    let types = stack.recorder.types_on(id, topic);
    ensure!(
        types == expected,
        "{id} on {topic}: {types:?}, expected {expected:?}"
    );
    Ok(())
}

/// Happy path, then the kitchen accepts: approved with one ticket, one authorization, and a
/// scheduled delivery.
async fn approved(stack: &Stack, world: &World) -> Result<()> {
    let create = order(
        world,
        world.alice,
        &[("samosa", 2), ("chicken-vindaloo", 1)],
    );
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    stack
        .recorder
        .wait_for(&id, "OrderApproved", WITHIN)
        .await?;
    check_types(stack, &id, ORDER_EVENTS, &["OrderCreated", "OrderApproved"])?;
    check_types(stack, &id, CONSUMER, &["ValidateOrderByConsumer"])?;
    check_types(
        stack,
        &id,
        KITCHEN,
        &["CreateTicket", "ConfirmCreateTicket"],
    )?;
    check_types(stack, &id, ACCOUNTING, &["AuthorizeCard"])?;
    stack
        .recorder
        .wait_for(&id, "CardAuthorized", WITHIN)
        .await?;
    stack
        .recorder
        .wait_for(&id, "TicketCreated", WITHIN)
        .await?;

    stack
        .client
        .send(&AcceptTicket {
            order_id: create.order_id,
            ready_by: 1_900_000_000_000,
        })
        .await?;
    stack
        .recorder
        .wait_for(&id, "TicketAccepted", WITHIN)
        .await?;
    stack
        .recorder
        .wait_for(&id, "DeliveryScheduled", WITHIN)
        .await?;
    stack
        .recorder
        .wait_for(&id, "CourierAssigned", WITHIN)
        .await?;
    Ok(())
}

/// A consumer the consumer service does not know: rejected, and nothing else asked.
async fn unknown_consumer(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.stranger, &[("samosa", 1)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let detail = rejected_for(stack, &id, OrderRejectionReason::ConsumerValidationFailed).await?;
    ensure!(detail.contains("UnknownConsumer"), "{detail}");
    check_types(stack, &id, ORDER_EVENTS, &["OrderCreated", "OrderRejected"])?;
    check_types(stack, &id, KITCHEN, &[])?;
    check_types(stack, &id, ACCOUNTING, &[])?;
    Ok(())
}

/// Over the consumer's per-order limit (1,000.00): rejected by the consumer check.
async fn over_the_order_limit(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("feast-for-40", 1)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let detail = rejected_for(stack, &id, OrderRejectionReason::ConsumerValidationFailed).await?;
    ensure!(detail.contains("OrderLimitExceeded"), "{detail}");
    check_types(stack, &id, KITCHEN, &[])?;
    Ok(())
}

/// Over the card limit (500.00): the card is refused after the ticket exists, so the ticket is
/// cancelled before the order is rejected.
async fn over_the_card_limit(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("banquet-for-20", 1)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let detail = rejected_for(stack, &id, OrderRejectionReason::CardAuthorizationFailed).await?;
    ensure!(detail.contains("AmountOverLimit"), "{detail}");
    check_types(stack, &id, KITCHEN, &["CreateTicket", "CancelCreateTicket"])?;
    check_types(stack, &id, ACCOUNTING, &["AuthorizeCard"])?;
    stack
        .recorder
        .wait_for(&id, "TicketCancelled", WITHIN)
        .await?;
    stack
        .recorder
        .wait_for(&id, "CardAuthorizationFailed", WITHIN)
        .await?;
    Ok(())
}

/// More of one item than a kitchen takes on a ticket (100): within the consumer's and the
/// card's limits (101 samosas: 454.50 USD), so only the kitchen refuses; nothing to cancel.
async fn refused_by_the_kitchen(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("samosa", 101)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let detail = rejected_for(stack, &id, OrderRejectionReason::TicketCreationFailed).await?;
    ensure!(detail.contains("InvalidQuantity"), "{detail}");
    check_types(stack, &id, KITCHEN, &["CreateTicket"])?;
    check_types(stack, &id, ACCOUNTING, &[])?;
    check_types(stack, &id, ORDER_EVENTS, &["OrderCreated", "OrderRejected"])?;
    Ok(())
}

/// A menu item the restaurant does not have: rejected by the order service on arrival, from
/// its replica, with no saga.
async fn unknown_menu_item(stack: &Stack, world: &World) -> Result<()> {
    let create = order(
        world,
        world.alice,
        &[("samosa", 1), ("tandoori-unicorn", 1)],
    );
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    let detail = rejected_for(stack, &id, OrderRejectionReason::UnknownMenuItem).await?;
    ensure!(detail.contains("tandoori-unicorn"), "{detail}");
    check_types(stack, &id, ORDER_EVENTS, &["OrderRejected"])?;
    check_types(stack, &id, CONSUMER, &[])?;
    Ok(())
}

/// The same CreateOrder published twice (a client's retry: same order id, new message id):
/// one order, one saga.
async fn published_twice(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("samosa", 3)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    stack.client.send(&create).await?;
    stack
        .recorder
        .wait_for(&id, "OrderApproved", WITHIN)
        .await?;
    ensure!(
        stack.recorder.types_on(&id, "ftgo.order.commands") == ["CreateOrder", "CreateOrder"],
        "both copies published"
    );
    check_types(stack, &id, ORDER_EVENTS, &["OrderCreated", "OrderApproved"])?;
    check_types(
        stack,
        &id,
        KITCHEN,
        &["CreateTicket", "ConfirmCreateTicket"],
    )?;
    check_types(stack, &id, ACCOUNTING, &["AuthorizeCard"])?;
    Ok(())
}

/// An approved order is cancelled: the ticket is cancelled, the authorization reversed.
async fn cancelled(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("samosa", 1)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    stack
        .recorder
        .wait_for(&id, "OrderApproved", WITHIN)
        .await?;
    stack
        .client
        .send(&CancelOrder {
            order_id: create.order_id,
            reason: Some("plans changed".into()),
        })
        .await?;
    let outcome = stack
        .recorder
        .wait_for_any(
            &id,
            &["OrderCancelled", "OrderCancellationRejected"],
            WITHIN,
        )
        .await?;
    ensure!(
        short_type(&outcome) == "OrderCancelled",
        "{id}: {}",
        short_type(&outcome)
    );
    check_types(
        stack,
        &id,
        ORDER_EVENTS,
        &["OrderCreated", "OrderApproved", "OrderCancelled"],
    )?;
    check_types(
        stack,
        &id,
        KITCHEN,
        &[
            "CreateTicket",
            "ConfirmCreateTicket",
            "BeginCancelTicket",
            "ConfirmCancelTicket",
        ],
    )?;
    check_types(
        stack,
        &id,
        ACCOUNTING,
        &["AuthorizeCard", "ReverseAuthorization"],
    )?;
    stack
        .recorder
        .wait_for(&id, "TicketCancelled", WITHIN)
        .await?;
    stack
        .recorder
        .wait_for(&id, "AuthorizationReversed", WITHIN)
        .await?;
    Ok(())
}

/// The kitchen has started cooking: the cancellation is refused and the order stays approved.
async fn cancellation_refused(stack: &Stack, world: &World) -> Result<()> {
    let create = order(world, world.alice, &[("chicken-vindaloo", 2)]);
    let id = create.order_id.to_string();
    stack.client.send(&create).await?;
    stack
        .recorder
        .wait_for(&id, "OrderApproved", WITHIN)
        .await?;
    stack
        .client
        .send(&AcceptTicket {
            order_id: create.order_id,
            ready_by: 1_900_000_000_000,
        })
        .await?;
    stack
        .client
        .send(&StartTicketPreparation {
            order_id: create.order_id,
        })
        .await?;
    stack
        .recorder
        .wait_for(&id, "TicketPreparationStarted", WITHIN)
        .await?;
    stack
        .client
        .send(&CancelOrder {
            order_id: create.order_id,
            reason: None,
        })
        .await?;
    let outcome = stack
        .recorder
        .wait_for_any(
            &id,
            &["OrderCancelled", "OrderCancellationRejected"],
            WITHIN,
        )
        .await?;
    ensure!(
        short_type(&outcome) == "OrderCancellationRejected",
        "{id}: {}",
        short_type(&outcome)
    );
    check_types(stack, &id, ACCOUNTING, &["AuthorizeCard"])?;
    check_types(
        stack,
        &id,
        TICKETS,
        &[
            "TicketCreated",
            "TicketAccepted",
            "TicketPreparationStarted",
        ],
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_saga_path_over_the_real_stack() -> Result<()> {
    service_kit::init_test_subscriber();
    let stack = Stack::start(
        &[
            "restaurant",
            "consumer",
            "accounting",
            "kitchen",
            "order",
            "delivery",
        ],
        |_, figment| figment,
    )
    .await?;
    let world = seed(&stack).await?;
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
        approved(&stack, &world),
        unknown_consumer(&stack, &world),
        over_the_order_limit(&stack, &world),
        over_the_card_limit(&stack, &world),
        unknown_menu_item(&stack, &world),
        published_twice(&stack, &world),
        cancelled(&stack, &world),
        cancellation_refused(&stack, &world),
        refused_by_the_kitchen(&stack, &world),
    );
    let outcomes = [
        ("approved", a),
        ("unknown consumer", b),
        ("over the order limit", c),
        ("over the card limit", d),
        ("unknown menu item", e),
        ("published twice", f),
        ("cancelled", g),
        ("cancellation refused", h),
        ("refused by the kitchen", i),
    ];
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(name, outcome)| outcome.as_ref().err().map(|e| format!("{name}: {e:#}")))
        .collect();
    ensure!(
        failures.is_empty(),
        "{} paths failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // A saga that stalls shows in the order service's gauge (its relay's leader counts them).
    let order = stack
        .services
        .iter()
        .find(|s| s.name == "order")
        .expect("started");
    let stalled = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO saga_instances (id, saga_type, subject, state, status, resends)
         VALUES ($1, 'create-order', 'a stalled order', '{}', 'stalled', 10)",
    )
    .bind(stalled)
    .execute(order.database.pool())
    .await?;
    let gauge = |metrics: &str, value: &str| {
        metrics
            .lines()
            .any(|l| l == format!("ftgo_sagas_stalled {value}"))
    };
    wait_until(Duration::from_secs(10), || async {
        Ok(gauge(&order.metrics().await?, "1"))
    })
    .await?;
    sqlx::query("DELETE FROM saga_instances WHERE id = $1")
        .bind(stalled)
        .execute(order.database.pool())
        .await?;
    wait_until(Duration::from_secs(10), || async {
        Ok(gauge(&order.metrics().await?, "0"))
    })
    .await?;

    // Nothing was dead-lettered on the way.
    for service in &stack.services {
        let metrics = service.metrics().await?;
        let dead: Vec<&str> = metrics
            .lines()
            .filter(|l| {
                l.starts_with("ftgo_messages_handled_total") && !l.contains("outcome=\"ok\"")
            })
            .collect();
        ensure!(dead.is_empty(), "{} dead-lettered: {dead:?}", service.name);
    }
    for service in stack.services {
        service.stop().await?;
    }
    Ok(())
}
