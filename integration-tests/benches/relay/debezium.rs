//! The relay benchmark's peer: Debezium's PostgreSQL connector with its outbox event router,
//! run by Kafka Connect standalone (`deploy/local/kafka-connect`: the broker's own
//! connect-runtime, Debezium from Maven Central), reading the same outbox table on the same
//! PostgreSQL and publishing to the same broker. It is configured as its documentation shows
//! for an outbox: `pgoutput`, a publication of the outbox table only, no snapshot, the event
//! router taking the topic, key, id and payload from our columns and carrying our `headers`
//! column as one header; Connect's producer keeps its defaults (`acks=all`, one request in
//! flight per connection, no transactions).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::PgPool;
use test_support::Platform;

/// The header the event router carries our `headers` column in (its JSON text: an array of
/// `[name, value]` pairs).
pub const HEADERS: &str = "ftgo_headers";
const SLOT: &str = "bench_debezium_slot";
const PUBLICATION: &str = "bench_debezium_publication";

/// A running Kafka Connect worker with the connector.
pub struct Debezium {
    child: Child,
    dir: PathBuf,
}

fn connect_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/kafka-connect")
}

impl Debezium {
    /// Writes the worker's and the connector's settings under `dir` for the outbox of
    /// `database_url` (as its owner, who may replicate), once.
    pub fn configure(dir: &Path, database_url: &str) -> Result<()> {
        let url = url::Url::parse(database_url).context("the database URL")?;
        let database = url.path().trim_start_matches('/');
        std::fs::create_dir_all(dir)?;
        let worker = format!(
            "bootstrap.servers={bootstrap}\n\
             offset.storage.file.filename={offsets}\n\
             offset.flush.interval.ms=1000\n\
             listeners=http://127.0.0.1:0\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n",
            bootstrap = Platform::from_env().bootstrap_servers,
            offsets = dir.join("offsets").display(),
        );
        let connector = format!(
            "name=bench-debezium\n\
             connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             tasks.max=1\n\
             plugin.name=pgoutput\n\
             database.hostname={host}\n\
             database.port={port}\n\
             database.user={user}\n\
             database.password={password}\n\
             database.dbname={database}\n\
             topic.prefix=bench-debezium\n\
             slot.name={SLOT}\n\
             publication.name={PUBLICATION}\n\
             publication.autocreate.mode=filtered\n\
             table.include.list=public.outbox\n\
             snapshot.mode=no_data\n\
             tombstones.on.delete=false\n\
             binary.handling.mode=bytes\n\
             transforms=outbox\n\
             transforms.outbox.type=io.debezium.transforms.outbox.EventRouter\n\
             transforms.outbox.table.field.event.id=message_id\n\
             transforms.outbox.table.field.event.key=key\n\
             transforms.outbox.table.field.event.payload=payload\n\
             transforms.outbox.route.by.field=topic\n\
             transforms.outbox.route.topic.replacement=${{routedByValue}}\n\
             transforms.outbox.table.fields.additional.placement=headers:header:{HEADERS}\n",
            host = url.host_str().unwrap_or("127.0.0.1"),
            port = url.port().unwrap_or(5432),
            user = url.username(),
            password = url.password().unwrap_or_default(),
        );
        write_private(&dir.join("worker.properties"), &worker)?;
        write_private(&dir.join("connector.properties"), &connector)?;
        Ok(())
    }

    /// Starts the worker configured under `dir` and waits until its connector streams from
    /// its slot (made, with its publication, on the first start).
    pub async fn start(dir: &Path, pool: &PgPool) -> Result<Self> {
        let mut debezium = Self::spawn(dir)?;
        debezium.streaming(pool).await?;
        Ok(debezium)
    }

    /// Starts the worker configured under `dir`.
    pub fn spawn(dir: &Path) -> Result<Self> {
        let log = std::fs::File::create(dir.join("connect.log"))?;
        let child = Command::new(connect_script())
            .arg(dir.join("worker.properties"))
            .arg(dir.join("connector.properties"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting deploy/local/kafka-connect")?;
        Ok(Self {
            child,
            dir: dir.to_owned(),
        })
    }

    /// Waits until the connector streams from its slot.
    async fn streaming(&mut self, pool: &PgPool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Kafka Connect ended ({status}): {}", self.log_tail());
            }
            if slot_streaming(pool).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Debezium did not stream from its slot within 180 s: {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("connect.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the worker as an operator would (SIGTERM: it flushes and stores its offsets),
    /// and waits until its slot is released.
    pub async fn stop(mut self, pool: &PgPool) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while slot_active(pool).await? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Drops the connector's slot and publication.
    pub async fn clean_up(pool: &PgPool) -> Result<()> {
        sqlx::query(
            "SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(SLOT)
        .execute(pool)
        .await?;
        sqlx::query(&format!("DROP PUBLICATION IF EXISTS {PUBLICATION}"))
            .execute(pool)
            .await?;
        Ok(())
    }
}

impl Drop for Debezium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a replication connection streams the connector's slot. (The slot's `active` flag
/// alone is also set while the slot is being made, before the connector reads the table: a
/// benchmark writing then would race its start; see `TestDatabase::wait_until_streaming`.)
async fn slot_streaming(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_replication_slots s
                        JOIN pg_stat_replication r ON r.pid = s.active_pid
                        WHERE s.slot_name = $1)",
    )
    .bind(SLOT)
    .fetch_one(pool)
    .await?)
}

async fn slot_active(pool: &PgPool) -> Result<bool> {
    let active: Option<bool> =
        sqlx::query_scalar("SELECT active FROM pg_replication_slots WHERE slot_name = $1")
            .bind(SLOT)
            .fetch_optional(pool)
            .await?;
    Ok(active == Some(true))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The CPU time process `pid` has used so far (user and system, all its threads).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    static TICKS: OnceLock<f64> = OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // After the command's name (in parentheses, which may hold spaces): the state is the
    // third field, utime the 14th and stime the 15th.
    let rest = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<f64> {
        Ok(fields
            .get(n - 3)
            .context("a short /proc stat line")?
            .parse::<f64>()?)
    };
    Ok(Duration::from_secs_f64((field(14)? + field(15)?) / ticks))
}
