//! A delivery's life, pure: given a delivery and a courier's action, what it becomes, or
//! "nothing to do" (the action was done already: a re-sent command has no second effect), or
//! why the action is refused. The handlers load and store deliveries and send what follows.
//!
//! ```text
//! SCHEDULED ──pick up (ticket ready, its courier)──▶ PICKED_UP ──drop off (its courier)──▶ DELIVERED
//!     │
//!  OrderCancelled / TicketCancelled
//!     ▼
//! CANCELLED
//! ```
//!
//! A delivery is scheduled once the order and the kitchen's acceptance are known
//! (`handlers`); a courier is assigned then, if one is on duty. The kitchen can no longer
//! cancel a ticket once it is being prepared, so a delivery past SCHEDULED is never
//! cancelled.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Where a delivery is. Stored as the text of [`DeliveryState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Scheduled,
    /// The courier has the food.
    PickedUp,
    Delivered,
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Scheduled => "SCHEDULED",
            DeliveryState::PickedUp => "PICKED_UP",
            DeliveryState::Delivered => "DELIVERED",
            DeliveryState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name the table holds that this code does not know (a newer version wrote it).
#[derive(Debug, thiserror::Error)]
#[error("unknown delivery state {0:?}")]
pub struct UnknownState(String);

impl FromStr for DeliveryState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "SCHEDULED" => DeliveryState::Scheduled,
            "PICKED_UP" => DeliveryState::PickedUp,
            "DELIVERED" => DeliveryState::Delivered,
            "CANCELLED" => DeliveryState::Cancelled,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}

/// A delivery, as far as the couriers' actions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub state: DeliveryState,
    /// The assigned courier (none while nobody was on duty).
    pub courier: Option<Uuid>,
    /// Whether the kitchen's TicketReadyForPickup has been handled.
    pub ready: bool,
}

/// What an action does to a delivery it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The delivery becomes this: store it and send its event.
    To(DeliveryState),
    /// Done already (the action was sent again): change nothing, send nothing.
    Done,
}

/// Why a delivery refuses a courier's action; each has its dead-letter reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the delivery has no courier yet")]
    NoCourier,
    #[error("the delivery is another courier's")]
    WrongCourier,
    #[error("the kitchen has not marked the food ready for pickup")]
    NotReadyForPickup,
    #[error("the food has not been picked up")]
    NotPickedUp,
    #[error("the delivery is cancelled")]
    Cancelled,
}

impl Refusal {
    pub fn reason(self) -> messaging::Reason {
        use messaging::Reason;
        match self {
            Refusal::NoCourier | Refusal::WrongCourier => Reason::WrongCourier,
            Refusal::NotReadyForPickup => Reason::DeliveryNotReadyForPickup,
            Refusal::NotPickedUp => Reason::DeliveryNotPickedUp,
            Refusal::Cancelled => Reason::DeliveryCancelled,
        }
    }
}

impl Delivery {
    /// Whether `courier` is the one the delivery is assigned to.
    fn carried_by(self, courier: Uuid) -> Result<(), Refusal> {
        match self.courier {
            None => Err(Refusal::NoCourier),
            Some(assigned) if assigned != courier => Err(Refusal::WrongCourier),
            Some(_) => Ok(()),
        }
    }

    /// PickUpDelivery by `courier`.
    pub fn pick_up(self, courier: Uuid) -> Result<Step, Refusal> {
        if self.state == DeliveryState::Cancelled {
            return Err(Refusal::Cancelled);
        }
        self.carried_by(courier)?;
        match self.state {
            DeliveryState::Scheduled if self.ready => Ok(Step::To(DeliveryState::PickedUp)),
            DeliveryState::Scheduled => Err(Refusal::NotReadyForPickup),
            DeliveryState::PickedUp | DeliveryState::Delivered => Ok(Step::Done),
            DeliveryState::Cancelled => Err(Refusal::Cancelled),
        }
    }

    /// DropOffDelivery by `courier`.
    pub fn drop_off(self, courier: Uuid) -> Result<Step, Refusal> {
        if self.state == DeliveryState::Cancelled {
            return Err(Refusal::Cancelled);
        }
        self.carried_by(courier)?;
        match self.state {
            DeliveryState::PickedUp => Ok(Step::To(DeliveryState::Delivered)),
            DeliveryState::Delivered => Ok(Step::Done),
            DeliveryState::Scheduled => Err(Refusal::NotPickedUp),
            DeliveryState::Cancelled => Err(Refusal::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::*;
    use super::*;

    const COURIER: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    fn delivery(state: DeliveryState, ready: bool) -> Delivery {
        Delivery {
            state,
            courier: Some(COURIER),
            ready,
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in [Scheduled, PickedUp, Delivered, Cancelled] {
            assert_eq!(state.as_str().parse::<DeliveryState>().ok(), Some(state));
        }
        assert!("LOST".parse::<DeliveryState>().is_err());
    }

    #[test]
    fn a_ready_delivery_is_picked_up_then_dropped_off_by_its_courier() {
        assert_eq!(
            delivery(Scheduled, true).pick_up(COURIER),
            Ok(Step::To(PickedUp))
        );
        assert_eq!(
            delivery(PickedUp, true).drop_off(COURIER),
            Ok(Step::To(Delivered))
        );
    }

    #[test]
    fn a_resent_action_finds_its_work_done() {
        assert_eq!(delivery(PickedUp, true).pick_up(COURIER), Ok(Step::Done));
        assert_eq!(delivery(Delivered, true).pick_up(COURIER), Ok(Step::Done));
        assert_eq!(delivery(Delivered, true).drop_off(COURIER), Ok(Step::Done));
    }

    #[test]
    fn actions_out_of_turn_or_by_another_courier_are_refused() {
        assert_eq!(
            delivery(Scheduled, false).pick_up(COURIER),
            Err(Refusal::NotReadyForPickup)
        );
        assert_eq!(
            delivery(Scheduled, true).drop_off(COURIER),
            Err(Refusal::NotPickedUp)
        );
        assert_eq!(
            delivery(Scheduled, true).pick_up(OTHER),
            Err(Refusal::WrongCourier)
        );
        assert_eq!(
            delivery(PickedUp, true).drop_off(OTHER),
            Err(Refusal::WrongCourier)
        );
        let unassigned = Delivery {
            courier: None,
            ..delivery(Scheduled, true)
        };
        assert_eq!(unassigned.pick_up(COURIER), Err(Refusal::NoCourier));
        for action in [Delivery::pick_up, Delivery::drop_off] {
            assert_eq!(
                action(delivery(Cancelled, true), COURIER),
                Err(Refusal::Cancelled)
            );
        }
        assert_eq!(
            Refusal::NotReadyForPickup.reason(),
            messaging::Reason::DeliveryNotReadyForPickup
        );
    }
}
