//! Which outbox relay a service's leader runs, and the names the log-tailing one uses
//! ([`crate::settings::RelayKind`], `FTGO_RELAY`).
//!
//! - The **publication** (the outbox's inserts) is per service, `ftgo_<service>_outbox`:
//!   publications live in a database, and the services share one (each in its schema). It is
//!   made by `<name>-service migrate`, as the schema's owner: a publication needs its table's
//!   owner (and CREATE on the database), which the runtime role is not.
//! - The **slot** is per group, `ftgo_relay_<group>` (`ftgo_relay_delivery_service`): slots are
//!   the cluster's, and tests run a service in a group of their own on a database of their own.
//!   The runtime role makes it (it needs the REPLICATION attribute).
//! - A **polling** leader that finds its service's slot (a tailing relay ran before it) drops
//!   it, or it would keep WAL forever; only a role with REPLICATION may, so otherwise it says
//!   what an administrator must run. Safe: only the leader relays, and the leader is this
//!   instance (docs/operations.md, "Switching a service's relay").

use outbox::TailingSettings;
use sqlx::PgPool;

use crate::settings::{Settings, SettingsError};

/// The publication of `service`'s outbox.
pub fn publication(service: &str) -> String {
    format!("ftgo_{}_outbox", identifier(service))
}

/// The replication slot of `group`'s tailing relay.
pub fn slot(group: &str) -> String {
    format!("ftgo_relay_{}", identifier(group))
}

/// `name` as a PostgreSQL identifier of lower-case letters, digits and `_` (the names a slot
/// may have); slot names are limited to 63 bytes, so a long group keeps its end.
fn identifier(name: &str) -> String {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let room = 63 - "ftgo_relay_".len();
    mapped[mapped.len().saturating_sub(room)..].to_owned()
}

/// The tailing relay's settings for `service` in `group`: the runtime role's connection.
pub fn tailing_settings(
    settings: &Settings,
    service: &str,
    group: &str,
) -> Result<TailingSettings, SettingsError> {
    use secrecy::ExposeSecret;
    let url = settings.database.url_with_password()?;
    Ok(TailingSettings::new(
        url.expose_secret(),
        &slot(group),
        &publication(service),
    ))
}

/// Makes `service`'s publication when it is missing (`migrate`, as the schema's owner).
pub async fn create_publication(pool: &PgPool, service: &str) -> Result<(), sqlx::Error> {
    let name = publication(service);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)")
            .bind(&name)
            .fetch_one(pool)
            .await?;
    if !exists {
        sqlx::query(&format!(
            "CREATE PUBLICATION {name} FOR TABLE outbox WITH (publish = 'insert')"
        ))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// A polling leader's housekeeping: drops the slot a tailing relay of `group` left, so it stops
/// holding back WAL. `Ok(true)` when there was one and it is gone.
pub async fn drop_left_slot(pool: &PgPool, group: &str) -> Result<bool, sqlx::Error> {
    let slot = slot(group);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)")
            .bind(&slot)
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(false);
    }
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(&slot)
        .execute(pool)
        .await?;
    // A slot made later starts empty: its relay must publish the table's rows first.
    sqlx::query("DELETE FROM outbox_slots WHERE slot = $1")
        .bind(&slot)
        .execute(pool)
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers_after_the_service_and_the_group() {
        assert_eq!(publication("delivery"), "ftgo_delivery_outbox");
        assert_eq!(slot("delivery-service"), "ftgo_relay_delivery_service");
        assert_eq!(slot("Kitchen-Service.v2"), "ftgo_relay_kitchen_service_v2");
        let long = slot(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        assert!(
            TailingSettings::new("postgres://a@b/c", &long, "p")
                .validate()
                .is_ok()
        );
    }
}
