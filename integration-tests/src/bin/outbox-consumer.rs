//! An idempotent consumer as its own process, for the crash tests (`tests/outbox_crash.rs`).
//!
//!     outbox-consumer TOPIC GROUP DATABASE_URL DELIVERIES_FILE
//!
//! Handles each record the way services do (`Idempotent`: one transaction records the message
//! id in the inbox and inserts its effect into `effects`), and appends `message_id` to
//! DELIVERIES_FILE for every delivery, duplicate or not. Stops on SIGTERM. With
//! `FTGO_CRASH_AFTER_COMMITS=N` it kills itself with SIGKILL right after the Nth handled
//! message's transaction committed, before its offset is stored: that message comes again.

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use integration_tests::{Effects, init_logging};
use kafka::{ConsumerRunner, ConsumerSettings};
use messaging::{Handler, HandlerError, Received};
use outbox::Idempotent;

/// Records every delivery, then handles; kills the process after the Nth success if asked.
struct Consumer {
    inner: Idempotent<Effects>,
    deliveries: Mutex<std::fs::File>,
    handled: AtomicUsize,
    crash_after: Option<usize>,
}

impl Handler for Consumer {
    async fn handle(&self, message: &Received) -> Result<(), HandlerError> {
        {
            let mut file = self.deliveries.lock().expect("lock");
            writeln!(file, "{}", message.message.id().unwrap_or("-"))
                .map_err(HandlerError::transient)?;
        }
        self.inner.handle(message).await?;
        let handled = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_after.is_some_and(|n| handled >= n) {
            eprintln!("outbox-consumer: killing myself after {handled} commits");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [topic, group, url, deliveries] = args.as_slice() else {
        bail!("usage: outbox-consumer TOPIC GROUP DATABASE_URL DELIVERIES_FILE");
    };
    let crash_after = match std::env::var("FTGO_CRASH_AFTER_COMMITS") {
        Ok(n) => Some(n.parse().context("FTGO_CRASH_AFTER_COMMITS")?),
        Err(_) => None,
    };
    let bootstrap = std::env::var("FTGO_KAFKA__BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let pool = sqlx::PgPool::connect(url).await?;
    let handler = Consumer {
        inner: Idempotent::new(pool, group.clone(), Effects),
        deliveries: Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(deliveries)?,
        ),
        handled: AtomicUsize::new(0),
        crash_after,
    };
    let runner = ConsumerRunner::new(&ConsumerSettings::new(&bootstrap, group, &[topic]))?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let summary = runner
        .run(Arc::new(handler), async move {
            terminate.recv().await;
        })
        .await?;
    eprintln!("outbox-consumer: {summary:?}");
    Ok(())
}
