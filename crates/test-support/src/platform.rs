use std::env;

/// Where the platform a test talks to lives. Read from the variables `deploy/local/env`
/// exports (the same ones the services read); unset ones fall back to the local platform's
/// defaults, so `cargo test` works without sourcing the file.
#[derive(Debug, Clone)]
pub struct Platform {
    /// Kafka's bootstrap servers, `host:port[,host:port]`.
    pub bootstrap_servers: String,
    /// Base URL of the registry's Confluent-compatible REST API.
    pub schema_registry_url: String,
    /// A database URL whose role may create databases (tests make throwaway ones).
    pub database_url: String,
}

impl Platform {
    pub fn from_env() -> Self {
        std::sync::LazyLock::force(&TESTS_STARTED);
        let var = |name: &str, default: &str| env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            bootstrap_servers: var("FTGO_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            schema_registry_url: var(
                "FTGO_SCHEMA_REGISTRY__URL",
                "http://127.0.0.1:8081/apis/ccompat/v7",
            ),
            database_url: with_password(&var(
                "FTGO_DATABASE__URL",
                "postgres://ftgo_admin@127.0.0.1:5432/ftgo",
            )),
        }
    }

    /// The password deploy/local/up made for `principal` (`ftgo-kitchen`): one per principal,
    /// for Kafka and the registry alike, under the state directory.
    pub fn password(&self, principal: &str) -> anyhow::Result<String> {
        secret(&format!("kafka/{principal}"))
    }

    /// The password deploy/local/up made for PostgreSQL role `role` (`ftgo_kitchen`).
    pub fn database_password(&self, role: &str) -> anyhow::Result<String> {
        secret(&format!("postgres/{role}"))
    }

    /// The registry as the environment's `FTGO_SCHEMA_REGISTRY__*` variables say (the tests'
    /// principal, on the local platform: deploy/local/test-all), looking schemas up.
    pub fn registry(&self) -> anyhow::Result<contracts::RegistryAccess> {
        Ok(contracts::RegistryAccess::from_env(
            &self.schema_registry_url,
        )?)
    }
}

/// A secret deploy/local/up keeps under `$FTGO_STATE_DIR/secrets/`.
fn secret(path: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let state = env::var("FTGO_STATE_DIR").context("FTGO_STATE_DIR (. deploy/local/env)")?;
    let path = format!("{state}/secrets/{path}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(text.trim_end().to_owned())
}

/// `url` with its role's password from the state directory when it has none: every client of
/// a test (the log-tailing relay's replication connection too, which reads no password file)
/// then connects with it alone.
fn with_password(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.password().is_some() || parsed.username().is_empty() {
        return url.to_owned();
    }
    match secret(&format!("postgres/{}", parsed.username())) {
        Ok(password) if parsed.set_password(Some(&password)).is_ok() => parsed.into(),
        _ => url.to_owned(),
    }
}

/// About when this test process began using the platform (the first [`Platform::from_env`],
/// which every client and service of a test calls before it publishes). Records older than
/// this are earlier runs'.
pub static TESTS_STARTED: std::sync::LazyLock<std::time::SystemTime> =
    std::sync::LazyLock::new(std::time::SystemTime::now);
