//! Retrying transient failures in place, with exponential backoff and full jitter.
//!
//! In place means the partition waits: the next message of the key is not handled before this
//! one succeeds or is given up on, so per-key order holds. The policy is bounded, so a message
//! that keeps failing ends in the dead-letter topic instead of stalling its partition forever.
//!
//! Except when a dependency is down ([`HandlerError::unavailable`]: the database or the schema
//! registry cannot be reached): that is not the message's fault, and dead-lettering good
//! messages for an outage would lose their effects (a saga would time out). Such a failure is
//! retried for as long as it lasts, with backoff capped at `max_outage_backoff`; the partition
//! waits (it fills and is paused), and an [`OutageReporter`] learns when a message starts and
//! stops waiting (readiness and metrics).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;

use crate::handler::{Handler, HandlerError};
use crate::message::Received;

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included. At least 1.
    pub max_attempts: u32,
    /// The backoff ceiling before the second try; it doubles per try.
    pub initial_backoff: Duration,
    /// The backoff ceiling never grows past this.
    pub max_backoff: Duration,
    /// The longest wait between tries while a dependency is unavailable (tries never end).
    pub max_outage_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 tries over at most about 3 s: enough for a broker or database blip, short enough that
    /// a poisoned message does not hold its partition for long.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_outage_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if self.initial_backoff > self.max_backoff {
            return Err("initial_backoff must not exceed max_backoff".into());
        }
        Ok(())
    }

    /// The ceiling of the wait after `attempt` failed tries (1-based): initial × 2^(attempt-1),
    /// capped. The actual wait is uniformly random below it ("full jitter"), so many consumers
    /// failing together do not retry together.
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }
}

/// Learns that a message started (`true`) or stopped (`false`) waiting for an unavailable
/// dependency (`database`, `schema-registry`, ...).
pub type OutageReporter = Arc<dyn Fn(&'static str, bool) + Send + Sync>;

/// Retries the inner handler's transient failures per the policy; permanent failures pass
/// through at once; exhaustion becomes [`HandlerError::RetriesExhausted`]. A dependency's
/// unavailability is retried without bound (see the module's doc).
#[derive(Clone)]
pub struct Retry<H> {
    inner: H,
    policy: RetryPolicy,
    outages: Option<OutageReporter>,
}

impl<H: std::fmt::Debug> std::fmt::Debug for Retry<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<H> Retry<H> {
    pub fn new(inner: H, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            outages: None,
        }
    }

    /// Tells `reporter` when messages start and stop waiting for a dependency.
    pub fn with_outages(mut self, reporter: OutageReporter) -> Self {
        self.outages = Some(reporter);
        self
    }
}

/// A message waiting for `dependency`; reports the end of the wait however it ends (success,
/// another failure, or the handling abandoned at a rebalance or shutdown).
struct Waiting {
    dependency: &'static str,
    reporter: Option<OutageReporter>,
}

impl Waiting {
    fn start(dependency: &'static str, reporter: Option<&OutageReporter>) -> Self {
        if let Some(report) = reporter {
            report(dependency, true);
        }
        Self {
            dependency,
            reporter: reporter.cloned(),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(report) = &self.reporter {
            report(self.dependency, false);
        }
    }
}

impl<H: Handler> Handler for Retry<H> {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        let mut attempt = 1;
        let mut waiting: Option<Waiting> = None;
        let mut outage_wait = self.policy.initial_backoff;
        loop {
            let error = match self.inner.handle(message).await {
                Err(error) => error,
                done => return done,
            };
            if let Some(dependency) = error.unavailable_dependency() {
                if waiting.as_ref().map(|w| w.dependency) != Some(dependency) {
                    tracing::warn!(
                        dependency,
                        topic = %message.origin.topic,
                        partition = message.origin.partition,
                        offset = message.origin.offset,
                        %error,
                        "a dependency is unavailable; the partition waits until it is back"
                    );
                    waiting = Some(Waiting::start(dependency, self.outages.as_ref()));
                }
                tokio::time::sleep(outage_wait).await;
                outage_wait = (outage_wait * 2).min(self.policy.max_outage_backoff);
                continue;
            }
            let HandlerError::Transient(error) = error else {
                return Err(error);
            };
            if attempt >= self.policy.max_attempts {
                return Err(HandlerError::RetriesExhausted {
                    attempts: attempt,
                    last: error,
                });
            }
            let wait = self.policy.backoff(attempt);
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                topic = %message.origin.topic,
                partition = message.origin.partition,
                offset = message.origin.offset,
                error = %error,
                "transient failure; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::handler::handler_fn;
    use crate::testing::received;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            max_outage_backoff: Duration::from_millis(80),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_dependency_is_waited_out_without_bound_and_reported() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let reports: Arc<std::sync::Mutex<Vec<(&'static str, bool)>>> = Arc::default();
        let seen = reports.clone();
        let handler = Retry::new(
            handler_fn(move |_| {
                let counter = counter.clone();
                async move {
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0..50 => Err(HandlerError::unavailable("database", "connection refused")),
                        _ => Ok(()),
                    }
                }
            }),
            policy(3),
        )
        .with_outages(Arc::new(move |dependency, waiting| {
            seen.lock().expect("lock").push((dependency, waiting));
        }));
        handler
            .handle(&received("k", b"x"))
            .await
            .expect("waits past max_attempts until the database is back");
        assert_eq!(calls.load(Ordering::SeqCst), 51);
        assert_eq!(
            *reports.lock().expect("lock"),
            vec![("database", true), ("database", false)]
        );
    }

    #[test]
    fn the_backoff_ceiling_doubles_up_to_the_cap() {
        let p = policy(10);
        let ceilings: Vec<u64> = (1..=5)
            .map(|a| p.backoff_ceiling(a).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, vec![10, 20, 40, 40, 40]);
        for attempt in 1..=5 {
            assert!(p.backoff(attempt) <= p.backoff_ceiling(attempt));
        }
        assert!(
            RetryPolicy {
                max_attempts: 0,
                ..p.clone()
            }
            .validate()
            .is_err()
        );
        assert!(RetryPolicy::default().validate().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let handler = Retry::new(
            handler_fn(move |_| {
                let counter = counter.clone();
                async move {
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0 | 1 => Err(HandlerError::transient("database busy")),
                        _ => Ok(()),
                    }
                }
            }),
            policy(5),
        );
        handler
            .handle(&received("k", b"x"))
            .await
            .expect("third try succeeds");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_end_after_the_policys_attempts() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let handler = Retry::new(
            handler_fn(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Err(HandlerError::transient("still down")) }
            }),
            policy(4),
        );
        let error = handler
            .handle(&received("k", b"x"))
            .await
            .expect_err("gives up");
        assert!(
            matches!(error, HandlerError::RetriesExhausted { attempts: 4, .. }),
            "{error}"
        );
        assert_eq!(error.reason(), crate::Reason::RetriesExhausted);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let handler = Retry::new(
            handler_fn(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(HandlerError::permanent(
                        crate::Reason::InvalidContent,
                        "not Avro",
                    ))
                }
            }),
            policy(5),
        );
        let error = handler
            .handle(&received("k", b"x"))
            .await
            .expect_err("fails");
        assert_eq!(error.reason(), crate::Reason::InvalidContent);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
