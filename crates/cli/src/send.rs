//! `ftgo send TYPE`: publishes any record of the catalog, written as JSON (`--json`) and/or
//! field by field (`--set path=value`), keyed by its key field, with the headers every producer
//! of the project sets. Also [`Sender`], which `order` and `seed` publish with.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use apache_avro::types::Value;
use contracts::catalog::{self, ChannelInfo, RecordInfo};
use contracts::{Codec, Contract, EncodeError};
use kafka::{KafkaPublisher, TopicAdmin};
use messaging::AVRO_CONTENT_TYPE;
use messaging::{Message, Publisher, header};

use crate::avro_json::RecordSchema;

/// `ce_source` of everything the CLI publishes.
pub const SOURCE: &str = "/ftgo/cli";

/// How long to wait for the broker's metadata before saying Kafka does not answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to send.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The record type: its name (CreateOrder) or full name (ftgo.order.commands.CreateOrder).
    #[arg(value_name = "TYPE")]
    pub record_type: String,
    /// The record as JSON, in its Avro field names (as in the .avsc and docs/messages.md);
    /// `@FILE` reads it from a file, `-` from stdin.
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,
    /// Sets one field (after --json): `deliveryAddress.zip=94612`, `lineItems[0].quantity=2`.
    /// The value is read as JSON where the field is not text, else taken as it is.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// The Kafka record key, instead of the record's key field.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Asks for a reply on this topic (sets ce_replyto and a correlation id).
    #[arg(long, value_name = "TOPIC")]
    pub reply_to: Option<String>,
}

/// The catalog's record called `wanted` (name or full name); an unknown or ambiguous name is
/// an error that lists the close matches or the choices.
pub fn find_record(wanted: &str) -> Result<(&'static ChannelInfo, &'static RecordInfo)> {
    let all: Vec<_> = catalog::records().collect();
    if let Some(found) = all.iter().find(|(_, r)| r.full_name == wanted) {
        return Ok(*found);
    }
    let named: Vec<_> = all.iter().filter(|(_, r)| r.name == wanted).collect();
    match named.as_slice() {
        [one] => return Ok(**one),
        [] => {}
        several => bail!(
            "{wanted} is a record of several topics; say which by its full name: {}",
            several
                .iter()
                .map(|(_, r)| r.full_name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    let lower = wanted.to_lowercase();
    let short = lower.rsplit('.').next().unwrap_or(&lower);
    let mut close: Vec<(f64, &str)> = all
        .iter()
        .map(|(_, r)| {
            let score = strsim::jaro_winkler(short, &r.name.to_lowercase());
            (score, r.full_name)
        })
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            "; did you mean {}?",
            close
                .iter()
                .take(4)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    bail!(
        "no record type {wanted} in the catalog{hint} (docs/messages.md lists every record and its fields)"
    )
}

/// Where a message went.
#[derive(Debug, Clone)]
pub struct Sent {
    pub record: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub id: String,
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} to {}[{}]@{} key={} ce_id={}",
            self.record.rsplit('.').next().unwrap_or(&self.record),
            self.topic,
            self.partition,
            self.offset,
            self.key,
            self.id
        )
    }
}

/// A hint for a broker that does not answer.
pub fn kafka_unreachable(bootstrap: &str) -> String {
    format!(
        "Kafka at {bootstrap} does not answer (start the platform: deploy/local/up; check it: deploy/local/status)"
    )
}

/// The broker's topics, or an error that says to start the platform, or, when the broker
/// refused the login, which settings name the principal and its password.
pub fn probe_kafka(bootstrap: &str) -> Result<TopicAdmin> {
    // The error's own text, once: its source chain repeats librdkafka's message.
    let unreachable = |e: kafka::KafkaError| match e {
        kafka::KafkaError::Security { reason, .. } => anyhow!(
            "Kafka at {bootstrap} did not let {} in: {reason} (the security protocol is \
             FTGO_KAFKA__CONFIG__SECURITY_PROTOCOL, the principal FTGO_KAFKA__CONFIG__SASL_USERNAME, \
             its password in FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE, the CA \
             FTGO_KAFKA__CONFIG__SSL_CA_LOCATION; docs/security.md)",
            std::env::var("FTGO_KAFKA__CONFIG__SASL_USERNAME")
                .unwrap_or_else(|_| "a client without a principal".into())
        ),
        e => anyhow!("{} ({e})", kafka_unreachable(bootstrap)),
    };
    let admin = TopicAdmin::new(bootstrap, PROBE_TIMEOUT).map_err(unreachable)?;
    admin.topics().map_err(unreachable)?;
    Ok(admin)
}

/// Publishes records of the catalog as every producer of the project does: Confluent-framed
/// Avro (schema registered under `<topic>-<full name>`), keyed by the record's key field, with
/// `ce_id`, `ce_type`, `ce_source`, `ce_time`, `ce_specversion` and `content-type`.
pub struct Sender {
    publisher: KafkaPublisher,
    codec: Codec,
    registry: String,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl Sender {
    /// Checks that Kafka answers, so a stopped platform is reported at once rather than after
    /// the producer's delivery timeout.
    pub fn connect(bootstrap: &str, registry: &str) -> Result<Self> {
        probe_kafka(bootstrap)?;
        Ok(Self {
            publisher: KafkaPublisher::new(bootstrap, "ftgo-cli")?,
            codec: Codec::for_catalog(&contracts::RegistryAccess::from_env(registry)?)?,
            registry: registry.to_owned(),
        })
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    fn encode_error(&self, error: EncodeError) -> anyhow::Error {
        match error {
            EncodeError::NotRegistered { .. } | EncodeError::Refused { .. } => error.into(),
            EncodeError::Registry { .. } => anyhow::Error::new(error).context(format!(
                "the schema registry at {} did not take the schema (is it up? deploy/local/status; start it: deploy/local/up)",
                self.registry
            )),
            other => other.into(),
        }
    }

    /// Publishes a typed record of the catalog.
    pub async fn send<T: Contract>(&self, record: &T, reply_to: Option<&str>) -> Result<Sent> {
        let payload = self
            .codec
            .encode(record)
            .await
            .map_err(|e| self.encode_error(e))?;
        self.publish(T::TOPIC, T::FULL_NAME, record.key(), payload, reply_to)
            .await
    }

    /// Publishes an Avro value of record `full_name` on `topic`.
    pub async fn send_value(
        &self,
        topic: &str,
        full_name: &str,
        value: Value,
        key: String,
        reply_to: Option<&str>,
    ) -> Result<Sent> {
        let payload = self
            .codec
            .encode_value(topic, full_name, value)
            .await
            .map_err(|e| self.encode_error(e))?;
        self.publish(topic, full_name, key, payload, reply_to).await
    }

    async fn publish(
        &self,
        topic: &str,
        full_name: &str,
        key: String,
        payload: Vec<u8>,
        reply_to: Option<&str>,
    ) -> Result<Sent> {
        let mut message = Message::new(Some(key.clone()), payload)
            .with_header(header::TYPE, full_name)
            .with_header(header::SOURCE, SOURCE)
            .with_header(header::CONTENT_TYPE, AVRO_CONTENT_TYPE);
        if let Some(reply_to) = reply_to {
            message = messaging::command(message, reply_to);
        }
        let delivery = self
            .publisher
            .publish(topic, &message)
            .await
            .with_context(|| format!("publishing {full_name} to {topic}"))?;
        Ok(Sent {
            record: full_name.to_owned(),
            topic: delivery.topic,
            partition: delivery.partition,
            offset: delivery.offset,
            key,
            id: message.id().unwrap_or_default().to_owned(),
        })
    }
}

/// The record `--json` and `--set` describe, as JSON.
pub fn record_json(schema: &RecordSchema, options: &Options) -> Result<serde_json::Value> {
    let mut json = match options.json.as_deref() {
        Some(text) => {
            let text = match text {
                "-" => std::io::read_to_string(std::io::stdin())
                    .context("reading --json from stdin")?,
                _ => match text.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("reading --json from {path}"))?,
                    None => text.to_owned(),
                },
            };
            serde_json::from_str(&text).context(
                "--json is not valid JSON (quote it for the shell: --json '{\"orderId\": \"...\"}')",
            )?
        }
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    if !json.is_object() {
        bail!("--json must be a JSON object (the record's fields), not {json}");
    }
    for set in &options.sets {
        let (path, text) = set.split_once('=').with_context(|| {
            format!("--set {set:?} is not PATH=VALUE (e.g. --set deliveryAddress.zip=94612)")
        })?;
        schema
            .set(&mut json, path.trim(), text)
            .with_context(|| format!("--set {set}"))?;
    }
    Ok(json)
}

pub async fn send(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    let (channel, record) = find_record(&options.record_type)?;
    let schema = RecordSchema::parse(record.schema)?;
    let json = record_json(&schema, options)?;
    let value = schema
        .to_avro(&json)
        .with_context(|| format!("{} does not fit its schema", record.full_name))?;
    let key = match &options.key {
        Some(key) => key.clone(),
        None => match &json[record.key_field] {
            serde_json::Value::String(key) => key.clone(),
            other => bail!(
                "the key field {} of {} is {other}, not text; set it or give --key",
                record.key_field,
                record.name
            ),
        },
    };
    let sender = Sender::connect(bootstrap, registry)?;
    let sent = sender
        .send_value(
            channel.topic,
            record.full_name,
            value,
            key,
            options.reply_to.as_deref(),
        )
        .await?;
    out!("{sent}");
    Ok(ExitCode::SUCCESS)
}

/// What a follower of a topic does with an error of `TopicTail::next`: a refusal (the
/// principal's credentials or rights) ends it; anything else passes while the cluster changes
/// (a broker lost until the client finds the partitions' new leaders), so it is said at most
/// every ten seconds and read past.
pub fn read_past(
    topic: &str,
    error: &kafka::KafkaError,
    warned: &mut Option<Instant>,
) -> Result<(), String> {
    if error.is_refused() {
        return Err(format!("reading {topic}: {error}"));
    }
    if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
        eprintln!("warning: reading {topic}: {error} (going on)");
        *warned = Some(Instant::now());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_found_by_name_or_full_name() {
        let (channel, record) = find_record("CreateOrder").expect("by name");
        assert_eq!(channel.topic, "ftgo.order.commands");
        assert_eq!(record.key_field, "orderId");
        let (_, record) = find_record("ftgo.order.events.OrderRejected").expect("by full name");
        assert_eq!(record.name, "OrderRejected");
    }

    #[test]
    fn a_misspelt_record_gets_close_matches() {
        let error = find_record("CreatOrder").expect_err("misspelt").to_string();
        assert!(
            error.contains("did you mean ftgo.order.commands.CreateOrder"),
            "{error}"
        );
        let error = find_record("Nothing").expect_err("unknown").to_string();
        assert!(error.contains("docs/messages.md"), "{error}");
    }
}
