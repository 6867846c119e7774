//! The restaurant service's REST API for other applications: `POST /restaurants` and
//! `GET /restaurants/{restaurantId}`, answered from this service's database alone.
//!
//! A new restaurant is written with its menu and its RestaurantCreated (outbox) in one
//! transaction, as the CreateRestaurant command does on Kafka: the order and kitchen services
//! learn of it from the event, so it can take orders once their replicas have it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use contracts::restaurant::commands::{CreateRestaurant, create_restaurant};
use serde::{Deserialize, Serialize};
use service_kit::api::{self, Address, Answer, Body, Id, Money, Problem, Rest, RestApi};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::handlers::RestaurantCommands;

const DESCRIPTION: &str = "Restaurants for other applications. Answered from the restaurant \
service's own database: a new restaurant and its menu are written with their RestaurantCreated \
event, from which the order and kitchen services keep their replicas. Errors are RFC 9457 \
problem details. A POST with an Idempotency-Key header (or a client-chosen restaurantId) is safe \
to retry: the first answer is given again.";

/// The API, declared once: the service serves it, `restaurant-service openapi` prints its document.
pub const API: RestApi<RestaurantCommands> = RestApi {
    routes,
    description: DESCRIPTION,
};

fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
}

type Api = Rest<RestaurantCommands>;

/// What `POST /restaurants` takes: the CreateRestaurant command's fields, in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRestaurant {
    /// The restaurant's id, if the client chooses it (then a retry with the same id and body
    /// gets the same answer); else the service picks one.
    #[serde(default)]
    pub restaurant_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub address: Address,
    /// The menu: each item's id once.
    #[schema(max_items = 500)]
    pub menu_items: Vec<MenuItem>,
}

/// One item of a menu.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MenuItem {
    /// The restaurant's own id of the item (what an order's line names).
    #[schema(min_length = 1, max_length = 100, example = "samosa")]
    pub id: String,
    #[schema(min_length = 1, max_length = 200, example = "Samosa")]
    pub name: String,
    pub price: Money,
}

/// A restaurant as the restaurant service knows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restaurant {
    pub restaurant_id: Uuid,
    pub name: String,
    pub address: Address,
    pub menu_items: Vec<MenuItem>,
    /// 1, then one more for every revision of the menu (ReviseMenu).
    pub menu_version: i32,
    /// Where to read it again.
    pub href: String,
}

fn href(restaurant: Uuid) -> String {
    format!("/restaurants/{restaurant}")
}

impl NewRestaurant {
    fn check(&self) -> Result<(), Problem> {
        api::required_text("name", &self.name, 200)?;
        self.address.check("address")?;
        if self.menu_items.len() > 500 {
            return Err(api::invalid("a menu has at most 500 items"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, item) in self.menu_items.iter().enumerate() {
            api::required_text(&format!("menuItems[{i}].id"), &item.id, 100)?;
            api::required_text(&format!("menuItems[{i}].name"), &item.name, 200)?;
            item.price.check(&format!("menuItems[{i}].price"))?;
            if !ids.insert(item.id.as_str()) {
                return Err(api::invalid(format!(
                    "menuItems[{i}].id {:?} is on the menu twice",
                    item.id
                )));
            }
        }
        Ok(())
    }

    fn command(&self, restaurant_id: Uuid) -> CreateRestaurant {
        let a = &self.address;
        CreateRestaurant {
            restaurant_id,
            name: self.name.clone(),
            address: create_restaurant::Address {
                street1: a.street1.clone(),
                street2: a.street2.clone(),
                city: a.city.clone(),
                state: a.state.clone(),
                zip: a.zip.clone(),
            },
            menu_items: self
                .menu_items
                .iter()
                .map(|item| create_restaurant::MenuItem {
                    id: item.id.clone(),
                    name: item.name.clone(),
                    price: create_restaurant::Money {
                        amount_minor: item.price.amount_minor,
                        currency: item.price.currency.clone(),
                    },
                })
                .collect(),
        }
    }
}

/// Registers a restaurant and its menu, with the RestaurantCreated that tells the order and
/// kitchen services.
#[utoipa::path(
    post,
    path = "/restaurants",
    operation_id = "createRestaurant",
    tag = "restaurants",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body get the first answer again; the same key with another body is refused (422). 1 to 255 visible ASCII characters."),
    ),
    request_body = NewRestaurant,
    responses(
        (status = 201, description = "Created: read it at Location", body = Restaurant,
            headers(("Location" = String, description = "The restaurant's URL"))),
        (status = 400, description = "Not JSON, or a bad Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A restaurant with this restaurantId exists (restaurant-exists)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a restaurant this service takes (a missing name, an item twice on the menu, a negative price), or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create(
    State(api): State<Api>,
    headers: HeaderMap,
    Body(restaurant): Body<NewRestaurant>,
) -> Result<Answer<serde_json::Value>, Problem> {
    restaurant.check()?;
    let key = api::creation_key(&headers, "restaurant", restaurant.restaurant_id)?;
    let request = serde_json::to_value(&restaurant).map_err(Problem::unavailable)?;
    api::once(
        &api.pool,
        key.as_deref(),
        "POST /restaurants",
        &request,
        async |tx| {
            let id = restaurant.restaurant_id.unwrap_or_else(Uuid::now_v7);
            api.handler
                .create(tx, None, restaurant.command(id))
                .await
                .map_err(|error| api::refusal(error).at(href(id)))?;
            let view = read(tx, id)
                .await?
                .ok_or_else(|| Problem::unavailable(format!("restaurant {id} is not there")))?;
            Answer::json(StatusCode::CREATED, href(id), &view)
        },
    )
    .await
}

/// Reads a restaurant and its menu from the restaurant service's database.
#[utoipa::path(
    get,
    path = "/restaurants/{restaurantId}",
    operation_id = "getRestaurant",
    tag = "restaurants",
    params(("restaurantId" = Uuid, Path, description = "The restaurant's id")),
    responses(
        (status = 200, description = "The restaurant and its menu", body = Restaurant),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such restaurant", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The service's database does not answer: retry", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn show(
    State(api): State<Api>,
    Id(restaurant_id): Id,
) -> Result<axum::Json<Restaurant>, Problem> {
    let mut connection = api.pool.acquire().await?;
    read(&mut connection, restaurant_id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Problem::not_found("restaurant", href(restaurant_id)))
}

/// The restaurant `id` as the API shows it.
async fn read(tx: &mut PgConnection, id: Uuid) -> Result<Option<Restaurant>, Problem> {
    let row: Option<(String, serde_json::Value, i32)> =
        sqlx::query_as("SELECT name, address, menu_version FROM restaurants WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((name, address, menu_version)) = row else {
        return Ok(None);
    };
    let items: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT item_id, name, price_minor, currency FROM menu_items
         WHERE restaurant_id = $1 ORDER BY item_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Some(Restaurant {
        restaurant_id: id,
        name,
        address: serde_json::from_value(address).map_err(Problem::unavailable)?,
        menu_items: items
            .into_iter()
            .map(|(id, name, amount_minor, currency)| MenuItem {
                id,
                name,
                price: Money {
                    amount_minor,
                    currency,
                },
            })
            .collect(),
        menu_version,
        href: href(id),
    }))
}
