//! The service's HTTP port as an orchestrator and Prometheus see it: liveness, readiness that
//! names what is not ready, and metrics that count what the `Measured` layer saw.

use messaging::{Handler, HandlerError, Message, Origin, Reason, Received, handler_fn};
use service_kit::http::{Health, bind, serve};
use service_kit::{Measured, Metrics};
use tokio_util::sync::CancellationToken;

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
    let listener = bind(0).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = serve(
        listener,
        health.clone(),
        metrics.clone(),
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
