//! Group commit: messages handled at the same time (on different partitions) share one
//! transaction, so a busy service pays one `BEGIN` and one `COMMIT` (and one flush of the
//! write-ahead log) per batch instead of per message.
//!
//! How a batch forms: a message joins the batch that is open, or opens one. Its members take
//! the transaction in turn (one connection does one statement at a time), and the last member
//! to finish commits it. A member that arrives while a batch works joins it, up to
//! `max_members`; then a new batch opens beside it, on another connection. An idle service
//! therefore has batches of one, and a saturated one batches as deep as its partitions.
//!
//! What a member learns is what it would have learned alone: its transaction's outcome is the
//! batch's. If any member fails, or the commit does, nothing of the batch is kept and every
//! member runs again alone (its own transaction, its own error): a message that fails cannot
//! take another's effects with it. The inbox makes that second run of a batch whose commit
//! did land (a lost connection after `COMMIT`) a duplicate with no effect.

use std::sync::{Arc, Mutex};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{OwnedMutexGuard, watch};

/// The batches of one handler (one instance's consumer).
#[derive(Debug)]
pub(crate) struct GroupCommit {
    pool: PgPool,
    max_members: usize,
    /// The batch new members join, while it has room.
    open: Mutex<Option<Arc<Batch>>>,
}

#[derive(Debug)]
struct Batch {
    /// The shared transaction, taken in turn; begun by the first member to run.
    tx: Arc<tokio::sync::Mutex<Option<Transaction<'static, Postgres>>>>,
    /// Counters, changed under [`GroupCommit::open`]'s lock.
    state: Mutex<Members>,
    /// `Some(true)` once committed, `Some(false)` once rolled back.
    outcome: watch::Sender<Option<bool>>,
}

#[derive(Debug)]
struct Members {
    joined: usize,
    /// Joined and not finished their turn.
    pending: usize,
    /// A member failed (or left): the batch will roll back.
    failed: bool,
}

impl GroupCommit {
    pub(crate) fn new(pool: PgPool, max_members: usize) -> Self {
        Self {
            pool,
            max_members: max_members.max(1),
            open: Mutex::new(None),
        }
    }

    /// Joins a batch and waits for this member's turn on its transaction (begun by the first
    /// member to take it).
    pub(crate) async fn seat(&self) -> Seat<'_> {
        let batch = self.join();
        let member = Member {
            group: self,
            batch: batch.clone(),
            finished: false,
        };
        let outcome = batch.outcome.subscribe();
        let mut slot = batch.tx.clone().lock_owned().await;
        if slot.is_none() && !batch.failed() {
            match self.pool.begin().await {
                Ok(tx) => *slot = Some(tx),
                Err(error) => tracing::debug!(%error, "a batch could not begin"),
            }
        }
        Seat {
            member,
            slot: Some(slot),
            outcome,
        }
    }

    fn join(&self) -> Arc<Batch> {
        let mut open = self.open.lock().expect("group-commit lock");
        if let Some(batch) = open.as_ref() {
            let mut members = batch.state.lock().expect("batch lock");
            if members.joined < self.max_members && !members.failed {
                members.joined += 1;
                members.pending += 1;
                return batch.clone();
            }
        }
        let (outcome, _) = watch::channel(None);
        let batch = Arc::new(Batch {
            tx: Arc::new(tokio::sync::Mutex::new(None)),
            state: Mutex::new(Members {
                joined: 1,
                pending: 1,
                failed: false,
            }),
            outcome,
        });
        *open = Some(batch.clone());
        batch
    }
}

impl Batch {
    fn failed(&self) -> bool {
        self.state.lock().expect("batch lock").failed
    }
}

/// A member's turn on its batch's transaction.
pub(crate) struct Seat<'g> {
    member: Member<'g>,
    slot: Option<OwnedMutexGuard<Option<Transaction<'static, Postgres>>>>,
    outcome: watch::Receiver<Option<bool>>,
}

impl Seat<'_> {
    /// The batch's transaction; `None` if the batch failed already (or could not begin): the
    /// member should not run in it.
    pub(crate) fn connection(&mut self) -> Option<&mut PgConnection> {
        if self.member.batch.failed() {
            return None;
        }
        let tx = self.slot.as_mut()?.as_mut()?;
        Some(&mut **tx)
    }

    /// Ends the turn (`succeeded`: this member's work is done and may be committed) and waits
    /// for the batch to end. `true`: the batch committed, this member's work with it.
    pub(crate) async fn finish(mut self, succeeded: bool) -> bool {
        self.slot = None;
        self.member.finish(succeeded);
        matches!(
            self.outcome.wait_for(Option::is_some).await.map(|o| *o),
            Ok(Some(true))
        )
    }
}

/// A member's place in its batch. Dropped before its turn is over (the consumer gave up on
/// the message), it fails the batch rather than leave the others waiting.
struct Member<'g> {
    group: &'g GroupCommit,
    batch: Arc<Batch>,
    finished: bool,
}

impl Member<'_> {
    /// Ends this member's turn; the last one ends the batch, in a task of its own so that the
    /// commit completes even if this member's caller goes away.
    fn finish(&mut self, succeeded: bool) {
        self.finished = true;
        let last = {
            let mut open = self.group.open.lock().expect("group-commit lock");
            let mut members = self.batch.state.lock().expect("batch lock");
            members.pending -= 1;
            members.failed |= !succeeded;
            let last = members.pending == 0;
            if last && open.as_ref().is_some_and(|o| Arc::ptr_eq(o, &self.batch)) {
                // Nobody may join a batch that is ending.
                *open = None;
            }
            last.then_some(!members.failed)
        };
        if let Some(commit) = last {
            tokio::spawn(end(self.batch.clone(), commit));
        }
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(false);
        }
    }
}

async fn end(batch: Arc<Batch>, commit: bool) {
    let tx = batch.tx.lock().await.take();
    let committed = match tx {
        Some(tx) if commit => match tx.commit().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "a batch's commit failed; its messages run alone");
                false
            }
        },
        Some(tx) => {
            let _ = tx.rollback().await;
            false
        }
        None => false,
    };
    batch.outcome.send_replace(Some(committed));
}
