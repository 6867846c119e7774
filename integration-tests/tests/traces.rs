//! Traces you can see: every service runs as a process of its own with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver in this test. One order is
//! placed over REST with a `traceparent` of the test's own, and taken to APPROVED by its saga;
//! the receiver must then hold one trace for it, whose spans cover every service the order
//! touched and are parented as OpenTelemetry's messaging conventions draw it:
//!
//! - the order service's server span (`POST /orders`) is the child of the test's span;
//! - each publication (`send <topic>`, a producer span of the relay) is the child of the span
//!   that wrote its outbox row (a request's or a handled message's), in the same service;
//! - each handled message (`process <topic>`, a consumer span) is the child of the
//!   publication of that record, on the same topic, in the group of the service handling it;
//! - nothing else: every span's parent is in the trace.

mod stack;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use contracts::consumer::commands::CreateConsumer;
use contracts::consumer::commands::create_consumer::PersonName;
use contracts::restaurant::commands::CreateRestaurant;
use contracts::restaurant::commands::create_restaurant::Address;
use integration_tests::flow::{Recorder, order_topics};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};
use stack::processes::ServiceProcesses;
use stack::{World, menu, wait_until};
use test_support::{Client, Platform};
use uuid::Uuid;

/// A span as received, with its service.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: SpanKind,
    attributes: HashMap<String, String>,
    duration: Duration,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

/// An OTLP/HTTP receiver (protobuf, `POST /v1/traces`) keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    async fn start(self) -> Result<u16> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(port)
    }

    fn of_trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans
            .lock()
            .expect("lock")
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

async fn export(
    axum::extract::State(receiver): axum::extract::State<Receiver>,
    body: axum::body::Bytes,
) -> Result<([(&'static str, &'static str); 1], Vec<u8>), (axum::http::StatusCode, String)> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| (axum::http::StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.push(Span {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    attributes: attributes(&span.attributes),
                    duration: Duration::from_nanos(
                        span.end_time_unix_nano
                            .saturating_sub(span.start_time_unix_nano),
                    ),
                    name: span.name,
                });
            }
        }
    }
    receiver.spans.lock().expect("lock").extend(received);
    Ok((
        [("content-type", "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    ))
}

/// What is wrong with `spans` as the trace of one order (empty: nothing), given the test's own
/// span and each service's group.
fn faults(spans: &[Span], root: &str, groups: &HashMap<String, String>) -> Vec<String> {
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut faults = Vec::new();
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == root).collect();
    match roots.as_slice() {
        [server]
            if server.service == "order-service"
                && server.kind == SpanKind::Server
                && server.name == "POST /orders"
                && server.attribute("http.response.status_code") == Some("202") => {}
        other => faults.push(format!(
            "the test's span has {} children, not the order service's POST /orders (202): {other:?}",
            other.len()
        )),
    }
    for span in spans.iter().filter(|s| s.parent_span_id != root) {
        let Some(parent) = by_id.get(span.parent_span_id.as_str()) else {
            faults.push(format!(
                "{} of {}: its parent {} is not in the trace (yet)",
                span.name, span.service, span.parent_span_id
            ));
            continue;
        };
        match span.kind {
            SpanKind::Producer => {
                let wrote_it = parent.service == span.service
                    && matches!(parent.kind, SpanKind::Consumer | SpanKind::Server);
                if !wrote_it {
                    faults.push(format!(
                        "{} of {} is the child of {} of {}, which did not write its row",
                        span.name, span.service, parent.name, parent.service
                    ));
                }
                if span.attribute("messaging.kafka.offset").is_none() {
                    faults.push(format!("{} of {} has no offset", span.name, span.service));
                }
            }
            SpanKind::Consumer => {
                let topic = span.attribute("messaging.destination.name");
                if parent.kind != SpanKind::Producer
                    || parent.attribute("messaging.destination.name") != topic
                {
                    faults.push(format!(
                        "{} of {} is the child of {} of {}, not of the publication of its record",
                        span.name, span.service, parent.name, parent.service
                    ));
                }
                let group = span.attribute("messaging.consumer.group.name");
                if group != groups.get(&span.service).map(String::as_str) {
                    faults.push(format!(
                        "{} of {} names the group {group:?}",
                        span.name, span.service
                    ));
                }
                for key in [
                    "messaging.destination.partition.id",
                    "messaging.kafka.offset",
                    "messaging.message.id",
                ] {
                    if span.attribute(key).is_none() {
                        faults.push(format!("{} of {} has no {key}", span.name, span.service));
                    }
                }
            }
            _ => faults.push(format!(
                "{} of {} ({:?}) is neither a publication nor a handled message",
                span.name, span.service, span.kind
            )),
        }
        if matches!(span.kind, SpanKind::Producer | SpanKind::Consumer)
            && span.attribute("messaging.system") != Some("kafka")
        {
            faults.push(format!(
                "{} of {} has no messaging.system=kafka",
                span.name, span.service
            ));
        }
    }
    faults
}

/// The trace as an indented tree, children in start order, for a person to read.
fn tree(spans: &[Span], root: &str) -> String {
    fn walk(spans: &[Span], parent: &str, depth: usize, out: &mut String) {
        for span in spans.iter().filter(|s| s.parent_span_id == parent) {
            out.push_str(&format!(
                "{:indent$}{} [{}] {:.1} ms\n",
                "",
                span.name,
                span.service,
                span.duration.as_secs_f64() * 1e3,
                indent = 2 * depth
            ));
            walk(spans, &span.span_id, depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(spans, root, 0, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_every_service_it_touches() -> Result<()> {
    service_kit::init_test_subscriber();
    let platform = Platform::from_env();
    let receiver = Receiver::default();
    let port = receiver.clone().start().await?;
    let logs = std::env::temp_dir().join(format!("ftgo-traces-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let mut topics: Vec<&str> = order_topics();
    topics.extend(["ftgo.restaurant.events", "ftgo.consumer.events"]);
    let recorder = Recorder::start(&platform.bootstrap_servers, &topics)?;
    let client = Client::new("ftgo-traces")?;

    let env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ];
    let mut services = Vec::new();
    let mut groups = HashMap::new();
    let mut order_port = 0;
    for definition in &integration_tests::SERVICES {
        let mut service = ServiceProcesses::prepare(definition, &logs, env.clone()).await?;
        let (http, child) = service.spawn(0)?;
        ServiceProcesses::wait_ready(http).await?;
        service.instances.push((http, child));
        if definition.name == "order" {
            order_port = http;
        }
        groups.insert(
            format!("{}-service", definition.name),
            service.group.clone(),
        );
        services.push(service);
    }

    let world = World {
        restaurant: Uuid::new_v4(),
        alice: Uuid::new_v4(),
        stranger: Uuid::new_v4(),
    };
    client
        .send(&CreateRestaurant {
            restaurant_id: world.restaurant,
            name: "Ajanta".into(),
            address: Address {
                street1: "1 Curry Lane".into(),
                street2: None,
                city: "Oakland".into(),
                state: "CA".into(),
                zip: "94611".into(),
            },
            menu_items: menu(),
        })
        .await?;
    client
        .send(&CreateConsumer {
            consumer_id: world.alice,
            name: PersonName {
                first_name: "Alice".into(),
                last_name: "Traced".into(),
            },
        })
        .await?;
    let within = Duration::from_secs(90);
    recorder
        .wait_for(&world.alice.to_string(), "AccountOpened", within)
        .await?;
    for service in services
        .iter()
        .filter(|s| ["order", "kitchen"].contains(&s.name))
    {
        wait_until(within, || async {
            Ok(
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
                    .bind(world.restaurant)
                    .fetch_one(service.database.pool())
                    .await?,
            )
        })
        .await?;
    }

    // The test's own span, as a caller of the REST API would send it.
    let caller = messaging::TraceContext::new_root();
    let trace_id = caller.trace_id_hex();
    let root = caller.span_id_hex();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{order_port}");
    let placed = http
        .post(format!("{base}/orders"))
        .header("traceparent", caller.to_string())
        .json(&json!({
            "consumerId": world.alice,
            "restaurantId": world.restaurant,
            "lineItems": [{ "menuItemId": "samosa", "quantity": 2 }],
            "deliveryAddress": {
                "street1": "9 Elm St", "city": "Oakland", "state": "CA", "zip": "94610"
            },
            "deliveryTime": 1_900_000_000_000_i64,
        }))
        .send()
        .await?;
    ensure!(
        placed.status() == reqwest::StatusCode::ACCEPTED,
        "POST /orders: {}",
        placed.status()
    );
    let order: Value = placed.json().await?;
    let id = order["orderId"]
        .as_str()
        .context("the order's id")?
        .to_owned();
    wait_until(within, || {
        let http = http.clone();
        let url = format!("{base}/orders/{id}");
        async move {
            let order: Value = http.get(url).send().await?.json().await?;
            Ok(order["state"] == "APPROVED")
        }
    })
    .await
    .context("the order was not approved")?;

    // Spans arrive in batches, a child's often before its parent's: wait until the trace
    // covers the services and is whole, and has stopped growing.
    let expected: BTreeSet<&str> = [
        "order-service",
        "consumer-service",
        "kitchen-service",
        "accounting-service",
        "delivery-service",
    ]
    .into();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, Instant::now());
    let spans = loop {
        let spans = receiver.of_trace(&trace_id);
        let touched: BTreeSet<&str> = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Consumer)
            .map(|s| s.service.as_str())
            .collect();
        if spans.len() != last.0 {
            last = (spans.len(), Instant::now());
        }
        let settled = last.1.elapsed() > Duration::from_secs(2);
        if touched.is_superset(&expected) && faults(&spans, &root, &groups).is_empty() && settled {
            break spans;
        }
        if Instant::now() > deadline {
            bail!(
                "the trace of order {id} is not whole within 60 s: services handling it {touched:?}, \
                 faults {:#?}\n{}(service logs in {})",
                faults(&spans, &root, &groups),
                tree(&spans, &root),
                logs.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let publications = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Producer)
        .count();
    let handled = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Consumer)
        .count();
    println!(
        "order {id}: trace {trace_id}, {} spans ({publications} publications, {handled} handled \
         messages) from {} services\n{}",
        spans.len(),
        spans
            .iter()
            .map(|s| &s.service)
            .collect::<BTreeSet<_>>()
            .len(),
        tree(&spans, &root)
    );
    drop(services);
    Ok(())
}
