//! The REST APIs over the real stack: an order placed, read, retried and cancelled over HTTP
//! while its sagas run on Kafka; a restaurant and a consumer registered over HTTP and ordered
//! from; an order picked up and dropped off by its courier over HTTP; problem details for what they refuse; and the order API answering while the
//! consumer, kitchen and accounting services are stopped, the orders completing once they are
//! back.

mod stack;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use contracts::kitchen::commands::{
    AcceptTicket, MarkTicketReadyForPickup, StartTicketPreparation,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::{Stack, World, seed};
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(60);

/// A service's API, as another application calls it.
struct Api {
    base: String,
    http: reqwest::Client,
}

/// An answer: status, Location, content type and body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    location: Option<String>,
    content_type: String,
    body: Value,
}

impl Api {
    fn of(stack: &Stack, name: &str) -> Result<Self> {
        let service = stack
            .services
            .iter()
            .find(|s| s.name == name)
            .with_context(|| format!("the {name} service is not started"))?;
        Ok(Self {
            base: format!("http://{}", service.http),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let response = request.send().await?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, location) = (response.status(), header("location"));
        let content_type = header("content-type").unwrap_or_default();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            location,
            content_type,
            body,
        })
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Result<Answer> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Result<Answer> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// Reads order `href` until its state is `state`.
    async fn wait_for_state(&self, href: &str, state: &str) -> Result<Value> {
        let deadline = Instant::now() + WITHIN;
        loop {
            let answer = self.get(href).await?;
            ensure!(answer.status == StatusCode::OK, "GET {href}: {answer:?}");
            if answer.body["state"] == state {
                return Ok(answer.body);
            }
            ensure!(
                Instant::now() < deadline,
                "{href} is {} after {WITHIN:?}, not {state}",
                answer.body["state"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A new order of `items` by `consumer`, as JSON.
fn new_order(world: &World, consumer: Uuid, items: &[(&str, i32)]) -> Value {
    json!({
        "consumerId": consumer,
        "restaurantId": world.restaurant,
        "lineItems": items
            .iter()
            .map(|(item, quantity)| json!({ "menuItemId": item, "quantity": quantity }))
            .collect::<Vec<_>>(),
        "deliveryAddress": {
            "street1": "9 Elm St", "street2": "Apt 3", "city": "Oakland", "state": "CA",
            "zip": "94610"
        },
        "deliveryTime": 1_900_000_000_000_i64,
    })
}

/// `answer` is the problem `code` with `status`.
fn is_problem(answer: &Answer, status: StatusCode, code: &str) -> Result<()> {
    ensure!(
        answer.status == status
            && answer.content_type == "application/problem+json"
            && answer.body["type"] == format!("urn:ftgo:problem:{code}")
            && answer.body["status"] == status.as_u16(),
        "expected the problem {code} ({status}), got {answer:?}"
    );
    Ok(())
}

/// Placed with an Idempotency-Key (retried: the same answer; the key reused for another body:
/// refused), approved by the saga, then cancelled.
async fn placed_retried_and_cancelled(api: &Api, world: &World) -> Result<()> {
    let order = new_order(
        world,
        world.alice,
        &[("samosa", 2), ("chicken-vindaloo", 1)],
    );
    let key = format!("rest-{}", Uuid::new_v4());
    let first = api.post("/orders", Some(&key), &order).await?;
    ensure!(
        first.status == StatusCode::ACCEPTED,
        "POST /orders: {first:?}"
    );
    let id = first.body["orderId"]
        .as_str()
        .context("no orderId")?
        .to_owned();
    let href = format!("/orders/{id}");
    ensure!(
        first.location.as_deref() == Some(href.as_str()) && first.body["href"] == href,
        "Location {:?}, href {}, expected {href}",
        first.location,
        first.body["href"]
    );
    ensure!(
        first.body["state"] == "APPROVAL_PENDING"
            && first.body["total"] == json!({ "amountMinor": 2 * 450 + 1_295, "currency": "USD" })
            && first.body["lineItems"][1]["name"] == "Chicken Vindaloo",
        "the accepted order: {}",
        first.body
    );
    let retry = api.post("/orders", Some(&key), &order).await?;
    ensure!(
        retry.status == StatusCode::ACCEPTED
            && retry.body == first.body
            && retry.location == first.location,
        "the retry got {retry:?}, not the first answer"
    );
    let other = new_order(world, world.alice, &[("samosa", 3)]);
    is_problem(
        &api.post("/orders", Some(&key), &other).await?,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    )?;

    api.wait_for_state(&href, "APPROVED").await?;
    let cancel = api
        .post(
            &format!("{href}/cancel"),
            None,
            &json!({ "reason": "changed my mind" }),
        )
        .await?;
    ensure!(
        cancel.status == StatusCode::ACCEPTED && cancel.body["state"] == "CANCEL_PENDING",
        "POST {href}/cancel: {cancel:?}"
    );
    api.wait_for_state(&href, "CANCELLED").await?;
    Ok(())
}

/// A client-chosen id makes a retry safe without a key.
async fn client_chosen_id(api: &Api, world: &World) -> Result<()> {
    let id = Uuid::new_v4();
    let mut order = new_order(world, world.alice, &[("samosa", 1)]);
    order["orderId"] = json!(id);
    let first = api.post("/orders", None, &order).await?;
    let retry = api.post("/orders", None, &order).await?;
    ensure!(
        first.status == StatusCode::ACCEPTED
            && first.body["orderId"] == json!(id)
            && retry.status == first.status
            && retry.body == first.body,
        "POST twice with orderId {id}: {first:?}, then {retry:?}"
    );
    api.wait_for_state(&format!("/orders/{id}"), "APPROVED")
        .await?;
    Ok(())
}

/// An unknown menu item is a 422 with the reason's code, and nothing is written; an order the
/// saga rejects (a consumer the consumer service does not know) cannot be cancelled (409).
async fn refused(api: &Api, world: &World) -> Result<()> {
    let id = Uuid::new_v4();
    let mut order = new_order(world, world.alice, &[("pizza", 1)]);
    order["orderId"] = json!(id);
    let answer = api.post("/orders", None, &order).await?;
    is_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown-menu-item",
    )?;
    ensure!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pizza")),
        "the detail does not name the item: {answer:?}"
    );
    is_problem(
        &api.get(&format!("/orders/{id}")).await?,
        StatusCode::NOT_FOUND,
        "not-found",
    )?;

    let stranger = api
        .post(
            "/orders",
            None,
            &new_order(world, world.stranger, &[("samosa", 1)]),
        )
        .await?;
    ensure!(stranger.status == StatusCode::ACCEPTED, "{stranger:?}");
    let href = stranger.location.context("no Location")?;
    let rejected = api.wait_for_state(&href, "REJECTED").await?;
    ensure!(
        rejected["rejection"]["reason"] == "CONSUMER_VALIDATION_FAILED",
        "rejected for {}",
        rejected["rejection"]
    );
    is_problem(
        &api.post(&format!("{href}/cancel"), None, &json!({}))
            .await?,
        StatusCode::CONFLICT,
        "order-not-approved",
    )?;
    is_problem(
        &api.post(
            &format!("/orders/{}/cancel", Uuid::new_v4()),
            None,
            &json!({}),
        )
        .await?,
        StatusCode::NOT_FOUND,
        "not-found",
    )?;
    Ok(())
}

/// A restaurant and a consumer registered over REST (a retry answered the same, a taken id
/// refused, a bad menu refused), then an order at them placed over REST and approved: their
/// events reached the order service's replica and accounting.
async fn restaurant_and_consumer(stack: &Stack, api: &Api) -> Result<()> {
    let restaurants = Api::of(stack, "restaurant")?;
    let consumers = Api::of(stack, "consumer")?;
    let restaurant = Uuid::new_v4();
    let price = |minor: i64, currency: &str| json!({ "amountMinor": minor, "currency": currency });
    let new_restaurant = |menu: Value| {
        json!({
            "restaurantId": restaurant,
            "name": "Thali House",
            "address": { "street1": "2 Spice Rd", "city": "Oakland", "state": "CA", "zip": "94612" },
            "menuItems": menu,
        })
    };
    let menu = json!([
        { "id": "thali", "name": "Thali", "price": price(1_500, "USD") },
        { "id": "lassi", "name": "Mango lassi", "price": price(350, "USD") },
    ]);
    let created = restaurants
        .post("/restaurants", None, &new_restaurant(menu.clone()))
        .await?;
    let href = format!("/restaurants/{restaurant}");
    ensure!(
        created.status == StatusCode::CREATED
            && created.location.as_deref() == Some(href.as_str())
            && created.body["menuVersion"] == 1
            && created.body["menuItems"].as_array().map(Vec::len) == Some(2),
        "POST /restaurants: {created:?}"
    );
    let retry = restaurants
        .post("/restaurants", None, &new_restaurant(menu.clone()))
        .await?;
    ensure!(
        retry.status == StatusCode::CREATED && retry.body == created.body,
        "the retry got {retry:?}"
    );
    let read = restaurants.get(&href).await?;
    ensure!(
        read.status == StatusCode::OK && read.body == created.body,
        "GET {href}: {read:?}"
    );
    is_problem(
        &restaurants
            .post(
                "/restaurants",
                Some("another-request"),
                &new_restaurant(menu.clone()),
            )
            .await?,
        StatusCode::CONFLICT,
        "restaurant-exists",
    )?;
    for bad in [
        json!([{ "id": "a", "name": "A", "price": price(1, "USD") }, { "id": "a", "name": "B", "price": price(2, "USD") }]),
        json!([{ "id": "a", "name": "A", "price": price(-1, "USD") }]),
        json!([{ "id": "a", "name": "A", "price": price(1, "usd") }]),
        json!([{ "id": "", "name": "A", "price": price(1, "USD") }]),
    ] {
        let mut body = new_restaurant(bad);
        body["restaurantId"] = json!(Uuid::new_v4());
        is_problem(
            &restaurants.post("/restaurants", None, &body).await?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
        )?;
    }

    let key = format!("consumer-{}", Uuid::new_v4());
    let person = json!({ "name": { "firstName": "Chandra", "lastName": "Rao" } });
    let consumer = consumers.post("/consumers", Some(&key), &person).await?;
    ensure!(
        consumer.status == StatusCode::CREATED
            && consumer.body["orderLimit"] == price(100_000, "USD"),
        "POST /consumers: {consumer:?}"
    );
    let again = consumers.post("/consumers", Some(&key), &person).await?;
    ensure!(again.body == consumer.body, "the retry got {again:?}");
    let consumer_id = consumer.body["consumerId"]
        .as_str()
        .context("no consumerId")?
        .to_owned();
    let read = consumers.get(&format!("/consumers/{consumer_id}")).await?;
    ensure!(read.body == consumer.body, "GET the consumer: {read:?}");
    is_problem(
        &consumers
            .get(&format!("/consumers/{}", Uuid::new_v4()))
            .await?,
        StatusCode::NOT_FOUND,
        "not-found",
    )?;

    // Ordered from: once the order service's replica has the restaurant and accounting has
    // opened the account.
    stack
        .recorder
        .wait_for(&consumer_id, "AccountOpened", WITHIN)
        .await?;
    let order_service = stack
        .services
        .iter()
        .find(|s| s.name == "order")
        .context("no order service")?;
    stack::wait_until(WITHIN, || async {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM restaurants WHERE id = $1)")
                .bind(restaurant)
                .fetch_one(order_service.database.pool())
                .await?,
        )
    })
    .await
    .context("the order service's replica")?;
    let world = World {
        restaurant,
        alice: consumer_id.parse()?,
        stranger: Uuid::new_v4(),
    };
    let order = api
        .post(
            "/orders",
            None,
            &new_order(&world, world.alice, &[("thali", 2)]),
        )
        .await?;
    ensure!(
        order.status == StatusCode::ACCEPTED && order.body["total"] == price(3_000, "USD"),
        "POST /orders at the new restaurant: {order:?}"
    );
    api.wait_for_state(&order.location.context("no Location")?, "APPROVED")
        .await?;
    Ok(())
}

/// An order placed over REST, through the kitchen (its commands, on Kafka), then picked up and
/// dropped off by its courier over the delivery service's REST API: actions out of turn or by
/// another courier refused, a retried pick-up answered as done.
async fn delivered(stack: &Stack, api: &Api, world: &World) -> Result<()> {
    let deliveries = Api::of(stack, "delivery")?;
    let order = api
        .post(
            "/orders",
            None,
            &new_order(world, world.alice, &[("samosa", 1)]),
        )
        .await?;
    ensure!(
        order.status == StatusCode::ACCEPTED,
        "POST /orders: {order:?}"
    );
    let order_href = order.location.context("no Location")?;
    api.wait_for_state(&order_href, "APPROVED").await?;
    let order_id: Uuid = order.body["orderId"]
        .as_str()
        .context("no orderId")?
        .parse()?;
    let href = format!("/deliveries/{order_id}");
    is_problem(
        &deliveries.get(&href).await?,
        StatusCode::NOT_FOUND,
        "not-found",
    )?;
    stack
        .client
        .send(&AcceptTicket {
            order_id,
            ready_by: 1_900_000_000_000,
        })
        .await?;
    stack
        .client
        .send(&StartTicketPreparation { order_id })
        .await?;
    // Not ready yet: the courier cannot take it.
    let scheduled = wait_for_delivery(&deliveries, &href, |d| d["courierId"].is_string()).await?;
    let courier = scheduled["courierId"]
        .as_str()
        .context("no courier")?
        .to_owned();
    let pick_up = format!("{href}/pickup");
    let drop_off = format!("{href}/dropoff");
    let by = |courier: &str| json!({ "courierId": courier });
    is_problem(
        &deliveries.post(&drop_off, None, &by(&courier)).await?,
        StatusCode::CONFLICT,
        "delivery-not-picked-up",
    )?;
    stack
        .client
        .send(&MarkTicketReadyForPickup { order_id })
        .await?;
    wait_for_delivery(&deliveries, &href, |d| d["readyForPickup"] == true).await?;
    is_problem(
        &deliveries
            .post(&pick_up, None, &by(&Uuid::new_v4().to_string()))
            .await?,
        StatusCode::CONFLICT,
        "wrong-courier",
    )?;
    for attempt in ["first", "retry"] {
        let picked = deliveries.post(&pick_up, None, &by(&courier)).await?;
        ensure!(
            picked.status == StatusCode::OK
                && picked.body["state"] == "PICKED_UP"
                && picked.body["pickedUpAt"].is_i64(),
            "pick-up ({attempt}): {picked:?}"
        );
    }
    let dropped = deliveries.post(&drop_off, None, &by(&courier)).await?;
    ensure!(
        dropped.status == StatusCode::OK && dropped.body["state"] == "DELIVERED",
        "drop-off: {dropped:?}"
    );
    let key = order_id.to_string();
    stack
        .recorder
        .wait_for(&key, "DeliveryDelivered", WITHIN)
        .await?;
    let picked_up = stack
        .recorder
        .types_on(&key, "ftgo.delivery.events")
        .iter()
        .filter(|t| *t == "DeliveryPickedUp")
        .count();
    ensure!(
        picked_up == 1,
        "{picked_up} DeliveryPickedUp for one pick-up and its retry"
    );
    Ok(())
}

/// Reads delivery `href` until `check` says yes of it.
async fn wait_for_delivery(
    deliveries: &Api,
    href: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let answer = deliveries.get(href).await?;
        if answer.status == StatusCode::OK && check(&answer.body) {
            return Ok(answer.body);
        }
        ensure!(
            Instant::now() < deadline,
            "{href} after {WITHIN:?}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What is not a request at all: not JSON, not JSON's content type, an id that is not a UUID.
async fn malformed(api: &Api) -> Result<()> {
    let url = format!("{}/orders", api.base);
    let not_json = api
        .send(
            api.http
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"consumerId\":"),
        )
        .await?;
    is_problem(&not_json, StatusCode::BAD_REQUEST, "malformed-body")?;
    let text = api
        .send(
            api.http
                .post(&url)
                .header("content-type", "text/plain")
                .body("hello"),
        )
        .await?;
    is_problem(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-json")?;
    is_problem(
        &api.get("/orders/not-a-uuid").await?,
        StatusCode::BAD_REQUEST,
        "invalid-id",
    )?;
    Ok(())
}

/// Latencies of `n` POST /orders and as many GETs of what they placed: (hrefs, POST times,
/// GET times).
async fn place_and_read(
    api: &Api,
    world: &World,
    n: usize,
) -> Result<(Vec<String>, Vec<Duration>, Vec<Duration>)> {
    let (mut hrefs, mut posts, mut gets) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let start = Instant::now();
        let answer = api
            .post(
                "/orders",
                None,
                &new_order(world, world.alice, &[("samosa", 1)]),
            )
            .await?;
        posts.push(start.elapsed());
        ensure!(
            answer.status == StatusCode::ACCEPTED,
            "POST /orders: {answer:?}"
        );
        let href = answer.location.context("no Location")?;
        let start = Instant::now();
        let read = api.get(&href).await?;
        gets.push(start.elapsed());
        ensure!(read.status == StatusCode::OK, "GET {href}: {read:?}");
        hrefs.push(href);
    }
    Ok((hrefs, posts, gets))
}

/// p50 and max, in milliseconds.
fn figures(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.1} ms, max {:.1} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_applications_place_read_and_cancel_orders_over_rest() -> Result<()> {
    service_kit::init_test_subscriber();
    let mut stack = Stack::start(
        &[
            "restaurant",
            "consumer",
            "accounting",
            "kitchen",
            "order",
            "delivery",
        ],
        |_, figment| figment,
    )
    .await?;
    let world = seed(&stack).await?;
    let api = Api::of(&stack, "order")?;

    let (a, b, c, d, e, f) = tokio::join!(
        placed_retried_and_cancelled(&api, &world),
        client_chosen_id(&api, &world),
        refused(&api, &world),
        malformed(&api),
        restaurant_and_consumer(&stack, &api),
        delivered(&stack, &api, &world),
    );
    let failures: Vec<String> = [
        ("placed, retried and cancelled", a),
        ("client-chosen id", b),
        ("refused", c),
        ("malformed", d),
        ("a restaurant and a consumer", e),
        ("delivered", f),
    ]
    .into_iter()
    .filter_map(|(name, outcome)| outcome.err().map(|e| format!("{name}: {e:#}")))
    .collect();
    ensure!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Self-contained: with the consumer, kitchen and accounting services down the API answers
    // as fast as with them up; the orders wait in APPROVAL_PENDING and complete once they are
    // back.
    const N: usize = 20;
    let (up, mut up_posts, mut up_gets) = place_and_read(&api, &world, N).await?;
    for href in &up {
        api.wait_for_state(href, "APPROVED").await?;
    }
    let participants = ["consumer", "kitchen", "accounting"];
    for service in stack
        .services
        .iter_mut()
        .filter(|s| participants.contains(&s.name.as_str()))
    {
        service.pause().await?;
    }
    let (down, mut down_posts, mut down_gets) = place_and_read(&api, &world, N).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for href in &down {
        let order = api.get(href).await?;
        ensure!(
            order.body["state"] == "APPROVAL_PENDING",
            "{href} moved on while the participants were down: {}",
            order.body
        );
    }
    println!(
        "REST with every service up: POST /orders {}; GET /orders/{{id}} {}",
        figures(&mut up_posts),
        figures(&mut up_gets)
    );
    println!(
        "REST with consumer, kitchen and accounting down: POST /orders {}; GET /orders/{{id}} {}",
        figures(&mut down_posts),
        figures(&mut down_gets)
    );
    // Not a timing test: a bound no answer that waits on another service (or on a timeout)
    // would meet.
    let slowest = down_posts.iter().chain(&down_gets).max().copied();
    ensure!(
        slowest < Some(Duration::from_secs(5)),
        "an answer took {slowest:?} with the participants down"
    );
    let resumed = Instant::now();
    for service in stack
        .services
        .iter_mut()
        .filter(|s| participants.contains(&s.name.as_str()))
    {
        service.resume().await?;
    }
    for href in &down {
        api.wait_for_state(href, "APPROVED").await?;
    }
    println!(
        "the {N} orders placed while they were down were APPROVED {:.1} s after they came back",
        resumed.elapsed().as_secs_f64()
    );
    Ok(())
}
