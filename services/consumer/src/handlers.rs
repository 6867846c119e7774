//! The consumer commands, each handled in the transaction `Idempotent` opened: the state change
//! and what it sends (an event, a reply) commit together or not at all.

use contracts::consumer::commands::{Command, CreateConsumer, ValidateOrderByConsumer};
use contracts::consumer::events::{ConsumerCreated, consumer_created};
use contracts::now_ms;
use contracts::order::replies::{ValidateOrderByConsumerFailed, ValidateOrderByConsumerSucceeded};
use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use service_kit::Outgoing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Consumer, Money, Verdict};

/// Handles `ftgo.consumer.commands`.
#[derive(Debug, Clone)]
pub struct ConsumerCommands {
    outgoing: Outgoing,
}

impl ConsumerCommands {
    pub fn new(outgoing: Outgoing) -> Self {
        Self { outgoing }
    }

    /// Registers the consumer and tells others (accounting opens an account from the event).
    /// The inbox absorbs a redelivery of this message; another CreateConsumer for the same id
    /// is a client's mistake and is dead-lettered (`consumer-exists`), not silently merged. The
    /// REST API (`cause: None`) shares it.
    pub async fn create(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        command: CreateConsumer,
    ) -> Result<(), HandlerError> {
        let inserted = sqlx::query(
            "INSERT INTO consumers (id, first_name, last_name) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(command.consumer_id)
        .bind(&command.name.first_name)
        .bind(&command.name.last_name)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if inserted.rows_affected() == 0 {
            return Err(HandlerError::permanent(
                Reason::ConsumerExists,
                format!("consumer {} exists already", command.consumer_id),
            ));
        }
        let event = ConsumerCreated {
            consumer_id: command.consumer_id,
            name: consumer_created::PersonName {
                first_name: command.name.first_name,
                last_name: command.name.last_name,
            },
            created_at: now_ms(),
        };
        self.outgoing.event(tx, cause, &event).await
    }

    /// Answers whether the consumer may place the order, once per order: the first answer is
    /// recorded and a re-sent command for the same order gets it again, even if the consumer
    /// or its limit changed since (the saga that asked has acted on it already).
    async fn validate(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: ValidateOrderByConsumer,
    ) -> Result<(), HandlerError> {
        let total: Money = command.order_total.clone().into();
        if total.amount_minor < 0 {
            return Err(HandlerError::permanent(
                Reason::InvalidContent,
                format!("order {} has a negative total ({total})", command.order_id),
            ));
        }
        let verdict = match recorded(tx, &command, &total).await? {
            Some(verdict) => verdict,
            None => {
                let consumer = consumer(tx, command.consumer_id).await?;
                let verdict = domain::validate(consumer.as_ref(), command.consumer_id, &total);
                if record(tx, &command, &total, &verdict).await? {
                    verdict
                } else {
                    // Another delivery (a re-sent command on another instance during a
                    // rebalance) recorded this order between our look and our insert: its
                    // answer stands.
                    recorded(tx, &command, &total).await?.ok_or_else(|| {
                        HandlerError::transient(format!(
                            "the validation of order {} vanished",
                            command.order_id
                        ))
                    })?
                }
            }
        };
        tracing::info!(
            order_id = %command.order_id,
            consumer_id = %command.consumer_id,
            outcome = verdict.outcome(),
            "order validated by consumer"
        );
        match verdict {
            Verdict::Validated => {
                let reply = ValidateOrderByConsumerSucceeded {
                    order_id: command.order_id,
                };
                self.outgoing.reply(tx, cause, &reply).await
            }
            Verdict::Refused { reason, detail } => {
                let reply = ValidateOrderByConsumerFailed {
                    order_id: command.order_id,
                    reason,
                    detail: Some(detail),
                };
                self.outgoing.reply(tx, cause, &reply).await
            }
        }
    }
}

impl TransactionalHandler<Command> for ConsumerCommands {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        command: Command,
    ) -> Result<(), HandlerError> {
        match command {
            Command::CreateConsumer(create) => self.create(tx, Some(message), create).await,
            Command::ValidateOrderByConsumer(validate) => {
                self.validate(tx, message, validate).await
            }
        }
    }
}

async fn consumer(tx: &mut PgConnection, id: Uuid) -> Result<Option<Consumer>, HandlerError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT order_limit_minor, order_limit_currency FROM consumers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(row.map(|(amount_minor, currency)| Consumer {
        order_limit: Money {
            amount_minor,
            currency,
        },
    }))
}

/// The verdict recorded for the command's order, if any. The same order asked about with
/// another consumer or total is not the same question: refused for good
/// (`validation-conflict`) rather than answered with the other question's answer.
async fn recorded(
    tx: &mut PgConnection,
    command: &ValidateOrderByConsumer,
    total: &Money,
) -> Result<Option<Verdict>, HandlerError> {
    let row: Option<(Uuid, i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT consumer_id, total_minor, total_currency, outcome, detail
         FROM order_validations WHERE order_id = $1",
    )
    .bind(command.order_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    let Some((consumer_id, total_minor, total_currency, outcome, detail)) = row else {
        return Ok(None);
    };
    let asked = Money {
        amount_minor: total_minor,
        currency: total_currency,
    };
    if consumer_id != command.consumer_id || asked != *total {
        return Err(HandlerError::permanent(
            Reason::ValidationConflict,
            format!(
                "order {} was validated for consumer {consumer_id} and {asked}, not for \
                 consumer {} and {total}",
                command.order_id, command.consumer_id
            ),
        ));
    }
    Verdict::recorded(&outcome, detail)
        .map(Some)
        .ok_or_else(|| {
            HandlerError::permanent(
                Reason::HandlerFailed,
                format!(
                    "order {} has an unknown recorded outcome {outcome}",
                    command.order_id
                ),
            )
        })
}

/// Records the verdict; `false` when the order has one already.
async fn record(
    tx: &mut PgConnection,
    command: &ValidateOrderByConsumer,
    total: &Money,
    verdict: &Verdict,
) -> Result<bool, HandlerError> {
    let inserted = sqlx::query(
        "INSERT INTO order_validations
             (order_id, consumer_id, total_minor, total_currency, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(command.order_id)
    .bind(command.consumer_id)
    .bind(total.amount_minor)
    .bind(&total.currency)
    .bind(verdict.outcome())
    .bind(verdict.detail())
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(inserted.rows_affected() == 1)
}
