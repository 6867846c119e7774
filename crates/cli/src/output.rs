//! `--output text|json`: what people read, or what scripts parse. JSON is one document for a
//! listing (`topics`, `dlq list`, `order show`) and one object a line (NDJSON) for a stream
//! (`tail`).

use apache_avro::types::Value;
use messaging::{Received, header};
use serde_json::{Value as Json, json};

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns and sentences.
    #[default]
    Text,
    /// JSON: a document, or one object a line for `tail`.
    Json,
}

/// A record as JSON: where it is, its key and type, its headers (when asked for), and its
/// value decoded to JSON (`error` instead when it does not decode).
pub fn record(record: &Received, value: Result<Value, String>, headers: bool) -> Json {
    let origin = &record.origin;
    let mut object = json!({
        "topic": origin.topic,
        "partition": origin.partition,
        "offset": origin.offset,
        "timestamp": origin.timestamp_ms,
        "key": record.message.key,
        "type": record.message.headers.get(header::TYPE),
    });
    if headers {
        let all: serde_json::Map<String, Json> = record
            .message
            .headers
            .iter()
            .map(|(name, value)| (name.to_owned(), Json::String(value.to_owned())))
            .collect();
        object["headers"] = Json::Object(all);
    }
    match value.and_then(|v| Json::try_from(v).map_err(|e| e.to_string())) {
        Ok(value) => object["value"] = value,
        Err(error) => object["error"] = Json::String(error),
    }
    object
}
