//! A message: id, key, headers, payload. Transport-agnostic: the Kafka adapter maps it to a
//! record (key, headers, value), the in-memory transport keeps it as it is.

use std::fmt;
use std::time::SystemTime;

/// Header names. Metadata travels in headers, readable as text by console tools, following the
/// CloudEvents Kafka binding (`ce_*`, `content-type`) plus W3C trace context.
pub mod header {
    /// The message's unique id (CloudEvents `id`): the deduplication key of idempotent consumers.
    pub const ID: &str = "ce_id";
    /// The message type: the Avro record's full name, e.g. `ftgo.order.commands.CreateOrder`.
    pub const TYPE: &str = "ce_type";
    /// Who sent it, e.g. `/ftgo/order-service`.
    pub const SOURCE: &str = "ce_source";
    /// When it was created, RFC 3339 UTC.
    pub const TIME: &str = "ce_time";
    /// The CloudEvents version, always `1.0`.
    pub const SPEC_VERSION: &str = "ce_specversion";
    /// How the payload is encoded: `application/vnd.confluent.avro` for Confluent-framed Avro.
    pub const CONTENT_TYPE: &str = "content-type";
    /// The id of the conversation this message belongs to (a saga, a request and its reply).
    pub const CORRELATION_ID: &str = "ce_correlationid";
    /// The id of the message whose handling produced this one.
    pub const CAUSATION_ID: &str = "ce_causationid";
    /// Where a command's reply goes (a topic).
    pub const REPLY_TO: &str = "ce_replyto";
    /// W3C trace context, so a trace follows a message across services.
    pub const TRACEPARENT: &str = "traceparent";

    /// Dead letters carry why and where from, besides the original headers.
    pub mod dead_letter {
        /// A short, stable code: `invalid-content`, `handler-failed`, `retries-exhausted`, ...
        pub const REASON: &str = "ftgo_dlt_reason";
        /// The error's text.
        pub const ERROR: &str = "ftgo_dlt_error";
        /// Where the original record was: topic, partition, offset.
        pub const TOPIC: &str = "ftgo_dlt_topic";
        pub const PARTITION: &str = "ftgo_dlt_partition";
        pub const OFFSET: &str = "ftgo_dlt_offset";
        /// The consumer group that gave up on it.
        pub const GROUP: &str = "ftgo_dlt_group";
        /// When the original was written (milliseconds since the epoch), and when it failed.
        pub const ORIGINAL_TIMESTAMP: &str = "ftgo_dlt_original_timestamp";
        pub const FAILED_AT: &str = "ftgo_dlt_failed_at";
        /// How many times the handler was tried.
        pub const ATTEMPTS: &str = "ftgo_dlt_attempts";
    }
}

/// The content type of Confluent-framed Avro payloads.
pub const AVRO_CONTENT_TYPE: &str = "application/vnd.confluent.avro";

/// Text headers, in order. Setting a name replaces its value; names are case-sensitive, as in
/// Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Builder form of [`Headers::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let index = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(index).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.set(name, value);
        }
        headers
    }
}

/// A message to send or a message received.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The partition key: every message about one order (restaurant, consumer) has the same
    /// key, so they share a partition and keep their order.
    pub key: Option<String>,
    pub headers: Headers,
    pub payload: Vec<u8>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id())
            .field("type", &self.headers.get(header::TYPE))
            .field("key", &self.key)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

impl Message {
    /// A new message with a fresh id (`ce_id`, a UUID v7: unique, and ordered by creation
    /// time), the CloudEvents version and its creation time.
    pub fn new(key: Option<String>, payload: Vec<u8>) -> Self {
        let headers = Headers::new()
            .with(header::ID, uuid::Uuid::now_v7().to_string())
            .with(header::SPEC_VERSION, "1.0")
            .with(header::TIME, rfc3339(SystemTime::now()));
        Self {
            key,
            headers,
            payload,
        }
    }

    /// The message id (`ce_id`), if it has one.
    pub fn id(&self) -> Option<&str> {
        self.headers.get(header::ID)
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.set(name, value);
        self
    }
}

/// Where a received message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// When the record was written, milliseconds since the epoch, if the transport knows.
    pub timestamp_ms: Option<i64>,
}

/// A message as a handler receives it: the message and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message: Message,
    pub origin: Origin,
    /// The trace context of the span handling this message, set by the
    /// [`Traced`](crate::Traced) layer; what the handler sends because of the message carries
    /// it as its `traceparent`. `None` outside that layer.
    pub trace: Option<crate::trace::TraceContext>,
}

/// `2026-11-26T08:00:00.123Z`: RFC 3339, UTC, milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn setting_a_header_replaces_it() {
        let mut headers = Headers::new().with("a", "1").with("b", "2");
        headers.set("a", "3");
        assert_eq!(headers.get("a"), Some("3"));
        assert_eq!(
            headers.iter().collect::<Vec<_>>(),
            vec![("a", "3"), ("b", "2")]
        );
        assert_eq!(headers.remove("a"), Some("3".to_owned()));
        assert_eq!(headers.get("a"), None);
    }

    #[test]
    fn a_new_message_has_an_id_a_time_and_the_cloudevents_version() {
        let a = Message::new(Some("k".into()), vec![1]);
        let b = Message::new(Some("k".into()), vec![1]);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.headers.get(header::SPEC_VERSION), Some("1.0"));
        assert!(
            a.headers
                .get(header::TIME)
                .is_some_and(|t| t.ends_with('Z'))
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_144_000_123);
        assert_eq!(rfc3339(t), "2025-11-26T08:00:00.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
