//! A service in-process on a throwaway database and a consumer group of its own.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use messaging::Message;
use service_kit::{Definition, Running, Settings};
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
    definition: Definition,
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

/// The settings of service `name` (`order`, ...) on `database` (as its owner, for running and
/// migrating alike: `Definition::migrate` first), HTTP on any free port.
pub fn service_settings(name: &str, database: &TestDatabase) -> Result<Settings> {
    Ok(Settings::from_figment(test_figment(name, database))?)
}

/// The defaults of service `name` on `database`, HTTP on any free port.
fn test_figment(name: &str, database: &TestDatabase) -> figment::Figment {
    Settings::figment(name)
        .merge(("database.url", database.url()))
        .merge(("database.migration_url", database.url()))
        .merge(("http.port", 0))
}

impl TestService {
    /// Starts the service `definition` declares on a new database, in a new group that starts
    /// at the current end of the topics it consumes (so it does not replay what earlier runs
    /// left on the shared topics), and waits until it consumes.
    pub async fn start(definition: &Definition) -> Result<Self> {
        Self::start_in(definition, unique_group(&definition.instance().group)).await
    }

    /// As [`TestService::start`], in the given group (instances of one service share one).
    pub async fn start_in(definition: &Definition, group: String) -> Result<Self> {
        Self::start_configured(definition, group, |figment| figment).await
    }

    /// As [`TestService::start_in`], with settings of the test's own on top of the defaults
    /// (`|f| f.merge(("saga.reply_timeout_ms", 3000))`).
    pub async fn start_configured(
        definition: &Definition,
        group: String,
        configure: impl FnOnce(figment::Figment) -> figment::Figment,
    ) -> Result<Self> {
        start_group_at_end(&group, &definition.consumes())?;
        let database = TestDatabase::create().await?;
        let settings = Settings::from_figment(configure(test_figment(definition.name, &database)))?;
        definition.migrate(&settings).await?;
        let (stop, task, http) = spawn_run(definition, &group, &settings).await?;
        Ok(Self {
            definition: *definition,
            name: definition.name.to_owned(),
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
    pub async fn resume(&mut self) -> Result<()> {
        anyhow::ensure!(self.task.is_none(), "the {} service is running", self.name);
        let (stop, task, http) = spawn_run(&self.definition, &self.group, &self.settings).await?;
        (self.stop, self.task, self.http) = (stop, Some(task), http);
        Ok(())
    }

    /// As [`TestService::resume`], redeployed with other settings: the defaults with
    /// `configure`'s on top (`|f| f.merge(("relay", "tailing"))`), migrated first as a
    /// deployment does.
    pub async fn resume_with(
        &mut self,
        configure: impl FnOnce(figment::Figment) -> figment::Figment,
    ) -> Result<()> {
        anyhow::ensure!(self.task.is_none(), "the {} service is running", self.name);
        let settings = Settings::from_figment(configure(test_figment(&self.name, &self.database)))?;
        self.definition.migrate(&settings).await?;
        self.settings = settings;
        self.resume().await
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
async fn spawn_run(
    definition: &Definition,
    group: &str,
    settings: &Settings,
) -> Result<(CancellationToken, JoinHandle<Result<()>>, SocketAddr)> {
    let instance = definition.instance().in_group(group);
    let stop = CancellationToken::new();
    let (started, running) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let (definition, settings, stop) = (*definition, settings.clone(), stop.clone());
        async move {
            definition
                .run(settings, instance, stop, Some(started))
                .await
        }
    });
    match running.await {
        Ok(Running { http }) => Ok((stop, task, http)),
        Err(_) => {
            let outcome = task.await;
            anyhow::bail!("the {} service did not start: {outcome:?}", definition.name);
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

/// A service under test and what a test talks to it with: its own database and group, a
/// client, and the test's turn ([`one_service_at_a_time`]), held until the service stopped.
/// Each service's tests build their own helpers on top (`Deref` to it).
pub struct ServiceUnderTest {
    pub service: TestService,
    pub client: crate::Client,
    /// Released after the service stopped (fields drop in order).
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl std::fmt::Debug for ServiceUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceUnderTest")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ServiceUnderTest {
    /// Waits for the test's turn, then starts the service `definition` declares
    /// ([`TestService::start`]) with a client `<name>-test`.
    pub async fn start(definition: &Definition) -> Result<Self> {
        service_kit::init_test_subscriber();
        let turn = one_service_at_a_time().await;
        let service = TestService::start(definition).await?;
        Ok(Self {
            service,
            client: crate::Client::new(&format!("{}-test", definition.name))?,
            _turn: turn,
        })
    }

    /// The service's database.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.service.database.pool()
    }

    /// `record` as its producer would send it (an event, or a command nobody answers).
    pub async fn message<T: contracts::Contract>(&self, record: &T) -> Result<Message> {
        self.client.message(record).await
    }

    /// Publishes `record` on its topic as [`ServiceUnderTest::message`] makes it.
    pub async fn publish<T: contracts::Contract>(&self, record: &T) -> Result<Message> {
        let message = self.message(record).await?;
        self.client.publish(T::TOPIC, &message).await?;
        Ok(message)
    }

    /// `record` as saga `saga` would send it: replies go to `reply_to`, in the saga's
    /// conversation.
    pub async fn saga_command<T: contracts::Contract>(
        &self,
        record: &T,
        saga: &str,
        reply_to: &str,
    ) -> Result<Message> {
        self.client.saga_command(record, saga, reply_to).await
    }

    /// Waits until the service relayed everything it appended about `key`.
    pub async fn relayed(&self, key: &str) -> Result<()> {
        self.service.relayed(key).await
    }

    /// Stops the service gracefully (then gives up the turn) and returns how its run ended.
    pub async fn stop(self) -> Result<()> {
        let Self { service, _turn, .. } = self;
        service.stop().await
    }

    /// Waits until the service handled `message`.
    pub async fn handled(&self, message: &Message) -> Result<()> {
        self.service.handled(message).await
    }

    /// The dead letters keyed `key` that this test's group sent (another group's service may
    /// refuse the same records), once there are `count`.
    pub async fn dead_letters(
        &self,
        key: impl std::fmt::Display,
        count: usize,
    ) -> Result<Vec<messaging::Received>> {
        let topic = format!("ftgo.{}-service.dlt", self.service.name);
        let (key, group) = (key.to_string(), self.service.group.as_str());
        crate::eventually(&format!("{count} dead letters of {key}"), || async {
            let letters: Vec<messaging::Received> = crate::records_of(&topic, &key, 0)
                .await?
                .into_iter()
                .filter(|r| {
                    r.message.headers.get(messaging::header::dead_letter::GROUP) == Some(group)
                })
                .collect();
            Ok((letters.len() >= count).then_some(letters))
        })
        .await
    }
}

/// Each dead letter's message id and reason, for comparing with what a test sent.
pub fn ids_and_reasons(letters: &[messaging::Received]) -> Vec<(Option<&str>, Option<&str>)> {
    letters
        .iter()
        .map(|l| {
            (
                l.message.id(),
                l.message
                    .headers
                    .get(messaging::header::dead_letter::REASON),
            )
        })
        .collect()
}

/// A newtype over [`ServiceUnderTest`] for one service's tests, with `start()` and `Deref`, so
/// the tests add their own helpers to it: `service_under_test!(Harness, kitchen_service::DEFINITION);`.
#[macro_export]
macro_rules! service_under_test {
    ($(#[$meta:meta])* $name:ident, $definition:expr) => {
        $(#[$meta])*
        struct $name($crate::ServiceUnderTest);

        impl ::std::ops::Deref for $name {
            type Target = $crate::ServiceUnderTest;

            fn deref(&self) -> &$crate::ServiceUnderTest {
                &self.0
            }
        }

        impl $name {
            async fn start() -> ::anyhow::Result<Self> {
                Ok(Self($crate::ServiceUnderTest::start(&$definition).await?))
            }
        }
    };
}
