//! May this card be authorized for this amount? The rule alone, apart from tables and messages,
//! so it is tested without the platform.

use contracts::accounting::events::card_authorization_failed::AuthorizationFailure;
use contracts::order::replies::authorize_card_failed::AuthorizeCardFailure;
use uuid::Uuid;

pub use contracts::Money;

/// What authorization needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The most one authorization may hold, in the card's currency (the table's
    /// `authorization_limit_minor` and `currency`).
    pub authorization_limit: Money,
}

/// Why a card is not authorized. The reply and the event each have an enum of their own with
/// the same symbols; this one converts to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account for the consumer (no ConsumerCreated seen for it).
    NoAccount,
    /// The amount is in another currency than the card's.
    CardDeclined,
    /// The amount is above the account's limit per authorization.
    AmountOverLimit,
}

impl Refusal {
    pub fn for_reply(self) -> AuthorizeCardFailure {
        match self {
            Refusal::NoAccount => AuthorizeCardFailure::NoAccount,
            Refusal::CardDeclined => AuthorizeCardFailure::CardDeclined,
            Refusal::AmountOverLimit => AuthorizeCardFailure::AmountOverLimit,
        }
    }

    pub fn for_event(self) -> AuthorizationFailure {
        match self {
            Refusal::NoAccount => AuthorizationFailure::NoAccount,
            Refusal::CardDeclined => AuthorizationFailure::CardDeclined,
            Refusal::AmountOverLimit => AuthorizationFailure::AmountOverLimit,
        }
    }
}

/// The answer to AuthorizeCard for an order that has no authorization yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Authorize,
    Refuse {
        refusal: Refusal,
        /// For the reply's `detail`: logs and operators.
        detail: String,
    },
}

/// The card of `account` (`None`: consumer `consumer_id` has none) may hold `amount` when the
/// account exists, the amount is in the card's currency, and it is within the limit per
/// authorization.
pub fn authorize(account: Option<&Account>, consumer_id: Uuid, amount: &Money) -> Decision {
    let Some(account) = account else {
        return Decision::Refuse {
            refusal: Refusal::NoAccount,
            detail: format!("consumer {consumer_id} has no account"),
        };
    };
    let limit = &account.authorization_limit;
    if amount.currency != limit.currency {
        return Decision::Refuse {
            refusal: Refusal::CardDeclined,
            detail: format!(
                "consumer {consumer_id}'s card is in {}, not {}",
                limit.currency, amount.currency
            ),
        };
    }
    if amount.amount_minor > limit.amount_minor {
        return Decision::Refuse {
            refusal: Refusal::AmountOverLimit,
            detail: format!(
                "{amount} is above consumer {consumer_id}'s limit of {limit} per authorization"
            ),
        };
    }
    Decision::Authorize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "USD".into(),
        }
    }

    fn account() -> Account {
        Account {
            authorization_limit: usd(50_000),
        }
    }

    fn refusal(decision: &Decision) -> Option<Refusal> {
        match decision {
            Decision::Authorize => None,
            Decision::Refuse { refusal, .. } => Some(*refusal),
        }
    }

    #[test]
    fn an_amount_up_to_the_limit_is_authorized() {
        let id = Uuid::new_v4();
        assert_eq!(
            authorize(Some(&account()), id, &usd(0)),
            Decision::Authorize
        );
        assert_eq!(
            authorize(Some(&account()), id, &usd(50_000)),
            Decision::Authorize
        );
    }

    #[test]
    fn an_amount_above_the_limit_is_refused() {
        let decision = authorize(Some(&account()), Uuid::new_v4(), &usd(50_001));
        assert_eq!(refusal(&decision), Some(Refusal::AmountOverLimit));
    }

    #[test]
    fn an_amount_in_another_currency_is_declined() {
        let euros = Money {
            amount_minor: 1,
            currency: "EUR".into(),
        };
        let decision = authorize(Some(&account()), Uuid::new_v4(), &euros);
        assert_eq!(refusal(&decision), Some(Refusal::CardDeclined));
    }

    #[test]
    fn no_account_is_refused_first() {
        let decision = authorize(None, Uuid::new_v4(), &usd(1));
        assert_eq!(refusal(&decision), Some(Refusal::NoAccount));
    }

    #[test]
    fn a_refusal_reads_the_same_in_the_reply_and_the_event() {
        for refusal in [
            Refusal::NoAccount,
            Refusal::CardDeclined,
            Refusal::AmountOverLimit,
        ] {
            let reply = serde_json::to_value(refusal.for_reply()).ok();
            let event = serde_json::to_value(refusal.for_event()).ok();
            assert!(reply.is_some());
            assert_eq!(reply, event);
        }
    }
}
