//! `ftgo chaos check`: reads what a run left (every order-keyed topic since it began, the
//! dead-letter topics, every service's tables) and judges every order (`judge`), then the
//! run as a whole: no dead letter, no outbox row left, nothing missing from an inbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use kafka::read_topic_since;
use messaging::{Received, header};
use sqlx::PgPool;

use super::judge::{Event, Observed, Outcome, judge};
use super::{Intent, Run};
use crate::order::order_topics;
use crate::outbox::Target;
use crate::send::kafka_unreachable;

const ORDER_EVENTS: &str = <contracts::order::events::Event as contracts::Channel>::TOPIC;
const TICKET_EVENTS: &str = <contracts::ticket::events::Event as contracts::Channel>::TOPIC;
const ACCOUNTING_EVENTS: &str = <contracts::accounting::events::Event as contracts::Channel>::TOPIC;

/// `ftgo chaos check`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The run `ftgo chaos place --run FILE` wrote.
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,
    /// Shows that the checker can fail: before judging, removes one order's OrderApproved,
    /// adds a second CardAuthorized to another's and swaps the first two events of a third,
    /// and names the three orders (the check must then fail on each of them).
    #[arg(long)]
    pub corrupt: bool,
}

/// The records of one topic that are about the run's orders, by order id, each `ce_id` once;
/// and how many were second copies (a relay that published a row again after a crash).
#[derive(Debug, Default)]
struct TopicRecords {
    by_order: HashMap<String, Vec<Event>>,
    read: usize,
    copies: usize,
}

fn event_of(record: &Received) -> Option<Event> {
    let kind = record.message.headers.get(header::TYPE)?;
    Some(Event {
        kind: kind.rsplit('.').next().unwrap_or(kind).to_owned(),
        id: record.message.headers.get(header::ID)?.to_owned(),
        partition: record.origin.partition,
        offset: record.origin.offset,
        timestamp_ms: record.origin.timestamp_ms,
    })
}

/// Every topic of `topics`, read from `since` in parallel.
fn read_topics(
    bootstrap: &str,
    topics: &[String],
    since: std::time::SystemTime,
) -> Result<HashMap<String, Vec<Received>>> {
    std::thread::scope(|s| {
        let readers: Vec<_> = topics
            .iter()
            .map(|topic| {
                s.spawn(move || {
                    let records =
                        read_topic_since(bootstrap, topic, since, Duration::from_secs(120))
                            .with_context(|| format!("reading {topic}"))
                            .with_context(|| kafka_unreachable(bootstrap))?;
                    Ok((topic.clone(), records))
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| {
                r.join()
                    .map_err(|_| anyhow::anyhow!("a topic reader panicked"))?
            })
            .collect()
    })
}

fn sort_out(records: &[Received], ours: &HashSet<&str>) -> TopicRecords {
    let mut topic = TopicRecords {
        read: records.len(),
        ..TopicRecords::default()
    };
    let mut seen = HashSet::new();
    for record in records {
        let Some(key) = record.message.key.as_deref().filter(|k| ours.contains(k)) else {
            continue;
        };
        let Some(event) = event_of(record) else {
            continue;
        };
        if !seen.insert(event.id.clone()) {
            topic.copies += 1;
            continue;
        }
        topic
            .by_order
            .entry(key.to_owned())
            .or_default()
            .push(event);
    }
    for events in topic.by_order.values_mut() {
        events.sort_by_key(|e| (e.partition, e.offset));
    }
    topic
}

/// What each service's database says, for the run's orders.
#[derive(Debug, Default)]
struct Rows {
    orders: HashMap<String, String>,
    tickets: HashMap<String, String>,
    authorizations: HashMap<String, bool>,
    sagas: HashMap<String, Vec<String>>,
    /// Per service: rows in `outbox`, in `outbox_failed`.
    outboxes: BTreeMap<String, (i64, i64)>,
}

async fn pairs<T>(pool: &PgPool, sql: &str, ids: &[String]) -> Result<Vec<(String, T)>>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_as::<_, (String, T)>(sql)
        .bind(ids)
        .fetch_all(pool)
        .await
        .with_context(|| format!("querying {sql}"))
}

async fn read_rows(pools: &HashMap<&str, PgPool>, ids: &[String]) -> Result<Rows> {
    let mut rows = Rows::default();
    let pool = |name: &str| {
        pools
            .get(name)
            .with_context(|| format!("the catalog has no {name} service"))
    };
    let order = pool("order")?;
    rows.orders = pairs(
        order,
        "SELECT id::text, state FROM orders WHERE id::text = ANY($1)",
        ids,
    )
    .await?
    .into_iter()
    .collect();
    for (subject, status) in pairs::<String>(
        order,
        "SELECT subject, status FROM saga_instances WHERE subject = ANY($1)",
        ids,
    )
    .await?
    {
        rows.sagas.entry(subject).or_default().push(status);
    }
    rows.tickets = pairs(
        pool("kitchen")?,
        "SELECT order_id::text, state FROM tickets WHERE order_id::text = ANY($1)",
        ids,
    )
    .await?
    .into_iter()
    .collect();
    rows.authorizations = pairs(
        pool("accounting")?,
        "SELECT order_id::text, reversed_at IS NOT NULL FROM authorizations WHERE order_id::text = ANY($1)",
        ids,
    )
    .await?
    .into_iter()
    .collect();
    for (service, pool) in pools {
        let counts: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_failed)",
        )
        .fetch_one(pool)
        .await
        .with_context(|| format!("counting the {service} service's outbox"))?;
        rows.outboxes.insert((*service).to_owned(), counts);
    }
    Ok(rows)
}

/// Per service, the messages about the run's orders on the topics it consumes that its inbox
/// does not hold: (order id, `group: Type ce_id=...`). And how many were looked for.
async fn inbox_gaps(
    pools: &HashMap<&str, PgPool>,
    topics: &HashMap<String, TopicRecords>,
) -> Result<(Vec<(String, String)>, usize)> {
    let mut gaps = Vec::new();
    let mut looked_for = 0;
    for (service, pool) in pools {
        let group = format!("{service}-service");
        let mut wanted: Vec<(&str, &Event)> = Vec::new();
        for channel in contracts::catalog::consumed_by(service) {
            let Some(records) = topics.get(channel.topic) else {
                continue;
            };
            for (order, events) in &records.by_order {
                wanted.extend(events.iter().map(|e| (order.as_str(), e)));
            }
        }
        looked_for += wanted.len();
        let ids: Vec<&str> = wanted.iter().map(|(_, e)| e.id.as_str()).collect();
        let held: HashSet<String> = sqlx::query_scalar(
            "SELECT message_id FROM inbox WHERE consumer_group = $1 AND message_id = ANY($2)",
        )
        .bind(&group)
        .bind(&ids)
        .fetch_all(pool)
        .await
        .with_context(|| format!("reading the {service} service's inbox"))?
        .into_iter()
        .collect();
        for (order, event) in wanted {
            if !held.contains(&event.id) {
                gaps.push((
                    order.to_owned(),
                    format!("{group}: {} ce_id={}", event.kind, event.id),
                ));
            }
        }
    }
    Ok((gaps, looked_for))
}

/// `--corrupt`: one event removed, one effect duplicated, one pair reordered, each in another
/// approved order; returns what was done to which order.
fn corrupt(run: &Run, observed: &mut HashMap<String, Observed>) -> Vec<String> {
    let approved: Vec<&super::Placed> = run
        .orders
        .iter()
        .filter(|o| {
            o.intent == Intent::Approve
                && observed.get(&o.order_id).is_some_and(|seen| {
                    seen.order_events.iter().any(|e| e.kind == "OrderApproved")
                        && !seen.accounting_events.is_empty()
                })
        })
        .collect();
    let mut approved = approved.into_iter();
    let mut done = Vec::new();
    if let Some(order) = approved.next()
        && let Some(seen) = observed.get_mut(&order.order_id)
    {
        seen.order_events.retain(|e| e.kind != "OrderApproved");
        done.push(format!(
            "removed the OrderApproved of order {}",
            order.order_id
        ));
    }
    if let Some(order) = approved.next()
        && let Some(seen) = observed.get_mut(&order.order_id)
    {
        let mut copy = seen.accounting_events[0].clone();
        copy.id = uuid::Uuid::new_v4().to_string();
        copy.offset += 1_000_000;
        seen.accounting_events.push(copy);
        done.push(format!(
            "added a second {} to order {}",
            seen.accounting_events[0].kind, order.order_id
        ));
    }
    if let Some(order) = approved.next()
        && let Some(seen) = observed.get_mut(&order.order_id)
    {
        seen.order_events.swap(0, 1);
        done.push(format!(
            "swapped the first two events of order {}",
            order.order_id
        ));
    }
    done
}

pub async fn check(bootstrap: &str, options: &Options) -> Result<ExitCode> {
    let run = Run::read(&options.run)?;
    let since = UNIX_EPOCH + Duration::from_millis(u64::try_from(run.since_ms).unwrap_or(0));
    let ids: Vec<String> = run.orders.iter().map(|o| o.order_id.clone()).collect();
    let ours: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let services = contracts::catalog::services();
    let dead_letter_topics: Vec<String> = services
        .iter()
        .map(|s| format!("ftgo.{s}-service.dlt"))
        .collect();
    let mut wanted: Vec<String> = order_topics().into_iter().map(str::to_owned).collect();
    wanted.extend(dead_letter_topics.iter().cloned());
    let read = read_topics(bootstrap, &wanted, since)?;
    let topics: HashMap<String, TopicRecords> = order_topics()
        .into_iter()
        .map(|t| (t.to_owned(), sort_out(&read[t], &ours)))
        .collect();

    let mut pools = HashMap::new();
    for service in &services {
        pools.insert(*service, Target::of(service).pool().await?);
    }
    let rows = read_rows(&pools, &ids).await?;
    let (gaps, inbox_checked) = inbox_gaps(&pools, &topics).await?;

    let events_of = |topic: &str, order: &str| {
        topics
            .get(topic)
            .and_then(|t| t.by_order.get(order))
            .cloned()
            .unwrap_or_default()
    };
    let mut observed: HashMap<String, Observed> = HashMap::new();
    for order in &run.orders {
        let id = &order.order_id;
        observed.insert(
            id.clone(),
            Observed {
                order_events: events_of(ORDER_EVENTS, id),
                ticket_events: events_of(TICKET_EVENTS, id),
                accounting_events: events_of(ACCOUNTING_EVENTS, id),
                order_state: rows.orders.get(id).cloned(),
                ticket_state: rows.tickets.get(id).cloned(),
                authorization: rows.authorizations.get(id).copied(),
                sagas: rows.sagas.get(id).cloned().unwrap_or_default(),
                not_in_inbox: gaps
                    .iter()
                    .filter(|(o, _)| o == id)
                    .map(|(_, what)| what.clone())
                    .collect(),
            },
        );
    }
    if options.corrupt {
        for done in corrupt(&run, &mut observed) {
            out!("corrupted: {done}");
        }
    }

    let mut violations: Vec<(String, String)> = Vec::new();
    let mut outcomes: BTreeMap<(Intent, Outcome), usize> = BTreeMap::new();
    let mut longest: Option<(i64, &str)> = None;
    for order in &run.orders {
        let seen = &observed[&order.order_id];
        match judge(order.intent, seen) {
            Ok(outcome) => {
                *outcomes.entry((order.intent, outcome)).or_default() += 1;
                let ended = seen.order_events.last().and_then(|e| e.timestamp_ms);
                if let Some(took) = ended.map(|at| at - order.placed_ms)
                    && longest.is_none_or(|(most, _)| took > most)
                {
                    longest = Some((took, &order.order_id));
                }
            }
            Err(problems) => {
                violations.extend(problems.into_iter().map(|p| (order.order_id.clone(), p)))
            }
        }
    }
    let mut run_problems = Vec::new();
    for topic in &dead_letter_topics {
        for record in &read[topic] {
            run_problems.push(format!(
                "a dead letter on {topic}@{}: {} ({})",
                record.origin.offset,
                record.message.headers.get(header::TYPE).unwrap_or("?"),
                record
                    .message
                    .headers
                    .get(header::dead_letter::REASON)
                    .unwrap_or("no reason")
            ));
        }
    }
    for (service, (outbox, failed)) in &rows.outboxes {
        if *outbox > 0 || *failed > 0 {
            run_problems.push(format!(
                "the {service} service's outbox holds {outbox} row(s) and {failed} failed row(s)"
            ));
        }
    }

    out!("orders: {}", run.orders.len());
    for ((intent, outcome), count) in &outcomes {
        out!(
            "  {:<16} -> {:<32} {count}",
            format!("{intent:?}"),
            outcome.label()
        );
    }
    out!("records read since the run began (about its orders; second copies of a ce_id):");
    for topic in order_topics() {
        let t = &topics[topic];
        out!(
            "  {topic:<26} {:>7} ({:>6} about its orders, {} second copies)",
            t.read,
            t.by_order.values().map(Vec::len).sum::<usize>(),
            t.copies
        );
    }
    let active = |map: &HashMap<String, bool>, reversed: bool| {
        map.values().filter(|r| **r == reversed).count()
    };
    let tickets_cancelled = rows.tickets.values().filter(|s| *s == "CANCELLED").count();
    out!(
        "tickets: {} active, {tickets_cancelled} cancelled; authorizations: {} standing, {} reversed",
        rows.tickets.len() - tickets_cancelled,
        active(&rows.authorizations, false),
        active(&rows.authorizations, true)
    );
    out!(
        "inboxes: {inbox_checked} consumed messages looked for, {} missing",
        gaps.len()
    );
    let dead_letters: usize = dead_letter_topics.iter().map(|t| read[t].len()).sum();
    let outbox_rows: i64 = rows.outboxes.values().map(|(o, f)| o + f).sum();
    out!("dead letters since the run began: {dead_letters}; outbox rows left: {outbox_rows}");
    if let Some((took, order)) = longest {
        out!(
            "longest order, placed to its last event: {:.1} s ({order})",
            took as f64 / 1000.0
        );
    }
    let bad_orders: HashSet<&str> = violations.iter().map(|(o, _)| o.as_str()).collect();
    for (order, problem) in violations.iter().take(50) {
        out!("VIOLATION order {order}: {problem}");
    }
    if violations.len() > 50 {
        out!("... and {} more", violations.len() - 50);
    }
    for problem in &run_problems {
        out!("VIOLATION: {problem}");
    }
    if violations.is_empty() && run_problems.is_empty() {
        out!("check passed: every order of the run kept every rule");
        Ok(ExitCode::SUCCESS)
    } else {
        out!(
            "check FAILED: {} order(s) broke a rule, {} problem(s) of the run",
            bad_orders.len(),
            run_problems.len()
        );
        Ok(ExitCode::from(1))
    }
}
