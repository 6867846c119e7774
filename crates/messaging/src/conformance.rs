//! The conformance suite every transport passes: the in-memory one in this crate's tests, the
//! Kafka one in `integration-tests` (against the real broker). What a service relies on, so
//! code tested over the in-memory transport behaves the same over Kafka.
//!
//! A transport implements [`Transport`]; `conformance_tests!(make_transport)` then defines one
//! `#[tokio::test]` per case.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Reason;
use crate::conversation::{command, reply};
use crate::dead_letter::{DeadLetter, DeadLetterSettings};
use crate::handler::{Handler, HandlerError, handler_fn};
use crate::message::{Message, Received, header};
use crate::publisher::Publisher;

/// What the suite needs of a transport.
pub trait Transport: Sync {
    type Publisher: Publisher + Clone + 'static;
    fn publisher(&self) -> Self::Publisher;
    /// A new, empty topic of `partitions` partitions, named after `purpose`.
    fn topic(&self, purpose: &str, partitions: usize) -> impl Future<Output = String> + Send;
    /// Starts a member of `group` on `topic` running `handler` (at least once, in key order).
    fn member<H: Handler + 'static>(&self, group: &str, topic: &str, handler: H) -> Member;
    /// The first `count` records of `topic`, waiting for them.
    fn read(&self, topic: &str, count: usize) -> impl Future<Output = Vec<Received>> + Send;
    /// Time within which anything the suite waits for happens.
    fn patience(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// A running group member.
#[derive(Debug)]
pub struct Member {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Member {
    /// `run` is the member's loop; it must end when the future it is given completes.
    pub fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Self {
            stop,
            task: tokio::spawn(run(stopped)),
        }
    }

    /// Stops it gracefully (what it finished is committed) and returns how it ended.
    pub async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.task.await.map_err(|e| e.to_string())?
    }

    /// Waits for it to end by itself (a handler failed for good).
    pub async fn ended(self, within: Duration) -> Result<(), String> {
        match tokio::time::timeout(within, self.task).await {
            Ok(joined) => joined.map_err(|e| e.to_string())?,
            Err(_) => Err("the member did not stop".to_owned()),
        }
    }
}

/// The suite's checks fail with a message, not a panic inside a spawned task.
pub type Outcome = Result<(), String>;

macro_rules! check {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

fn unique(purpose: &str) -> String {
    format!("conformance-{purpose}-{:08x}", rand::random::<u32>())
}

type Seen = Arc<Mutex<Vec<(String, u32)>>>;

fn record(seen: &Seen, received: &Received) -> Result<(), HandlerError> {
    let key = received.message.key.clone().unwrap_or_default();
    let sequence = String::from_utf8_lossy(&received.message.payload)
        .parse()
        .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
    seen.lock().expect("lock").push((key, sequence));
    Ok(())
}

/// A handler that records (key, sequence) of every record; payloads are decimal sequences.
fn recorder(seen: Seen) -> impl Handler + 'static {
    handler_fn(move |received: Received| {
        let outcome = record(&seen, &received);
        async move { outcome }
    })
}

async fn publish_sequences<P: Publisher>(
    publisher: &P,
    topic: &str,
    keys: &[String],
    sequences: std::ops::Range<u32>,
) -> Outcome {
    for sequence in sequences {
        for key in keys {
            let message = Message::new(Some(key.clone()), sequence.to_string().into_bytes());
            publisher
                .publish(topic, &message)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Outcome {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        check!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Every key's sequences in order, with repeats allowed only as a replay of a tail.
fn in_key_order(seen: &[(String, u32)]) -> Outcome {
    let mut last: HashMap<&str, u32> = HashMap::new();
    for (key, sequence) in seen {
        if let Some(previous) = last.get(key.as_str()) {
            check!(
                *sequence == previous + 1 || sequence <= previous,
                "{key}: {sequence} came after {previous}"
            );
        } else {
            check!(*sequence == 0, "{key} started at {sequence}");
        }
        last.insert(key, *sequence);
    }
    Ok(())
}

/// Messages of a key arrive in the order they were published, each exactly once while nothing
/// fails, over several partitions.
pub async fn messages_of_a_key_arrive_in_order<T: Transport>(transport: &T) -> Outcome {
    let topic = transport.topic("order", 4).await;
    let keys: Vec<String> = (0..10).map(|k| format!("order-{k}")).collect();
    publish_sequences(&transport.publisher(), &topic, &keys, 0..20).await?;
    let seen = Seen::default();
    let member = transport.member(&unique("order"), &topic, recorder(seen.clone()));
    wait_for("200 records", transport.patience(), || {
        seen.lock().expect("lock").len() >= 200
    })
    .await?;
    member.stop().await?;
    let seen = seen.lock().expect("lock").clone();
    check!(seen.len() == 200, "{} handlings of 200 records", seen.len());
    in_key_order(&seen)
}

/// A member that stops gracefully has committed what it handled: the group's next member gets
/// only what was published after.
pub async fn a_graceful_stop_commits_what_was_handled<T: Transport>(transport: &T) -> Outcome {
    let topic = transport.topic("commit", 2).await;
    let group = unique("commit");
    let keys = vec!["order-1".to_owned(), "order-2".to_owned()];
    let publisher = transport.publisher();
    publish_sequences(&publisher, &topic, &keys, 0..10).await?;
    let first = Seen::default();
    let member = transport.member(&group, &topic, recorder(first.clone()));
    wait_for("20 records", transport.patience(), || {
        first.lock().expect("lock").len() >= 20
    })
    .await?;
    member.stop().await?;

    let second = Seen::default();
    let member = transport.member(&group, &topic, recorder(second.clone()));
    publish_sequences(&publisher, &topic, &keys[..1], 10..11).await?;
    wait_for("the new record", transport.patience(), || {
        !second.lock().expect("lock").is_empty()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    member.stop().await?;
    let second = second.lock().expect("lock").clone();
    check!(
        second == vec![("order-1".to_owned(), 10)],
        "the next member handled {second:?}"
    );
    Ok(())
}

/// A record whose handler fails for good, with nothing to dead-letter it, is not skipped: the
/// member stops, and the group's next member handles it and what follows (at least once).
pub async fn a_record_that_stops_a_member_is_handled_by_the_next<T: Transport>(
    transport: &T,
) -> Outcome {
    let topic = transport.topic("redeliver", 1).await;
    let group = unique("redeliver");
    let keys = vec!["order-1".to_owned()];
    publish_sequences(&transport.publisher(), &topic, &keys, 0..6).await?;
    let first = Seen::default();
    let failing = {
        let first = first.clone();
        handler_fn(move |received: Received| {
            let outcome = if received.message.payload == b"3" {
                Err(HandlerError::permanent(Reason::HandlerFailed, "a bug"))
            } else {
                record(&first, &received)
            };
            async move { outcome }
        })
    };
    let member = transport.member(&group, &topic, failing);
    let ended = member.ended(transport.patience()).await;
    check!(
        ended.is_err(),
        "the member went on past a record it could not handle"
    );
    let first = first.lock().expect("lock").clone();
    check!(
        first.iter().map(|(_, s)| *s).collect::<Vec<_>>() == vec![0, 1, 2],
        "the first member handled {first:?}"
    );

    let second = Seen::default();
    let member = transport.member(&group, &topic, recorder(second.clone()));
    wait_for("the rest", transport.patience(), || {
        second.lock().expect("lock").len() >= 3
    })
    .await?;
    member.stop().await?;
    let second = second.lock().expect("lock").clone();
    check!(
        second.iter().map(|(_, s)| *s).collect::<Vec<_>>() == vec![3, 4, 5],
        "the next member handled {second:?}"
    );
    Ok(())
}

/// A transient failure that reaches the transport is handled again in place: the key's later
/// records wait for it.
pub async fn a_transient_failure_is_handled_again_in_place<T: Transport>(transport: &T) -> Outcome {
    let topic = transport.topic("transient", 1).await;
    let keys = vec!["order-1".to_owned()];
    publish_sequences(&transport.publisher(), &topic, &keys, 0..4).await?;
    let seen = Seen::default();
    let failures = Arc::new(Mutex::new(0));
    let flaky = {
        let (seen, failures) = (seen.clone(), failures.clone());
        handler_fn(move |received: Received| {
            let mut failures = failures.lock().expect("lock");
            let outcome = if received.message.payload == b"1" && *failures < 2 {
                *failures += 1;
                Err(HandlerError::transient("not yet"))
            } else {
                record(&seen, &received)
            };
            async move { outcome }
        })
    };
    let member = transport.member(&unique("transient"), &topic, flaky);
    wait_for("4 records", transport.patience(), || {
        seen.lock().expect("lock").len() >= 4
    })
    .await?;
    member.stop().await?;
    let seen = seen.lock().expect("lock").clone();
    check!(
        seen.iter().map(|(_, s)| *s).collect::<Vec<_>>() == vec![0, 1, 2, 3],
        "handled {seen:?}"
    );
    check!(*failures.lock().expect("lock") == 2, "not retried twice");
    Ok(())
}

/// What can never be handled goes to the dead-letter topic with its reason, key, bytes and
/// origin, and the key's later records are handled.
pub async fn a_permanent_failure_is_dead_lettered_and_the_key_moves_on<T: Transport>(
    transport: &T,
) -> Outcome {
    let topic = transport.topic("poison", 2).await;
    let dead_letters = transport.topic("poison-dlt", 1).await;
    let group = unique("poison");
    let keys = vec!["order-1".to_owned(), "order-2".to_owned()];
    let publisher = transport.publisher();
    publish_sequences(&publisher, &topic, &keys, 0..3).await?;
    let seen = Seen::default();
    let handler = DeadLetter::new(
        {
            let seen = seen.clone();
            handler_fn(move |received: Received| {
                let poison = received.message.key.as_deref() == Some("order-1")
                    && received.message.payload == b"1";
                let outcome = if poison {
                    Err(HandlerError::permanent(
                        Reason::InvalidContent,
                        "cannot be read",
                    ))
                } else {
                    record(&seen, &received)
                };
                async move { outcome }
            })
        },
        publisher.clone(),
        DeadLetterSettings::new(&group, &dead_letters),
    );
    let member = transport.member(&group, &topic, handler);
    let letters = tokio::time::timeout(transport.patience(), transport.read(&dead_letters, 1))
        .await
        .map_err(|_| "no dead letter".to_owned())?;
    wait_for("5 good records", transport.patience(), || {
        seen.lock().expect("lock").len() >= 5
    })
    .await?;
    member.stop().await?;
    let letter = &letters[0].message;
    check!(
        letter.key.as_deref() == Some("order-1"),
        "letter keyed {:?}",
        letter.key
    );
    check!(letter.payload == b"1", "letter bytes changed");
    let reason = letter.headers.get(header::dead_letter::REASON);
    check!(reason == Some("invalid-content"), "reason {reason:?}");
    let origin = letter.headers.get(header::dead_letter::TOPIC);
    check!(origin == Some(topic.as_str()), "origin {origin:?}");
    let seen = seen.lock().expect("lock").clone();
    let order_1: Vec<u32> = seen
        .iter()
        .filter(|(k, _)| k == "order-1")
        .map(|(_, s)| *s)
        .collect();
    check!(order_1 == vec![0, 2], "order-1 handled {order_1:?}");
    Ok(())
}

/// A command with a reply-to gets its reply on that topic: keyed like the command, in its
/// conversation, caused by it.
pub async fn a_command_gets_a_correlated_reply<T: Transport>(transport: &T) -> Outcome {
    let commands = transport.topic("commands", 2).await;
    let replies = transport.topic("replies", 2).await;
    let publisher = transport.publisher();
    let replier = {
        let publisher = publisher.clone();
        handler_fn(move |received: Received| {
            let publisher = publisher.clone();
            async move {
                let (to, message) = reply(&received, b"done".to_vec())
                    .map_err(|e| HandlerError::permanent(Reason::NoReplyTo, e))?;
                publisher
                    .publish(&to, &message)
                    .await
                    .map_err(HandlerError::transient)?;
                Ok(())
            }
        })
    };
    let member = transport.member(&unique("replier"), &commands, replier);
    let sent = command(
        Message::new(Some("order-9".to_owned()), b"do".to_vec()),
        &replies,
    );
    publisher
        .publish(&commands, &sent)
        .await
        .map_err(|e| e.to_string())?;
    let got = tokio::time::timeout(transport.patience(), transport.read(&replies, 1))
        .await
        .map_err(|_| "no reply".to_owned())?;
    member.stop().await?;
    let answer = &got[0].message;
    check!(
        answer.key.as_deref() == Some("order-9"),
        "reply keyed {:?}",
        answer.key
    );
    check!(answer.payload == b"done", "reply payload");
    check!(
        answer.headers.get(header::CORRELATION_ID) == sent.id(),
        "correlation {:?}",
        answer.headers.get(header::CORRELATION_ID)
    );
    check!(
        answer.headers.get(header::CAUSATION_ID) == sent.id(),
        "causation {:?}",
        answer.headers.get(header::CAUSATION_ID)
    );
    Ok(())
}

/// Defines one `#[tokio::test]` per case of the suite, over the transport `$make` returns
/// (an expression, awaited if `async`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@case $make,
            messages_of_a_key_arrive_in_order,
            a_graceful_stop_commits_what_was_handled,
            a_record_that_stops_a_member_is_handled_by_the_next,
            a_transient_failure_is_handled_again_in_place,
            a_permanent_failure_is_dead_lettered_and_the_key_moves_on,
            a_command_gets_a_correlated_reply
        );
    };
    (@case $make:expr, $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let transport = $make;
                if let Err(failure) = $crate::conformance::$case(&transport).await {
                    panic!("{}: {failure}", stringify!($case));
                }
            }
        )+
    };
}
