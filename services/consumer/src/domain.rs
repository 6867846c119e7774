//! May this consumer place this order? The rule alone, apart from tables and messages, so it is
//! tested without the platform.

use contracts::order::replies::validate_order_by_consumer_failed::ConsumerValidationFailure;
use uuid::Uuid;

pub use contracts::Money;

/// What validation needs to know of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The most one order may total (the table's `order_limit_*`).
    pub order_limit: Money,
}

/// The answer to ValidateOrderByConsumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Validated,
    Refused {
        reason: ConsumerValidationFailure,
        /// For the reply's `detail`: logs and operators.
        detail: String,
    },
}

/// `consumer` (`None`: no consumer `consumer_id`) may place an order of `total` when it is
/// known and `total` is within its per-order limit, in the limit's currency. An order in
/// another currency cannot be compared with the limit (the service converts nothing), so it
/// exceeds it.
pub fn validate(consumer: Option<&Consumer>, consumer_id: Uuid, total: &Money) -> Verdict {
    let Some(consumer) = consumer else {
        return Verdict::Refused {
            reason: ConsumerValidationFailure::UnknownConsumer,
            detail: format!("no consumer {consumer_id}"),
        };
    };
    let limit = &consumer.order_limit;
    if total.currency != limit.currency {
        return Verdict::Refused {
            reason: ConsumerValidationFailure::OrderLimitExceeded,
            detail: format!(
                "the order is in {} but consumer {consumer_id}'s limit is in {}: currencies differ",
                total.currency, limit.currency
            ),
        };
    }
    if total.amount_minor > limit.amount_minor {
        return Verdict::Refused {
            reason: ConsumerValidationFailure::OrderLimitExceeded,
            detail: format!(
                "the order totals {total}, above consumer {consumer_id}'s limit of {limit} per order"
            ),
        };
    }
    Verdict::Validated
}

impl Verdict {
    /// Its `order_validations.outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Validated => "VALIDATED",
            Verdict::Refused {
                reason: ConsumerValidationFailure::UnknownConsumer,
                ..
            } => "UNKNOWN_CONSUMER",
            Verdict::Refused {
                reason: ConsumerValidationFailure::OrderLimitExceeded,
                ..
            } => "ORDER_LIMIT_EXCEEDED",
        }
    }

    /// The verdict a row of `order_validations` recorded; `None` for an outcome this version
    /// does not know.
    pub fn recorded(outcome: &str, detail: Option<String>) -> Option<Self> {
        let reason = match outcome {
            "VALIDATED" => return Some(Verdict::Validated),
            "UNKNOWN_CONSUMER" => ConsumerValidationFailure::UnknownConsumer,
            "ORDER_LIMIT_EXCEEDED" => ConsumerValidationFailure::OrderLimitExceeded,
            _ => return None,
        };
        Some(Verdict::Refused {
            reason,
            detail: detail.unwrap_or_default(),
        })
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            Verdict::Validated => None,
            Verdict::Refused { detail, .. } => Some(detail),
        }
    }
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

    fn consumer() -> Consumer {
        Consumer {
            order_limit: usd(100_000),
        }
    }

    fn reason(verdict: &Verdict) -> Option<ConsumerValidationFailure> {
        match verdict {
            Verdict::Validated => None,
            Verdict::Refused { reason, .. } => Some(*reason),
        }
    }

    #[test]
    fn an_order_up_to_the_limit_is_validated() {
        let id = Uuid::new_v4();
        assert_eq!(validate(Some(&consumer()), id, &usd(0)), Verdict::Validated);
        assert_eq!(
            validate(Some(&consumer()), id, &usd(100_000)),
            Verdict::Validated
        );
    }

    #[test]
    fn an_order_above_the_limit_exceeds_it() {
        let verdict = validate(Some(&consumer()), Uuid::new_v4(), &usd(100_001));
        assert_eq!(
            reason(&verdict),
            Some(ConsumerValidationFailure::OrderLimitExceeded)
        );
    }

    #[test]
    fn an_order_in_another_currency_exceeds_the_limit_and_says_why() {
        let euros = Money {
            amount_minor: 1,
            currency: "EUR".into(),
        };
        let verdict = validate(Some(&consumer()), Uuid::new_v4(), &euros);
        assert_eq!(
            reason(&verdict),
            Some(ConsumerValidationFailure::OrderLimitExceeded)
        );
        assert!(
            verdict
                .detail()
                .is_some_and(|d| d.contains("currencies differ"))
        );
    }

    #[test]
    fn an_unknown_consumer_is_refused_first() {
        let verdict = validate(None, Uuid::new_v4(), &usd(1));
        assert_eq!(
            reason(&verdict),
            Some(ConsumerValidationFailure::UnknownConsumer)
        );
    }

    #[test]
    fn every_verdict_reads_back_as_recorded() {
        let id = Uuid::new_v4();
        for verdict in [
            validate(Some(&consumer()), id, &usd(1)),
            validate(Some(&consumer()), id, &usd(100_001)),
            validate(None, id, &usd(1)),
        ] {
            let detail = verdict.detail().map(str::to_owned);
            assert_eq!(Verdict::recorded(verdict.outcome(), detail), Some(verdict));
        }
        assert_eq!(Verdict::recorded("MAYBE", None), None);
    }
}
