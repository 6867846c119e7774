//! `ftgo chaos`: the workload and the checker of the fault-injection suite
//! (`deploy/local/chaos`, which plays the faults).
//!
//! - `place` places N orders over a span of time, a mix of what the sagas must handle (approved,
//!   rejected by the consumer's limit, by the card's limit, for an unknown consumer, approved
//!   then cancelled), follows them to their outcomes and writes the run (every order, what it
//!   was meant to become, when it was placed) to a file.
//! - `check` reads that run back, every order-keyed topic since it began, the dead-letter
//!   topics and every service's tables, and verifies each order (docs/operations.md, "Failure
//!   modes"): it reached a terminal state, its events form a valid saga sequence in order, its
//!   effects happened once (one ticket, one authorization, none left active when it was
//!   rejected or cancelled), every message of it that a service consumes is in that service's
//!   inbox; and, for the run, no dead letter, no outbox row left, no saga still running.
//!   `--corrupt` hands it a run with one event removed, one effect duplicated and one pair
//!   reordered, to show that it fails and names the orders.
//!
//! # Layout
//! - `place`: the workload.
//! - `check`: reading what the run left, and judging it.
//! - `judge`: the rules, as pure functions of what was read (unit-tested).

mod check;
mod judge;
mod place;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The chaos suite's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ChaosCommand {
    /// Places orders (a mix of outcomes) over a span of time, follows them to their outcomes
    /// and writes the run to a file for `ftgo chaos check`. Needs `ftgo seed --guests N`.
    Place(place::Options),
    /// Verifies every order of a run and the whole system after it (exit 1 on any violation,
    /// each named with its order).
    Check(check::Options),
}

pub async fn chaos(bootstrap: &str, registry: &str, command: &ChaosCommand) -> Result<ExitCode> {
    match command {
        ChaosCommand::Place(options) => place::place(bootstrap, registry, options).await,
        ChaosCommand::Check(options) => check::check(bootstrap, options).await,
    }
}

/// What an order was placed to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Intent {
    /// Within every limit: APPROVED.
    Approve,
    /// Approved, then cancelled by a CancelOrder: CANCELLED.
    Cancel,
    /// Over the card's limit per authorization, under the consumer's: REJECTED after a ticket
    /// was created (which must be cancelled).
    RejectCard,
    /// Over the consumer's limit per order: REJECTED by the consumer service.
    RejectLimit,
    /// A consumer nobody created: REJECTED by the consumer service.
    UnknownConsumer,
}

/// One order of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placed {
    pub order_id: String,
    pub intent: Intent,
    /// When the broker acknowledged its CreateOrder, ms since the epoch.
    pub placed_ms: i64,
}

/// A run, as `place` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// A little before the first order was placed, ms since the epoch: the checker reads every
    /// topic from there.
    pub since_ms: i64,
    pub orders: Vec<Placed>,
}

impl Run {
    pub fn read(path: &PathBuf) -> Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the run {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a run written by `ftgo chaos place`",
                path.display()
            )
        })
    }
}
