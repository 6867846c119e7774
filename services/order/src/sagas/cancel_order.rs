//! The Cancel Order saga, for an APPROVED order: BeginCancelTicket → ReverseAuthorization →
//! ConfirmCancelTicket → cancel the order. The kitchen may refuse (the food is being prepared):
//! the order stays APPROVED and `OrderCancellationRejected` says why. Once the kitchen began
//! cancelling, the saga only moves forward; a kitchen that does not answer the first step gets
//! its cancellation undone (it may have begun it after all) before the refusal.

use std::time::Duration;

use contracts::order::replies::Reply;
use messaging::{SagaDefinition, SagaOutcome, Transition};
use serde::{Deserialize, Serialize};

use super::{OrderAction, OrderFacts};

/// Where a Cancel Order saga is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum CancelStep {
    BeginningCancel,
    /// Compensating: the kitchen did not answer; its cancellation is undone, then refused.
    UndoingBeginCancel {
        detail: String,
    },
    ReversingAuthorization,
    ConfirmingCancel,
    Cancelled,
    Refused {
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrderState {
    pub order: OrderFacts,
    /// The client's reason, for `OrderCancelled`.
    pub reason: Option<String>,
    pub step: CancelStep,
}

#[derive(Debug, Clone)]
pub struct CancelOrderSaga {
    pub reply_timeout: Duration,
}

impl CancelOrderSaga {
    fn wait(
        &self,
        state: &CancelOrderState,
        step: CancelStep,
        action: OrderAction,
    ) -> Transition<CancelOrderState, OrderAction> {
        Transition::wait(
            CancelOrderState {
                step,
                ..state.clone()
            },
            vec![action],
            self.reply_timeout,
        )
    }

    fn refuse(
        state: &CancelOrderState,
        detail: String,
    ) -> Transition<CancelOrderState, OrderAction> {
        Transition::finish(
            CancelOrderState {
                step: CancelStep::Refused {
                    detail: detail.clone(),
                },
                ..state.clone()
            },
            vec![OrderAction::RefuseCancellation { detail }],
            SagaOutcome::Compensated,
        )
    }
}

impl SagaDefinition for CancelOrderSaga {
    const TYPE: &'static str = "cancel-order";
    type State = CancelOrderState;
    type Reply = Reply;
    type Action = OrderAction;

    fn start(&self, state: CancelOrderState) -> Transition<CancelOrderState, OrderAction> {
        let action = state.order.begin_cancel_ticket();
        self.wait(&state, CancelStep::BeginningCancel, action)
    }

    fn on_reply(
        &self,
        state: &CancelOrderState,
        reply: &Reply,
    ) -> Option<Transition<CancelOrderState, OrderAction>> {
        use CancelStep as S;
        let order = &state.order;
        Some(match (&state.step, reply) {
            (S::BeginningCancel, Reply::BeginCancelTicketSucceeded(_)) => self.wait(
                state,
                S::ReversingAuthorization,
                order.reverse_authorization(),
            ),
            (S::BeginningCancel, Reply::BeginCancelTicketFailed(failed)) => {
                let reason = format!("the kitchen refused: {:?}", failed.reason);
                let detail = match &failed.detail {
                    Some(detail) => format!("{reason} ({detail})"),
                    None => reason,
                };
                Self::refuse(state, detail)
            }
            (S::UndoingBeginCancel { detail }, Reply::UndoBeginCancelTicketSucceeded(_)) => {
                Self::refuse(state, detail.clone())
            }
            (S::ReversingAuthorization, Reply::ReverseAuthorizationSucceeded(_)) => {
                self.wait(state, S::ConfirmingCancel, order.confirm_cancel_ticket())
            }
            (S::ConfirmingCancel, Reply::ConfirmCancelTicketSucceeded(_)) => Transition::finish(
                CancelOrderState {
                    step: S::Cancelled,
                    ..state.clone()
                },
                vec![OrderAction::Cancel {
                    reason: state.reason.clone(),
                }],
                SagaOutcome::Succeeded,
            ),
            _ => return None,
        })
    }

    fn on_deadline(&self, state: &CancelOrderState) -> Transition<CancelOrderState, OrderAction> {
        use CancelStep as S;
        let order = &state.order;
        match &state.step {
            S::BeginningCancel => self.wait(
                state,
                S::UndoingBeginCancel {
                    detail: format!(
                        "no reply from the kitchen service within {}",
                        humantime::format_duration(self.reply_timeout)
                    ),
                },
                order.undo_begin_cancel_ticket(),
            ),
            S::UndoingBeginCancel { .. } => {
                self.wait(state, state.step.clone(), order.undo_begin_cancel_ticket())
            }
            S::ReversingAuthorization => {
                self.wait(state, state.step.clone(), order.reverse_authorization())
            }
            S::ConfirmingCancel => {
                self.wait(state, state.step.clone(), order.confirm_cancel_ticket())
            }
            S::Cancelled => Transition::finish(state.clone(), Vec::new(), SagaOutcome::Succeeded),
            S::Refused { .. } => {
                Transition::finish(state.clone(), Vec::new(), SagaOutcome::Compensated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use contracts::order::replies::*;
    use messaging::Next;

    use super::super::testing::{facts, sent};
    use super::*;

    fn saga() -> CancelOrderSaga {
        CancelOrderSaga {
            reply_timeout: Duration::from_secs(5),
        }
    }

    fn start() -> Transition<CancelOrderState, OrderAction> {
        saga().start(CancelOrderState {
            order: facts(),
            reason: Some("changed my mind".into()),
            step: CancelStep::BeginningCancel,
        })
    }

    fn id() -> uuid::Uuid {
        facts().order_id
    }

    #[test]
    fn an_approved_order_is_cancelled_step_by_step() {
        let saga = saga();
        let begun = start();
        assert_eq!(sent(&begun.actions), ["BeginCancelTicket"]);
        let reversing = saga
            .on_reply(
                &begun.state,
                &Reply::BeginCancelTicketSucceeded(BeginCancelTicketSucceeded { order_id: id() }),
            )
            .expect("test value");
        assert_eq!(sent(&reversing.actions), ["ReverseAuthorization"]);
        let confirming = saga
            .on_reply(
                &reversing.state,
                &Reply::ReverseAuthorizationSucceeded(ReverseAuthorizationSucceeded {
                    order_id: id(),
                }),
            )
            .expect("test value");
        assert_eq!(sent(&confirming.actions), ["ConfirmCancelTicket"]);
        let end = saga
            .on_reply(
                &confirming.state,
                &Reply::ConfirmCancelTicketSucceeded(ConfirmCancelTicketSucceeded {
                    order_id: id(),
                }),
            )
            .expect("test value");
        assert_eq!(
            end.actions,
            vec![OrderAction::Cancel {
                reason: Some("changed my mind".into())
            }]
        );
        assert_eq!(end.next, Next::Finished(SagaOutcome::Succeeded));
    }

    #[test]
    fn a_kitchen_that_refuses_keeps_the_order() {
        let refused = saga()
            .on_reply(
                &start().state,
                &Reply::BeginCancelTicketFailed(BeginCancelTicketFailed {
                    order_id: id(),
                    reason:
                        begin_cancel_ticket_failed::BeginCancelTicketFailure::TicketNotCancellable,
                    detail: Some("PREPARING".into()),
                }),
            )
            .expect("test value");
        assert_eq!(refused.next, Next::Finished(SagaOutcome::Compensated));
        assert_eq!(
            refused.actions,
            vec![OrderAction::RefuseCancellation {
                detail: "the kitchen refused: TicketNotCancellable (PREPARING)".into()
            }]
        );
    }

    #[test]
    fn a_silent_kitchen_has_its_cancellation_undone_then_refused() {
        let saga = saga();
        let undoing = saga.on_deadline(&start().state);
        assert_eq!(sent(&undoing.actions), ["UndoBeginCancelTicket"]);
        // Its late "begun" changes nothing now.
        assert!(
            saga.on_reply(
                &undoing.state,
                &Reply::BeginCancelTicketSucceeded(BeginCancelTicketSucceeded { order_id: id() })
            )
            .is_none()
        );
        let end = saga
            .on_reply(
                &undoing.state,
                &Reply::UndoBeginCancelTicketSucceeded(UndoBeginCancelTicketSucceeded {
                    order_id: id(),
                }),
            )
            .expect("test value");
        assert_eq!(
            end.actions,
            vec![OrderAction::RefuseCancellation {
                detail: "no reply from the kitchen service within 5s".into()
            }]
        );
    }

    #[test]
    fn after_the_kitchen_began_cancelling_deadlines_ask_again() {
        let saga = saga();
        let reversing = saga
            .on_reply(
                &start().state,
                &Reply::BeginCancelTicketSucceeded(BeginCancelTicketSucceeded { order_id: id() }),
            )
            .expect("test value");
        let again = saga.on_deadline(&reversing.state);
        assert_eq!(sent(&again.actions), ["ReverseAuthorization"]);
        assert_eq!(again.state, reversing.state);
    }
}
