//! `consumer-service`: the service until SIGTERM or Ctrl-C (`consumer-service --help`).

fn main() -> anyhow::Result<()> {
    consumer_service::DEFINITION.main()
}
