//! One active relay per service: the instances of a service share one outbox, and only the one
//! holding the service's advisory lock relays it; the others stand by and take over within a
//! second of the leader's session ending (its process died, its connection broke, it stopped).
//!
//! A leader that is alive but silent (paused by SIGSTOP or a long GC, cut off from the
//! database) must not keep the lock: PostgreSQL would hold its session, and with it the lock,
//! until TCP gave up, for hours. So the lock's session ends on the server after
//! [`LEADERSHIP_TIMEOUT`] without a ping (`idle_session_timeout`; the leader pings every
//! [`LEADERSHIP_CHECK`]), and a standby leads a second later. When the old leader wakes, its
//! next ping fails and it stops; a batch it was publishing meanwhile cannot land after the new
//! leader's: the new leader's producer fenced its Kafka transactional id (the relay's
//! transaction is aborted), and its claim's session ended too (the relay's connections have
//! `idle_in_transaction_session_timeout`).
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

/// How long the leader's lock outlives its last ping: the server ends a lock session idle
/// this long (a paused or cut-off leader), so a standby takes over within this plus
/// [`LEADERSHIP_CHECK`]. Pings every second leave a healthy but busy leader four of slack.
pub const LEADERSHIP_TIMEOUT: Duration = Duration::from_secs(5);

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
                // A `lead` that ends by itself (its producer was fenced, say) gives the
                // leadership up too: the next round tries again with a new one.
                let leader = async {
                    let published = lead(leading.clone()).await;
                    leading.cancel();
                    published
                };
                let (published, ()) = tokio::join!(leader, watch);
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
    // The session (and the lock) ends on the server when the leader stops pinging.
    if let Err(error) = sqlx::query(&format!(
        "SET idle_session_timeout = {}",
        LEADERSHIP_TIMEOUT.as_millis()
    ))
    .execute(&mut connection)
    .await
    {
        tracing::warn!(%error, "cannot bound the leadership session (PostgreSQL 14 or newer \
            has idle_session_timeout): a paused leader keeps the lock until its connection ends");
    }
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
