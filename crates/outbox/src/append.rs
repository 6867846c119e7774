//! Appending messages to the outbox, in the caller's transaction: they are published if and
//! only if the transaction commits.

use messaging::Message;
use sqlx::PgConnection;

use crate::OutboxError;

/// Appends `message` for `topic` to the outbox on `connection` (pass the transaction that
/// changes the state the message tells about: `&mut *tx`). The message must have its id
/// (`ce_id`): a second append of the same id fails, as it would publish a duplicate.
pub async fn append(
    connection: &mut PgConnection,
    topic: &str,
    message: &Message,
) -> Result<(), OutboxError> {
    let id = message.id().ok_or(OutboxError::NoMessageId)?;
    let (names, values): (Vec<&str>, Vec<&str>) = message.headers.iter().unzip();
    sqlx::query(
        "INSERT INTO outbox (message_id, topic, key, header_names, header_values, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(topic)
    .bind(message.key.as_deref())
    .bind(&names)
    .bind(&values)
    .bind(&message.payload)
    .execute(connection)
    .await?;
    Ok(())
}
