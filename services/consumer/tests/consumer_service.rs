//! The consumer service in-process over the real platform, on a database and a consumer group
//! of its own: CreateConsumer becomes a consumer and one ConsumerCreated, a second one for the
//! same id a dead letter; ValidateOrderByConsumer gets each reply it can get, once per message
//! and the same answer per order.
//!
//! The saga commands name `ftgo.order.replies` as their reply-to, and the test reads its
//! replies there by their fresh order ids. (Not a throwaway topic: the commands stay on the
//! shared command topic, and a later run's service, starting from the earliest offset, would
//! answer them again, to a topic deleted by then; the relay cannot publish there.)

use anyhow::{Context, Result, bail, ensure};
use contracts::consumer::commands::{
    CreateConsumer, ValidateOrderByConsumer, create_consumer, validate_order_by_consumer,
};
use contracts::consumer::events::Event;
use contracts::order::replies::Reply;
use contracts::order::replies::validate_order_by_consumer_failed::ConsumerValidationFailure;
use contracts::{Channel, Contract};
use messaging::{Message, Received, header};
use test_support::records_of;
use uuid::Uuid;

const EVENTS: &str = "ftgo.consumer.events";
const REPLIES: &str = "ftgo.order.replies";
const DEAD_LETTERS: &str = "ftgo.consumer-service.dlt";

test_support::service_under_test!(
    /// The service on a database and group of its own, and a way to talk to it.
    Harness,
    consumer_service::DEFINITION
);

impl Harness {
    /// `record` as the order service's saga `saga` would send it: replies to
    /// `ftgo.order.replies`, in the saga's conversation.
    async fn saga_command<T: Contract>(&self, record: &T, saga: &str) -> Result<Message> {
        self.client.saga_command(record, saga, REPLIES).await
    }

    async fn publish(&self, message: &Message) -> Result<()> {
        self.client.publish("ftgo.consumer.commands", message).await
    }

    async fn reply(&self, record: &Received) -> Result<Reply> {
        self.client.decode(record).await
    }

    /// Creates a consumer and waits for its ConsumerCreated (commands about its orders travel
    /// on other partitions, so they could otherwise overtake it).
    async fn consumer(&self, first_name: &str) -> Result<(Uuid, Message)> {
        let id = Uuid::new_v4();
        let create = self.message(&create_consumer(id, first_name)).await?;
        self.publish(&create).await?;
        records_of(EVENTS, &id.to_string(), 1).await?;
        Ok((id, create))
    }
}

fn create_consumer(id: Uuid, first_name: &str) -> CreateConsumer {
    CreateConsumer {
        consumer_id: id,
        name: create_consumer::PersonName {
            first_name: first_name.into(),
            last_name: "Lovelace".into(),
        },
    }
}

fn validate(
    order: Uuid,
    consumer: Uuid,
    amount_minor: i64,
    currency: &str,
) -> ValidateOrderByConsumer {
    ValidateOrderByConsumer {
        order_id: order,
        consumer_id: consumer,
        order_total: validate_order_by_consumer::Money {
            amount_minor,
            currency: currency.into(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_created_once_and_a_second_with_its_id_is_dead_lettered() -> Result<()> {
    let harness = Harness::start().await?;
    let id = Uuid::new_v4();
    let key = id.to_string();
    let create = harness.message(&create_consumer(id, "Ada")).await?;
    harness.publish(&create).await?;
    harness.publish(&create).await?; // delivered twice: one effect
    let again = harness.message(&create_consumer(id, "Augusta")).await?;
    harness.publish(&again).await?;

    let letters = records_of(DEAD_LETTERS, &key, 1).await?;
    ensure!(letters.len() == 1, "{} dead letters", letters.len());
    let letter = &letters[0].message;
    ensure!(letter.id() == again.id());
    ensure!(letter.headers.get(header::dead_letter::REASON) == Some("consumer-exists"));
    ensure!(letter.headers.get(header::dead_letter::GROUP) == Some(harness.service.group.as_str()));

    // The refusal came after both deliveries of the first command (one key, one partition):
    // once the outbox is empty for the key, every event about it is on the topic.
    harness.relayed(&key).await?;
    let events = records_of(EVENTS, &key, 1).await?;
    ensure!(events.len() == 1, "{} events", events.len());
    let created = &events[0].message;
    ensure!(created.headers.get(header::TYPE) == Some("ftgo.consumer.events.ConsumerCreated"));
    ensure!(created.headers.get(header::CAUSATION_ID) == create.id());
    ensure!(created.headers.get(header::SOURCE) == Some("/ftgo/consumer-service"));
    let decoded = harness
        .client
        .codec
        .decode_value(EVENTS, &created.payload)
        .await?;
    let Event::ConsumerCreated(event) = Event::from_decoded(decoded)?;
    ensure!(event.consumer_id == id && event.name.first_name == "Ada");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    ensure!((now.as_millis() as i64 - event.created_at).abs() < 600_000);

    let (name, limit, currency): (String, i64, String) = sqlx::query_as(
        "SELECT first_name, order_limit_minor, order_limit_currency FROM consumers WHERE id = $1",
    )
    .bind(id)
    .fetch_one(harness.pool())
    .await?;
    ensure!(name == "Ada" && limit == 100_000 && currency == "USD");
    harness.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_validated_with_every_outcome_once_per_order() -> Result<()> {
    let harness = Harness::start().await?;
    let (consumer, _) = harness.consumer("Grace").await?;
    let stranger = Uuid::new_v4();
    let saga = Uuid::new_v4().to_string();

    // Each order's first command, and the outcome it must get.
    let cases = [
        (
            "within the limit",
            validate(Uuid::new_v4(), consumer, 2_500, "USD"),
            None,
        ),
        (
            "at the limit",
            validate(Uuid::new_v4(), consumer, 100_000, "USD"),
            None,
        ),
        (
            "above the limit",
            validate(Uuid::new_v4(), consumer, 100_001, "USD"),
            Some(ConsumerValidationFailure::OrderLimitExceeded),
        ),
        (
            "in another currency",
            validate(Uuid::new_v4(), consumer, 2_500, "EUR"),
            Some(ConsumerValidationFailure::OrderLimitExceeded),
        ),
        (
            "by an unknown consumer",
            validate(Uuid::new_v4(), stranger, 2_500, "USD"),
            Some(ConsumerValidationFailure::UnknownConsumer),
        ),
    ];
    let mut sent = Vec::new();
    for (_, command, _) in &cases {
        let message = harness.saga_command(command, &saga).await?;
        harness.publish(&message).await?;
        sent.push(message);
    }
    // The first order's command delivered a second time: answered once.
    harness.publish(&sent[0]).await?;

    for ((case, command, failure), message) in cases.iter().zip(&sent) {
        let key = command.order_id.to_string();
        let replies = records_of(REPLIES, &key, 1).await?;
        ensure!(replies.len() == 1, "{case}: {} replies", replies.len());
        let reply = &replies[0].message;
        ensure!(
            reply.headers.get(header::CORRELATION_ID) == Some(saga.as_str()),
            "{case}"
        );
        ensure!(
            reply.headers.get(header::CAUSATION_ID) == message.id(),
            "{case}"
        );
        match (harness.reply(&replies[0]).await?, failure) {
            (Reply::ValidateOrderByConsumerSucceeded(r), None) => {
                ensure!(r.order_id == command.order_id, "{case}");
            }
            (Reply::ValidateOrderByConsumerFailed(r), Some(failure)) => {
                ensure!(
                    r.order_id == command.order_id && r.reason == *failure,
                    "{case}: {r:?}"
                );
                ensure!(r.detail.is_some(), "{case}: no detail");
                if command.order_total.currency == "EUR" {
                    let detail = r.detail.unwrap_or_default();
                    ensure!(detail.contains("currencies differ"), "{case}: {detail}");
                }
            }
            (other, _) => bail!("{case}: {other:?}"),
        }
    }

    // The limit is data: lowered to nothing, it refuses a new order of one cent...
    sqlx::query("UPDATE consumers SET order_limit_minor = 0 WHERE id = $1")
        .bind(consumer)
        .execute(harness.pool())
        .await?;
    let cent = validate(Uuid::new_v4(), consumer, 1, "USD");
    harness
        .publish(&harness.saga_command(&cent, &saga).await?)
        .await?;
    let replies = records_of(REPLIES, &cent.order_id.to_string(), 1).await?;
    ensure!(matches!(
        harness.reply(&replies[0]).await?,
        Reply::ValidateOrderByConsumerFailed(r)
            if r.reason == ConsumerValidationFailure::OrderLimitExceeded
    ));
    // ... but an order validated before is answered as it was when asked again (a new message).
    let first = &cases[0].1;
    let asked_again = harness.saga_command(first, &saga).await?;
    harness.publish(&asked_again).await?;
    let replies = records_of(REPLIES, &first.order_id.to_string(), 2).await?;
    ensure!(replies.len() == 2, "{} replies", replies.len());
    ensure!(replies[1].message.headers.get(header::CAUSATION_ID) == asked_again.id());
    ensure!(matches!(
        harness.reply(&replies[1]).await?,
        Reply::ValidateOrderByConsumerSucceeded(_)
    ));
    // The same order with another total is another question: dead-lettered, not answered.
    let changed = validate(first.order_id, consumer, 2_600, "USD");
    let conflicting = harness.saga_command(&changed, &saga).await?;
    harness.publish(&conflicting).await?;
    let letters = records_of(DEAD_LETTERS, &first.order_id.to_string(), 1).await?;
    ensure!(letters[0].message.id() == conflicting.id());
    ensure!(
        letters[0].message.headers.get(header::dead_letter::REASON) == Some("validation-conflict")
    );

    // The consumer's order history.
    let history: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT order_id, outcome FROM order_validations WHERE consumer_id = $1
         ORDER BY validated_at, order_id",
    )
    .bind(consumer)
    .fetch_all(harness.pool())
    .await?;
    ensure!(history.len() == 5, "{history:?}");
    let outcome = |order: Uuid| {
        history
            .iter()
            .find(|(o, _)| *o == order)
            .map(|(_, outcome)| outcome.as_str())
            .context("not in the history")
    };
    ensure!(outcome(cases[0].1.order_id)? == "VALIDATED");
    ensure!(outcome(cases[2].1.order_id)? == "ORDER_LIMIT_EXCEEDED");
    ensure!(outcome(cent.order_id)? == "ORDER_LIMIT_EXCEEDED");
    let unknown: String =
        sqlx::query_scalar("SELECT outcome FROM order_validations WHERE consumer_id = $1")
            .bind(stranger)
            .fetch_one(harness.pool())
            .await?;
    ensure!(unknown == "UNKNOWN_CONSUMER");
    harness.0.stop().await
}
