//! What accounting consumes, each message handled in the transaction `Idempotent` opened: the
//! state change, the event and the reply commit together or not at all.

use contracts::accounting::commands::{AuthorizeCard, Command, ReverseAuthorization};
use contracts::accounting::events::{
    AccountOpened, AuthorizationReversed, CardAuthorizationFailed, CardAuthorized,
};
use contracts::consumer::events::{ConsumerCreated, Event as ConsumerEvent};
use contracts::now_ms;
use contracts::order::replies::{
    AuthorizeCardFailed, AuthorizeCardSucceeded, ReverseAuthorizationSucceeded,
};
use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use service_kit::{Outgoing, compensation};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Account, Decision, Money};

service_kit::inbound! {
    /// What the accounting service consumes, in one consumer group: its commands, and the
    /// consumer events it opens accounts from.
    pub enum AccountingInbound {
        Commands(contracts::accounting::commands::Command),
        Consumers(contracts::consumer::events::Event),
    }
}

/// Handles [`AccountingInbound`].
#[derive(Debug, Clone)]
pub struct Accounting {
    outgoing: Outgoing,
}

/// The authorization an order has, as stored.
#[derive(Debug, sqlx::FromRow)]
struct Authorization {
    id: Uuid,
    consumer_id: Uuid,
    amount_minor: i64,
    currency: String,
}

impl Accounting {
    pub fn new(outgoing: Outgoing) -> Self {
        Self { outgoing }
    }

    /// Opens the consumer's account, once per consumer: a second ConsumerCreated for it (a
    /// re-published event, a new message id) finds the account and sends nothing.
    async fn open_account(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        event: ConsumerCreated,
    ) -> Result<(), HandlerError> {
        let opened = sqlx::query(
            "INSERT INTO accounts (consumer_id) VALUES ($1) ON CONFLICT (consumer_id) DO NOTHING",
        )
        .bind(event.consumer_id)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if opened.rows_affected() == 0 {
            tracing::debug!(consumer_id = %event.consumer_id, "the account is open already");
            return Ok(());
        }
        let opened = AccountOpened {
            consumer_id: event.consumer_id,
            opened_at: now_ms(),
        };
        self.outgoing.event(tx, Some(cause), &opened).await
    }

    /// Authorizes the order's total, at most once per order: an order with an authorization
    /// gets that one again (no second hold, no second event), also after it was reversed (the
    /// answer to a late copy of the command, not a new hold). A refusal holds nothing and is
    /// not recorded: the same order asked again is decided again (its account may have been
    /// opened since).
    async fn authorize(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: AuthorizeCard,
    ) -> Result<(), HandlerError> {
        let amount: Money = command.order_total.clone().into();
        if amount.amount_minor < 0 {
            return Err(HandlerError::permanent(
                Reason::InvalidContent,
                format!(
                    "order {} asks to authorize a negative amount ({amount})",
                    command.order_id
                ),
            ));
        }
        if let Some(existing) = authorization(tx, command.order_id).await? {
            return self.authorized_already(tx, cause, &command, existing).await;
        }
        // An AuthorizeCard after its saga reversed the authorization it never got (a replayed
        // dead letter): a hold now would never be released.
        compensation::refuse_if_compensated(tx, command.order_id, "AuthorizeCard").await?;
        let account = account(tx, command.consumer_id).await?;
        match domain::authorize(account.as_ref(), command.consumer_id, &amount) {
            Decision::Authorize => {
                let id = Uuid::now_v7();
                let inserted = sqlx::query(
                    "INSERT INTO authorizations (id, order_id, consumer_id, amount_minor, currency)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(id)
                .bind(command.order_id)
                .bind(command.consumer_id)
                .bind(amount.amount_minor)
                .bind(&amount.currency)
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::transient)?;
                if inserted.rows_affected() == 0 {
                    // Another copy of the command (on another instance, during a rebalance)
                    // authorized the order between our look and our insert: its answer stands.
                    let existing = authorization(tx, command.order_id).await?.ok_or_else(|| {
                        HandlerError::transient(format!(
                            "the authorization of order {} vanished",
                            command.order_id
                        ))
                    })?;
                    return self.authorized_already(tx, cause, &command, existing).await;
                }
                tracing::info!(order_id = %command.order_id, authorization_id = %id, "card authorized");
                let event = CardAuthorized {
                    order_id: command.order_id,
                    consumer_id: command.consumer_id,
                    authorization_id: id,
                    amount: amount.into(),
                    authorized_at: now_ms(),
                };
                self.outgoing.event(tx, Some(cause), &event).await?;
                let reply = AuthorizeCardSucceeded {
                    order_id: command.order_id,
                    authorization_id: id,
                };
                self.outgoing.reply(tx, cause, &reply).await
            }
            Decision::Refuse { refusal, detail } => {
                tracing::info!(order_id = %command.order_id, ?refusal, detail, "card not authorized");
                let event = CardAuthorizationFailed {
                    order_id: command.order_id,
                    consumer_id: command.consumer_id,
                    reason: refusal.for_event(),
                    failed_at: now_ms(),
                };
                self.outgoing.event(tx, Some(cause), &event).await?;
                let reply = AuthorizeCardFailed {
                    order_id: command.order_id,
                    reason: refusal.for_reply(),
                    detail: Some(detail),
                };
                self.outgoing.reply(tx, cause, &reply).await
            }
        }
    }

    /// Answers an AuthorizeCard for an order authorized before with that authorization. The
    /// same order with another consumer or amount is not the same request: refused for good
    /// (`authorization-conflict`), as answering it with the first one's success would claim a
    /// hold that does not exist.
    async fn authorized_already(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: &AuthorizeCard,
        existing: Authorization,
    ) -> Result<(), HandlerError> {
        let asked = &command.order_total;
        if existing.consumer_id != command.consumer_id
            || existing.amount_minor != asked.amount_minor
            || existing.currency != asked.currency
        {
            return Err(HandlerError::permanent(
                Reason::AuthorizationConflict,
                format!(
                    "order {} was authorized for consumer {} and {} minor units of {}, not for \
                     consumer {} and {} minor units of {}",
                    command.order_id,
                    existing.consumer_id,
                    existing.amount_minor,
                    existing.currency,
                    command.consumer_id,
                    asked.amount_minor,
                    asked.currency
                ),
            ));
        }
        tracing::debug!(order_id = %command.order_id, authorization_id = %existing.id,
            "the order is authorized already");
        let reply = AuthorizeCardSucceeded {
            order_id: command.order_id,
            authorization_id: existing.id,
        };
        self.outgoing.reply(tx, cause, &reply).await
    }

    /// Releases the order's authorization. Always succeeds: reversing twice, or an order that
    /// was never authorized, leaves nothing held, which is what was asked. The event says only
    /// that a hold was actually released. The authorization is found by order id; the command's
    /// consumer and amount are not needed (a consumer that differs is logged).
    async fn reverse(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: ReverseAuthorization,
    ) -> Result<(), HandlerError> {
        let reversed: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE authorizations SET reversed_at = now()
             WHERE order_id = $1 AND reversed_at IS NULL
             RETURNING id, consumer_id",
        )
        .bind(command.order_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if let Some((authorization_id, consumer_id)) = reversed {
            if consumer_id != command.consumer_id {
                tracing::warn!(order_id = %command.order_id, %consumer_id,
                    command_consumer_id = %command.consumer_id,
                    "reversing an authorization of another consumer than the command names");
            }
            tracing::info!(order_id = %command.order_id, %authorization_id, "authorization reversed");
            let event = AuthorizationReversed {
                order_id: command.order_id,
                consumer_id,
                authorization_id,
                reversed_at: now_ms(),
            };
            self.outgoing.event(tx, Some(cause), &event).await?;
        } else if authorization(tx, command.order_id).await?.is_none() {
            // Never authorized (AuthorizeCard dead-lettered, or still on its way): nothing to
            // release now, and an AuthorizeCard that comes after this is refused.
            compensation::remember(tx, command.order_id, "AuthorizeCard").await?;
        }
        let reply = ReverseAuthorizationSucceeded {
            order_id: command.order_id,
        };
        self.outgoing.reply(tx, cause, &reply).await
    }
}

impl TransactionalHandler<AccountingInbound> for Accounting {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        inbound: AccountingInbound,
    ) -> Result<(), HandlerError> {
        match inbound {
            AccountingInbound::Commands(Command::AuthorizeCard(command)) => {
                self.authorize(tx, message, command).await
            }
            AccountingInbound::Commands(Command::ReverseAuthorization(command)) => {
                self.reverse(tx, message, command).await
            }
            AccountingInbound::Consumers(ConsumerEvent::ConsumerCreated(event)) => {
                self.open_account(tx, message, event).await
            }
        }
    }
}

async fn account(tx: &mut PgConnection, consumer: Uuid) -> Result<Option<Account>, HandlerError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT authorization_limit_minor, currency FROM accounts WHERE consumer_id = $1",
    )
    .bind(consumer)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(row.map(|(amount_minor, currency)| Account {
        authorization_limit: Money {
            amount_minor,
            currency,
        },
    }))
}

async fn authorization(
    tx: &mut PgConnection,
    order: Uuid,
) -> Result<Option<Authorization>, HandlerError> {
    sqlx::query_as(
        "SELECT id, consumer_id, amount_minor, currency FROM authorizations WHERE order_id = $1",
    )
    .bind(order)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)
}
