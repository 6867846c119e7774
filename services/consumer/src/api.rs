//! The consumer service's REST API for other applications: `POST /consumers` and
//! `GET /consumers/{consumerId}`, answered from this service's database alone.
//!
//! A new consumer is written with its ConsumerCreated (outbox) in one transaction, as the
//! CreateConsumer command does on Kafka: the accounting service opens the consumer's account
//! from the event.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use contracts::consumer::commands::{CreateConsumer, create_consumer};
use serde::{Deserialize, Serialize};
use service_kit::api::{self, Answer, Body, Id, Money, Problem, Rest, RestApi};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::handlers::ConsumerCommands;

const DESCRIPTION: &str = "Consumers for other applications. Answered from the consumer \
service's own database: a new consumer is written with its ConsumerCreated event, from which \
the accounting service opens the consumer's account. Errors are RFC 9457 problem details. A \
POST with an Idempotency-Key header (or a client-chosen consumerId) is safe to retry: the first \
answer is given again.";

/// The API, declared once: the service serves it, `consumer-service openapi` prints its document.
pub const API: RestApi<ConsumerCommands> = RestApi {
    routes,
    description: DESCRIPTION,
};

fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
}

type Api = Rest<ConsumerCommands>;

/// What `POST /consumers` takes: the CreateConsumer command's fields, in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConsumer {
    /// The consumer's id, if the client chooses it (then a retry with the same id and body
    /// gets the same answer); else the service picks one.
    #[serde(default)]
    pub consumer_id: Option<Uuid>,
    pub name: PersonName,
}

/// A person's name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonName {
    #[schema(min_length = 1, max_length = 200, example = "Alice")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 200, example = "Ray")]
    pub last_name: String,
}

/// A consumer as the consumer service knows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    pub consumer_id: Uuid,
    pub name: PersonName,
    /// The most one order may total (ValidateOrderByConsumer refuses more).
    pub order_limit: Money,
    /// Where to read it again.
    pub href: String,
}

fn href(consumer: Uuid) -> String {
    format!("/consumers/{consumer}")
}

/// Registers a consumer, with the ConsumerCreated from which accounting opens an account.
#[utoipa::path(
    post,
    path = "/consumers",
    operation_id = "createConsumer",
    tag = "consumers",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body get the first answer again; the same key with another body is refused (422). 1 to 255 visible ASCII characters."),
    ),
    request_body = NewConsumer,
    responses(
        (status = 201, description = "Created: read it at Location", body = Consumer,
            headers(("Location" = String, description = "The consumer's URL"))),
        (status = 400, description = "Not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A consumer with this consumerId exists (consumer-exists)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a consumer this service takes (an empty name), or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    Body(consumer): Body<NewConsumer>,
) -> Result<Answer<serde_json::Value>, Problem> {
    api::required_text("name.firstName", &consumer.name.first_name, 200)?;
    api::required_text("name.lastName", &consumer.name.last_name, 200)?;
    let key = api::creation_key(&headers, "consumer", consumer.consumer_id)?;
    let request = serde_json::to_value(&consumer).map_err(Problem::unavailable)?;
    api::once(
        &api.pool,
        key.as_deref(),
        "POST /consumers",
        &request,
        async |tx| {
            let id = consumer.consumer_id.unwrap_or_else(Uuid::now_v7);
            let command = CreateConsumer {
                consumer_id: id,
                name: create_consumer::PersonName {
                    first_name: consumer.name.first_name.clone(),
                    last_name: consumer.name.last_name.clone(),
                },
            };
            api.handler
                .create(tx, None, command)
                .await
                .map_err(|error| api::refusal(error).at(href(id)))?;
            let view = read(tx, id)
                .await?
                .ok_or_else(|| Problem::unavailable(format!("consumer {id} is not there")))?;
            Answer::json(StatusCode::CREATED, href(id), &view)
        },
    )
    .await
}

/// Reads a consumer from the consumer service's database.
#[utoipa::path(
    get,
    path = "/consumers/{consumerId}",
    operation_id = "getConsumer",
    tag = "consumers",
    params(("consumerId" = Uuid, Path, description = "The consumer's id")),
    responses(
        (status = 200, description = "The consumer", body = Consumer),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consumer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn show(
    State(api): State<Api>,
    Id(consumer_id): Id,
) -> Result<axum::Json<Consumer>, Problem> {
    let mut connection = api.pool.acquire().await?;
    read(&mut connection, consumer_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found("consumer", href(consumer_id)))
}

/// The consumer `id` as the API shows it.
async fn read(tx: &mut PgConnection, id: Uuid) -> Result<Option<Consumer>, Problem> {
    let row: Option<(String, String, i64, String)> = sqlx::query_as(
        "SELECT first_name, last_name, order_limit_minor, order_limit_currency
         FROM consumers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(
        row.map(|(first_name, last_name, amount_minor, currency)| Consumer {
            consumer_id: id,
            name: PersonName {
                first_name,
                last_name,
            },
            order_limit: Money {
                amount_minor,
                currency,
            },
            href: href(id),
        }),
    )
}
