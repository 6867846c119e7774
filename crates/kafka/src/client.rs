//! How every client of this process reaches the cluster: `bootstrap.servers` plus the
//! librdkafka properties of the environment, so one set of variables points the services, the
//! `ftgo` CLI and the tests at a secured cluster (TLS, SASL) without code that knows which.
//!
//! `FTGO_KAFKA__CONFIG__<NAME>=value` sets librdkafka's property `<name>`: lower-cased, with
//! `_` read as `.` (`FTGO_KAFKA__CONFIG__SECURITY_PROTOCOL=SASL_SSL` sets
//! `security.protocol`). `FTGO_KAFKA__CONFIG__<NAME>_FILE=path` sets it to the file's content
//! (one trailing newline dropped): a secret mounted as a file, the way containers get them
//! (`FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE=/run/secrets/kafka-password`). deploy/local/env
//! exports the local platform's (docs/security.md).
//!
//! The environment is read once, when the first client is made.

use std::sync::OnceLock;

use rdkafka::ClientConfig;

use crate::KafkaError;

/// The prefix of the variables that set librdkafka properties.
pub const PROPERTY_PREFIX: &str = "FTGO_KAFKA__CONFIG__";

/// The suffix of a variable that names a file holding the value.
const FILE_SUFFIX: &str = "_FILE";

/// Properties whose value is a secret: never printed.
const SECRET_PROPERTIES: [&str; 4] = [
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "sasl.oauthbearer.client.secret",
];

/// librdkafka properties, as set in the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties(Vec<(String, String)>);

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                let shown = if is_secret(name) { "<secret>" } else { value };
                (name, shown)
            }))
            .finish()
    }
}

fn is_secret(name: &str) -> bool {
    SECRET_PROPERTIES.contains(&name)
}

impl ClientProperties {
    /// The properties of `variables` (name and value pairs; those without the prefix are
    /// ignored), in name order. A `_FILE` variable whose file cannot be read is an error that
    /// names it.
    pub fn from_variables(
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, KafkaError> {
        let mut properties = Vec::new();
        for (variable, value) in variables {
            let Some(name) = variable.strip_prefix(PROPERTY_PREFIX) else {
                continue;
            };
            let (name, value) = match name.strip_suffix(FILE_SUFFIX) {
                Some(name) => {
                    let text = std::fs::read_to_string(&value).map_err(|error| {
                        KafkaError::Settings(format!("{variable}: cannot read {value}: {error}"))
                    })?;
                    let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                    (name, text)
                }
                None => (name, value),
            };
            if name.is_empty() {
                return Err(KafkaError::Settings(format!(
                    "{variable}: no property named (FTGO_KAFKA__CONFIG__SECURITY_PROTOCOL=... \
                     sets security.protocol)"
                )));
            }
            properties.push((name.to_lowercase().replace('_', "."), value));
        }
        properties.sort();
        Ok(Self(properties))
    }

    /// The process environment's properties (read once).
    pub fn from_environment() -> Result<&'static Self, KafkaError> {
        static FROM_ENVIRONMENT: OnceLock<Result<ClientProperties, String>> = OnceLock::new();
        FROM_ENVIRONMENT
            .get_or_init(|| Self::from_variables(std::env::vars()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|error| KafkaError::Settings(error.clone()))
    }

    /// The value of librdkafka property `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// The properties, secrets included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Sets every property on `config`.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (name, value) in &self.0 {
            config.set(name, value);
        }
    }
}

/// A client configuration for the cluster at `bootstrap_servers`, with the environment's
/// properties ([`ClientProperties::from_environment`]): what every client starts from.
pub fn client_config(bootstrap_servers: &str) -> Result<ClientConfig, KafkaError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    ClientProperties::from_environment()?.apply(&mut config);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_name_librdkafka_properties_and_files_hold_secrets() {
        let dir = std::env::temp_dir().join(format!("ftgo-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").expect("the password file");
        let properties = ClientProperties::from_variables(vars(&[
            ("FTGO_KAFKA__CONFIG__SECURITY_PROTOCOL", "SASL_SSL"),
            ("FTGO_KAFKA__CONFIG__SASL_MECHANISM", "SCRAM-SHA-512"),
            (
                "FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE",
                password.to_str().expect("a UTF-8 path"),
            ),
            ("FTGO_KAFKA__BOOTSTRAP_SERVERS", "elsewhere:9092"),
            ("PATH", "/bin"),
        ]))
        .expect("properties");
        assert_eq!(
            properties.iter().collect::<Vec<_>>(),
            [
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.password", "s3cret"),
                ("security.protocol", "SASL_SSL"),
            ]
        );
        let shown = format!("{properties:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("SASL_SSL"),
            "{shown}"
        );
        let mut config = ClientConfig::new();
        properties.apply(&mut config);
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn an_unreadable_file_names_its_variable() {
        let error = ClientProperties::from_variables(vars(&[(
            "FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE",
            "/nonexistent/password",
        )]))
        .expect_err("refused")
        .to_string();
        assert!(
            error.contains("FTGO_KAFKA__CONFIG__SASL_PASSWORD_FILE")
                && error.contains("/nonexistent/password"),
            "{error}"
        );
        let error = ClientProperties::from_variables(vars(&[("FTGO_KAFKA__CONFIG__", "x")]))
            .expect_err("refused")
            .to_string();
        assert!(error.contains("no property named"), "{error}");
    }

    #[test]
    fn librdkafka_is_built_with_tls_and_scram() {
        let native = ClientConfig::new()
            .create_native_config()
            .expect("a native configuration");
        let features = native.get("builtin.features").expect("builtin.features");
        for feature in ["ssl", "sasl_scram"] {
            assert!(features.split(',').any(|f| f == feature), "{features}");
        }
    }
}
