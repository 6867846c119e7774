//! Appending messages to the outbox, in the caller's transaction: they are published if and
//! only if the transaction commits.

use messaging::{Headers, Message};
use sqlx::PgConnection;

use crate::OutboxError;

/// Headers from their stored form: a JSON array of `[name, value]` pairs.
pub(crate) fn headers_from_json(text: &str) -> Result<Headers, OutboxError> {
    let pairs: Vec<(String, String)> = serde_json::from_str(text).map_err(OutboxError::Headers)?;
    Ok(pairs.into_iter().collect())
}

/// Appends `message` for `topic` to the outbox on `connection` (pass the transaction that
/// changes the state the message tells about: `&mut *tx`). The message must have its id
/// (`ce_id`): a second append of the same id fails, as it would publish a duplicate. A message
/// larger than the producer's maximum ([`kafka::MAX_MESSAGE_BYTES`], key, value and headers)
/// is refused here, where the caller can still roll back, rather than stopping its key in
/// the outbox later.
pub async fn append(
    connection: &mut PgConnection,
    topic: &str,
    message: &Message,
) -> Result<(), OutboxError> {
    let id = message.id().ok_or(OutboxError::NoMessageId)?;
    let size = kafka::record_size(message);
    if size > kafka::MAX_MESSAGE_BYTES {
        return Err(OutboxError::TooLarge {
            topic: topic.to_owned(),
            size,
            limit: kafka::MAX_MESSAGE_BYTES,
        });
    }
    let headers: Vec<(&str, &str)> = message.headers.iter().collect();
    let headers = serde_json::to_string(&headers).map_err(OutboxError::Headers)?;
    sqlx::query(
        "INSERT INTO outbox (message_id, topic, key, headers, payload)
         VALUES ($1, $2, $3, $4::jsonb, $5)",
    )
    .bind(id)
    .bind(topic)
    .bind(message.key.as_deref())
    .bind(headers)
    .bind(&message.payload)
    .execute(connection)
    .await?;
    Ok(())
}
