//! `ftgo order create | cancel | show`: what a client does with orders, through Kafka only.
//!
//! `create` and `cancel` publish the command (CreateOrder, CancelOrder on
//! `ftgo.order.commands`, keyed by the order id) and, with `--wait`, follow
//! `ftgo.order.events` until the saga's outcome for that order arrives. The follower starts
//! at the topic's high watermarks taken *before* publishing, so an answer written however soon
//! after the command is not missed.
//!
//! `show` reconstructs an order's history from every topic that carries messages keyed by
//! the order id. It reads those topics whole (every partition, without a group): an order's
//! records all share one partition only as long as every producer partitions keys alike, and a
//! client in another language (librdkafka's default `consistent_random`) does not.

mod show;

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use apache_avro::Uuid;
use contracts::Codec;
use contracts::order::commands::{CancelOrder, CreateOrder, create_order};
use kafka::TopicTail;
use messaging::header;

use crate::avro_json::{millis, summary};
use crate::send::{Sender, kafka_unreachable};
use crate::wait::{self, Poll, Waited};
pub use show::{records_of, show};

const ORDER_EVENTS: &str = <contracts::order::events::Event as contracts::Channel>::TOPIC;

/// Every topic whose records are keyed by the order id (the catalog's, in its order).
pub fn order_topics() -> Vec<&'static str> {
    contracts::catalog::topics_keyed_by("orderId")
}

/// Where an order is delivered when `--address` is not given.
pub const DEFAULT_ADDRESS: &str = "1 Main Street, Oakland, CA, 94612";

/// Waiting for the saga's answer.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitOptions {
    /// Wait for the outcome and exit 0 when it succeeded, 2 when it was refused, 1 when
    /// nothing came in time.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `ftgo order create`.
#[derive(Debug, clap::Args)]
pub struct CreateOptions {
    /// The consumer (customer) id.
    #[arg(long, value_name = "ID")]
    pub consumer: Uuid,
    /// The restaurant id.
    #[arg(long, value_name = "ID")]
    pub restaurant: Uuid,
    /// A menu item of the restaurant and how many (1 if left out); repeat for more lines.
    #[arg(long = "item", value_name = "MENU_ITEM_ID[:QTY]", required = true, value_parser = parse_item)]
    pub items: Vec<(String, i32)>,
    /// The order's id (a new random one if left out). Publishing the same id again is harmless.
    #[arg(long, value_name = "UUID")]
    pub order_id: Option<Uuid>,
    /// Where to deliver: "street, city, state, zip" (or "street, street 2, city, state, zip").
    #[arg(long, default_value = DEFAULT_ADDRESS, value_name = "ADDRESS", value_parser = parse_address)]
    pub address: create_order::Address,
    /// When to deliver, from now.
    #[arg(long, default_value = "45m", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub deliver_in: Duration,
    #[command(flatten)]
    pub wait: WaitOptions,
}

/// `MENU_ITEM_ID[:QTY]`.
pub fn parse_item(text: &str) -> Result<(String, i32), String> {
    let (id, quantity) = match text.rsplit_once(':') {
        Some((id, quantity)) => {
            let quantity: i32 = quantity.trim().parse().map_err(|_| {
                format!("{quantity:?} is not a quantity (MENU_ITEM_ID[:QTY], e.g. samosa:2)")
            })?;
            (id, quantity)
        }
        None => (text, 1),
    };
    if id.trim().is_empty() {
        return Err(format!("{text:?} names no menu item (e.g. samosa:2)"));
    }
    if quantity < 1 {
        return Err(format!("the quantity of {id} is {quantity}; at least 1"));
    }
    Ok((id.trim().to_owned(), quantity))
}

/// `street, city, state, zip` or `street, street 2, city, state, zip`.
pub fn parse_address(text: &str) -> Result<create_order::Address, String> {
    let parts: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!(
            "{text:?} has an empty part; \"street, city, state, zip\""
        ));
    }
    match <[String; 4]>::try_from(parts.clone()) {
        Ok([street1, city, state, zip]) => Ok(create_order::Address {
            street1,
            street2: None,
            city,
            state,
            zip,
        }),
        Err(_) => match <[String; 5]>::try_from(parts) {
            Ok([street1, street2, city, state, zip]) => Ok(create_order::Address {
                street1,
                street2: Some(street2),
                city,
                state,
                zip,
            }),
            Err(_) => Err(format!(
                "{text:?} is not \"street, city, state, zip\" (four or five comma-separated parts)"
            )),
        },
    }
}

/// An outcome `--wait` waits for: the event, how to print it, the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    full_name: &'static str,
    pub label: &'static str,
    code: u8,
}

/// What came of a command `--wait` waited for.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    /// The outcome event, decoded (`None` when it did not decode, or nothing came).
    pub value: Option<apache_avro::types::Value>,
}

impl Answer {
    /// 0: it succeeded, 2: it was refused, 1: nothing came in time.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.outcome.code)
    }

    /// A string or enum field of the outcome event.
    pub fn field(&self, name: &str) -> Option<&str> {
        use apache_avro::types::Value;
        let Some(Value::Record(fields)) = &self.value else {
            return None;
        };
        fields
            .iter()
            .find(|(field, _)| field == name)
            .and_then(|(_, value)| match value {
                Value::Enum(_, symbol) | Value::String(symbol) => Some(symbol.as_str()),
                _ => None,
            })
    }
}

/// No outcome within the timeout.
pub const NO_OUTCOME: Outcome = Outcome {
    full_name: "",
    label: "NO OUTCOME",
    code: 1,
};

pub const APPROVED: Outcome = CREATE_OUTCOMES[0];
pub const REJECTED: Outcome = CREATE_OUTCOMES[1];
pub const CANCELLED: Outcome = CANCEL_OUTCOMES[0];

const CREATE_OUTCOMES: [Outcome; 2] = [
    Outcome {
        full_name: <contracts::order::events::OrderApproved as contracts::Contract>::FULL_NAME,
        label: "APPROVED",
        code: 0,
    },
    Outcome {
        full_name: <contracts::order::events::OrderRejected as contracts::Contract>::FULL_NAME,
        label: "REJECTED",
        code: 2,
    },
];

const CANCEL_OUTCOMES: [Outcome; 2] = [
    Outcome {
        full_name: <contracts::order::events::OrderCancelled as contracts::Contract>::FULL_NAME,
        label: "CANCELLED",
        code: 0,
    },
    Outcome {
        full_name:
            <contracts::order::events::OrderCancellationRejected as contracts::Contract>::FULL_NAME,
        label: "CANCELLATION REJECTED",
        code: 2,
    },
];

pub async fn create(bootstrap: &str, registry: &str, options: &CreateOptions) -> Result<ExitCode> {
    let (order_id, answer) = place(bootstrap, registry, options).await?;
    Ok(match answer {
        Some(answer) => answer.exit_code(),
        None => {
            eprintln!(
                "follow it: ftgo order show {order_id} (or create with --wait for the outcome)"
            );
            ExitCode::SUCCESS
        }
    })
}

/// Publishes the CreateOrder of `options` and, with `--wait`, waits for the saga's answer.
pub async fn place(
    bootstrap: &str,
    registry: &str,
    options: &CreateOptions,
) -> Result<(Uuid, Option<Answer>)> {
    let order_id = options.order_id.unwrap_or_else(Uuid::new_v4);
    let delivery_time = millis(SystemTime::now() + options.deliver_in)
        .context("--deliver-in is too far in the future")?;
    let command = CreateOrder {
        order_id,
        consumer_id: options.consumer,
        restaurant_id: options.restaurant,
        line_items: options
            .items
            .iter()
            .map(|(id, quantity)| create_order::OrderLineItem {
                menu_item_id: id.clone(),
                quantity: *quantity,
            })
            .collect(),
        delivery_address: options.address.clone(),
        delivery_time,
    };
    let said = format!("order {order_id}");
    let answer = send_and_wait(
        bootstrap,
        registry,
        &command,
        order_id,
        &said,
        &options.wait,
        &CREATE_OUTCOMES,
    )
    .await?;
    Ok((order_id, answer))
}

pub async fn cancel(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    reason: Option<String>,
    wait: &WaitOptions,
) -> Result<ExitCode> {
    let answer = request_cancel(bootstrap, registry, order_id, reason, wait).await?;
    Ok(answer.map_or(ExitCode::SUCCESS, |answer| answer.exit_code()))
}

/// Publishes CancelOrder and, with `--wait`, waits for the saga's answer.
pub async fn request_cancel(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    reason: Option<String>,
    wait: &WaitOptions,
) -> Result<Option<Answer>> {
    let said = format!("cancel requested for order {order_id}");
    let command = CancelOrder { order_id, reason };
    send_and_wait(
        bootstrap,
        registry,
        &command,
        order_id,
        &said,
        wait,
        &CANCEL_OUTCOMES,
    )
    .await
}

/// Publishes `command` about `order_id` and prints `said`; with `--wait`, follows the order
/// events from where they ended before the command went out until one of `outcomes` (its exit
/// status), or the timeout. `None` when not waiting.
async fn send_and_wait<T: contracts::Contract>(
    bootstrap: &str,
    registry: &str,
    command: &T,
    order_id: Uuid,
    said: &str,
    wait: &WaitOptions,
    outcomes: &[Outcome],
) -> Result<Option<Answer>> {
    let sender = Sender::connect(bootstrap, registry)?;
    let starts = if wait.wait {
        Some(event_ends(bootstrap)?)
    } else {
        None
    };
    let sent = sender.send(command, None).await?;
    out!("{said}");
    eprintln!("{sent}");
    let Some(starts) = starts else {
        return Ok(None);
    };
    let answer = wait_for_outcome(
        bootstrap,
        sender.codec(),
        order_id,
        &starts,
        outcomes,
        wait.timeout,
    )
    .await?;
    Ok(Some(answer))
}

/// Where `ftgo.order.events` ends now: following from here sees everything written later.
fn event_ends(bootstrap: &str) -> Result<Vec<(i32, i64)>> {
    let ends = kafka::watermarks(bootstrap, ORDER_EVENTS, Duration::from_secs(10))
        .with_context(|| format!("reading where {ORDER_EVENTS} ends"))
        .with_context(|| kafka_unreachable(bootstrap))?;
    Ok(ends.iter().map(|w| (w.partition, w.high)).collect())
}

/// Follows `ftgo.order.events` from `starts` until one of `outcomes` arrives for the order.
async fn wait_for_outcome(
    bootstrap: &str,
    codec: &Codec,
    order_id: Uuid,
    starts: &[(i32, i64)],
    outcomes: &[Outcome],
    timeout: Duration,
) -> Result<Answer> {
    let key = order_id.to_string();
    let names: Vec<&str> = outcomes.iter().map(|o| short(o.full_name)).collect();
    let awaited = names.join(" or ");
    eprintln!(
        "waiting up to {} for {awaited} of order {key} on {ORDER_EVENTS}...",
        humantime::format_duration(timeout)
    );
    let follower = TopicTail::from_offsets(bootstrap, ORDER_EVENTS, starts)?;
    let waited = wait::until(timeout, Duration::from_secs(10), async || {
        let pending = || Ok(Poll::Pending(format!("{awaited} of order {key}")));
        let Some(record) = follower.next(Duration::from_millis(200))? else {
            return pending();
        };
        if record.message.key.as_deref() != Some(key.as_str()) {
            return pending();
        }
        // The payload says which record it is; ce_type only when it does not decode.
        let decoded = codec
            .decode_value(ORDER_EVENTS, &record.message.payload)
            .await;
        let record_type = match &decoded {
            Ok(decoded) => decoded.full_name.as_str(),
            Err(_) => record.message.headers.get(header::TYPE).unwrap_or("?"),
        };
        let Some(outcome) = outcomes.iter().find(|o| o.full_name == record_type) else {
            eprintln!("order {key}: {}", short(record_type));
            return pending();
        };
        let value = match decoded {
            Ok(decoded) => {
                out!(
                    "{} {}",
                    outcome.label,
                    summary(&decoded.value, &["orderId"])
                );
                Some(decoded.value)
            }
            Err(error) => {
                out!("{} (value not decodable: {error})", outcome.label);
                None
            }
        };
        anyhow::Ok(Poll::Ready(Answer {
            outcome: *outcome,
            value,
        }))
    })
    .await?;
    if let Waited::Ready(answer) = waited {
        return Ok(answer);
    }
    eprintln!(
        "no {awaited} for order {key} within {}s. Check how far it got: ftgo order show {key}; \
         the services' logs (the order service runs the saga); the platform: deploy/local/status; \
         the consumer groups' lag: ftgo topics",
        timeout.as_secs()
    );
    Ok(Answer {
        outcome: NO_OUTCOME,
        value: None,
    })
}

pub(crate) fn short(full_name: &str) -> &str {
    full_name.rsplit('.').next().unwrap_or(full_name)
}

/// An order id argument.
pub fn parse_order_id(text: &str) -> Result<Uuid, String> {
    text.trim().parse().map_err(|_| {
        format!("{text:?} is not an order id (a uuid, as `ftgo order create` prints it)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_an_id_and_a_quantity() {
        assert_eq!(parse_item("samosa:2"), Ok(("samosa".into(), 2)));
        assert_eq!(parse_item("garlic-naan"), Ok(("garlic-naan".into(), 1)));
        assert_eq!(parse_item("a:b:3"), Ok(("a:b".into(), 3)));
        assert!(parse_item("samosa:0").is_err());
        assert!(parse_item("samosa:two").is_err());
        assert!(parse_item(":2").is_err());
    }

    #[test]
    fn addresses_have_four_or_five_parts() {
        let address = parse_address("1 Main St, Oakland, CA, 94612").expect("four");
        assert_eq!(address.street1, "1 Main St");
        assert_eq!(address.zip, "94612");
        assert_eq!(address.street2, None);
        let address = parse_address("1 Main St, Flat 3, Oakland, CA, 94612").expect("five");
        assert_eq!(address.street2.as_deref(), Some("Flat 3"));
        assert!(parse_address("1 Main St, Oakland").is_err());
        assert!(parse_address("1 Main St, , CA, 94612").is_err());
    }
}
