//! `ftgo order show`: an order's history from every topic keyed by its id, and its state.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use apache_avro::Uuid;
use apache_avro::types::Value;
use contracts::Codec;
use kafka::read_topic;
use messaging::{Received, header};

use super::{ORDER_EVENTS, order_topics, short};
use crate::avro_json::{rfc3339_millis, summary};
use crate::output::{self, Output};
use crate::send::probe_kafka;

const DELIVERY_EVENTS: &str = <contracts::delivery::events::Event as contracts::Channel>::TOPIC;

/// One record of an order's history.
#[derive(Debug)]
pub struct Record {
    pub received: Received,
    /// Which of the topics read: breaks ties between records of the same millisecond.
    topic_rank: usize,
    /// The record's full name (its `ce_type` when it does not decode).
    pub full_name: String,
    pub value: Result<Value, String>,
}

impl Record {
    /// A field of the decoded value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.value
            .as_ref()
            .ok()
            .and_then(|value| field(value, name))
    }
}

/// Every record about `order_id` on `topics` (each keyed by the order id), decoded, in time
/// order.
pub async fn records_of(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    topics: &[&'static str],
) -> Result<Vec<Record>> {
    probe_kafka(bootstrap)?;
    history(bootstrap, registry, topics, &order_id.to_string()).await
}

/// What the order events say the order's state is, from events in time order.
fn order_state<'a>(
    events: impl IntoIterator<Item = (&'a str, Option<&'a Value>)>,
) -> Option<String> {
    let mut state = None;
    for (full_name, value) in events {
        use contracts::Contract as _;
        use contracts::order::events as e;
        state = match full_name {
            e::OrderCreated::FULL_NAME => Some("APPROVAL_PENDING".to_owned()),
            e::OrderApproved::FULL_NAME => Some("APPROVED".to_owned()),
            e::OrderRejected::FULL_NAME => {
                let reason = value.and_then(|v| field(v, "reason")).map(|r| match r {
                    Value::Enum(_, symbol) => symbol.clone(),
                    other => format!("{other:?}"),
                });
                Some(format!("REJECTED({})", reason.unwrap_or_default()))
            }
            e::OrderCancelled::FULL_NAME => Some("CANCELLED".to_owned()),
            _ => state,
        };
    }
    state
}

/// What the delivery events say the delivery's state is, from events in time order (`None`
/// before DeliveryScheduled).
fn delivery_state<'a>(
    events: impl IntoIterator<Item = (&'a str, Option<&'a Value>)>,
) -> Option<String> {
    use contracts::Contract as _;
    use contracts::delivery::events as e;
    let mut state = None;
    for (full_name, value) in events {
        state = match full_name {
            e::DeliveryScheduled::FULL_NAME => Some("SCHEDULED".to_owned()),
            e::CourierAssigned::FULL_NAME => {
                let courier = value
                    .and_then(|v| field(v, "courierId"))
                    .map(|c| match c {
                        Value::Uuid(id) => id.to_string(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                Some(format!("SCHEDULED (courier {courier})"))
            }
            e::DeliveryPickedUp::FULL_NAME => Some("PICKED_UP".to_owned()),
            e::DeliveryDelivered::FULL_NAME => Some("DELIVERED".to_owned()),
            e::DeliveryCancelled::FULL_NAME => Some("CANCELLED".to_owned()),
            _ => state,
        };
    }
    state
}

fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Record(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
        _ => None,
    }
}

pub async fn show(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    output: Output,
) -> Result<ExitCode> {
    probe_kafka(bootstrap)?;
    let key = order_id.to_string();
    let topics = order_topics();
    let entries = history(bootstrap, registry, &topics, &key).await?;
    if entries.is_empty() {
        out!(
            "no record mentions order {key} on {} (is the id right? records older than the topics' retention are gone)",
            topics.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    let state = order_state(
        entries
            .iter()
            .filter(|e| e.received.origin.topic == ORDER_EVENTS)
            .map(|e| (e.full_name.as_str(), e.value.as_ref().ok())),
    );
    let delivery = delivery_state(
        entries
            .iter()
            .filter(|e| e.received.origin.topic == DELIVERY_EVENTS)
            .map(|e| (e.full_name.as_str(), e.value.as_ref().ok())),
    );
    let state = state.unwrap_or_else(|| {
        "NO ORDER EVENT YET (the order service has not taken the order in: is it running? \
         deploy/local/status; its group's lag: ftgo topics)"
            .to_owned()
    });
    match output {
        Output::Json => {
            let history: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| output::record(&e.received, e.value.clone(), false))
                .collect();
            out!(
                "{}",
                serde_json::json!({
                    "orderId": key,
                    "state": state,
                    "delivery": delivery,
                    "history": history
                })
            );
        }
        Output::Text => {
            for entry in &entries {
                let origin = &entry.received.origin;
                let time = origin
                    .timestamp_ms
                    .map(rfc3339_millis)
                    .unwrap_or_else(|| "-".to_owned());
                let text = match &entry.value {
                    Ok(value) => summary(value, &["orderId"]),
                    Err(error) => format!("(not decodable: {error})"),
                };
                out!(
                    "{time}  {:<24} {:<32} {text}",
                    origin.topic,
                    short(&entry.full_name)
                );
            }
            out!("state: {state}");
            if let Some(delivery) = delivery {
                out!("delivery: {delivery}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every record keyed `key` on `topics`, decoded, in time order (ties in `topics`' order).
async fn history(
    bootstrap: &str,
    registry: &str,
    topics: &[&'static str],
    key: &str,
) -> Result<Vec<Record>> {
    let read: Vec<(usize, Result<Vec<Received>, kafka::KafkaError>)> = std::thread::scope(|s| {
        let readers: Vec<_> = topics
            .iter()
            .enumerate()
            .map(|(rank, topic)| {
                s.spawn(move || (rank, read_topic(bootstrap, topic, Duration::from_secs(60))))
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|_| (usize::MAX, Ok(Vec::new()))))
            .collect()
    });
    let codec = Codec::for_catalog(&contracts::RegistryAccess::from_env(registry)?)?;
    let mut entries = Vec::new();
    for (rank, records) in read {
        let topic = topics.get(rank).copied().unwrap_or("?");
        let records = records.with_context(|| {
            format!("reading {topic} (deploy/local/up creates the topics of deploy/topics.toml)")
        })?;
        for received in records
            .into_iter()
            .filter(|r| r.message.key.as_deref() == Some(key))
        {
            let header_type = received
                .message
                .headers
                .get(header::TYPE)
                .unwrap_or("(no ce_type)")
                .to_owned();
            let (full_name, value) =
                match codec.decode_value(topic, &received.message.payload).await {
                    Ok(decoded) => (decoded.full_name, Ok(decoded.value)),
                    Err(error) => (header_type, Err(error.to_string())),
                };
            entries.push(Record {
                received,
                topic_rank: rank,
                full_name,
                value,
            });
        }
    }
    entries.sort_by_key(|e| {
        (
            e.received.origin.timestamp_ms.unwrap_or(i64::MAX),
            e.topic_rank,
            e.received.origin.partition,
            e.received.origin.offset,
        )
    });
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delivery_is_what_the_last_delivery_event_says() {
        let courier = Uuid::from_u128(7);
        let assigned = Value::Record(vec![("courierId".into(), Value::Uuid(courier))]);
        assert_eq!(delivery_state([]), None);
        assert_eq!(
            delivery_state([
                ("ftgo.delivery.events.DeliveryScheduled", None),
                ("ftgo.delivery.events.CourierAssigned", Some(&assigned)),
            ]),
            Some(format!("SCHEDULED (courier {courier})"))
        );
        assert_eq!(
            delivery_state([
                ("ftgo.delivery.events.DeliveryScheduled", None),
                ("ftgo.delivery.events.CourierAssigned", Some(&assigned)),
                ("ftgo.delivery.events.DeliveryPickedUp", None),
                ("ftgo.delivery.events.DeliveryDelivered", None),
            ]),
            Some("DELIVERED".into())
        );
    }

    #[test]
    fn the_state_is_what_the_last_order_event_says() {
        let rejected = Value::Record(vec![(
            "reason".into(),
            Value::Enum(5, "CARD_AUTHORIZATION_FAILED".into()),
        )]);
        assert_eq!(order_state([]), None);
        assert_eq!(
            order_state([("ftgo.order.events.OrderCreated", None)]),
            Some("APPROVAL_PENDING".into())
        );
        assert_eq!(
            order_state([
                ("ftgo.order.events.OrderCreated", None),
                ("ftgo.order.events.OrderRejected", Some(&rejected)),
            ]),
            Some("REJECTED(CARD_AUTHORIZATION_FAILED)".into())
        );
        assert_eq!(
            order_state([
                ("ftgo.order.events.OrderCreated", None),
                ("ftgo.order.events.OrderApproved", None),
                ("ftgo.order.events.OrderCancellationRejected", None),
            ]),
            Some("APPROVED".into())
        );
        assert_eq!(
            order_state([
                ("ftgo.order.events.OrderApproved", None),
                ("ftgo.order.events.OrderCancelled", None),
            ]),
            Some("CANCELLED".into())
        );
    }
}
