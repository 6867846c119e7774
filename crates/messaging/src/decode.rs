//! The decode layer: a message that lacks a required header or whose payload cannot be decoded
//! fails permanently (so the dead-letter layer outside takes it, with the reason); a decoded
//! one goes to the inner handler together with its value.
//!
//! The decoder is a trait so this crate knows no codec: the service kit plugs in the Avro
//! codec of the contracts crate.

use std::future::Future;

use crate::Reason;
use crate::handler::{Handler, HandlerError};
use crate::message::{Received, header};

/// The headers every message must carry: its id (the key of duplicate detection) and its type
/// (what it is, readable without decoding). Documented for outside producers in
/// docs/runtime.md.
pub const REQUIRED_HEADERS: [&str; 2] = [header::ID, header::TYPE];

/// Turns a received message's payload into a value.
pub trait Decoder: Send + Sync {
    type Value: Send;
    /// Fails with [`HandlerError::Permanent`] when the bytes can never decode (the reason says
    /// why), or [`HandlerError::Transient`] when decoding needs something that is not there
    /// yet (a registry that did not answer).
    fn decode(
        &self,
        message: &Received,
    ) -> impl Future<Output = Result<Self::Value, HandlerError>> + Send;
}

/// Does the work of one decoded message. Delivery is at least once, as for [`Handler`].
pub trait DecodedHandler<V>: Send + Sync {
    fn handle(
        &self,
        message: &Received,
        value: V,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// A decoded-message handler from an async closure over owned copies.
pub fn decoded_fn<F, Fut, V>(f: F) -> DecodedFn<F>
where
    F: Fn(Received, V) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    DecodedFn(f)
}

/// See [`decoded_fn`].
#[derive(Debug, Clone)]
pub struct DecodedFn<F>(F);

impl<F, Fut, V> DecodedHandler<V> for DecodedFn<F>
where
    F: Fn(Received, V) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(
        &self,
        message: &Received,
        value: V,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        (self.0)(message.clone(), value)
    }
}

/// Checks the required headers, decodes, and calls the inner handler with the value. Put it
/// inside the retry and dead-letter layers: `DeadLetter(Retry(Decode(decoder, handler)))`, so
/// an unreachable registry is retried and undecodable bytes are dead-lettered.
#[derive(Debug, Clone)]
pub struct Decode<D, H> {
    decoder: D,
    inner: H,
}

impl<D, H> Decode<D, H> {
    pub fn new(decoder: D, inner: H) -> Self {
        Self { decoder, inner }
    }
}

/// Why a message lacking `name` cannot be handled.
#[derive(Debug, thiserror::Error)]
#[error("the required header {name} is missing or empty")]
pub struct MissingHeader {
    pub name: &'static str,
}

impl<D: Decoder, H: DecodedHandler<D::Value>> Handler for Decode<D, H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        for name in REQUIRED_HEADERS {
            if message.message.headers.get(name).is_none_or(str::is_empty) {
                return Err(HandlerError::permanent(
                    Reason::MissingHeader,
                    MissingHeader { name },
                ));
            }
        }
        let value = self.decoder.decode(message).await?;
        self.inner.handle(message, value).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::testing::received;

    /// Decodes UTF-8 payloads; anything else is permanently invalid.
    struct Utf8;

    impl Decoder for Utf8 {
        type Value = String;
        async fn decode(&self, message: &Received) -> Result<String, HandlerError> {
            String::from_utf8(message.message.payload.clone())
                .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))
        }
    }

    fn layer(seen: Arc<Mutex<Vec<String>>>) -> impl Handler {
        Decode::new(
            Utf8,
            decoded_fn(move |_, text: String| {
                seen.lock().expect("lock").push(text);
                async { Ok(()) }
            }),
        )
    }

    #[tokio::test]
    async fn a_decoded_value_reaches_the_handler() {
        let seen = Arc::default();
        let message = received("order-1", b"hello");
        layer(Arc::clone(&seen))
            .handle(&message)
            .await
            .expect("handled");
        assert_eq!(*seen.lock().expect("lock"), vec!["hello".to_owned()]);
    }

    #[tokio::test]
    async fn a_missing_required_header_is_a_permanent_failure_named_after_the_header() {
        for name in REQUIRED_HEADERS {
            let seen = Arc::default();
            let mut message = received("order-1", b"hello");
            message.message.headers.remove(name);
            let error = layer(Arc::clone(&seen))
                .handle(&message)
                .await
                .expect_err("refused");
            assert_eq!(error.reason(), crate::Reason::MissingHeader);
            assert!(error.to_string().contains(name), "{error}");
            assert!(seen.lock().expect("lock").is_empty());
        }
    }

    #[tokio::test]
    async fn undecodable_bytes_fail_with_the_decoders_reason() {
        let seen = Arc::default();
        let error = layer(Arc::clone(&seen))
            .handle(&received("order-1", b"\xff\xfe"))
            .await
            .expect_err("refused");
        assert_eq!(error.reason(), crate::Reason::InvalidContent);
        assert!(seen.lock().expect("lock").is_empty());
    }
}
