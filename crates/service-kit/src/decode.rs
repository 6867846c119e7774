//! Decoding our messages for the [`messaging::Decode`] layer.

use std::sync::Arc;

use std::marker::PhantomData;

use contracts::{Codec, DecodeError, Decoded};
use messaging::{Decoder, HandlerError, Reason, Received, header};

use crate::inbound::Inbound;

/// Decodes a message's payload with the [`Codec`] (the writer's schema by id from the
/// registry, resolved to ours, the record checked against the topic's catalog entry), and
/// checks that the `ce_type` header names the record the payload holds and that the Kafka key
/// is the record's key field (`key-mismatch` otherwise: a message keyed otherwise may be on
/// another partition than its entity's other messages, and overtake them).
///
/// An unreachable registry is an unavailable dependency (waited out); everything else is
/// permanent, with
/// [`DecodeError::reason`] or `type-mismatch` as the dead-letter reason.
#[derive(Debug, Clone)]
pub struct CatalogDecoder {
    codec: Arc<Codec>,
}

impl CatalogDecoder {
    pub fn new(codec: Arc<Codec>) -> Self {
        Self { codec }
    }
}

/// The `ce_type` header and the payload disagree about what the message is.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {} header says {declared} but the payload is a {actual}",
    header::TYPE
)]
pub struct TypeMismatch {
    pub declared: String,
    pub actual: String,
}

/// The Kafka record's key is not the value of the record's key field: it may be on another
/// partition than the other messages of its entity, and handled out of their order.
#[derive(Debug, thiserror::Error)]
#[error(
    "the record's key is {}, but its {field} is {expected}: key every message by its entity's id \
     (docs/runtime.md)",
    key.as_deref().map_or_else(|| "missing".to_owned(), |k| format!("{k:?}"))
)]
pub struct KeyMismatch {
    pub key: Option<String>,
    pub field: &'static str,
    pub expected: String,
}

fn failure(error: DecodeError) -> HandlerError {
    if error.is_transient() {
        // The registry is unreachable: waited out, never dead-lettered.
        HandlerError::unavailable("schema-registry", error)
    } else {
        HandlerError::permanent(decode_reason(&error), error)
    }
}

impl Decoder for CatalogDecoder {
    type Value = Decoded;

    async fn decode(&self, message: &Received) -> Result<Decoded, HandlerError> {
        let decoded = self
            .codec
            .decode_value(&message.origin.topic, &message.message.payload)
            .await
            .map_err(failure)?;
        let declared = message.message.headers.get(header::TYPE).unwrap_or("");
        if declared != decoded.full_name {
            return Err(HandlerError::permanent(
                Reason::TypeMismatch,
                TypeMismatch {
                    declared: declared.to_owned(),
                    actual: decoded.full_name,
                },
            ));
        }
        if let Some(expected) = decoded.key()
            && message.message.key.as_deref() != Some(expected.as_str())
        {
            let field = contracts::catalog::record(&decoded.topic, &decoded.full_name)
                .map_or("key field", |record| record.key_field);
            return Err(HandlerError::permanent(
                Reason::KeyMismatch,
                KeyMismatch {
                    key: message.message.key.clone(),
                    field,
                    expected,
                },
            ));
        }
        Ok(decoded)
    }
}

/// Decodes a channel's messages into its typed enum (`order::commands::Command`, ...), or the
/// messages of several channels into an [`inbound!`](crate::inbound) enum, with the checks of
/// [`CatalogDecoder`]: what a service's handler matches on.
#[derive(Debug)]
pub struct ChannelDecoder<C> {
    inner: CatalogDecoder,
    channel: PhantomData<fn() -> C>,
}

impl<C> Clone for ChannelDecoder<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            channel: PhantomData,
        }
    }
}

impl<C: Inbound> ChannelDecoder<C> {
    pub fn new(codec: Arc<Codec>) -> Self {
        Self {
            inner: CatalogDecoder::new(codec),
            channel: PhantomData,
        }
    }
}

impl<C: Inbound> Decoder for ChannelDecoder<C> {
    type Value = C;

    async fn decode(&self, message: &Received) -> Result<C, HandlerError> {
        let decoded = self.inner.decode(message).await?;
        C::from_decoded(decoded).map_err(failure)
    }
}

/// The dead-letter reason of a decoding failure (the codec's own code, [`DecodeError::reason`],
/// says the same).
pub fn decode_reason(error: &DecodeError) -> Reason {
    match error {
        DecodeError::NotFramed { .. } => Reason::NotConfluentFramed,
        DecodeError::UnknownSchemaId { .. } => Reason::UnknownSchemaId,
        DecodeError::RecordNotAllowed { .. } => Reason::RecordNotAllowedOnTopic,
        DecodeError::InvalidContent { .. } => Reason::InvalidContent,
        DecodeError::RegistryUnavailable { .. } => Reason::RegistryUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoding_failure_s_reason_is_the_codec_s_code() {
        let detail = String::from("x");
        let failures = [
            DecodeError::NotFramed {
                detail: detail.clone(),
            },
            DecodeError::UnknownSchemaId {
                id: 1,
                detail: detail.clone(),
            },
            DecodeError::RecordNotAllowed {
                topic: "t".into(),
                record: "r".into(),
            },
            DecodeError::InvalidContent {
                record: "r".into(),
                id: 1,
                detail: detail.clone(),
            },
            DecodeError::RegistryUnavailable { id: 1, detail },
        ];
        for error in failures {
            assert_eq!(decode_reason(&error).as_str(), error.reason(), "{error}");
        }
    }
}
