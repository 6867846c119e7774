//! `ftgo`: the command-line tool of FTGO's users and operators.
//!
//! # Layout
//! - `schemas`: the subcommands over the message catalog (`register`, `check`, `docs`).
//! - `dlq`: the dead letters of a consumer group (`list`, `show`, `replay`).
//! - `tail`: an Avro-aware console consumer.
//! - `send`: `ftgo send TYPE`, any record of the catalog from JSON and `--set path=value`,
//!   with the project's headers; and the `Sender` the commands below publish with.
//! - `order`: `ftgo order create | cancel` (publish the command; `--wait` for the saga's
//!   outcome: exit 0 done, 2 refused, 1 no answer in time) and `ftgo order show` (an order's
//!   history from every order-keyed topic, and its state).
//! - `seed`: `ftgo seed`, demo restaurants and consumers with fixed ids, created through
//!   commands, then waiting until the services' groups have taken them in.
//! - `bench`: `ftgo bench orders`, CreateOrder for the demo data at full speed or a fixed rate;
//!   throughput and publish-to-outcome latency (p50, p95, p99, max).
//! - `chaos`: `ftgo chaos place | check`, the fault-injection suite's workload (orders of
//!   every outcome) and checker (every order and every service's tables after a run).
//! - `outbox`: `ftgo outbox list | retry | discard`, the outbox rows a service's relay could
//!   never publish (moved aside; later rows of their keys wait), from the service's database.
//! - `topics`: `ftgo topics`, each topic's partitions, records and consumer groups' lag;
//!   `ftgo topics apply`, the topics of `deploy/topics.toml` created and brought in line
//!   (`topics::manifest` reads and checks the manifest).
//! - `groups`: `ftgo groups reset --to-end`, a stopped group moved past what waits.
//! - `avro_json`: JSON to Avro against a schema (errors name the field), `--set` paths, and
//!   one-line summaries of decoded records.
//! - `registry`: the Confluent REST API calls they need.
//! - `compatibility`: explains, field by field, why two schema versions are incompatible.
//! - `catalog_docs`: renders `docs/messages.md`.
//!
//! # Examples (docs/operations.md has one section per command)
//!
//! ```text
//! eval "$(ftgo seed --print-ids)"; ftgo seed          # demo restaurants and consumers
//! ftgo order create --consumer "$CONSUMER_ALICE_RAY" --restaurant "$RESTAURANT_AJANTA" --item samosa:2 --wait
//! ftgo order show ORDER_ID                           # the order's history and state
//! ftgo order cancel ORDER_ID --wait
//! ftgo send OrderRejected --set orderId=... --set reason=INVALID_ORDER --set rejectedAt=now
//! ftgo topics --group my-group                       # records and lag per topic and group
//! ```
//!
//! Exit status: 0 success, 1 a wait that timed out or nothing found (`order show`), 2 an
//! error or, for `order create|cancel --wait`, a refused order or cancellation.

/// `println!` that returns an error instead of panicking when stdout is closed (`ftgo ... | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

mod acls;
mod act;
mod avro_json;
mod bench;
mod catalog_docs;
mod chaos;
mod commands;
mod compatibility;
mod demo;
mod dlq;
mod generated;
mod groups;
mod order;
mod outbox;
mod output;
mod registry;
mod schemas;
mod seed;
mod send;
mod tail;
mod topics;
mod wait;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli.command).await {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The reader of our output went away (`| head`): not an error of ours.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
