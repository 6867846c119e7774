//! `ftgo demo`: the demo's data (`ftgo seed --republish`), then four orders whose outcomes it
//! checks: one approved, one rejected by the consumer check, one rejected by the card limit,
//! and one approved and then cancelled; then the approved one goes through the kitchen and
//! the courier's hands to DELIVERED (`ftgo kitchen accept|start|ready`, `ftgo delivery
//! pick-up|drop-off`). Exits 0 when every outcome is the expected one, 1 otherwise (naming
//! the order and what came instead). deploy/local/demo and the compose
//! stack (`docker compose run --rm ftgo demo`) both run it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use apache_avro::Uuid;

use crate::act;
use crate::order::{self, Answer, CreateOptions, DEFAULT_ADDRESS, Outcome, WaitOptions};
use crate::seed::{self, demo_id};

/// `ftgo demo`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// How long each step (the seeding, each order) may take.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// One demo order: what it asks for and what should come of it.
struct Scenario {
    name: &'static str,
    consumer: Uuid,
    restaurant: &'static str,
    items: &'static [(&'static str, i32)],
    expected: Outcome,
    /// The rejection's `reason`, for a rejection.
    reason: Option<&'static str>,
}

fn scenarios() -> [Scenario; 4] {
    let alice = demo_id("consumer", "Alice Ray");
    [
        Scenario {
            name: "approved",
            consumer: alice,
            restaurant: "Ajanta",
            items: &[("samosa", 2), ("garlic-naan", 1)],
            expected: order::APPROVED,
            reason: None,
        },
        Scenario {
            name: "rejected: unknown consumer",
            consumer: Uuid::new_v4(),
            restaurant: "Ajanta",
            items: &[("samosa", 1)],
            expected: order::REJECTED,
            reason: Some("CONSUMER_VALIDATION_FAILED"),
        },
        Scenario {
            name: "rejected: over the card limit (650.00 > 500.00 USD)",
            consumer: demo_id("consumer", "Bob Sato"),
            restaurant: "Banquet Hall",
            items: &[("banquet-for-20", 1)],
            expected: order::REJECTED,
            reason: Some("CARD_AUTHORIZATION_FAILED"),
        },
        Scenario {
            name: "cancelled after approval",
            consumer: alice,
            restaurant: "Ajanta",
            items: &[("chicken-vindaloo", 1)],
            expected: order::APPROVED,
            reason: None,
        },
    ]
}

pub async fn demo(bootstrap: &str, registry: &str, options: &Options) -> Result<ExitCode> {
    out!("--- ftgo seed --republish");
    let seeded = seed::seed(
        bootstrap,
        registry,
        &seed::Options {
            print_ids: false,
            no_wait: false,
            timeout: options.timeout,
            groups: Vec::new(),
            republish: true,
            guests: 0,
        },
    )
    .await?;
    if seeded != ExitCode::SUCCESS {
        bail!("the demo data was not taken in (see above); the services may not be running");
    }
    let wait = WaitOptions {
        wait: true,
        timeout: options.timeout,
    };
    let mut placed = Vec::new();
    for scenario in scenarios() {
        out!("");
        out!("--- {}", scenario.name);
        let create = CreateOptions {
            consumer: scenario.consumer,
            restaurant: demo_id("restaurant", scenario.restaurant),
            items: scenario
                .items
                .iter()
                .map(|(item, quantity)| ((*item).to_owned(), *quantity))
                .collect(),
            order_id: None,
            address: order::parse_address(DEFAULT_ADDRESS).map_err(anyhow::Error::msg)?,
            deliver_in: Duration::from_secs(45 * 60),
            wait: wait.clone(),
        };
        let (order_id, answer) = order::place(bootstrap, registry, &create).await?;
        expect(&scenario, order_id, answer.as_ref())?;
        placed.push((scenario.name, order_id));
    }
    let (_, last) = placed[placed.len() - 1];
    out!("--- ftgo order cancel {last}");
    let cancelled = order::request_cancel(
        bootstrap,
        registry,
        last,
        Some("changed my mind".into()),
        &wait,
    )
    .await?;
    let came = cancelled.as_ref().map_or("nothing", |a| a.outcome.label);
    if came != order::CANCELLED.label {
        bail!(
            "the cancellation of order {last} came to {came}, not CANCELLED (ftgo order show {last})"
        );
    }
    let (_, first) = placed[0];
    deliver(bootstrap, registry, first, &wait).await?;
    out!("");
    out!("Demo orders, each with its expected outcome:");
    for (name, id) in &placed {
        out!("  {name}: {id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The approved order from the kitchen to the door: each step's event must come.
async fn deliver(
    bootstrap: &str,
    registry: &str,
    order_id: Uuid,
    wait: &WaitOptions,
) -> Result<()> {
    use act::{CourierArgs, DeliveryCommand as D, KitchenCommand as K};
    let wait = wait.clone();
    let courier = CourierArgs {
        courier: None,
        delivery_group: "delivery-service".to_owned(),
    };
    let ready_in = Duration::from_secs(20 * 60);
    let kitchen = [
        (
            "kitchen accept",
            K::Accept {
                order_id,
                ready_in,
                wait: wait.clone(),
            },
        ),
        (
            "kitchen start",
            K::Start {
                order_id,
                wait: wait.clone(),
            },
        ),
        (
            "kitchen ready",
            K::Ready {
                order_id,
                wait: wait.clone(),
            },
        ),
    ];
    let courier = [
        (
            "delivery pick-up",
            D::PickUp {
                order_id,
                courier: courier.clone(),
                wait: wait.clone(),
            },
        ),
        (
            "delivery drop-off",
            D::DropOff {
                order_id,
                courier,
                wait,
            },
        ),
    ];
    let said = |step: &str| -> Result<()> {
        out!("");
        out!("--- ftgo {step} {order_id}");
        Ok(())
    };
    let done = |step: &str, acted: act::Acted| {
        if acted == act::Acted::Done {
            return Ok(());
        }
        bail!("`ftgo {step} {order_id}` did not take effect (ftgo order show {order_id})")
    };
    for (step, command) in &kitchen {
        said(step)?;
        done(step, act::kitchen_act(bootstrap, registry, command).await?)?;
    }
    for (step, command) in &courier {
        said(step)?;
        done(step, act::delivery_act(bootstrap, registry, command).await?)?;
    }
    out!("");
    out!("--- ftgo order show {order_id}");
    order::show(bootstrap, registry, order_id, crate::output::Output::Text).await?;
    Ok(())
}

/// Fails unless `answer` is what `scenario` expects.
fn expect(scenario: &Scenario, order_id: Uuid, answer: Option<&Answer>) -> Result<()> {
    let came = answer.map_or("nothing", |a| a.outcome.label);
    if came != scenario.expected.label {
        bail!(
            "order {order_id} ({}) came to {came}, not {} (ftgo order show {order_id})",
            scenario.name,
            scenario.expected.label
        );
    }
    if let Some(reason) = scenario.reason {
        let given = answer.and_then(|a| a.field("reason")).unwrap_or("none");
        if given != reason {
            bail!(
                "order {order_id} ({}) was rejected for {given}, not {reason} (ftgo order show {order_id})",
                scenario.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;

    use super::*;

    fn rejected(reason: &str) -> Answer {
        Answer {
            outcome: order::REJECTED,
            value: Some(Value::Record(vec![(
                "reason".into(),
                Value::Enum(3, reason.into()),
            )])),
        }
    }

    #[test]
    fn only_the_expected_outcome_and_reason_pass() {
        let [approved, unknown_consumer, ..] = scenarios();
        let id = Uuid::new_v4();
        let right = rejected("CONSUMER_VALIDATION_FAILED");
        assert!(expect(&unknown_consumer, id, Some(&right)).is_ok());
        let wrong_reason = expect(&unknown_consumer, id, Some(&rejected("INVALID_ORDER")))
            .expect_err("another reason");
        assert!(
            wrong_reason.to_string().contains("INVALID_ORDER"),
            "{wrong_reason}"
        );
        let wrong_outcome = expect(&approved, id, Some(&right)).expect_err("rejected");
        assert!(
            wrong_outcome
                .to_string()
                .contains("came to REJECTED, not APPROVED"),
            "{wrong_outcome}"
        );
        let none = expect(&approved, id, None).expect_err("nothing came");
        assert!(none.to_string().contains("came to nothing"), "{none}");
    }
}
