//! Publishing a batch of outbox rows, as both relays do: in one Kafka transaction, so that
//! after any failure none of it is visible (a later record of a key never shows before an
//! earlier one that failed), with rows that can never be published told apart and moved aside,
//! and the later rows of their keys left waiting.

use std::collections::HashSet;
use std::time::Duration;

use messaging::{Delivery, Message, PublishError, TraceContext, TransactionalPublisher, header};
use tracing::Instrument as _;
use tracing::field::Empty;

/// An outbox row on its way to Kafka.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub position: i64,
    pub topic: String,
    pub message: Message,
}

impl Row {
    pub fn key(&self) -> Option<&str> {
        self.message.key.as_deref()
    }

    /// A row read from the outbox table (`position, topic, key, headers::text AS headers,
    /// payload`).
    pub fn from_table(row: &sqlx::postgres::PgRow) -> Result<Self, crate::OutboxError> {
        use sqlx::Row as _;
        let headers: String = row.try_get("headers")?;
        Ok(Self {
            position: row.try_get("position")?,
            topic: row.try_get("topic")?,
            message: Message {
                key: row.try_get("key")?,
                headers: crate::append::headers_from_json(&headers)?,
                payload: row.try_get("payload")?,
            },
        })
    }
}

/// What publishing a batch did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Rows now on their topics for readers (committed Kafka transactions).
    pub published: Vec<i64>,
    /// Rows that can never be published as they are, with the reason: to be moved aside.
    pub refused: Vec<(i64, String)>,
    /// Whether every row was published, refused, or left waiting behind a refused row of its
    /// key. `false`: publishing row by row stopped at a transient failure, and the rows after
    /// it (in the batch's order) are neither.
    pub complete: bool,
}

/// Publishes `rows` (in their order): checks each first, then the rest in one Kafka
/// transaction; after a refusal by the broker, one row per transaction to find the row it
/// refuses. A row refused for good stops its key: its later rows are left waiting. `Err`: a
/// transient or fenced failure with nothing visible, to be tried again as a whole.
pub(crate) async fn publish<P: TransactionalPublisher>(
    publisher: &P,
    rows: &[Row],
) -> Result<Published, PublishError> {
    let mut outcome = Published {
        complete: true,
        ..Published::default()
    };
    let mut stopped: HashSet<&str> = HashSet::new();
    let mut sendable: Vec<&Row> = Vec::with_capacity(rows.len());
    for row in rows {
        if row.key().is_some_and(|key| stopped.contains(key)) {
            continue;
        }
        match publisher.check(&row.topic, &row.message).await {
            Ok(()) => sendable.push(row),
            Err(error) if error.is_permanent() => {
                outcome.refused.push((row.position, error.detail));
                stopped.extend(row.key());
            }
            Err(error) => return Err(error),
        }
    }
    // The rows of a stopped key before its refused row were checked and are sent: they come
    // first.
    match in_one_transaction(publisher, &sendable).await {
        Ok(()) => outcome
            .published
            .extend(sendable.iter().map(|row| row.position)),
        Err(failures) => {
            let refusal = failures.iter().any(|(_, e)| e.is_permanent());
            let fenced = failures.iter().position(|(_, e)| e.is_fenced());
            if let Some(fenced) = fenced {
                return Err(failures.into_iter().nth(fenced).expect("found").1);
            }
            if !refusal {
                return Err(failures.into_iter().next().expect("a failure").1);
            }
            if let [row] = sendable.as_slice() {
                let (_, error) = failures.into_iter().next().expect("one failure");
                outcome.refused.push((row.position, error.detail));
            } else {
                // The broker refuses whole record batches, so rows that share a partition
                // with a bad one fail with it. Which row is bad is told by publishing them one
                // at a time, in order, stopping a key at its refusal.
                isolate(publisher, &sendable, &mut outcome).await?;
            }
        }
    }
    Ok(outcome)
}

/// Publishes `rows` one per Kafka transaction, in order. Stops at the first failure that is
/// neither permanent nor passing (`complete` is then false).
async fn isolate<P: TransactionalPublisher>(
    publisher: &P,
    rows: &[&Row],
    outcome: &mut Published,
) -> Result<(), PublishError> {
    /// Tries per row: right after a refusal the producer renews its epoch, and a record
    /// sent meanwhile can be purged from its queue (for a few seconds on a busy machine).
    const TRIES: u32 = 10;
    let mut stopped: HashSet<&str> = HashSet::new();
    for row in rows {
        if row.key().is_some_and(|key| stopped.contains(key)) {
            continue;
        }
        let mut tries = 0;
        loop {
            tries += 1;
            match in_one_transaction(publisher, &[row]).await {
                Ok(()) => {
                    outcome.published.push(row.position);
                    break;
                }
                Err(mut failures) => {
                    let (_, error) = failures.remove(0);
                    if error.is_permanent() {
                        outcome.refused.push((row.position, error.detail));
                        stopped.extend(row.key());
                        break;
                    }
                    if error.is_fenced() {
                        return Err(error);
                    }
                    if tries >= TRIES {
                        tracing::warn!(%error, "publishing a refused batch row by row failed");
                        outcome.complete = false;
                        return Ok(());
                    }
                    tokio::time::sleep(
                        (Duration::from_millis(100) * tries).min(Duration::from_secs(1)),
                    )
                    .await;
                }
            }
        }
    }
    Ok(())
}

/// Publishes `rows` in one Kafka transaction: all of them visible, or (after any failure)
/// none, with the failures of the rows that failed.
async fn in_one_transaction<'a, P: TransactionalPublisher>(
    publisher: &P,
    rows: &[&'a Row],
) -> Result<(), Vec<(&'a Row, PublishError)>> {
    if rows.is_empty() {
        return Ok(());
    }
    if let Err(error) = publisher.begin().await {
        return Err(vec![(rows[0], error)]);
    }
    // All sent at once, in order: the idempotent producer keeps each partition's order.
    let sends = rows.iter().map(|row| send(publisher, row));
    let failures: Vec<(&Row, PublishError)> = futures::future::join_all(sends)
        .await
        .into_iter()
        .zip(rows)
        .filter_map(|(delivered, row)| delivered.err().map(|error| (*row, error)))
        .collect();
    if failures.is_empty() {
        return match publisher.commit().await {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = publisher.abort().await;
                Err(vec![(rows[0], error)])
            }
        };
    }
    if let Err(error) = publisher.abort().await {
        tracing::warn!(%error, "aborting the failed batch's transaction failed");
    }
    Err(failures)
}

/// Publishes one row. When spans are exported, in a producer span (`send <topic>`, with
/// OpenTelemetry's messaging attributes) whose parent is the span that wrote the row (its
/// `traceparent`), and the record carries the send span as its `traceparent`: the consumer's
/// span is the child of the publication, as the messaging conventions draw it.
async fn send<P: TransactionalPublisher>(
    publisher: &P,
    row: &Row,
) -> Result<Delivery, PublishError> {
    if !messaging::trace::exporting() {
        return publisher.publish(&row.topic, &row.message).await;
    }
    let headers = &row.message.headers;
    let span = tracing::info_span!(
        "send",
        otel.name = %format_args!("send {}", row.topic),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.destination.name = %row.topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
        messaging.kafka.message.key = row.key().unwrap_or("-"),
        messaging.message.id = headers.get(header::ID).unwrap_or("-"),
        cloudevents.event_type = headers.get(header::TYPE).unwrap_or("-"),
        outbox.position = row.position,
        trace_id = Empty,
        span_id = Empty,
        parent_span_id = Empty,
    );
    let parent = headers
        .get(header::TRACEPARENT)
        .and_then(TraceContext::parse);
    let context = messaging::trace::join(&span, parent);
    let mut message = row.message.clone();
    message
        .headers
        .set(header::TRACEPARENT, context.to_string());
    let published = publisher
        .publish(&row.topic, &message)
        .instrument(span.clone())
        .await;
    match &published {
        Ok(delivery) => {
            span.record("messaging.destination.partition.id", delivery.partition);
            span.record("messaging.kafka.offset", delivery.offset);
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    published
}
