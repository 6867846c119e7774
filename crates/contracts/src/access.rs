//! Who may do what on Kafka, derived from the catalog's producers and consumers (the one list
//! of who writes and reads each topic) and the services' naming rules, so the ACLs cannot drift
//! from the messages. `deploy/local/up` applies them (`ftgo acls`), docs/security.md shows
//! them (`ftgo acls docs`), and a test checks them against the service definitions.
//!
//! The principals:
//! - `User:ftgo-<service>`, one per service the catalog names (`"kitchen service ..."`):
//!   - Read on the topics it consumes, Write on those it produces and on its dead-letter
//!     topic `ftgo.<service>-service.dlt`;
//!   - Read on the groups whose names start with `<service>-service` (its own, and any a
//!     deployment runs beside it, `kitchen-service-v2`);
//!   - Write on the transactional ids starting with `ftgo-relay-<service>-service` (its outbox
//!     relay's).
//! - `User:ftgo-cli`, people and programs outside the services (the catalog's "clients"):
//!   Read on every `ftgo.` topic, Write on the topics clients produce to, Read on every group
//!   (`ftgo topics` shows each group's lag, `ftgo groups reset` moves a stopped one), Describe
//!   on the cluster (listing groups).
//! - `User:ftgo-admin` (provisioning: topics, ACLs, schemas) and `User:ftgo-test` (the test
//!   suite, which makes topics of its own and plays every service) are super users of the
//!   broker (`super.users`), and so need no ACL; nor does the broker's own `User:ftgo-broker`.

use std::collections::BTreeSet;
use std::fmt;

use crate::catalog_file::CatalogFile;

/// What an ACL is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Topic,
    Group,
    TransactionalId,
    /// The cluster itself (`kafka-cluster`).
    Cluster,
}

/// How the resource's name matches: exactly, or every name that starts with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    Literal,
    Prefixed,
}

/// What an ACL allows (Describe is implied by Read and Write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Read,
    Write,
    Describe,
}

/// One allowing ACL, for any host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acl {
    /// `ftgo-kitchen` (the principal is `User:ftgo-kitchen`).
    pub user: String,
    pub resource: Resource,
    pub pattern: Pattern,
    pub name: String,
    pub operation: Operation,
}

/// Kafka's names, as its AdminClient and `kafka-acls` spell them.
impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match self.resource {
            Resource::Topic => "TOPIC",
            Resource::Group => "GROUP",
            Resource::TransactionalId => "TRANSACTIONAL_ID",
            Resource::Cluster => "CLUSTER",
        };
        let pattern = match self.pattern {
            Pattern::Literal => "LITERAL",
            Pattern::Prefixed => "PREFIXED",
        };
        let operation = match self.operation {
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Describe => "DESCRIBE",
        };
        write!(
            f,
            "User:{} {resource} {pattern} {} {operation}",
            self.user, self.name
        )
    }
}

/// The principal of people and programs outside the services.
pub const CLI_USER: &str = "ftgo-cli";
/// The provisioning principal (a super user).
pub const ADMIN_USER: &str = "ftgo-admin";
/// The test suite's principal (a super user).
pub const TEST_USER: &str = "ftgo-test";
/// The broker's own principal (a super user).
pub const BROKER_USER: &str = "ftgo-broker";

/// The principal of service `name` (`kitchen`).
pub fn service_user(name: &str) -> String {
    format!("ftgo-{name}")
}

/// What a principal may do in the schema registry: Apicurio Registry's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegistryRole {
    /// Everything, the registry's settings included: provisioning (`ftgo schemas register`).
    Admin,
    /// Read, register and delete schemas: the test suite, which writes schemas of its own.
    Developer,
    /// Read and look up schemas: every service and the CLI. They never register.
    ReadOnly,
}

impl RegistryRole {
    /// The role of `user`.
    pub fn of(user: &str) -> Self {
        match user {
            ADMIN_USER => Self::Admin,
            TEST_USER => Self::Developer,
            _ => Self::ReadOnly,
        }
    }

    /// The registry's name of the role.
    pub fn apicurio_role(self) -> &'static str {
        match self {
            Self::Admin => "sr-admin",
            Self::Developer => "sr-developer",
            Self::ReadOnly => "sr-readonly",
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Self::Admin => "everything: registers schemas, sets compatibility",
            Self::Developer => "reads, registers and deletes subjects",
            Self::ReadOnly => "reads and looks schemas up; never registers",
        }
    }
}

/// A cell of the ACL table: each ACL's resource name in backquotes (with `*` when it is a
/// prefix), or `-` when there is none.
fn cell<'a>(acls: impl Iterator<Item = &'a Acl>) -> String {
    let names: Vec<String> = acls
        .map(|acl| {
            let star = if acl.pattern == Pattern::Prefixed {
                "*"
            } else {
                ""
            };
            format!("`{}{star}`", acl.name)
        })
        .collect();
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    }
}

/// Who a catalog producer or consumer is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Party {
    Service(String),
    Clients,
}

/// `"kitchen service (menu replica)"` is the kitchen service, `"clients (restaurant staff)"`
/// the clients; anything else is an error that quotes it.
fn party(text: &str) -> Result<Party, String> {
    if text == "clients" || text.starts_with("clients ") {
        return Ok(Party::Clients);
    }
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(name), Some("service"))
            if name.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
        {
            Ok(Party::Service(name.to_owned()))
        }
        _ => Err(format!(
            "catalog.toml: {text:?} names no producer or consumer (write \"<name> service ...\" \
             or \"clients ...\")"
        )),
    }
}

/// Every principal's ACLs, sorted; and the users that need a SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPlan {
    pub acls: Vec<Acl>,
    /// Every principal with a password: the services', the CLI's, the admin's and the tests'
    /// (the broker's is made when its storage is formatted).
    pub users: Vec<String>,
}

impl AccessPlan {
    /// The plan of `catalog`.
    pub fn of(catalog: &CatalogFile) -> Result<Self, String> {
        let mut acls = BTreeSet::new();
        let mut services = BTreeSet::new();
        let acl = |user: &str, resource, pattern, name: &str, operation| Acl {
            user: user.to_owned(),
            resource,
            pattern,
            name: name.to_owned(),
            operation,
        };
        for channel in &catalog.channel {
            let producers = channel
                .producers
                .iter()
                .chain(channel.record.iter().filter_map(|r| r.producer.as_ref()));
            for producer in producers {
                let user = match party(producer)? {
                    Party::Service(name) => {
                        services.insert(name.clone());
                        service_user(&name)
                    }
                    Party::Clients => CLI_USER.to_owned(),
                };
                acls.insert(acl(
                    &user,
                    Resource::Topic,
                    Pattern::Literal,
                    &channel.topic,
                    Operation::Write,
                ));
            }
            for consumer in &channel.consumers {
                if let Party::Service(name) = party(consumer)? {
                    services.insert(name.clone());
                    acls.insert(acl(
                        &service_user(&name),
                        Resource::Topic,
                        Pattern::Literal,
                        &channel.topic,
                        Operation::Read,
                    ));
                }
            }
        }
        for name in &services {
            let user = service_user(name);
            let group = format!("{name}-service");
            acls.insert(acl(
                &user,
                Resource::Topic,
                Pattern::Literal,
                &format!("ftgo.{group}.dlt"),
                Operation::Write,
            ));
            acls.insert(acl(
                &user,
                Resource::Group,
                Pattern::Prefixed,
                &group,
                Operation::Read,
            ));
            acls.insert(acl(
                &user,
                Resource::TransactionalId,
                Pattern::Prefixed,
                &format!("ftgo-relay-{group}"),
                Operation::Write,
            ));
        }
        for (resource, pattern, name, operation) in [
            (Resource::Topic, Pattern::Prefixed, "ftgo.", Operation::Read),
            (Resource::Group, Pattern::Literal, "*", Operation::Read),
            (
                Resource::Cluster,
                Pattern::Literal,
                "kafka-cluster",
                Operation::Describe,
            ),
        ] {
            acls.insert(acl(CLI_USER, resource, pattern, name, operation));
        }
        let mut users: Vec<String> = services.iter().map(|name| service_user(name)).collect();
        users.extend([CLI_USER, ADMIN_USER, TEST_USER].map(str::to_owned));
        users.sort();
        Ok(Self {
            acls: acls.into_iter().collect(),
            users,
        })
    }

    /// The ACLs of `user`.
    pub fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Acl> + 'a {
        self.acls.iter().filter(move |acl| acl.user == user)
    }

    /// The table docs/security.md shows: a row per principal and resource kind.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| principal | reads (topics) | writes (topics) | uses groups (read) | transactions (write) | other |\n\
             |---|---|---|---|---|---|\n",
        );
        let users: BTreeSet<&str> = self.acls.iter().map(|acl| acl.user.as_str()).collect();
        for user in users {
            // The names of the user's ACLs on `resource` (for `operation` only, if given).
            let names = |resource: Resource, operation: Option<Operation>| {
                cell(self.of_user(user).filter(|acl| {
                    acl.resource == resource && operation.is_none_or(|o| acl.operation == o)
                }))
            };
            out.push_str(&format!(
                "| `User:{user}` | {} | {} | {} | {} | {} |\n",
                names(Resource::Topic, Some(Operation::Read)),
                names(Resource::Topic, Some(Operation::Write)),
                names(Resource::Group, None),
                names(Resource::TransactionalId, None),
                names(Resource::Cluster, None).replace("`kafka-cluster`", "describe the cluster"),
            ));
        }
        for (user, why) in [
            (ADMIN_USER, "provisioning: topics, ACLs, SCRAM credentials"),
            (TEST_USER, "the test suite"),
            (BROKER_USER, "the broker itself"),
        ] {
            out.push_str(&format!("| `User:{user}` | super user: {why} | | | | |\n"));
        }
        out.push_str(
            "\nIn the schema registry (the same principals and passwords, HTTP basic):\n\n\
             | principal | registry role | may |\n|---|---|---|\n",
        );
        for user in &self.users {
            let role = RegistryRole::of(user);
            out.push_str(&format!(
                "| `{user}` | `{}` | {} |\n",
                role.apicurio_role(),
                role.meaning()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_are_services_or_clients_and_nothing_else() {
        assert_eq!(
            party("kitchen service (menu replica)"),
            Ok(Party::Service("kitchen".into()))
        );
        assert_eq!(party("clients (restaurant staff)"), Ok(Party::Clients));
        assert!(party("the order saga").is_err());
    }

    #[test]
    fn the_catalog_gives_each_service_its_own_topics_and_nothing_more() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let plan = AccessPlan::of(&CatalogFile::load(&dir).expect("the catalog")).expect("a plan");
        let kitchen: Vec<String> = plan.of_user("ftgo-kitchen").map(Acl::to_string).collect();
        for expected in [
            "User:ftgo-kitchen TOPIC LITERAL ftgo.kitchen.commands READ",
            "User:ftgo-kitchen TOPIC LITERAL ftgo.restaurant.events READ",
            "User:ftgo-kitchen TOPIC LITERAL ftgo.delivery.events READ",
            "User:ftgo-kitchen TOPIC LITERAL ftgo.ticket.events WRITE",
            "User:ftgo-kitchen TOPIC LITERAL ftgo.order.replies WRITE",
            "User:ftgo-kitchen TOPIC LITERAL ftgo.kitchen-service.dlt WRITE",
            "User:ftgo-kitchen GROUP PREFIXED kitchen-service READ",
            "User:ftgo-kitchen TRANSACTIONAL_ID PREFIXED ftgo-relay-kitchen-service WRITE",
        ] {
            assert!(
                kitchen.iter().any(|acl| acl == expected),
                "{expected}: {kitchen:#?}"
            );
        }
        assert_eq!(kitchen.len(), 8, "{kitchen:#?}");
        assert!(
            !plan.acls.iter().any(|acl| acl.name == "ftgo.order.events"
                && acl.operation == Operation::Write
                && acl.user != "ftgo-order"),
            "only the order service writes its events"
        );
        assert!(plan.users.contains(&"ftgo-cli".to_owned()));
        assert!(plan.users.contains(&"ftgo-delivery".to_owned()));
    }
}
