//! A service's settings: defaults that fit the local platform, overridden by `FTGO_*`
//! environment variables, where `__` separates levels (`FTGO_KAFKA__BOOTSTRAP_SERVERS`,
//! `FTGO_DATABASE__URL`, `FTGO_HTTP__PORT`), the names `deploy/local/env` exports.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Serialized};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    /// This instance's static member id in its consumer group
    /// (`FTGO_KAFKA__GROUP_INSTANCE_ID`, Kafka's `group.instance.id`): a member that comes
    /// back under the same id within the session timeout gets its partitions back without a
    /// rebalance. It must be unique among the group's live members and survive a restart (a
    /// StatefulSet's pod name; deploy/k8s). Unset: a dynamic member.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// How long the group waits for a silent member (`FTGO_KAFKA__SESSION_TIMEOUT_MS`); a
    /// static member should be given longer than it takes to restart.
    pub session_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaRegistrySettings {
    /// The Confluent-compatible API's base URL.
    pub url: String,
}

/// Where the service's database is, as two roles: the runtime role the service runs as (DML
/// on its own schema only) and the migration role that owns the schema
/// (`<name>-service migrate`). A password comes in the URL or, as containers mount secrets,
/// from a file.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://role[:password]@host:port/database` of the runtime role
    /// (`FTGO_<SERVICE>_DATABASE__URL`): a secret, as it may hold the password.
    pub url: SecretString,
    /// A file holding the runtime role's password (`..._DATABASE__PASSWORD_FILE`); it wins over
    /// the URL's.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The migration role's URL (`FTGO_<SERVICE>_DATABASE__MIGRATION_URL`), for `migrate`.
    #[serde(default)]
    pub migration_url: Option<SecretString>,
    /// A file holding the migration role's password (`..._DATABASE__MIGRATION_PASSWORD_FILE`).
    #[serde(default)]
    pub migration_password_file: Option<PathBuf>,
}

impl DatabaseSettings {
    /// How the service connects at run time.
    pub fn options(&self) -> Result<PgConnectOptions, SettingsError> {
        connect_options(&self.url, self.password_file.as_deref(), "url")
    }

    /// The runtime role's URL with its password in it (from `password_file` when given): the
    /// log-tailing relay's replication connection, which takes a URL.
    pub fn url_with_password(&self) -> Result<SecretString, SettingsError> {
        let invalid = || {
            SettingsError::Invalid(
                "database.url must be a postgres://role@host:port/database URL".into(),
            )
        };
        let mut url = url::Url::parse(self.url.expose_secret()).map_err(|_| invalid())?;
        if let Some(path) = self.password_file.as_deref() {
            let password = read_password(path)?;
            url.set_password(Some(&password)).map_err(|()| invalid())?;
        }
        Ok(SecretString::from(url.to_string()))
    }

    /// How `migrate` connects: as the migration role, which must be set.
    pub fn migration_options(&self) -> Result<PgConnectOptions, SettingsError> {
        let url = self.migration_url.as_ref().ok_or_else(|| {
            SettingsError::Invalid(
                "database.migration_url is not set: FTGO_<SERVICE>_DATABASE__MIGRATION_URL or \
                 FTGO_DATABASE__MIGRATION_URL, the role that owns the service's schema \
                 (deploy/local/env exports the local platform's)"
                    .into(),
            )
        })?;
        connect_options(
            url,
            self.migration_password_file.as_deref(),
            "migration_url",
        )
    }
}

/// `url` parsed, with the password in `password_file` if one is given.
fn connect_options(
    url: &SecretString,
    password_file: Option<&Path>,
    name: &str,
) -> Result<PgConnectOptions, SettingsError> {
    let invalid = || {
        SettingsError::Invalid(format!(
            "database.{name} must be a postgres://role@host:port/database URL"
        ))
    };
    if !url.expose_secret().starts_with("postgres") {
        return Err(invalid());
    }
    let options: PgConnectOptions = url.expose_secret().parse().map_err(|_| invalid())?;
    let Some(path) = password_file else {
        return Ok(options);
    };
    Ok(options.password(&read_password(path)?))
}

/// A password file's text, without its final newline.
fn read_password(path: &Path) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        SettingsError::Invalid(format!(
            "the database password file {} cannot be read: {error}",
            path.display()
        ))
    })?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

/// Which outbox relay the service's leader runs (`FTGO_RELAY`, or `FTGO_<SERVICE>_RELAY` for
/// one service of a shared shell): docs/outbox.md has both, docs/operations.md how to switch a
/// running service from one to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayKind {
    /// Claims rows from the outbox table (`outbox::PollingRelay`): needs nothing but the
    /// runtime role's rights.
    #[default]
    Polling,
    /// Reads the outbox's inserts from the write-ahead log (`outbox::TailingRelay`): the
    /// runtime role needs the REPLICATION attribute, and `migrate` makes the publication
    /// (its owner needs CREATE on the database); the slot is named after the group.
    Tailing,
}

impl RelayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayKind::Polling => "polling",
            RelayKind::Tailing => "tailing",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSettings {
    /// The address to listen on (`FTGO_HTTP__HOST`): `127.0.0.1` by default, so health and
    /// metrics are this machine's only; `0.0.0.0` where something else must reach them (a
    /// pod's probes and scraper: the Kubernetes manifests set it).
    pub host: std::net::IpAddr,
    /// Liveness, readiness and metrics; 0 picks a free port (tests).
    pub port: u16,
    /// How many ports to try (`FTGO_HTTP__PORT_ATTEMPTS`): `port`, then `port + 10`,
    /// `port + 20`, ... until one is free, the way deploy/local/services numbers a service's
    /// instances. Replicas that share the host's network (compose.yaml) set it above 1.
    pub port_attempts: u16,
    /// Where to write the port taken (`FTGO_HTTP__PORT_FILE`), for `<name>-service health`.
    #[serde(default)]
    pub port_file: Option<std::path::PathBuf>,
}

/// The distance between the HTTP ports of a service's instances (see
/// [`HttpSettings::port_attempts`]).
pub const INSTANCE_PORT_STEP: u16 = 10;

impl HttpSettings {
    /// The ports to try, in order.
    pub fn candidate_ports(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.port_attempts.max(1)).map_while(|i| {
            if self.port == 0 && i > 0 {
                return None;
            }
            self.port.checked_add(i.checked_mul(INSTANCE_PORT_STEP)?)
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SagaSettings {
    /// How long a saga waits for a participant's reply before it treats the step as failed
    /// (`FTGO_SAGA__REPLY_TIMEOUT_MS`). Only saga orchestrators (the order service) use it.
    pub reply_timeout_ms: u64,
    /// How many times in a row a saga may send a command again after its deadline before
    /// it stalls for an operator (`FTGO_SAGA__MAX_RESENDS`; see
    /// `outbox::SagaManager::with_max_resends`).
    pub max_resends: u32,
}

impl SagaSettings {
    pub fn reply_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.reply_timeout_ms)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxSettings {
    /// How long a handled message's id is remembered (`FTGO_INBOX__RETENTION_SECS`; 8 days by
    /// default). Must outlast every way a message can come again, the longest being a group
    /// reset to the earliest offset: at least the longest retention of the topics the service
    /// reads (7 days, deploy/topics.toml) plus a margin. See docs/outbox.md.
    pub retention_secs: u64,
    /// How often the relay's leader deletes what is older (`FTGO_INBOX__EXPIRE_EVERY_SECS`).
    pub expire_every_secs: u64,
}

impl InboxSettings {
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retention_secs)
    }

    pub fn expire_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.expire_every_secs)
    }
}

/// Everything a service needs to start.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub schema_registry: SchemaRegistrySettings,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub saga: SagaSettings,
    pub inbox: InboxSettings,
    /// The outbox relay (`FTGO_RELAY`: `polling` or `tailing`).
    pub relay: RelayKind,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0} (set it with the FTGO_... environment variable of that name)")]
    Invalid(String),
    #[error("settings: {0}")]
    Load(#[from] Box<figment::Error>),
}

impl Settings {
    /// Loads the settings of `service` (`order`, `kitchen`, ...): defaults, then the
    /// environment.
    pub fn load(service: &str) -> Result<Self, SettingsError> {
        Self::from_figment(Self::figment(service))
    }

    /// The sources, for callers that add their own (a file, a test's values).
    /// The defaults are the local platform's addresses. The database URL has none: it holds a
    /// password, and no password is compiled in (`FTGO_<SERVICE>_DATABASE__URL`, which
    /// `deploy/local/env` exports for each service, or `FTGO_DATABASE__URL`).
    pub fn figment(service: &str) -> Figment {
        Self::figment_on(service, 8080)
    }

    /// As [`Settings::figment`], with `http_port` as the default HTTP port (a service's own,
    /// [`crate::ServiceDefinition::HTTP_PORT`], so the services run side by side on one
    /// machine without settings).
    pub fn figment_on(service: &str, http_port: u16) -> Figment {
        Figment::new()
            .merge(Serialized::default(
                "kafka.bootstrap_servers",
                "127.0.0.1:9092",
            ))
            .merge(Serialized::default(
                "schema_registry.url",
                "http://127.0.0.1:8081/apis/ccompat/v7",
            ))
            .merge(Serialized::default("kafka.session_timeout_ms", 10_000))
            .merge(Serialized::default("http.host", "127.0.0.1"))
            .merge(Serialized::default("http.port", http_port))
            .merge(Serialized::default("http.port_attempts", 1))
            .merge(Serialized::default("saga.reply_timeout_ms", 30_000))
            .merge(Serialized::default(
                "saga.max_resends",
                outbox::DEFAULT_MAX_RESENDS,
            ))
            .merge(Serialized::default("inbox.retention_secs", 8 * 24 * 3_600))
            .merge(Serialized::default("inbox.expire_every_secs", 3_600))
            .merge(Serialized::default("relay", RelayKind::Polling))
            .merge(Env::prefixed("FTGO_").split("__"))
            // The service's own settings beat the shared ones (`FTGO_KITCHEN_DATABASE__URL`
            // over `FTGO_DATABASE__URL`): `deploy/local/env` exports both (the shared database
            // URL is the admin's, for tools and tests).
            .merge(Env::prefixed(&Self::own_prefix(service)).split("__"))
    }

    /// `FTGO_<SERVICE>_`: the prefix of the variables only service `service` reads.
    pub fn own_prefix(service: &str) -> String {
        format!("FTGO_{}_", service.to_uppercase())
    }

    /// `FTGO_<SERVICE>_DATABASE__URL`: the service's own database URL, when set.
    pub fn own_database_variable(service: &str) -> String {
        format!("{}DATABASE__URL", Self::own_prefix(service))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        if figment.find_value("database.url").is_err() {
            return Err(SettingsError::Invalid(
                "database.url is not set, and no password is compiled in: \
                 FTGO_<SERVICE>_DATABASE__URL or FTGO_DATABASE__URL, \
                 postgres://role:password@host:port/database (deploy/local/env exports the \
                 local platform's)"
                    .into(),
            ));
        }
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return Err(SettingsError::Invalid(
                "kafka.bootstrap_servers is empty".into(),
            ));
        }
        self.database.options()?;
        if self.database.migration_url.is_some() {
            self.database.migration_options()?;
        }
        if self.kafka.session_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "kafka.session_timeout_ms must be more than 0".into(),
            ));
        }
        if self.http.port_attempts == 0 {
            return Err(SettingsError::Invalid(
                "http.port_attempts must be at least 1".into(),
            ));
        }
        if self.saga.reply_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "saga.reply_timeout_ms must be more than 0".into(),
            ));
        }
        if self.inbox.retention_secs == 0 || self.inbox.expire_every_secs == 0 {
            return Err(SettingsError::Invalid(
                "inbox.retention_secs and inbox.expire_every_secs must be more than 0".into(),
            ));
        }
        if !self.schema_registry.url.starts_with("http") {
            return Err(SettingsError::Invalid(
                "schema_registry.url must be an http(s):// URL".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
// figment's test jail returns its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_the_local_platform_and_the_environment_overrides_them() {
        figment::Jail::expect_with(|jail| {
            // The defaults, whatever the shell running the tests exports (deploy/local/env).
            jail.clear_env();
            // No password is compiled in: without a database URL, the error names the setting.
            let missing = Settings::load("kitchen").expect_err("no database URL");
            assert!(
                missing.to_string().contains("FTGO_<SERVICE>_DATABASE__URL"),
                "{missing}"
            );
            jail.set_env(
                "FTGO_DATABASE__URL",
                "postgres://ftgo_kitchen:pw@127.0.0.1:5432/ftgo",
            );
            let settings = Settings::load("kitchen").expect("defaults");
            assert_eq!(settings.kafka.bootstrap_servers, "127.0.0.1:9092");
            assert_eq!(settings.http.port, 8080);
            assert_eq!(settings.http.host.to_string(), "127.0.0.1");
            jail.set_env("FTGO_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092");
            jail.set_env("FTGO_HTTP__PORT", "9100");
            jail.set_env("FTGO_DATABASE__URL", "postgres://k:s3cret@db:5432/ftgo");
            let settings = Settings::load("kitchen").expect("overridden");
            assert_eq!(
                settings.database.url.expose_secret(),
                "postgres://k:s3cret@db:5432/ftgo"
            );
            jail.set_env(
                "FTGO_KITCHEN_DATABASE__URL",
                "postgres://kitchen:s3cret@db:5432/ftgo",
            );
            jail.set_env(
                "FTGO_ORDER_DATABASE__URL",
                "postgres://order:s3cret@db:5432/ftgo",
            );
            let own = Settings::load("kitchen").expect("its own");
            assert_eq!(
                own.database.url.expose_secret(),
                "postgres://kitchen:s3cret@db:5432/ftgo"
            );
            assert_eq!(
                settings.kafka.bootstrap_servers,
                "kafka-1:9092,kafka-2:9092"
            );
            assert_eq!(settings.http.port, 9100);
            assert!(
                !format!("{settings:?}").contains("s3cret"),
                "the password printed"
            );
            Ok(())
        });
    }

    #[test]
    fn the_migration_role_and_password_files_are_settings_of_their_own() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env(
                "FTGO_KITCHEN_DATABASE__URL",
                "postgres://ftgo_kitchen@db:5432/ftgo",
            );
            let settings = Settings::load("kitchen").expect("a runtime URL suffices to run");
            let missing = settings
                .database
                .migration_options()
                .expect_err("no migration URL");
            assert!(
                missing
                    .to_string()
                    .contains("FTGO_<SERVICE>_DATABASE__MIGRATION_URL"),
                "{missing}"
            );
            jail.create_file("owner-password", "s3cret\n")?;
            jail.set_env(
                "FTGO_KITCHEN_DATABASE__MIGRATION_URL",
                "postgres://ftgo_kitchen_owner@db:5432/ftgo",
            );
            jail.set_env(
                "FTGO_KITCHEN_DATABASE__MIGRATION_PASSWORD_FILE",
                "owner-password",
            );
            let settings = Settings::load("kitchen").expect("a migration role");
            let options = settings.database.migration_options().expect("its options");
            assert_eq!(options.get_username(), "ftgo_kitchen_owner");
            assert_eq!(
                settings.database.options().expect("runtime").get_username(),
                "ftgo_kitchen"
            );
            jail.set_env("FTGO_KITCHEN_DATABASE__PASSWORD_FILE", "no-such-file");
            let unreadable = Settings::load("kitchen").expect_err("an unreadable password file");
            assert!(
                unreadable.to_string().contains("no-such-file"),
                "{unreadable}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("FTGO_DATABASE__URL", "postgres://o:pw@127.0.0.1:5432/ftgo");
            jail.set_env("FTGO_HTTP__PORT", "eighty");
            let error = Settings::load("order").expect_err("not a port");
            let text = error.to_string();
            assert!(
                text.contains("HTTP.PORT") && text.contains("FTGO_"),
                "{text}"
            );
            jail.set_env("FTGO_HTTP__PORT", "8080");
            jail.set_env("FTGO_DATABASE__URL", "mysql://nope");
            let error = Settings::load("order").expect_err("not postgres");
            assert!(error.to_string().contains("FTGO_"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn instances_try_ports_ten_apart() {
        let settings = |port, port_attempts| HttpSettings {
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            port_attempts,
            port_file: None,
        };
        let ports = |s: &HttpSettings| s.candidate_ports().collect::<Vec<_>>();
        assert_eq!(ports(&settings(8103, 1)), [8103]);
        assert_eq!(ports(&settings(8103, 3)), [8103, 8113, 8123]);
        // Port 0 is any free port already; the end of the range is not passed.
        assert_eq!(ports(&settings(0, 5)), [0]);
        assert_eq!(ports(&settings(65_520, 5)), [65_520, 65_530]);
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("FTGO_DATABASE__URL", "postgres://k:pw@127.0.0.1:5432/ftgo");
            let defaults = Settings::load("kitchen").expect("defaults");
            assert_eq!(ports(&defaults.http), [8080]);
            assert_eq!(defaults.kafka.group_instance_id, None);
            jail.set_env("FTGO_HTTP__PORT_ATTEMPTS", "0");
            let error = Settings::load("kitchen").expect_err("no port to try");
            assert!(error.to_string().contains("port_attempts"), "{error}");
            jail.set_env("FTGO_HTTP__PORT_ATTEMPTS", "10");
            jail.set_env("FTGO_HTTP__PORT_FILE", "/tmp/http-port");
            jail.set_env("FTGO_KAFKA__GROUP_INSTANCE_ID", "kitchen-1");
            let settings = Settings::load("kitchen").expect("container settings");
            assert_eq!(settings.http.port_attempts, 10);
            assert_eq!(
                settings.http.port_file.as_deref(),
                Some(std::path::Path::new("/tmp/http-port"))
            );
            assert_eq!(
                settings.kafka.group_instance_id.as_deref(),
                Some("kitchen-1")
            );
            Ok(())
        });
    }
}
