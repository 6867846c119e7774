//! A service in-process on a throwaway database and a consumer group of its own.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use messaging::Message;
use service_kit::{Instance, Running, Settings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{TestDatabase, start_group_at_end, unique_group};

/// One service under test at a time in a test process: hold the guard for as long as the
/// service runs. Each test's service is in a group of its own that starts at the end of the
/// shared topics, but tests that ran at once would each see the others' commands (published
/// after their start) and answer them, and no test could count what its own service sent.
pub async fn one_service_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// A running service: its database, group and HTTP address; stopped (gracefully) by
/// [`TestService::stop`], or aborted when dropped.
pub struct TestService {
    pub name: String,
    pub group: String,
    pub http: SocketAddr,
    pub database: TestDatabase,
    /// What it was started with, for [`TestService::restart`].
    settings: Settings,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for TestService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestService")
            .field("name", &self.name)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The topics service `name` consumes.
pub fn service_topics(name: &str) -> &'static [&'static str] {
    match name {
        "order" => &[
            "ftgo.order.commands",
            "ftgo.order.replies",
            "ftgo.restaurant.events",
        ],
        "consumer" => &["ftgo.consumer.commands"],
        "kitchen" => &["ftgo.kitchen.commands", "ftgo.restaurant.events"],
        "accounting" => &["ftgo.accounting.commands", "ftgo.consumer.events"],
        "restaurant" => &["ftgo.restaurant.commands"],
        "delivery" => &["ftgo.order.events", "ftgo.ticket.events"],
        _ => &[],
    }
}

/// The settings of service `name` (`order`, ...) on `database`, HTTP on any free port.
pub fn service_settings(name: &str, database: &TestDatabase) -> Result<Settings> {
    Ok(Settings::from_figment(
        Settings::figment(name)
            .merge(("database.url", database.url()))
            .merge(("http.port", 0)),
    )?)
}

/// A service's run function as tests start it: every service's `run(settings, instance,
/// shutdown, started)`, given the shutdown as a token (`|s, i, stop, started| async move {
/// order_service::run(s, i, stop.cancelled_owned(), Some(started)).await }`).
pub trait ServiceRun<Fut>:
    FnOnce(Settings, Instance, CancellationToken, tokio::sync::oneshot::Sender<Running>) -> Fut
{
}

impl<R, Fut> ServiceRun<Fut> for R where
    R: FnOnce(Settings, Instance, CancellationToken, tokio::sync::oneshot::Sender<Running>) -> Fut
{
}

/// What a [`ServiceRun`] returns: the service's whole run, spawned on the test's runtime.
pub trait RunFuture: Future<Output = Result<()>> + Send + 'static {}

impl<F: Future<Output = Result<()>> + Send + 'static> RunFuture for F {}

impl TestService {
    /// Starts service `name` with its `run` function on a new database, in a new group that
    /// starts at the current end of the service's topics (so it does not replay what earlier
    /// runs left on the shared topics), and waits until it consumes.
    pub async fn start<Fut: RunFuture>(name: &str, run: impl ServiceRun<Fut>) -> Result<Self> {
        Self::start_in(name, unique_group(&format!("{name}-service")), run).await
    }

    /// As [`TestService::start`], in the given group (instances of one service share one).
    pub async fn start_in<Fut: RunFuture>(
        name: &str,
        group: String,
        run: impl ServiceRun<Fut>,
    ) -> Result<Self> {
        Self::start_configured(name, group, |figment| figment, run).await
    }

    /// As [`TestService::start_in`], with settings of the test's own on top of the defaults
    /// (`|f| f.merge(("saga.reply_timeout_ms", 3000))`).
    pub async fn start_configured<Fut: RunFuture>(
        name: &str,
        group: String,
        configure: impl FnOnce(figment::Figment) -> figment::Figment,
        run: impl ServiceRun<Fut>,
    ) -> Result<Self> {
        start_group_at_end(&group, service_topics(name))?;
        let database = TestDatabase::create().await?;
        let settings = Settings::from_figment(configure(
            Settings::figment(name)
                .merge(("database.url", database.url()))
                .merge(("http.port", 0)),
        ))?;
        let (stop, task, http) = spawn_run(name, &group, &settings, run).await?;
        Ok(Self {
            name: name.to_owned(),
            group,
            http,
            database,
            settings,
            stop,
            task: Some(task),
        })
    }

    /// Stops the service gracefully, keeping its database and group: a service that is down
    /// until [`TestService::resume`].
    pub async fn pause(&mut self) -> Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.context("the service panicked")?,
            None => Ok(()),
        }
    }

    /// Starts a paused service again with the same database, group and settings, as a
    /// redeployed instance: it picks up where its group stopped, with its data.
    pub async fn resume<Fut: RunFuture>(&mut self, run: impl ServiceRun<Fut>) -> Result<()> {
        anyhow::ensure!(self.task.is_none(), "the {} service is running", self.name);
        let (stop, task, http) = spawn_run(&self.name, &self.group, &self.settings, run).await?;
        (self.stop, self.task, self.http) = (stop, Some(task), http);
        Ok(())
    }

    /// Stops the service gracefully and returns how its run ended.
    pub async fn stop(mut self) -> Result<()> {
        self.stop.cancel();
        let task = self.task.take().context("stopped twice")?;
        task.await.context("the service panicked")?
    }

    /// Waits until the service's relay published everything it appended about `key` (its
    /// outbox holds no row of that key).
    pub async fn relayed(&self, key: &str) -> Result<()> {
        let pool = self.database.pool();
        crate::wait_until(&format!("the outbox relays {key}"), || async {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE key = $1")
                .bind(key)
                .fetch_one(pool)
                .await?;
            Ok(left == 0)
        })
        .await
    }

    /// Waits until the service handled `message` (its id is in the group's inbox).
    pub async fn handled(&self, message: &Message) -> Result<()> {
        let id = message.id().context("the message has no id")?;
        let pool = self.database.pool();
        crate::wait_until(&format!("message {id} handled"), || async {
            let seen: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inbox WHERE consumer_group = $1 AND message_id = $2",
            )
            .bind(&self.group)
            .bind(id)
            .fetch_one(pool)
            .await?;
            Ok(seen == 1)
        })
        .await
    }

    /// The text of its `/metrics`.
    pub async fn metrics(&self) -> Result<String> {
        Ok(reqwest::get(format!("http://{}/metrics", self.http))
            .await?
            .text()
            .await?)
    }
}

/// Runs the service and waits until it consumes: its stop token, task and HTTP address.
async fn spawn_run<Fut: RunFuture>(
    name: &str,
    group: &str,
    settings: &Settings,
    run: impl ServiceRun<Fut>,
) -> Result<(CancellationToken, JoinHandle<Result<()>>, SocketAddr)> {
    let instance = Instance::of(name).in_group(group);
    let stop = CancellationToken::new();
    let (started, running) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(run(settings.clone(), instance, stop.clone(), started));
    match running.await {
        Ok(Running { http }) => Ok((stop, task, http)),
        Err(_) => {
            let outcome = task.await;
            anyhow::bail!("the {name} service did not start: {outcome:?}");
        }
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
