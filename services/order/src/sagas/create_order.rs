//! The Create Order saga: ValidateOrderByConsumer → CreateTicket → AuthorizeCard →
//! ConfirmCreateTicket → approve. A failure before the card is authorized compensates in
//! reverse (CancelCreateTicket once a ticket may exist) and rejects the order; the card's
//! authorization is the point of no return: after it, a late reply means "ask again".

use std::time::Duration;

use contracts::order::events::order_rejected::OrderRejectionReason;
use contracts::order::replies::Reply;
use messaging::{SagaDefinition, SagaOutcome, Transition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrderAction, OrderFacts, Rejection};

/// Where a Create Order saga is: the reply it waits for, or how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum CreateStep {
    ValidatingConsumer,
    CreatingTicket,
    AuthorizingCard,
    /// The card is authorized; the ticket is being confirmed (no way back from here).
    ConfirmingTicket {
        authorization_id: Uuid,
    },
    /// Compensating: the card authorization may have gone through after its deadline, so it
    /// is reversed before the ticket is cancelled.
    ReversingAuthorization {
        rejection: Rejection,
    },
    /// Compensating: cancelling the pending ticket, then rejecting the order.
    CancellingTicket {
        rejection: Rejection,
    },
    Approved {
        authorization_id: Uuid,
    },
    Rejected {
        rejection: Rejection,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrderState {
    pub order: OrderFacts,
    pub step: CreateStep,
}

/// The definition, with how long it waits for each reply.
#[derive(Debug, Clone)]
pub struct CreateOrderSaga {
    pub reply_timeout: Duration,
}

impl CreateOrderSaga {
    fn wait(
        &self,
        order: &OrderFacts,
        step: CreateStep,
        action: OrderAction,
    ) -> Transition<CreateOrderState, OrderAction> {
        Transition::wait(
            CreateOrderState {
                order: order.clone(),
                step,
            },
            vec![action],
            self.reply_timeout,
        )
    }

    fn reject(
        order: &OrderFacts,
        rejection: Rejection,
    ) -> Transition<CreateOrderState, OrderAction> {
        Transition::finish(
            CreateOrderState {
                order: order.clone(),
                step: CreateStep::Rejected {
                    rejection: rejection.clone(),
                },
            },
            vec![OrderAction::Reject(rejection)],
            SagaOutcome::Compensated,
        )
    }

    fn cancel_ticket(
        &self,
        order: &OrderFacts,
        rejection: Rejection,
    ) -> Transition<CreateOrderState, OrderAction> {
        self.wait(
            order,
            CreateStep::CancellingTicket { rejection },
            order.cancel_ticket(),
        )
    }

    fn no_reply(&self, from: &str) -> String {
        format!(
            "no reply from the {from} within {}",
            humantime::format_duration(self.reply_timeout)
        )
    }
}

fn rejection(reason: OrderRejectionReason, detail: String) -> Rejection {
    Rejection {
        reason,
        detail: Some(detail),
    }
}

/// `REASON: detail`, or the reason alone.
fn explain(reason: impl std::fmt::Debug, detail: Option<&String>) -> String {
    let reason = format!("{reason:?}");
    match detail {
        Some(detail) => format!("{reason}: {detail}"),
        None => reason,
    }
}

impl SagaDefinition for CreateOrderSaga {
    const TYPE: &'static str = "create-order";
    type State = CreateOrderState;
    type Reply = Reply;
    type Action = OrderAction;

    fn start(&self, state: CreateOrderState) -> Transition<CreateOrderState, OrderAction> {
        let action = state.order.validate_consumer();
        self.wait(&state.order, CreateStep::ValidatingConsumer, action)
    }

    fn on_reply(
        &self,
        state: &CreateOrderState,
        reply: &Reply,
    ) -> Option<Transition<CreateOrderState, OrderAction>> {
        use CreateStep as S;
        use OrderRejectionReason as R;
        let order = &state.order;
        Some(match (&state.step, reply) {
            (S::ValidatingConsumer, Reply::ValidateOrderByConsumerSucceeded(_)) => {
                self.wait(order, S::CreatingTicket, order.create_ticket())
            }
            (S::ValidatingConsumer, Reply::ValidateOrderByConsumerFailed(failed)) => Self::reject(
                order,
                rejection(
                    R::ConsumerValidationFailed,
                    explain(failed.reason, failed.detail.as_ref()),
                ),
            ),
            (S::CreatingTicket, Reply::CreateTicketSucceeded(_)) => {
                self.wait(order, S::AuthorizingCard, order.authorize_card())
            }
            // The kitchen created nothing: nothing to cancel.
            (S::CreatingTicket, Reply::CreateTicketFailed(failed)) => Self::reject(
                order,
                rejection(
                    R::TicketCreationFailed,
                    explain(failed.reason, failed.detail.as_ref()),
                ),
            ),
            (S::AuthorizingCard, Reply::AuthorizeCardSucceeded(authorized)) => self.wait(
                order,
                S::ConfirmingTicket {
                    authorization_id: authorized.authorization_id,
                },
                order.confirm_ticket(),
            ),
            (S::AuthorizingCard, Reply::AuthorizeCardFailed(failed)) => self.cancel_ticket(
                order,
                rejection(
                    R::CardAuthorizationFailed,
                    explain(failed.reason, failed.detail.as_ref()),
                ),
            ),
            (S::ConfirmingTicket { authorization_id }, Reply::ConfirmCreateTicketSucceeded(_)) => {
                Transition::finish(
                    CreateOrderState {
                        order: order.clone(),
                        step: S::Approved {
                            authorization_id: *authorization_id,
                        },
                    },
                    vec![OrderAction::Approve],
                    SagaOutcome::Succeeded,
                )
            }
            (S::ReversingAuthorization { rejection }, Reply::ReverseAuthorizationSucceeded(_)) => {
                self.cancel_ticket(order, rejection.clone())
            }
            (S::CancellingTicket { rejection }, Reply::CancelCreateTicketSucceeded(_)) => {
                Self::reject(order, rejection.clone())
            }
            _ => return None,
        })
    }

    fn on_deadline(&self, state: &CreateOrderState) -> Transition<CreateOrderState, OrderAction> {
        use CreateStep as S;
        use OrderRejectionReason as R;
        let order = &state.order;
        match &state.step {
            // Nothing was changed anywhere yet.
            S::ValidatingConsumer => Self::reject(
                order,
                rejection(
                    R::ConsumerValidationFailed,
                    self.no_reply("consumer service"),
                ),
            ),
            // The ticket may have been created after all: cancel it (the kitchen handles the
            // cancellation after the creation: same key, same partition).
            S::CreatingTicket => self.cancel_ticket(
                order,
                rejection(R::TicketCreationFailed, self.no_reply("kitchen service")),
            ),
            S::AuthorizingCard => self.wait(
                order,
                S::ReversingAuthorization {
                    rejection: rejection(
                        R::CardAuthorizationFailed,
                        self.no_reply("accounting service"),
                    ),
                },
                order.reverse_authorization(),
            ),
            // Past the point of no return, and compensations must finish: ask again (the
            // participants answer a repeated command the same way).
            S::ConfirmingTicket { .. } => {
                self.wait(order, state.step.clone(), order.confirm_ticket())
            }
            S::ReversingAuthorization { .. } => {
                self.wait(order, state.step.clone(), order.reverse_authorization())
            }
            S::CancellingTicket { .. } => {
                self.wait(order, state.step.clone(), order.cancel_ticket())
            }
            // Over: nothing waits (a finished saga has no deadline).
            S::Approved { .. } | S::Rejected { .. } => Transition::finish(
                state.clone(),
                Vec::new(),
                match state.step {
                    S::Approved { .. } => SagaOutcome::Succeeded,
                    _ => SagaOutcome::Compensated,
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use contracts::order::replies::*;
    use messaging::Next;

    use super::super::testing::{facts, sent};
    use super::*;

    fn saga() -> CreateOrderSaga {
        CreateOrderSaga {
            reply_timeout: Duration::from_secs(30),
        }
    }

    fn id() -> Uuid {
        facts().order_id
    }

    /// Runs the saga through `replies`; every one must be awaited.
    fn run(replies: &[Reply]) -> (Transition<CreateOrderState, OrderAction>, Vec<&'static str>) {
        let saga = saga();
        let mut transition = saga.start(CreateOrderState {
            order: facts(),
            step: CreateStep::ValidatingConsumer,
        });
        let mut commands = sent(&transition.actions);
        for reply in replies {
            transition = saga
                .on_reply(&transition.state, reply)
                .unwrap_or_else(|| panic!("{reply:?} not awaited at {:?}", transition.state.step));
            commands.extend(sent(&transition.actions));
        }
        (transition, commands)
    }

    fn consumer_ok() -> Reply {
        Reply::ValidateOrderByConsumerSucceeded(ValidateOrderByConsumerSucceeded { order_id: id() })
    }
    fn ticket_ok() -> Reply {
        Reply::CreateTicketSucceeded(CreateTicketSucceeded {
            order_id: id(),
            ticket_id: id(),
        })
    }
    fn card_ok() -> Reply {
        Reply::AuthorizeCardSucceeded(AuthorizeCardSucceeded {
            order_id: id(),
            authorization_id: Uuid::from_u128(9),
        })
    }
    fn card_failed() -> Reply {
        Reply::AuthorizeCardFailed(AuthorizeCardFailed {
            order_id: id(),
            reason: authorize_card_failed::AuthorizeCardFailure::AmountOverLimit,
            detail: Some("over 500.00 USD".into()),
        })
    }
    fn confirmed() -> Reply {
        Reply::ConfirmCreateTicketSucceeded(ConfirmCreateTicketSucceeded { order_id: id() })
    }
    fn ticket_cancelled() -> Reply {
        Reply::CancelCreateTicketSucceeded(CancelCreateTicketSucceeded { order_id: id() })
    }

    fn rejected_for(
        transition: &Transition<CreateOrderState, OrderAction>,
    ) -> OrderRejectionReason {
        assert_eq!(transition.next, Next::Finished(SagaOutcome::Compensated));
        match transition.actions.as_slice() {
            [OrderAction::Reject(rejection)] => rejection.reason,
            other => panic!("not a rejection: {other:?}"),
        }
    }

    #[test]
    fn every_step_succeeds_and_the_order_is_approved() {
        let (end, commands) = run(&[consumer_ok(), ticket_ok(), card_ok(), confirmed()]);
        assert_eq!(
            commands,
            [
                "ValidateOrderByConsumer",
                "CreateTicket",
                "AuthorizeCard",
                "ConfirmCreateTicket"
            ]
        );
        assert_eq!(end.actions, vec![OrderAction::Approve]);
        assert_eq!(end.next, Next::Finished(SagaOutcome::Succeeded));
        assert_eq!(
            end.state.step,
            CreateStep::Approved {
                authorization_id: Uuid::from_u128(9)
            }
        );
    }

    #[test]
    fn a_refused_consumer_rejects_the_order_with_nothing_to_compensate() {
        let failed = Reply::ValidateOrderByConsumerFailed(ValidateOrderByConsumerFailed {
            order_id: id(),
            reason: validate_order_by_consumer_failed::ConsumerValidationFailure::UnknownConsumer,
            detail: None,
        });
        let (end, commands) = run(&[failed]);
        assert_eq!(commands, ["ValidateOrderByConsumer"]);
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::ConsumerValidationFailed
        );
    }

    #[test]
    fn a_refused_ticket_rejects_the_order_without_cancelling_a_ticket() {
        let failed = Reply::CreateTicketFailed(CreateTicketFailed {
            order_id: id(),
            reason: create_ticket_failed::CreateTicketFailure::UnknownMenuItem,
            detail: Some("no item tandoori".into()),
        });
        let (end, commands) = run(&[consumer_ok(), failed]);
        assert_eq!(commands, ["ValidateOrderByConsumer", "CreateTicket"]);
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::TicketCreationFailed
        );
        let OrderAction::Reject(rejection) = &end.actions[0] else {
            unreachable!()
        };
        assert_eq!(
            rejection.detail.as_deref(),
            Some("UnknownMenuItem: no item tandoori")
        );
    }

    #[test]
    fn a_refused_card_cancels_the_ticket_then_rejects_the_order() {
        let (cancelling, commands) = run(&[consumer_ok(), ticket_ok(), card_failed()]);
        assert_eq!(
            commands,
            [
                "ValidateOrderByConsumer",
                "CreateTicket",
                "AuthorizeCard",
                "CancelCreateTicket"
            ]
        );
        assert!(matches!(cancelling.next, Next::AwaitReply { .. }));
        let (end, _) = run(&[
            consumer_ok(),
            ticket_ok(),
            card_failed(),
            ticket_cancelled(),
        ]);
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::CardAuthorizationFailed
        );
    }

    #[test]
    fn replies_the_saga_does_not_wait_for_change_nothing() {
        let saga = saga();
        let start = saga.start(CreateOrderState {
            order: facts(),
            step: CreateStep::ValidatingConsumer,
        });
        for reply in [ticket_ok(), card_ok(), confirmed(), ticket_cancelled()] {
            assert!(saga.on_reply(&start.state, &reply).is_none(), "{reply:?}");
        }
        // A late CreateTicketSucceeded after the deadline moved on to cancelling.
        let (creating, _) = run(&[consumer_ok()]);
        let cancelling = saga.on_deadline(&creating.state);
        assert!(saga.on_reply(&cancelling.state, &ticket_ok()).is_none());
    }

    #[test]
    fn a_silent_consumer_service_rejects_the_order() {
        let saga = saga();
        let start = saga.start(CreateOrderState {
            order: facts(),
            step: CreateStep::ValidatingConsumer,
        });
        let end = saga.on_deadline(&start.state);
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::ConsumerValidationFailed
        );
        let OrderAction::Reject(rejection) = &end.actions[0] else {
            unreachable!()
        };
        assert_eq!(
            rejection.detail.as_deref(),
            Some("no reply from the consumer service within 30s")
        );
    }

    #[test]
    fn a_silent_kitchen_gets_its_ticket_cancelled_in_case_it_was_created() {
        let saga = saga();
        let (creating, _) = run(&[consumer_ok()]);
        let cancelling = saga.on_deadline(&creating.state);
        assert_eq!(sent(&cancelling.actions), ["CancelCreateTicket"]);
        let end = saga
            .on_reply(&cancelling.state, &ticket_cancelled())
            .expect("test value");
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::TicketCreationFailed
        );
    }

    #[test]
    fn a_silent_accounting_has_its_authorization_reversed_and_the_ticket_cancelled() {
        let saga = saga();
        let (authorizing, _) = run(&[consumer_ok(), ticket_ok()]);
        let reversing = saga.on_deadline(&authorizing.state);
        assert_eq!(sent(&reversing.actions), ["ReverseAuthorization"]);
        // The authorization that arrives late changes nothing: it is being reversed.
        assert!(saga.on_reply(&reversing.state, &card_ok()).is_none());
        let reversed =
            Reply::ReverseAuthorizationSucceeded(ReverseAuthorizationSucceeded { order_id: id() });
        let cancelling = saga
            .on_reply(&reversing.state, &reversed)
            .expect("test value");
        assert_eq!(sent(&cancelling.actions), ["CancelCreateTicket"]);
        let end = saga
            .on_reply(&cancelling.state, &ticket_cancelled())
            .expect("test value");
        assert_eq!(
            rejected_for(&end),
            OrderRejectionReason::CardAuthorizationFailed
        );
    }

    #[test]
    fn after_the_card_is_authorized_a_deadline_asks_again() {
        let saga = saga();
        let (confirming, _) = run(&[consumer_ok(), ticket_ok(), card_ok()]);
        let again = saga.on_deadline(&confirming.state);
        assert_eq!(sent(&again.actions), ["ConfirmCreateTicket"]);
        assert_eq!(again.state, confirming.state);
        assert!(matches!(again.next, Next::AwaitReply { .. }));
        let end = saga
            .on_reply(&again.state, &confirmed())
            .expect("test value");
        assert_eq!(end.actions, vec![OrderAction::Approve]);
    }

    #[test]
    fn the_state_survives_storage() {
        let (confirming, _) = run(&[consumer_ok(), ticket_ok(), card_ok()]);
        let stored = serde_json::to_value(&confirming.state).expect("test value");
        assert_eq!(stored["step"]["step"], "confirming-ticket");
        let read: CreateOrderState = serde_json::from_value(stored).expect("test value");
        assert_eq!(read, confirming.state);
    }
}
