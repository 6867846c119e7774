//! The ticket's state machine, pure: given a ticket and a command, the ticket it becomes, or
//! "nothing to do" (the command was done already: a re-sent saga command is answered again
//! with no second effect), or why the command is refused. The handlers load and store tickets
//! and send what follows; every rule about states lives here.
//!
//! ```text
//! CREATE_PENDING ──confirm──▶ AWAITING_ACCEPTANCE ──accept──▶ ACCEPTED ──start──▶ PREPARING ──ready──▶ READY_FOR_PICKUP ──picked up──▶ PICKED_UP
//!       │                            │                           │
//!  cancel create                begin cancel                begin cancel
//!       │                            └───────▶ CANCEL_PENDING ◀──┘
//!       ▼                                       │          │
//!   CANCELLED ◀──────────confirm cancel─────────┘          └──undo──▶ the state before
//! ```
//!
//! "picked up" is no command of the kitchen's: the delivery service's DeliveryPickedUp (the
//! courier has the food), which the ticket follows.

use std::fmt;
use std::str::FromStr;

/// Where a ticket is in its life. Stored as the text of [`TicketState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    /// Created by the Create Order saga, which has not finished yet.
    CreatePending,
    /// The order was approved; the restaurant has yet to accept the ticket.
    AwaitingAcceptance,
    Accepted,
    Preparing,
    ReadyForPickup,
    /// The courier has the food (DeliveryPickedUp): the kitchen is done with the ticket.
    PickedUp,
    /// The Cancel Order saga is running; the ticket remembers the state it may return to.
    CancelPending,
    Cancelled,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::CreatePending => "CREATE_PENDING",
            TicketState::AwaitingAcceptance => "AWAITING_ACCEPTANCE",
            TicketState::Accepted => "ACCEPTED",
            TicketState::Preparing => "PREPARING",
            TicketState::ReadyForPickup => "READY_FOR_PICKUP",
            TicketState::PickedUp => "PICKED_UP",
            TicketState::CancelPending => "CANCEL_PENDING",
            TicketState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name the table holds that this code does not know (a newer version wrote it).
#[derive(Debug, thiserror::Error)]
#[error("unknown ticket state {0:?}")]
pub struct UnknownState(String);

impl FromStr for TicketState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "CREATE_PENDING" => TicketState::CreatePending,
            "AWAITING_ACCEPTANCE" => TicketState::AwaitingAcceptance,
            "ACCEPTED" => TicketState::Accepted,
            "PREPARING" => TicketState::Preparing,
            "READY_FOR_PICKUP" => TicketState::ReadyForPickup,
            "PICKED_UP" => TicketState::PickedUp,
            "CANCEL_PENDING" => TicketState::CancelPending,
            "CANCELLED" => TicketState::Cancelled,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}

/// A ticket's state, as far as its transitions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub state: TicketState,
    /// The state a cancellation began from (only while `CANCEL_PENDING`): where
    /// UndoBeginCancelTicket returns the ticket.
    pub before_cancel: Option<TicketState>,
}

/// What a command does to a ticket it may apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The ticket becomes this: store it and send what follows.
    To(Ticket),
    /// The command's effect is there already (the command was re-sent): answer as before,
    /// change nothing, send no event.
    Done,
}

/// Why a ticket refuses a command. Each has a stable reason code: the dead-letter reason of a
/// refused kitchen action or saga command that has no failure reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the ticket is not awaiting acceptance")]
    NotAwaitingAcceptance,
    #[error("the ticket is not accepted")]
    NotAccepted,
    #[error("the ticket is not being prepared")]
    NotPreparing,
    #[error("the ticket is not ready for pickup")]
    NotReadyForPickup,
    #[error("the ticket is no longer pending creation")]
    NotCreatePending,
    #[error("the ticket's cancellation has not begun")]
    NotCancelPending,
    #[error("the ticket can no longer be cancelled")]
    NotCancellable,
    #[error("the ticket is cancelled")]
    Cancelled,
}

impl Refusal {
    pub fn reason(self) -> messaging::Reason {
        use messaging::Reason;
        match self {
            Refusal::NotAwaitingAcceptance => Reason::TicketNotAwaitingAcceptance,
            Refusal::NotAccepted => Reason::TicketNotAccepted,
            Refusal::NotPreparing => Reason::TicketNotPreparing,
            Refusal::NotReadyForPickup => Reason::TicketNotReadyForPickup,
            Refusal::NotCreatePending => Reason::TicketNotCreatePending,
            Refusal::NotCancelPending => Reason::TicketNotCancelPending,
            Refusal::NotCancellable => Reason::TicketNotCancellable,
            Refusal::Cancelled => Reason::TicketCancelled,
        }
    }
}

impl Ticket {
    /// A ticket just created by CreateTicket.
    pub fn new() -> Self {
        Self::in_state(TicketState::CreatePending)
    }

    fn in_state(state: TicketState) -> Self {
        Self {
            state,
            before_cancel: None,
        }
    }

    /// ConfirmCreateTicket: the order was approved. Confirming again (any later state but
    /// cancelled) is a re-sent command.
    pub fn confirm_create(self) -> Result<Step, Refusal> {
        match self.state {
            TicketState::CreatePending => {
                Ok(Step::To(Self::in_state(TicketState::AwaitingAcceptance)))
            }
            TicketState::Cancelled => Err(Refusal::Cancelled),
            _ => Ok(Step::Done),
        }
    }

    /// CancelCreateTicket: the order was rejected. The saga sends it only while the ticket is
    /// pending; once confirmed, replying "cancelled" would be a lie (the kitchen would still
    /// cook it), so it is refused.
    pub fn cancel_create(self) -> Result<Step, Refusal> {
        match self.state {
            TicketState::CreatePending => Ok(Step::To(Self::in_state(TicketState::Cancelled))),
            TicketState::Cancelled => Ok(Step::Done),
            _ => Err(Refusal::NotCreatePending),
        }
    }

    /// BeginCancelTicket: only before the kitchen starts cooking.
    pub fn begin_cancel(self) -> Result<Step, Refusal> {
        match self.state {
            TicketState::AwaitingAcceptance | TicketState::Accepted => Ok(Step::To(Self {
                state: TicketState::CancelPending,
                before_cancel: Some(self.state),
            })),
            TicketState::CancelPending => Ok(Step::Done),
            // Pending creation: the Create Order saga still runs; the order is not approved, so
            // there is nothing the Cancel Order saga may cancel yet.
            TicketState::CreatePending
            | TicketState::Preparing
            | TicketState::ReadyForPickup
            | TicketState::PickedUp
            | TicketState::Cancelled => Err(Refusal::NotCancellable),
        }
    }

    /// ConfirmCancelTicket: the cancellation went through.
    pub fn confirm_cancel(self) -> Result<Step, Refusal> {
        match self.state {
            TicketState::CancelPending => Ok(Step::To(Self::in_state(TicketState::Cancelled))),
            TicketState::Cancelled => Ok(Step::Done),
            _ => Err(Refusal::NotCancelPending),
        }
    }

    /// UndoBeginCancelTicket: the cancellation failed later; back to the state before. A
    /// compensation: with nothing to undo (undone already) it succeeds; only a ticket whose
    /// cancellation was confirmed cannot go back.
    pub fn undo_begin_cancel(self) -> Result<Step, Refusal> {
        match (self.state, self.before_cancel) {
            (TicketState::CancelPending, Some(before)) => Ok(Step::To(Self::in_state(before))),
            // Written by this code never; refuse rather than guess a state.
            (TicketState::CancelPending, None) => Err(Refusal::NotCancellable),
            (TicketState::Cancelled, _) => Err(Refusal::Cancelled),
            _ => Ok(Step::Done),
        }
    }

    /// AcceptTicket (kitchen action).
    pub fn accept(self) -> Result<Ticket, Refusal> {
        match self.state {
            TicketState::AwaitingAcceptance => Ok(Self::in_state(TicketState::Accepted)),
            _ => Err(Refusal::NotAwaitingAcceptance),
        }
    }

    /// StartTicketPreparation (kitchen action).
    pub fn start_preparation(self) -> Result<Ticket, Refusal> {
        match self.state {
            TicketState::Accepted => Ok(Self::in_state(TicketState::Preparing)),
            _ => Err(Refusal::NotAccepted),
        }
    }

    /// MarkTicketReadyForPickup (kitchen action).
    pub fn mark_ready_for_pickup(self) -> Result<Ticket, Refusal> {
        match self.state {
            TicketState::Preparing => Ok(Self::in_state(TicketState::ReadyForPickup)),
            _ => Err(Refusal::NotPreparing),
        }
    }

    /// DeliveryPickedUp: the courier took the food. The delivery service accepts a pickup only
    /// after the ticket's TicketReadyForPickup, so the ticket is ready; the same pickup again
    /// (the event re-sent) finds it picked up.
    pub fn picked_up(self) -> Result<Step, Refusal> {
        match self.state {
            TicketState::ReadyForPickup => Ok(Step::To(Self::in_state(TicketState::PickedUp))),
            TicketState::PickedUp => Ok(Step::Done),
            TicketState::Cancelled => Err(Refusal::Cancelled),
            _ => Err(Refusal::NotReadyForPickup),
        }
    }
}

impl Default for Ticket {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::TicketState::*;
    use super::*;

    fn ticket(state: TicketState) -> Ticket {
        Ticket::in_state(state)
    }

    fn to(state: TicketState) -> Result<Step, Refusal> {
        Ok(Step::To(ticket(state)))
    }

    const ALL: [TicketState; 8] = [
        CreatePending,
        AwaitingAcceptance,
        Accepted,
        Preparing,
        ReadyForPickup,
        PickedUp,
        CancelPending,
        Cancelled,
    ];

    #[test]
    fn states_round_trip_through_their_names() {
        for state in ALL {
            assert_eq!(state.as_str().parse::<TicketState>().ok(), Some(state));
        }
        assert!("COOKING".parse::<TicketState>().is_err());
    }

    #[test]
    fn the_happy_path_runs_from_pending_to_picked_up() -> Result<(), Refusal> {
        let Ok(Step::To(confirmed)) = Ticket::new().confirm_create() else {
            panic!("not confirmed");
        };
        assert_eq!(confirmed.state, AwaitingAcceptance);
        let ready = confirmed
            .accept()?
            .start_preparation()?
            .mark_ready_for_pickup()?;
        assert_eq!(ready.state, ReadyForPickup);
        assert_eq!(ready.picked_up(), to(PickedUp));
        Ok(())
    }

    #[test]
    fn kitchen_actions_only_apply_in_their_one_state() {
        for state in ALL {
            let t = ticket(state);
            assert_eq!(t.accept().is_ok(), state == AwaitingAcceptance, "{state}");
            assert_eq!(t.start_preparation().is_ok(), state == Accepted, "{state}");
            assert_eq!(
                t.mark_ready_for_pickup().is_ok(),
                state == Preparing,
                "{state}"
            );
        }
        assert_eq!(
            ticket(Accepted).accept().map_err(Refusal::reason),
            Err(messaging::Reason::TicketNotAwaitingAcceptance)
        );
    }

    #[test]
    fn only_a_ready_ticket_is_picked_up_and_a_second_pickup_changes_nothing() {
        for state in ALL {
            let expected = match state {
                ReadyForPickup => to(PickedUp),
                PickedUp => Ok(Step::Done),
                Cancelled => Err(Refusal::Cancelled),
                _ => Err(Refusal::NotReadyForPickup),
            };
            assert_eq!(ticket(state).picked_up(), expected, "{state}");
        }
        assert_eq!(
            ticket(Preparing).picked_up().map_err(Refusal::reason),
            Err(messaging::Reason::TicketNotReadyForPickup)
        );
    }

    #[test]
    fn a_resent_saga_command_finds_its_work_done() {
        for state in [AwaitingAcceptance, Accepted, Preparing, ReadyForPickup] {
            assert_eq!(ticket(state).confirm_create(), Ok(Step::Done), "{state}");
        }
        assert_eq!(ticket(Cancelled).cancel_create(), Ok(Step::Done));
        assert_eq!(ticket(Cancelled).confirm_cancel(), Ok(Step::Done));
        assert_eq!(
            ticket(AwaitingAcceptance).undo_begin_cancel(),
            Ok(Step::Done)
        );
        let pending = Ticket {
            state: CancelPending,
            before_cancel: Some(Accepted),
        };
        assert_eq!(pending.begin_cancel(), Ok(Step::Done));
    }

    #[test]
    fn create_is_cancelled_only_while_pending() {
        assert_eq!(ticket(CreatePending).cancel_create(), to(Cancelled));
        assert_eq!(
            ticket(AwaitingAcceptance).cancel_create(),
            Err(Refusal::NotCreatePending)
        );
        assert_eq!(ticket(Cancelled).confirm_create(), Err(Refusal::Cancelled));
    }

    #[test]
    fn cancellation_begins_before_cooking_and_is_undone_to_where_it_began() {
        for state in [AwaitingAcceptance, Accepted] {
            let Ok(Step::To(pending)) = ticket(state).begin_cancel() else {
                panic!("{state} is cancellable");
            };
            assert_eq!(pending.state, CancelPending);
            assert_eq!(pending.undo_begin_cancel(), to(state));
            assert_eq!(pending.confirm_cancel(), to(Cancelled));
        }
        for state in [
            CreatePending,
            Preparing,
            ReadyForPickup,
            PickedUp,
            Cancelled,
        ] {
            assert_eq!(
                ticket(state).begin_cancel(),
                Err(Refusal::NotCancellable),
                "{state}"
            );
        }
        assert_eq!(
            ticket(Accepted).confirm_cancel(),
            Err(Refusal::NotCancelPending)
        );
        assert_eq!(
            ticket(Cancelled).undo_begin_cancel(),
            Err(Refusal::Cancelled)
        );
    }
}
