//! The schema registry's refusals, against the real platform (HTTP basic against the principals
//! of `ftgo acls plan`, role-based authorization, deploy/local/up): nobody anonymous reads or
//! deletes; a service's principal reads and looks its schemas up but cannot register or delete;
//! a codec that does not register names the deployment step when a schema is missing; the core
//! API's deletions are off. Each refusal is shown beside what the same principal may do.

use anyhow::{Result, ensure};
use contracts::{Codec, EncodeError, RegistryAccess};
use reqwest::StatusCode;
use test_support::{Platform, TestTopic};

fn schema(topic: &str, name: &str) -> String {
    serde_json::json!({
        "type": "record",
        "name": name,
        "namespace": topic,
        "fields": [{ "name": "orderId", "type": "string" }]
    })
    .to_string()
}

/// The registry as `principal`, with the password up made for it.
fn as_principal(principal: &str) -> Result<RegistryAccess> {
    let platform = Platform::from_env();
    Ok(RegistryAccess::anonymous(&platform.schema_registry_url)
        .as_user(principal, &platform.password(principal)?))
}

/// Encodes a record `name` of `topic` (`schema`) through the registry as `access`: the
/// codec's outcome.
async fn encode(
    access: &RegistryAccess,
    topic: &TestTopic,
    name: &str,
) -> Result<Result<Vec<u8>, EncodeError>> {
    let text = schema(topic.name(), name);
    let codec = Codec::new(access, [(topic.name(), text.as_str())])?;
    let value = apache_avro::types::Value::Record(vec![(
        "orderId".into(),
        apache_avro::types::Value::String("order-1".into()),
    )]);
    Ok(codec
        .encode_value(topic.name(), &format!("{}.{name}", topic.name()), value)
        .await)
}

/// A subject of a fresh topic with one version, registered by the tests' principal. Tried up to
/// three times: while other tests' subjects are deleted (their topics dropped), Apicurio 3.0.9
/// may answer a registration 500 ("violates foreign key constraint fk_versions_2": the content
/// row it found was deleted meanwhile). Seen once in CI; what these tests check comes after.
async fn registered_subject(topic: &TestTopic) -> Result<String> {
    let registering = Platform::from_env().registry()?.registering();
    let mut tries = 0;
    while let Err(error) = encode(&registering, topic, "Placed").await? {
        tries += 1;
        let raced =
            matches!(&error, EncodeError::Registry { detail, .. } if detail.contains("500"));
        if !raced || tries == 3 {
            return Err(error.into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(contracts::subject(
        topic.name(),
        &format!("{}.Placed", topic.name()),
    ))
}

/// Whether `subject` is still there, asked as a principal that may read.
async fn still_there(subject: &str) -> Result<bool> {
    let reader = as_principal("ftgo-cli")?;
    let request = reader
        .http_client()?
        .get(format!("{}/subjects/{subject}/versions", reader.url()));
    Ok(status(&reader, request).await? == StatusCode::OK)
}

async fn status(access: &RegistryAccess, request: reqwest::RequestBuilder) -> Result<StatusCode> {
    Ok(access.authorize(request).send().await?.status())
}

#[tokio::test]
async fn nobody_anonymous_reads_or_deletes() -> Result<()> {
    let topic = TestTopic::create("registry_anonymous", 1).await?;
    let subject = registered_subject(&topic).await?;
    let anonymous = RegistryAccess::anonymous(&Platform::from_env().schema_registry_url);
    let http = anonymous.http_client()?;
    let url = |path: &str| format!("{}/{path}", anonymous.url());
    let listed = status(&anonymous, http.get(url("subjects"))).await?;
    ensure!(
        listed == StatusCode::UNAUTHORIZED,
        "anonymous list: {listed}"
    );
    let deleted = status(&anonymous, http.delete(url(&format!("subjects/{subject}")))).await?;
    ensure!(
        deleted == StatusCode::UNAUTHORIZED,
        "anonymous delete: {deleted}"
    );
    ensure!(still_there(&subject).await?, "{subject} is gone");
    Ok(())
}

#[tokio::test]
async fn a_service_reads_and_looks_up_but_cannot_register_or_delete() -> Result<()> {
    let topic = TestTopic::create("registry_service", 1).await?;
    let subject = registered_subject(&topic).await?;
    let kitchen = as_principal("ftgo-kitchen")?;
    let http = kitchen.http_client()?;
    let url = |path: &str| format!("{}/{path}", kitchen.url());

    // What it may: look up every schema it produces (as the service does at start).
    let codec = Codec::for_catalog(&kitchen)?;
    let produced: Vec<(&str, &str)> = contracts::catalog::produced_by("kitchen")
        .map(|(channel, record)| (channel.topic, record.full_name))
        .collect();
    ensure!(!produced.is_empty());
    codec.prepare(produced).await?;

    // What it may not: register a schema, even as a codec that registers...
    let other = TestTopic::create("registry_service_new", 1).await?;
    let refused = encode(&kitchen.clone().registering(), &other, "Forged")
        .await?
        .expect_err("a service's principal registered a schema");
    ensure!(
        matches!(&refused, EncodeError::Registry { detail, .. } if detail.contains("403")),
        "{refused}"
    );
    // ...set a subject's compatibility, or delete one.
    let configured = status(
        &kitchen,
        http.put(url(&format!("config/{subject}")))
            .json(&serde_json::json!({ "compatibility": "NONE" })),
    )
    .await?;
    ensure!(configured == StatusCode::FORBIDDEN, "config: {configured}");
    let deleted = status(&kitchen, http.delete(url(&format!("subjects/{subject}")))).await?;
    ensure!(deleted == StatusCode::FORBIDDEN, "delete: {deleted}");
    ensure!(still_there(&subject).await?, "{subject} is gone");
    Ok(())
}

#[tokio::test]
async fn a_codec_that_does_not_register_names_the_deployment_step() -> Result<()> {
    let topic = TestTopic::create("registry_unregistered", 1).await?;
    // The tests' principal may register; this codec, like a service's, does not.
    let missing = encode(&Platform::from_env().registry()?, &topic, "Unregistered")
        .await?
        .expect_err("encoded with a schema nobody registered");
    ensure!(
        matches!(missing, EncodeError::NotRegistered { .. })
            && missing.to_string().contains("ftgo schemas register"),
        "{missing}"
    );
    Ok(())
}

#[tokio::test]
async fn the_core_api_deletes_nothing_even_for_the_admin() -> Result<()> {
    let topic = TestTopic::create("registry_core_delete", 1).await?;
    let subject = registered_subject(&topic).await?;
    let admin = as_principal("ftgo-admin")?;
    let core = admin.url().replace("/apis/ccompat/v7", "/apis/registry/v3");
    let http = admin.http_client()?;
    let artifact = format!("{core}/groups/default/artifacts/{subject}");
    let read = status(&admin, http.get(&artifact)).await?;
    ensure!(read == StatusCode::OK, "read as admin: {read}");
    let deleted = status(&admin, http.delete(&artifact)).await?;
    ensure!(
        deleted == StatusCode::METHOD_NOT_ALLOWED,
        "core delete: {deleted}"
    );
    Ok(())
}
