//! `delivery-service`: the service until SIGTERM or Ctrl-C (`delivery-service --help`).

fn main() -> anyhow::Result<()> {
    delivery_service::DEFINITION.main()
}
