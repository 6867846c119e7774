//! `ftgo dlq list | show | replay`: the dead letters of a consumer group.
//!
//! A dead letter is the original record (key, headers, bytes) plus `ftgo_dlt_*` headers that
//! say why it failed and where it came from. Replaying sends the original back to its topic,
//! same key (so same partition, after what its key saw since), same headers and bytes, same
//! message id (so an idempotent consumer that did handle it meanwhile ignores it), plus
//! `ftgo_replay_of` naming the dead letter. Kafka keeps the letter: replaying twice sends twice.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use contracts::Codec;
use kafka::{KafkaPublisher, read_topic};
use messaging::{Headers, Message, Publisher, Received, header};

use crate::output::Output;

/// Records the replayed message as a copy of a dead letter: `<dlt topic>/<partition>/<offset>`.
pub const REPLAY_OF: &str = "ftgo_replay_of";

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The dead-letter topic of `group_or_topic`: a topic name as given (it has dots), or a group's
/// `ftgo.<group>.dlt`.
pub fn dead_letter_topic(group_or_topic: &str) -> String {
    if group_or_topic.contains('.') {
        group_or_topic.to_owned()
    } else {
        format!("ftgo.{group_or_topic}.dlt")
    }
}

/// `PARTITION:OFFSET`.
pub fn parse_position(text: &str) -> Result<(i32, i64), String> {
    let (partition, offset) = text.split_once(':').ok_or_else(|| {
        format!("{text:?} is not PARTITION:OFFSET (for example 0:42; see `ftgo dlq list`)")
    })?;
    let partition = partition
        .parse()
        .map_err(|_| format!("{partition:?} is not a partition number"))?;
    let offset = offset
        .parse()
        .map_err(|_| format!("{offset:?} is not an offset"))?;
    Ok((partition, offset))
}

fn letters(bootstrap: &str, topic: &str) -> Result<Vec<Received>> {
    read_topic(bootstrap, topic, READ_TIMEOUT).with_context(|| {
        format!(
            "reading {topic} on {bootstrap} (dead-letter topics are ftgo.<group>.dlt, declared in deploy/topics.toml)"
        )
    })
}

fn dlt_header<'a>(letter: &'a Received, name: &str) -> &'a str {
    letter.message.headers.get(name).unwrap_or("-")
}

fn matches_reason(letter: &Received, reason: Option<&str>) -> bool {
    reason.is_none_or(|r| letter.message.headers.get(header::dead_letter::REASON) == Some(r))
}

pub fn list(
    bootstrap: &str,
    group_or_topic: &str,
    reason: Option<&str>,
    output: Output,
) -> Result<ExitCode> {
    use header::dead_letter as dlt;
    let topic = dead_letter_topic(group_or_topic);
    let letters = letters(bootstrap, &topic)?;
    let shown: Vec<&Received> = letters
        .iter()
        .filter(|l| matches_reason(l, reason))
        .collect();
    if output == Output::Json {
        let letters: Vec<serde_json::Value> = shown.iter().map(|l| letter_json(l)).collect();
        out!("{}", serde_json::Value::Array(letters));
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        out!(
            "no dead letters in {topic}{}",
            reason
                .map(|r| format!(" with reason {r}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<10} {:<24} {:<28} {:<40} {:<38} TYPE",
        "POSITION",
        "FAILED AT",
        "REASON",
        "FROM",
        "KEY"
    );
    for letter in &shown {
        let from = format!(
            "{}[{}]@{}",
            dlt_header(letter, dlt::TOPIC),
            dlt_header(letter, dlt::PARTITION),
            dlt_header(letter, dlt::OFFSET)
        );
        out!(
            "{:<10} {:<24} {:<28} {:<40} {:<38} {}",
            format!("{}:{}", letter.origin.partition, letter.origin.offset),
            dlt_header(letter, dlt::FAILED_AT),
            dlt_header(letter, dlt::REASON),
            from,
            letter.message.key.as_deref().unwrap_or("-"),
            dlt_header(letter, header::TYPE),
        );
    }
    out!(
        "{} dead letter(s) in {topic}; `ftgo dlq show {group_or_topic} POSITION` for one",
        shown.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A letter as `dlq list --output json` prints it.
fn letter_json(letter: &Received) -> serde_json::Value {
    use header::dead_letter as dlt;
    let header = |name: &str| letter.message.headers.get(name);
    serde_json::json!({
        "position": format!("{}:{}", letter.origin.partition, letter.origin.offset),
        "failedAt": header(dlt::FAILED_AT),
        "reason": header(dlt::REASON),
        "group": header(dlt::GROUP),
        "error": header(dlt::ERROR),
        "origin": {
            "topic": header(dlt::TOPIC),
            "partition": header(dlt::PARTITION).and_then(|p| p.parse::<i32>().ok()),
            "offset": header(dlt::OFFSET).and_then(|o| o.parse::<i64>().ok()),
        },
        "key": letter.message.key,
        "type": header(header::TYPE),
    })
}

fn find(letters: &[Received], (partition, offset): (i32, i64), topic: &str) -> Result<Received> {
    letters
        .iter()
        .find(|l| l.origin.partition == partition && l.origin.offset == offset)
        .cloned()
        .with_context(|| format!("no dead letter at {partition}:{offset} in {topic}; `ftgo dlq list` shows where they are"))
}

pub async fn show(
    bootstrap: &str,
    registry: &str,
    group_or_topic: &str,
    position: (i32, i64),
) -> Result<ExitCode> {
    let topic = dead_letter_topic(group_or_topic);
    let letter = find(&letters(bootstrap, &topic)?, position, &topic)?;
    out!("dead letter {topic} {}:{}", position.0, position.1);
    out!("key: {}", letter.message.key.as_deref().unwrap_or("(none)"));
    out!("headers:");
    for (name, value) in letter.message.headers.iter() {
        out!("  {name}: {value}");
    }
    let original_topic = letter
        .message
        .headers
        .get(header::dead_letter::TOPIC)
        .unwrap_or("");
    out!("payload ({} bytes):", letter.message.payload.len());
    match decode_json(registry, original_topic, &letter.message.payload).await {
        Ok(json) => out!("{json}"),
        Err(why) => {
            out!("  (not decodable: {why})");
            out!("  {}", hex_preview(&letter.message.payload));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn decode_json(registry: &str, topic: &str, payload: &[u8]) -> Result<String> {
    let codec = Codec::for_catalog(&contracts::RegistryAccess::from_env(registry)?)?;
    let decoded = codec.decode_value(topic, payload).await?;
    let json = serde_json::Value::try_from(decoded.value)?;
    Ok(serde_json::to_string_pretty(&json)?)
}

fn hex_preview(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 64 {
        format!("{shown}...")
    } else {
        shown
    }
}

/// The original message of a dead letter, as it is sent again.
pub fn original(letter: &Received, dead_letter_topic: &str) -> Result<(String, Message)> {
    let to = letter
        .message
        .headers
        .get(header::dead_letter::TOPIC)
        .context("the letter has no ftgo_dlt_topic header: it does not say where it came from")?
        .to_owned();
    let mut headers: Headers = letter
        .message
        .headers
        .iter()
        .filter(|(name, _)| !name.starts_with("ftgo_dlt_") && *name != REPLAY_OF)
        .collect();
    headers.set(
        REPLAY_OF,
        format!(
            "{dead_letter_topic}/{}/{}",
            letter.origin.partition, letter.origin.offset
        ),
    );
    Ok((
        to,
        Message {
            key: letter.message.key.clone(),
            headers,
            payload: letter.message.payload.clone(),
        },
    ))
}

/// Which letters to replay.
#[derive(Debug, Default)]
pub struct Selection {
    pub positions: Vec<(i32, i64)>,
    pub reason: Option<String>,
    pub all: bool,
}

pub async fn replay(
    bootstrap: &str,
    group_or_topic: &str,
    selection: &Selection,
) -> Result<ExitCode> {
    if selection.positions.is_empty() && selection.reason.is_none() && !selection.all {
        bail!("say which dead letters to replay: PARTITION:OFFSET..., --reason REASON, or --all");
    }
    let topic = dead_letter_topic(group_or_topic);
    let letters = letters(bootstrap, &topic)?;
    let chosen: Vec<Received> = if selection.positions.is_empty() {
        letters
            .into_iter()
            .filter(|l| matches_reason(l, selection.reason.as_deref()))
            .collect()
    } else {
        selection
            .positions
            .iter()
            .map(|position| find(&letters, *position, &topic))
            .collect::<Result<_>>()?
    };
    let publisher = KafkaPublisher::new(bootstrap, "ftgo-dlq-replay")?;
    let mut failed = 0;
    for letter in &chosen {
        let position = format!("{}:{}", letter.origin.partition, letter.origin.offset);
        match original(letter, &topic) {
            Ok((to, message)) => {
                let delivery = publisher.publish(&to, &message).await?;
                out!(
                    "replayed {position} -> {}[{}]@{} key {}",
                    delivery.topic,
                    delivery.partition,
                    delivery.offset,
                    message.key.as_deref().unwrap_or("-")
                );
            }
            Err(error) => {
                failed += 1;
                eprintln!("not replayed {position}: {error:#}");
            }
        }
    }
    out!(
        "{} of {} dead letter(s) replayed from {topic}",
        chosen.len() - failed,
        chosen.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging::{HandlerError, Origin, dead_letter};

    #[test]
    fn a_group_names_its_dead_letter_topic_and_a_topic_is_taken_as_is() {
        assert_eq!(dead_letter_topic("order-service"), "ftgo.order-service.dlt");
        assert_eq!(
            dead_letter_topic("ftgo.order-service.dlt"),
            "ftgo.order-service.dlt"
        );
    }

    #[test]
    fn positions_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_position("3:42"), Ok((3, 42)));
        let error = parse_position("42").expect_err("no partition");
        assert!(error.contains("PARTITION:OFFSET"), "{error}");
        assert!(parse_position("a:1").is_err());
        assert!(parse_position("1:b").is_err());
    }

    #[test]
    fn the_original_is_rebuilt_without_the_dead_letter_headers() {
        let original_message = Message::new(Some("order-7".into()), b"bytes".to_vec())
            .with_header(header::TYPE, "ftgo.order.commands.CreateOrder");
        let received = Received {
            message: original_message.clone(),
            origin: Origin {
                topic: "ftgo.order.commands".into(),
                partition: 5,
                offset: 9,
                timestamp_ms: None,
            },
            trace: None,
        };
        let letter = Received {
            message: dead_letter(
                &received,
                &HandlerError::permanent(messaging::Reason::InvalidContent, "bad"),
                "order-service",
            ),
            origin: Origin {
                topic: "ftgo.order-service.dlt".into(),
                partition: 0,
                offset: 3,
                timestamp_ms: None,
            },
            trace: None,
        };
        let (to, message) = original(&letter, "ftgo.order-service.dlt").expect("rebuilt");
        assert_eq!(to, "ftgo.order.commands");
        assert_eq!(message.key, original_message.key);
        assert_eq!(message.payload, original_message.payload);
        assert_eq!(message.id(), original_message.id());
        assert!(
            message
                .headers
                .iter()
                .all(|(name, _)| !name.starts_with("ftgo_dlt_"))
        );
        assert_eq!(
            message.headers.get(REPLAY_OF),
            Some("ftgo.order-service.dlt/0/3")
        );
    }
}
