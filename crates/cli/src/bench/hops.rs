//! Where an order's time goes: every hop of the sagas, from the records of every topic keyed
//! by the order id.
//!
//! A hop is a message and a message it caused (the effect's `ce_causationid` is the cause's
//! `ce_id`). It lasts from the cause's record timestamp (when its producer sent it) to the
//! effect's, and is split at the effect's `ce_time` (when the handler made it):
//! - *to handler*: the cause's way through the broker, the consumer's fetch, the wait behind
//!   other records of its partition and key, and the handler up to the effect;
//! - *to topic*: the rest of the handler, its commit, and the relay's claim and publish.
//!
//! All three times are taken on this machine's clock, in milliseconds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use messaging::{Received, header};

use crate::order::{order_topics, short};

/// One record of an order, as far as its hops need it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    pub(super) order: String,
    pub(super) id: String,
    pub(super) cause: Option<String>,
    pub(super) full_name: String,
    pub(super) source: String,
    /// The record's timestamp (its producer's send), ms since the epoch.
    pub(super) produced_ms: i64,
    /// `ce_time`: when the message was made, ms since the epoch.
    pub(super) made_ms: Option<i64>,
}

impl Record {
    fn from_received(received: &Received) -> Option<Self> {
        let headers = &received.message.headers;
        Some(Self {
            order: received.message.key.clone()?,
            id: headers.get(header::ID)?.to_owned(),
            cause: headers.get(header::CAUSATION_ID).map(str::to_owned),
            full_name: headers.get(header::TYPE)?.to_owned(),
            source: headers.get(header::SOURCE).unwrap_or("?").to_owned(),
            produced_ms: received.origin.timestamp_ms?,
            made_ms: headers
                .get(header::TIME)
                .and_then(|time| humantime::parse_rfc3339(time).ok())
                .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|since| since.as_millis() as i64),
        })
    }
}

/// One kind of hop (cause type → effect type) over every order that took it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Hop {
    pub(super) from: String,
    pub(super) to: String,
    /// Who made the effect (its `ce_source`).
    pub(super) by: String,
    /// Cause produced → effect produced, ms, sorted.
    pub(super) total: Vec<f64>,
    /// Cause produced → effect made, ms, sorted.
    pub(super) to_handler: Vec<f64>,
    /// Effect made → effect produced, ms, sorted.
    pub(super) to_topic: Vec<f64>,
    /// The cause's mean time after its order's first record: puts the hops in saga order.
    pub(super) at_ms: f64,
}

/// Every kind of hop the records of `orders` show, in the order they happen.
pub(super) fn hops(records: &[Record]) -> Vec<Hop> {
    let mut by_order: HashMap<&str, Vec<&Record>> = HashMap::new();
    for record in records {
        by_order.entry(&record.order).or_default().push(record);
    }
    let mut hops: HashMap<(&str, &str), Hop> = HashMap::new();
    for records in by_order.values() {
        let first = records.iter().map(|r| r.produced_ms).min().unwrap_or(0);
        let by_id: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), *r)).collect();
        for effect in records {
            let Some(cause) = effect.cause.as_deref().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let hop = hops
                .entry((&cause.full_name, &effect.full_name))
                .or_insert_with(|| Hop {
                    from: short(&cause.full_name).to_owned(),
                    to: short(&effect.full_name).to_owned(),
                    by: effect.source.clone(),
                    ..Hop::default()
                });
            hop.total
                .push((effect.produced_ms - cause.produced_ms) as f64);
            if let Some(made) = effect.made_ms {
                hop.to_handler.push((made - cause.produced_ms) as f64);
                hop.to_topic.push((effect.produced_ms - made) as f64);
            }
            hop.at_ms += (cause.produced_ms - first) as f64;
        }
    }
    let mut hops: Vec<Hop> = hops.into_values().collect();
    for hop in &mut hops {
        hop.at_ms /= hop.total.len() as f64;
        for values in [&mut hop.total, &mut hop.to_handler, &mut hop.to_topic] {
            values.sort_by(f64::total_cmp);
        }
    }
    hops.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms).then(a.to.cmp(&b.to)));
    hops
}

/// Reads every topic keyed by the order id since `since`, keeping the records of `orders`.
pub(super) fn read(
    bootstrap: &str,
    since: SystemTime,
    orders: &HashSet<String>,
) -> Result<Vec<Record>> {
    let topics = order_topics();
    let read: Vec<_> = std::thread::scope(|s| {
        let readers: Vec<_> = topics
            .iter()
            .map(|topic| {
                s.spawn(move || {
                    kafka::read_topic_since(bootstrap, topic, since, Duration::from_secs(60))
                        .with_context(|| format!("reading {topic} for the hops"))
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader panicked")))
            })
            .collect()
    });
    let mut records = Vec::new();
    for received in read {
        records.extend(
            received?
                .iter()
                .filter_map(Record::from_received)
                .filter(|r| orders.contains(&r.order)),
        );
    }
    Ok(records)
}

/// The hops taken by at least a tenth of `orders` orders, each with its p50 and p99; then the
/// slowest, by p50 and by p99.
pub(super) fn print(hops: &[Hop], orders: usize) -> Result<()> {
    let shown: Vec<&Hop> = hops
        .iter()
        .filter(|hop| hop.total.len() * 10 >= orders)
        .collect();
    if shown.is_empty() {
        out!("hops:          none read (no record of these orders on the order-keyed topics?)");
        return Ok(());
    }
    out!(
        "hops (p50 / p99 ms; cause sent -> effect sent = cause sent -> effect made by the handler + made -> sent by the relay):"
    );
    let width = shown
        .iter()
        .map(|h| h.from.len() + h.to.len() + 4)
        .max()
        .unwrap_or(0);
    let by_width = shown.iter().map(|h| h.by.len()).max().unwrap_or(0);
    for hop in &shown {
        let name = format!("{} -> {}", hop.from, hop.to);
        out!(
            "  {name:<width$} {:<by_width$} {:>6}  {:>5} / {:<5} = {:>5} / {:<5} + {:>5} / {:<5}",
            hop.by,
            hop.total.len(),
            p(&hop.total, 50.0),
            p(&hop.total, 99.0),
            p(&hop.to_handler, 50.0),
            p(&hop.to_handler, 99.0),
            p(&hop.to_topic, 50.0),
            p(&hop.to_topic, 99.0),
        );
    }
    let slowest = |q: f64| {
        shown
            .iter()
            .max_by(|a, b| {
                super::report::percentile(&a.total, q)
                    .total_cmp(&super::report::percentile(&b.total, q))
            })
            .map(|h| format!("{} -> {} ({})", h.from, h.to, h.by))
            .unwrap_or_default()
    };
    out!(
        "slowest hop:   by p50 {}; by p99 {}",
        slowest(50.0),
        slowest(99.0)
    );
    Ok(())
}

fn p(sorted: &[f64], q: f64) -> String {
    if sorted.is_empty() {
        "-".to_owned()
    } else {
        format!("{:.0}", super::report::percentile(sorted, q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(order: &str, id: &str, cause: Option<&str>, name: &str, sent: i64) -> Record {
        Record {
            order: order.into(),
            id: id.into(),
            cause: cause.map(Into::into),
            full_name: format!("ftgo.{name}"),
            source: "svc".into(),
            produced_ms: sent,
            made_ms: Some(sent - 2),
        }
    }

    #[test]
    fn a_hop_is_a_cause_and_its_effect_split_at_the_effects_making() {
        let records = vec![
            record("o1", "a", None, "CreateOrder", 1000),
            record("o1", "b", Some("a"), "Validate", 1010),
            record("o1", "c", Some("b"), "Verified", 1040),
            record("o2", "d", None, "CreateOrder", 2000),
            record("o2", "e", Some("d"), "Validate", 2030),
            // A cause that is not among the records (another order's, or older) is no hop.
            record("o2", "f", Some("x"), "Verified", 2050),
        ];
        let hops = hops(&records);
        let names: Vec<(&str, &str)> = hops
            .iter()
            .map(|h| (h.from.as_str(), h.to.as_str()))
            .collect();
        assert_eq!(
            names,
            [("CreateOrder", "Validate"), ("Validate", "Verified")]
        );
        assert_eq!(hops[0].total, [10.0, 30.0]);
        assert_eq!(hops[0].to_handler, [8.0, 28.0]);
        assert_eq!(hops[0].to_topic, [2.0, 2.0]);
        assert_eq!(hops[1].total, [30.0]);
        assert_eq!(hops[1].at_ms, 10.0);
    }
}
