//! `ftgo kitchen` and `ftgo delivery`: the one-way actions of restaurant staff (accept, start,
//! ready) and couriers (pick up, drop off) on an order. Each is a command on its service's
//! command topic, keyed by the order; with `--wait` the CLI follows the
//! service's event topic and its dead-letter topic until the action's event (exit 0) or its
//! refusal, the dead letter of the very message sent (same `ce_id`; exit 2, with the reason).
//!
//! A pickup needs the kitchen's TicketReadyForPickup handled by the delivery service first
//! (the two topics are consumed independently), so `ftgo delivery pick-up` finds that event
//! and waits until the delivery service's group has committed past it before it sends; it
//! also finds the courier the delivery is assigned to (CourierAssigned) unless `--courier`
//! says who.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use apache_avro::Uuid;
use apache_avro::types::Value;
use contracts::Contract;
use contracts::delivery::commands::{DropOffDelivery, PickUpDelivery};
use contracts::delivery::events::{CourierAssigned, DeliveryDelivered, DeliveryPickedUp};
use contracts::kitchen::commands::{
    AcceptTicket, MarkTicketReadyForPickup, StartTicketPreparation,
};
use contracts::ticket::events::{TicketAccepted, TicketPreparationStarted, TicketReadyForPickup};
use kafka::TopicTail;
use messaging::header;

use crate::avro_json::summary;
use crate::order::{self, WaitOptions, short};
use crate::seed::taken_in::{GroupWait, await_taken_in};
use crate::send::{Sender, kafka_unreachable};
use crate::wait::{self, Poll, Waited};

/// `ftgo kitchen ...`: restaurant staff's actions on an order's ticket.
#[derive(Debug, clap::Subcommand)]
pub enum KitchenCommand {
    /// AcceptTicket: the restaurant takes the order and promises it ready in --ready-in;
    /// waits for TicketAccepted (the delivery is then scheduled and a courier assigned).
    Accept {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: Uuid,
        /// How long until the food is ready.
        #[arg(long, default_value = "20m", value_name = "DURATION", value_parser = humantime::parse_duration)]
        ready_in: Duration,
        #[command(flatten)]
        wait: WaitOptions,
    },
    /// StartTicketPreparation: cooking starts (the order can no longer be cancelled); waits for
    /// TicketPreparationStarted.
    Start {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: Uuid,
        #[command(flatten)]
        wait: WaitOptions,
    },
    /// MarkTicketReadyForPickup: the food is ready for the courier; waits for
    /// TicketReadyForPickup.
    Ready {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: Uuid,
        #[command(flatten)]
        wait: WaitOptions,
    },
}

/// `ftgo delivery ...`: a courier's actions on an order's delivery.
#[derive(Debug, clap::Subcommand)]
pub enum DeliveryCommand {
    /// PickUpDelivery: the courier has the food. Waits until the delivery service has taken in
    /// the kitchen's TicketReadyForPickup, sends, then waits for DeliveryPickedUp.
    PickUp {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: Uuid,
        #[command(flatten)]
        courier: CourierArgs,
        #[command(flatten)]
        wait: WaitOptions,
    },
    /// DropOffDelivery: the courier handed the food over; waits for DeliveryDelivered.
    DropOff {
        #[arg(value_parser = order::parse_order_id, value_name = "ORDER_ID")]
        order_id: Uuid,
        #[command(flatten)]
        courier: CourierArgs,
        #[command(flatten)]
        wait: WaitOptions,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CourierArgs {
    /// The courier's id (default: the one the delivery is assigned to, from its
    /// CourierAssigned).
    #[arg(long, value_parser = order::parse_order_id, value_name = "COURIER_ID")]
    pub courier: Option<Uuid>,
    /// The delivery service's consumer group, whose progress a pickup waits for.
    #[arg(long, default_value = "delivery-service", value_name = "GROUP")]
    pub delivery_group: String,
}

/// What an action waits for: its event on its service's event topic, or its dead letter.
struct Expect {
    event: &'static str,
    event_topic: &'static str,
    /// The dead-letter topic of the service that handles the command.
    dead_letters: String,
}

impl Expect {
    fn of<E: Contract>(service: &str) -> Self {
        Self {
            event: E::FULL_NAME,
            event_topic: E::TOPIC,
            dead_letters: format!("ftgo.{service}-service.dlt"),
        }
    }
}

/// How an action ended (said as it ended): its event came, or the service refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    Done,
    Refused,
    /// Not waited for, or the wait timed out.
    Unknown,
}

impl Acted {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Acted::Done => ExitCode::SUCCESS,
            Acted::Refused => ExitCode::from(2),
            Acted::Unknown => ExitCode::from(1),
        }
    }
}

pub async fn kitchen(
    bootstrap: &str,
    registry: &str,
    command: &KitchenCommand,
) -> Result<ExitCode> {
    Ok(kitchen_act(bootstrap, registry, command).await?.exit_code())
}

pub async fn delivery(
    bootstrap: &str,
    registry: &str,
    command: &DeliveryCommand,
) -> Result<ExitCode> {
    Ok(delivery_act(bootstrap, registry, command)
        .await?
        .exit_code())
}

/// A kitchen action, sent and (with `--wait`) waited for.
pub async fn kitchen_act(
    bootstrap: &str,
    registry: &str,
    command: &KitchenCommand,
) -> Result<Acted> {
    match command {
        KitchenCommand::Accept {
            order_id,
            ready_in,
            wait,
        } => {
            let ready_in = i64::try_from(ready_in.as_millis()).unwrap_or(i64::MAX);
            let command = AcceptTicket {
                order_id: *order_id,
                ready_by: contracts::now_ms().saturating_add(ready_in),
            };
            let expect = Expect::of::<TicketAccepted>("kitchen");
            act(bootstrap, registry, &command, *order_id, expect, wait).await
        }
        KitchenCommand::Start { order_id, wait } => {
            let command = StartTicketPreparation {
                order_id: *order_id,
            };
            let expect = Expect::of::<TicketPreparationStarted>("kitchen");
            act(bootstrap, registry, &command, *order_id, expect, wait).await
        }
        KitchenCommand::Ready { order_id, wait } => {
            let command = MarkTicketReadyForPickup {
                order_id: *order_id,
            };
            let expect = Expect::of::<TicketReadyForPickup>("kitchen");
            act(bootstrap, registry, &command, *order_id, expect, wait).await
        }
    }
}

/// A courier's action, sent and (with `--wait`) waited for.
pub async fn delivery_act(
    bootstrap: &str,
    registry: &str,
    command: &DeliveryCommand,
) -> Result<Acted> {
    match command {
        DeliveryCommand::PickUp {
            order_id,
            courier,
            wait,
        } => pick_up(bootstrap, registry, *order_id, courier, wait).await,
        DeliveryCommand::DropOff {
            order_id,
            courier,
            wait,
        } => drop_off(bootstrap, registry, *order_id, courier, wait).await,
    }
}

async fn pick_up(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    courier: &CourierArgs,
    wait: &WaitOptions,
) -> Result<Acted> {
    let known = order::records_of(
        bootstrap,
        registry,
        order_id,
        &[TicketReadyForPickup::TOPIC],
    )
    .await?;
    let Some(ready) = known
        .iter()
        .find(|r| r.full_name == TicketReadyForPickup::FULL_NAME)
    else {
        bail!(
            "the kitchen has not marked order {order_id} ready for pickup (no TicketReadyForPickup on {}): \
             ftgo kitchen ready {order_id}; ftgo order show {order_id} says where it is",
            TicketReadyForPickup::TOPIC
        );
    };
    let origin = &ready.received.origin;
    let taken_in = GroupWait {
        group: courier.delivery_group.clone(),
        topic: origin.topic.clone(),
        records: vec![(
            "TicketReadyForPickup".to_owned(),
            origin.partition,
            origin.offset,
        )],
    };
    await_taken_in(
        bootstrap,
        &[taken_in],
        wait.timeout,
        "the ticket's readiness",
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let courier_id = courier_of(bootstrap, registry, order_id, courier, wait.timeout).await?;
    let command = PickUpDelivery {
        order_id,
        courier_id,
    };
    let expect = Expect::of::<DeliveryPickedUp>("delivery");
    act(bootstrap, registry, &command, order_id, expect, wait).await
}

async fn drop_off(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    courier: &CourierArgs,
    wait: &WaitOptions,
) -> Result<Acted> {
    let courier_id = courier_of(bootstrap, registry, order_id, courier, wait.timeout).await?;
    let command = DropOffDelivery {
        order_id,
        courier_id,
    };
    let expect = Expect::of::<DeliveryDelivered>("delivery");
    act(bootstrap, registry, &command, order_id, expect, wait).await
}

/// `--courier`, or the courier the order's CourierAssigned names, waiting up to `timeout` for
/// it (the delivery service assigns one when it schedules the delivery, after the kitchen's
/// acceptance, and its relay publishes the event a moment later).
async fn courier_of(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    courier: &CourierArgs,
    timeout: Duration,
) -> Result<Uuid> {
    if let Some(id) = courier.courier {
        return Ok(id);
    }
    let awaited = format!("the CourierAssigned of order {order_id}");
    let waited = wait::until(timeout, Duration::from_secs(10), async || {
        let known =
            order::records_of(bootstrap, registry, order_id, &[CourierAssigned::TOPIC]).await?;
        let assigned = known
            .iter()
            .rev()
            .find(|r| r.full_name == CourierAssigned::FULL_NAME);
        let Some(assigned) = assigned else {
            wait::pause(Duration::from_millis(500)).await;
            return anyhow::Ok(Poll::Pending(awaited.clone()));
        };
        Ok(Poll::Ready(match assigned.field("courierId") {
            Some(Value::Uuid(id)) => *id,
            Some(Value::String(text)) => text.parse().context("CourierAssigned's courierId")?,
            other => bail!("CourierAssigned of order {order_id} names no courier: {other:?}"),
        }))
    })
    .await?;
    match waited {
        Waited::Ready(id) => Ok(id),
        Waited::TimedOut => bail!(
            "no courier is assigned to order {order_id} (no CourierAssigned on {} within {}s): \
             the kitchen accepts the ticket first (ftgo kitchen accept {order_id}), a courier \
             must be available, or name one with --courier",
            CourierAssigned::TOPIC,
            timeout.as_secs()
        ),
    }
}

/// Sends `command`, says so, and (with `--wait`) follows its event topic and dead-letter
/// topic from where they ended before it went out, until the order's `expect.event` or the
/// dead letter of the message sent.
async fn act<T: Contract>(
    bootstrap: &str,
    registry: &str,
    command: &T,
    order_id: Uuid,
    expect: Expect,
    wait: &WaitOptions,
) -> Result<Acted> {
    let sender = Sender::connect(bootstrap, registry)?;
    let ends = |topic: &str| -> Result<Vec<(i32, i64)>> {
        let ends = kafka::watermarks(bootstrap, topic, Duration::from_secs(10))
            .with_context(|| format!("reading where {topic} ends"))
            .with_context(|| kafka_unreachable(bootstrap))?;
        Ok(ends.iter().map(|w| (w.partition, w.high)).collect())
    };
    let starts = if wait.wait {
        Some((ends(expect.event_topic)?, ends(&expect.dead_letters)?))
    } else {
        None
    };
    let sent = sender.send(command, None).await?;
    out!("{}", short(T::FULL_NAME));
    eprintln!("{sent}");
    let Some((event_starts, letter_starts)) = starts else {
        return Ok(Acted::Unknown);
    };
    let events = TopicTail::from_offsets(bootstrap, expect.event_topic, &event_starts)?;
    let letters = TopicTail::from_offsets(bootstrap, &expect.dead_letters, &letter_starts)?;
    let key = order_id.to_string();
    let awaited = format!(
        "{} of order {key} on {} (or its dead letter on {})",
        short(expect.event),
        expect.event_topic,
        expect.dead_letters
    );
    eprintln!(
        "waiting up to {} for {awaited}...",
        humantime::format_duration(wait.timeout)
    );
    let waited = wait::until(wait.timeout, Duration::from_secs(10), async || {
        let mut quiet = true;
        if let Some(record) = letters.next(Duration::from_millis(50))? {
            quiet = false;
            let headers = &record.message.headers;
            if headers.get(header::ID) == Some(sent.id.as_str()) {
                let reason = headers.get(header::dead_letter::REASON).unwrap_or("?");
                let error = headers.get(header::dead_letter::ERROR).unwrap_or("?");
                out!("refused ({reason}): {error}");
                return anyhow::Ok(Poll::Ready(Acted::Refused));
            }
        }
        if let Some(record) = events.next(Duration::from_millis(150))? {
            quiet = false;
            if record.message.key.as_deref() == Some(key.as_str())
                && let Ok(decoded) = sender
                    .codec()
                    .decode_value(expect.event_topic, &record.message.payload)
                    .await
                && decoded.full_name == expect.event
            {
                out!(
                    "{} {}",
                    short(expect.event),
                    summary(&decoded.value, &["orderId"])
                );
                return Ok(Poll::Ready(Acted::Done));
            }
        }
        if quiet {
            wait::pause(Duration::from_millis(50)).await;
        }
        Ok(Poll::Pending(awaited.clone()))
    })
    .await?;
    match waited {
        Waited::Ready(acted) => Ok(acted),
        Waited::TimedOut => {
            eprintln!(
                "no {awaited} within {}s: is the service running (deploy/local/status)? \
                 ftgo order show {key} says where the order is",
                wait.timeout.as_secs()
            );
            Ok(Acted::Unknown)
        }
    }
}
