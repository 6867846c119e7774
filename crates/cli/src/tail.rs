//! `ftgo tail TOPIC`: an Avro-aware console consumer. Each record as
//!
//!     ftgo.order.events[3]@42 key=order-1 type=ftgo.order.events.OrderCreated
//!       {"orderId": "...", ...}
//!
//! with its headers under it when asked (`--headers`). Values are decoded with the writer's
//! schema from the registry; what does not decode is shown as hex with the reason. Reads
//! without a consumer group, so it disturbs no one.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use contracts::Codec;
use kafka::TopicTail;
use messaging::{Received, header};

use crate::output::{self, Output};

/// What to show.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The topic, e.g. ftgo.order.events.
    pub topic: String,
    /// Start at the beginning of every partition instead of the end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Only records with this key (an order, consumer or restaurant id).
    #[arg(long)]
    pub key: Option<String>,
    /// Only records of this type: full name or name (OrderCreated).
    #[arg(long = "type", value_name = "TYPE")]
    pub record_type: Option<String>,
    /// Show every header under each record.
    #[arg(long)]
    pub headers: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,
    /// Stop when nothing arrives for this long (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// `json`: one JSON object a record, a line each (NDJSON): topic, partition, offset,
    /// timestamp, key, type, value (and headers with --headers).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

fn type_matches(wanted: &str, record_type: Option<&str>) -> bool {
    record_type.is_some_and(|t| t == wanted || t.rsplit('.').next() == Some(wanted))
}

pub async fn tail(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    let follower = TopicTail::new(
        bootstrap,
        &options.topic,
        options.from_beginning,
        Duration::from_secs(10),
    )
    .with_context(|| {
        format!(
            "following {} on {bootstrap} (`ftgo tail` takes a topic name; deploy/topics.toml lists ours)",
            options.topic
        )
    })?;
    let codec = Codec::new(
        &contracts::RegistryAccess::from_env(registry)?,
        std::iter::empty(),
    )?;
    let mut shown = 0;
    let mut last_record = Instant::now();
    loop {
        if options.max.is_some_and(|max| shown >= max) {
            break;
        }
        if options
            .idle_timeout
            .is_some_and(|idle| last_record.elapsed() >= idle)
        {
            break;
        }
        let Some(record) = follower.next(Duration::from_millis(200))? else {
            continue;
        };
        last_record = Instant::now();
        if let Some(key) = &options.key
            && record.message.key.as_deref() != Some(key.as_str())
        {
            continue;
        }
        let record_type = record.message.headers.get(header::TYPE);
        if let Some(wanted) = &options.record_type
            && !type_matches(wanted, record_type)
        {
            continue;
        }
        match options.output {
            Output::Text => show(&codec, &record, options.headers).await?,
            Output::Json => {
                let value = codec
                    .decode_as_written(&record.message.payload)
                    .await
                    .map(|decoded| decoded.value)
                    .map_err(|error| error.to_string());
                out!("{}", output::record(&record, value, options.headers));
            }
        }
        shown += 1;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(codec: &Codec, record: &Received, headers: bool) -> Result<()> {
    let origin = &record.origin;
    out!(
        "{}[{}]@{} key={} type={}",
        origin.topic,
        origin.partition,
        origin.offset,
        record.message.key.as_deref().unwrap_or("-"),
        record.message.headers.get(header::TYPE).unwrap_or("-")
    );
    if headers {
        for (name, value) in record.message.headers.iter() {
            out!("  {name}: {value}");
        }
    }
    match codec.decode_as_written(&record.message.payload).await {
        Ok(decoded) => match serde_json::Value::try_from(decoded.value) {
            Ok(json) => out!("  {json}"),
            Err(error) => out!("  (no JSON form: {error})"),
        },
        Err(error) => {
            let hex: String = record
                .message
                .payload
                .iter()
                .take(64)
                .map(|b| format!("{b:02x}"))
                .collect();
            out!("  (not decodable: {error}) {hex}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn a_type_matches_by_full_name_or_by_name() {
        let full = Some("ftgo.order.events.OrderCreated");
        assert!(type_matches("ftgo.order.events.OrderCreated", full));
        assert!(type_matches("OrderCreated", full));
        assert!(!type_matches("Created", full));
        assert!(!type_matches("OrderCreated", None));
    }
}
