//! How this process reaches the schema registry: its URL, the principal it authenticates as
//! (HTTP basic), the CA that signs the registry's certificate, and whether it may register
//! schemas. One set of variables points the services, the `ftgo` CLI and the tests at a
//! secured registry, the way `FTGO_KAFKA__CONFIG__*` does for the cluster:
//!
//! - `FTGO_SCHEMA_REGISTRY__USERNAME`, and `FTGO_SCHEMA_REGISTRY__PASSWORD` or
//!   `FTGO_SCHEMA_REGISTRY__PASSWORD_FILE` (a file holding it, as containers mount secrets);
//! - `FTGO_SCHEMA_REGISTRY__CA_FILE`: a PEM file of the CA to trust for an `https://` URL;
//! - `FTGO_SCHEMA_REGISTRY__AUTO_REGISTER=true`: encoding registers a schema the subject
//!   lacks. Off by default, as in production: schemas are registered by the deployment step
//!   (`ftgo schemas register`), and a service only looks its own up, so a service cannot
//!   change what the registry holds (its principal may only read).

use std::path::PathBuf;
use std::time::Duration;

use schema_registry_converter::async_impl::schema_registry::SrSettings;

use crate::SetupError;

/// The prefix of the registry's variables.
pub const REGISTRY_PREFIX: &str = "FTGO_SCHEMA_REGISTRY__";

/// How long one registry call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A registry and how to reach it. The password never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAccess {
    url: String,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<PathBuf>,
    register: bool,
}

impl std::fmt::Debug for RegistryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("ca_file", &self.ca_file)
            .field("register", &self.register)
            .finish()
    }
}

impl RegistryAccess {
    /// The registry at `url` (its Confluent-compatible API), anonymously, looking schemas up.
    pub fn anonymous(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            username: None,
            password: None,
            ca_file: None,
            register: false,
        }
    }

    /// The registry at `url`, as the process environment's variables say (see the module).
    pub fn from_env(url: &str) -> Result<Self, SetupError> {
        Self::from_variables(url, std::env::vars())
    }

    /// The registry at `url`, as `variables` (name and value pairs) say.
    pub fn from_variables(
        url: &str,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SetupError> {
        let mut access = Self::anonymous(url);
        for (variable, value) in variables {
            let Some(name) = variable.strip_prefix(REGISTRY_PREFIX) else {
                continue;
            };
            match name {
                "USERNAME" => access.username = Some(value),
                "PASSWORD" => access.password = Some(value),
                "PASSWORD_FILE" => {
                    let text = std::fs::read_to_string(&value).map_err(|error| {
                        SetupError::Registry(format!("{variable}: cannot read {value}: {error}"))
                    })?;
                    access.password = Some(text.strip_suffix('\n').unwrap_or(&text).to_owned());
                }
                "CA_FILE" => access.ca_file = Some(PathBuf::from(value)),
                "AUTO_REGISTER" => {
                    access.register = value.parse().map_err(|_| {
                        SetupError::Registry(format!("{variable} must be true or false: {value}"))
                    })?;
                }
                _ => {}
            }
        }
        if access.password.is_some() && access.username.is_none() {
            return Err(SetupError::Registry(format!(
                "a registry password is set but no {REGISTRY_PREFIX}USERNAME"
            )));
        }
        Ok(access)
    }

    /// The same, registering schemas the registry lacks when encoding (tests and tools that
    /// write schemas of their own; the principal must be allowed to).
    pub fn registering(mut self) -> Self {
        self.register = true;
        self
    }

    /// The same registry as `username` with `password`.
    pub fn as_user(mut self, username: &str, password: &str) -> Self {
        self.username = Some(username.to_owned());
        self.password = Some(password.to_owned());
        self
    }

    /// The Confluent-compatible API's base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Who this process is to the registry, if anyone.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether encoding registers schemas the registry lacks.
    pub fn registers(&self) -> bool {
        self.register
    }

    /// An HTTP client that trusts the configured CA, with the registry's timeout.
    pub fn http_client(&self) -> Result<reqwest::Client, SetupError> {
        self.client_builder()?
            .build()
            .map_err(|e| SetupError::Registry(format!("building the HTTP client: {e}")))
    }

    fn client_builder(&self) -> Result<reqwest::ClientBuilder, SetupError> {
        let mut builder = reqwest::Client::builder().timeout(TIMEOUT);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|error| {
                SetupError::Registry(format!(
                    "{REGISTRY_PREFIX}CA_FILE: cannot read {}: {error}",
                    path.display()
                ))
            })?;
            let ca = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                SetupError::Registry(format!(
                    "{} is not a PEM certificate: {error}",
                    path.display()
                ))
            })?;
            builder = builder.add_root_certificate(ca);
        }
        Ok(builder)
    }

    /// `request` with this process's credentials.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.username {
            Some(username) => request.basic_auth(username, self.password.as_deref()),
            None => request,
        }
    }

    /// The settings of schema_registry_converter's encoder and decoder, for this registry.
    pub fn converter_settings(&self) -> Result<SrSettings, SetupError> {
        let mut builder = SrSettings::new_builder(self.url.clone());
        if let Some(username) = &self.username {
            builder.set_basic_authorization(username, self.password.as_deref());
        }
        builder
            .build_with(self.client_builder()?)
            .map_err(|e| SetupError::Registry(crate::codec::describe(&e)))
    }
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
    fn variables_give_the_principal_the_ca_and_whether_to_register() {
        let dir = std::env::temp_dir().join(format!("registry-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let password = dir.join("password");
        std::fs::write(&password, "s3cret\n").expect("written");
        let access = RegistryAccess::from_variables(
            "https://registry:8081/apis/ccompat/v7/",
            vars(&[
                ("FTGO_SCHEMA_REGISTRY__USERNAME", "ftgo-order"),
                (
                    "FTGO_SCHEMA_REGISTRY__PASSWORD_FILE",
                    password.to_str().expect("utf-8"),
                ),
                ("FTGO_SCHEMA_REGISTRY__CA_FILE", "/etc/ftgo/ca.pem"),
                ("FTGO_SCHEMA_REGISTRY__URL", "ignored: the caller passes it"),
                ("FTGO_KAFKA__CONFIG__SASL_PASSWORD", "not the registry's"),
            ]),
        )
        .expect("valid");
        assert_eq!(access.url(), "https://registry:8081/apis/ccompat/v7");
        assert_eq!(access.username(), Some("ftgo-order"));
        assert_eq!(access.password.as_deref(), Some("s3cret"));
        assert_eq!(access.ca_file, Some(PathBuf::from("/etc/ftgo/ca.pem")));
        assert!(!access.registers(), "services look schemas up by default");
        let shown = format!("{access:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<secret>"),
            "{shown}"
        );
        std::fs::remove_dir_all(dir).expect("removed");
    }

    #[test]
    fn bad_variables_name_themselves() {
        let error = RegistryAccess::from_variables(
            "http://127.0.0.1:8081",
            vars(&[("FTGO_SCHEMA_REGISTRY__AUTO_REGISTER", "yes")]),
        )
        .expect_err("not a bool");
        assert!(error.to_string().contains("AUTO_REGISTER"), "{error}");
        let error = RegistryAccess::from_variables(
            "http://127.0.0.1:8081",
            vars(&[("FTGO_SCHEMA_REGISTRY__PASSWORD_FILE", "/nonexistent/pw")]),
        )
        .expect_err("unreadable");
        assert!(error.to_string().contains("/nonexistent/pw"), "{error}");
        let error = RegistryAccess::from_variables(
            "http://127.0.0.1:8081",
            vars(&[("FTGO_SCHEMA_REGISTRY__PASSWORD", "pw")]),
        )
        .expect_err("no user");
        assert!(error.to_string().contains("USERNAME"), "{error}");
    }
}
