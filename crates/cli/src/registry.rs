//! The registry calls the schema commands need, over the Confluent REST API (the parts
//! schema_registry_converter does not offer: versions, compatibility checks and levels,
//! lookups without registering).

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A registry's Confluent-compatible API at `base` (e.g. `http://127.0.0.1:8081/apis/ccompat/v7`).
#[derive(Debug, Clone)]
pub struct Registry {
    base: String,
    access: contracts::RegistryAccess,
    http: reqwest::Client,
}

/// A registered version of a subject.
#[derive(Debug, Clone, Deserialize)]
pub struct Registered {
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

impl Registry {
    /// The registry at `base`, as the environment's `FTGO_SCHEMA_REGISTRY__*` variables say
    /// (the principal, the CA: [`contracts::RegistryAccess`]).
    pub fn new(base: &str) -> Result<Self> {
        let access = contracts::RegistryAccess::from_env(base)?;
        Ok(Self {
            base: access.url().to_owned(),
            http: access.http_client()?,
            access,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response> {
        self.access
            .authorize(request)
            .header("Content-Type", CONTENT_TYPE)
            .send()
            .await
            .with_context(|| {
                format!(
                    "{what}: the schema registry at {} does not answer (is the platform up? deploy/local/up)",
                    self.base
                )
            })
    }

    /// Fails with the registry's own message when the response is not a success.
    async fn ok(response: reqwest::Response, what: &str) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = response
            .json::<ErrorBody>()
            .await
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_default();
        bail!("{what}: the registry answered {status}: {message}")
    }

    /// Every version of `subject`, oldest first; `None` when the subject does not exist.
    pub async fn versions(&self, subject: &str) -> Result<Option<Vec<Registered>>> {
        let what = format!("listing the versions of {subject}");
        let response = self
            .send(
                self.http
                    .get(self.url(&format!("subjects/{subject}/versions"))),
                &what,
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let numbers: Vec<u32> = Self::ok(response, &what).await?.json().await?;
        let mut versions = Vec::new();
        for number in numbers {
            let what = format!("reading version {number} of {subject}");
            let response = self
                .send(
                    self.http
                        .get(self.url(&format!("subjects/{subject}/versions/{number}"))),
                    &what,
                )
                .await?;
            versions.push(Self::ok(response, &what).await?.json().await?);
        }
        Ok(Some(versions))
    }

    /// The registered version of `subject` whose schema is `schema`, if any.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<Option<Registered>> {
        let what = format!("looking up the schema in {subject}");
        let response = self
            .send(
                self.http
                    .post(self.url(&format!("subjects/{subject}")))
                    .json(&json!({ "schema": schema })),
                &what,
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(Self::ok(response, &what).await?.json().await?))
    }

    /// Registers `schema` under `subject` (the registry checks compatibility); returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        #[derive(Deserialize)]
        struct Id {
            id: u32,
        }
        let what = format!("registering {subject}");
        let response = self
            .send(
                self.http
                    .post(self.url(&format!("subjects/{subject}/versions")))
                    .json(&json!({ "schema": schema, "schemaType": "AVRO" })),
                &what,
            )
            .await?;
        Ok(Self::ok(response, &what).await?.json::<Id>().await?.id)
    }

    /// Whether `schema` is compatible with the versions of `subject` its level asks for.
    pub async fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Verdict {
            is_compatible: bool,
        }
        let what = format!("checking compatibility of {subject}");
        let response = self
            .send(
                self.http
                    .post(self.url(&format!("compatibility/subjects/{subject}/versions")))
                    .json(&json!({ "schema": schema, "schemaType": "AVRO" })),
                &what,
            )
            .await?;
        Ok(Self::ok(response, &what)
            .await?
            .json::<Verdict>()
            .await?
            .is_compatible)
    }

    /// The compatibility level set on `subject` itself, if any.
    pub async fn compatibility(&self, subject: &str) -> Result<Option<String>> {
        let what = format!("reading the compatibility level of {subject}");
        let response = self
            .send(self.http.get(self.url(&format!("config/{subject}"))), &what)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: serde_json::Value = Self::ok(response, &what).await?.json().await?;
        // Confluent answers GET with "compatibilityLevel", PUT with "compatibility".
        Ok(body["compatibilityLevel"]
            .as_str()
            .or(body["compatibility"].as_str())
            .map(str::to_owned))
    }

    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<()> {
        let what = format!("setting the compatibility level of {subject}");
        let response = self
            .send(
                self.http
                    .put(self.url(&format!("config/{subject}")))
                    .json(&json!({ "compatibility": level })),
                &what,
            )
            .await?;
        Self::ok(response, &what).await?;
        Ok(())
    }
}
