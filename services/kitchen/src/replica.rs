//! The kitchen's replica of restaurant menus, kept from `ftgo.restaurant.events`: what
//! CreateTicket validates against, with no call to the restaurant service.
//!
//! A MenuRevised for a restaurant the replica does not know is applied anyway (the restaurant
//! is recorded without a name) rather than dead-lettered: the event carries the whole menu,
//! which is all the kitchen needs, and a RestaurantCreated arriving later (a replay, a
//! producer's bug) fills in the name. Each menu is stamped with its event's time, and an older
//! menu never replaces a newer one, so the replica converges in whatever order the events of a
//! restaurant are delivered, replayed or repeated.

use std::collections::HashSet;

use contracts::restaurant::events::{MenuRevised, RestaurantCreated};
use messaging::HandlerError;
use sqlx::PgConnection;
use uuid::Uuid;

/// RestaurantCreated: the restaurant and its first menu.
pub async fn restaurant_created(
    tx: &mut PgConnection,
    event: &RestaurantCreated,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO restaurants (id, name) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
    )
    .bind(event.restaurant_id)
    .bind(&event.name)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::transient)?;
    let items: Vec<(&str, &str)> = event
        .menu_items
        .iter()
        .map(|item| (item.id.as_str(), item.name.as_str()))
        .collect();
    replace_menu_if_newer(tx, event.restaurant_id, event.created_at, &items).await
}

/// MenuRevised: the whole new menu replaces the old one.
pub async fn menu_revised(tx: &mut PgConnection, event: &MenuRevised) -> Result<(), HandlerError> {
    sqlx::query("INSERT INTO restaurants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(event.restaurant_id)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    let items: Vec<(&str, &str)> = event
        .menu_items
        .iter()
        .map(|item| (item.id.as_str(), item.name.as_str()))
        .collect();
    replace_menu_if_newer(tx, event.restaurant_id, event.revised_at, &items).await
}

/// The ids of the items on `restaurant`'s menu; `None` for a restaurant the replica does not
/// know.
pub async fn menu_of(
    tx: &mut PgConnection,
    restaurant: Uuid,
) -> Result<Option<HashSet<String>>, HandlerError> {
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
        .bind(restaurant)
        .fetch_one(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    if !known {
        return Ok(None);
    }
    let items: Vec<String> =
        sqlx::query_scalar("SELECT item_id FROM menu_items WHERE restaurant_id = $1")
            .bind(restaurant)
            .fetch_all(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
    Ok(Some(items.into_iter().collect()))
}

/// Replaces the menu with `items` (id, name) unless the replica holds a newer one than
/// `as_of_ms` ([`service_kit::replica`]).
async fn replace_menu_if_newer(
    tx: &mut PgConnection,
    restaurant: Uuid,
    as_of_ms: i64,
    items: &[(&str, &str)],
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
    // ON CONFLICT: a menu listing an id twice keeps its first name rather than failing for good.
    for (id, name) in items {
        sqlx::query(
            "INSERT INTO menu_items (restaurant_id, item_id, name) VALUES ($1, $2, $3)
             ON CONFLICT (restaurant_id, item_id) DO NOTHING",
        )
        .bind(restaurant)
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    }
    Ok(())
}
