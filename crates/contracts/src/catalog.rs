//! Which records may appear on which topic, keyed by which field: `schemas/catalog.toml`,
//! compiled in.

use apache_avro::Schema;

/// One channel (topic) and the records allowed on it.
#[derive(Debug)]
pub struct ChannelInfo {
    pub topic: &'static str,
    /// The registry compatibility level of every subject of this channel.
    pub compatibility: &'static str,
    pub producers: &'static [&'static str],
    pub consumers: &'static [&'static str],
    pub records: &'static [RecordInfo],
}

/// One record type of a channel.
#[derive(Debug)]
pub struct RecordInfo {
    /// The record's simple name, e.g. `CreateOrder`.
    pub name: &'static str,
    /// The Avro full name, `<topic>.<name>`.
    pub full_name: &'static str,
    /// The field whose value is the Kafka record key.
    pub key_field: &'static str,
    /// Who produces it, when that differs per record on the channel.
    pub producer: &'static str,
    /// The `.avsc` text.
    pub schema: &'static str,
}

impl RecordInfo {
    /// The parsed schema. The build already validated every schema, so this cannot fail for
    /// records of [`CHANNELS`].
    pub fn parsed_schema(&self) -> Result<Schema, apache_avro::Error> {
        Schema::parse_str(self.schema)
    }
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// The channel of `topic`, if it is one of the catalog's.
pub fn channel(topic: &str) -> Option<&'static ChannelInfo> {
    CHANNELS.iter().find(|c| c.topic == topic)
}

/// The record `full_name` of `topic`, if it may appear there.
pub fn record(topic: &str, full_name: &str) -> Option<&'static RecordInfo> {
    channel(topic)?
        .records
        .iter()
        .find(|r| r.full_name == full_name)
}

/// Every (channel, record) pair, in catalog order.
pub fn records() -> impl Iterator<Item = (&'static ChannelInfo, &'static RecordInfo)> {
    CHANNELS
        .iter()
        .flat_map(|c| c.records.iter().map(move |r| (c, r)))
}

/// The topics with records keyed by `key_field` (`orderId`: every topic of an order's journey),
/// in catalog order.
pub fn topics_keyed_by(key_field: &str) -> Vec<&'static str> {
    CHANNELS
        .iter()
        .filter(|c| c.records.iter().any(|r| r.key_field == key_field))
        .map(|c| c.topic)
        .collect()
}

/// The (channel, record) pairs that `service` (`kitchen`) produces, as the catalog's producers
/// say (a record's own producer, else its channel's).
pub fn produced_by(
    service: &str,
) -> impl Iterator<Item = (&'static ChannelInfo, &'static RecordInfo)> + '_ {
    let is_service = move |party: &str| names_service(party, service);
    records().filter(move |(channel, record)| {
        if record.producer.is_empty() {
            channel.producers.iter().any(|p| is_service(p))
        } else {
            is_service(record.producer)
        }
    })
}

/// The channels `service` (`kitchen`) consumes, as the catalog's consumers say.
pub fn consumed_by(service: &str) -> impl Iterator<Item = &'static ChannelInfo> + '_ {
    CHANNELS.iter().filter(move |c| {
        c.consumers
            .iter()
            .any(|party| names_service(party, service))
    })
}

/// Every service the catalog names as a producer or consumer (`order`, `kitchen`, ...), in
/// the order the catalog first names them.
pub fn services() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    let parties = CHANNELS.iter().flat_map(|c| {
        c.producers
            .iter()
            .chain(c.consumers.iter())
            .chain(c.records.iter().map(|r| &r.producer))
    });
    for party in parties {
        let Some((name, _)) = party.split_once(" service") else {
            continue;
        };
        if !name.is_empty() && !name.contains(' ') && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Whether a catalog party (`kitchen service (menu replica)`) is `service`'s.
fn names_service(party: &str, service: &str) -> bool {
    party
        .strip_prefix(service)
        .and_then(|rest| rest.strip_prefix(" service"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_order_s_journey_crosses_ten_topics() {
        let topics = super::topics_keyed_by("orderId");
        assert_eq!(topics.len(), 10, "{topics:?}");
        for topic in [
            "ftgo.order.commands",
            "ftgo.consumer.commands",
            "ftgo.delivery.commands",
            "ftgo.delivery.events",
        ] {
            assert!(topics.contains(&topic), "{topic} missing from {topics:?}");
        }
        assert!(!topics.contains(&"ftgo.restaurant.events"));
    }

    #[test]
    fn a_service_produces_its_events_and_replies_only() {
        let kitchen: Vec<_> = super::produced_by("kitchen")
            .map(|(_, r)| r.full_name)
            .collect();
        for produced in [
            "ftgo.ticket.events.TicketCreated",
            "ftgo.order.replies.CreateTicketSucceeded",
        ] {
            assert!(
                kitchen.contains(&produced),
                "{produced} missing: {kitchen:?}"
            );
        }
        assert!(
            !kitchen
                .iter()
                .any(|name| name.starts_with("ftgo.order.events."))
        );
        let order: Vec<_> = super::produced_by("order")
            .map(|(_, r)| r.full_name)
            .collect();
        assert!(
            order.contains(&"ftgo.kitchen.commands.CreateTicket"),
            "{order:?}"
        );
        assert!(
            !order.contains(&"ftgo.kitchen.commands.AcceptTicket"),
            "clients send it"
        );
        assert_eq!(
            super::produced_by("ord").count(),
            0,
            "a name is matched whole"
        );
    }

    #[test]
    fn a_service_consumes_what_the_catalog_says() {
        let topics = |service| {
            super::consumed_by(service)
                .map(|c| c.topic)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            topics("kitchen"),
            [
                "ftgo.kitchen.commands",
                "ftgo.restaurant.events",
                "ftgo.delivery.events"
            ]
        );
        assert_eq!(
            topics("delivery"),
            [
                "ftgo.delivery.commands",
                "ftgo.order.events",
                "ftgo.ticket.events"
            ]
        );
        assert!(topics("order").contains(&"ftgo.order.replies"));
        assert!(topics("ord").is_empty(), "a name is matched whole");
        let mut services = super::services();
        services.sort_unstable();
        assert_eq!(
            services,
            [
                "accounting",
                "consumer",
                "delivery",
                "kitchen",
                "order",
                "restaurant"
            ]
        );
    }
}
