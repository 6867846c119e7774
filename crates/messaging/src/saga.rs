//! Sagas, orchestrated: a saga is a sequence of steps, each a command to a participant and the
//! reply it waits for; a failed step runs the compensations of the steps before it, in reverse.
//!
//! A [`SagaDefinition`] is pure: given the saga's state and a reply (or a missed deadline) it
//! says what comes next — the new state, the actions to take (commands to send, changes to
//! make) and whether to wait for another reply or stop. It knows nothing of Kafka or Postgres,
//! so every path unit-tests in microseconds. A saga manager (the outbox crate's, on Postgres)
//! stores the state and applies a transition in the same transaction that records the reply
//! and appends the next command to the outbox: a saga advances exactly once per reply.

use std::fmt::Debug;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A saga type: its steps, as a state machine over replies.
pub trait SagaDefinition: Send + Sync {
    /// Names the saga's instances in storage and logs (`create-order`).
    const TYPE: &'static str;
    /// Everything the saga knows: its data and the step it is at. Stored as JSON between
    /// replies, so a newer version must still read an older one.
    type State: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;
    /// The replies its participants send.
    type Reply: Debug + Send + Sync;
    /// What the owning service does when a step says so: send a command, change its state.
    type Action: Debug + Send;

    /// The first step of a new saga over `state`.
    fn start(&self, state: Self::State) -> Transition<Self::State, Self::Action>;

    /// The saga at `state` receives `reply`. `None`: the saga does not wait for this reply
    /// (a late reply after a deadline moved it on, a duplicate), and nothing changes.
    fn on_reply(
        &self,
        state: &Self::State,
        reply: &Self::Reply,
    ) -> Option<Transition<Self::State, Self::Action>>;

    /// The participant at `state` did not answer within the step's deadline: a failure of
    /// the step before the saga's point of no return (compensate), a retry after it.
    fn on_deadline(&self, state: &Self::State) -> Transition<Self::State, Self::Action>;
}

/// One step of a saga: the state after it, what to do, and what comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<S, A> {
    pub state: S,
    pub actions: Vec<A>,
    pub next: Next,
}

/// After a transition, the saga waits for a reply or is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Waits for the reply to the command just sent, for at most this long.
    AwaitReply { within: Duration },
    /// Done: every step succeeded, or the saga failed and its compensations ran.
    Finished(SagaOutcome),
}

/// How a finished saga ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SagaOutcome {
    Succeeded,
    Compensated,
}

impl SagaOutcome {
    /// The stored status of a saga that ended so.
    pub fn status(self) -> &'static str {
        match self {
            SagaOutcome::Succeeded => "succeeded",
            SagaOutcome::Compensated => "compensated",
        }
    }
}

impl<S, A> Transition<S, A> {
    /// Sends `actions` and waits for a reply for at most `within`.
    pub fn wait(state: S, actions: Vec<A>, within: Duration) -> Self {
        Self {
            state,
            actions,
            next: Next::AwaitReply { within },
        }
    }

    /// Takes `actions` and ends the saga with `outcome`.
    pub fn finish(state: S, actions: Vec<A>, outcome: SagaOutcome) -> Self {
        Self {
            state,
            actions,
            next: Next::Finished(outcome),
        }
    }
}
