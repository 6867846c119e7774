//! What a service's REST API for other applications shares: RFC 9457 problem details for every
//! error, extractors whose refusals are problems too, `Idempotency-Key` replay in the request's
//! own transaction, and the OpenAPI document served beside the routes.
//!
//! A service answers synchronously from its own database only (a self-contained service, in the
//! book's words): what it must ask another service goes out through the outbox, as the Kafka
//! path does, and the caller learns the outcome by reading the resource again.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use utoipa::ToSchema;

/// The header that makes a POST safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// How long a key's answer is kept (the leader deletes older ones with the inbox's).
pub const IDEMPOTENCY_RETENTION: &str = "24 hours";

/// The table of answered keys, in every service's schema (created by `migrate`, like the
/// outbox's).
const IDEMPOTENCY: &str = r"
CREATE TABLE IF NOT EXISTS http_idempotency (
    key         text PRIMARY KEY,
    -- `POST /orders` and the request's body: the same key with another request is refused.
    operation   text NOT NULL,
    request     jsonb NOT NULL,
    -- The answer given, replayed to a retry.
    status      smallint NOT NULL,
    location    text,
    response    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
)";

pub(crate) async fn install(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ftgo.http_idempotency', 0))")
        .execute(&mut *tx)
        .await?;
    sqlx::query(IDEMPOTENCY).execute(&mut *tx).await?;
    tx.commit().await
}

/// Deletes the keys answered longer ago than [`IDEMPOTENCY_RETENTION`]; how many.
pub(crate) async fn expire_keys(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(&format!(
        "DELETE FROM http_idempotency WHERE created_at < now() - interval '{IDEMPOTENCY_RETENTION}'"
    ))
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// An RFC 9457 problem: every error the API answers, as `application/problem+json`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:ftgo:problem:<code>`; the codes are listed in docs/api.md.
    #[serde(rename = "type")]
    #[schema(example = "urn:ftgo:problem:unknown-menu-item")]
    pub kind: String,
    /// The code's short, fixed summary.
    pub title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// This occurrence, in words.
    pub detail: String,
    /// The resource it concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    /// A problem of `code` (`unknown-menu-item`) with its `title`.
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:ftgo:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
        }
    }

    pub fn at(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// A failure of ours (the database): 503, worth a retry; the cause is logged, not shown.
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "a REST request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service cannot answer now",
            "the service's database did not answer; retry (with the same Idempotency-Key)",
        )
    }

    pub fn not_found(what: &str, instance: String) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such resource",
            format!("there is no {what} {instance}"),
        )
        .at(instance)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        Self::unavailable(error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON body; a body that is not JSON, or not of `T`'s shape, is a 400, 415 or 422 problem.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(body_problem(&rejection)),
        }
    }
}

/// An optional JSON body: none at all (no content type, no bytes) is `None`.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Problem> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            return <Self as FromRequest<S>>::from_request(request, state)
                .await
                .map(Some);
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                Problem::new(
                    rejection.status(),
                    "malformed-body",
                    "The body cannot be read",
                    rejection.body_text(),
                )
            })?;
        if bytes.is_empty() {
            Ok(None)
        } else {
            Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-json",
                "The body must be application/json",
                "a body was sent without Content-Type: application/json",
            ))
        }
    }
}

fn body_problem(rejection: &JsonRejection) -> Problem {
    let (code, title) = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ("not-json", "The body must be application/json")
        }
        JsonRejection::JsonSyntaxError(_) => ("malformed-body", "The body is not JSON"),
        _ => ("invalid-body", "The body is not what this operation takes"),
    };
    Problem::new(rejection.status(), code, title, rejection.body_text())
}

/// The id in a path (`/orders/{orderId}`); anything but a UUID is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<uuid::Uuid>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Id(id)),
            Err(rejection) => Err(path_problem(&rejection, parts.uri.path())),
        }
    }
}

fn path_problem(rejection: &PathRejection, path: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-id",
        "The id in the path is not a UUID",
        rejection.body_text(),
    )
    .at(path.to_owned())
}

/// Text a client sent, checked for what PostgreSQL cannot store (NUL) and for its length.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<(), Problem> {
    if value.contains('\0') {
        return Err(invalid(format!("{field} contains a NUL character")));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    Ok(())
}

/// A postal address, as the APIs take and give it (the catalog's Address records).
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    #[schema(max_length = 200)]
    pub street1: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub street2: Option<String>,
    #[schema(max_length = 200)]
    pub city: String,
    #[schema(max_length = 200)]
    pub state: String,
    #[schema(max_length = 200)]
    pub zip: String,
}

impl Address {
    /// Refuses what the schema refuses (a text over 200 characters) and NUL characters;
    /// `field` names it in the problem (`deliveryAddress`).
    pub fn check(&self, field: &str) -> Result<(), Problem> {
        for (name, value) in [
            ("street1", Some(&self.street1)),
            ("street2", self.street2.as_ref()),
            ("city", Some(&self.city)),
            ("state", Some(&self.state)),
            ("zip", Some(&self.zip)),
        ] {
            if let Some(value) = value {
                text(&format!("{field}.{name}"), value, 200)?;
            }
        }
        Ok(())
    }
}

/// An amount in the currency's minor unit (cents), as the APIs take and give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Money {
    #[schema(minimum = 0)]
    pub amount_minor: i64,
    /// ISO 4217: three capital letters.
    #[schema(pattern = "^[A-Z]{3}$", example = "USD")]
    pub currency: String,
}

impl Money {
    /// Refuses what the schema refuses: a negative amount, a currency that is not three capital
    /// letters.
    pub fn check(&self, field: &str) -> Result<(), Problem> {
        if self.amount_minor < 0 {
            return Err(invalid(format!("{field}.amountMinor is negative")));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(invalid(format!(
                "{field}.currency is not three capital letters (ISO 4217: USD, EUR, ...)"
            )));
        }
        Ok(())
    }
}

/// As [`text`], and not empty: an id or a name.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    text(field, value, max_chars)
}

/// A 422 `invalid-body` problem: well-formed, but not acceptable.
pub fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
        "The body is not what this operation takes",
        detail,
    )
}

/// A POST's answer: its status, the resource's URL when it made or names one, and its body.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: T,
}

impl Answer<serde_json::Value> {
    /// `body` as JSON (what an idempotency key keeps), with `status` and the resource's URL.
    pub fn json(
        status: StatusCode,
        location: String,
        body: &impl Serialize,
    ) -> Result<Self, Problem> {
        Ok(Self {
            status,
            location: Some(location),
            body: serde_json::to_value(body).map_err(Problem::unavailable)?,
        })
    }
}

impl<T: Serialize> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// The request's `Idempotency-Key`, checked: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "The Idempotency-Key header is not a usable key",
                "an Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is a good one)",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Claims `key` for `operation` with `request`, on the transaction that will make the effect:
/// `None` when it is new (the caller acts, then [`remember`]s its answer in the same
/// transaction), or the answer given the first time. A retry running while the first request
/// is still in its transaction waits on the key's row and then gets that answer. The same key
/// with another operation or body is a 422 problem.
pub async fn replay(
    tx: &mut PgConnection,
    key: &str,
    operation: &str,
    request: &serde_json::Value,
) -> Result<Option<Answer<serde_json::Value>>, Problem> {
    let claimed = sqlx::query(
        "INSERT INTO http_idempotency (key, operation, request, status, response)
         VALUES ($1, $2, $3, 0, 'null') ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(operation)
    .bind(request)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let (first_operation, first_request, status, location, response): (
        String,
        serde_json::Value,
        i16,
        Option<String>,
        serde_json::Value,
    ) = sqlx::query_as(
        "SELECT operation, request, status, location, response
             FROM http_idempotency WHERE key = $1",
    )
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    if first_operation != operation || &first_request != request {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "The Idempotency-Key was used for another request",
            format!(
                "the key {key:?} was used for another request ({first_operation}); \
                 a retry sends the same request, and a new request a new key"
            ),
        ));
    }
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| Problem::unavailable(format!("key {key:?} holds status {status}")))?;
    Ok(Some(Answer {
        status,
        location,
        body: response,
    }))
}

/// Records the answer to the request [`replay`] claimed `key` for, in the same transaction.
pub async fn remember<T: Serialize>(
    tx: &mut PgConnection,
    key: &str,
    answer: &Answer<T>,
) -> Result<(), Problem> {
    let response = serde_json::to_value(&answer.body).map_err(Problem::unavailable)?;
    sqlx::query(
        "UPDATE http_idempotency SET status = $2, location = $3, response = $4 WHERE key = $1",
    )
    .bind(key)
    .bind(i16::try_from(answer.status.as_u16()).unwrap_or(i16::MAX))
    .bind(&answer.location)
    .bind(response)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Acts once per `key`: on a transaction of `pool`, claims the key ([`replay`]: a retry gets
/// the first answer and acts no more), runs `act` on it, [`remember`]s the answer and commits
/// it with the effect. Without a key, acts and commits. A problem rolls everything back, so
/// the request can be retried as it was.
pub async fn once<F>(
    pool: &sqlx::PgPool,
    key: Option<&str>,
    operation: &str,
    request: &serde_json::Value,
    act: F,
) -> Result<Answer<serde_json::Value>, Problem>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<Answer<serde_json::Value>, Problem>,
{
    let mut tx = pool.begin().await?;
    if let Some(key) = key
        && let Some(answer) = replay(&mut tx, key, operation, request).await?
    {
        return Ok(answer);
    }
    let answer = act(&mut tx).await?;
    if let Some(key) = key {
        remember(&mut tx, key, &answer).await?;
    }
    tx.commit().await?;
    Ok(answer)
}

/// The key of a POST that makes resource `kind` (`order`): its `Idempotency-Key`, else the id
/// the client chose for it (`order:<id>`: a retry with the same id gets the first answer).
pub fn creation_key(
    headers: &HeaderMap,
    kind: &str,
    client_id: Option<uuid::Uuid>,
) -> Result<Option<String>, Problem> {
    Ok(idempotency_key(headers)?.or_else(|| client_id.map(|id| format!("{kind}:{id}"))))
}

/// A command handler's refusal on the REST path, as a problem whose code is the dead-letter
/// reason the Kafka path would give: 409 for what exists already or is in the wrong state, 404
/// for an unknown subject, 500 for a bug (logged), 422 for the rest; a transient failure (the
/// database) is 503.
pub fn refusal(error: messaging::HandlerError) -> Problem {
    use messaging::{HandlerError, Reason};
    let HandlerError::Permanent { reason, source } = &error else {
        return Problem::unavailable(error);
    };
    let status = match reason {
        Reason::ConsumerExists
        | Reason::RestaurantExists
        | Reason::IdConflict
        | Reason::WrongCourier => StatusCode::CONFLICT,
        Reason::UnknownOrder
        | Reason::UnknownRestaurant
        | Reason::UnknownTicket
        | Reason::UnknownDelivery => StatusCode::NOT_FOUND,
        Reason::HandlerFailed | Reason::SagaStateUnreadable => {
            tracing::error!(%error, "a REST request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        reason if reason.as_str().contains("-not-") || *reason == Reason::TicketCancelled => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Problem::new(
        status,
        reason.as_str(),
        "The request was refused",
        source.to_string(),
    )
}

/// What a service's routes get: its database and its command handler (the one its Kafka
/// consumer runs, so a request and a command make the same change).
#[derive(Debug, Clone)]
pub struct Rest<H> {
    pub pool: sqlx::PgPool,
    pub handler: H,
}

/// A service's REST API, declared once: its routes (each with its OpenAPI annotation) and what
/// it is for. [`crate::Service::serve_api`] serves it; [`RestApi::document`] describes it.
#[derive(Debug)]
pub struct RestApi<H> {
    pub routes: fn() -> utoipa_axum::router::OpenApiRouter<Rest<H>>,
    pub description: &'static str,
}

impl<H: Clone + Send + Sync + 'static> RestApi<H> {
    /// The routes on `state`, and their document.
    pub fn router(
        &self,
        service: &str,
        state: Rest<H>,
    ) -> (axum::Router, utoipa::openapi::OpenApi) {
        let (router, api) = (self.routes)().split_for_parts();
        (
            router
                .with_state(state)
                .layer(axum::middleware::from_fn(traced)),
            document(service, api, self.description),
        )
    }

    /// The OpenAPI document, as served at `/openapi.json` (`<name>-service openapi`).
    pub fn document(&self, service: &str) -> utoipa::openapi::OpenApi {
        document(
            service,
            (self.routes)().split_for_parts().1,
            self.description,
        )
    }
}

/// Answers each request in a server span (`POST /orders/{id}/cancel`, with OpenTelemetry's
/// HTTP attributes), a child of the caller's span when the request carries a `traceparent`;
/// what the request sends goes out in that span's trace ([`messaging::trace::within`]).
async fn traced(
    route: Option<axum::extract::MatchedPath>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument as _;
    use tracing::field::Empty;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = route.as_ref().map_or(path.as_str(), |route| route.as_str());
    let parent = request
        .headers()
        .get(messaging::header::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(messaging::TraceContext::parse);
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        url.path = path,
        http.response.status_code = Empty,
        trace_id = Empty,
        span_id = Empty,
        parent_span_id = Empty,
    );
    let context = messaging::trace::join(&span, parent);
    let response = messaging::trace::within(context, next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The OpenAPI document of `api`, as served at `/openapi.json`: OpenAPI 3.1, titled after the
/// service.
fn document(
    service: &str,
    mut api: utoipa::openapi::OpenApi,
    description: &str,
) -> utoipa::openapi::OpenApi {
    api.info.title = format!("FTGO {service} service");
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.description = Some(description.to_owned());
    api.info.license = None;
    api.info.contact = None;
    api
}
