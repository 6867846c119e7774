//! The restaurant commands: each changes the service's tables and appends the event that tells
//! others, in the transaction `Idempotent` opened.

use contracts::now_ms;
use contracts::restaurant::commands::{Command, CreateRestaurant, ReviseMenu};
use contracts::restaurant::events::{MenuRevised, RestaurantCreated};
use messaging::{HandlerError, Reason, Received};
use outbox::TransactionalHandler;
use serde::Serialize;
use serde::de::DeserializeOwned;
use service_kit::Outgoing;
use sqlx::PgConnection;

/// Handles `ftgo.restaurant.commands`.
#[derive(Debug, Clone)]
pub struct RestaurantCommands {
    outgoing: Outgoing,
}

impl RestaurantCommands {
    pub fn new(outgoing: Outgoing) -> Self {
        Self { outgoing }
    }

    /// Registers the restaurant and its menu and tells others (RestaurantCreated); the Kafka
    /// path and the REST API (`cause: None`) share it. An id taken already is refused
    /// (`restaurant-exists`).
    pub async fn create(
        &self,
        tx: &mut PgConnection,
        cause: Option<&Received>,
        command: CreateRestaurant,
    ) -> Result<(), HandlerError> {
        let address = serde_json::to_string(&command.address)
            .map_err(|e| HandlerError::permanent(Reason::InvalidContent, e))?;
        let inserted = sqlx::query(
            "INSERT INTO restaurants (id, name, address) VALUES ($1, $2, $3::jsonb)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(command.restaurant_id)
        .bind(&command.name)
        .bind(address)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        if inserted.rows_affected() == 0 {
            return Err(HandlerError::permanent(
                Reason::RestaurantExists,
                format!("restaurant {} exists already", command.restaurant_id),
            ));
        }
        replace_menu(tx, command.restaurant_id, &command.menu_items).await?;
        let event = RestaurantCreated {
            restaurant_id: command.restaurant_id,
            name: command.name,
            address: same_shape(&command.address)?,
            menu_items: same_shape(&command.menu_items)?,
            created_at: now_ms(),
        };
        self.outgoing.event(tx, cause, &event).await
    }

    async fn revise(
        &self,
        tx: &mut PgConnection,
        cause: &Received,
        command: ReviseMenu,
    ) -> Result<(), HandlerError> {
        let updated =
            sqlx::query("UPDATE restaurants SET menu_version = menu_version + 1 WHERE id = $1")
                .bind(command.restaurant_id)
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::transient)?;
        if updated.rows_affected() == 0 {
            return Err(HandlerError::permanent(
                Reason::UnknownRestaurant,
                format!("no restaurant {}", command.restaurant_id),
            ));
        }
        replace_menu(tx, command.restaurant_id, &command.menu_items).await?;
        let event = MenuRevised {
            restaurant_id: command.restaurant_id,
            menu_items: same_shape(&command.menu_items)?,
            revised_at: now_ms(),
        };
        self.outgoing.event(tx, Some(cause), &event).await
    }
}

impl TransactionalHandler<Command> for RestaurantCommands {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        message: &Received,
        command: Command,
    ) -> Result<(), HandlerError> {
        match command {
            Command::CreateRestaurant(create) => self.create(tx, Some(message), create).await,
            Command::ReviseMenu(revise) => self.revise(tx, message, revise).await,
        }
    }
}

/// The menu's items, as `items` says (the revision replaces them all).
async fn replace_menu<I: Serialize>(
    tx: &mut PgConnection,
    restaurant: uuid::Uuid,
    items: &[I],
) -> Result<(), HandlerError> {
    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
        name: String,
        price: Price,
    }
    #[derive(serde::Deserialize)]
    struct Price {
        #[serde(rename = "amountMinor")]
        amount_minor: i64,
        currency: String,
    }
    // Checked before anything is written: a menu that can never be stored is refused for good
    // (dead-lettered `invalid-content` at once), not retried against the primary key.
    let items: Vec<Item> = items.iter().map(same_shape).collect::<Result<_, _>>()?;
    let mut ids = std::collections::HashSet::new();
    for item in &items {
        if item.price.amount_minor < 0 {
            return Err(HandlerError::permanent(
                Reason::InvalidContent,
                format!("menu item {} has a negative price", item.id),
            ));
        }
        if !ids.insert(item.id.as_str()) {
            return Err(HandlerError::permanent(
                Reason::InvalidContent,
                format!("menu item {} is on the menu twice", item.id),
            ));
        }
    }
    sqlx::query("DELETE FROM menu_items WHERE restaurant_id = $1")
        .bind(restaurant)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    for item in &items {
        sqlx::query(
            "INSERT INTO menu_items (restaurant_id, item_id, name, price_minor, currency)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(restaurant)
        .bind(&item.id)
        .bind(&item.name)
        .bind(item.price.amount_minor)
        .bind(&item.price.currency)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
    }
    Ok(())
}

/// The command's nested types and the event's are generated apart but have the same fields:
/// one becomes the other through their serde form.
fn same_shape<A: Serialize, B: DeserializeOwned>(a: &A) -> Result<B, HandlerError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| HandlerError::permanent(Reason::HandlerFailed, e))
}
