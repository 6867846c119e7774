//! The replica of restaurants and menus, from `ftgo.restaurant.events`: what CreateOrder is
//! validated and priced against, with no call to the restaurant service. Each menu is stamped
//! with its event's time and an older menu never replaces a newer one
//! ([`service_kit::replica`], the kitchen's rule too), so the replica converges in whatever
//! order a restaurant's events are delivered, replayed or repeated.

use contracts::restaurant::events::Event;
use messaging::HandlerError;
use sqlx::PgConnection;
use uuid::Uuid;

/// Applies a restaurant event to the replica.
pub async fn apply(tx: &mut PgConnection, event: Event) -> Result<(), HandlerError> {
    match event {
        Event::RestaurantCreated(created) => {
            sqlx::query(
                "INSERT INTO restaurants (id, name) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = now()",
            )
            .bind(created.restaurant_id)
            .bind(&created.name)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
            let items = created
                .menu_items
                .into_iter()
                .map(|i| (i.id, i.name, i.price.amount_minor, i.price.currency));
            replace_menu(tx, created.restaurant_id, created.created_at, items).await
        }
        Event::MenuRevised(revised) => {
            // A revision before the creation cannot happen (one key, one partition), but a
            // replica restored from a trimmed topic could see one: keep the menu anyway.
            sqlx::query(
                "INSERT INTO restaurants (id, name) VALUES ($1, '') ON CONFLICT DO NOTHING",
            )
            .bind(revised.restaurant_id)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
            let items = revised
                .menu_items
                .into_iter()
                .map(|i| (i.id, i.name, i.price.amount_minor, i.price.currency));
            replace_menu(tx, revised.restaurant_id, revised.revised_at, items).await
        }
    }
}

/// Replaces the menu with `items` (id, name, price, currency) unless the replica holds a
/// newer one than `as_of_ms`.
async fn replace_menu(
    tx: &mut PgConnection,
    restaurant: Uuid,
    as_of_ms: i64,
    items: impl Iterator<Item = (String, String, i64, String)>,
) -> Result<(), HandlerError> {
    if !service_kit::replica::claim_if_newer(tx, "restaurants", "menu_as_of", restaurant, as_of_ms)
        .await?
    {
        return Ok(());
    }
    sqlx::query("DELETE FROM menu_items WHERE restaurant_id = $1")
        .bind(restaurant)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    for (id, name, price_minor, currency) in items {
        sqlx::query(
            "INSERT INTO menu_items (restaurant_id, item_id, name, price_minor, currency)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (restaurant_id, item_id) DO UPDATE
             SET name = excluded.name, price_minor = excluded.price_minor,
                 currency = excluded.currency",
        )
        .bind(restaurant)
        .bind(&id)
        .bind(&name)
        .bind(price_minor)
        .bind(&currency)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    }
    Ok(())
}

/// A menu item as the replica knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
}

/// The restaurant's menu item `item`: `Ok(None)` for an unknown item, `Err` (outer `None`)
/// via [`restaurant_exists`] for an unknown restaurant.
pub async fn menu_item(
    tx: &mut PgConnection,
    restaurant: Uuid,
    item: &str,
) -> Result<Option<MenuItem>, HandlerError> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT name, price_minor, currency FROM menu_items
         WHERE restaurant_id = $1 AND item_id = $2",
    )
    .bind(restaurant)
    .bind(item)
    .fetch_optional(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    Ok(row.map(|(name, price_minor, currency)| MenuItem {
        name,
        price_minor,
        currency,
    }))
}

pub async fn restaurant_exists(
    tx: &mut PgConnection,
    restaurant: Uuid,
) -> Result<bool, HandlerError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
        .bind(restaurant)
        .fetch_one(&mut *tx)
        .await
        .map_err(HandlerError::transient)
}
