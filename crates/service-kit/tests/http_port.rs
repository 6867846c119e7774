//! The service's HTTP port as an orchestrator and Prometheus see it: liveness, readiness that
//! names what is not ready, and metrics that count what the `Measured` layer saw.

use messaging::{Handler, HandlerError, Message, Origin, Reason, Received, handler_fn};
use service_kit::http::{Health, bind, serve};
use service_kit::{Measured, Metrics};
use tokio_util::sync::CancellationToken;

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn received(payload: &[u8]) -> Received {
    Received {
        message: Message::new(Some("order-1".into()), payload.to_vec()),
        origin: Origin {
            topic: "ftgo.kitchen.commands".into(),
            partition: 0,
            offset: 1,
            timestamp_ms: None,
        },
        trace: None,
    }
}

#[tokio::test]
async fn liveness_readiness_and_metrics_are_served() -> Result<(), Box<dyn std::error::Error>> {
    let health = Health::new();
    let metrics = Metrics::new();
    health.not_ready("kafka", "no partitions assigned yet");
    let listener = bind(LOOPBACK, 0).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = serve(
        listener,
        health.clone(),
        metrics.clone(),
        None,
        stop.clone().cancelled_owned(),
    );
    let client = reqwest::Client::new();

    let live = client.get(format!("{base}/health/live")).send().await?;
    assert_eq!(live.status(), 200);
    let ready = client.get(format!("{base}/health/ready")).send().await?;
    assert_eq!(ready.status(), 503);
    assert!(
        ready
            .text()
            .await?
            .contains("kafka: no partitions assigned yet")
    );
    health.ready("kafka");
    let ready = client.get(format!("{base}/health/ready")).send().await?;
    assert_eq!(ready.status(), 200);

    let handler = Measured::new(
        handler_fn(|received: Received| async move {
            if received.message.payload == b"bad" {
                Err(HandlerError::permanent(
                    Reason::InvalidContent,
                    "unreadable",
                ))
            } else {
                Ok(())
            }
        }),
        metrics.clone(),
    );
    handler.handle(&received(b"good")).await?;
    assert!(handler.handle(&received(b"bad")).await.is_err());
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for expected in [
        r#"ftgo_messages_handled_total{topic="ftgo.kitchen.commands",outcome="ok"} 1"#,
        r#"ftgo_messages_handled_total{topic="ftgo.kitchen.commands",outcome="invalid-content"} 1"#,
        r#"ftgo_handler_duration_seconds_count{topic="ftgo.kitchen.commands"} 2"#,
        "# TYPE ftgo_outbox_backlog gauge",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    stop.cancel();
    server.await??;
    Ok(())
}

/// Replicas sharing the host's network (compose.yaml): each takes the first free port of its
/// service's, +10, +20, ..., writes it down, and `<name>-service health` asks that one.
#[tokio::test]
async fn a_replica_takes_the_next_free_port_and_health_asks_its_own()
-> Result<(), Box<dyn std::error::Error>> {
    use service_kit::http::{bind_first_free, check};
    use service_kit::{HttpSettings, INSTANCE_PORT_STEP};

    // The first candidate is taken, as by another replica.
    let held = bind(LOOPBACK, 0).await?;
    let taken = held.local_addr()?.port();
    let dir = std::env::temp_dir().join(format!("ftgo-http-port-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let one_try = HttpSettings {
        host: LOOPBACK,
        port: taken,
        port_attempts: 1,
        port_file: None,
    };
    let refused = bind_first_free(&one_try)
        .await
        .expect_err("the only port is taken");
    assert!(
        refused.to_string().contains("FTGO_HTTP__PORT_ATTEMPTS"),
        "{refused}"
    );
    let settings = HttpSettings {
        host: LOOPBACK,
        port: taken,
        port_attempts: 3,
        port_file: Some(dir.join("port")),
    };
    let listener = bind_first_free(&settings).await?;
    let port = listener.local_addr()?.port();
    assert!(
        [taken + INSTANCE_PORT_STEP, taken + 2 * INSTANCE_PORT_STEP].contains(&port),
        "took {port}, next to {taken}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("port"))?.trim(),
        port.to_string()
    );

    let health = Health::new();
    health.not_ready("consumer", "joining the group");
    let stop = CancellationToken::new();
    let server = serve(
        listener,
        health.clone(),
        Metrics::new(),
        None,
        stop.clone().cancelled_owned(),
    );
    let waiting = check(&settings, false).await.expect_err("not ready yet");
    assert!(
        waiting.to_string().contains("consumer: joining the group"),
        "{waiting}"
    );
    assert_eq!(check(&settings, true).await?, "alive\n");
    health.ready("consumer");
    assert_eq!(check(&settings, false).await?, "ready\n");
    // An instance told to listen everywhere is asked on the loopback.
    let everywhere = HttpSettings {
        host: std::net::Ipv4Addr::UNSPECIFIED.into(),
        ..settings.clone()
    };
    assert_eq!(check(&everywhere, false).await?, "ready\n");
    // Without the file, the configured port is asked: the held one, where nothing answers.
    let unanswered = HttpSettings {
        port_file: None,
        ..settings.clone()
    };
    assert!(check(&unanswered, false).await.is_err());

    stop.cancel();
    server.await??;
    drop(held);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
