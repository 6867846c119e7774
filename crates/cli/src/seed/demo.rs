//! The demo data: three restaurants and two consumers with fixed ids, and the commands that
//! create them.

use contracts::Contract;
use contracts::consumer::commands::{CreateConsumer, create_consumer};
use contracts::consumer::events::ConsumerCreated;
use contracts::restaurant::commands::{CreateRestaurant, create_restaurant};
use contracts::restaurant::events::RestaurantCreated;
use uuid::Uuid;

/// A demo restaurant.
#[derive(Debug)]
pub(super) struct DemoRestaurant {
    pub(super) name: &'static str,
    /// street, city, state, zip
    pub(super) address: [&'static str; 4],
    /// (id, name, price in cents of USD)
    pub(super) menu: &'static [(&'static str, &'static str, i64)],
}

pub(super) const RESTAURANTS: [DemoRestaurant; 3] = [
    DemoRestaurant {
        name: "Ajanta",
        address: ["100 Spice Street", "Berkeley", "CA", "94707"],
        menu: &[
            ("samosa", "Samosa", 450),
            ("chicken-vindaloo", "Chicken Vindaloo", 1295),
            ("garlic-naan", "Garlic Naan", 325),
        ],
    },
    DemoRestaurant {
        name: "Mumbai Grill",
        address: ["22 Harbor Road", "Oakland", "CA", "94607"],
        menu: &[
            ("tandoori-chicken", "Tandoori Chicken", 1450),
            ("lamb-biryani", "Lamb Biryani", 1675),
            ("mango-lassi", "Mango Lassi", 395),
        ],
    },
    DemoRestaurant {
        name: "Banquet Hall",
        address: ["500 Festival Way", "San Francisco", "CA", "94103"],
        menu: &[
            ("banquet-for-20", "Banquet for twenty", 65_000),
            ("feast-for-40", "Feast for forty", 130_000),
        ],
    },
];

/// Demo consumers: (first name, last name).
pub(super) const CONSUMERS: [(&str, &str); 2] = [("Alice", "Ray"), ("Bob", "Sato")];

pub(super) const CURRENCY: &str = "USD";

/// The id of the demo `kind` (`restaurant`, `consumer`) called `name`: UUID v5 of
/// `urn:ftgo:seed:<kind>:<name>` in the URL namespace.
pub fn demo_id(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:ftgo:seed:{kind}:{name}").as_bytes(),
    )
}

/// `RESTAURANT_MUMBAI_GRILL`.
pub(super) fn variable(kind: &str, name: &str) -> String {
    format!("{kind}_{name}")
        .to_uppercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
}

/// One demo entity and where its records are.
#[derive(Debug)]
pub(super) struct Item {
    pub(super) kind: &'static str,
    pub(super) name: String,
    pub(super) id: Uuid,
    pub(super) command_topic: &'static str,
    pub(super) command_type: &'static str,
    pub(super) event_topic: &'static str,
    pub(super) event_type: &'static str,
    /// The first command for the id on the commands topic.
    pub(super) command_at: Option<(i32, i64)>,
    /// The first event for the id on the events topic.
    pub(super) event_at: Option<(i32, i64)>,
}

impl Item {
    pub(super) fn key(&self) -> String {
        self.id.to_string()
    }

    pub(super) fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

/// Guest `n` (from 1) of `ftgo seed --guests N`: (first, last) name, `Guest`, `n`.
pub fn guest(n: u32) -> (String, String) {
    ("Guest".to_owned(), n.to_string())
}

/// The guest consumers of `ftgo seed --guests N`: `Guest 1` to `Guest N`.
pub(super) fn guests(count: u32) -> impl Iterator<Item = (String, String)> {
    (1..=count).map(guest)
}

/// The demo's items, and `guests` more consumers.
pub(super) fn items(guests: u32) -> Vec<Item> {
    let restaurants = RESTAURANTS.iter().map(|r| Item {
        kind: "restaurant",
        name: r.name.to_owned(),
        id: demo_id("restaurant", r.name),
        command_topic: CreateRestaurant::TOPIC,
        command_type: CreateRestaurant::FULL_NAME,
        event_topic: RestaurantCreated::TOPIC,
        event_type: RestaurantCreated::FULL_NAME,
        command_at: None,
        event_at: None,
    });
    let named = CONSUMERS
        .iter()
        .map(|(first, last)| ((*first).to_owned(), (*last).to_owned()));
    let consumers = named.chain(self::guests(guests)).map(|(first, last)| {
        let name = format!("{first} {last}");
        Item {
            kind: "consumer",
            id: demo_id("consumer", &name),
            name,
            command_topic: CreateConsumer::TOPIC,
            command_type: CreateConsumer::FULL_NAME,
            event_topic: ConsumerCreated::TOPIC,
            event_type: ConsumerCreated::FULL_NAME,
            command_at: None,
            event_at: None,
        }
    });
    restaurants.chain(consumers).collect()
}

pub(super) fn create_restaurant(restaurant: &DemoRestaurant) -> CreateRestaurant {
    let [street1, city, state, zip] = restaurant.address;
    CreateRestaurant {
        restaurant_id: demo_id("restaurant", restaurant.name),
        name: restaurant.name.to_owned(),
        address: create_restaurant::Address {
            street1: street1.into(),
            street2: None,
            city: city.into(),
            state: state.into(),
            zip: zip.into(),
        },
        menu_items: restaurant
            .menu
            .iter()
            .map(|(id, name, cents)| create_restaurant::MenuItem {
                id: (*id).into(),
                name: (*name).into(),
                price: create_restaurant::Money {
                    amount_minor: *cents,
                    currency: CURRENCY.into(),
                },
            })
            .collect(),
    }
}

pub(super) fn create_consumer(first: &str, last: &str) -> CreateConsumer {
    CreateConsumer {
        consumer_id: demo_id("consumer", &format!("{first} {last}")),
        name: create_consumer::PersonName {
            first_name: first.into(),
            last_name: last.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v5_of_the_names() {
        let ajanta = demo_id("restaurant", "Ajanta");
        assert_eq!(ajanta, demo_id("restaurant", "Ajanta"));
        assert_eq!(ajanta.get_version_num(), 5);
        assert_ne!(ajanta, demo_id("consumer", "Ajanta"));
        assert_eq!(
            variable("restaurant", "Mumbai Grill"),
            "RESTAURANT_MUMBAI_GRILL"
        );
    }

    #[test]
    fn guests_are_consumers_after_the_demo_s() {
        let seeded = items(2);
        let names: Vec<&str> = seeded.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names[names.len() - 4..],
            ["Alice Ray", "Bob Sato", "Guest 1", "Guest 2"]
        );
        assert_eq!(
            seeded.last().map(|i| i.id),
            Some(demo_id("consumer", "Guest 2"))
        );
        assert_eq!(items(0).len(), RESTAURANTS.len() + CONSUMERS.len());
    }

    #[test]
    fn the_demo_data_shows_the_business_rules() {
        let banquet = RESTAURANTS
            .iter()
            .find(|r| r.name == "Banquet Hall")
            .expect("a banquet hall");
        let price = |id: &str| {
            banquet
                .menu
                .iter()
                .find(|(item, _, _)| *item == id)
                .map(|(_, _, cents)| *cents)
        };
        // Over accounting's 500.00 card limit, under the consumer's 1,000.00 order limit.
        assert!(price("banquet-for-20").is_some_and(|p| p > 50_000 && p <= 100_000));
        // Over the consumer's order limit.
        assert!(price("feast-for-40").is_some_and(|p| p > 100_000));
        let command = create_restaurant(&RESTAURANTS[0]);
        assert_eq!(command.menu_items.len(), 3);
        assert_eq!(command.menu_items[1].price.amount_minor, 1295);
    }
}
