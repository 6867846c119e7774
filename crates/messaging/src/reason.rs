//! Why a message was dead-lettered: one code per cause, stable text for the `ftgo_dlt_reason`
//! header, metrics' outcomes and `ftgo dlq list --reason`. Every code of the system is here, so
//! an operator finds them all in one place (docs/operations.md lists them with what to do).

/// A dead-letter reason. Its text ([`Reason::as_str`]) never changes once released: operators
/// filter and alert on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // ---- decoding (the service kit's decoder)
    /// The payload is not in the Confluent wire format (magic byte, schema id).
    NotConfluentFramed,
    /// The registry has no schema of the payload's id.
    UnknownSchemaId,
    /// The record is not one the catalog allows on its topic.
    RecordNotAllowedOnTopic,
    /// The bytes do not decode, or a value breaks the record's rules (a negative amount).
    InvalidContent,
    /// The registry did not answer (waited out, never dead-lettered).
    RegistryUnavailable,
    /// `ce_type` names another record than the payload is.
    TypeMismatch,
    /// The Kafka key is not the record's key field.
    KeyMismatch,
    /// A header the message needs (`ce_id`, `ftgo_correlation_id`) is missing.
    MissingHeader,
    // ---- the runtime
    /// A transient failure (only seen when nothing retried it).
    TransientFailure,
    /// Transient failures went on until the retry policy gave up.
    RetriesExhausted,
    /// The handler failed for good, for a reason of no other code.
    HandlerFailed,
    /// Another message reused the id of one already handled.
    IdConflict,
    /// A command nobody waits for: no `ce_replyto`.
    NoReplyTo,
    /// A `ce_replyto` that is no topic of the catalog.
    InvalidReplyTo,
    /// A step's command that came after its compensation (a replayed dead letter).
    Compensated,
    // ---- sagas
    /// A reply without a correlation id.
    UncorrelatedReply,
    /// A reply of no saga instance.
    UnknownSaga,
    /// A saga instance's stored state does not decode.
    SagaStateUnreadable,
    // ---- the services' domains
    /// A command about an order the service does not have.
    UnknownOrder,
    /// A command about a restaurant the service does not have.
    UnknownRestaurant,
    /// A kitchen action on an order with no ticket.
    UnknownTicket,
    /// A second consumer with an existing id.
    ConsumerExists,
    /// A second restaurant with an existing id.
    RestaurantExists,
    /// An authorization of the same order with another consumer or amount.
    AuthorizationConflict,
    /// A validation of the same order with another consumer or total.
    ValidationConflict,
    /// AcceptTicket of a ticket not awaiting acceptance.
    TicketNotAwaitingAcceptance,
    /// StartTicketPreparation of a ticket not accepted.
    TicketNotAccepted,
    /// MarkTicketReadyForPickup of a ticket not being prepared.
    TicketNotPreparing,
    /// DeliveryPickedUp of a ticket not ready for pickup.
    TicketNotReadyForPickup,
    /// ConfirmCreateTicket of a ticket not pending creation.
    TicketNotCreatePending,
    /// A cancellation step of a ticket whose cancellation has not begun.
    TicketNotCancelPending,
    /// BeginCancelTicket of a ticket past cancelling.
    TicketNotCancellable,
    /// A kitchen action on a cancelled ticket.
    TicketCancelled,
    /// A courier action on an order with no delivery (none scheduled yet, or never).
    UnknownDelivery,
    /// A courier action from another courier than the delivery's (or before one is assigned).
    WrongCourier,
    /// PickUpDelivery before the kitchen marked the ticket ready for pickup.
    DeliveryNotReadyForPickup,
    /// DropOffDelivery of a delivery not picked up.
    DeliveryNotPickedUp,
    /// A courier action on a cancelled delivery.
    DeliveryCancelled,
}

impl Reason {
    /// Every reason, in the order above.
    pub const ALL: [Reason; 38] = [
        Reason::NotConfluentFramed,
        Reason::UnknownSchemaId,
        Reason::RecordNotAllowedOnTopic,
        Reason::InvalidContent,
        Reason::RegistryUnavailable,
        Reason::TypeMismatch,
        Reason::KeyMismatch,
        Reason::MissingHeader,
        Reason::TransientFailure,
        Reason::RetriesExhausted,
        Reason::HandlerFailed,
        Reason::IdConflict,
        Reason::NoReplyTo,
        Reason::InvalidReplyTo,
        Reason::Compensated,
        Reason::UncorrelatedReply,
        Reason::UnknownSaga,
        Reason::SagaStateUnreadable,
        Reason::UnknownOrder,
        Reason::UnknownRestaurant,
        Reason::UnknownTicket,
        Reason::ConsumerExists,
        Reason::RestaurantExists,
        Reason::AuthorizationConflict,
        Reason::ValidationConflict,
        Reason::TicketNotAwaitingAcceptance,
        Reason::TicketNotAccepted,
        Reason::TicketNotPreparing,
        Reason::TicketNotReadyForPickup,
        Reason::TicketNotCreatePending,
        Reason::TicketNotCancelPending,
        Reason::TicketNotCancellable,
        Reason::TicketCancelled,
        Reason::UnknownDelivery,
        Reason::WrongCourier,
        Reason::DeliveryNotReadyForPickup,
        Reason::DeliveryNotPickedUp,
        Reason::DeliveryCancelled,
    ];

    /// The stable text: `invalid-content`, `retries-exhausted`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotConfluentFramed => "not-confluent-framed",
            Reason::UnknownSchemaId => "unknown-schema-id",
            Reason::RecordNotAllowedOnTopic => "record-not-allowed-on-topic",
            Reason::InvalidContent => "invalid-content",
            Reason::RegistryUnavailable => "registry-unavailable",
            Reason::TypeMismatch => "type-mismatch",
            Reason::KeyMismatch => "key-mismatch",
            Reason::MissingHeader => "missing-header",
            Reason::TransientFailure => "transient-failure",
            Reason::RetriesExhausted => "retries-exhausted",
            Reason::HandlerFailed => "handler-failed",
            Reason::IdConflict => "id-conflict",
            Reason::NoReplyTo => "no-reply-to",
            Reason::InvalidReplyTo => "invalid-reply-to",
            Reason::Compensated => "compensated",
            Reason::UncorrelatedReply => "uncorrelated-reply",
            Reason::UnknownSaga => "unknown-saga",
            Reason::SagaStateUnreadable => "saga-state-unreadable",
            Reason::UnknownOrder => "unknown-order",
            Reason::UnknownRestaurant => "unknown-restaurant",
            Reason::UnknownTicket => "unknown-ticket",
            Reason::ConsumerExists => "consumer-exists",
            Reason::RestaurantExists => "restaurant-exists",
            Reason::AuthorizationConflict => "authorization-conflict",
            Reason::ValidationConflict => "validation-conflict",
            Reason::TicketNotAwaitingAcceptance => "ticket-not-awaiting-acceptance",
            Reason::TicketNotAccepted => "ticket-not-accepted",
            Reason::TicketNotPreparing => "ticket-not-preparing",
            Reason::TicketNotReadyForPickup => "ticket-not-ready-for-pickup",
            Reason::TicketNotCreatePending => "ticket-not-create-pending",
            Reason::TicketNotCancelPending => "ticket-not-cancel-pending",
            Reason::TicketNotCancellable => "ticket-not-cancellable",
            Reason::TicketCancelled => "ticket-cancelled",
            Reason::UnknownDelivery => "unknown-delivery",
            Reason::WrongCourier => "wrong-courier",
            Reason::DeliveryNotReadyForPickup => "delivery-not-ready-for-pickup",
            Reason::DeliveryNotPickedUp => "delivery-not-picked-up",
            Reason::DeliveryCancelled => "delivery-cancelled",
        }
    }

    /// The reason of a text, if it is one.
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_text_is_distinct_kebab_case_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{text} is not kebab-case"
            );
            assert_eq!(Reason::parse(text), Some(reason));
        }
        assert_eq!(Reason::parse("no-such-reason"), None);
    }

    /// docs/operations.md tells an operator what each reason means and what to do.
    #[test]
    fn the_operations_guide_lists_every_reason() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
        let guide = std::fs::read_to_string(path).expect("docs/operations.md");
        for reason in Reason::ALL {
            assert!(
                guide.contains(&format!("`{reason}`")),
                "docs/operations.md does not list `{reason}`"
            );
        }
    }
}
