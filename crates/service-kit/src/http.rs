//! The service's HTTP port: `/health/live` (the process answers), `/health/ready` (every
//! component said it is ready: 503 with the ones that are not), `/metrics` (Prometheus), and the
//! service's REST API with its `/openapi.json` when it has one ([`crate::api`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use anyhow::Context;

use crate::metrics::Metrics;
use crate::settings::HttpSettings;

/// What each component says about its readiness. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// component -> `None` when ready, or why not.
    components: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// `component` is not ready, for `reason` (every component starts so once it registers).
    pub fn not_ready(&self, component: &str, reason: impl Into<String>) {
        self.components()
            .insert(component.to_owned(), Some(reason.into()));
    }

    pub fn ready(&self, component: &str) {
        self.components().insert(component.to_owned(), None);
    }

    /// The components that are not ready, with their reasons.
    pub fn waiting(&self) -> Vec<(String, String)> {
        self.components()
            .iter()
            .filter_map(|(c, r)| r.clone().map(|r| (c.clone(), r)))
            .collect()
    }

    fn components(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<String>>> {
        self.components
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
struct Shared {
    health: Health,
    metrics: Metrics,
}

async fn live() -> &'static str {
    "alive\n"
}

async fn ready(State(shared): State<Shared>) -> (StatusCode, String) {
    let waiting = shared.health.waiting();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let reasons: String = waiting
            .iter()
            .map(|(component, reason)| format!("{component}: {reason}\n"))
            .collect();
        (StatusCode::SERVICE_UNAVAILABLE, reasons)
    }
}

async fn metrics(State(shared): State<Shared>) -> String {
    shared.metrics.encode()
}

/// Binds the HTTP port (`0`: any free port) on `host`.
pub async fn bind(host: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((host, port))).await
}

/// Binds the first free port of `settings` ([`HttpSettings::candidate_ports`]) and, when
/// `settings.port_file` is set, writes the port taken there.
pub async fn bind_first_free(settings: &HttpSettings) -> anyhow::Result<TcpListener> {
    let mut tried = Vec::new();
    let listener = 'found: {
        for port in settings.candidate_ports() {
            match bind(settings.host, port).await {
                Ok(listener) => break 'found listener,
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => tried.push(port),
                Err(error) => {
                    return Err(error).with_context(|| format!("binding the HTTP port {port}"));
                }
            }
        }
        anyhow::bail!(
            "the HTTP ports {tried:?} are all taken (FTGO_HTTP__PORT, FTGO_HTTP__PORT_ATTEMPTS): \
             stop what listens there, or give this instance another port"
        );
    };
    if let Some(file) = &settings.port_file {
        let port = listener.local_addr()?.port();
        std::fs::write(file, format!("{port}\n"))
            .with_context(|| format!("writing the HTTP port to {}", file.display()))?;
    }
    Ok(listener)
}

/// Asks the instance these settings describe whether it is ready (`live`: only whether it
/// answers): the port its `port_file` names when there is one, else its `port`. Returns the
/// answer's body on 200, and an error with the body or the failure otherwise.
pub async fn check(settings: &HttpSettings, live: bool) -> anyhow::Result<String> {
    let port = match &settings.port_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| {
                format!(
                    "reading {} (has the instance bound its port yet?)",
                    file.display()
                )
            })?
            .trim()
            .parse::<u16>()
            .with_context(|| format!("{} holds no port", file.display()))?,
        None => settings.port,
    };
    let path = if live { "live" } else { "ready" };
    // An instance listening on every interface answers on this machine's loopback too.
    let host = match settings.host {
        host if host.is_unspecified() => IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
        host => host,
    };
    let address = SocketAddr::from((host, port));
    let response = reqwest::Client::new()
        .get(format!("http://{address}/health/{path}"))
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .with_context(|| format!("asking {address}/health/{path}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "{status} from port {port}: {}",
        body.trim()
    );
    Ok(body)
}

/// A service's REST API: its routes (state applied) and their OpenAPI document.
#[derive(Clone)]
pub struct Api {
    pub router: Router,
    pub document: utoipa::openapi::OpenApi,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field(
                "paths",
                &self.document.paths.paths.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Serves the endpoints on `listener` until `shutdown` completes, with the service's `api`
/// and its document at `/openapi.json` when it has one.
pub fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Metrics,
    api: Option<Api>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<std::io::Result<()>> {
    let mut app = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(self::metrics))
        .with_state(Shared { health, metrics });
    if let Some(Api { router, document }) = api {
        let document = Arc::new(document);
        app = app.merge(router).route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        );
    }
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    })
}
