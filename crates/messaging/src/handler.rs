//! Handlers and their errors. A handler does one message's work; layers (retry, dead letter)
//! wrap it, each in a file of its own.

use std::future::Future;

use crate::message::Received;
use crate::reason::Reason;

/// Any error a handler returns as the cause of its failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a handler failed, which decides what happens next: a transient failure is retried in
/// place (the key's order holds: nothing behind it on the partition is handled meanwhile); a
/// permanent one, or one that keeps failing, goes to the dead-letter topic and the consumer
/// moves on.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed if tried again: a database or broker that did not answer, a lock timeout.
    #[error("transient failure: {0}")]
    Transient(#[source] BoxError),
    /// Cannot succeed, however often tried: bytes that do not decode, a record that may not
    /// appear on this topic, a message the domain rejects for good. `reason` is its stable
    /// code for the dead-letter headers.
    #[error("permanent failure ({reason}): {source}")]
    Permanent {
        reason: Reason,
        #[source]
        source: BoxError,
    },
    /// Transient failures went on until the retry policy gave up.
    #[error("still failing after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        #[source]
        last: BoxError,
    },
}

impl HandlerError {
    pub fn transient(error: impl Into<BoxError>) -> Self {
        HandlerError::Transient(error.into())
    }

    /// A permanent failure with its dead-letter reason code. `error` may be any error or just
    /// a message (`format!(...)`) for a refusal of the domain's.
    pub fn permanent(reason: Reason, error: impl Into<BoxError>) -> Self {
        HandlerError::Permanent {
            reason,
            source: error.into(),
        }
    }

    /// A dependency (the database, the schema registry) cannot be reached: not the message's
    /// fault, so it is waited out, without bound, rather than dead-lettered ([`crate::Retry`]).
    /// A transient failure whose cause is an [`Unavailable`].
    pub fn unavailable(dependency: &'static str, error: impl Into<BoxError>) -> Self {
        HandlerError::Transient(Box::new(Unavailable {
            dependency,
            source: error.into(),
        }))
    }

    /// The dependency this failure waits for, if it is an [`Unavailable`].
    pub fn unavailable_dependency(&self) -> Option<&'static str> {
        match self {
            HandlerError::Transient(error) => error
                .downcast_ref::<Unavailable>()
                .map(|unavailable| unavailable.dependency),
            _ => None,
        }
    }

    /// The dead-letter reason code of this failure.
    pub fn reason(&self) -> Reason {
        match self {
            HandlerError::Transient(_) => Reason::TransientFailure,
            HandlerError::Permanent { reason, .. } => *reason,
            HandlerError::RetriesExhausted { .. } => Reason::RetriesExhausted,
        }
    }
}

/// A dependency that cannot be reached, as the cause of a transient failure.
#[derive(Debug, thiserror::Error)]
#[error("{dependency} unavailable: {source}")]
pub struct Unavailable {
    /// `database`, `schema-registry`, ...: what readiness and the metrics name.
    pub dependency: &'static str,
    #[source]
    pub source: BoxError,
}

/// Does the work of one message.
///
/// Delivery is **at least once**: a handler may see the same message again (after a crash, a
/// rebalance, or a retry), so its effects must be idempotent; the outbox's inbox makes them so.
/// It is called for one message of a key at a time, in the key's order.
pub trait Handler: Send + Sync {
    fn handle(&self, message: &Received) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// A handler from an async closure over an owned copy of the message.
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Received) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    FnHandler(f)
}

/// See [`handler_fn`].
#[derive(Debug, Clone)]
pub struct FnHandler<F>(F);

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Received) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(&self, message: &Received) -> impl Future<Output = Result<(), HandlerError>> + Send {
        (self.0)(message.clone())
    }
}

impl<H: Handler> Handler for std::sync::Arc<H> {
    fn handle(&self, message: &Received) -> impl Future<Output = Result<(), HandlerError>> + Send {
        (**self).handle(message)
    }
}
