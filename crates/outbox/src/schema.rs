//! The tables, created in the schema first on the connection's search path (a service role's
//! own schema). Idempotent: every service runs it at start.

use sqlx::PgPool;

/// The outbox: messages waiting to be published, in the order they were appended.
///
/// - `position`: the append order, and the order of publication.
/// - `writer`: the appending transaction's id (`xid8`). The polling relay publishes a row only
///   when it is older than every transaction still open that has written to the outbox, so
///   such a transaction (whose rows may have lower positions) is never overtaken.
/// - `headers`: a JSON array of `[name, value]` pairs, in order: readable in `psql`, and the
///   same text in the table and in the replication stream.
pub const OUTBOX: &str = r"
CREATE TABLE IF NOT EXISTS outbox (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    text NOT NULL UNIQUE,
    topic         text NOT NULL,
    key           text,
    headers       jsonb NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    writer        xid8 NOT NULL DEFAULT pg_current_xact_id()
)";

/// Outbox rows that can never be published as they are (their topic does not exist, the
/// broker refuses them), moved aside by a relay with the reason. Later rows of the same key
/// wait until the row is retried or discarded ([`crate::failed`]): a key's order is never
/// broken to get past a bad row. They wait in the outbox (polling relay) or here, behind it
/// (log-tailing relay). `position` is the row's place in the outbox,
/// which a retry gives back to it.
pub const OUTBOX_FAILED: &str = r"
CREATE TABLE IF NOT EXISTS outbox_failed (
    position      bigint PRIMARY KEY,
    message_id    text NOT NULL UNIQUE,
    topic         text NOT NULL,
    key           text,
    headers       jsonb NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL,
    -- NULL for a row that failed; for a later row of its key that the log-tailing relay set
    -- aside to wait (it cannot leave it in the outbox: its stream has moved past it), the
    -- failed row's position.
    waiting_behind bigint
)";

/// The replication slots a log-tailing relay has made whole: every outbox row committed
/// before the slot's stream began was published (from the table) when the relay first used it.
/// A slot without a row here (new, made again after it was invalidated or dropped, or made by
/// someone else) gets its table published first.
pub const OUTBOX_SLOTS: &str = r"
CREATE TABLE IF NOT EXISTS outbox_slots (
    slot   text PRIMARY KEY,
    since  timestamptz NOT NULL DEFAULT now()
)";

const OUTBOX_FAILED_KEY_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS outbox_failed_key ON outbox_failed (key)";

/// The inbox: which messages each consumer group has handled, so a second delivery has no
/// second effect. Rows expire after the retention documented in docs/outbox.md.
///
/// `message_type` and `digest` (SHA-256 of the payload) tell a redelivery from another message
/// that reuses the id, which must not be dropped as a duplicate.
pub const INBOX: &str = r"
CREATE TABLE IF NOT EXISTS inbox (
    consumer_group text NOT NULL,
    message_id     text NOT NULL,
    handled_at     timestamptz NOT NULL DEFAULT now(),
    message_type   text,
    digest         bytea,
    PRIMARY KEY (consumer_group, message_id)
)";

/// Inboxes made before the type and digest were kept get their columns (checked first:
/// `ALTER TABLE` locks the table even when there is nothing to do).
const INBOX_UPGRADE: &str = r"
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_attribute WHERE attrelid = 'inbox'::regclass AND attname = 'digest'
    ) THEN
        ALTER TABLE inbox ADD COLUMN message_type text, ADD COLUMN digest bytea;
    END IF;
END
$$";

/// The outbox is a queue: every row is deleted within milliseconds of its insert. Vacuumed
/// after every 1,000 deleted rows without the cost-based pauses, instead of after 20 % of the
/// table (as PostgreSQL does by default), so its heap and primary key stay a few pages.
const OUTBOX_VACUUM: &str = "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)";

const INBOX_EXPIRY_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS inbox_handled_at ON inbox (handled_at)";

/// Every transaction that appends to the outbox notifies the schema's channel (once, at
/// commit; PostgreSQL folds a transaction's identical notifications), so an idle polling relay
/// wakes at once instead of polling.
const NOTIFY_FUNCTION: &str = r"
CREATE OR REPLACE FUNCTION outbox_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ftgo_outbox.' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END $$";

const NOTIFY_TRIGGER: [&str; 2] = [
    "DROP TRIGGER IF EXISTS outbox_appended ON outbox",
    "CREATE TRIGGER outbox_appended AFTER INSERT ON outbox
     FOR EACH STATEMENT EXECUTE FUNCTION outbox_appended()",
];

/// The channel the outbox of the connection's schema notifies (`ftgo_outbox.<schema>`): each
/// service's relay hears its own service's appends only.
pub async fn notify_channel(pool: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT 'ftgo_outbox.' || current_schema()")
        .fetch_one(pool)
        .await
}

/// Creates the outbox, the table of its failed rows, the inbox and the saga table if they do not exist. Instances of a
/// service that start at once on a new database take turns (an advisory lock): concurrent
/// `CREATE TABLE IF NOT EXISTS` of one table can fail on PostgreSQL's catalog.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ftgo.outbox.install', 0))")
        .execute(&mut *tx)
        .await?;
    for statement in STATEMENTS {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// What [`install`] runs, in order.
const STATEMENTS: [&str; 16] = [
    OUTBOX,
    OUTBOX_VACUUM,
    OUTBOX_FAILED,
    OUTBOX_FAILED_KEY_INDEX,
    OUTBOX_SLOTS,
    INBOX,
    INBOX_UPGRADE,
    INBOX_EXPIRY_INDEX,
    // The outbox's locks before the saga table's, as the backlog watcher of a running
    // instance takes them (`service_kit`): the other order deadlocks with it.
    NOTIFY_FUNCTION,
    NOTIFY_TRIGGER[0],
    NOTIFY_TRIGGER[1],
    crate::saga::SAGAS,
    crate::saga::SAGAS_UPGRADE,
    crate::saga::SAGA_INDEXES[0],
    crate::saga::SAGA_INDEXES[1],
    crate::saga::SAGA_INDEXES[2],
];

/// [`install`]'s statements as one SQL script (for `psql`: `ftgo outbox ddl`), creating the
/// tables in the schema first on the search path.
pub fn ddl() -> String {
    STATEMENTS
        .iter()
        .map(|statement| format!("{};\n", statement.trim()))
        .collect()
}
