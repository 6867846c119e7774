//! A consumer-group member as its own process, for the tests that kill processes
//! (`tests/kafka_group_processes.rs`).
//!
//!     group-member TOPIC GROUP NAME OUT_FILE WORK_MS
//!
//! Handles each record by appending `nanos key sequence name partition offset` to OUT_FILE
//! (records' payloads are decimal sequence numbers; nanos is the wall clock when handled), after WORK_MS of pretend work. Stops gracefully on
//! SIGTERM (drain, commit, leave the group); SIGKILL is the test's business.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::init_logging;
use kafka::{ConsumerRunner, ConsumerSettings};
use messaging::{HandlerError, Reason, Received, handler_fn};

#[tokio::main]
async fn main() -> Result<()> {
    init_logging();
    let args: Vec<String> = std::env::args().collect();
    let [_, topic, group, name, out, work_ms] = args.as_slice() else {
        anyhow::bail!("usage: group-member TOPIC GROUP NAME OUT_FILE WORK_MS");
    };
    let work = Duration::from_millis(work_ms.parse().context("WORK_MS")?);
    let bootstrap = std::env::var("FTGO_KAFKA__BOOTSTRAP_SERVERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let mut settings = ConsumerSettings::new(&bootstrap, group, &[topic]);
    settings.client_id = name.clone();
    let runner = ConsumerRunner::new(&settings)?;
    let file = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .with_context(|| format!("opening {out}"))?,
    ));
    let name = name.clone();
    let handler = handler_fn(move |received: Received| {
        let file = file.clone();
        let name = name.clone();
        async move {
            tokio::time::sleep(work).await;
            // Wall-clock nanoseconds first: the test orders every member's lines by it.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let line = format!(
                "{now} {} {} {} {} {}\n",
                received.message.key.as_deref().unwrap_or("-"),
                String::from_utf8_lossy(&received.message.payload),
                name,
                received.origin.partition,
                received.origin.offset
            );
            let mut file = file
                .lock()
                .map_err(|_| HandlerError::permanent(Reason::HandlerFailed, "lock"))?;
            file.write_all(line.as_bytes())
                .map_err(HandlerError::transient)?;
            Ok(())
        }
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let summary = runner
        .run(handler, async move {
            terminate.recv().await;
        })
        .await?;
    eprintln!("{summary:?}");
    Ok(())
}
