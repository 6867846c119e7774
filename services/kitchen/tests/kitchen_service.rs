//! The kitchen service in-process over the real platform, each test on a database and a
//! consumer group of its own. The tests feed the menu replica by publishing restaurant events
//! themselves (the restaurant service need not run), send saga commands with
//! `ftgo.order.replies` as their reply-to and kitchen actions one-way, and read back what the
//! kitchen sent, by the fresh order id they used: the group starts at the beginning of the
//! shared topics, so earlier runs' records are there too.
//!
//! The tests take turns: every kitchen service consumes every command of the shared topic, so
//! two tests' services running at once would both answer each test's commands, on the same
//! topic and key, from databases that disagree.

use anyhow::{Result, bail, ensure};
use contracts::delivery::events::DeliveryPickedUp;
use contracts::kitchen::commands::{
    AcceptTicket, BeginCancelTicket, CancelCreateTicket, ConfirmCancelTicket, ConfirmCreateTicket,
    CreateTicket, MarkTicketReadyForPickup, StartTicketPreparation, UndoBeginCancelTicket,
    create_ticket::TicketLineItem,
};
use contracts::order::replies::Reply;
use contracts::order::replies::begin_cancel_ticket_failed::BeginCancelTicketFailure;
use contracts::order::replies::create_ticket_failed::CreateTicketFailure;
use contracts::restaurant::events::{
    MenuRevised, RestaurantCreated, menu_revised, restaurant_created,
};
use contracts::ticket::events::Event as TicketEvent;
use contracts::{Channel, Contract};
use messaging::{Message, Received, header};
use test_support::{eventually, now_ms, settle};
use uuid::Uuid;

const REPLIES: &str = "ftgo.order.replies";
const TICKET_EVENTS: &str = "ftgo.ticket.events";

test_support::service_under_test!(
    /// A kitchen service of the test's own, and what the test talks to it with.
    Kitchen,
    kitchen_service::DEFINITION
);

impl Kitchen {
    /// Publishes a saga command whose reply goes to `ftgo.order.replies`.
    async fn command<T: Contract>(&self, record: &T) -> Result<Message> {
        let message = messaging::command(self.message(record).await?, REPLIES);
        self.client.publish(T::TOPIC, &message).await?;
        Ok(message)
    }

    /// A new restaurant with `items` on its menu, in the kitchen's replica.
    async fn restaurant(&self, items: &[&str]) -> Result<Uuid> {
        let id = Uuid::new_v4();
        self.publish(&RestaurantCreated {
            restaurant_id: id,
            name: "Ajanta".into(),
            address: restaurant_created::Address {
                street1: "1 Main St".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94611".into(),
            },
            menu_items: items
                .iter()
                .map(|item| restaurant_created::MenuItem {
                    id: (*item).into(),
                    name: format!("dish {item}"),
                    price: restaurant_created::Money {
                        amount_minor: 999,
                        currency: "USD".into(),
                    },
                })
                .collect(),
            created_at: now_ms(),
        })
        .await?;
        // The two topics are consumed independently: a CreateTicket sent now could overtake it.
        self.until_menu_is(id, items).await?;
        Ok(id)
    }

    async fn until_menu_is(&self, restaurant: Uuid, items: &[&str]) -> Result<()> {
        let mut expected: Vec<String> = items.iter().map(|i| (*i).to_owned()).collect();
        expected.sort();
        eventually(
            &format!("the menu of {restaurant} in the replica"),
            || async {
                let menu: Vec<String> = sqlx::query_scalar(
                    "SELECT item_id FROM menu_items WHERE restaurant_id = $1 ORDER BY item_id",
                )
                .bind(restaurant)
                .fetch_all(self.service.database.pool())
                .await?;
                Ok((menu == expected).then_some(()))
            },
        )
        .await
    }

    /// The replies to the order's commands, once there are `count`.
    async fn replies(&self, order: Uuid, count: usize) -> Result<Vec<(Received, Reply)>> {
        let mut replies = Vec::new();
        for record in records_of(REPLIES, order, count).await? {
            let decoded = self
                .client
                .codec
                .decode_value(REPLIES, &record.message.payload)
                .await?;
            replies.push((record, Reply::from_decoded(decoded)?));
        }
        Ok(replies)
    }

    /// The order's ticket events, once there are `count`.
    async fn ticket_events(&self, order: Uuid, count: usize) -> Result<Vec<TicketEvent>> {
        let mut events = Vec::new();
        for record in records_of(TICKET_EVENTS, order, count).await? {
            let decoded = self
                .client
                .codec
                .decode_value(TICKET_EVENTS, &record.message.payload)
                .await?;
            events.push(TicketEvent::from_decoded(decoded)?);
        }
        Ok(events)
    }

    /// The ticket's state, and how many tickets and lines the order has.
    async fn ticket(&self, order: Uuid) -> Result<Option<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT state, (SELECT count(*) FROM ticket_line_items l WHERE l.order_id = t.order_id)
             FROM tickets t WHERE order_id = $1",
        )
        .bind(order)
        .fetch_optional(self.service.database.pool())
        .await?)
    }

    /// The ticket's state once it is `state` (the commands before it are handled).
    async fn until_state(&self, order: Uuid, state: &str) -> Result<()> {
        eventually(&format!("ticket {order} {state}"), || async {
            Ok(self
                .ticket(order)
                .await?
                .filter(|(s, _)| s == state)
                .map(|_| ()))
        })
        .await
    }
}

fn create_ticket(order: Uuid, restaurant: Uuid, lines: &[(&str, i32)]) -> CreateTicket {
    CreateTicket {
        order_id: order,
        restaurant_id: restaurant,
        line_items: lines
            .iter()
            .map(|(item, quantity)| TicketLineItem {
                menu_item_id: (*item).into(),
                name: format!("dish {item}"),
                quantity: *quantity,
            })
            .collect(),
    }
}

/// The records of `topic` keyed by `order`, waiting until there are at least `count`.
async fn records_of(topic: &str, order: Uuid, count: usize) -> Result<Vec<Received>> {
    test_support::records_of(topic, &order.to_string(), count).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ticket_is_granted_against_the_replica_or_refused_with_the_reason() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["vindaloo", "naan"]).await?;

    let granted = Uuid::new_v4();
    let command = kitchen
        .command(&create_ticket(
            granted,
            restaurant,
            &[("vindaloo", 2), ("naan", 1)],
        ))
        .await?;
    let replies = kitchen.replies(granted, 1).await?;
    let (record, reply) = &replies[0];
    ensure!(
        matches!(reply, Reply::CreateTicketSucceeded(s) if s.ticket_id == granted),
        "{reply:?}"
    );
    // A reply is in the command's conversation, caused by it, from the kitchen.
    let headers = &record.message.headers;
    ensure!(headers.get(header::CORRELATION_ID) == command.headers.get(header::CORRELATION_ID));
    ensure!(headers.get(header::CAUSATION_ID) == command.id());
    ensure!(headers.get(header::SOURCE) == Some("/ftgo/kitchen-service"));
    let events = kitchen.ticket_events(granted, 1).await?;
    let TicketEvent::TicketCreated(created) = &events[0] else {
        bail!("not TicketCreated: {events:?}");
    };
    ensure!(created.restaurant_id == restaurant);
    let lines: Vec<(&str, i32)> = created
        .line_items
        .iter()
        .map(|l| (l.menu_item_id.as_str(), l.quantity))
        .collect();
    ensure!(lines == [("vindaloo", 2), ("naan", 1)], "{lines:?}");
    ensure!(kitchen.ticket(granted).await? == Some(("CREATE_PENDING".into(), 2)));

    let refusals = [
        (
            create_ticket(Uuid::new_v4(), Uuid::new_v4(), &[("vindaloo", 1)]),
            CreateTicketFailure::UnknownRestaurant,
        ),
        (
            create_ticket(Uuid::new_v4(), restaurant, &[("naan", 1), ("sushi", 1)]),
            CreateTicketFailure::UnknownMenuItem,
        ),
        (
            create_ticket(Uuid::new_v4(), restaurant, &[("naan", 0)]),
            CreateTicketFailure::InvalidQuantity,
        ),
        (
            create_ticket(Uuid::new_v4(), restaurant, &[]),
            CreateTicketFailure::InvalidQuantity,
        ),
    ];
    for (command, _) in &refusals {
        kitchen.command(command).await?;
    }
    for (command, reason) in &refusals {
        let order = command.order_id;
        let replies = kitchen.replies(order, 1).await?;
        let Reply::CreateTicketFailed(failed) = &replies[0].1 else {
            bail!("{order}: {:?}", replies[0].1);
        };
        ensure!(failed.reason == *reason, "{order}: {failed:?}");
        ensure!(failed.detail.is_some());
        ensure!(
            kitchen.ticket(order).await?.is_none(),
            "{order} has a ticket"
        );
    }
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_create_ticket_is_answered_again_with_no_second_ticket() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["pho"]).await?;
    let order = Uuid::new_v4();
    let command = create_ticket(order, restaurant, &[("pho", 1)]);
    let first = kitchen.command(&command).await?;
    kitchen.client.publish(CreateTicket::TOPIC, &first).await?; // delivered twice: one effect
    kitchen.command(&command).await?; // the saga sends it again: a new message, the same order

    let replies = kitchen.replies(order, 2).await?;
    ensure!(
        replies
            .iter()
            .all(|(_, r)| matches!(r, Reply::CreateTicketSucceeded(s) if s.ticket_id == order)),
        "{replies:?}"
    );
    settle().await;
    ensure!(kitchen.replies(order, 2).await?.len() == 2);
    ensure!(kitchen.ticket_events(order, 1).await?.len() == 1);
    ensure!(kitchen.ticket(order).await? == Some(("CREATE_PENDING".into(), 1)));
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_goes_from_pending_to_picked_up_with_an_event_at_each_kitchen_step() -> Result<()>
{
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["ramen"]).await?;
    let order = Uuid::new_v4();
    let ready_by = now_ms() + 20 * 60 * 1000;
    kitchen
        .command(&create_ticket(order, restaurant, &[("ramen", 3)]))
        .await?;
    kitchen
        .command(&ConfirmCreateTicket { order_id: order })
        .await?;
    kitchen
        .command(&ConfirmCreateTicket { order_id: order })
        .await?; // re-sent: success again
    kitchen
        .publish(&AcceptTicket {
            order_id: order,
            ready_by,
        })
        .await?;
    kitchen
        .publish(&StartTicketPreparation { order_id: order })
        .await?;
    kitchen
        .publish(&MarkTicketReadyForPickup { order_id: order })
        .await?;
    // Too late to cancel once the kitchen started.
    kitchen
        .command(&BeginCancelTicket {
            order_id: order,
            restaurant_id: restaurant,
        })
        .await?;

    let replies: Vec<Reply> = kitchen
        .replies(order, 4)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    ensure!(
        matches!(replies[0], Reply::CreateTicketSucceeded(_)),
        "{replies:?}"
    );
    ensure!(matches!(replies[1], Reply::ConfirmCreateTicketSucceeded(_)));
    ensure!(matches!(replies[2], Reply::ConfirmCreateTicketSucceeded(_)));
    ensure!(
        matches!(&replies[3], Reply::BeginCancelTicketFailed(f)
            if f.reason == BeginCancelTicketFailure::TicketNotCancellable),
        "{:?}",
        replies[3]
    );
    let events = kitchen.ticket_events(order, 4).await?;
    ensure!(events.len() == 4, "{events:?}");
    ensure!(matches!(&events[0], TicketEvent::TicketCreated(_)));
    ensure!(
        matches!(&events[1], TicketEvent::TicketAccepted(a)
            if a.ready_by == ready_by && a.restaurant_id == restaurant),
        "{:?}",
        events[1]
    );
    ensure!(
        matches!(&events[2], TicketEvent::TicketPreparationStarted(e) if e.restaurant_id == restaurant)
    );
    ensure!(
        matches!(&events[3], TicketEvent::TicketReadyForPickup(e) if e.restaurant_id == restaurant)
    );
    kitchen.until_state(order, "READY_FOR_PICKUP").await?;

    // The courier takes the food: the ticket follows the delivery's event (twice: the
    // second, a re-sent event, changes nothing and is no mistake).
    let picked_up = DeliveryPickedUp {
        order_id: order,
        courier_id: Uuid::new_v4(),
        picked_up_at: now_ms(),
    };
    kitchen.publish(&picked_up).await?;
    kitchen.publish(&picked_up).await?;
    kitchen.until_state(order, "PICKED_UP").await?;
    settle().await;
    ensure!(kitchen.dead_letters(order, 0).await?.is_empty());
    ensure!(
        kitchen.ticket_events(order, 4).await?.len() == 4,
        "the pickup sent a ticket event"
    );
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_create_ticket_cancels_a_pending_ticket_and_succeeds_with_nothing_to_undo()
-> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["taco"]).await?;

    let pending = Uuid::new_v4();
    kitchen
        .command(&create_ticket(pending, restaurant, &[("taco", 2)]))
        .await?;
    kitchen
        .command(&CancelCreateTicket { order_id: pending })
        .await?;
    kitchen
        .command(&CancelCreateTicket { order_id: pending })
        .await?; // re-sent
    // No ticket: CreateTicket never came, or failed.
    let never = Uuid::new_v4();
    kitchen
        .command(&CancelCreateTicket { order_id: never })
        .await?;
    let failed = Uuid::new_v4();
    kitchen
        .command(&create_ticket(failed, restaurant, &[("burrito", 1)]))
        .await?;
    kitchen
        .command(&CancelCreateTicket { order_id: failed })
        .await?;

    let replies = kitchen.replies(pending, 3).await?;
    ensure!(
        matches!(replies[1].1, Reply::CancelCreateTicketSucceeded(_)),
        "{replies:?}"
    );
    ensure!(
        matches!(replies[2].1, Reply::CancelCreateTicketSucceeded(_)),
        "{replies:?}"
    );
    let events = kitchen.ticket_events(pending, 2).await?;
    ensure!(
        matches!(&events[1], TicketEvent::TicketCancelled(c) if c.restaurant_id == restaurant),
        "{events:?}"
    );
    kitchen.until_state(pending, "CANCELLED").await?;

    let replies = kitchen.replies(never, 1).await?;
    ensure!(
        matches!(replies[0].1, Reply::CancelCreateTicketSucceeded(_)),
        "{replies:?}"
    );
    let replies = kitchen.replies(failed, 2).await?;
    ensure!(
        matches!(replies[0].1, Reply::CreateTicketFailed(_)),
        "{replies:?}"
    );
    ensure!(
        matches!(replies[1].1, Reply::CancelCreateTicketSucceeded(_)),
        "{replies:?}"
    );

    settle().await;
    ensure!(
        kitchen.ticket_events(pending, 2).await?.len() == 2,
        "a second TicketCancelled"
    );
    ensure!(kitchen.ticket_events(never, 0).await?.is_empty());
    ensure!(kitchen.ticket_events(failed, 0).await?.is_empty());
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_begins_and_is_then_undone_or_confirmed() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["dal"]).await?;
    let begin = |order_id| BeginCancelTicket {
        order_id,
        restaurant_id: restaurant,
    };

    // Undone: back to ACCEPTED, where the kitchen carries on.
    let undone = Uuid::new_v4();
    kitchen
        .command(&create_ticket(undone, restaurant, &[("dal", 1)]))
        .await?;
    kitchen
        .command(&ConfirmCreateTicket { order_id: undone })
        .await?;
    kitchen
        .publish(&AcceptTicket {
            order_id: undone,
            ready_by: now_ms() + 600_000,
        })
        .await?;
    kitchen.command(&begin(undone)).await?;
    kitchen.until_state(undone, "CANCEL_PENDING").await?;
    kitchen
        .command(&UndoBeginCancelTicket {
            order_id: undone,
            restaurant_id: restaurant,
        })
        .await?;
    kitchen
        .publish(&StartTicketPreparation { order_id: undone })
        .await?;

    // Confirmed: cancelled, and everyone is told.
    let confirmed = Uuid::new_v4();
    kitchen
        .command(&create_ticket(confirmed, restaurant, &[("dal", 2)]))
        .await?;
    kitchen
        .command(&ConfirmCreateTicket {
            order_id: confirmed,
        })
        .await?;
    kitchen.command(&begin(confirmed)).await?;
    kitchen.command(&begin(confirmed)).await?; // re-sent: success again
    kitchen
        .command(&ConfirmCancelTicket {
            order_id: confirmed,
            restaurant_id: restaurant,
        })
        .await?;

    let unknown = Uuid::new_v4();
    kitchen.command(&begin(unknown)).await?;

    let replies = kitchen.replies(undone, 4).await?;
    ensure!(
        matches!(replies[2].1, Reply::BeginCancelTicketSucceeded(_)),
        "{replies:?}"
    );
    ensure!(
        matches!(replies[3].1, Reply::UndoBeginCancelTicketSucceeded(_)),
        "{replies:?}"
    );
    let events = kitchen.ticket_events(undone, 3).await?;
    ensure!(
        matches!(events[1], TicketEvent::TicketAccepted(_)),
        "{events:?}"
    );
    ensure!(
        matches!(events[2], TicketEvent::TicketPreparationStarted(_)),
        "{events:?}"
    );
    kitchen.until_state(undone, "PREPARING").await?;

    let replies = kitchen.replies(confirmed, 5).await?;
    ensure!(
        matches!(replies[2].1, Reply::BeginCancelTicketSucceeded(_)),
        "{replies:?}"
    );
    ensure!(
        matches!(replies[3].1, Reply::BeginCancelTicketSucceeded(_)),
        "{replies:?}"
    );
    ensure!(
        matches!(replies[4].1, Reply::ConfirmCancelTicketSucceeded(_)),
        "{replies:?}"
    );
    let events = kitchen.ticket_events(confirmed, 2).await?;
    ensure!(
        matches!(&events[1], TicketEvent::TicketCancelled(c) if c.order_id == confirmed),
        "{events:?}"
    );
    kitchen.until_state(confirmed, "CANCELLED").await?;

    let replies = kitchen.replies(unknown, 1).await?;
    ensure!(
        matches!(&replies[0].1, Reply::BeginCancelTicketFailed(f)
            if f.reason == BeginCancelTicketFailure::UnknownTicket),
        "{replies:?}"
    );
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_kitchen_action_is_dead_lettered_with_its_reason() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["paella"]).await?;

    let unknown = Uuid::new_v4();
    let accept_unknown = kitchen
        .publish(&AcceptTicket {
            order_id: unknown,
            ready_by: now_ms(),
        })
        .await?;
    // Pending creation: not yet the kitchen's to accept or cook.
    let pending = Uuid::new_v4();
    kitchen
        .command(&create_ticket(pending, restaurant, &[("paella", 1)]))
        .await?;
    // The pickup below comes on another topic, in no order with the kitchen's commands: it
    // is sent once the ticket exists, and the letters are compared in no order.
    kitchen.replies(pending, 1).await?;
    let accept_pending = kitchen
        .publish(&AcceptTicket {
            order_id: pending,
            ready_by: now_ms(),
        })
        .await?;
    let start_pending = kitchen
        .publish(&StartTicketPreparation { order_id: pending })
        .await?;
    // A pickup the delivery service would never send: the food is not ready.
    let picked_up_pending = kitchen
        .publish(&DeliveryPickedUp {
            order_id: pending,
            courier_id: Uuid::new_v4(),
            picked_up_at: now_ms(),
        })
        .await?;
    // The consumer moved on: the ticket's next command is handled.
    kitchen
        .command(&ConfirmCreateTicket { order_id: pending })
        .await?;

    let letters = kitchen.dead_letters(unknown, 1).await?;
    let letter = &letters[0].message;
    ensure!(letter.id() == accept_unknown.id());
    ensure!(letter.headers.get(header::dead_letter::REASON) == Some("unknown-ticket"));

    let letters = kitchen.dead_letters(pending, 3).await?;
    let mut reasons = test_support::ids_and_reasons(&letters);
    let mut expected = vec![
        (accept_pending.id(), Some("ticket-not-awaiting-acceptance")),
        (start_pending.id(), Some("ticket-not-accepted")),
        (picked_up_pending.id(), Some("ticket-not-ready-for-pickup")),
    ];
    reasons.sort();
    expected.sort();
    ensure!(reasons == expected, "{reasons:?}");
    kitchen.until_state(pending, "AWAITING_ACCEPTANCE").await?;
    ensure!(
        kitchen.ticket_events(pending, 1).await?.len() == 1,
        "a refused action sent an event"
    );
    kitchen.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_revision_replaces_the_replica_menu_and_an_older_menu_never_wins() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["soup", "salad"]).await?;
    let revised_menu = |items: &[&str]| -> Vec<menu_revised::MenuItem> {
        items
            .iter()
            .map(|item| menu_revised::MenuItem {
                id: (*item).into(),
                name: format!("dish {item}"),
                price: menu_revised::Money {
                    amount_minor: 500,
                    currency: "USD".into(),
                },
            })
            .collect()
    };
    kitchen
        .publish(&MenuRevised {
            restaurant_id: restaurant,
            menu_items: revised_menu(&["salad", "stew"]),
            revised_at: now_ms() + 1,
        })
        .await?;
    kitchen
        .until_menu_is(restaurant, &["salad", "stew"])
        .await?;
    let gone = Uuid::new_v4();
    kitchen
        .command(&create_ticket(gone, restaurant, &[("soup", 1)]))
        .await?;
    let added = Uuid::new_v4();
    kitchen
        .command(&create_ticket(added, restaurant, &[("stew", 1)]))
        .await?;
    let replies = kitchen.replies(gone, 1).await?;
    ensure!(
        matches!(&replies[0].1, Reply::CreateTicketFailed(f) if f.reason == CreateTicketFailure::UnknownMenuItem),
        "{replies:?}"
    );
    let replies = kitchen.replies(added, 1).await?;
    ensure!(
        matches!(replies[0].1, Reply::CreateTicketSucceeded(_)),
        "{replies:?}"
    );

    // A revision of a restaurant the replica never heard of: its menu is kept.
    let stranger = Uuid::new_v4();
    let revised_at = now_ms();
    kitchen
        .publish(&MenuRevised {
            restaurant_id: stranger,
            menu_items: revised_menu(&["curry"]),
            revised_at,
        })
        .await?;
    kitchen.until_menu_is(stranger, &["curry"]).await?;
    // Its creation, arriving late with an older menu, names it but keeps the newer menu.
    kitchen
        .publish(&RestaurantCreated {
            restaurant_id: stranger,
            name: "Late".into(),
            address: restaurant_created::Address {
                street1: "2 Side St".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94612".into(),
            },
            menu_items: vec![],
            created_at: revised_at - 60_000,
        })
        .await?;
    eventually("the late restaurant's name", || async {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM restaurants WHERE id = $1")
            .bind(stranger)
            .fetch_one(kitchen.service.database.pool())
            .await?;
        Ok(name.filter(|n| n == "Late").map(|_| ()))
    })
    .await?;
    kitchen.until_menu_is(stranger, &["curry"]).await?;
    let order = Uuid::new_v4();
    kitchen
        .command(&create_ticket(order, stranger, &[("curry", 2)]))
        .await?;
    let replies = kitchen.replies(order, 1).await?;
    ensure!(
        matches!(replies[0].1, Reply::CreateTicketSucceeded(_)),
        "{replies:?}"
    );
    kitchen.0.stop().await
}

/// A dead-lettered CreateTicket replayed after its saga cancelled the ticket it never made:
/// refused for good (`compensated`), with no ticket and no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_ticket_after_its_compensation_is_refused_and_leaves_no_ticket() -> Result<()> {
    let kitchen = Kitchen::start().await?;
    let restaurant = kitchen.restaurant(&["samosa"]).await?;
    let order = Uuid::new_v4();
    kitchen
        .command(&CancelCreateTicket { order_id: order })
        .await?;
    let replies = kitchen.replies(order, 1).await?;
    ensure!(matches!(
        replies[0].1,
        Reply::CancelCreateTicketSucceeded(_)
    ));
    let late = messaging::command(
        kitchen
            .message(&create_ticket(order, restaurant, &[("samosa", 2)]))
            .await?
            .with_header("ftgo_replay_of", "ftgo.kitchen-service.dlt/0/0"),
        REPLIES,
    );
    kitchen.client.publish(CreateTicket::TOPIC, &late).await?;
    let letters = kitchen.dead_letters(order, 1).await?;
    ensure!(
        letters[0].message.id() == late.id()
            && letters[0].message.headers.get(header::dead_letter::REASON) == Some("compensated"),
        "{:?}",
        letters[0].message.headers
    );
    settle().await;
    ensure!(
        kitchen.replies(order, 1).await?.len() == 1,
        "the late command was answered"
    );
    ensure!(
        kitchen.ticket(order).await?.is_none(),
        "a ticket for a compensated order"
    );
    kitchen.0.stop().await
}
