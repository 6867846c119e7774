//! The broker's refusals, against the real platform (SASL_SSL, SCRAM-SHA-512, ACLs from
//! `ftgo acls plan`): a service's principal cannot write another service's events nor join
//! another service's group; a client with a wrong password, without SASL or without TLS cannot
//! connect at all. Each test also shows the same client doing what it may, so a refusal is
//! the broker's and not a broken client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use test_support::Platform;

const WAIT: Duration = Duration::from_secs(20);

/// A service's password, as deploy/local/up made it.
fn password(user: &str) -> Result<String> {
    Platform::from_env().password(user)
}

/// The environment's client settings, as `user` with `password`.
fn as_user(user: &str, password: &str) -> Result<ClientConfig> {
    let mut config = kafka::client_config(&Platform::from_env().bootstrap_servers)?;
    config
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("client.id", format!("security-test-{user}"));
    Ok(config)
}

/// Records every error librdkafka reports, to tell why a client could not connect.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(format!("{error}: {reason}"));
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32)
            && let Ok(mut errors) = self.0.lock()
        {
            errors.push(format!("{fac}: {log_message}"));
        }
    }
}

impl ConsumerContext for Errors {}

impl Errors {
    fn said(&self) -> String {
        self.0.lock().map(|e| e.join("\n")).unwrap_or_default()
    }
}

/// Asks for the cluster's metadata as `config` describes the client; the errors it met when it
/// could not.
fn metadata_errors(config: &mut ClientConfig) -> Result<Option<String>> {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = config
        .set("group.id", "security-test-metadata")
        .create_with_context(errors.clone())?;
    match consumer.fetch_metadata(None, Duration::from_secs(8)) {
        Ok(_) => Ok(None),
        Err(error) => {
            // What librdkafka reported meanwhile arrives by polling.
            for _ in 0..10 {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            Ok(Some(format!("{error}\n{}", errors.said())))
        }
    }
}

#[tokio::test]
async fn the_kitchen_principal_cannot_write_the_order_services_events() -> Result<()> {
    let producer: FutureProducer = as_user("ftgo-kitchen", &password("ftgo-kitchen")?)?
        .set("message.timeout.ms", "10000")
        .create()?;
    let sent = producer
        .send(
            FutureRecord::to("ftgo.order.events")
                .key("forged")
                .payload("an OrderRejected the kitchen never had the right to send"),
            WAIT,
        )
        .await;
    match sent {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed), _)) => {}
        other => bail!("the kitchen wrote ftgo.order.events, or failed otherwise: {other:?}"),
    }
    // What it may: see the topic it consumes.
    let consumer: BaseConsumer = as_user("ftgo-kitchen", &password("ftgo-kitchen")?)?
        .set("group.id", "kitchen-service")
        .create()?;
    consumer
        .fetch_watermarks("ftgo.kitchen.commands", 0, WAIT)
        .context("the kitchen reads its own commands' offsets")?;
    Ok(())
}

#[tokio::test]
async fn the_kitchen_principal_cannot_join_the_order_services_group() -> Result<()> {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = as_user("ftgo-kitchen", &password("ftgo-kitchen")?)?
        .set("group.id", "order-service")
        .create_with_context(errors.clone())?;
    // A topic the kitchen may read: the group is what is refused.
    consumer.subscribe(&["ftgo.kitchen.commands"])?;
    let deadline = std::time::Instant::now() + WAIT;
    let refusal = loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Err(error)) => break error,
            Some(Ok(_)) => bail!("the kitchen read as a member of order-service"),
            None if std::time::Instant::now() > deadline => {
                bail!(
                    "no refusal within {WAIT:?}; librdkafka said: {}",
                    errors.said()
                )
            }
            None => {}
        }
    };
    ensure!(
        refusal.rdkafka_error_code() == Some(RDKafkaErrorCode::GroupAuthorizationFailed),
        "refused, but not for the group: {refusal}"
    );
    Ok(())
}

#[test]
fn a_wrong_password_cannot_connect() -> Result<()> {
    let said = metadata_errors(&mut as_user("ftgo-kitchen", "not-its-password")?)?
        .context("connected with a wrong password")?;
    ensure!(said.contains("Authentication failed"), "{said}");
    // The same client with its password connects.
    ensure!(
        metadata_errors(&mut as_user("ftgo-kitchen", &password("ftgo-kitchen")?)?)?.is_none(),
        "the right password does not connect either"
    );
    Ok(())
}

#[test]
fn a_client_without_sasl_or_without_tls_cannot_connect() -> Result<()> {
    let bootstrap = Platform::from_env().bootstrap_servers;
    // TLS, trusting the CA, but no SASL: the broker waits for a handshake it never gets.
    let mut tls_only = kafka::client_config(&bootstrap)?;
    tls_only
        .set("security.protocol", "SSL")
        .remove("sasl.mechanism")
        .remove("sasl.username")
        .remove("sasl.password");
    ensure!(
        metadata_errors(&mut tls_only)?.is_some(),
        "a client without SASL connected"
    );
    // No TLS, no SASL: what every client was before the platform was secured.
    let mut plaintext = ClientConfig::new();
    plaintext.set("bootstrap.servers", &bootstrap);
    ensure!(
        metadata_errors(&mut plaintext)?.is_some(),
        "a plaintext client connected"
    );
    Ok(())
}
