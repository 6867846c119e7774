//! One active relay per service: the instances of a service share one outbox, and only the one
//! holding the service's advisory lock relays it; the others stand by and take over within a
//! second of the leader's session ending (its process died, its connection broke, it stopped).
//!
//! Two relays over one outbox would still be correct (the claims skip each other's rows and
//! keys), but they would compete for the same rows and reorder nothing: one is enough, and
//! leadership makes the standby's cost one query a second.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// How often a standby tries to become the leader, and the leader checks it still is.
pub const LEADERSHIP_CHECK: Duration = Duration::from_secs(1);

/// The advisory lock key of `name` (`relay:<service>`), the same in every instance.
fn lock_key(name: &str) -> String {
    format!("ftgo.outbox.{name}")
}

/// Runs `lead` whenever this instance holds the lock `name`, until `shutdown`. `lead` gets a
/// token that is cancelled when leadership is lost (or at shutdown) and must return then.
/// Returns what the runs of `lead` returned, summed.
pub async fn while_leader<F, Fut>(
    pool: PgPool,
    name: &str,
    shutdown: CancellationToken,
    lead: F,
) -> u64
where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = u64>,
{
    let key = lock_key(name);
    let mut total = 0;
    while !shutdown.is_cancelled() {
        match try_lock(&pool, &key).await {
            Ok(Some(mut connection)) => {
                tracing::info!(lock = key, "leading: this instance relays the outbox");
                let leading = shutdown.child_token();
                let watch = async {
                    loop {
                        tokio::select! {
                            () = leading.cancelled() => break,
                            () = tokio::time::sleep(LEADERSHIP_CHECK) => {}
                        }
                        if let Err(error) = sqlx::query("SELECT 1").execute(&mut connection).await {
                            tracing::warn!(lock = key, %error, "lost the leadership connection");
                            leading.cancel();
                            break;
                        }
                    }
                };
                let (published, ()) = tokio::join!(lead(leading.clone()), watch);
                total += published;
                // Closing the session releases the lock; a broken one is gone already.
                let _ = connection.close().await;
                if !shutdown.is_cancelled() {
                    tracing::info!(lock = key, "no longer leading");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(lock = key, %error, "cannot reach the database to lead"),
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(LEADERSHIP_CHECK) => {}
        }
    }
    total
}

/// A connection of its own that holds the session-level lock, or `None` when another session
/// holds it.
async fn try_lock(pool: &PgPool, key: &str) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(&mut connection)
        .await?;
    if locked {
        Ok(Some(connection))
    } else {
        let _ = connection.close().await;
        Ok(None)
    }
}
