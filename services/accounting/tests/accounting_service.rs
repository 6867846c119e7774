//! The accounting service in-process over the real platform, on a database and a consumer group
//! of its own: ConsumerCreated opens one account per consumer; AuthorizeCard gets each reply it
//! can get, with at most one authorization per order; ReverseAuthorization always succeeds and
//! releases a hold once; a message delivered twice has one effect.
//!
//! The saga commands name `ftgo.order.replies` as their reply-to, and the test reads its
//! replies there by their fresh order ids. (Not a throwaway topic: the commands stay on the
//! shared command topic, and a later run's service, starting from the earliest offset, would
//! answer them again, to a topic deleted by then; the relay cannot publish there.)

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use contracts::Contract;
use contracts::accounting::commands::{
    AuthorizeCard, ReverseAuthorization, authorize_card, reverse_authorization,
};
use contracts::accounting::events::Event;
use contracts::consumer::events::{ConsumerCreated, consumer_created};
use contracts::order::replies::Reply;
use contracts::order::replies::authorize_card_failed::AuthorizeCardFailure;
use messaging::{Message, Received, header};
use test_support::{Platform, records_of, settle};
use uuid::Uuid;

const EVENTS: &str = "ftgo.accounting.events";
const REPLIES: &str = "ftgo.order.replies";
const DEAD_LETTERS: &str = "ftgo.accounting-service.dlt";

test_support::service_under_test!(
    /// The service on a database and group of its own, and a way to talk to it.
    Harness,
    accounting_service::DEFINITION
);

impl Harness {
    /// `record` as the order service's saga `saga` would send it: replies to
    /// `ftgo.order.replies`, in the saga's conversation.
    async fn saga_command<T: Contract>(&self, record: &T, saga: &str) -> Result<Message> {
        self.client.saga_command(record, saga, REPLIES).await
    }

    async fn publish(&self, topic: &str, message: &Message) -> Result<()> {
        self.client.publish(topic, message).await?;
        Ok(())
    }

    async fn command(&self, message: &Message) -> Result<()> {
        self.publish("ftgo.accounting.commands", message).await
    }

    async fn reply(&self, record: &Received) -> Result<Reply> {
        self.client.decode(record).await
    }

    async fn event(&self, record: &Received) -> Result<Event> {
        self.client.decode(record).await
    }

    /// ConsumerCreated for `consumer`, as the consumer service would publish it.
    async fn consumer_created(&self, consumer: Uuid) -> Result<Message> {
        let event = ConsumerCreated {
            consumer_id: consumer,
            name: consumer_created::PersonName {
                first_name: "Grace".into(),
                last_name: "Hopper".into(),
            },
            created_at: 1_764_000_000_000,
        };
        self.message(&event).await
    }

    /// A consumer with an account: its ConsumerCreated published and its AccountOpened seen.
    async fn account(&self) -> Result<Uuid> {
        let consumer = Uuid::new_v4();
        let created = self.consumer_created(consumer).await?;
        self.publish("ftgo.consumer.events", &created).await?;
        records_of(EVENTS, &consumer.to_string(), 1).await?;
        Ok(consumer)
    }

    /// Authorizes `amount` for a new order of `consumer` and returns the order and its
    /// authorization.
    async fn authorized(&self, consumer: Uuid, amount_minor: i64) -> Result<(AuthorizeCard, Uuid)> {
        let command = authorize(Uuid::new_v4(), consumer, amount_minor, "USD");
        self.command(&self.saga_command(&command, "saga").await?)
            .await?;
        let replies = records_of(REPLIES, &command.order_id.to_string(), 1).await?;
        let Reply::AuthorizeCardSucceeded(reply) = self.reply(&replies[0]).await? else {
            bail!("not authorized");
        };
        Ok((command, reply.authorization_id))
    }
}

fn authorize(order: Uuid, consumer: Uuid, amount_minor: i64, currency: &str) -> AuthorizeCard {
    AuthorizeCard {
        order_id: order,
        consumer_id: consumer,
        order_total: authorize_card::Money {
            amount_minor,
            currency: currency.into(),
        },
    }
}

fn reverse(authorized: &AuthorizeCard) -> ReverseAuthorization {
    ReverseAuthorization {
        order_id: authorized.order_id,
        consumer_id: authorized.consumer_id,
        order_total: reverse_authorization::Money {
            amount_minor: authorized.order_total.amount_minor,
            currency: authorized.order_total.currency.clone(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_created_opens_one_account_per_consumer() -> Result<()> {
    let harness = Harness::start().await?;
    let consumer = Uuid::new_v4();
    let key = consumer.to_string();
    let created = harness.consumer_created(consumer).await?;
    harness.publish("ftgo.consumer.events", &created).await?;
    harness.publish("ftgo.consumer.events", &created).await?; // delivered twice: one effect
    // The same consumer announced again in a new message: still one account.
    let again = harness.consumer_created(consumer).await?;
    harness.publish("ftgo.consumer.events", &again).await?;

    harness.handled(&again).await?;
    harness.relayed(&key).await?;
    let events = records_of(EVENTS, &key, 1).await?;
    ensure!(events.len() == 1, "{} events", events.len());
    let opened = &events[0].message;
    ensure!(opened.headers.get(header::TYPE) == Some("ftgo.accounting.events.AccountOpened"));
    ensure!(opened.headers.get(header::CAUSATION_ID) == created.id());
    ensure!(opened.headers.get(header::SOURCE) == Some("/ftgo/accounting-service"));
    let Event::AccountOpened(event) = harness.event(&events[0]).await? else {
        bail!("not AccountOpened");
    };
    ensure!(event.consumer_id == consumer && event.opened_at > 0);

    let (limit, currency): (i64, String) = sqlx::query_as(
        "SELECT authorization_limit_minor, currency FROM accounts WHERE consumer_id = $1",
    )
    .bind(consumer)
    .fetch_one(harness.pool())
    .await?;
    ensure!(limit == 50_000 && currency == "USD");
    harness.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_are_authorized_once_per_order_or_refused_with_a_reason() -> Result<()> {
    let harness = Harness::start().await?;
    let consumer = harness.account().await?;
    let saga = Uuid::new_v4().to_string();

    // One order: its command delivered twice, then sent again as a new message.
    let order = authorize(Uuid::new_v4(), consumer, 2_000, "USD");
    let key = order.order_id.to_string();
    let first = harness.saga_command(&order, &saga).await?;
    harness.command(&first).await?;
    harness.command(&first).await?;
    let second = harness.saga_command(&order, &saga).await?;
    harness.command(&second).await?;

    // Each refusal, and a total at the limit.
    let cases = [
        (
            "at the limit",
            authorize(Uuid::new_v4(), consumer, 50_000, "USD"),
            None,
        ),
        (
            "above the limit",
            authorize(Uuid::new_v4(), consumer, 50_001, "USD"),
            Some(AuthorizeCardFailure::AmountOverLimit),
        ),
        (
            "in another currency",
            authorize(Uuid::new_v4(), consumer, 2_000, "EUR"),
            Some(AuthorizeCardFailure::CardDeclined),
        ),
        (
            "without an account",
            authorize(Uuid::new_v4(), Uuid::new_v4(), 2_000, "USD"),
            Some(AuthorizeCardFailure::NoAccount),
        ),
    ];
    for (_, command, _) in &cases {
        harness
            .command(&harness.saga_command(command, &saga).await?)
            .await?;
    }

    // The order's two requests (the duplicate delivery answered nothing) name one authorization.
    let replies = records_of(REPLIES, &key, 2).await?;
    ensure!(replies.len() == 2, "{} replies", replies.len());
    let mut authorizations = Vec::new();
    for (reply, message) in replies.iter().zip([&first, &second]) {
        ensure!(reply.message.headers.get(header::CAUSATION_ID) == message.id());
        ensure!(reply.message.headers.get(header::CORRELATION_ID) == Some(saga.as_str()));
        let Reply::AuthorizeCardSucceeded(reply) = harness.reply(reply).await? else {
            bail!("not authorized");
        };
        authorizations.push(reply.authorization_id);
    }
    ensure!(authorizations[0] == authorizations[1], "{authorizations:?}");
    harness.relayed(&key).await?;
    let events = records_of(EVENTS, &key, 1).await?;
    ensure!(events.len() == 1, "{} events", events.len());
    let Event::CardAuthorized(event) = harness.event(&events[0]).await? else {
        bail!("not CardAuthorized");
    };
    ensure!(event.authorization_id == authorizations[0] && event.consumer_id == consumer);
    ensure!(event.amount.amount_minor == 2_000 && event.amount.currency == "USD");

    for (case, command, failure) in &cases {
        let key = command.order_id.to_string();
        let replies = records_of(REPLIES, &key, 1).await?;
        let events = records_of(EVENTS, &key, 1).await?;
        ensure!(replies.len() == 1 && events.len() == 1, "{case}");
        match (harness.reply(&replies[0]).await?, failure) {
            (Reply::AuthorizeCardSucceeded(_), None) => {
                ensure!(matches!(
                    harness.event(&events[0]).await?,
                    Event::CardAuthorized(_)
                ));
            }
            (Reply::AuthorizeCardFailed(reply), Some(failure)) => {
                ensure!(
                    reply.reason == *failure && reply.detail.is_some(),
                    "{case}: {reply:?}"
                );
                let Event::CardAuthorizationFailed(event) = harness.event(&events[0]).await? else {
                    bail!("{case}: not CardAuthorizationFailed");
                };
                ensure!(
                    serde_json::to_value(event.reason)? == serde_json::to_value(failure)?,
                    "{case}: {event:?}"
                );
                ensure!(event.consumer_id == command.consumer_id, "{case}");
            }
            (other, _) => bail!("{case}: {other:?}"),
        }
    }
    // The order asked about with another amount is another request: dead-lettered, not
    // answered with the first one's authorization.
    let changed = authorize(order.order_id, consumer, 2_001, "USD");
    let conflicting = harness.saga_command(&changed, &saga).await?;
    harness.command(&conflicting).await?;
    let letters = records_of(DEAD_LETTERS, &key, 1).await?;
    ensure!(letters[0].message.id() == conflicting.id());
    ensure!(
        letters[0].message.headers.get(header::dead_letter::REASON)
            == Some("authorization-conflict")
    );

    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM authorizations WHERE consumer_id = $1")
            .bind(consumer)
            .fetch_one(harness.pool())
            .await?;
    ensure!(held == 2, "{held} authorizations");
    harness.0.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_releases_the_hold_once_and_always_succeeds() -> Result<()> {
    let harness = Harness::start().await?;
    let consumer = harness.account().await?;
    let (authorized, authorization) = harness.authorized(consumer, 1_500).await?;
    let key = authorized.order_id.to_string();

    let first = harness
        .saga_command(&reverse(&authorized), "cancel")
        .await?;
    harness.command(&first).await?;
    harness.command(&first).await?; // delivered twice: one effect
    let second = harness
        .saga_command(&reverse(&authorized), "cancel")
        .await?;
    harness.command(&second).await?;
    // A late copy of the authorization's command, after the reversal: the same answer, no new
    // hold.
    let late = harness.saga_command(&authorized, "saga").await?;
    harness.command(&late).await?;

    let replies = records_of(REPLIES, &key, 4).await?;
    ensure!(replies.len() == 4, "{} replies", replies.len());
    for (reply, message) in replies[1..3].iter().zip([&first, &second]) {
        ensure!(reply.message.headers.get(header::CAUSATION_ID) == message.id());
        ensure!(reply.message.headers.get(header::CORRELATION_ID) == Some("cancel"));
        ensure!(matches!(
            harness.reply(reply).await?,
            Reply::ReverseAuthorizationSucceeded(r) if r.order_id == authorized.order_id
        ));
    }
    ensure!(matches!(
        harness.reply(&replies[3]).await?,
        Reply::AuthorizeCardSucceeded(r) if r.authorization_id == authorization
    ));

    harness.relayed(&key).await?;
    let events = records_of(EVENTS, &key, 2).await?;
    ensure!(events.len() == 2, "{} events", events.len());
    ensure!(matches!(
        harness.event(&events[0]).await?,
        Event::CardAuthorized(_)
    ));
    let Event::AuthorizationReversed(reversed) = harness.event(&events[1]).await? else {
        bail!("not AuthorizationReversed");
    };
    ensure!(reversed.authorization_id == authorization && reversed.consumer_id == consumer);
    ensure!(events[1].message.headers.get(header::CAUSATION_ID) == first.id());

    // An order never authorized: reversed all the same, and nothing to announce.
    let never = authorize(Uuid::new_v4(), consumer, 700, "USD");
    let nothing = harness.saga_command(&reverse(&never), "cancel").await?;
    harness.command(&nothing).await?;
    let never_key = never.order_id.to_string();
    let replies = records_of(REPLIES, &never_key, 1).await?;
    ensure!(matches!(
        harness.reply(&replies[0]).await?,
        Reply::ReverseAuthorizationSucceeded(_)
    ));
    harness.relayed(&never_key).await?;
    let bootstrap = Platform::from_env().bootstrap_servers;
    let announced = kafka::read_topic(&bootstrap, EVENTS, Duration::from_secs(30))?
        .into_iter()
        .filter(|r| r.message.key.as_deref() == Some(never_key.as_str()))
        .count();
    ensure!(
        announced == 0,
        "{announced} events for an order never authorized"
    );

    let (reversed, held): (bool, i64) = sqlx::query_as(
        "SELECT reversed_at IS NOT NULL, (SELECT count(*) FROM authorizations WHERE consumer_id = $2)
         FROM authorizations WHERE order_id = $1",
    )
    .bind(authorized.order_id)
    .bind(consumer)
    .fetch_one(harness.pool())
    .await?;
    ensure!(
        reversed && held == 1,
        "reversed: {reversed}, {held} authorizations"
    );
    harness.0.stop().await
}

/// A dead-lettered AuthorizeCard replayed after its saga reversed the authorization it never
/// got: refused for good (`compensated`), with no hold on the card and no reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_after_its_compensation_is_refused_and_holds_nothing() -> Result<()> {
    let harness = Harness::start().await?;
    let consumer = harness.account().await?;
    let command = authorize(Uuid::new_v4(), consumer, 900, "USD");
    let key = command.order_id.to_string();
    let reversal = harness.saga_command(&reverse(&command), "saga").await?;
    harness.command(&reversal).await?;
    let replies = records_of(REPLIES, &key, 1).await?;
    ensure!(matches!(
        harness.reply(&replies[0]).await?,
        Reply::ReverseAuthorizationSucceeded(_)
    ));
    let late = harness
        .saga_command(&command, "saga")
        .await?
        .with_header("ftgo_replay_of", "ftgo.accounting-service.dlt/0/0");
    harness.command(&late).await?;
    let letters = records_of(DEAD_LETTERS, &key, 1).await?;
    ensure!(
        letters[0].message.id() == late.id()
            && letters[0].message.headers.get(header::dead_letter::REASON) == Some("compensated"),
        "{:?}",
        letters[0].message.headers
    );
    settle().await;
    ensure!(
        records_of(REPLIES, &key, 1).await?.len() == 1,
        "the late command was answered"
    );
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM authorizations WHERE order_id = $1")
        .bind(command.order_id)
        .fetch_one(harness.pool())
        .await?;
    ensure!(holds == 0, "{holds} authorizations for a compensated order");
    harness.0.stop().await
}
