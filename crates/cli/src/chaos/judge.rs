//! The checker's rules: what one order's records and rows must look like after a run, as pure
//! functions of what `check` read.

use super::Intent;

/// One record of an order, as read from its topic (the first copy of each `ce_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The record's simple name (`OrderApproved`).
    pub kind: String,
    /// Its `ce_id`.
    pub id: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
}

/// Everything read about one order.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// `ftgo.order.events`, in offset order.
    pub order_events: Vec<Event>,
    /// `ftgo.ticket.events`, in offset order.
    pub ticket_events: Vec<Event>,
    /// `ftgo.accounting.events`, in offset order.
    pub accounting_events: Vec<Event>,
    /// The order service's `orders.state`.
    pub order_state: Option<String>,
    /// The kitchen's `tickets.state`.
    pub ticket_state: Option<String>,
    /// Accounting's authorization of the order: `Some(reversed)`.
    pub authorization: Option<bool>,
    /// The statuses of the order service's sagas about the order.
    pub sagas: Vec<String>,
    /// Messages about the order that a service consumes and its inbox does not hold
    /// (`kitchen-service: CreateTicket ce_id=...`).
    pub not_in_inbox: Vec<String>,
}

/// How an order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Approved,
    /// Approved, and a cancellation was refused (the kitchen did not answer in time, or the
    /// order was not APPROVED when the CancelOrder came).
    CancellationRefused,
    Rejected,
    Cancelled,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Approved => "APPROVED",
            Outcome::CancellationRefused => "APPROVED, cancellation refused",
            Outcome::Rejected => "REJECTED",
            Outcome::Cancelled => "CANCELLED",
        }
    }
}

/// Where an order's events have brought it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Nothing,
    Pending,
    Approved { refused: bool },
    Rejected,
    Cancelled,
}

/// The order's events as a saga may write them: OrderCreated, then OrderRejected, or
/// OrderApproved then (after any OrderCancellationRejected) OrderCancelled. A refusal may
/// answer a CancelOrder at any point after OrderCreated; it changes nothing.
fn walk(events: &[Event]) -> Result<Step, String> {
    let mut step = Step::Nothing;
    for (i, event) in events.iter().enumerate() {
        step = match (step, event.kind.as_str()) {
            (Step::Nothing, "OrderCreated") => Step::Pending,
            (Step::Pending, "OrderApproved") => Step::Approved { refused: false },
            (Step::Pending, "OrderRejected") => Step::Rejected,
            (Step::Approved { .. }, "OrderCancelled") => Step::Cancelled,
            (Step::Approved { .. }, "OrderCancellationRejected") => {
                Step::Approved { refused: true }
            }
            (other, "OrderCancellationRejected") if other != Step::Nothing => other,
            _ => {
                let before: Vec<&str> = events[..i].iter().map(|e| e.kind.as_str()).collect();
                return Err(format!(
                    "{} (at {}@{}) cannot follow [{}]",
                    event.kind,
                    event.partition,
                    event.offset,
                    before.join(", ")
                ));
            }
        };
    }
    Ok(step)
}

fn count(events: &[Event], kind: &str) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

fn position(events: &[Event], kind: &str) -> Option<usize> {
    events.iter().position(|e| e.kind == kind)
}

/// Each effect once: a ticket created and cancelled at most once each (cancelled only after
/// created), a card authorized at most once, reversed at most once and only after it was
/// authorized, never both authorized and refused.
fn effects_once(observed: &Observed, problems: &mut Vec<String>) {
    let tickets = &observed.ticket_events;
    let cards = &observed.accounting_events;
    for (events, kind) in [
        (tickets, "TicketCreated"),
        (tickets, "TicketCancelled"),
        (cards, "CardAuthorized"),
        (cards, "CardAuthorizationFailed"),
        (cards, "AuthorizationReversed"),
    ] {
        let n = count(events, kind);
        if n > 1 {
            let ids: Vec<&str> = events
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.id.as_str())
                .collect();
            problems.push(format!(
                "{kind} {n} times (a duplicated effect: ce_ids {})",
                ids.join(", ")
            ));
        }
    }
    let before = |events: &[Event], first: &str, then: &str| match (
        position(events, first),
        position(events, then),
    ) {
        (Some(a), Some(b)) => a < b,
        (None, Some(_)) => false,
        _ => true,
    };
    if !before(tickets, "TicketCreated", "TicketCancelled") {
        problems.push("TicketCancelled without a TicketCreated before it".into());
    }
    if !before(cards, "CardAuthorized", "AuthorizationReversed") {
        problems.push("AuthorizationReversed without a CardAuthorized before it".into());
    }
    if count(cards, "CardAuthorized") > 0 && count(cards, "CardAuthorizationFailed") > 0 {
        problems.push("the card was both authorized and refused".into());
    }
}

/// The rows the outcome leaves: an APPROVED order has its ticket (not cancelled) and its
/// authorization (not reversed), one of each; a CANCELLED one has both, cancelled and
/// reversed; a REJECTED one has neither left active.
fn rows_agree(outcome: Outcome, observed: &Observed, problems: &mut Vec<String>) {
    let state = match outcome {
        Outcome::Approved | Outcome::CancellationRefused => "APPROVED",
        Outcome::Rejected => "REJECTED",
        Outcome::Cancelled => "CANCELLED",
    };
    if observed.order_state.as_deref() != Some(state) {
        problems.push(format!(
            "its events say {state}, the order service's row says {}",
            observed
                .order_state
                .as_deref()
                .unwrap_or("nothing (no row)")
        ));
    }
    let ticket = observed.ticket_state.as_deref();
    let authorization = observed.authorization;
    let (ticket_ok, authorization_ok, wanted) = match outcome {
        Outcome::Approved | Outcome::CancellationRefused => (
            matches!(
                ticket,
                Some("AWAITING_ACCEPTANCE" | "ACCEPTED" | "PREPARING" | "READY_FOR_PICKUP")
            ),
            authorization == Some(false),
            "an active ticket and an authorization not reversed",
        ),
        Outcome::Cancelled => (
            ticket == Some("CANCELLED"),
            authorization == Some(true),
            "a cancelled ticket and a reversed authorization",
        ),
        Outcome::Rejected => (
            matches!(ticket, None | Some("CANCELLED")),
            authorization != Some(false),
            "no active ticket and no authorization left standing",
        ),
    };
    if !ticket_ok || !authorization_ok {
        problems.push(format!(
            "{state} needs {wanted}; the kitchen has {}, accounting {}",
            ticket.map_or("no ticket".to_owned(), |s| format!("a ticket {s}")),
            match authorization {
                None => "no authorization",
                Some(true) => "a reversed authorization",
                Some(false) => "an authorization standing",
            }
        ));
    }
    if matches!(outcome, Outcome::Approved | Outcome::CancellationRefused) {
        for kind in ["TicketCreated", "CardAuthorized"] {
            let events = if kind == "TicketCreated" {
                &observed.ticket_events
            } else {
                &observed.accounting_events
            };
            if count(events, kind) == 0 {
                problems.push(format!("APPROVED without a {kind}"));
            }
        }
    }
}

/// Judges one order placed for `intent`: its outcome, or every rule it breaks.
pub fn judge(intent: Intent, observed: &Observed) -> Result<Outcome, Vec<String>> {
    let mut problems = Vec::new();
    let step = walk(&observed.order_events).unwrap_or_else(|why| {
        problems.push(format!("its events are out of order: {why}"));
        Step::Nothing
    });
    let outcome = match step {
        Step::Approved { refused: false } if intent == Intent::Cancel => {
            problems.push("approved, but its CancelOrder was never answered".into());
            None
        }
        Step::Approved { refused: false } => Some(Outcome::Approved),
        Step::Approved { refused: true } => Some(Outcome::CancellationRefused),
        Step::Rejected => Some(Outcome::Rejected),
        Step::Cancelled => Some(Outcome::Cancelled),
        Step::Pending => {
            problems.push("no outcome: OrderCreated and nothing after it".into());
            None
        }
        Step::Nothing => {
            if problems.is_empty() {
                problems.push("no OrderCreated: the order was never taken in".into());
            }
            None
        }
    };
    let must_reject = matches!(
        intent,
        Intent::RejectCard | Intent::RejectLimit | Intent::UnknownConsumer
    );
    if must_reject && outcome.is_some_and(|o| o != Outcome::Rejected) {
        problems.push(format!(
            "placed to be rejected ({intent:?}), it ended {}",
            outcome.map_or("", Outcome::label)
        ));
    }
    effects_once(observed, &mut problems);
    if let Some(outcome) = outcome {
        rows_agree(outcome, observed, &mut problems);
    }
    let open: Vec<&str> = observed
        .sagas
        .iter()
        .map(String::as_str)
        .filter(|s| !matches!(*s, "succeeded" | "compensated"))
        .collect();
    if !open.is_empty() {
        problems.push(format!("a saga is still {}", open.join(", ")));
    }
    if observed.sagas.is_empty() && !observed.order_events.is_empty() {
        problems.push("the order service has no saga for it".into());
    }
    for missing in &observed.not_in_inbox {
        problems.push(format!("not in the inbox of {missing}"));
    }
    match outcome {
        Some(outcome) if problems.is_empty() => Ok(outcome),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(kinds: &[&str]) -> Vec<Event> {
        kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Event {
                kind: (*kind).into(),
                id: format!("id-{kind}-{i}"),
                partition: 0,
                offset: i as i64,
                timestamp_ms: None,
            })
            .collect()
    }

    fn approved() -> Observed {
        Observed {
            order_events: events(&["OrderCreated", "OrderApproved"]),
            ticket_events: events(&["TicketCreated"]),
            accounting_events: events(&["CardAuthorized"]),
            order_state: Some("APPROVED".into()),
            ticket_state: Some("AWAITING_ACCEPTANCE".into()),
            authorization: Some(false),
            sagas: vec!["succeeded".into()],
            not_in_inbox: Vec::new(),
        }
    }

    fn cancelled() -> Observed {
        Observed {
            order_events: events(&["OrderCreated", "OrderApproved", "OrderCancelled"]),
            ticket_events: events(&["TicketCreated", "TicketCancelled"]),
            accounting_events: events(&["CardAuthorized", "AuthorizationReversed"]),
            order_state: Some("CANCELLED".into()),
            ticket_state: Some("CANCELLED".into()),
            authorization: Some(true),
            sagas: vec!["succeeded".into(), "succeeded".into()],
            not_in_inbox: Vec::new(),
        }
    }

    fn rejected_by_card() -> Observed {
        Observed {
            order_events: events(&["OrderCreated", "OrderRejected"]),
            ticket_events: events(&["TicketCreated", "TicketCancelled"]),
            accounting_events: events(&["CardAuthorizationFailed"]),
            order_state: Some("REJECTED".into()),
            ticket_state: Some("CANCELLED".into()),
            authorization: None,
            sagas: vec!["compensated".into()],
            not_in_inbox: Vec::new(),
        }
    }

    fn fails(intent: Intent, observed: &Observed, says: &str) {
        match judge(intent, observed) {
            Ok(outcome) => panic!("passed as {outcome:?}: {observed:?}"),
            Err(problems) => assert!(
                problems.iter().any(|p| p.contains(says)),
                "{problems:?} does not say {says:?}"
            ),
        }
    }

    #[test]
    fn complete_orders_pass() {
        assert_eq!(judge(Intent::Approve, &approved()), Ok(Outcome::Approved));
        assert_eq!(judge(Intent::Cancel, &cancelled()), Ok(Outcome::Cancelled));
        assert_eq!(
            judge(Intent::RejectCard, &rejected_by_card()),
            Ok(Outcome::Rejected)
        );
        // A valid order rejected because a participant answered after the timeout: allowed.
        assert_eq!(
            judge(Intent::Approve, &rejected_by_card()),
            Ok(Outcome::Rejected)
        );
        let mut refused = approved();
        refused.order_events =
            events(&["OrderCreated", "OrderApproved", "OrderCancellationRejected"]);
        assert_eq!(
            judge(Intent::Cancel, &refused),
            Ok(Outcome::CancellationRefused)
        );
    }

    #[test]
    fn a_removed_event_fails() {
        let mut observed = approved();
        observed.order_events.remove(1);
        fails(Intent::Approve, &observed, "no outcome");
        let mut observed = cancelled();
        observed.order_events.remove(1);
        fails(
            Intent::Cancel,
            &observed,
            "OrderCancelled (at 0@2) cannot follow [OrderCreated]",
        );
        let mut observed = approved();
        observed.order_events.remove(0);
        fails(Intent::Approve, &observed, "out of order");
    }

    #[test]
    fn a_duplicated_effect_fails() {
        let mut observed = approved();
        observed.accounting_events.push(Event {
            id: "another".into(),
            ..observed.accounting_events[0].clone()
        });
        fails(Intent::Approve, &observed, "CardAuthorized 2 times");
        let mut observed = approved();
        observed.ticket_events = events(&["TicketCreated", "TicketCreated"]);
        fails(Intent::Approve, &observed, "TicketCreated 2 times");
    }

    #[test]
    fn a_reordered_pair_fails() {
        let mut observed = cancelled();
        observed.order_events.swap(1, 2);
        fails(Intent::Cancel, &observed, "out of order");
        let mut observed = cancelled();
        observed.accounting_events.swap(0, 1);
        fails(
            Intent::Cancel,
            &observed,
            "AuthorizationReversed without a CardAuthorized",
        );
    }

    #[test]
    fn rows_must_agree_with_the_events() {
        let mut observed = approved();
        observed.authorization = Some(true);
        fails(
            Intent::Approve,
            &observed,
            "accounting a reversed authorization",
        );
        let mut observed = cancelled();
        observed.ticket_state = Some("AWAITING_ACCEPTANCE".into());
        fails(Intent::Cancel, &observed, "a ticket AWAITING_ACCEPTANCE");
        let mut observed = rejected_by_card();
        observed.authorization = Some(false);
        fails(Intent::RejectCard, &observed, "an authorization standing");
        let mut observed = approved();
        observed.order_state = Some("APPROVAL_PENDING".into());
        fails(Intent::Approve, &observed, "row says APPROVAL_PENDING");
    }

    #[test]
    fn intents_sagas_and_inboxes_are_checked() {
        fails(Intent::RejectLimit, &approved(), "placed to be rejected");
        fails(
            Intent::Cancel,
            &approved(),
            "CancelOrder was never answered",
        );
        let mut observed = approved();
        observed.sagas = vec!["running".into()];
        fails(Intent::Approve, &observed, "a saga is still running");
        let mut observed = approved();
        observed.not_in_inbox = vec!["kitchen-service: CreateTicket ce_id=x".into()];
        fails(
            Intent::Approve,
            &observed,
            "not in the inbox of kitchen-service",
        );
        fails(Intent::Approve, &Observed::default(), "never taken in");
    }
}
